//! Soak: every design over many seeds with random NMIs and random IRQs
//! that print on every CPU, and task-context printk in pieces, on a buffer
//! that wraps. On every run the
//! accounts (`klog::printk`) hold exactly, the buffer's invariants hold, and the
//! run ends on its own (no timeout). `PRINTK_SIM_SOAK_SEEDS` sets the
//! number of seeds (default 8).

mod common;

use common::{assert_balanced, plan_text, run_seed};
use printk_sim::runner::Outcome;

#[test]
fn every_design_keeps_exact_accounts_over_many_seeds() {
    let seeds: u64 = std::env::var("PRINTK_SIM_SOAK_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let p = plan_text(
        r#"
name = "soak"
cpus = 2
duration_ms = 100
[buffer]
size = 8192
[watchdog]
threshold_ms = 40
[[task]]
cpus = "all"
printk_hz = 3000
len = [30, 200]
pieces = 3
[[nmi]]
kind = "random"
rate_hz = 800
cpu = "all"
lines = 2
[[irq]]
kind = "random"
rate_hz = 800
cpu = "all"
lines = 1
"#,
    );
    let (mut runs, mut nmis, mut messages, mut from_irq) = (0, 0, 0, 0);
    for seed in 1..=seeds {
        for d in &p.designs {
            let r = run_seed(&p, d.name, seed);
            assert_ne!(r.outcome, Outcome::Timeout, "{} seed {seed}", d.name);
            assert_balanced(&r);
            let reasons: u64 = r.dropped_by.iter().map(|(_, n)| n).sum();
            assert_eq!(reasons, r.accounts.dropped, "{} seed {seed}", d.name);
            runs += 1;
            nmis += r.nmis.iter().sum::<u64>();
            messages += r.accounts.attempted;
            for rec in r
                .records
                .iter()
                .filter(|x| x.context == klog::Context::Hardirq)
            {
                assert_eq!(rec.caller.to_string(), format!("C{}", rec.cpu));
                from_irq += 1;
            }
        }
    }
    assert!(nmis > 100 * seeds, "random NMIs arrived: {nmis}");
    assert!(from_irq > 0, "hardirq printk reached the buffer");
    eprintln!("soak: {runs} runs, {nmis} NMIs, {messages} messages, 0 unaccounted");
}
