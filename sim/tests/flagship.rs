//! The flagship scenario: an NMI on the CPU whose console_unlock() holds
//! logbuf_lock. legacy must deadlock, be found by the watchdog and broken;
//! lockless must take the same NMI at the same place and lose nothing.

mod common;

use common::{assert_balanced, plan, run};
use klog::printk::DropReason;
use klog::Context;
use printk_sim::machine::{Targets, Trigger};
use printk_sim::runner::{Outcome, RunReport};
use printk_sim::scenario::{Overrides, Plan};
use printk_sim::watchdog::{Action, FindingKind};

fn flagship(cpus: usize, target: usize, seed: u64) -> Plan {
    let mut p = plan(
        "nmi-in-console-unlock",
        Overrides {
            cpus: Some(cpus),
            duration_ms: Some(150),
            seed: Some(seed),
            ..Default::default()
        },
    );
    let nmi = &mut p.nmis[0];
    nmi.targets = Targets::One(target);
    if let Trigger::AtPoint { hit_on, .. } = &mut nmi.trigger {
        *hit_on = target;
    }
    p
}

fn check_legacy(r: &RunReport, target: usize, threshold_ms: f64) {
    assert_eq!(r.outcome, Outcome::Deadlock, "{r:#?}");
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.kind, FindingKind::Deadlock);
    assert_eq!(f.cpu, target);
    assert_eq!(f.context, Context::Nmi);
    assert_eq!(f.lock, Some("logbuf_lock"));
    assert_eq!(f.holder_cpu, Some(target));
    assert_eq!(f.holder_context, Some(Context::Task));
    assert_eq!(f.point, Some("console_unlock:logbuf_locked"));
    assert_eq!(
        f.cycle,
        vec![
            format!("cpu{target}/nmi"),
            "logbuf_lock".to_string(),
            format!("cpu{target}/task")
        ]
    );
    assert!(
        f.detected_after_ms >= threshold_ms && f.detected_after_ms <= 2.0 * threshold_ms,
        "detected after {} ms",
        f.detected_after_ms
    );
    assert_eq!(f.action, Action::Break);
    assert!(f.spins > 1000, "the NMI really spun: {} spins", f.spins);
    // The NMI was broken out of its spin: its one message is lost, counted.
    assert_eq!(r.accounts.lost_in_deadlock, 1);
    assert_eq!(r.accounts.dropped, 0);
    assert_eq!(r.nmis[target], 1);
    assert_balanced(r);
}

fn check_lockless(r: &RunReport, target: usize) {
    assert_eq!(r.outcome, Outcome::Clean, "{r:#?}");
    assert!(r.findings.is_empty());
    assert_eq!(r.nmis[target], 1, "the NMI was delivered");
    assert_eq!(r.latency[3].count, 1, "the NMI printed its line");
    assert_eq!(r.accounts.attempted, r.accounts.stored);
    assert_eq!(r.accounts.lost_in_deadlock + r.accounts.dropped, 0);
    assert_balanced(r);
}

#[test]
fn legacy_deadlocks_and_lockless_stays_clean_on_twenty_consecutive_runs() {
    for seed in 1..=20 {
        let p = flagship(2, 0, seed);
        check_legacy(&run(&p, "legacy"), 0, p.threshold_ms);
        check_lockless(&run(&p, "lockless"), 0);
    }
}

