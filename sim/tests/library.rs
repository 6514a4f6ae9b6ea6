//! The scenario library's particulars beyond each file's `[expect]`
//! table (which `scenarios.rs` checks for every file): the RCU stall
//! story, the backtrace AB-BA, panic with a frozen holder, the ring's
//! interrupted writer, reader overrun, lockdep without a deadlock, and the
//! random NMI storm's odds.

mod common;

use common::{assert_balanced, plan, run, run_seed};
use klog::lockdep::Rule;
use klog::printk::DropReason;
use klog::Context;
use printk_sim::runner::{Outcome, PanicReport, ReaderReport, RunReport};
use printk_sim::scenario::Overrides;
use printk_sim::watchdog::FindingKind;

fn deadlocks(r: &RunReport) -> Vec<&printk_sim::watchdog::Finding> {
    r.findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deadlock)
        .collect()
}

fn count(r: &RunReport, text: &str) -> usize {
    r.records.iter().filter(|rec| rec.text == text).count()
}

#[test]
fn rcu_stall_part_1_the_nmi_backtrace_deadlocks_legacy_in_printk() {
    let p = plan("rcu-stall-nmi-backtrace", Overrides::default());
    let r = run(&p, "legacy");
    assert_balanced(&r);
    let d = deadlocks(&r);
    assert!(!d.is_empty());
    for f in d {
        // The NMI landed where vprintk_emit() had just taken the lock (the
        // holder is labelled with vprintk_emit()'s locked window).
        assert!(f.cpu == 2 || f.cpu == 3, "{f:?}");
        assert_eq!(f.context, Context::Nmi);
        assert_eq!(f.lock, Some("logbuf_lock"));
        assert_eq!(
            (f.holder_cpu, f.holder_context),
            (Some(f.cpu), Some(Context::Task))
        );
        assert_eq!(f.point, Some("vprintk:logbuf_locked"));
    }
    assert!(
        r.accounts.lost_in_deadlock > 0,
        "the backtrace lines are lost"
    );
    // The stall itself is found too.
    assert!(r
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::HardLockup && f.cpu == 1));

    for d in ["nmi_buffers", "lockless"] {
        let r = run(&p, d);
        assert_balanced(&r);
        assert!(deadlocks(&r).is_empty(), "{d}");
        // print_other_cpu_stall() as 4.11 (one line per stalled CPU) and
        // 6.1 ("rcu: " prefix, ncpus) printed it.
        let (head, tail) = if d == "lockless" {
            (
                "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
                "rcu: \t(detected by 0, t=",
            )
        } else {
            (
                "INFO: rcu_sched detected stalls on CPUs/tasks:",
                "\t(detected by 0, t=",
            )
        };
        assert_eq!(count(&r, head), 1, "{d}");
        assert!(
            r.records.iter().any(|rec| rec.text.starts_with(tail)),
            "{d}"
        );
        for cpu in 1..4 {
            assert_eq!(
                count(&r, &format!("NMI backtrace for cpu {cpu}")),
                1,
                "{d} cpu{cpu}"
            );
        }
    }
}

#[test]
fn rcu_stall_part_2_the_remote_dump_cannot_deadlock_but_tears() {
    let p = plan("rcu-stall-remote-dump", Overrides::default());
    let mut torn = 0;
    for d in ["legacy", "nmi_buffers", "lockless"] {
        let r = run(&p, d);
        assert_balanced(&r);
        assert!(deadlocks(&r).is_empty(), "{d}");
        assert_eq!(r.nmis.iter().sum::<u64>(), 0, "{d}: no NMI at all");
        assert_eq!(r.remote_traces, 5, "{d}");
        torn += r.torn_traces;
        // One walk of the stalled CPU per report (a line the ring had to
        // drop, when the host stalled a writer, is counted as dropped).
        let dumps = count(&r, "Task dump for CPU 1:") as u64;
        assert!(
            dumps <= 5 && dumps + r.accounts.dropped >= 5,
            "{d}: {dumps}"
        );
    }
    // A walk is torn when the target changed its stack meanwhile: it does
    // so all the time, but the host decides when its thread runs, so the
    // count is asked of all fifteen walks together.
    assert!(torn >= 3, "{torn} of 15 walks torn");
}

