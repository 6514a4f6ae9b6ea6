//! Every shipped scenario parses, plans, and has the outcome its `[expect]`
//! table promises for every design it names; and the scenarios' own
//! particulars hold (the recursion line, the periodic NMIs).

mod common;

use common::{assert_balanced, plan, run};
use klog::{Context, Level};
use printk_sim::runner::Outcome;
use printk_sim::scenario::{Overrides, BUILTIN};

#[test]
fn every_shipped_scenario_meets_its_expectations() {
    for (name, _) in BUILTIN {
        let p = plan(name, Overrides::default());
        assert!(!p.summary.is_empty(), "{name} has no summary");
        for (design, want) in &p.expect {
            let r = run(&p, design);
            assert_balanced(&r);
            assert_eq!(r.outcome, *want, "{name}/{design}: {:#?}", r.findings);
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
    let found: Vec<(&str, &str)> = r.lockdep.iter().map(|f| (f.rule, f.lock)).collect();
    assert_eq!(
        found.first(),
        Some(&("nmi-unsafe-lock", "logbuf_lock")),
        "{:?} (outcome {:?})",
        r.lockdep,
        r.outcome
    );
    // Past logbuf_lock an NMI's printk may also have tried the console:
    // console_sem's own spinlock and port->lock, in that order.
    let console = [
        ("nmi-unsafe-lock", "(console_sem).lock"),
        ("nmi-unsafe-lock", "&port_lock_key"),
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
    assert_eq!(
        r.latency[3].count,
        2 * r.nmis.iter().sum::<u64>(),
        "two lines each"
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
