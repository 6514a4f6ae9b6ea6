//! Every shipped scenario parses, plans, and has the outcome its `[expect]`
//! table promises for every design it names; and the scenarios' own
//! particulars hold (the recursion line, the periodic NMIs).

mod common;

use common::{assert_balanced, plan, run};
use klog::lockdep::Rule;
use klog::printk::Event;
use klog::{Context, Level};
use printk_sim::report::{explain, table, verdict};
use printk_sim::runner::{Outcome, RunReport};
use printk_sim::scenario::{Overrides, BUILTIN};
use printk_sim::watchdog::FindingKind;

/// Every shipped scenario, run as `printk-sim explain` runs it (every
/// design, timelines on): each design meets the scenario's `[expect]`, the
/// default output fits 100 columns and 80, and `explain` names what the
/// table shows.
#[test]
fn every_shipped_scenario_meets_its_expectations_fits_and_is_explained() {
    for (name, _) in BUILTIN {
        let mut p = plan(name, Overrides::default());
        assert!(!p.summary.is_empty(), "{name} has no summary");
        p.timeline = true;
        let runs: Vec<RunReport> = p.designs.iter().map(|d| run(&p, d.name)).collect();
        for r in &runs {
            assert_balanced(r);
            if let Some((_, want)) = p.expect.iter().find(|(d, _)| *d == r.design) {
                assert_eq!(r.outcome, *want, "{name}/{}: {:#?}", r.design, r.findings);
            }
        }
        for width in [100, 80] {
            let table = plain(&table::render(&p, &runs, width));
            for line in table.lines() {
                assert!(
                    line.chars().count() <= width,
                    "{name} at {width}: `{line}`\n{table}"
                );
            }
            for r in &runs {
                let verdict = format!("{}:", r.design);
                let line = table.lines().find(|l| l.starts_with(&verdict)).unwrap();
                assert!(line.contains(&r.outcome.name().to_uppercase()), "{table}");
            }
        }
        let focus = runs
            .iter()
            .find(|r| !r.findings.is_empty())
            .unwrap_or(&runs[0]);
        let story = explain::explain(&p, &runs, focus.design);
        assert_explained(name, &story, focus, &runs);
    }
}

/// `s` without its colour escapes (`ESC [ ... m`).
fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        rest = rest[at..].split_once('m').map_or("", |(_, after)| after);
    }
    out + rest
}

/// `story` (explain's output) names what the table shows of `focus`, and
/// each other design's outcome and particulars.
fn assert_explained(name: &str, story: &str, focus: &RunReport, runs: &[RunReport]) {
    let has = |want: &str| {
        assert!(
            story.contains(want),
            "{name}: `{want}` missing from:\n{story}"
        );
    };
    has(&format!("{} on {name} (", focus.design));
    has(&format!("): {}\n", focus.outcome.name()));
    // Each finding told as its own sentence: who held what, who needed it.
    for f in &focus.findings {
        match f.kind {
            FindingKind::Deadlock => {
                let lock = f.lock.unwrap();
                let holder = f.holder_cpu.unwrap();
                has(&format!("CPU {holder} was in "));
                has(&format!(" and held {lock}"));
                has(&format!("CPU {} needed {lock} and spun on it", f.cpu));
            }
            FindingKind::HardLockup => {
                has(&format!("CPU {} handled no timer interrupt for ", f.cpu));
            }
            FindingKind::SoftLockup => {
                has(&format!(
                    "CPU {} made no progress in task context for ",
                    f.cpu
                ));
            }
        }
        if let (Some(lock), FindingKind::HardLockup | FindingKind::SoftLockup) = (f.lock, f.kind) {
            has(&format!(", spinning on {lock}"));
        }
    }
    for (_, n) in focus.dropped_by.iter().filter(|(_, n)| *n > 0) {
        has(&format!("\n  {n} dropped because "));
    }
    if focus.remote_traces > 0 {
        has(&format!(
            "{} of {} remote stack dumps torn",
            focus.torn_traces, focus.remote_traces
        ));
    }
    if let Some(rd) = focus.reader {
        has(&format!(
            "read {} records and missed {}",
            rd.read, rd.missed
        ));
    }
    if let Some(pn) = focus.panic {
        has(&format!("CPU {} panicked", pn.cpu));
    }
    for (what, n) in focus.events.iter().filter(|(_, n)| *n > 0) {
        match *what {
            Event::NbconHandover => has(&format!(" {n} handovers: ")),
            Event::ConsoleHandoff => has(&format!("changed hands {n} times")),
            Event::Replay => has(&format!("; {n} records cut short")),
            Event::LostOwnership => has(&format!("lost ownership {n} times")),
            Event::HostileTakeover => has(&format!(" {n} hostile takeovers")),
            Event::HandoverTimeout | Event::UnsafeTakeover => {}
        }
    }
    if focus.accounts.printed > 0 && focus.console.printed_by.iter().filter(|n| **n > 0).count() > 1
    {
        has(&format!("printed {} records", focus.accounts.printed));
    }
    for o in runs.iter().filter(|o| o.design != focus.design) {
        has(&format!("  {}: {}", o.design, o.outcome.name()));
        for p in verdict::particulars(o) {
            has(&p);
        }
    }
}