#[test]
fn rcu_stall_part_3_nmi_backtraces_complete_and_consistent() {
    let p = plan("rcu-stall-nmi-buffers", Overrides::default());
    for d in ["nmi_buffers", "lockless"] {
        let r = run(&p, d);
        assert_balanced(&r);
        assert!(deadlocks(&r).is_empty(), "{d}");
        assert_eq!(r.remote_traces, 0);
        let at = r
            .records
            .iter()
            .position(|rec| rec.text == "NMI backtrace for cpu 1")
            .unwrap_or_else(|| panic!("{d}: no backtrace of the stalled CPU"));
        // The stalled CPU's own stack, whole: the loop it is stuck in,
        // then the NMI that took the trace.
        let frames: Vec<&str> = r.records[at + 1..]
            .iter()
            .filter(|rec| rec.text.starts_with(' ') && rec.cpu == r.records[at].cpu)
            .take_while(|rec| rec.text != " nmi_cpu_backtrace+0x0/0x0")
            .map(|rec| rec.text.as_str())
            .collect();
        // Inside the loop's body or between two calls of it.
        let body = [
            " cpu_idle+0x0/0x0",
            " stall_spin+0x0/0x0",
            " stall_loop_body+0x0/0x0",
            " nmi_handler+0x0/0x0",
        ];
        let between = [
            " cpu_idle+0x0/0x0",
            " stall_spin+0x0/0x0",
            " nmi_handler+0x0/0x0",
        ];
        assert!(frames == body || frames == between, "{d}: {frames:?}");
        let by = &r.records[at];
        if d == "nmi_buffers" {
            // CPU 1 never flushed its own buffer: CPU 0, the requester, did.
            assert_eq!((by.cpu, by.context), (0, Context::Hardirq));
        } else {
            assert_eq!((by.cpu, by.context), (1, Context::Nmi));
        }
    }
}

#[test]
fn the_backtrace_lock_and_logbuf_lock_deadlock_ab_ba() {
    let p = plan("backtrace-abba", Overrides::default());
    let r = run(&p, "legacy");
    let lockless = run(&p, "lockless");
    assert!(lockless.lockdep.is_empty());
    let f = deadlocks(&r)[0];
    assert_eq!(
        f.cycle,
        [
            "cpu0/nmi",
            "logbuf_lock",
            "cpu1/task",
            "cpu1/nmi",
            "nmi_backtrace_lock"
        ]
    );
    assert_eq!(f.point, Some("console_unlock:logbuf_locked"));
    // lockdep: logbuf_lock taken in NMI context and outside it. The two
    // orders are no circular dependency to lockdep: CPU 1 took the
    // backtrace lock in NMI context on top of logbuf_lock held by its task,
    // and lockdep links only locks held in the same context.
    let rules: Vec<(Rule, &str)> = r.lockdep.iter().map(|l| (l.rule, l.lock)).collect();
    assert_eq!(rules, [(Rule::NmiUnsafeLock, "logbuf_lock")]);
    let ex = r.lockdep[0].example.unwrap();
    assert_eq!(ex.context, Context::Nmi);
    // The kernel prints <Interrupt> for every kind of interrupt, an NMI
    // included; 3.16's lockdep would not have seen this at all.
    assert!(r.lockdep[0].scenario.contains("  <Interrupt>\n"));
    assert!(!r.lockdep[0].kernel);
    let r = run(&p, "nmi_buffers");
    assert!(r.lockdep.is_empty(), "{:#?}", r.lockdep);
    assert_eq!(r.outcome, Outcome::Clean);
    // Both answers reached the log through CPU 2's flush.
    for cpu in [0, 1] {
        let bt = r
            .records
            .iter()
            .find(|rec| rec.text == format!("NMI backtrace for cpu {cpu}"))
            .unwrap();
        assert_eq!(bt.context, Context::Hardirq);
    }
}

