//! The command line: clap definitions, and the one place where errors
//! become exit statuses (0 ran, 1 internal error, 2 bad input, 3 an
//! expectation did not hold).

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::outcome::Tally;
use crate::report;
use crate::runner::{self, Outcome, RunReport};

mod discover;
mod sweep;
use crate::progress::Progress;
use crate::scenario::{self, InputError, Overrides};
use crate::shard::Shard;
use crate::sweep::{Header, Journal, Line};

/// printk-sim: Linux printk designs side by side on a machine of threads and
/// signals, with a watchdog that finds the deadlocks.
#[derive(Parser, Debug)]
#[command(name = "printk-sim", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// When to colour the output: on a terminal (auto, and only without
    /// NO_COLOR), always, or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    color: clap::ColorChoice,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario on one or more designs, side by side.
    Run(Box<RunArgs>),
    /// Run a scenario and tell, in plain sentences, what happened on each
    /// CPU, why it could never end, which rule that breaks, and how the
    /// other designs fared on the same scenario.
    Explain {
        /// A scenario file, or the name of a built-in scenario.
        scenario: String,
        /// The design to explain (default: the first that found something).
        #[arg(long)]
        design: Option<String>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Raise an NMI at every injection point each design passes, on every
    /// CPU, one run per place (or every pair of places, `--depth 2`), and
    /// say where each design deadlocks, locks up or loses messages, and
    /// which points the scenario never reached.
    Explore(Box<discover::ExploreArgs>),
    /// Put the `--jsonl` files of a sweep's shards together: the table (and
    /// `--json`, `--html`) one process would have printed for all of them.
    /// Files of other sweeps, shards missing, lines cut short, and seeds or
    /// cells missing or done twice are bad input (exit 2).
    Merge(Box<sweep::MergeArgs>),
    /// Turn a seed whose run found something into a small scenario that
    /// finds the same thing every time: the NMI placed at the point, then
    /// every source, task, CPU and millisecond it does not need removed.
    Reduce(Box<discover::ReduceArgs>),
    /// List built-in scenarios and designs.
    List {
        /// Also list every design's injection points.
        #[arg(long)]
        points: bool,
    },
    /// Measure every design's hot path and latencies side by side, next to
    /// the floor any logger pays.
    Bench {
        /// Only this design (repeatable; default: all).
        #[arg(long = "design", value_name = "NAME")]
        designs: Vec<String>,
        /// Thread counts for the throughput test.
        #[arg(
            long,
            value_delimiter = ',',
            value_name = "LIST",
            default_value = "1,2,4"
        )]
        cpus: Vec<usize>,
        /// Write the numbers as JSON to FILE (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        json: Option<String>,
    },
    /// Validate scenario files without running them.
    Check {
        /// Paths or built-in names.
        #[arg(required = true)]
        scenarios: Vec<String>,
    },
    /// Print a completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell) on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `printk-sim man > printk-sim.1`.
    Man,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A scenario file, or the name of a built-in scenario.
    scenario: String,
    /// Run only this design (repeatable; default: the scenario's list).
    #[arg(long = "design", value_name = "NAME")]
    designs: Vec<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Run seeds seed..seed+N-1 and report rates.
    #[arg(long, default_value_t = 1, value_name = "N")]
    repeat: u64,
    /// Override the number of CPUs.
    #[arg(long)]
    cpus: Option<usize>,
    /// Override the run length.
    #[arg(long, value_name = "MS")]
    duration_ms: Option<u64>,
    /// Write the JSON report to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Require DESIGN's outcome to be OUTCOME (exit 3 otherwise).
    #[arg(long = "expect", value_name = "DESIGN=OUTCOME")]
    expects: Vec<String>,
    /// Write the records left in each design's buffer to FILE in the syslog
    /// format `dmesg -F` reads (with several designs, the design's name goes
    /// before the suffix: out.legacy.log; with --repeat, the last seed's).
    #[arg(long, value_name = "FILE")]
    log: Option<String>,
    /// The same in the /dev/kmsg format.
    #[arg(long, value_name = "FILE")]
    kmsg: Option<String>,
    /// Write a timeline of every run (a process per design, a thread per
    /// CPU) as Chrome trace-event JSON, for Perfetto or chrome://tracing.
    #[arg(long, value_name = "FILE")]
    trace: Option<String>,
    /// Draw each design's timeline as an SVG picture (with several
    /// designs, the design's name goes before the suffix).
    #[arg(long, value_name = "FILE")]
    svg: Option<String>,
    /// Write one self-contained HTML page: the table, every design's
    /// timeline, the findings with their splats and lockdep's reports,
    /// explain's narration (with --repeat: the rates and the distinct
    /// findings).
    #[arg(long, value_name = "FILE")]
    html: Option<String>,
    /// Treat a broken buffer invariant (checked after every run) as an
    /// internal error (exit 1) instead of a warning.
    #[arg(long)]
    check: bool,
    /// Every measure, one row each, a column per design (as wide as it
    /// takes) instead of the table fitted to the terminal.
    #[arg(long)]
    wide: bool,
    /// Leave out the watchdog's and lockdep's splats on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    sweep: sweep::SweepArgs,
}

