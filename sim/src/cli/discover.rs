//! `explore` and `reduce`: their arguments, lowered and checked before
//! anything runs, and their outputs.

use std::collections::HashMap;
use std::io::Write;

use clap::Args;
use klog::printk::DesignInfo;
use klog::Level;

use super::sweep::SweepArgs;
use super::{check_output_path, json_sink, was_interrupted, Failure};
use crate::explore::{self, Cell, Census, ExploreRequest, Ledger, Place};
use crate::machine::NmiAction;
use crate::progress::Progress;
use crate::reduce::{self, ReduceError, ReduceRequest};
use crate::report;
use crate::scenario::{self, InputError, Overrides};
use crate::sweep::{CellLine, CensusLine, ExploreHead, Header, Journal, Line};

/// `printk-sim explore`.
#[derive(Args, Debug)]
pub(super) struct ExploreArgs {
    /// A scenario file, or the name of a built-in scenario.
    scenario: String,
    /// Explore only this design (repeatable; default: the scenario's list).
    #[arg(long = "design", value_name = "NAME")]
    designs: Vec<String>,
    /// Send NMIs only to this CPU (repeatable; default: every CPU).
    #[arg(long = "cpu", value_name = "N")]
    cpus: Vec<usize>,
    /// What each NMI's handler does.
    #[arg(long, value_name = "ACTION", default_value = "printk",
          value_parser = ["printk", "backtrace", "warn", "panic"])]
    action: String,
    /// With `--action backtrace`: take nmi_cpu_backtrace()'s private lock,
    /// as the kernels before 4.19 did.
    #[arg(long)]
    serialize: bool,
    /// NMIs per run: 1, or 2 for every pair of places.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    depth: u8,
    /// At depth 2, at most this many pairs per design (a seeded sample of
    /// them if there are more).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    budget: usize,
    /// Override the scenario's seed (every run's, and the sample's).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the JSON report to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Draw the matrices side by side as an SVG heat map.
    #[arg(long, value_name = "FILE")]
    svg: Option<String>,
    /// Write one self-contained HTML page: the heat map and every
    /// design's matrix.
    #[arg(long, value_name = "FILE")]
    html: Option<String>,
    #[command(flatten)]
    sweep: SweepArgs,
}

/// `printk-sim reduce`.
#[derive(Args, Debug)]
pub(super) struct ReduceArgs {
    /// A scenario file, or the name of a built-in scenario.
    scenario: String,
    /// The design whose run failed.
    #[arg(long, value_name = "NAME")]
    design: String,
    /// The seed that failed (0 to 2^63-1, as a scenario's `seed`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    seed: u64,
    /// Write the reduced scenario to FILE (it is printed either way).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<String>,
    /// Runs each candidate must reproduce the finding in, all of them.
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100))]
    checks: u64,
}