#[test]
fn panic_with_a_frozen_holder_hangs_3x_and_4_16_and_not_the_others() {
    let p = plan("panic-frozen-lock-holder", Overrides::default());
    let r = run(&p, "legacy");
    assert_eq!(
        r.panic,
        Some(PanicReport {
            cpu: 0,
            finished: false
        }),
        "the panic never finished"
    );
    let hard = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::HardLockup)
        .unwrap();
    assert_eq!(hard.cpu, 1, "the frozen holder");
    assert!(
        hard.blocked_behind.contains(&0),
        "the panic CPU spins behind it"
    );

    // 4.16: the panic NMI chose the main log as it began (logbuf_lock was
    // held, but not by its own CPU in printk-safe context) and spins on
    // logbuf_lock behind the frozen holder: 03fc7f9c99c1's second case.
    let r = run(&p, "legacy_handoff");
    assert_eq!(
        r.panic,
        Some(PanicReport {
            cpu: 0,
            finished: false
        }),
        "the panic never finished"
    );
    let hard = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::HardLockup)
        .unwrap();
    assert_eq!(hard.cpu, 1);
    assert!(hard.blocked_behind.contains(&0));

    // nmi_buffers: printk_safe_flush_on_panic() re-initialises logbuf_lock
    // (NMI context, every other CPU stopped); lockless: no logbuf_lock, and
    // console_flush_on_panic() prints past the frozen console_sem holder;
    // nbcon: the atomic console at panic priority.
    for d in ["nmi_buffers", "lockless", "nbcon"] {
        let r = run(&p, d);
        assert_balanced(&r);
        assert_eq!(
            r.panic,
            Some(PanicReport {
                cpu: 0,
                finished: true
            }),
            "{d}"
        );
        let out = r.console_text();
        assert!(
            out.contains("Kernel panic - not syncing: simulated panic on CPU 0"),
            "{d}"
        );
        assert!(out.contains("---[ end Kernel panic"), "{d}");
    }
}

#[test]
fn an_nmi_wrapping_the_ring_over_its_own_reserved_record_fails_and_counts() {
    let p = plan("prb-writer-interrupted", Overrides::default());
    for d in ["lockless", "nbcon"] {
        let r = run(&p, d);
        assert_balanced(&r);
        assert_eq!(r.nmis[0], 1);
        let busy: u64 = r
            .dropped_by
            .iter()
            .filter(|(why, _)| matches!(why, DropReason::DescBusy | DropReason::DataBusy))
            .map(|(_, n)| n)
            .sum();
        assert!(busy > 100, "{d}: {:?}", r.dropped_by);
        assert_eq!(busy, r.accounts.dropped, "{d}");
        // The NMI got in everything the ring could take before it lapped
        // the open record: one ring's worth of descriptors, give or take.
        let nmi = 1000 - busy;
        assert!((400..=520).contains(&nmi), "{d}: {nmi}");
        assert!(r.invariant_violation.is_none());
    }
}

#[test]
fn a_slow_console_says_exactly_how_many_records_it_missed() {
    let p = plan("reader-overrun", Overrides::default());
    for d in ["legacy", "lockless", "nbcon"] {
        let r = run(&p, d);
        assert_balanced(&r);
        assert!(r.console.skipped > 50, "{d}: {}", r.console.skipped);
        let announced: u64 = r
            .console_text()
            .lines()
            .filter_map(|l| {
                // legacy (3.x) ends the line in a space, the next record
                // following on it; later releases end it in a newline.
                let (n, rest) = l
                    .strip_prefix("** ")?
                    .split_once(" printk messages dropped **")?;
                assert!(
                    rest.is_empty() || (d == "legacy" && rest.starts_with(" [")),
                    "{d}: {l:?}"
                );
                n.parse::<u64>().ok()
            })
            .sum();
        assert_eq!(announced, r.console.skipped, "{d}");
        assert!(
            r.console.printed + r.console.skipped <= r.accounts.stored,
            "{d}"
        );
        assert_eq!(r.accounts.dropped, 0, "{d}: writers never wait or drop");
        // The log reader fell behind too, was told so, and went on.
        let ReaderReport {
            read,
            missed,
            overruns,
        } = r.reader.unwrap();
        assert!(read >= 20, "{d}: {read}");
        assert!(missed > 0 && overruns > 0, "{d}: {missed} missed");
        assert!(read + missed <= r.accounts.stored, "{d}");
        assert!(
            missed <= r.accounts.overwritten,
            "{d}: only overwritten records are missed"
        );
    }
}

