//! The sweep options `run` and `explore` share (`--shard`, `--jsonl`,
//! `--resume`), and `merge`.

use std::io::Write;

use clap::Args;
use serde_json::Value;

use super::{check_output_path, json_sink, reproduce_line, Failure};
use crate::outcome::Tally;
use crate::report;
use crate::report::json::Head;
use crate::report::table::RatesHead;
use crate::scenario::InputError;
use crate::shard::{self, Shard};
use crate::sweep::{self, Header, Journal, Line, Merged, Numbered};

/// `--shard`, `--shard-count`, `--jsonl`, `--resume`.
#[derive(Args, Debug, Default, Clone)]
pub(super) struct SweepArgs {
    /// Do only shard K of N (1 ≤ K ≤ N): a fixed part of the seeds (or of
    /// explore's cells), so that N shards on any machines do the work of
    /// one process; `merge` puts their `--jsonl` files together. Without
    /// it, a Slurm array task's SLURM_ARRAY_TASK_ID and
    /// SLURM_ARRAY_TASK_COUNT, or a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX with --shard-count, name the shard.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// With JOB_COMPLETION_INDEX: the Job's completions (its shards).
    #[arg(long, value_name = "N")]
    pub shard_count: Option<u64>,
    /// Append each run (explore: each census and cell) to FILE as one JSON
    /// line as soon as it ends: what `--resume` and `merge` read.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<String>,
    /// Carry on from --jsonl's FILE: what it holds is not run again.
    #[arg(long, requires = "jsonl")]
    pub resume: bool,
}

impl SweepArgs {
    /// This process's shard; said on stderr when the batch runner's
    /// variables named it.
    pub fn shard(&self) -> Result<Shard, InputError> {
        let (shard, said) = shard::resolve(self.shard.as_deref(), self.shard_count, &|name| {
            std::env::var(name).ok()
        })?;
        if let Some(said) = said {
            eprintln!("printk-sim: {said}");
        }
        Ok(shard)
    }

    /// Check `--jsonl`'s path before anything runs.
    pub fn check(&self) -> Result<(), InputError> {
        match self.jsonl.as_deref() {
            Some("-") => Err(InputError::option(
                "--jsonl",
                "needs a file (it is appended to and read back)",
            )),
            Some(path) => check_output_path("--jsonl", path),
            None => Ok(()),
        }
    }

    /// The journal, and the lines an earlier process of this very shard
    /// left in it (`--resume`).
    pub fn journal(&self, header: &Header) -> Result<(Option<Journal>, Numbered), InputError> {
        match (&self.jsonl, self.resume) {
            (None, _) => Ok((None, Vec::new())),
            (Some(path), false) => Ok((Some(Journal::create(path, header)?), Vec::new())),
            (Some(path), true) => {
                let (j, lines) = Journal::resume(path, header)?;
                if !lines.is_empty() {
                    eprintln!(
                        "printk-sim: {} lines of {path} kept, carrying on",
                        lines.len()
                    );
                }
                Ok((Some(j), lines))
            }
        }
    }
}

/// `printk-sim merge`.
#[derive(Args, Debug)]
pub(super) struct MergeArgs {
    /// The shards' `--jsonl` files, every shard of one sweep.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Write the JSON report one process would have written to FILE (`-`
    /// for stdout).
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Write the HTML page one process would have written.
    #[arg(long, value_name = "FILE")]
    html: Option<String>,
    /// Explore: draw the matrices as an SVG heat map.
    #[arg(long, value_name = "FILE")]
    svg: Option<String>,
}

/// The rates table's and the JSON report's heads of a `run` sweep.
fn heads(h: &Header) -> (RatesHead, Head<'_>) {
    (
        RatesHead {
            scenario: h.scenario.clone(),
            cpus: h.cpus,
            duration_ms: h.duration_ms,
            designs: h.designs.clone(),
        },
        Head {
            scenario: &h.scenario,
            seed: h.seed,
            cpus: h.cpus,
            duration_ms: h.duration_ms,
            time_scale: h.time_scale,
        },
    )
}

/// `merge`: the shards read, checked and put together; then the table,
/// the JSON and the page one process would have made.
pub(super) fn merge(args: &MergeArgs) -> Result<(), Failure> {
    for (opt, path) in [("--html", &args.html), ("--svg", &args.svg)] {
        match path.as_deref() {
            Some("-") => return Err(InputError::option(opt, "needs a file").into()),
            Some(p) => check_output_path(opt, p)?,
            None => {}
        }
    }
    if let Some(p) = args.json.as_deref().filter(|p| *p != "-") {
        check_output_path("--json", p)?;
    }
    let merged = sweep::merge(&args.files).map_err(|errors| {
        for e in errors {
            eprintln!("error: {e}");
        }
        Failure::InputReported
    })?;
    let mut json_out = json_sink(args.json.as_deref())?;
    let width = report::layout::width();
    let (json, pages, table) = match &merged {
        Merged::Runs {
            header,
            tallies,
            views,
        } => {
            if args.svg.is_some() {
                return Err(InputError::option("--svg", "is for explore's shards").into());
            }
            let (rates, head) = heads(header);
            let mut table = report::table::render_rates(&rates, tallies, width);
            table += &reproduce_line(&header.command_line, width);
            table.push('\n');
            (
                report::json::document(&head, views.clone()),
                vec![(&args.html, report::html::rates_page(&rates, tallies))],
                table,
            )
        }
        Merged::Explore { exploration, .. } => (
            report::explore::json(exploration),
            vec![
                (&args.html, report::html::explore_page(exploration)),
                (&args.svg, report::explore::svg(exploration)),
            ],
            report::explore::render(exploration, width),
        ),
    };
    if let Some(out) = json_out.as_mut() {
        writeln!(out, "{json}")
            .map_err(|e| Failure::Internal(format!("writing the JSON report: {e}")))?;
    }
    for (path, text) in pages {
        if let Some(path) = path {
            std::fs::write(path, text)
                .map_err(|e| Failure::Internal(format!("writing {path}: {e}")))?;
        }
    }
    if args.json.as_deref() != Some("-") {
        anstream::print!("{table}");
    }
    Ok(())
}

/// The runs an earlier process of this shard left in its file: their
/// tallies and views, and the (design, seed) pairs not to run again.
pub(super) fn resumed_runs(path: &str, lines: Numbered) -> Result<Vec<(Tally, Value)>, InputError> {
    lines
        .into_iter()
        .map(|(n, line)| match line {
            Line::Run(view) => sweep::tally(&view)
                .map(|t| (t, view))
                .map_err(|e| sweep::file_error(path, n, e)),
            _ => Err(sweep::file_error(path, n, "not a run's line")),
        })
        .collect()
}