#[test]
fn every_file_in_scenarios_is_built_in() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".toml").map(String::from))
        .collect();
    files.sort();
    let mut builtin: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    builtin.sort();
    assert_eq!(files, builtin);
}

#[test]
fn an_nmi_in_vprintks_window_loses_its_message_and_says_so() {
    let p = plan("nmi-in-vprintk-window", Overrides::default());
    let r = run(&p, "legacy");
    assert_eq!(r.outcome, Outcome::Loss);
    assert!(r.findings.is_empty(), "no deadlock: {:#?}", r.findings);
    assert_eq!(r.nmis[0], 1);
    assert_eq!(r.accounts.dropped, 1, "the NMI's message");
    assert_eq!(r.accounts.internal, 1, "the recursion report");
    assert_balanced(&r);
    let bug: Vec<_> = r
        .records
        .iter()
        .filter(|rec| rec.text == "BUG: recent printk recursion!")
        .collect();
    assert_eq!(bug.len(), 1);
    assert_eq!(bug[0].level, Level::Crit);
    assert!(
        !r.records.iter().any(|rec| rec.context == Context::Nmi),
        "no NMI record reached the buffer"
    );

    let r = run(&p, "lockless");
    assert_eq!(r.outcome, Outcome::Clean);
    assert_eq!(r.nmis[0], 1);
    assert_eq!(r.accounts.attempted, r.accounts.stored);
    assert_eq!(r.accounts.internal, 0);
}

/// The rule is broken whether or not the dice deadlock a run: every legacy
/// run in which an NMI printed gets the finding, deadlock or not; lockless
/// never does.
#[test]
fn lockdep_flags_legacys_logbuf_lock_even_when_no_deadlock_happened() {
    let p = plan("nmi-storm", Overrides::default());
    let r = run(&p, "legacy");
    assert!(r.nmis.iter().sum::<u64>() > 0);
    let found: Vec<(Rule, &str)> = r.lockdep.iter().map(|f| (f.rule, f.lock)).collect();
    assert_eq!(
        found.first(),
        Some(&(Rule::NmiUnsafeLock, "logbuf_lock")),
        "{:?} (outcome {:?})",
        r.lockdep,
        r.outcome
    );
    // Past logbuf_lock an NMI's printk may also have tried the console:
    // console_sem's own spinlock and port->lock, in that order.
    let console = [
        (Rule::NmiUnsafeLock, "(console_sem).lock"),
        (Rule::NmiUnsafeLock, "&port_lock_key"),
    ];
    assert!(console.starts_with(&found[1..]), "{found:?}");
    for f in &r.lockdep {
        assert_eq!(f.example.unwrap().context, Context::Nmi, "{}", f.lock);
    }
    assert!(run(&p, "lockless").lockdep.is_empty());
}

#[test]
fn the_storm_delivers_periodic_nmis_to_every_cpu() {
    let p = plan("nmi-storm", Overrides::default());
    let r = run(&p, "lockless");
    // 300 ms at a 2 ms period: about 150 per CPU; latching may merge a few.
    for (cpu, n) in r.nmis.iter().enumerate() {
        assert!((100..=160).contains(n), "cpu{cpu} took {n} NMIs");
    }
    // Two lines each; an NMI that lands as the run ends prints what it
    // can before its handler sees the run is over (one per CPU at most,
    // and the few the sender had sent by then).
    let nmis: u64 = r.nmis.iter().sum();
    let lines = r.latency[3].count;
    assert!(
        lines <= 2 * nmis && lines + 8 >= 2 * nmis,
        "{lines} NMI lines for {nmis} NMIs"
    );
    assert_eq!(r.outcome, Outcome::Clean);
    assert_balanced(&r);
    // Records from NMI context carry the CPU as caller id.
    let nmi = r
        .records
        .iter()
        .find(|rec| rec.context == Context::Nmi)
        .unwrap();
    assert_eq!(nmi.caller.to_string(), format!("C{}", nmi.cpu));
    let task = r
        .records
        .iter()
        .find(|rec| rec.context == Context::Task)
        .unwrap();
    assert!(task.caller.to_string().starts_with('T'));
    assert!(task.text.starts_with(&format!("cpu{} task #", task.cpu)));
}

