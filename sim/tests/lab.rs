//! Bring your own design: the lab grades a design written here, outside
//! the simulator, exactly as it grades the examples' and the kernel's; and
//! the examples, run as a user runs them, fail where they should.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use klog::console::Console;
use klog::lock::RawSpinLock;
use klog::printk::{
    DesignConfig, DesignInfo, DesignKind, DropReason, External, PointUse, PrbLog, Printk,
};
use klog::record::Level;
use klog::{point, Arch, Kernel, LockCore};
use printk_sim::explore::CellOutcome;
use printk_sim::lab::{Build, Lab};
use printk_sim::machine::Machine;
use printk_sim::outcome::Outcome;

mod common;

#[path = "../examples/naive/design.rs"]
mod naive;
#[path = "../examples/percpu/design.rs"]
mod percpu;

/// The proposed 15-line fix, written from scratch against klog: one lock
/// everywhere, but in NMI context only one try, and the message dropped
/// (and counted) if the lock is taken.
struct TryOnce {
    lock: RawSpinLock<u64>,
    log: PrbLog,
    console: Console,
    nmi_drops: AtomicU64,
}

impl<A: Arch> Printk<A> for TryOnce {
    fn name(&self) -> &'static str {
        "try_once"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        let flags = arch.local_irq_save();
        let at = Some(point::VPRINTK_LOGBUF_LOCKED);
        // Err(true): the watchdog broke our wait; Err(false): the one try
        // in NMI context failed.
        let guard = if arch.in_nmi() {
            self.lock.try_lock(arch, at).ok_or(false)
        } else {
            self.lock.lock(arch, at).map_err(|_| true)
        };
        match guard {
            Ok(mut next) => {
                arch.point(point::VPRINTK_LOGBUF_LOCKED);
                // store() counts the attempt.
                self.log.store(arch, level, args);
                self.log.print_to(arch, &self.console, &mut next);
            }
            Err(broken) => {
                self.log.counters.attempt();
                if broken {
                    self.log.counters.lose_in_deadlock();
                } else {
                    self.log.counters.drop_one();
                    self.nmi_drops.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        arch.local_irq_restore(flags);
    }

    fn irq_work(&self, _arch: &A) {}

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.lock.core(), self.console.port_lock()]
    }

    klog::prb_printk_methods!(accounts);

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        let mut v = self.log.drop_reasons();
        v.push((
            DropReason::NmiTrylockFailed,
            self.nmi_drops.load(Ordering::Relaxed),
        ));
        v
    }
}

fn build(config: &DesignConfig) -> Box<dyn Printk<Machine>> {
    Box::new(TryOnce {
        lock: RawSpinLock::new("try_once_lock", 0),
        log: PrbLog::new(config.buffer_size),
        console: Console::new(config.console, config.nr_cpus),
        nmi_drops: AtomicU64::new(0),
    })
}
static BUILD: Build = build;

static TRY_ONCE: DesignInfo = DesignInfo {
    kind: DesignKind::External(External(&BUILD)),
    name: "try_once",
    summary: "one lock; in NMI one try, the message dropped if it is taken",
    point_groups: &[&[
        PointUse {
            point: point::VPRINTK_LOGBUF_LOCKED,
            about: "try_once_lock is held: storing",
        },
        PointUse {
            point: point::CONSOLE_UNLOCK_LOGBUF_LOCKED,
            about: "try_once_lock is held: printing",
        },
    ]],
    kernel: Kernel::new(6, 12),
};

