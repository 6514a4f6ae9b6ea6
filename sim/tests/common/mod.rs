//! Helpers shared by the simulator's integration tests.

#![allow(dead_code)]

use klog::printk::{self, DesignInfo};
use printk_sim::runner::{self, RunReport};
use printk_sim::scenario::{self, Overrides, Plan};

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
    runner::run(plan, design(design_name), plan.seed, false).unwrap()
}

/// The accounts identities of SPEC §3, and the buffer's invariants, with
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
        a.readable + a.overwritten,
        "{} seed {}: stored != readable + overwritten: {a:?}",
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
