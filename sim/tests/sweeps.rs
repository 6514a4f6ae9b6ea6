//! Sweeps past one machine, end to end: shards under GNU parallel (and
//! under Slurm's and Kubernetes' variables), `--resume` after a kill, and
//! `merge`, which puts the shards back together or says, with the file and
//! line, why it cannot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

/// One test's processes at a time: the parallel test runs two shards at
/// once, and more would only slow each other down.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const BIN: &str = env!("CARGO_BIN_EXE_printk-sim");

fn sim(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("printk-sim-sweeps-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Per design, the seeds of the run lines of `files`, in the order read.
fn seeds_in(files: &[PathBuf]) -> BTreeMap<String, Vec<u64>> {
    let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines().skip(1) {
            let v: Value = serde_json::from_str(line).unwrap();
            let run = &v["run"];
            m.entry(run["design"].as_str().unwrap().to_string())
                .or_default()
                .push(run["seed"].as_u64().unwrap());
        }
    }
    m
}

/// Per design, the outcome counts of a rates table's rows
/// (`design  timeout  deadlock  lockup  loss  clean ...`), columns named
/// by its header line.
fn rates(stdout: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with("design "));
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let mut m = BTreeMap::new();
    for line in lines.take_while(|l| l.starts_with("legacy") || l.starts_with("lockless")) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let counts = head
            .iter()
            .zip(&cells)
            .filter_map(|(h, c)| {
                let (n, _) = c.split_once('/')?;
                Some((h.to_string(), n.parse().ok()?))
            })
            .collect();
        m.insert(cells[0].to_string(), counts);
    }
    m
}

/// Outcome counts per design, added up over shards.
fn add(total: &mut BTreeMap<String, BTreeMap<String, u64>>, shard: &str) {
    for (d, counts) in rates(shard) {
        for (o, n) in counts {
            *total.entry(d.clone()).or_default().entry(o).or_default() += n;
        }
    }
}

/// Runs each of `shards` (a shell command line each) two at a time:
/// through GNU parallel `-j 2` when it is there (CI installs it), else,
/// on a developer's machine without it, two at a time by hand. Returns
/// each shard's stdout.
fn two_at_a_time(shards: &[String], out: &Path) -> Vec<String> {
    let have_parallel = Command::new("parallel")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_parallel || std::env::var_os("CI").is_none(),
        "CI must have GNU parallel (.ci/run installs it)"
    );
    let outputs: Vec<PathBuf> = (0..shards.len())
        .map(|i| out.join(format!("stdout{i}")))
        .collect();
    let jobs: Vec<String> = shards
        .iter()
        .zip(&outputs)
        .map(|(cmd, o)| format!("{cmd} > {} 2>> {}/stderr", s(o), s(out)))
        .collect();
    if have_parallel {
        let status = Command::new("parallel")
            .args(["-j", "2", "--halt", "now,fail=1", ":::"])
            .args(&jobs)
            .status()
            .unwrap();
        assert!(status.success(), "parallel: {status}");
    } else {
        for pair in jobs.chunks(2) {
            let children: Vec<_> = pair
                .iter()
                .map(|j| Command::new("sh").args(["-c", j]).spawn().unwrap())
                .collect();
            for mut c in children {
                assert!(c.wait().unwrap().success());
            }
        }
    }
    outputs
        .iter()
        .map(|o| std::fs::read_to_string(o).unwrap())
        .collect()
}

/// Four shards of `random-nmi-storm --repeat 40`, made by `shard(i)` (the
/// words before the command and after it that name shard i of 0..4),
/// merged: every seed once per design,
/// and the merged counts the sum of the shards'.
fn four_shards_merge(name: &str, extra: &str, shard: &dyn Fn(usize) -> (String, String)) -> String {
    let d = dir(name);
    let files: Vec<PathBuf> = (0..4).map(|i| d.join(format!("s{i}.jsonl"))).collect();
    let cmds: Vec<String> = (0..4)
        .map(|i| {
            let (before, after) = shard(i);
            format!(
                "{before} {BIN} run random-nmi-storm --repeat 40 {extra} {after} --jsonl {}",
                s(&files[i])
            )
        })
        .collect();
    let outs = two_at_a_time(&cmds, &d);
    let mut sum = BTreeMap::new();
    for o in &outs {
        add(&mut sum, o);
    }
    let json = d.join("merged.json");
    let mut args = vec!["merge", "--json", s(&json)];
    args.extend(files.iter().map(|f| s(f)));
    let merged = sim(&args);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    let stdout = text(&merged.stdout);
    assert!(
        stdout.starts_with("random-nmi-storm: 40 runs per design (seeds 1..=40)"),
        "{stdout}"
    );
    assert_eq!(rates(&stdout), sum, "the merged counts are the shards' sum");
    for counts in sum.values() {
        assert_eq!(counts.values().sum::<u64>(), 40, "{sum:?}");
    }
    // Every seed exactly once per design, in the files and in the report.
    let per_design = seeds_in(&files);
    assert_eq!(per_design.len(), 2);
    for (design, mut seeds) in per_design {
        seeds.sort_unstable();
        assert_eq!(seeds, (1..=40).collect::<Vec<u64>>(), "{design}");
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 80);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(
            r["seed"].as_u64(),
            Some(1 + i as u64 / 2),
            "by seed, then design"
        );
        assert_eq!(r["design"], ["legacy", "lockless"][i % 2]);
    }
    std::fs::read_to_string(d.join("stderr")).unwrap_or_default()
}

