//! Nothing allocates inside a simulated interrupt (ARCHITECTURE.md, Invariants). Every
//! simulator test binary installs the counting allocator of
//! `common/mod.rs` and checks it after each run; this test runs every
//! design through every kind of interrupt work there is (NMI printk and
//! backtraces, a hardirq WARN in an emergency section, the all-CPU
//! backtrace with its flush, irq_work, a panic with its stop NMIs) and
//! every built-in scenario, and checks that interrupts really happened.

mod common;

use std::sync::atomic::Ordering;

use common::{assert_balanced, plan, plan_text, run, IN_INTERRUPT};
use klog::printk::DESIGNS;
use printk_sim::scenario::{Overrides, BUILTIN};

const EVERY_KIND: &str = r#"
name = "every-kind"
summary = "every kind of interrupt work"
cpus = 3
duration_ms = 250
seed = 7

[[task]]
cpus = "all"
printk_hz = 2000
len = [16, 120]

[[nmi]]
kind = "periodic"
period_us = 3000
cpu = "all"
lines = 2

[[nmi]]
kind = "periodic"
period_us = 20000
cpu = 1
action = "backtrace"

[[irq]]
kind = "periodic"
period_us = 30000
cpu = 2
action = "warn"

[[nmi]]
kind = "backtrace_all"
from_cpu = 0
at_ms = 60

[[nmi]]
kind = "panic"
cpu = 2
at_ms = 200
"#;

#[test]
fn no_design_allocates_in_any_kind_of_interrupt() {
    let p = plan_text(EVERY_KIND);
    for d in DESIGNS {
        let r = run(&p, d.name);
        assert_balanced(&r);
        assert!(r.nmis.iter().sum::<u64>() > 10, "{}: {:?}", d.name, r.nmis);
        assert!(r.latency[3].count > 0, "{}: no NMI printed", d.name);
        assert!(r.latency[2].count > 0, "{}: no hardirq printed", d.name);
        assert_eq!(r.fired.len(), 5);
        assert!(r.fired.iter().all(|&f| f > 0), "{}: {:?}", d.name, r.fired);
        assert_eq!(IN_INTERRUPT.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn no_design_allocates_in_the_builtin_scenarios() {
    for (scenario, _) in BUILTIN {
        let p = plan(scenario, Overrides::default());
        for d in &p.designs {
            let r = run(&p, d.name);
            assert_balanced(&r);
            assert_eq!(IN_INTERRUPT.load(Ordering::Relaxed), 0);
        }
    }
}
