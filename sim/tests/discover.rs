//! Discovery end to end: `explore` finds exactly the windows the kernel's
//! history knows, and `reduce` turns seeds that failed into scenarios that
//! fail every time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

use printk_sim::scenario::Overrides;
use serde_json::Value;

mod common;

/// One simulator process at a time (see cli.rs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn sim(args: &[&str]) -> Output {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    Command::new(env!("CARGO_BIN_EXE_printk-sim"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("printk-sim-discover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `explore` with `args`, its JSON report parsed; exit status 0.
fn explore(args: &[&str], json_name: &str) -> (Value, String) {
    let json = tmp(json_name);
    let mut all = vec!["explore"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let out = sim(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (v, text(&out.stdout))
}

fn design<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["designs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["design"] == name)
        .unwrap_or_else(|| panic!("no design {name}"))
}

/// Per point, the outcomes of its cells on CPU 0 and CPU 1 (task
/// context, or the printer's).
fn outcomes(d: &Value) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in d["cells"].as_array().unwrap() {
        m.entry(c["point"].as_str().unwrap().to_string())
            .or_default()
            .push(format!(
                "cpu{} {}",
                c["cpu"],
                c["outcome"].as_str().unwrap()
            ));
    }
    m
}

#[test]
fn explore_on_the_flagship_finds_exactly_the_known_windows() {
    let svg = tmp("flagship.svg");
    let (v, stdout) = explore(
        &["nmi-in-console-unlock", "--svg", svg.to_str().unwrap()],
        "flagship.json",
    );
    assert_eq!(v["scenario"], "nmi-in-console-unlock");
    assert_eq!(v["cpus"], serde_json::json!([0, 1]));
    // legacy: the NMI's printk spins on logbuf_lock wherever its CPU holds
    // it without logbuf_cpu set (vprintk's sliver, the console copy), and
    // on console_sem's own spinlock where down_trylock()/up() hold it;
    // inside vprintk's locked window the recursion check drops it instead.
    let legacy = design(&v, "legacy");
    let both = |o: &str| vec![format!("cpu0 {o}"), format!("cpu1 {o}")];
    let want: BTreeMap<String, Vec<String>> = [
        ("vprintk:lock_acquired", both("deadlock")),
        ("vprintk:logbuf_locked", both("loss")),
        ("console_unlock:logbuf_locked", both("deadlock")),
        ("console_unlock:write", both("clean")),
        ("down_trylock:sem_locked", both("deadlock")),
        ("up:sem_locked", both("deadlock")),
        ("serial:port_locked", both("clean")),
    ]
    .into_iter()
    .map(|(p, o)| (p.to_string(), o))
    .collect();
    assert_eq!(outcomes(legacy), want);
    for c in legacy["cells"].as_array().unwrap() {
        assert_eq!(c["context"], "task", "{c}");
        match c["point"].as_str().unwrap() {
            "console_unlock:logbuf_locked" => assert_eq!(
                c["finding"],
                "deadlock: logbuf_lock in NMI at console_unlock:logbuf_locked"
            ),
            "vprintk:logbuf_locked" => {
                assert!(c["finding"].is_null(), "{c}");
                assert_eq!(c["loss"], "recursion 1", "{c}");
            }
            "up:sem_locked" | "down_trylock:sem_locked" => {
                assert_eq!(c["finding"], "deadlock: (console_sem).lock in NMI")
            }
            _ => {}
        }
    }
    assert_eq!(
        (legacy["listed"].as_u64(), legacy["reached"].as_u64()),
        (Some(7), Some(7))
    );
    // trylock: its one trylock fails wherever logbuf_lock is held.
    let trylock = outcomes(design(&v, "trylock"));
    for (p, o) in &trylock {
        let lost = matches!(
            p.as_str(),
            "vprintk:lock_acquired" | "vprintk:logbuf_locked" | "console_unlock:logbuf_locked"
        );
        assert_eq!(
            o,
            &both(if lost { "loss" } else { "clean" }),
            "trylock at {p}"
        );
    }
    // The rest never fail, wherever the NMI lands.
    for name in ["nmi_buffers", "legacy_handoff", "lockless", "nbcon"] {
        let d = design(&v, name);
        for c in d["cells"].as_array().unwrap() {
            assert!(
                c["outcome"] == "clean" || c["outcome"] == "not reached",
                "{name}: {c}"
            );
        }
        assert!(
            d["verdict"]
                .as_str()
                .unwrap()
                .starts_with("NMI-safe at all"),
            "{name}: {}",
            d["verdict"]
        );
    }
    // Coverage: the catalogue's count, and the points no cell reached are
    // exactly those said never reached.
    for d in v["designs"].as_array().unwrap() {
        let info = klog::printk::design(d["design"].as_str().unwrap()).unwrap();
        assert_eq!(
            d["listed"].as_u64(),
            Some(info.points().count() as u64),
            "{d}"
        );
        let never: Vec<&str> = d["never_reached"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let unreached: Vec<&str> = info
            .points()
            .map(|u| u.point.name)
            .filter(|p| {
                d["cells"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["point"] == *p)
                    .all(|c| c["outcome"] == "not reached")
            })
            .collect();
        assert_eq!(never, unreached, "{}", d["design"]);
        assert_eq!(
            d["reached"].as_u64().unwrap() + never.len() as u64,
            d["listed"].as_u64().unwrap()
        );
    }
    // nbcon's CPUs never print to the console: its console points are
    // reached by the printer thread, with the NMI on each CPU meanwhile.
    let nbcon = design(&v, "nbcon");
    assert!(nbcon["cells"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| { c["point"] == "nbcon:unsafe" && c["context"] == "printer" && c["cpu"] == 1 }));
    // The heat map: a square per row and CPU, its title saying what it
    // is; legacy's console copy window is a deadlock on both CPUs.
    let svg = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let squares: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter_map(|n| n.children().find(|c| c.has_tag_name("title")))
        .filter_map(|t| t.text().map(str::to_string))
        .collect();
    let rows: usize = ["legacy", "trylock", "nmi_buffers", "legacy_handoff"]
        .iter()
        .map(|_| 7)
        .sum::<usize>()
        + 12
        + 11;
    assert_eq!(squares.len(), rows * 2, "{squares:?}");
    for cpu in 0..2 {
        let want = format!("legacy: deadlock at console_unlock:logbuf_locked (task) on cpu{cpu}");
        assert!(squares.contains(&want), "{want}: {squares:?}");
    }
    // The table: a verdict per design, then the matrices.
    assert!(
        stdout.contains("legacy:          deadlocks at 4 of 7: vprintk:lock_acquired,"),
        "{stdout}"
    );
    assert!(
        stdout.contains("coverage: 7 of 7 points reached"),
        "{stdout}"
    );
}

/// The pairs that fail worse than either NMI alone, by finding.
fn worse_pairs(d: &Value) -> Vec<(String, Value)> {
    d["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["worse_than_alone"] == true)
        .map(|p| (p["finding"].as_str().unwrap_or("").to_string(), p.clone()))
        .collect()
}

#[test]
fn depth_two_finds_the_backtrace_abba_pair_only_with_the_backtrace_lock() {
    // Before 4.19 nmi_cpu_backtrace() serialised the CPUs' dumps with a
    // private lock: two NMIs in flight, one CPU holding logbuf_lock, and
    // each NMI holds what the other waits for.
    let args = [
        "backtrace-abba",
        "--design",
        "legacy",
        "--action",
        "backtrace",
        "--cpu",
        "0",
        "--cpu",
        "1",
        "--depth",
        "2",
    ];
    let mut serialized = args.to_vec();
    serialized.push("--serialize");
    let (v, stdout) = explore(&serialized, "abba.json");
    let legacy = design(&v, "legacy");
    assert_eq!(
        legacy["pairs_total"],
        14 * 13,
        "7 points x 2 CPUs, ordered pairs"
    );
    assert_eq!(legacy["pairs_tried"], 14 * 13);
    let worse = worse_pairs(legacy);
    let abba: Vec<&Value> = worse
        .iter()
        .filter(|(t, _)| t == "deadlock: logbuf_lock and nmi_backtrace_lock in NMI")
        .map(|(_, p)| p)
        .collect();
    assert!(!abba.is_empty(), "{stdout}");
    for p in &abba {
        assert_ne!(p["first"]["cpu"], p["second"]["cpu"], "{p}");
        assert_eq!(p["outcome"], "deadlock");
    }
    // The pair where the second CPU is in vprintk's sliver with
    // logbuf_lock and the first holds the console: the classic one.
    assert!(abba.iter().any(|p| {
        p["first"]["point"] == "console_unlock:write"
            && p["second"]["point"] == "vprintk:lock_acquired"
    }));
    assert!(stdout.contains("pairs: all 182 tried"), "{stdout}");
    // From 4.19 on (no private lock) no pair finds anything a single NMI
    // does not: a sample of 30 pairs says so, and says what it covers.
    let mut sampled = args.to_vec();
    sampled.extend_from_slice(&["--budget", "30"]);
    let (v, stdout) = explore(&sampled, "sample.json");
    let legacy = design(&v, "legacy");
    assert_eq!(legacy["pairs_tried"], 30);
    assert_eq!(legacy["pairs_total"], 182);
    assert!(worse_pairs(legacy).is_empty(), "{stdout}");
    for p in legacy["pairs"].as_array().unwrap() {
        assert!(
            !p["finding"]
                .as_str()
                .unwrap_or("")
                .contains("nmi_backtrace_lock"),
            "{p}"
        );
    }
    assert!(
        stdout.contains("pairs: 30 of 182 tried (a sample seeded with 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("16% for k = 1"), "{stdout}");
}

#[test]
fn explore_rejects_bad_options_before_running() {
    for (args, key) in [
        (
            vec!["explore", "nmi-in-console-unlock", "--cpu", "2"],
            "--cpu",
        ),
        (
            vec!["explore", "nmi-in-console-unlock", "--serialize"],
            "--serialize",
        ),
        (
            vec!["explore", "nmi-in-console-unlock", "--depth", "3"],
            "--depth",
        ),
        (
            vec!["explore", "nmi-in-console-unlock", "--design", "nope"],
            "--design",
        ),
        (vec!["explore", "no-such-scenario"], "no-such-scenario"),
    ] {
        let out = sim(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(key),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// The first finding of `design` on `name` with `seed`.
fn first_finding(name: &str, design: &str, seed: u64) -> Option<String> {
    let plan = common::plan(
        name,
        Overrides {
            designs: vec![design.into()],
            seed: Some(seed),
            ..Overrides::default()
        },
    );
    common::run(&plan, design)
        .findings
        .first()
        .map(|f| f.title())
}

#[test]
fn reduce_turns_deadlocking_seeds_into_small_scenarios_that_fail_every_time() {
    let mut reduced = 0;
    for seed in 1..=40u64 {
        if reduced == 5 {
            break;
        }
        // A seed whose first finding is a deadlock (the NMIs are random:
        // about half the seeds are).
        let Some(title) = first_finding("random-nmi-storm", "legacy", seed) else {
            continue;
        };
        if !title.starts_with("deadlock:") {
            continue;
        }
        let file = tmp(&format!("reduced-{seed}.toml"));
        let seed_s = seed.to_string();
        let out = sim(&[
            "reduce",
            "random-nmi-storm",
            "--design",
            "legacy",
            "--seed",
            &seed_s,
            "-o",
            file.to_str().unwrap(),
        ]);
        let stderr = text(&out.stderr);
        // Its own run of the seed may come out otherwise (the NMIs land
        // where the host's timing puts them): then it is not a deadlock
        // to reduce.
        if !stderr.contains("reduced: deadlock:")
            && !stderr.contains("the best candidate reproduces deadlock")
        {
            assert!(
                out.status.code() == Some(1) || !stderr.contains("deadlock"),
                "seed {seed}: {stderr}"
            );
            continue;
        }
        assert_eq!(out.status.code(), Some(0), "seed {seed}: {stderr}");
        let toml = std::fs::read_to_string(&file).unwrap();
        assert_eq!(toml, text(&out.stdout), "the file is what was printed");
        let finding = stderr
            .trim()
            .strip_prefix("reduced: ")
            .and_then(|s| s.split(" reproduces in ").next())
            .unwrap()
            .to_string();
        assert!(
            toml.contains(&format!("# The finding: {finding}\n")),
            "{toml}"
        );
        // Small: one NMI source, placed; the fewest CPUs (one: the NMI
        // lands on the CPU that holds the lock); no other source.
        let doc: toml::Table = toml::from_str(&toml).unwrap();
        assert_eq!(doc["cpus"].as_integer(), Some(1), "{toml}");
        let nmis = doc["nmi"].as_array().unwrap();
        assert_eq!(nmis.len(), 1, "{toml}");
        assert_eq!(nmis[0]["kind"].as_str(), Some("at_point"), "{toml}");
        assert_eq!(nmis[0]["context"].as_str(), Some("task"), "{toml}");
        assert!(doc.get("irq").is_none());
        assert!(doc["duration_ms"].as_integer().unwrap() < 300, "{toml}");
        // 20 of 20, here, on seeds of our own.
        let plan = common::plan(file.to_str().unwrap(), Overrides::default());
        for s in 100..120 {
            let r = common::run_seed(&plan, "legacy", s);
            assert!(
                r.findings.iter().any(|f| f.title() == finding),
                "{} seed {s}: {:?}",
                file.display(),
                r.findings.iter().map(|f| f.title()).collect::<Vec<_>>()
            );
        }
        // explain tells it.
        let out = sim(&["explain", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0));
        assert!(
            text(&out.stdout).contains("That wait could never end"),
            "{}",
            text(&out.stdout)
        );
        reduced += 1;
    }
    assert_eq!(
        reduced, 5,
        "five deadlocking seeds reduced among seeds 1..=40"
    );
}

#[test]
fn reduce_says_when_there_is_nothing_to_reduce_and_rejects_bad_input() {
    // lockless never deadlocks on random-nmi-storm.
    let out = sim(&[
        "reduce",
        "random-nmi-storm",
        "--design",
        "lockless",
        "--seed",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "seed 1 of random-nmi-storm on lockless ends clean with no finding: nothing to reduce"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = sim(&[
        "reduce",
        "random-nmi-storm",
        "--design",
        "nope",
        "--seed",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`--design`: unknown design `nope`"));
    let out = sim(&["reduce", "random-nmi-storm", "--design", "legacy"]);
    assert_eq!(out.status.code(), Some(2), "--seed is required");
}

#[test]
fn repeat_groups_findings_by_title() {
    let out = sim(&[
        "run",
        "nmi-in-console-unlock",
        "--design",
        "legacy",
        "--design",
        "lockless",
        "--repeat",
        "3",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("distinct findings: 1 "), "{stdout}");
    assert!(
        stdout.contains(
            "  legacy  3/3  deadlock: logbuf_lock in NMI at console_unlock:logbuf_locked (seed 1)"
        ),
        "{stdout}"
    );
}