enum Failure {
    Input(InputError),
    /// Bad input, already reported.
    InputReported,
    /// Ctrl-C: the partial report was written.
    Interrupted,
    Expect(Vec<String>),
    /// `reduce` kept a candidate that reproduces in fewer than 19 of 20
    /// runs (already said).
    Unreliable,
    /// Nothing to do, and why (`reduce` on a seed that found nothing).
    Nothing(String),
    Internal(String),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Input(e)
    }
}

/// Parse the command line, run it, and return the exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.color {
        clap::ColorChoice::Auto => anstream::ColorChoice::Auto,
        clap::ColorChoice::Always => anstream::ColorChoice::Always,
        clap::ColorChoice::Never => anstream::ColorChoice::Never,
    }
    .write_global();
    // Ctrl-C (or SIGTERM) once: the current run stops and reports; twice:
    // exit at once. Registered before any CPU starts.
    let flag = runner::interrupted().clone();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let registered = signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())
            .and_then(|_| signal_hook::flag::register(sig, flag.clone()));
        if let Err(e) = registered {
            eprintln!("internal error: cannot handle signal {sig}: {e}");
            return ExitCode::from(1);
        }
    }
    let result = match cli.command {
        None => run(RunArgs {
            scenario: scenario::FLAGSHIP.into(),
            designs: Vec::new(),
            seed: None,
            repeat: 1,
            cpus: None,
            duration_ms: None,
            json: None,
            expects: Vec::new(),
            log: None,
            kmsg: None,
            trace: None,
            svg: None,
            html: None,
            check: false,
            wide: false,
            quiet: false,
            sweep: sweep::SweepArgs::default(),
        }),
        Some(Command::Run(args)) => run(*args),
        Some(Command::Explain {
            scenario,
            design,
            seed,
        }) => explain(&scenario, design.as_deref(), seed),
        Some(Command::Explore(args)) => discover::explore(&args),
        Some(Command::Reduce(args)) => discover::reduce(&args),
        Some(Command::Merge(args)) => sweep::merge(&args),
        Some(Command::List { points }) => {
            list(points);
            Ok(())
        }
        Some(Command::Check { scenarios }) => check(&scenarios),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "printk-sim", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Man) => man(),
        Some(Command::Bench {
            designs,
            cpus,
            json,
        }) => bench(&designs, &cpus, json.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::InputReported) => ExitCode::from(2),
        Err(Failure::Expect(failed)) => {
            for f in failed {
                eprintln!("expectation failed: {f}");
            }
            ExitCode::from(3)
        }
        Err(Failure::Internal(e)) => {
            eprintln!("internal error: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Unreliable) => ExitCode::from(3),
        Err(Failure::Nothing(why)) => {
            eprintln!("{why}");
            ExitCode::from(1)
        }
        Err(Failure::Interrupted) => ExitCode::from(130),
    }
}