#[test]
fn a_design_from_a_test_file_is_graded_like_any_other() {
    let card = Lab::new()
        .design(&TRY_ONCE)
        .scenarios(&["nmi-in-console-unlock", "nmi-storm"])
        .run(&mut |_| {})
        .unwrap();
    assert_eq!(common::IN_INTERRUPT.load(Ordering::Relaxed), 0);
    assert_eq!(card.failures, vec![], "its accounts add up");
    let flagship = &card.scenarios[0];
    assert_eq!(flagship.name, "nmi-in-console-unlock");
    // The six first, in the scenario's order, then ours.
    let names: Vec<&str> = flagship.runs.iter().map(|r| r.design).collect();
    assert_eq!(
        names,
        [
            "legacy",
            "trylock",
            "nmi_buffers",
            "legacy_handoff",
            "lockless",
            "nbcon",
            "try_once"
        ]
    );
    let ours = flagship.runs.last().unwrap();
    assert!(ours.graded);
    // The NMI lands while this CPU holds the lock: one try, one drop.
    assert_eq!(ours.outcome, Outcome::Loss, "{ours:?}");
    assert_eq!(ours.accounts.dropped, 1);
    assert_eq!(
        ours.accounts.attempted,
        ours.accounts.stored + ours.accounts.dropped
    );
    assert!(ours.findings.is_empty());
    // explore: no deadlock anywhere, a loss wherever the lock is held.
    let x = &card.explorations[0];
    let d = x
        .designs
        .iter()
        .find(|d| d.design.name == "try_once")
        .unwrap();
    assert_eq!(d.reached.len(), 2);
    for c in &d.cells {
        assert_eq!(c.outcome, CellOutcome::Loss, "{c:?}");
    }
    let text = printk_sim::report::card::render(&card, 1000);
    assert!(
        text.contains("try_once: 2 scenarios: 0 deadlock, 0 lockup, 0 timeout, 2 loss, 0 clean; explore nmi-in-console-unlock: loses messages at 2 of 2: vprintk:logbuf_locked, console_unlock:logbuf_locked"),
        "{text}"
    );
}

#[test]
fn the_examples_fail_where_they_should() {
    let card = Lab::new()
        .design(&naive::NAIVE)
        .design(&percpu::PERCPU)
        .without_history()
        .run(&mut |_| {})
        .unwrap();
    assert_eq!(
        common::IN_INTERRUPT.load(Ordering::Relaxed),
        0,
        "neither example allocates inside an interrupt"
    );
    assert_eq!(card.failures, vec![], "their accounts add up everywhere");
    assert_eq!(card.scenarios.len(), printk_sim::scenario::BUILTIN.len());
    // The naive design deadlocks at its own lock in NMI context wherever
    // it holds it: explore finds every such point, on both CPUs, and no
    // other kind of failure.
    let x = &card.explorations[0];
    let naive = x.designs.iter().find(|d| d.design.name == "naive").unwrap();
    assert_eq!(
        naive.listed.len(),
        9,
        "its 2 points, the ring's 6, the serial port's"
    );
    assert_eq!(
        naive.reached.iter().map(|p| p.name).collect::<Vec<_>>(),
        [
            "vprintk:logbuf_locked",
            "console_unlock:logbuf_locked",
            "prb:head_moved",
            "prb:reserved",
            "prb:data_allocated",
            "prb:before_commit",
            "prb:read_copied",
            "serial:port_locked",
        ]
    );
    for c in naive.cells.iter().filter(|c| c.tried) {
        assert_eq!(c.outcome, CellOutcome::Deadlock, "{c:?}");
        assert_eq!(
            c.finding.as_deref(),
            Some("deadlock: naive_lock in NMI at vprintk:logbuf_locked")
        );
    }
    assert_eq!(naive.cells.iter().filter(|c| c.tried).count(), 16);
    // The card says why: lockdep's NMI rule on its lock, in the flagship.
    let flagship = &card.scenarios[0];
    let run = flagship.runs.iter().find(|r| r.design == "naive").unwrap();
    assert_eq!(run.outcome, Outcome::Deadlock);
    assert_eq!(run.accounts.lost_in_deadlock, 1);
    assert!(
        run.lockdep
            .contains(&"nmi-unsafe-lock on naive_lock".to_string()),
        "{run:?}"
    );
    // The per-CPU one is NMI-safe wherever explore lands.
    let percpu = x
        .designs
        .iter()
        .find(|d| d.design.name == "percpu")
        .unwrap();
    assert_eq!(
        printk_sim::report::explore::verdict(percpu),
        "NMI-safe at all 8 points reached"
    );
    let run = flagship.runs.iter().find(|r| r.design == "percpu").unwrap();
    assert_eq!(run.outcome, Outcome::Clean);
    // NMI messages reach the log once each, whole: no empty records.
    let storm = card
        .scenarios
        .iter()
        .find(|s| s.name == "nmi-storm")
        .unwrap();
    let run = storm.runs.iter().find(|r| r.design == "percpu").unwrap();
    assert_eq!(run.outcome, Outcome::Clean);
    assert_eq!(run.accounts.internal, 0);
    let text = printk_sim::report::card::render(&card, 1000);
    assert!(
        text.contains("naive: 22 scenarios: ") && text.contains("explore nmi-in-console-unlock: deadlocks at 8 of 8: vprintk:logbuf_locked, console_unlock:logbuf_locked, prb:head_moved"),
        "{text}"
    );
}

