//! The watchdog's other findings, and NMIs sent from one CPU to another.

mod common;

use common::{assert_balanced, plan_text, run};
use klog::Context;
use printk_sim::runner::Outcome;
use printk_sim::watchdog::FindingKind;

/// One CPU printing 1000-character lines to a 300-baud console: legacy
/// writes each record with interrupts off, far longer than the threshold.
#[test]
fn a_slow_console_with_interrupts_off_is_a_hard_lockup() {
    let p = plan_text(
        r#"
name = "slow-console"
cpus = 1
duration_ms = 250
designs = ["legacy"]
[console]
baud = 300
[[task]]
cpus = "all"
printk_hz = 10
len = [1000, 1000]
"#,
    );
    let r = run(&p, "legacy");
    assert_eq!(r.outcome, Outcome::Lockup, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.kind, FindingKind::HardLockup);
    assert_eq!((f.cpu, f.context), (0, Context::Task));
    assert_eq!(f.lock, None, "not waiting for a lock: printing");
    assert!(
        (p.threshold_ms..p.threshold_ms * 1.5).contains(&f.detected_after_ms),
        "{}",
        f.detected_after_ms
    );
    assert!(f.stacks[0].1.frames.contains(&"console_unlock"));
    assert!(!r.findings.iter().any(|f| f.kind == FindingKind::Deadlock));
    assert_balanced(&r);
}

/// Two CPUs printing as fast as they can: whoever wins console_sem prints
/// everybody's records and its task never gets back to its own loop.
#[test]
fn printing_everybodys_records_is_a_soft_lockup() {
    let p = plan_text(
        r#"
name = "storm"
cpus = 2
duration_ms = 400
designs = ["legacy"]
[[task]]
cpus = "all"
printk_hz = 0
len = [100, 120]
"#,
    );
    let r = run(&p, "legacy");
    assert_eq!(r.outcome, Outcome::Lockup, "{:#?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::SoftLockup)
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.context, Context::Task);
    assert!(f.detected_after_ms >= 2.0 * p.threshold_ms);
    // The CPU stuck printing printed most of the other CPU's records.
    let other = 1 - f.cpu;
    assert!(r.console.printed_for_others[f.cpu] > r.console.printed_by[other]);
    assert!(
        r.latency[0].max >= 2 * 100_000_000,
        "the stuck printk took > 200 ms"
    );
    assert_balanced(&r);
}

/// CPU 0 passes the point in console_unlock() holding logbuf_lock and sends
/// an NMI to CPU 1, waiting until CPU 1 is in its handler. CPU 1's printk
/// spins on logbuf_lock until CPU 0 goes on and releases it: contention,
/// not deadlock. (One NMI: a second one, sent while CPU 1 is still inside
/// the first, waiting for the lock CPU 0 holds while CPU 0 waits for the
/// second to land, would really lock both up until the wait limit.)
#[test]
fn a_cross_cpu_nmi_with_wait_lands_while_the_lock_is_held() {
    let p = plan_text(
        r#"
name = "cross"
cpus = 2
duration_ms = 150
designs = ["legacy", "lockless"]
[[task]]
cpus = [0]
printk_hz = 1000
[[nmi]]
kind = "at_point"
point = "console_unlock:logbuf_locked"
hit_on = 0
cpu = 1
wait = true
times = 1
"#,
    );
    for design in ["legacy", "lockless"] {
        let r = run(&p, design);
        assert_eq!(r.outcome, Outcome::Clean, "{design}: {:#?}", r.findings);
        assert_eq!(r.fired, vec![1]);
        assert_eq!(r.nmis, vec![0, 1], "{design}: the NMI went to CPU 1");
        let from_nmi: Vec<_> = r
            .records
            .iter()
            .filter(|rec| rec.context == Context::Nmi)
            .collect();
        assert_eq!(from_nmi.len(), 1, "{design}");
        assert!(from_nmi
            .iter()
            .all(|rec| rec.cpu == 1 && rec.text.starts_with("cpu1 nmi #")));
        assert_balanced(&r);
    }
}
