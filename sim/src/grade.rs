//! A grading program's command line, the examples' `main`: the report card
//! of one design, in shards when asked (`--shard K/N --jsonl FILE`, or a
//! batch runner's variables), and `merge` of the shards' files into the
//! card one process would have made.
//!
//! A card's shard file is a sweep file (see `sweep`): the header (command
//! `card`, its units listed), then one line per unit as it ends: a
//! `{"scenario": ...}` (every design's run of it, and what it failed a
//! graded design for) or an `{"exploration": ...}`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use klog::printk::{Accounts, DesignInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::explore::{self, Census, Exploration};
use crate::lab::{Card, CardFailure, CardRun, Lab, Progress, ScenarioCard};
use crate::outcome::Outcome;
use crate::report;
use crate::scenario::InputError;
use crate::shard;
use crate::sweep::{self, CellLine, Header, Journal, Line};

/// `[--json FILE] [--html FILE] [--without-history] [--scenarios A,B]
/// [--explore A,B] [--shard K/N] [--shard-count N] [--jsonl FILE]`, or
/// `merge FILE... [--json FILE] [--html FILE]`.
#[derive(Parser, Debug)]
#[command(
    about = "Grade a printk design: every built-in scenario next to the six designs of the history, and explore on the flagship"
)]
struct Cli {
    #[command(subcommand)]
    merge: Option<Merge>,
    /// Write the card as JSON to FILE.
    #[arg(long, value_name = "FILE", global = true)]
    json: Option<String>,
    /// Write the card as one self-contained HTML page.
    #[arg(long, value_name = "FILE", global = true)]
    html: Option<String>,
    /// Leave the six designs of the history out (a quicker card).
    #[arg(long)]
    without_history: bool,
    /// Only these scenarios (names or files, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    scenarios: Vec<String>,
    /// Explore these scenarios instead of the flagship (`none`: none).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    explore: Vec<String>,
    /// Do only shard K of N of the card's scenarios and explorations
    /// (default: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or
    /// JOB_COMPLETION_INDEX with --shard-count).
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// With JOB_COMPLETION_INDEX: the Job's completions.
    #[arg(long, value_name = "N")]
    shard_count: Option<u64>,
    /// Append each scenario and exploration to FILE as a JSON line as it
    /// ends, for `merge`.
    #[arg(long, value_name = "FILE")]
    jsonl: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Merge {
    /// Put the shards' --jsonl files together into the card one process
    /// would have made.
    Merge {
        /// Every shard's file.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
}

/// The `main` of a program that grades `design`: the command line from
/// the process's arguments. Prints the card on stdout; exit status 0 when
/// the card was made (whatever it says), 2 for bad input, 1 for an
/// internal error.
pub fn main(design: &'static DesignInfo) -> ExitCode {
    run(design, std::env::args().skip(1).collect())
}

/// The same with `args` (after the program's name).
pub fn run(design: &'static DesignInfo, args: Vec<String>) -> ExitCode {
    let cli = match Cli::try_parse_from(std::iter::once("grade".to_string()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match &cli.merge {
        Some(Merge::Merge { files }) => merge(design, files),
        None => grade(design, &cli),
    };
    let card = match result {
        Ok(card) => card,
        Err(Failure::Input(errors)) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
        Err(Failure::Internal(e)) => {
            eprintln!("internal error: {e}");
            return ExitCode::from(1);
        }
    };
    for (path, text) in [
        (&cli.json, report::card::json(&card)),
        (&cli.html, report::html::card_page(&card)),
    ] {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("internal error: writing {path}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    anstream::print!("{}", report::card::render(&card, report::layout::width()));
    ExitCode::SUCCESS
}

enum Failure {
    Input(Vec<InputError>),
    Internal(String),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Failure {
        Failure::Input(vec![e])
    }
}

/// The lab the options ask for.
fn lab(design: &'static DesignInfo, cli: &Cli) -> Lab {
    let mut lab = Lab::new().design(design);
    if cli.without_history {
        lab = lab.without_history();
    }
    if !cli.scenarios.is_empty() {
        let names: Vec<&str> = cli.scenarios.iter().map(String::as_str).collect();
        lab = lab.scenarios(&names);
    }
    if !cli.explore.is_empty() {
        let names: Vec<&str> = cli
            .explore
            .iter()
            .map(String::as_str)
            .filter(|n| *n != "none")
            .collect();
        lab = lab.explore_on(&names);
    }
    lab
}

/// What identifies a card's sweep: the designs, the units, the version.
fn header(lab: &Lab, shard: shard::Shard) -> Header {
    let units = lab.units();
    Header {
        printk_sim: env!("CARGO_PKG_VERSION").into(),
        command: "card".into(),
        scenario: "card".into(),
        digest: sweep::digest(&units.join("\n")),
        designs: lab.design_names().iter().map(|d| d.to_string()).collect(),
        seed: 0,
        cpus: 0,
        duration_ms: 0,
        time_scale: 1.0,
        repeat: None,
        explore: None,
        command_line: units,
        shard: [shard.index, shard.count],
    }
}

/// Grade, this shard's units only, each written to the journal as it ends.
fn grade(design: &'static DesignInfo, cli: &Cli) -> Result<Card, Failure> {
    let (shard, said) = shard::resolve(cli.shard.as_deref(), cli.shard_count, &|name| {
        std::env::var(name).ok()
    })?;
    if let Some(said) = said {
        eprintln!("{}: {said}", design.name);
    }
    let lab = lab(design, cli).shard(shard);
    let mut journal = match &cli.jsonl {
        Some(path) => Some(Journal::create(path, &header(&lab, shard))?),
        None => None,
    };
    let steps = lab.units().iter().filter(|u| shard.owns_key(u)).count();
    let mut bar =
        crate::progress::Progress::new(&format!("grading {}", design.name), steps as u64, false);
    let mut written: Result<(), String> = Ok(());
    let mut keep = |line: Result<Value, String>| {
        if let (Some(j), Ok(())) = (journal.as_mut(), &written) {
            written = line.and_then(|v| j.append(&Line::Unit(v)));
        }
    };
    let card = lab
        .run(&mut |p| match p {
            Progress::Scenario(s) => bar.step_named(s),
            Progress::Explore(s) => bar.step_named(&format!("explore {s}")),
            Progress::ScenarioDone(sc, failures) => {
                keep(unit_line(Unit::Scenario(ScenarioLine::of(sc, failures))))
            }
            Progress::ExploreDone(x, failures) => keep(unit_line(Unit::Exploration(
                ExplorationLine::of(x, failures),
            ))),
        })
        .map_err(Failure::Internal)?;
    bar.finish();
    written.map_err(Failure::Internal)?;
    Ok(card)
}

/// A unit of a card: one line of its shard file.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Unit {
    Scenario(ScenarioLine),
    Exploration(ExplorationLine),
}

fn unit_line(u: Unit) -> Result<Value, String> {
    serde_json::to_value(u).map_err(|e| e.to_string())
}

#[derive(Serialize, Deserialize)]
struct FailureLine {
    design: String,
    scenario: String,
    what: String,
}

#[derive(Serialize, Deserialize)]
struct RunLine {
    design: String,
    graded: bool,
    outcome: String,
    expected: Option<String>,
    /// attempted, stored, dropped, lost_in_deadlock, overwritten,
    /// unfinished, merged, readable, printed, internal.
    accounts: [u64; 10],
    findings: Vec<String>,
    lockdep: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ScenarioLine {
    name: String,
    summary: String,
    runs: Vec<RunLine>,
    failures: Vec<FailureLine>,
}

#[derive(Serialize, Deserialize)]
struct DesignLine {
    design: String,
    baseline: String,
    unseen: Vec<(String, usize)>,
    cells: Vec<CellLine>,
    pairs_total: usize,
    pairs_sampled: bool,
}

#[derive(Serialize, Deserialize)]
struct ExplorationLine {
    scenario: String,
    seed: u64,
    action: String,
    depth: u8,
    cpus: Vec<usize>,
    runs: usize,
    wall_s: f64,
    designs: Vec<DesignLine>,
    failures: Vec<FailureLine>,
}

fn failure_lines(failures: &[CardFailure]) -> Vec<FailureLine> {
    failures
        .iter()
        .map(|f| FailureLine {
            design: f.design.into(),
            scenario: f.scenario.clone(),
            what: f.what.clone(),
        })
        .collect()
}

fn accounts_array(a: &Accounts) -> [u64; 10] {
    [
        a.attempted,
        a.stored,
        a.dropped,
        a.lost_in_deadlock,
        a.overwritten,
        a.unfinished,
        a.merged,
        a.readable,
        a.printed,
        a.internal,
    ]
}

fn accounts_of(v: [u64; 10]) -> Accounts {
    let [attempted, stored, dropped, lost_in_deadlock, overwritten, unfinished, merged, readable, printed, internal] =
        v;
    Accounts {
        attempted,
        stored,
        dropped,
        lost_in_deadlock,
        overwritten,
        unfinished,
        merged,
        readable,
        printed,
        internal,
    }
}

impl ScenarioLine {
    fn of(sc: &ScenarioCard, failures: &[CardFailure]) -> ScenarioLine {
        ScenarioLine {
            name: sc.name.clone(),
            summary: sc.summary.clone(),
            runs: sc
                .runs
                .iter()
                .map(|r| RunLine {
                    design: r.design.into(),
                    graded: r.graded,
                    outcome: r.outcome.name().into(),
                    expected: r.expected.map(|o| o.name().into()),
                    accounts: accounts_array(&r.accounts),
                    findings: r.findings.clone(),
                    lockdep: r.lockdep.clone(),
                })
                .collect(),
            failures: failure_lines(failures),
        }
    }
}

impl ExplorationLine {
    fn of(x: &Exploration, failures: &[CardFailure]) -> ExplorationLine {
        let designs = x
            .designs
            .iter()
            .map(|d| DesignLine {
                design: d.design.name.into(),
                baseline: d.baseline.name().into(),
                unseen: d
                    .cells
                    .iter()
                    .filter(|c| !c.tried)
                    .filter_map(|c| c.places.first())
                    .map(|p| (p.point.name.to_string(), p.cpu))
                    .collect(),
                cells: d
                    .cells
                    .iter()
                    .chain(&d.pairs)
                    .filter(|c| c.tried)
                    .map(|c| CellLine::of(d.design.name, c, 0.0))
                    .collect(),
                pairs_total: d.pairs_total,
                pairs_sampled: d.pairs_sampled,
            })
            .collect();
        ExplorationLine {
            scenario: x.scenario.clone(),
            seed: x.seed,
            action: x.action.into(),
            depth: x.depth,
            cpus: x.cpus.clone(),
            runs: x.runs,
            wall_s: x.wall_s,
            designs,
            failures: failure_lines(failures),
        }
    }
}

/// The names a card's lines may use: the graded design's and the six.
struct Names {
    graded: &'static DesignInfo,
}

impl Names {
    fn design(&self, name: &str) -> Result<&'static DesignInfo, String> {
        if name == self.graded.name {
            return Ok(self.graded);
        }
        klog::printk::design(name).ok_or_else(|| format!("unknown design `{name}`"))
    }

    fn failures(&self, lines: &[FailureLine]) -> Result<Vec<CardFailure>, String> {
        lines
            .iter()
            .map(|f| {
                Ok(CardFailure {
                    design: self.design(&f.design)?.name,
                    scenario: f.scenario.clone(),
                    what: f.what.clone(),
                })
            })
            .collect()
    }

    fn scenario(&self, l: &ScenarioLine) -> Result<ScenarioCard, String> {
        let outcome = |n: &str| Outcome::by_name(n).ok_or_else(|| format!("unknown outcome `{n}`"));
        let runs = l
            .runs
            .iter()
            .map(|r| {
                Ok(CardRun {
                    design: self.design(&r.design)?.name,
                    graded: r.graded,
                    outcome: outcome(&r.outcome)?,
                    expected: r.expected.as_deref().map(outcome).transpose()?,
                    accounts: accounts_of(r.accounts),
                    findings: r.findings.clone(),
                    lockdep: r.lockdep.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(ScenarioCard {
            name: l.name.clone(),
            summary: l.summary.clone(),
            runs,
        })
    }

    fn exploration(&self, l: &ExplorationLine) -> Result<Exploration, String> {
        let mut designs = Vec::new();
        for d in &l.designs {
            let design = self.design(&d.design)?;
            let census = Census {
                design,
                baseline: explore::CellOutcome::by_name(&d.baseline)
                    .ok_or_else(|| format!("unknown outcome `{}`", d.baseline))?,
                unseen: d
                    .unseen
                    .iter()
                    .map(|(p, cpu)| {
                        klog::point::by_name(p)
                            .map(|p| (p, *cpu))
                            .ok_or_else(|| format!("unknown point `{p}`"))
                    })
                    .collect::<Result<_, String>>()?,
                todo: Vec::new(),
                pairs_total: d.pairs_total,
                pairs_sampled: d.pairs_sampled,
            };
            let cells = d
                .cells
                .iter()
                .map(CellLine::cell)
                .collect::<Result<_, _>>()?;
            designs.push(explore::assemble(&census, cells));
        }
        Ok(Exploration {
            scenario: l.scenario.clone(),
            seed: l.seed,
            action: explore::action_by_name(&l.action),
            depth: l.depth,
            cpus: l.cpus.clone(),
            designs,
            runs: l.runs,
            wall_s: l.wall_s,
            interrupted: false,
        })
    }
}

/// The card of the shards in `files`: every file of one card, every
/// shard once, every unit once.
fn merge(design: &'static DesignInfo, files: &[String]) -> Result<Card, Failure> {
    let (header, shards) = sweep::read_shards(files).map_err(Failure::Input)?;
    if header.command != "card" {
        return Err(InputError::option("merge", "these are not a report card's shards").into());
    }
    let names = Names { graded: design };
    let mut errors = Vec::new();
    let mut units: Vec<(String, Unit, String, usize)> = Vec::new();
    for f in &shards {
        for (n, line) in &f.lines {
            let unit = match line {
                Line::Unit(v) => Unit::deserialize(v).map_err(|e| e.to_string()),
                _ => Err("not a line of a report card".to_string()),
            };
            let unit = match unit {
                Ok(u) => u,
                Err(e) => {
                    errors.push(sweep::file_error(&f.path, *n, e));
                    continue;
                }
            };
            let key = match &unit {
                Unit::Scenario(s) => format!("scenario:{}", s.name),
                Unit::Exploration(x) => format!("explore:{}", x.scenario),
            };
            if let Some((_, _, path, line)) = units.iter().find(|(k, ..)| *k == key) {
                errors.push(sweep::file_error(
                    &f.path,
                    *n,
                    format!("{key} twice: also {path}:{line}"),
                ));
            } else {
                units.push((key, unit, f.path.clone(), *n));
            }
        }
    }
    let mut card = Card {
        graded: vec![design],
        scenarios: Vec::new(),
        explorations: Vec::new(),
        failures: Vec::new(),
    };
    for key in &header.command_line {
        let Some((_, unit, path, line)) = units.iter().find(|(k, ..)| k == key) else {
            errors.push(InputError::option(
                "merge",
                format!("{key} is missing (a shard stopped early?)"),
            ));
            continue;
        };
        let built = match unit {
            Unit::Scenario(l) => names.scenario(l).and_then(|sc| {
                card.scenarios.push(sc);
                names.failures(&l.failures)
            }),
            Unit::Exploration(l) => names.exploration(l).and_then(|x| {
                card.explorations.push(x);
                names.failures(&l.failures)
            }),
        };
        match built {
            Ok(failures) => card.failures.extend(failures),
            Err(e) => errors.push(sweep::file_error(path, *line, e)),
        }
    }
    if errors.is_empty() {
        Ok(card)
    } else {
        Err(Failure::Input(errors))
    }
}