#[test]
fn lockdep_reports_legacy_on_a_run_with_no_deadlock() {
    let p = plan("lockdep-only", Overrides::default());
    let r = run(&p, "legacy");
    assert_eq!(r.outcome, Outcome::Clean);
    assert!(r.nmis[1] >= 30);
    // The NMI's printk takes logbuf_lock, then, trying the console,
    // console_sem's own spinlock and the serial driver's port->lock: each a
    // lock used outside NMI context too.
    let found: Vec<(Rule, &str)> = r.lockdep.iter().map(|f| (f.rule, f.lock)).collect();
    assert_eq!(
        found,
        [
            (Rule::NmiUnsafeLock, "logbuf_lock"),
            (Rule::NmiUnsafeLock, "(console_sem).lock"),
            (Rule::NmiUnsafeLock, "&port_lock_key"),
        ]
    );
    for f in &r.lockdep {
        let ex = f.example.unwrap();
        assert_eq!((ex.cpu, ex.context), (1, Context::Nmi), "{}", f.lock);
    }
    // The first example's call trace: an NMI on the idle CPU, in printk.
    assert_eq!(
        r.lockdep[0].stack,
        ["cpu_idle", "nmi_handler", "vprintk_emit"]
    );
    let r = run(&p, "lockless");
    assert!(r.lockdep.is_empty());
}

#[test]
fn random_nmis_deadlock_legacy_on_some_seeds_and_lockless_on_none() {
    let p = plan("random-nmi-storm", Overrides::default());
    let mut legacy = 0;
    for seed in 1..=20 {
        let r = run_seed(&p, "legacy", seed);
        assert_balanced(&r);
        if r.outcome == Outcome::Deadlock {
            legacy += 1;
        }
        let r = run_seed(&p, "lockless", seed);
        assert!(
            r.findings.iter().all(|f| f.kind != FindingKind::Deadlock),
            "lockless seed {seed}: {:#?}",
            r.findings
        );
    }
    assert!(
        (1..20).contains(&legacy),
        "{legacy} of 20 legacy runs deadlocked"
    );
}

/// The log reader is a thread that takes no interrupts: the lock it reads
/// under counts as taken with interrupts off, not as an irq-unsafe use
/// (which, next to trylock's console_unlock() in irq_work, would be a
/// false `inconsistent-irq-usage`).
#[test]
fn a_log_reader_does_not_make_logbuf_lock_look_irq_unsafe() {
    let p = common::plan_text(
        r#"
name = "reader-and-irq-work"
cpus = 2
duration_ms = 200
designs = ["trylock"]
[reader]
hz = 500
[[task]]
cpus = "all"
printk_hz = 1000
[[nmi]]
kind = "periodic"
period_us = 5000
cpu = "all"
"#,
    );
    let r = run(&p, "trylock");
    assert_balanced(&r);
    assert!(r.reader.unwrap().read > 10, "the reader read");
    assert!(r.nmis.iter().sum::<u64>() > 10, "NMIs queued irq_work");
    assert!(r.lockdep.is_empty(), "{:#?}", r.lockdep);
}