fn parse_expect(s: &str) -> Result<(&'static str, Outcome), InputError> {
    let (d, o) = s
        .split_once('=')
        .ok_or_else(|| InputError::option("--expect", format!("`{s}` is not DESIGN=OUTCOME")))?;
    let design = klog::printk::design(d)
        .ok_or_else(|| InputError::option("--expect", format!("unknown design `{d}`")))?;
    let outcome = Outcome::by_name(o).ok_or_else(|| {
        InputError::option(
            "--expect",
            format!("unknown outcome `{o}`, expected timeout, deadlock, lockup, loss or clean"),
        )
    })?;
    Ok((design.name, outcome))
}

/// A `run` command lowered from its arguments and checked, before anything
/// runs: the plan, the expectations, the shard, and where each output goes.
struct RunRequest {
    plan: scenario::Plan,
    args: RunArgs,
    expect: Vec<(&'static str, Outcome)>,
    shard: Shard,
    /// What this sweep's `--jsonl` file says of it.
    header: Header,
}

/// What a `run` made: the reports of the runs this process made, and the
/// tally and view of every run of the shard (those `--resume` found in
/// the file too), by seed then design.
struct Done {
    reports: Vec<RunReport>,
    runs: Vec<(Tally, Value)>,
    resumed: usize,
}

impl RunRequest {
    fn new(args: RunArgs) -> Result<RunRequest, Failure> {
        let scenario = scenario::load(&args.scenario)?;
        let mut plan = scenario.plan(&Overrides {
            designs: args.designs.clone(),
            seed: args.seed,
            cpus: args.cpus,
            duration_ms: args.duration_ms,
        })?;
        if args.repeat == 0 || args.repeat > 100_000 {
            return Err(InputError::option("--repeat", "must be from 1 to 100000").into());
        }
        for (opt, given) in [("--trace", &args.trace), ("--svg", &args.svg)] {
            if given.is_some() && args.repeat > 1 {
                return Err(
                    InputError::option(opt, "a timeline shows one run: not with --repeat").into(),
                );
            }
        }
        plan.timeline =
            args.trace.is_some() || args.svg.is_some() || args.html.is_some() && args.repeat == 1;
        let expect = Self::expectations(&plan, &args.expects)?;
        // Every output is a file in a directory that exists: a directory
        // given as a file would otherwise become `DIR.legacy` next to it.
        for (opt, path) in [
            ("--json", &args.json),
            ("--log", &args.log),
            ("--kmsg", &args.kmsg),
            ("--svg", &args.svg),
            ("--trace", &args.trace),
            ("--html", &args.html),
        ] {
            if let Some(path) = path.as_deref().filter(|p| *p != "-") {
                check_output_path(opt, path)?;
            }
        }
        args.sweep.check()?;
        let shard = args.sweep.shard()?;
        let mut header = Header::new("run", &scenario, &plan, shard);
        header.repeat = Some(args.repeat);
        let mut req = RunRequest {
            header,
            plan,
            args,
            expect,
            shard,
        };
        req.header.command_line = req.command_words();
        Ok(req)
    }

