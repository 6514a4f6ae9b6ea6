//! The command line end to end: the binary, its output, its exit statuses.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_printk-sim"))
}

/// One simulator process at a time: parallel processes would put more CPU
/// threads than cores on the machine, and a writer the OS preempts for a
/// whole lap of the lockless ring really does lose its reservation.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn output(cmd: &mut Command) -> Output {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    cmd.output().unwrap()
}

fn sim(args: &[&str]) -> Output {
    output(bin().args(args))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const GOOD: &str = r#"name = "t"
summary = "a test"
cpus = 2
duration_ms = 50

[watchdog]
threshold_ms = 20

[[task]]
cpus = "all"
printk_hz = 1000

[[nmi]]
kind = "at_point"
point = "console_unlock:logbuf_locked"
cpu = 1
"#;

fn scenario_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("printk-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn flagship_json_names_the_deadlock() {
    let out = sim(&["run", "nmi-in-console-unlock", "--json", "-"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scenario"], "nmi-in-console-unlock");
    assert_eq!(v["cpus"], 2);
    let runs = v["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["design"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "legacy",
            "trylock",
            "nmi_buffers",
            "legacy_handoff",
            "lockless",
            "nbcon"
        ]
    );
    let legacy = &runs[0];
    assert_eq!(legacy["outcome"], "deadlock");
    let f = &legacy["findings"][0];
    assert_eq!(f["kind"], "deadlock");
    assert_eq!(f["cpu"], 0);
    assert_eq!(f["context"], "nmi");
    assert_eq!(f["lock"], "logbuf_lock");
    assert_eq!(f["holder_cpu"], 0);
    assert_eq!(f["holder_context"], "task");
    assert_eq!(f["point"], "console_unlock:logbuf_locked");
    assert_eq!(
        f["cycle"],
        serde_json::json!(["cpu0/nmi", "logbuf_lock", "cpu0/task"])
    );
    let after = f["detected_after_ms"].as_f64().unwrap();
    assert!((100.0..=200.0).contains(&after), "{after}");
    let outcomes: Vec<&str> = runs
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["deadlock", "loss", "clean", "clean", "clean", "clean"]
    );
    assert_eq!(runs[1]["dropped_by"]["nmi_trylock_failed"], 1);
    let lockless = &runs[4];
    for r in runs {
        let m = &r["messages"];
        let n = |k: &str| m[k].as_u64().unwrap();
        assert_eq!(
            n("attempted"),
            n("stored") + n("dropped") + n("lost_in_deadlock")
        );
        assert_eq!(n("stored"), n("readable") + n("overwritten"));
    }
    assert_eq!(lockless["messages"]["lost_in_deadlock"], 0);
    assert_eq!(lockless["messages"]["dropped"], 0);
    // The splat went to stderr.
    let err = text(&out.stderr);
    assert!(
        err.contains("cpu0/nmi -> logbuf_lock -> cpu0/task"),
        "{err}"
    );
}

/// Every line of `out` within `width` characters.
fn assert_fits(out: &str, width: usize) {
    for line in out.lines() {
        assert!(
            line.chars().count() <= width,
            "{} > {width} columns: `{line}`\n{out}",
            line.chars().count()
        );
    }
}

#[test]
fn bare_command_runs_the_flagship_side_by_side() {
    let out = output(bin().env_remove("COLUMNS").env_remove("NO_COLOR"));
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    // Verdicts first, in the order of the designs.
    let verdicts: Vec<&str> = table.lines().skip(3).take(6).collect();
    // The hand-off designs also count their console hand-offs, which vary.
    let want = [
        "legacy:         DEADLOCK, cpu0/nmi on logbuf_lock, 1 message lost",
        "trylock:        LOSS, 1 dropped (nmi_trylock_failed 1)",
        "nmi_buffers:    CLEAN, nothing lost",
        "legacy_handoff: CLEAN, nothing lost",
        "lockless:       CLEAN, nothing lost",
        "nbcon:          CLEAN, nothing lost",
    ];
    for (got, want) in verdicts.iter().zip(want) {
        assert!(
            *got == want || got.starts_with(&format!("{want}, console handovers ")),
            "{got}\n{table}"
        );
    }
    let head = table.lines().find(|l| l.starts_with("design")).unwrap();
    for col in [
        "outcome",
        "attempted",
        "dropped",
        "lost",
        "printed",
        "nmi p99",
    ] {
        assert!(head.contains(col), "{col} missing: {table}");
    }
    assert!(
        table.contains("  legacy:         deadlock cpu0/nmi on logbuf_lock (behind it: cpu1)\n")
    );
    assert!(table.contains("reproduce: printk-sim run nmi-in-console-unlock --seed 1\n"));
    // Not a terminal: 100 columns, no colour.
    assert_fits(&table, 100);
    assert!(!table.contains('\x1b'), "{table}");
}

#[test]
fn output_fits_80_columns_and_wide_has_every_row() {
    let args = ["run", "nmi-in-console-unlock", "--duration-ms", "150", "-q"];
    let out = output(bin().args(args).env("COLUMNS", "80"));
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    assert_fits(&table, 80);
    assert!(table.contains("not shown at 80 columns: "), "{table}");
    assert!(out.stderr.is_empty(), "--quiet: {}", text(&out.stderr));

    let out = output(bin().args(args).arg("--wide").env("COLUMNS", "80"));
    let wide = text(&out.stdout);
    for row in [
        "console printed by",
        "lockdep findings",
        "latency nmi p50/p99",
        "readable",
    ] {
        assert!(wide.lines().any(|l| l.starts_with(row)), "{row}: {wide}");
    }
    let outcome = wide.lines().find(|l| l.starts_with("outcome")).unwrap();
    assert!(
        outcome.contains("DEADLOCK") && outcome.contains("CLEAN"),
        "{wide}"
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let args = [
        "run",
        "nmi-in-console-unlock",
        "--design",
        "legacy",
        "--duration-ms",
        "150",
        "-q",
    ];
    let coloured = |extra: &[&str], no_color: bool| {
        let mut cmd = bin();
        cmd.args(args).args(extra);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = output(&mut cmd);
        assert_eq!(out.status.code(), Some(0));
        text(&out.stdout)
    };
    let always = coloured(&["--color", "always"], false);
    assert!(
        always.contains("\x1b[1m\x1b[31mDEADLOCK\x1b[0m"),
        "{always:?}"
    );
    for (extra, no_color) in [
        (&[][..], false),
        (&["--color", "auto"][..], true),
        (&["--color", "never"][..], false),
    ] {
        let plain = coloured(extra, no_color);
        assert!(
            !plain.contains('\x1b'),
            "{extra:?} NO_COLOR={no_color}: {plain:?}"
        );
        assert!(plain.contains("DEADLOCK"));
    }
    // On a terminal (a pty, by util-linux `script`): colour unless NO_COLOR.
    let on_a_terminal = |no_color: bool| {
        let line = format!("{} {}", env!("CARGO_BIN_EXE_printk-sim"), args.join(" "));
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = output(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let tty = on_a_terminal(false);
    assert!(tty.contains("\x1b[1m\x1b[31mDEADLOCK\x1b[0m"), "{tty:?}");
    let tty = on_a_terminal(true);
    assert!(tty.contains("DEADLOCK") && !tty.contains('\x1b'), "{tty:?}");
    let out = sim(&["run", "nmi-in-console-unlock", "--color", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("sometimes"));
}

#[test]
fn a_failed_expectation_exits_3() {
    let out = sim(&[
        "run",
        "nmi-in-console-unlock",
        "--design",
        "legacy",
        "--duration-ms",
        "150",
        "--expect",
        "legacy=clean",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("legacy: expected clean, got deadlock"));
    // The scenario's own [expect] holds: exit 0.
    let out = sim(&["run", "nmi-in-console-unlock", "--duration-ms", "150"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn list_and_check() {
    let out = sim(&["list", "--points"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    for needle in [
        "nmi-in-console-unlock",
        "nmi-in-vprintk-window",
        "nmi-storm",
        "legacy",
        "lockless",
        "console_unlock:logbuf_locked",
        "vprintk:logbuf_locked",
        "prb:reserved",
    ] {
        assert!(s.contains(needle), "{needle} missing from:\n{s}");
    }
    let good = scenario_file("good.toml", GOOD);
    let out = sim(&[
        "check",
        "nmi-in-console-unlock",
        "nmi-in-vprintk-window",
        "nmi-storm",
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A bad scenario: exit 2, a message naming file, line, column and key, and
/// nothing run (no table, no splat).
fn rejected(name: &str, body: &str, line: usize, key: &str, says: &str) {
    let path = scenario_file(name, body);
    let p = path.to_str().unwrap();
    for cmd in ["run", "check"] {
        let out = sim(&[cmd, p]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd} {name}: {err}");
        assert!(
            out.stdout.is_empty() || cmd == "check",
            "{cmd} {name} ran: {}",
            text(&out.stdout)
        );
        let want = format!("{p}:{line}:");
        assert!(err.contains(&want), "{name}: `{want}` not in {err}");
        assert!(
            err.contains(&format!("`{key}`")),
            "{name}: key `{key}` not in {err}"
        );
        assert!(err.contains(says), "{name}: `{says}` not in {err}");
        assert!(
            !err.contains("DEADLOCK") && !err.contains("WARNING"),
            "{err}"
        );
    }
}

#[test]
fn bad_scenarios_exit_2_naming_file_line_and_key() {
    rejected(
        "unknown-key.toml",
        &GOOD.replace("cpus = 2\n", "cpus = 2\ncolour = \"red\"\n"),
        4,
        "colour",
        "unknown field",
    );
    rejected(
        "unknown-nested-key.toml",
        &GOOD.replace("threshold_ms = 20", "threshold_ms = 20\nbark = true"),
        8,
        "watchdog.bark",
        "unknown field",
    );
    rejected(
        "wrong-type.toml",
        &GOOD.replace("cpus = 2\n", "cpus = \"two\"\n"),
        3,
        "cpus",
        "invalid type",
    );
    rejected(
        "zero-cpus.toml",
        &GOOD.replace("cpus = 2\n", "cpus = 0\n"),
        3,
        "cpus",
        "must be from 1 to 64, got 0",
    );
    rejected(
        "cpu-out-of-range.toml",
        &GOOD.replace("cpu = 1\n", "cpu = 5\n"),
        16,
        "nmi[0].cpu",
        "CPU 5 is out of range: the machine has 2 CPU(s)",
    );
    rejected(
        "task-cpus-out-of-range.toml",
        &GOOD.replace("cpus = \"all\"", "cpus = \"0-3\""),
        10,
        "task[0].cpus",
        "CPU 3 is out of range",
    );
    rejected(
        "unknown-point.toml",
        &GOOD.replace("console_unlock:logbuf_locked", "console_unlock:nowhere"),
        15,
        "nmi[0].point",
        "unknown point `console_unlock:nowhere`",
    );
    rejected(
        "unknown-design.toml",
        &GOOD.replace(
            "duration_ms = 50\n",
            "duration_ms = 50\ndesigns = [\"legacy\", \"fancy\"]\n",
        ),
        5,
        "designs",
        "unknown design `fancy`",
    );
    rejected(
        "buffer-not-power-of-two.toml",
        &format!("{GOOD}\n[buffer]\nsize = 100000\n"),
        19,
        "buffer.size",
        "power of two",
    );
    rejected(
        "point-in-no-design.toml",
        &GOOD
            .replace(
                "duration_ms = 50\n",
                "duration_ms = 50\ndesigns = [\"lockless\"]\n",
            )
            .replace("console_unlock:logbuf_locked", "vprintk:lock_acquired"),
        16,
        "nmi[0].point",
        "no design of this scenario (lockless) passes point `vprintk:lock_acquired`",
    );
    rejected(
        "key-for-another-kind.toml",
        &GOOD.replace("cpu = 1\n", "cpu = 1\nperiod_us = 100\n"),
        17,
        "nmi[0].period_us",
        "does not apply to kind `at_point`",
    );
    rejected(
        "syntax.toml",
        &GOOD.replace("cpus = 2\n", "cpus = = 2\n"),
        3,
        "cpus",
        "",
    );
}

#[test]
fn missing_files_and_bad_options_exit_2() {
    let out = sim(&["run", "/nonexistent/scenario.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("/nonexistent/scenario.toml") && err.contains("no such file"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let out = sim(&["run", "nmi-storm", "--design", "fancy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`--design`: unknown design `fancy`"));

    let good = scenario_file("good-for-cpus.toml", GOOD);
    let good = good.to_str().unwrap();
    let out = sim(&["run", good, "--cpus", "1"]);
    assert_eq!(out.status.code(), Some(2), "the NMI's CPU 1 needs two CPUs");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{good}:16:")), "{err}");
    assert!(err.contains("(set by --cpus)"), "{err}");

    let out = sim(&["run", "nmi-storm", "--expect", "legacy=fine"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown outcome `fine`"));

    let out = sim(&["run", "nmi-storm", "--json", "/nonexistent/dir/out.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());

    let out = sim(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Wait for `child` up to `limit`; kill it (and fail) if it is still there.
fn wait_for(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn interrupt(child: &std::process::Child) {
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
}

#[test]
fn ctrl_c_stops_the_run_reports_it_and_exits_130() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let json = std::env::temp_dir().join(format!("printk-sim-int-{}.json", std::process::id()));
    let mut child = bin()
        .args(["run", "nmi-storm", "--duration-ms", "30000", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    let t0 = std::time::Instant::now();
    interrupt(&child);
    let status = wait_for(&mut child, std::time::Duration::from_secs(5));
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    let out = child.wait_with_output().unwrap();
    let table = text(&out.stdout);
    assert!(table.contains("interrupted by Ctrl-C"), "{table}");
    assert!(table.contains("interrupted: 1 of 2 runs"), "{table}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["runs"][0]["interrupted"], true);
    assert_eq!(
        v["runs"].as_array().unwrap().len(),
        1,
        "no run after the interrupted one"
    );
    let m = &v["runs"][0]["messages"];
    let n = |k: &str| m[k].as_u64().unwrap();
    assert_eq!(
        n("attempted"),
        n("stored") + n("dropped") + n("lost_in_deadlock")
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = bin()
        .args(["run", "nmi-storm", "--duration-ms", "30000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    interrupt(&child);
    interrupt(&child);
    let status = wait_for(&mut child, std::time::Duration::from_secs(5));
    assert_eq!(status.code(), Some(130));
}

#[test]
fn explain_tells_the_flagship_and_how_lockless_avoided_it() {
    // Wide enough that no sentence is wrapped.
    let out = output(
        bin()
            .args(["explain", "nmi-in-console-unlock", "--design", "legacy"])
            .env("COLUMNS", "1000"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "legacy on nmi-in-console-unlock (2 CPUs, 300 ms, seed 1): deadlock",
        "CPU 0 was in task context and held logbuf_lock, taken at the point console_unlock:logbuf_locked.",
        "an NMI handler began on CPU 0",
        "In an NMI handler CPU 0 needed logbuf_lock and spun on it",
        "cpu0/nmi waits for logbuf_lock, held by cpu0/task;",
        "cpu0/task cannot run again until cpu0/nmi, which interrupted it, returns.",
        "inconsistent {INITIAL USE} -> {IN-NMI} usage.",
        "  lockless: clean: its NMI printk returned in at most ",
        "nothing in NMI context waited for logbuf_lock",
        "  trylock: loss:",
        "the NMI's one trylock of logbuf_lock failed",
        "  nbcon: clean: no CPU ever printed to the console",
    ] {
        assert!(s.contains(want), "missing {want:?} in:\n{s}");
    }
    let out = sim(&["explain", "nmi-in-console-unlock", "--design", "fancy"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bench_measures_every_design_side_by_side_and_writes_the_json() {
    let path = std::env::temp_dir().join(format!("printk-sim-bench-{}.json", std::process::id()));
    let out = sim(&[
        "bench",
        "--design",
        "legacy",
        "--design",
        "lockless",
        "--cpus",
        "1,2",
        "--json",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains("floor (clock read + fetch_add + 64-byte copy)"),
        "{table}"
    );
    assert!(table.contains("machine: "));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(v["machine"]["cpu"].is_string());
    assert!(v["machine"]["host_cpus"].as_u64().unwrap() >= 1);
    let floor = v["floor_ns"].as_f64().unwrap();
    assert!(floor > 0.0);
    // The ring alone, next to its own floor, in the same run.
    let (ring, ring_floor) = (
        v["ring"]["record_ns"].as_f64().unwrap(),
        v["ring"]["floor_ns"].as_f64().unwrap(),
    );
    assert!(ring > ring_floor && ring_floor > 0.0, "{}", v["ring"]);
    assert!(
        table.contains(&format!(
            "the ring alone, one writer (reserve + 64 bytes + final commit): {ring:.1} ns/record, {:.1}x its floor",
            ring / ring_floor
        )),
        "{table}"
    );
    let designs = v["designs"].as_array().unwrap();
    let names: Vec<&str> = designs
        .iter()
        .map(|d| d["design"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["legacy", "lockless"]);
    for d in designs {
        let record = d["record_ns"].as_f64().unwrap();
        assert!(record > floor, "{d}");
        assert!(d["record_fmt_ns"].as_f64().unwrap() > 0.0);
        for n in ["1", "2"] {
            assert!(d["throughput"][n].as_f64().unwrap() > 0.0, "{d}");
        }
        for key in ["nmi_latency_ns", "storm_latency_ns"] {
            let l = &d[key];
            let (p50, p99, max) = (
                l["p50"].as_u64().unwrap(),
                l["p99"].as_u64().unwrap(),
                l["max"].as_u64().unwrap(),
            );
            assert!(p50 > 0 && p50 <= p99 && p99 <= max, "{key}: {l}");
        }
        let share: f64 = d["storm_print_share"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .sum();
        assert!((share - 1.0).abs() < 1e-6, "{d}");
    }
    // The console storm pins legacy on one CPU.
    let top = designs[0]["storm_print_share"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(top > 0.9, "{top}");
    let _ = std::fs::remove_file(&path);
    assert_eq!(sim(&["bench", "--design", "fancy"]).status.code(), Some(2));
    assert_eq!(sim(&["bench", "--cpus", "0"]).status.code(), Some(2));
}

/// An output path that is a directory, or in a directory that does not
/// exist, is bad input: exit 2 naming the option, nothing runs, nothing is
/// written next to it.
#[test]
fn output_paths_must_be_files_in_existing_directories() {
    let dir = std::env::temp_dir().join(format!("printk-sim-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    for (opt, path) in [
        ("--log", d.to_string()),
        ("--kmsg", format!("{d}/")),
        ("--svg", d.to_string()),
        ("--trace", d.to_string()),
        ("--json", d.to_string()),
        ("--log", format!("{d}/missing/x.log")),
        ("--json", format!("{d}/missing/x.json")),
    ] {
        let o = sim(&["run", "nmi-storm", "--duration-ms", "20", opt, &path]);
        assert_eq!(o.status.code(), Some(2), "{opt} {path}");
        let err = text(&o.stderr);
        assert!(err.contains(opt), "{err}");
        assert!(err.contains("directory"), "{err}");
        assert!(o.stdout.is_empty(), "nothing ran");
    }
    // Nothing was written beside the directory.
    let parent = dir.parent().unwrap();
    let name = dir.file_name().unwrap().to_str().unwrap();
    let stray = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&format!("{name}.")))
        });
    assert!(!stray);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Completion scripts and the manual page come from the clap definition:
/// the bash script parses in bash and completes every subcommand, the man
/// page is roff naming them, and an unknown shell is bad input.
#[test]
fn completions_and_man_page() {
    let o = sim(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    let script = text(&o.stdout);
    for sub in [
        "run",
        "explain",
        "list",
        "bench",
        "check",
        "completions",
        "man",
    ] {
        assert!(script.contains(sub), "{sub}");
    }
    let path = std::env::temp_dir().join(format!("printk-sim-{}.bash", std::process::id()));
    std::fs::write(&path, &script).unwrap();
    let bash = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(bash.status.success(), "{}", text(&bash.stderr));
    std::fs::remove_file(&path).unwrap();
    for shell in ["zsh", "fish"] {
        let o = sim(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(text(&o.stdout).contains("printk-sim"), "{shell}");
    }
    let o = sim(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let page = text(&o.stdout);
    assert!(page.contains(".TH printk-sim 1"), "{page}");
    assert!(
        page.contains(".SH SUBCOMMANDS") && page.contains("printk\\-sim\\-run"),
        "{page}"
    );
    let o = sim(&["completions", "nosh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("nosh"));
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // A pipe whose reader is gone before the listing starts (`| head -0`).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = bin()
        .args(["list", "--points"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