/// A panic raised in NMI context: with nmi_buffers its own lines go to the
/// panic CPU's NMI buffer, and the panic flushes that buffer first
/// (printk_safe_flush_on_panic), so the console shows them. The NMI lands
/// while its own CPU holds logbuf_lock in console_unlock(): the flush
/// re-initialises it (every other CPU is stopped). (Landing inside the
/// serial driver instead would hang 4.x's panic on port->lock: see
/// panic-stops-port-lock-holder. CPU 1 stays idle for the same reason.)
#[test]
fn nmi_buffers_flush_their_own_panic_lines_to_the_console() {
    let p = common::plan_text(
        r#"
name = "panic-in-nmi"
cpus = 2
duration_ms = 200
designs = ["nmi_buffers"]
[[task]]
cpus = [0]
printk_hz = 1000
[[nmi]]
kind = "at_point"
point = "console_unlock:logbuf_locked"
nth = 20
cpu = 0
action = "panic"
"#,
    );
    let r = run(&p, "nmi_buffers");
    assert_balanced(&r);
    assert_eq!(
        r.panic,
        Some(PanicReport {
            cpu: 0,
            finished: true
        })
    );
    let out = r.console_text();
    assert!(
        out.contains("Kernel panic - not syncing: simulated panic on CPU 0"),
        "{out}"
    );
    assert!(out.contains("---[ end Kernel panic"));
}

/// The locks under the locks, and the deadlocks that came with 4.13 and
/// 4.16: who waits on what, in each new scenario.
#[test]
fn the_locks_under_the_locks_and_the_later_kernels_own_hangs() {
    // An NMI's printk in up()'s window spins on console_sem's own lock,
    // held by the task it interrupted.
    let p = plan("nmi-in-console-sem", Overrides::default());
    let r = run(&p, "legacy");
    let f = deadlocks(&r)[0];
    assert_eq!(f.cycle, ["cpu0/nmi", "(console_sem).lock", "cpu0/task"]);
    assert_eq!(
        r.accounts.lost_in_deadlock, 0,
        "the record was stored first"
    );
    let r = run(&p, "nmi_buffers");
    assert_eq!((r.outcome, r.nmis[0]), (Outcome::Clean, 1));

    // 4.13's deferred NMI: CPU 0's NMI holds the backtrace lock and waits
    // for logbuf_lock; CPU 1's NMI (which chose its buffer) waits for the
    // backtrace lock.
    let p = plan("nmi-deferred-deadlock", Overrides::default());
    let r = run(&p, "legacy_handoff");
    let f = deadlocks(&r)[0];
    assert_eq!(
        f.cycle,
        [
            "cpu0/nmi",
            "logbuf_lock",
            "cpu1/task",
            "cpu1/nmi",
            "nmi_backtrace_lock"
        ]
    );

    // 4.16-5.17: the panic CPU spins as the waiter of the console owner it
    // stopped; 5.18 does not spin.
    let p = plan("panic-stops-console-owner", Overrides::default());
    let r = run(&p, "legacy_handoff");
    assert_eq!(
        r.panic,
        Some(PanicReport {
            cpu: 0,
            finished: false
        })
    );
    let hard = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::HardLockup)
        .unwrap();
    assert_eq!((hard.cpu, hard.lock), (0, Some("console_sem")));
    let r = run(&p, "lockless");
    assert_eq!(
        r.panic,
        Some(PanicReport {
            cpu: 0,
            finished: true
        })
    );
    assert!(r.console_text().contains("Kernel Offset: disabled"));

    // 4.x: console_flush_on_panic() spins on port->lock, oops_in_progress
    // already cleared; 5.0 on only tries it.
    let p = plan("panic-stops-port-lock-holder", Overrides::default());
    let r = run(&p, "legacy");
    assert_eq!(
        r.panic,
        Some(PanicReport {
            cpu: 0,
            finished: false
        })
    );
    let hard = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::HardLockup)
        .unwrap();
    assert_eq!((hard.cpu, hard.lock), (0, Some("&port_lock_key")));
    let r = run(&p, "lockless");
    assert_eq!(
        r.panic,
        Some(PanicReport {
            cpu: 0,
            finished: true
        })
    );
    assert!(r.console_text().contains("---[ end Kernel panic"));
}