    /// The scenario's `[expect]` for the designs that run, overridden by
    /// `--expect`.
    fn expectations(
        plan: &scenario::Plan,
        given: &[String],
    ) -> Result<Vec<(&'static str, Outcome)>, Failure> {
        let mut expect: Vec<(&'static str, Outcome)> = plan
            .expect
            .iter()
            .copied()
            .filter(|(d, _)| plan.designs.iter().any(|x| x.name == *d))
            .collect();
        for e in given {
            let (d, o) = parse_expect(e)?;
            if !plan.designs.iter().any(|x| x.name == d) {
                return Err(InputError::option(
                    "--expect",
                    format!("design `{d}` is not in this run"),
                )
                .into());
            }
            expect.retain(|(x, _)| *x != d);
            expect.push((d, o));
        }
        Ok(expect)
    }

    /// A per-design output file: with several designs, the design's name
    /// goes before the suffix.
    fn per_design(&self, base: &str, design: &str) -> String {
        if self.plan.designs.len() > 1 {
            report::log::per_design(base, design)
        } else {
            base.to_string()
        }
    }

    /// Create every output file before running, so that a bad path fails up
    /// front; the JSON report's sink is returned open, and the `--jsonl`
    /// journal with what it already held.
    fn open_outputs(&self) -> Result<Outputs, Failure> {
        let a = &self.args;
        let create = |opt: &str, path: &str| {
            std::fs::File::create(path)
                .map_err(|e| InputError::option(opt, format!("cannot create `{path}`: {e}")))
        };
        if let Some(path) = &a.trace {
            create("--trace", path)?;
        }
        for (opt, base) in [("--log", &a.log), ("--kmsg", &a.kmsg), ("--svg", &a.svg)] {
            for d in base.iter().flat_map(|_| &self.plan.designs) {
                create(opt, &self.per_design(base.as_deref().unwrap_or(""), d.name))?;
            }
        }
        let (journal, lines) = a.sweep.journal(&self.header)?;
        let resumed = sweep::resumed_runs(a.sweep.jsonl.as_deref().unwrap_or(""), lines)?;
        Ok(Outputs {
            json: json_sink(a.json.as_deref())?,
            journal,
            resumed,
        })
    }

    /// The per-design files of one run: the logs and the timeline picture.
    fn write_files(&self, r: &RunReport) -> Result<(), Failure> {
        let a = &self.args;
        let write = |base: &Option<String>, text: &dyn Fn() -> String| match base {
            Some(base) => {
                let path = self.per_design(base, r.design);
                std::fs::write(&path, text())
                    .map_err(|e| Failure::Internal(format!("writing {path}: {e}")))
            }
            None => Ok(()),
        };
        write(&a.log, &|| report::log::syslog(&r.records))?;
        write(&a.kmsg, &|| report::log::kmsg(&r.records))?;
        write(&a.svg, &|| {
            let title = format!("{} on {}, seed {}", r.design, self.plan.name, r.seed);
            report::timeline::svg(r, &title)
        })
    }

    /// The (seed, design) pairs of this shard, in order.
    fn work(&self) -> Vec<(u64, &'static klog::printk::DesignInfo)> {
        let plan = &self.plan;
        (0..self.args.repeat)
            .filter(|&offset| self.shard.owns_offset(offset))
            .flat_map(|offset| plan.designs.iter().map(move |d| (plan.seed + offset, *d)))
            .collect()
    }

    /// Every seed of the shard on every design (but those the journal
    /// already holds), until done or Ctrl-C.
    fn run_all(&self, out: &mut Outputs) -> Result<Done, Failure> {
        let resumed = std::mem::take(&mut out.resumed);
        let kept: std::collections::HashSet<(u64, &str)> = resumed
            .iter()
            .map(|(t, _)| (t.seed, t.design.as_str()))
            .collect();
        let todo: Vec<_> = self
            .work()
            .into_iter()
            .filter(|(seed, d)| !kept.contains(&(*seed, d.name)))
            .collect();
        let mut done = Done {
            reports: Vec::new(),
            resumed: resumed.len(),
            runs: resumed,
        };
        let splat = self.args.repeat == 1 && !self.args.quiet;
        let mut bar = if todo.len() > 1 {
            Progress::new(&self.plan.name, todo.len() as u64, true)
        } else {
            Progress::hidden(&self.plan.name, 1, true)
        };
        for (seed, d) in todo {
            let mut r = runner::run(&self.plan, d, seed, splat).map_err(Failure::Internal)?;
            self.write_files(&r)?;
            // The table and the JSON need neither the log nor the console
            // output: drop them, so `--repeat` keeps memory flat.
            r.records = Vec::new();
            r.console_output = Vec::new();
            if let Some(v) = &r.invariant_violation {
                let msg = format!("{} seed {seed}: buffer invariant broken: {v}", d.name);
                if self.args.check {
                    return Err(Failure::Internal(msg));
                }
                bar.say_above(&format!("warning: {msg}"));
            }
            bar.step(r.findings.len() as u64);
            let view = report::json::run_value(&r);
            if !r.interrupted {
                if let Some(j) = out.journal.as_mut() {
                    j.append(&Line::Run(view.clone()))
                        .map_err(Failure::Internal)?;
                }
            }
            // Memory stays flat over a long sweep: only what is printed or
            // written is kept (the view for --json, the whole report for
            // the one run's table, trace and pages).
            let view = if self.args.json.is_some() {
                view
            } else {
                Value::Null
            };
            done.runs.push((Tally::of(&r), view));
            if self.args.repeat == 1 {
                done.reports.push(r);
            }
            if was_interrupted() {
                break;
            }
        }
        let order = |t: &Tally| {
            let design = self.plan.designs.iter().position(|d| d.name == t.design);
            (t.seed, design)
        };
        done.runs.sort_by_key(|(t, _)| order(t));
        Ok(done)
    }

    /// The command that runs the whole sweep again (no shard), after
    /// `printk-sim`.
    fn command_words(&self) -> Vec<String> {
        let a = &self.args;
        let mut words = vec![
            "run".to_string(),
            a.scenario.clone(),
            format!("--seed {}", self.plan.seed),
        ];
        words.extend(a.designs.iter().map(|d| format!("--design {d}")));
        words.extend(a.cpus.map(|c| format!("--cpus {c}")));
        words.extend(a.duration_ms.map(|d| format!("--duration-ms {d}")));
        if a.repeat > 1 {
            words.push(format!("--repeat {}", a.repeat));
        }
        words
    }

    /// The table (or rates), for the terminal's width unless `--wide`.
    fn print_report(&self, done: &Done, interrupted: bool) {
        let width = report::layout::width();
        let (plan, a) = (&self.plan, &self.args);
        let table = if a.repeat > 1 || done.resumed > 0 || !self.shard.is_whole() {
            let tallies: Vec<Tally> = done.runs.iter().map(|(t, _)| t.clone()).collect();
            report::table::render_rates(&report::table::RatesHead::of(plan), &tallies, width)
        } else if a.wide {
            report::table::render_wide(plan, &done.reports)
        } else {
            report::table::render(plan, &done.reports, width)
        };
        anstream::print!("{table}");
        if interrupted {
            println!(
                "interrupted: {} of {} runs, the last one cut short by Ctrl-C",
                done.runs.len(),
                self.work().len()
            );
        }
        if !self.shard.is_whole() {
            let first = plan.seed + self.shard.index - 1;
            println!(
                "shard {}: seeds {first}, {}, ... of {}..={} (merge the shards' --jsonl files for the whole)",
                self.shard,
                first + self.shard.count,
                plan.seed,
                plan.seed + a.repeat - 1
            );
        }
        println!("{}", reproduce_line(&self.header.command_line, width));
    }

    /// The designs whose outcome was not the one expected.
    fn failed_expectations(&self, runs: &[(Tally, Value)]) -> Vec<String> {
        runs.iter()
            .filter_map(|(r, _)| {
                let (_, want) = self.expect.iter().find(|(d, _)| *d == r.design)?;
                (r.outcome != *want).then(|| {
                    format!(
                        "{}: expected {}, got {} (seed {})",
                        r.design,
                        want.name(),
                        r.outcome.name(),
                        r.seed
                    )
                })
            })
            .collect()
    }
}

/// Where a `run`'s outputs go, opened before it runs.
struct Outputs {
    json: Option<Box<dyn Write>>,
    journal: Option<Journal>,
    resumed: Vec<(Tally, Value)>,
}

/// `reproduce: printk-sim WORDS`, continued the way a shell reads it when
/// too long for the line.
fn reproduce_line(words: &[String], width: usize) -> String {
    let mut s = String::new();
    let mut col = 0;
    for w in std::iter::once("reproduce: printk-sim").chain(words.iter().map(String::as_str)) {
        if col > 0 && col + 1 + w.len() + 2 > width {
            s.push_str(" \\\n   ");
            col = 3;
        }
        if col > 0 {
            s.push(' ');
            col += 1;
        }
        col += w.len();
        s += w;
    }
    s
}

fn was_interrupted() -> bool {
    runner::interrupted().load(std::sync::atomic::Ordering::Relaxed)
}

/// Where `--json` goes: nowhere, stdout (`-`) or a file created now.
fn json_sink(json: Option<&str>) -> Result<Option<Box<dyn Write>>, Failure> {
    Ok(match json {
        None => None,
        Some("-") => Some(Box::new(std::io::stdout())),
        Some(path) => Some(Box::new(std::fs::File::create(path).map_err(|e| {
            InputError::option("--json", format!("cannot create `{path}`: {e}"))
        })?)),
    })
}

fn run(args: RunArgs) -> Result<(), Failure> {
    let req = RunRequest::new(args)?;
    let mut out = req.open_outputs()?;
    let done = req.run_all(&mut out)?;
    let interrupted = was_interrupted();
    if let Some(path) = &req.args.trace {
        std::fs::write(path, report::timeline::chrome(&done.reports))
            .map_err(|e| Failure::Internal(format!("writing the trace: {e}")))?;
    }
    if let Some(path) = &req.args.html {
        let page = if req.plan.timeline {
            report::html::run_page(&req.plan, &done.reports)
        } else {
            let tallies: Vec<Tally> = done.runs.iter().map(|(t, _)| t.clone()).collect();
            report::html::rates_page(&report::table::RatesHead::of(&req.plan), &tallies)
        };
        std::fs::write(path, page)
            .map_err(|e| Failure::Internal(format!("writing the HTML page: {e}")))?;
    }
    // The JSON first: a reader of stdout that goes away (`| head`) ends the
    // process, and the file must be whole by then.
    if let Some(json) = out.json.as_mut() {
        let views: Vec<&Value> = done.runs.iter().map(|(_, v)| v).collect();
        writeln!(
            json,
            "{}",
            report::json::document(&report::json::Head::of(&req.plan), views)
        )
        .map_err(|e| Failure::Internal(format!("writing the JSON report: {e}")))?;
    }
    if req.args.json.as_deref() != Some("-") {
        req.print_report(&done, interrupted);
    }
    if interrupted {
        return Err(Failure::Interrupted);
    }
    let failed = req.failed_expectations(&done.runs);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Expect(failed))
    }
}