/// `stop_at` names a point some design passes, on a panic only; anything
/// else is refused with the file, line and key.
#[test]
fn stop_at_is_checked() {
    let base = |extra: &str| {
        format!(
            "name = \"s\"\ncpus = 2\nduration_ms = 50\ndesigns = [\"legacy\"]\n[[nmi]]\nkind = \"panic\"\nat_ms = 10\n{extra}\n"
        )
    };
    let err = |text: &str| {
        printk_sim::scenario::Scenario::parse("s.toml", text)
            .and_then(|s| s.plan(&Overrides::default()))
            .unwrap_err()
            .to_string()
    };
    let e = err(&base("stop_at = \"nope\""));
    assert!(
        e.contains("s.toml:8:") && e.contains("nmi[0].stop_at") && e.contains("unknown point"),
        "{e}"
    );
    let e = err(&base("stop_at = \"nbcon:unsafe\""));
    assert!(
        e.contains("no design of this scenario (legacy) passes point `nbcon:unsafe`"),
        "{e}"
    );
    let text = "name = \"s\"\ncpus = 2\nduration_ms = 50\n[[nmi]]\nkind = \"periodic\"\nperiod_us = 100\nstop_at = \"up:sem_locked\"\n";
    let e = err(text);
    assert!(
        e.contains("nmi[0].stop_at") && e.contains("applies to a panic only"),
        "{e}"
    );
    let ok =
        printk_sim::scenario::Scenario::parse("s.toml", &base("stop_at = \"serial:port_locked\""))
            .and_then(|s| s.plan(&Overrides::default()));
    assert!(ok.is_ok());
}

/// Every key an `[[nmi]]`/`[[irq]]` entry gives must be one its kind or its
/// action takes: none is silently ignored.
#[test]
fn a_key_the_kind_or_action_does_not_take_is_an_error() {
    let err = |source: &str| {
        let text = format!(
            "name = \"s\"\ncpus = 2\nduration_ms = 50\ndesigns = [\"legacy\"]\n[[nmi]]\n{source}\n"
        );
        printk_sim::scenario::Scenario::parse("s.toml", &text)
            .and_then(|s| s.plan(&Overrides::default()))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    for (source, line, key, says) in [
        (
            "kind = \"panic\"\nat_ms = 10\nlines = 3",
            8,
            "nmi[0].lines",
            "does not apply to kind `panic` with action `panic` (they take: at_ms, cpu, stop_at)",
        ),
        (
            "kind = \"periodic\"\nperiod_us = 100\naction = \"warn\"\nlen = [1, 2]",
            9,
            "nmi[0].len",
            "does not apply to kind `periodic` with action `warn`",
        ),
        (
            "kind = \"backtrace_all\"\nat_ms = 10\ntimes = 2",
            8,
            "nmi[0].times",
            "does not apply to kind `backtrace_all`",
        ),
        (
            "kind = \"rcu_stall\"\nat_ms = 10\ncpu = 1",
            8,
            "nmi[0].cpu",
            "kind `rcu_stall` goes to every other CPU; say who asks with `from_cpu`",
        ),
        (
            "kind = \"panic\"\nat_ms = 10\ncpu = \"all\"",
            8,
            "nmi[0].cpu",
            "expected one CPU index: one CPU panics",
        ),
        (
            "kind = \"backtrace_all\"\nat_ms = 10\nland_at = \"nbcon:unsafe\"",
            8,
            "nmi[0].land_at",
            "no design of this scenario (legacy) passes point `nbcon:unsafe`",
        ),
        (
            "kind = \"sometimes\"",
            6,
            "nmi[0].kind",
            "unknown kind `sometimes`, expected at_point, periodic, random, backtrace_all, rcu_stall, panic",
        ),
    ] {
        let e = err(source);
        assert!(e.contains(&format!("s.toml:{line}:")), "{source}: {e}");
        assert!(e.contains(&format!("`{key}`: {says}")), "{source}: {e}");
    }
}
