//! Bring your own design: the lab grades a design written here, outside
//! the simulator, exactly as it grades the examples' and the kernel's; and
//! the examples, run as a user runs them, fail where they should.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use std::path::PathBuf;
use std::process::Command;

use klog::console::Console;
use klog::lock::RawSpinLock;
use klog::printk::{
    Accounts, DesignConfig, DesignInfo, DesignKind, DropReason, External, PointUse, PrbLog, Printk,
    ReadAt,
};
use klog::record::{Level, Record, TextBuf, TEXT_MAX};
use klog::{point, Arch, Kernel, LockCore};
use printk_sim::explore::CellOutcome;
use printk_sim::lab::{Build, Lab};
use printk_sim::machine::Machine;
use printk_sim::outcome::Outcome;
use serde_json::Value;

mod common;

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

    fn accounts(&mut self) -> Accounts {
        self.log.accounts(&self.console.stats())
    }

    fn records(&mut self) -> Vec<Record> {
        self.log.records()
    }

    fn read_at(&self, arch: &A, seq: u64, text: &mut TextBuf<TEXT_MAX>) -> ReadAt {
        self.log.read_at(arch, seq, text)
    }

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.lock.core(), self.console.port_lock()]
    }

    fn console(&self) -> &Console {
        &self.console
    }

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        let mut v = self.log.drop_reasons();
        v.push((
            DropReason::NmiTrylockFailed,
            self.nmi_drops.load(Ordering::Relaxed),
        ));
        v
    }

    fn check(&mut self) -> Result<(), String> {
        self.log.ring.check()
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

/// An example's binary: cargo builds them next to the test binaries.
fn example(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("examples").join(name)
}

/// Grade an example quickly (without the six), its card as JSON.
fn grade(name: &str) -> (Value, String) {
    let json = std::env::temp_dir().join(format!(
        "printk-sim-card-{name}-{}.json",
        std::process::id()
    ));
    let out = Command::new(example(name))
        .args(["--without-history", "--json", json.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", example(name).display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (v, stdout)
}

#[test]
fn the_examples_fail_where_they_should() {
    let (naive, text) = grade("naive");
    // The naive design deadlocks at its own lock in NMI context, and
    // explore finds both windows, on both CPUs.
    let x = &naive["explore"][0]["designs"][0];
    assert_eq!(x["design"], "naive");
    for c in x["cells"].as_array().unwrap() {
        assert_eq!(c["outcome"], "deadlock", "{c}");
        assert_eq!(c["context"], "task");
        assert_eq!(
            c["finding"],
            "deadlock: naive_lock in NMI at vprintk:logbuf_locked"
        );
    }
    assert_eq!(x["cells"].as_array().unwrap().len(), 4, "2 points x 2 CPUs");
    let flagship = &naive["scenarios"][0]["runs"][0];
    assert_eq!(flagship["design"], "naive");
    assert_eq!(flagship["outcome"], "deadlock");
    assert_eq!(flagship["lost_in_deadlock"], 1);
    assert!(
        flagship["lockdep"]
            .as_array()
            .unwrap()
            .contains(&Value::from("nmi-unsafe-lock on naive_lock")),
        "the card says why: {flagship}"
    );
    assert!(naive["failures"].as_array().unwrap().is_empty(), "{naive}");
    assert!(text.contains("naive:  deadlocks at 2 of 2"), "{text}");
    // The per-CPU one is NMI-safe wherever explore lands, and its
    // accounts add up everywhere.
    let (percpu, text) = grade("percpu");
    let x = &percpu["explore"][0]["designs"][0];
    assert_eq!(x["design"], "percpu");
    assert!(
        x["verdict"]
            .as_str()
            .unwrap()
            .starts_with("NMI-safe at all 2"),
        "{x}"
    );
    assert!(percpu["failures"].as_array().unwrap().is_empty(), "{text}");
    let flagship = &percpu["scenarios"][0]["runs"][0];
    assert_eq!(flagship["outcome"], "clean");
}
