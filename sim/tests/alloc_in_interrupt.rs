//! Nothing allocates inside a simulated interrupt (SPEC §8). Every
//! simulator test binary installs the counting allocator of
//! `common/mod.rs` and checks it after each run; this test runs every
//! built-in scenario on every design and checks that the allocator was in
//! use and that interrupts really happened.

mod common;

use std::sync::atomic::Ordering;

use common::{assert_balanced, plan, run, IN_INTERRUPT};
use printk_sim::scenario::{Overrides, BUILTIN};

#[test]
fn no_design_allocates_in_interrupt_context() {
    for (scenario, _) in BUILTIN {
        let p = plan(scenario, Overrides::default());
        for d in &p.designs {
            let r = run(&p, d.name);
            assert_balanced(&r);
            let nmis: u64 = r.nmis.iter().sum();
            assert!(nmis > 0, "{scenario}/{}: no NMI was delivered", d.name);
            assert!(
                r.latency[3].count > 0,
                "{scenario}/{}: no NMI printed",
                d.name
            );
            assert_eq!(IN_INTERRUPT.load(Ordering::Relaxed), 0);
        }
    }
}