#[test]
fn a_design_is_not_graded_under_the_name_of_another() {
    static LEGACY_AGAIN: DesignInfo = DesignInfo {
        name: "legacy",
        ..TRY_ONCE
    };
    let err = Lab::new()
        .design(&LEGACY_AGAIN)
        .scenarios(&["nmi-storm"])
        .run(&mut |_| {})
        .unwrap_err();
    assert_eq!(
        err,
        "two designs are called `legacy`: the card tells designs apart by name"
    );
}

/// A card in two shards (each writing its units to a JSON-lines file as
/// they end), merged by the grading program into the card one process
/// makes; a shard missing, or given twice, is bad input.
#[test]
fn a_card_in_shards_merges_into_the_card_of_one_process() {
    use printk_sim::grade;
    use std::process::ExitCode;
    let dir = std::env::temp_dir().join(format!("printk-sim-card-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "--without-history",
            "--scenarios",
            "nmi-storm,nmi-in-console-unlock,console-storm",
            "--explore",
            "nmi-in-console-unlock",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    let code = |c: ExitCode| format!("{c:?}");
    for k in ["1", "2"] {
        let file = path(&format!("card{k}.jsonl"));
        let shard = format!("{k}/2");
        let c = grade::run(&naive::NAIVE, args(&["--shard", &shard, "--jsonl", &file]));
        assert_eq!(code(c), code(ExitCode::SUCCESS));
    }
    let lines = |k: &str| {
        std::fs::read_to_string(path(&format!("card{k}.jsonl")))
            .unwrap()
            .lines()
            .count()
    };
    // A header each, and the four units between them.
    assert_eq!(lines("1") + lines("2"), 2 + 4);
    let json = path("card.json");
    let c = grade::run(
        &naive::NAIVE,
        [
            "merge",
            &path("card1.jsonl"),
            &path("card2.jsonl"),
            "--json",
            &json,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    assert_eq!(code(c), code(ExitCode::SUCCESS));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let scenarios: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        scenarios,
        ["nmi-storm", "nmi-in-console-unlock", "console-storm"],
        "every scenario once, in the card's order"
    );
    let explored = &v["explore"][0];
    assert_eq!(explored["scenario"], "nmi-in-console-unlock");
    assert!(
        explored["designs"][0]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("deadlocks at 8 of 8"),
        "{explored}"
    );
    // One shard alone, or one shard twice: bad input.
    for files in [vec!["card1.jsonl"], vec!["card1.jsonl", "card1.jsonl"]] {
        let mut a = vec!["merge".to_string()];
        a.extend(files.iter().map(|f| path(f)));
        assert_eq!(code(grade::run(&naive::NAIVE, a)), code(ExitCode::from(2)));
    }
}