/// `bench`: measure, print the table, write the JSON.
fn bench(names: &[String], cpus: &[usize], json: Option<&str>) -> Result<(), Failure> {
    let mut designs = Vec::new();
    for n in names {
        designs.push(
            klog::printk::design(n)
                .ok_or_else(|| InputError::option("--design", format!("unknown design `{n}`")))?,
        );
    }
    if designs.is_empty() {
        designs = klog::printk::DESIGNS.iter().collect();
    }
    if cpus.is_empty()
        || cpus
            .iter()
            .any(|&c| c == 0 || c as i64 > scenario::MAX_CPUS)
    {
        return Err(InputError::option(
            "--cpus",
            format!("thread counts must be from 1 to {}", scenario::MAX_CPUS),
        )
        .into());
    }
    let mut out = json_sink(json)?;
    let mut bar = Progress::new("bench", designs.len() as u64 + 1, false);
    let bench = crate::bench::run(&designs, cpus, &mut |done| bar.step_named(done))
        .map_err(Failure::Internal)?;
    bar.finish();
    if json != Some("-") {
        print!("{}", report::bench::render(&bench));
    }
    if let Some(w) = out.as_mut() {
        writeln!(w, "{}", report::bench::json(&bench))
            .map_err(|e| Failure::Internal(format!("writing the JSON: {e}")))?;
    }
    Ok(())
}