fn design(name: &str) -> Result<&'static DesignInfo, InputError> {
    klog::printk::design(name).ok_or_else(|| {
        InputError::option(
            "--design",
            format!(
                "unknown design `{name}` (known: {})",
                klog::printk::DESIGNS
                    .iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

impl ExploreArgs {
    /// The request, every option checked, and its sweep's header.
    fn request(&self) -> Result<(ExploreRequest, Header), Failure> {
        let scenario = scenario::load(&self.scenario)?;
        let plan = scenario.plan(&Overrides {
            designs: self.designs.clone(),
            seed: self.seed,
            ..Overrides::default()
        })?;
        let mut cpus = self.cpus.clone();
        if let Some(&c) = cpus.iter().find(|&&c| c >= plan.cpus) {
            return Err(InputError::option(
                "--cpu",
                format!(
                    "CPU {c} is out of range: {} has {} CPU(s)",
                    plan.name, plan.cpus
                ),
            )
            .into());
        }
        cpus.sort_unstable();
        cpus.dedup();
        if cpus.is_empty() {
            cpus = (0..plan.cpus).collect();
        }
        if self.serialize && self.action != "backtrace" {
            return Err(
                InputError::option("--serialize", "applies to --action backtrace only").into(),
            );
        }
        if self.budget == 0 {
            return Err(InputError::option("--budget", "must be at least 1").into());
        }
        if let Some(path) = self.json.as_deref().filter(|p| *p != "-") {
            check_output_path("--json", path)?;
        }
        for (opt, path) in [("--svg", &self.svg), ("--html", &self.html)] {
            match path.as_deref() {
                Some("-") => {
                    return Err(InputError::option(
                        opt,
                        "needs a file (only --json writes to stdout with `-`)",
                    )
                    .into())
                }
                Some(path) => check_output_path(opt, path)?,
                None => {}
            }
        }
        let action = match self.action.as_str() {
            "backtrace" => NmiAction::Backtrace {
                serialize: self.serialize,
            },
            "warn" => NmiAction::Warn,
            "panic" => NmiAction::Panic { stop_at: None },
            _ => NmiAction::Printk {
                lines: 1,
                len: (40, 80),
                level: Level::Warning,
            },
        };
        self.sweep.check()?;
        let shard = self.sweep.shard()?;
        let mut header = Header::new("explore", &scenario, &plan, shard);
        header.explore = Some(ExploreHead {
            cpus: cpus.clone(),
            action: self.action.clone(),
            serialize: self.serialize,
            depth: self.depth,
            budget: self.budget,
        });
        let req = ExploreRequest {
            designs: plan.designs.clone(),
            plan,
            cpus,
            action,
            depth: self.depth,
            budget: self.budget,
            shard,
        };
        Ok((req, header))
    }
}

/// The command line's ledger: the `--jsonl` journal (and what `--resume`
/// found in it), and the progress bar.
struct Journaled {
    journal: Option<Journal>,
    path: String,
    censuses: Vec<(Census, f64)>,
    /// (design, cell key) → the cell and its run's ms.
    cells: HashMap<(String, String), (Cell, f64)>,
    bar: Progress,
}

impl Journaled {
    fn new(sweep: &SweepArgs, header: &Header) -> Result<Journaled, InputError> {
        let (journal, lines) = sweep.journal(header)?;
        let path = sweep.jsonl.clone().unwrap_or_default();
        let mut j = Journaled {
            journal,
            path,
            censuses: Vec::new(),
            cells: HashMap::new(),
            bar: Progress::new("explore", 0, true),
        };
        for (n, line) in lines {
            match line {
                Line::Census(c) => {
                    let census = c.census().map_err(|e| j.error(n, e))?;
                    j.censuses.push((census, c.wall_ms));
                }
                Line::Cell(c) => {
                    let cell = c.cell().map_err(|e| j.error(n, e))?;
                    let key = (c.design, explore::cell_key(&cell.places));
                    j.cells.insert(key, (cell, c.wall_ms));
                }
                _ => return Err(j.error(n, "not a line of explore")),
            }
        }
        Ok(j)
    }

    fn error(&self, line: usize, message: impl Into<String>) -> InputError {
        crate::sweep::file_error(&self.path, line, message)
    }

    fn append(&mut self, line: Line) -> Result<(), String> {
        match self.journal.as_mut() {
            Some(j) => j.append(&line),
            None => Ok(()),
        }
    }
}

impl Ledger for Journaled {
    fn census(&mut self, design: &'static DesignInfo) -> Option<(Census, f64)> {
        let (census, wall_ms) = self
            .censuses
            .iter()
            .find(|(c, _)| c.design.name == design.name)?
            .clone();
        let todo = census.todo.len() as u64;
        let done = self.cells.keys().filter(|(d, _)| d == design.name).count() as u64;
        self.bar.add(todo.saturating_sub(done));
        Some((census, wall_ms))
    }

    fn cell(&mut self, design: &str, places: &[Place]) -> Option<(Cell, f64)> {
        let key = (design.to_string(), explore::cell_key(places));
        self.cells.get(&key).cloned()
    }

    fn took_census(&mut self, census: &Census, wall_ms: f64) -> Result<(), String> {
        self.bar.add(census.todo.len() as u64);
        self.append(Line::Census(CensusLine::of(census, wall_ms)))
    }

    fn tried(
        &mut self,
        design: &str,
        _done: usize,
        _total: usize,
        cell: &Cell,
        wall_ms: f64,
    ) -> Result<(), String> {
        self.bar.step(u64::from(cell.outcome.failed()));
        self.append(Line::Cell(CellLine::of(design, cell, wall_ms)))
    }
}

/// `explore`: every place on every design, then the verdicts, the
/// matrices, the JSON and the heat map.
pub(super) fn explore(args: &ExploreArgs) -> Result<(), Failure> {
    let (req, header) = args.request()?;
    let mut json_out = json_sink(args.json.as_deref())?;
    let mut ledger = Journaled::new(&args.sweep, &header)?;
    let x = explore::explore(&req, &mut ledger).map_err(Failure::Internal)?;
    ledger.bar.finish();
    if let Some(out) = json_out.as_mut() {
        writeln!(out, "{}", report::explore::json(&x))
            .map_err(|e| Failure::Internal(format!("writing the JSON report: {e}")))?;
    }
    for (path, text) in [
        (&args.svg, report::explore::svg(&x)),
        (&args.html, report::html::explore_page(&x)),
    ] {
        if let Some(path) = path {
            std::fs::write(path, text)
                .map_err(|e| Failure::Internal(format!("writing {path}: {e}")))?;
        }
    }
    if args.json.as_deref() != Some("-") {
        anstream::print!("{}", report::explore::render(&x, report::layout::width()));
        if !req.shard.is_whole() {
            println!(
                "shard {}: this shard's cells only (`-`: another shard's); merge the shards' --jsonl files for the whole",
                req.shard
            );
        }
    }
    if was_interrupted() {
        return Err(Failure::Interrupted);
    }
    Ok(())
}

/// `reduce`: the seed's first finding, made deterministic and small.
pub(super) fn reduce(args: &ReduceArgs) -> Result<(), Failure> {
    let scenario = scenario::load(&args.scenario)?;
    let design = design(&args.design)?;
    // Checked now: nothing runs with a bad option.
    scenario.plan(&Overrides {
        designs: vec![design.name.to_string()],
        seed: Some(args.seed),
        ..Overrides::default()
    })?;
    if let Some(path) = args.output.as_deref() {
        check_output_path("--output", path)?;
    }
    let mut command = format!(
        "printk-sim reduce {} --design {} --seed {}",
        args.scenario, design.name, args.seed
    );
    if args.checks != 4 {
        command += &format!(" --checks {}", args.checks);
    }
    let req = ReduceRequest {
        scenario: &scenario,
        design,
        seed: args.seed,
        checks: args.checks as usize,
        final_runs: 20,
        command,
    };
    let r = match reduce::reduce(&req) {
        Ok(r) => r,
        Err(ReduceError::NoFinding(why)) => return Err(Failure::Nothing(why)),
        Err(ReduceError::Internal(e)) => return Err(Failure::Internal(e)),
    };
    if let Some(path) = &args.output {
        std::fs::write(path, &r.toml)
            .map_err(|e| Failure::Internal(format!("writing {path}: {e}")))?;
    }
    print!("{}", r.toml);
    let mut out = std::io::stderr();
    let verdict = if r.reliable() {
        format!(
            "reduced: {} reproduces in {} of {} runs ({} runs in all)",
            r.title, r.reproduced, r.final_runs, r.runs
        )
    } else {
        format!(
            "could not reach 19 of 20: the best candidate reproduces {} in {} of {} runs{}",
            r.title,
            r.reproduced,
            r.final_runs,
            if r.placed {
                ""
            } else {
                " (its NMI could not be placed at a point: the scenario's own sources stay)"
            }
        )
    };
    let _ = writeln!(out, "{verdict}");
    if r.reliable() {
        Ok(())
    } else {
        Err(Failure::Unreliable)
    }
}