#[test]
fn four_shards_under_gnu_parallel_merge_into_every_seed_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let stderr = four_shards_merge("parallel", "", &|i| {
        (String::new(), format!("--shard {}/4", i + 1))
    });
    assert!(!stderr.contains("SLURM"), "{stderr}");
}

#[test]
fn slurm_array_and_kubernetes_indexed_job_variables_name_the_shards() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A Slurm array `--array=1-4`: task ids from 1.
    let stderr = four_shards_merge("slurm", "--duration-ms 100", &|i| {
        let vars = format!(
            "env SLURM_ARRAY_TASK_ID={} SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=4",
            i + 1
        );
        (vars, String::new())
    });
    for k in 1..=4 {
        assert!(
            stderr.contains(&format!("shard {k}/4 from SLURM_ARRAY_TASK_ID={k}")),
            "{stderr}"
        );
    }
    // A Kubernetes Indexed Job: indices from 0, the count from the flag.
    let stderr = four_shards_merge("k8s", "--duration-ms 100 --shard-count 4", &|i| {
        (format!("env JOB_COMPLETION_INDEX={i}"), String::new())
    });
    for i in 0..4 {
        assert!(
            stderr.contains(&format!("shard {}/4 from JOB_COMPLETION_INDEX={i}", i + 1)),
            "{stderr}"
        );
    }
    // Without the count, the index alone is bad input.
    let out = Command::new(BIN)
        .args(["run", "nmi-storm", "--duration-ms", "20"])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`--shard-count`"),
        "{}",
        text(&out.stderr)
    );
}

/// The (design, seed) pairs of a file's run lines, each once, and how many
/// lines there were.
fn pairs(file: &Path) -> (Vec<(String, u64)>, usize) {
    let mut v: Vec<(String, u64)> = seeds_in(&[file.to_path_buf()])
        .into_iter()
        .flat_map(|(d, seeds)| seeds.into_iter().map(move |s| (d.clone(), s)))
        .collect();
    let n = v.len();
    v.sort();
    v.dedup();
    (v, n)
}

