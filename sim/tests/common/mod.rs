//! Helpers shared by the simulator's integration tests.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use klog::printk::{self, DesignInfo};
use printk_sim::runner::{self, RunReport};
use printk_sim::scenario::{self, Overrides, Plan};

/// Every simulator test binary counts allocations made inside a simulated
/// interrupt (ARCHITECTURE.md, Invariants); `run` fails on any.
struct Watch;

/// Allocations and frees inside simulated interrupts, in this process.
pub static IN_INTERRUPT: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; the check only reads
// a thread-local and an atomic and never allocates.
unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
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

/// The plan of a built-in scenario (or file) with overrides.
pub fn plan(name: &str, o: Overrides) -> Plan {
    scenario::load(name)
        .and_then(|s| s.plan(&o))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The plan of scenario text.
pub fn plan_text(text: &str) -> Plan {
    scenario::Scenario::parse("test.toml", text)
        .and_then(|s| s.plan(&Overrides::default()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The design called `name`.
pub fn design(name: &str) -> &'static DesignInfo {
    printk::design(name).unwrap()
}

/// Run `design` on `plan` with the plan's seed.
pub fn run(plan: &Plan, design_name: &str) -> RunReport {
    run_seed(plan, design_name, plan.seed)
}

/// Run `design` on `plan` with `seed`.
pub fn run_seed(plan: &Plan, design_name: &str, seed: u64) -> RunReport {
    let r = runner::run(plan, design(design_name), seed, false).unwrap();
    assert_eq!(
        IN_INTERRUPT.load(Ordering::Relaxed),
        0,
        "{design_name} on {}: allocation inside a simulated interrupt",
        plan.name
    );
    r
}

/// The accounts identities (`klog::printk`), and the buffer's invariants, with
/// the run named on failure.
pub fn assert_balanced(r: &RunReport) {
    assert_eq!(
        r.invariant_violation, None,
        "{} seed {}: buffer invariant",
        r.design, r.seed
    );
    let a = r.accounts;
    assert_eq!(
        a.attempted,
        a.stored + a.dropped + a.lost_in_deadlock,
        "{} seed {}: attempted != stored + dropped + lost: {a:?}",
        r.design,
        r.seed
    );
    assert_eq!(
        a.stored,
        a.readable + a.overwritten + a.unfinished + a.merged,
        "{} seed {}: stored != readable + overwritten + unfinished + merged: {a:?}",
        r.design,
        r.seed
    );
    assert_eq!(
        r.records.len() as u64,
        a.readable,
        "{}: records read back",
        r.design
    );
}