/// Every design of the history at the flagship's moment, 20 runs, the NMI
/// on each CPU in turn: only 3.x/4.x's legacy deadlocks.
#[test]
fn every_design_on_twenty_runs_with_the_nmi_on_every_cpu() {
    for seed in 1..=20 {
        let target = (seed % 2) as usize;
        let p = flagship(2, target, seed);
        check_legacy(&run(&p, "legacy"), target, p.threshold_ms);

        let r = run(&p, "trylock");
        assert_eq!(r.outcome, Outcome::Loss, "seed {seed}");
        assert_eq!(r.nmis[target], 1);
        assert_eq!(r.accounts.dropped, 1);
        assert!(r.dropped_by.contains(&(DropReason::NmiTrylockFailed, 1)));
        assert_balanced(&r);

        // printk_safe (4.11; 4.16 under the hand-off): the NMI's message
        // waits in its per-CPU buffer and reaches the log.
        for d in ["nmi_buffers", "legacy_handoff"] {
            let r = run(&p, d);
            assert_eq!(
                r.outcome,
                Outcome::Clean,
                "{d}, seed {seed}: {:?}",
                r.findings
            );
            assert_eq!(r.nmis[target], 1, "{d}");
            assert_eq!(r.accounts.attempted, r.accounts.stored, "{d}");
            assert_eq!(r.accounts.lost_in_deadlock + r.accounts.dropped, 0, "{d}");
            assert_balanced(&r);
        }

        check_lockless(&run(&p, "lockless"), target);

        // nbcon: the CPUs never print to the console, never pass the point.
        let r = run(&p, "nbcon");
        assert_eq!(r.outcome, Outcome::Clean, "nbcon, seed {seed}");
        assert_eq!(r.nmis.iter().sum::<u64>(), 0);
        assert_eq!(r.accounts.attempted, r.accounts.stored);
        assert_balanced(&r);
    }
}

#[test]
fn the_deadlock_follows_the_target_to_any_cpu() {
    for target in 1..4 {
        let p = flagship(4, target, 7);
        let r = run(&p, "legacy");
        check_legacy(&r, target, p.threshold_ms);
        // CPUs spinning on logbuf_lock behind the cycle are not lockups of
        // their own.
        check_lockless(&run(&p, "lockless"), target);
    }
}

#[test]
fn off_leaves_the_nmi_spinning_until_the_hard_limit() {
    let mut p = flagship(2, 0, 1);
    p.on_deadlock = printk_sim::watchdog::OnDeadlock::Off;
    p.hard_limit_ms = 600;
    let r = run(&p, "legacy");
    assert_eq!(r.outcome, Outcome::Timeout);
    // The watchdog found it and, as told, did nothing about it.
    assert_eq!(r.findings[0].kind, FindingKind::Deadlock);
    assert_eq!(r.findings[0].action, Action::Off);
    // At the hard limit the NMI handler was still spinning on logbuf_lock,
    // more than half a second after it started.
    let nmi = r
        .stuck
        .iter()
        .find(|s| s.cpu == 0 && s.context == Context::Nmi)
        .unwrap_or_else(|| panic!("no stuck NMI: {:?}", r.stuck));
    assert_eq!(nmi.lock, "logbuf_lock");
    assert!(nmi.waiting_ms >= 500.0, "{nmi:?}");
    assert!(
        nmi.spins > r.findings[0].spins,
        "it kept spinning after it was found"
    );
    // The hard limit aborted it: its message is lost (and so is that of any
    // other CPU stuck in vprintk behind it; one stuck in console_unlock()
    // had stored its message already), the accounts balance.
    assert!(
        (1..=r.stuck.len() as u64).contains(&r.accounts.lost_in_deadlock),
        "{:?} {:?}",
        r.accounts,
        r.stuck
    );
    assert_balanced(&r);
}

#[test]
fn stop_ends_the_run_at_the_first_deadlock() {
    let mut p = flagship(2, 0, 1);
    p.on_deadlock = printk_sim::watchdog::OnDeadlock::Stop;
    p.duration_ms = 5000;
    let r = run(&p, "legacy");
    assert_eq!(r.outcome, Outcome::Deadlock);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].action, Action::Stop);
    assert!(
        r.wall_ms < 2500.0,
        "stopped long before 5 s: {} ms",
        r.wall_ms
    );
    assert!(r.accounts.lost_in_deadlock >= 1);
    assert_balanced(&r);
}