/// Start printk-sim with `args` and kill it (SIGKILL: no chance to tidy
/// up) once `file` has `lines` lines; at most 60 s.
fn kill_at<S: AsRef<std::ffi::OsStr>>(args: &[S], file: &Path, lines: usize) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::fs::read_to_string(file).map_or(0, |t| t.lines().count()) < lines {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{} lines not written in 60 s", lines);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_shard_killed_mid_run_and_resumed_ends_with_the_seeds_of_one_never_killed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("resume");
    let shard = |file: &Path| {
        vec![
            "run".to_string(),
            "random-nmi-storm".into(),
            "--repeat".into(),
            "16".into(),
            "--shard".into(),
            "2/2".into(),
            "--jsonl".into(),
            s(file).into(),
        ]
    };
    // Killed (SIGKILL: no chance to tidy up) once three runs are written.
    let killed = d.join("killed.jsonl");
    kill_at(&shard(&killed), &killed, 4);
    let (before, _) = pairs(&killed);
    assert!(before.len() >= 3 && before.len() < 16, "{before:?}");
    // As if it died writing a line: half a line at the end.
    let mut bytes = std::fs::read(&killed).unwrap();
    bytes.extend_from_slice(br#"{"run":{"design":"legacy","seed":"#);
    std::fs::write(&killed, bytes).unwrap();
    let mut args = shard(&killed);
    args.push("--resume".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let resumed = sim(&args);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stdout).starts_with("random-nmi-storm: 8 runs per design (seeds 2..=16)"),
        "the table counts the runs kept too:\n{}",
        text(&resumed.stdout)
    );
    let whole = d.join("whole.jsonl");
    let args = shard(&whole);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(sim(&args).status.code(), Some(0));
    let (after, lines) = pairs(&killed);
    let (never_killed, _) = pairs(&whole);
    assert_eq!(after, never_killed);
    assert_eq!(lines, 16, "no seed twice, none missing");
    assert_eq!(
        after
            .iter()
            .map(|(_, s)| *s)
            .collect::<std::collections::BTreeSet<_>>(),
        (2..=16).step_by(2).collect()
    );
    // What was kept was not run again: its lines are where they were.
    let text_after = std::fs::read_to_string(&killed).unwrap();
    for (design, seed) in &before {
        let first = text_after
            .lines()
            .position(|l| l.contains(&format!(r#""design":"{design}","seed":{seed},"#)))
            .unwrap();
        assert!(first <= before.len(), "{design} {seed} at line {first}");
    }
    // A file of another shard is not carried on.
    let mut other = shard(&killed);
    other[5] = "1/2".into();
    other.push("--resume".into());
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let out = sim(&other);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!(
            "{}:1:1: written by shard 2/2, not 1/2",
            s(&killed)
        )),
        "{}",
        text(&out.stderr)
    );
}

/// Two shards of `scenario` --repeat 4 in `d`, quick.
fn two_shards(d: &Path, scenario: &str, tag: &str) -> [PathBuf; 2] {
    let files = [
        d.join(format!("{tag}1.jsonl")),
        d.join(format!("{tag}2.jsonl")),
    ];
    for (i, f) in files.iter().enumerate() {
        let k = format!("{}/2", i + 1);
        let out = sim(&[
            "run",
            scenario,
            "--design",
            "lockless",
            "--repeat",
            "4",
            "--duration-ms",
            "20",
            "--shard",
            &k,
            "--jsonl",
            s(f),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    files
}

fn merge_fails(files: &[&Path], expect: &str) {
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|f| s(f)));
    let out = sim(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(expect), "wanted `{expect}` in:\n{stderr}");
    assert!(out.stdout.is_empty(), "no table from a bad merge");
}

#[test]
fn merge_refuses_other_sweeps_cut_lines_and_seeds_twice_naming_the_file_and_line() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("merge");
    let [a1, a2] = two_shards(&d, "nmi-storm", "a");
    let [b1, _] = two_shards(&d, "console-storm", "b");
    // One process's table, and merge's of its shards, are the same bytes.
    let ok = sim(&["merge", s(&a1), s(&a2)]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("nmi-storm: 4 runs per design (seeds 1..=4)"));
    // Shards of two scenarios.
    merge_fails(
        &[&a1, &b1],
        &format!(
            "{}:1:1: not the sweep of {}: `scenario` is \"console-storm\" here, \"nmi-storm\" there",
            s(&b1),
            s(&a1)
        ),
    );
    // A line cut short (a shard killed as it wrote it).
    let cut = d.join("cut.jsonl");
    let text_a2 = std::fs::read_to_string(&a2).unwrap();
    std::fs::write(&cut, &text_a2[..text_a2.len() - 40]).unwrap();
    merge_fails(&[&a1, &cut], &format!("{}:3:1: a line cut short", s(&cut)));
    // A seed twice.
    let twice = d.join("twice.jsonl");
    let second = text_a2.lines().nth(1).unwrap();
    std::fs::write(&twice, format!("{text_a2}{second}\n")).unwrap();
    merge_fails(
        &[&a1, &twice],
        &format!(
            "{}:4:1: lockless seed 2 twice: also {}:2",
            s(&twice),
            s(&twice)
        ),
    );
    // A shard missing, and seeds missing.
    merge_fails(&[&a1], "shard 2/2 is missing");
    let short = d.join("short.jsonl");
    let head_and_one: Vec<&str> = text_a2.lines().take(2).collect();
    std::fs::write(&short, head_and_one.join("\n") + "\n").unwrap();
    merge_fails(&[&a1, &short], "lockless: 1 of 4 seeds missing: 4");
    // Not a shard's file at all.
    merge_fails(&[&d.join("none.jsonl")], "none.jsonl: cannot read");
}

#[test]
fn a_whole_sweeps_table_and_merges_of_its_file_are_the_same_bytes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("same");
    let f = d.join("all.jsonl");
    let run = sim(&[
        "run",
        "random-nmi-storm",
        "--repeat",
        "6",
        "--duration-ms",
        "100",
        "--jsonl",
        s(&f),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let merged = sim(&["merge", s(&f)]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    assert_eq!(text(&merged.stdout), text(&run.stdout));
}

#[test]
fn explore_shards_merge_into_the_matrix_of_one_process() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("explore");
    let args = ["explore", "nmi-in-console-unlock", "--design", "legacy"];
    let whole_json = d.join("whole.json");
    let mut whole = args.to_vec();
    whole.extend(["--json", s(&whole_json)]);
    assert_eq!(sim(&whole).status.code(), Some(0));
    let files: Vec<PathBuf> = (1..=2).map(|i| d.join(format!("x{i}.jsonl"))).collect();
    let mut cells_per_shard = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let k = format!("{}/2", i + 1);
        let mut a = args.to_vec();
        a.extend(["--shard", &k, "--jsonl", s(f)]);
        let out = sim(&a);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("shard {k}: this shard's cells only")));
        let n = std::fs::read_to_string(f)
            .unwrap()
            .matches(r#"{"cell":"#)
            .count();
        cells_per_shard.push(n);
    }
    assert!(
        cells_per_shard.iter().all(|&n| n > 0),
        "{cells_per_shard:?}"
    );
    let merged_json = d.join("merged.json");
    let out = sim(&[
        "merge",
        "--json",
        s(&merged_json),
        s(&files[0]),
        s(&files[1]),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let read =
        |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (w, m) = (read(&whole_json), read(&merged_json));
    let cells = |v: &Value| v["designs"][0]["cells"].clone();
    assert_eq!(cells(&m), cells(&w), "the same cells, the same outcomes");
    assert_eq!(
        cells(&m).as_array().unwrap().len(),
        cells_per_shard.iter().sum::<usize>(),
        "each cell tried by one shard"
    );
    assert_eq!(m["designs"][0]["verdict"], w["designs"][0]["verdict"]);
    assert_eq!(
        m["runs"].as_u64(),
        Some(cells_per_shard.iter().sum::<usize>() as u64 + 2)
    );
}

#[test]
fn the_slurm_recipe_in_deploy_runs_as_an_array_would_run_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("slurm-script");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/slurm-array.sh");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        s(bin_dir),
        std::env::var("PATH").unwrap_or_default()
    );
    // `--array=0-2`: three tasks, one of them run twice (a requeue).
    for id in ["0", "1", "2", "1"] {
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(&d)
            .env("PATH", &path)
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SCENARIO", "nmi-storm")
            .env("REPEAT", "6")
            .env("PRINTK_SIM_ARGS", "--design lockless --duration-ms 20")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let files: Vec<PathBuf> = (0..3)
        .map(|i| d.join(format!("results/shard-{i}.jsonl")))
        .collect();
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|f| s(f)));
    let merged = sim(&args);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    assert!(text(&merged.stdout).starts_with("nmi-storm: 6 runs per design (seeds 1..=6)"));
    let seeds = seeds_in(&files);
    assert_eq!(
        seeds["lockless"].len(),
        6,
        "the requeued task ran nothing twice"
    );
}