/// `explain`: run every design of the scenario with timelines, then tell
/// the focus design's run.
fn explain(name: &str, design: Option<&str>, seed: Option<u64>) -> Result<(), Failure> {
    let mut plan = scenario::load(name)?.plan(&Overrides {
        seed,
        ..Overrides::default()
    })?;
    if let Some(d) = design {
        let info = klog::printk::design(d)
            .ok_or_else(|| InputError::option("--design", format!("unknown design `{d}`")))?;
        if !plan.designs.iter().any(|x| x.name == info.name) {
            plan.designs.insert(0, info);
        }
    }
    plan.timeline = true;
    let mut runs = Vec::new();
    for d in &plan.designs {
        runs.push(runner::run(&plan, d, plan.seed, false).map_err(Failure::Internal)?);
    }
    let focus = design.map(str::to_string).unwrap_or_else(|| {
        runs.iter()
            .find(|r| !r.findings.is_empty())
            .or(runs.first())
            .map_or(String::new(), |r| r.design.to_string())
    });
    let story = report::explain::explain(&plan, &runs, &focus);
    anstream::print!(
        "{}",
        report::layout::wrap_lines(&story, report::layout::width())
    );
    Ok(())
}

fn list(points: bool) {
    let width = report::layout::width();
    let name_w = scenario::BUILTIN
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0);
    println!("scenarios:");
    for (name, text) in scenario::BUILTIN {
        let summary = scenario::Scenario::parse(name, text)
            .map(|s| s.summary().to_string())
            .unwrap_or_default();
        let at = name_w + 3;
        println!(
            "  {name:<name_w$} {}",
            report::layout::wrap_from(&summary, at, width, at)
        );
    }
    println!("designs:");
    for d in klog::printk::DESIGNS {
        let about = format!("{} [messages of {}; docs/FIDELITY.md]", d.summary, d.kernel);
        let at = name_w + 3;
        println!(
            "  {:<name_w$} {}",
            d.name,
            report::layout::wrap_from(&about, at, width, at)
        );
        if points {
            for p in d.points() {
                let at = 6 + 32 + 1;
                let about = report::layout::wrap_from(p.about, at, width, at);
                println!("      {:<32} {about}", p.point.name);
            }
        }
    }
}

/// An output path must name a file (not a directory) in a directory that
/// exists.
fn check_output_path(opt: &str, path: &str) -> Result<(), InputError> {
    let p = std::path::Path::new(path);
    if path.ends_with('/') || p.is_dir() {
        return Err(InputError::option(
            opt,
            format!("`{path}` is a directory; give a file name"),
        ));
    }
    match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(InputError::option(
            opt,
            format!("`{path}`: directory `{}` does not exist", dir.display()),
        )),
        _ => Ok(()),
    }
}

/// The manual page, generated from the clap definition.
fn man() -> Result<(), Failure> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .and_then(|()| std::io::stdout().write_all(&out))
        .map_err(|e| Failure::Internal(format!("man: {e}")))
}

fn check(names: &[String]) -> Result<(), Failure> {
    let mut failed = false;
    for name in names {
        match scenario::load(name).and_then(|s| s.plan(&Overrides::default()).map(|_| s)) {
            Ok(s) => println!("ok {name} ({})", s.name()),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::InputReported)
    } else {
        Ok(())
    }
}
