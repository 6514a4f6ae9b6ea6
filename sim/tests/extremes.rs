//! Extreme but valid values run and report; impossible ones are refused up
//! front with the reason.

mod common;

use common::{assert_balanced, plan_text, run};
use printk_sim::runner::Outcome;
use printk_sim::scenario::{Overrides, Scenario};

fn base(cpus: usize, extra: &str) -> String {
    format!(
        r#"
name = "extreme"
cpus = {cpus}
duration_ms = 100
designs = ["legacy", "lockless"]
[watchdog]
threshold_ms = 100
[[task]]
cpus = "all"
printk_hz = 1000
{extra}
"#
    )
}

#[test]
fn one_cpu_and_the_smallest_buffer() {
    let p = plan_text(&base(
        1,
        "[buffer]\nsize = 4096\n[[nmi]]\nkind = \"periodic\"\nperiod_us = 500\n",
    ));
    for d in ["legacy", "lockless"] {
        let r = run(&p, d);
        assert_ne!(r.outcome, Outcome::Timeout, "{d}");
        assert!(r.accounts.overwritten > 0, "{d}: a 4 KiB buffer wraps");
        assert_balanced(&r);
    }
}

#[test]
fn nmis_at_100_khz_run_and_report() {
    let p = plan_text(&base(
        2,
        "[[nmi]]\nkind = \"periodic\"\nperiod_us = 10\ncpu = \"all\"\n",
    ));
    for d in ["legacy", "lockless"] {
        let r = run(&p, d);
        assert_ne!(r.outcome, Outcome::Timeout, "{d}: {:#?}", r.findings);
        // Far more NMIs are raised than a CPU can take: most merge into the
        // one already pending, as hardware latches one.
        // (How many a loaded host gets through varies: dozens at least.)
        assert!(r.nmis.iter().sum::<u64>() > 20, "{d}: {:?}", r.nmis);
        assert!(r.nmis_latched.iter().sum::<u64>() > 0, "{d}");
        assert_balanced(&r);
    }
}

#[test]
fn sixty_four_cpus_on_a_small_host_run_and_report() {
    let p = plan_text(&base(64, ""));
    let r = run(&p, "lockless");
    assert_ne!(r.outcome, Outcome::Timeout);
    assert_eq!(r.nmis.len(), 64);
    assert!(
        r.accounts.attempted > 64,
        "every CPU printed: {:?}",
        r.accounts
    );
    assert_balanced(&r);
}

#[test]
fn more_cpus_than_that_and_ten_second_runs() {
    let e = Scenario::parse("x.toml", &base(256, ""))
        .and_then(|s| s.plan(&Overrides::default()))
        .unwrap_err();
    assert_eq!((e.line, e.key.as_str()), (3, "cpus"));
    assert!(e.message.contains("from 1 to 64, got 256"), "{e}");
    assert!(e.message.contains("starve each other"), "{e}");
    // A 10-second run is valid (it is not run here).
    let p = Scenario::parse(
        "x.toml",
        &base(2, "").replace("duration_ms = 100", "duration_ms = 10000"),
    )
    .and_then(|s| s.plan(&Overrides::default()))
    .unwrap();
    assert_eq!(p.duration_ms, 10_000);
    assert!(p.hard_limit_ms > 10_000);
}