#[test]
fn progress_is_drawn_on_a_terminal_and_nowhere_else() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let args = [
        "run",
        "nmi-in-console-unlock",
        "--design",
        "legacy",
        "--repeat",
        "3",
        "-q",
    ];
    let piped = sim(&args);
    assert_eq!(piped.status.code(), Some(0));
    assert_eq!(text(&piped.stderr), "", "nothing drawn into a pipe");
    // On a pty (util-linux `script`): the bar, with runs, findings, rate
    // and time left.
    let line = format!("{BIN} {}", args.join(" "));
    let tty = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(tty.status.code(), Some(0), "{}", text(&tty.stderr));
    let screen = text(&tty.stdout);
    assert!(screen.contains("nmi-in-console-unlock ["), "{screen:?}");
    assert!(screen.contains("/3 runs, "), "{screen:?}");
    assert!(screen.contains(" finding"), "{screen:?}");
    assert!(screen.contains(" left"), "{screen:?}");
}

#[test]
fn an_explore_killed_mid_way_and_resumed_tries_every_cell_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir("explore-resume");
    let f = d.join("x.jsonl");
    let args = [
        "explore",
        "nmi-in-console-unlock",
        "--design",
        "legacy",
        "--jsonl",
        s(&f),
    ];
    // The header, the census and a few cells.
    kill_at(&args, &f, 6);
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let out = sim(&resumed);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<Value> = std::fs::read_to_string(&f)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.iter().filter(|l| l.get("census").is_some()).count(),
        1
    );
    let mut keys: Vec<String> = lines
        .iter()
        .filter_map(|l| l.get("cell"))
        .map(|c| c["places"].to_string())
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!((n, keys.len()), (14, 14), "7 points on 2 CPUs, each once");
    // The merged file says what one uninterrupted process says.
    let merged = sim(&["merge", s(&f)]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
    assert!(
        text(&merged.stdout).contains("legacy:  deadlocks at 4 of 7"),
        "{}",
        text(&merged.stdout)
    );
}
