//! Nothing allocates inside a simulated interrupt (SPEC §8): a global
//! allocator counts allocations made while the calling thread is a CPU
//! inside a hardirq or NMI handler, across full runs of every design.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use common::{assert_balanced, plan, run};
use printk_sim::scenario::Overrides;

struct Watch;

static IN_INTERRUPT: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; the check only reads
// a thread-local and an atomic and never allocates.
unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        TOTAL.fetch_add(1, Ordering::Relaxed);
        if printk_sim::in_interrupt() {
            IN_INTERRUPT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if printk_sim::in_interrupt() {
            IN_INTERRUPT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Watch = Watch;

#[test]
fn no_design_allocates_in_interrupt_context() {
    for scenario in [
        "nmi-storm",
        "nmi-in-console-unlock",
        "nmi-in-vprintk-window",
    ] {
        let p = plan(scenario, Overrides::default());
        for d in &p.designs {
            let before = TOTAL.load(Ordering::Relaxed);
            let r = run(&p, d.name);
            assert_balanced(&r);
            let nmis: u64 = r.nmis.iter().sum();
            assert!(nmis > 0, "{scenario}/{}: no NMI was delivered", d.name);
            assert!(
                r.latency[3].count > 0,
                "{scenario}/{}: no NMI printed",
                d.name
            );
            assert!(
                TOTAL.load(Ordering::Relaxed) > before,
                "the allocator is in use"
            );
            assert_eq!(
                IN_INTERRUPT.load(Ordering::Relaxed),
                0,
                "{scenario}/{}: allocation inside a simulated interrupt",
                d.name
            );
        }
    }
}
