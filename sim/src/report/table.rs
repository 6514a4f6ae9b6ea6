//! The side-by-side tables on stdout: the compact one (a row per design,
//! the columns that fit the terminal, findings listed under it), the wide
//! one (`--wide`: every measure, a column per design), and the rates of
//! `--repeat`.

use std::fmt::Write as _;

use klog::printk::{DropReason, Event};

use crate::outcome::{Outcome, RunReport, Tally};
use crate::report::layout::{
    finding_style, outcome_style, paint, paint_first, us, wrap, wrap_from,
};
use crate::report::verdict::{self, named_counts};
use crate::scenario::Plan;
use crate::watchdog::Finding;

/// Items joined by commas, `-` when there are none.
fn list(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// Who wrote the console's records: each writer's share, largest first
/// (a slot past the last CPU is the design's printer thread).
pub(crate) fn printed_by(r: &RunReport) -> String {
    let total: u64 = r.console.printed_by.iter().sum();
    if total == 0 {
        return "-".into();
    }
    let cpus = r.nmis.len();
    let mut shares: Vec<(usize, u64)> = r
        .console
        .printed_by
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .collect();
    shares.sort_by_key(|(i, n)| (core::cmp::Reverse(*n), *i));
    let mut parts: Vec<String> = shares
        .iter()
        .take(3)
        .map(|(i, n)| {
            let who = if *i >= cpus {
                "printer".to_string()
            } else {
                format!("cpu{i}")
            };
            format!("{who} {:.0}%", *n as f64 * 100.0 / total as f64)
        })
        .collect();
    if shares.len() > 3 {
        parts.push(format!("+{} more", shares.len() - 3));
    }
    parts.join(", ")
}

/// Rows of the wide table: a label and one cell per run.
type Rows = Vec<(String, Vec<String>)>;

/// Adds a row: `name`, then `f` of every run.
fn push(rows: &mut Rows, runs: &[RunReport], name: &str, f: &dyn Fn(&RunReport) -> String) {
    rows.push((name.to_string(), runs.iter().map(f).collect()));
}

fn outcome_cell(r: &RunReport) -> String {
    let o = r.outcome.name().to_uppercase();
    if r.interrupted {
        format!("{o} (interrupted)")
    } else {
        o
    }
}

fn account_rows(rows: &mut Rows, runs: &[RunReport]) {
    push(rows, runs, "attempted", &|r| {
        r.accounts.attempted.to_string()
    });
    push(rows, runs, "stored", &|r| r.accounts.stored.to_string());
    push(rows, runs, "dropped", &|r| r.accounts.dropped.to_string());
    push(rows, runs, "overwritten", &|r| {
        r.accounts.overwritten.to_string()
    });
    push(rows, runs, "lost in deadlock", &|r| {
        r.accounts.lost_in_deadlock.to_string()
    });
    push(rows, runs, "readable", &|r| r.accounts.readable.to_string());
    // Shown only when some run has them, like the latency rows.
    if runs
        .iter()
        .any(|r| r.accounts.unfinished + r.accounts.merged > 0)
    {
        push(rows, runs, "unfinished / merged", &|r| {
            format!("{} / {}", r.accounts.unfinished, r.accounts.merged)
        });
    }
    push(rows, runs, "printed", &|r| r.accounts.printed.to_string());
}

/// The latency levels a table shows: index into `RunReport::latency`, name.
const LEVELS: [(usize, &str); 3] = [(0, "task"), (2, "hardirq"), (3, "nmi")];

fn latency_rows(rows: &mut Rows, runs: &[RunReport]) {
    for (level, name) in LEVELS {
        if !runs.iter().any(|r| r.latency[level].count > 0) {
            continue;
        }
        push(rows, runs, &format!("latency {name} p50/p99"), &|r| {
            let s = r.latency[level];
            if s.count == 0 {
                "-".into()
            } else {
                format!("{} / {}", us(s.p50), us(s.p99))
            }
        });
        push(rows, runs, &format!("latency {name} max"), &|r| {
            let s = r.latency[level];
            if s.count == 0 {
                "-".into()
            } else {
                us(s.max)
            }
        });
    }
}

fn console_rows(rows: &mut Rows, runs: &[RunReport]) {
    push(rows, runs, "nmis handled", &|r| {
        r.nmis.iter().sum::<u64>().to_string()
    });
    push(rows, runs, "dropped because", &|r| {
        list(named_counts(&r.dropped_by, DropReason::name).into_iter())
    });
    push(rows, runs, "console max lag", &|r| us(r.console.max_lag_ns));
    push(rows, runs, "console skipped", &|r| {
        r.console.skipped.to_string()
    });
    push(rows, runs, "console printed by", &printed_by);
    if runs.iter().any(|r| r.events.iter().any(|(_, n)| *n > 0)) {
        push(rows, runs, "console events", &|r| {
            list(named_counts(&r.events, Event::name).into_iter())
        });
    }
}

fn particular_rows(rows: &mut Rows, runs: &[RunReport]) {
    if runs.iter().any(|r| r.reader.is_some()) {
        push(rows, runs, "log reader read/missed", &|r| match r.reader {
            Some(rd) => format!("{} / {} ({} overruns)", rd.read, rd.missed, rd.overruns),
            None => "-".into(),
        });
    }
    if runs.iter().any(|r| r.remote_traces > 0) {
        push(rows, runs, "remote stack dumps torn", &|r| {
            format!("{} of {}", r.torn_traces, r.remote_traces)
        });
    }
    if runs.iter().any(|r| r.panic.is_some()) {
        push(rows, runs, "panic", &|r| match r.panic {
            Some(p) if p.finished => format!("cpu{}, flushed", p.cpu),
            Some(p) => format!("cpu{}, never finished", p.cpu),
            None => "-".into(),
        });
    }
}

/// A watchdog finding as the tables name it: kind, CPU and context, lock,
/// and the CPUs stuck behind it.
fn finding_cell(f: &Finding) -> String {
    let behind = if f.blocked_behind.is_empty() {
        String::new()
    } else {
        let cpus: Vec<String> = f.blocked_behind.iter().map(|c| format!("cpu{c}")).collect();
        format!(" (behind it: {})", cpus.join(" "))
    };
    format!("{} {}{behind}", f.kind.name(), verdict::who_on(f))
}

/// A lockdep finding as the tables name it; printk-sim's own rules marked.
fn lockdep_cell(f: &klog::lockdep::Finding) -> String {
    let own = if f.kernel { "" } else { " (printk-sim)" };
    format!("{} on {}{own}", f.rule.name(), f.lock)
}

fn finding_rows(rows: &mut Rows, runs: &[RunReport]) {
    push(rows, runs, "findings", &|r| {
        list(r.findings.iter().map(finding_cell))
    });
    if runs.iter().any(|r| !r.stuck.is_empty()) {
        push(rows, runs, "still spinning at the end", &|r| {
            list(r.stuck.iter().map(verdict::stuck_words))
        });
    }
    push(rows, runs, "lockdep findings", &|r| {
        list(r.lockdep.iter().map(lockdep_cell))
    });
}

/// The scenario's name, its size and seed; its summary under it.
fn heading(plan: &Plan, width: usize) -> String {
    let title = format!(
        "{} ({} CPUs, {} ms, seed {})",
        plan.name, plan.cpus, plan.duration_ms, plan.seed
    );
    format!(
        "{}\n  {}\n",
        wrap(&title, width, 2),
        wrap_from(&plan.summary, 2, width, 2)
    )
}

/// The line on time: the tables' times are real, the kernel's are scaled.
fn time_note(plan: &Plan, width: usize) -> String {
    wrap(
        &format!(
            "times above are real; logs, the console and the kernel's messages speak kernel time (real / {})",
            plan.time_scale
        ),
        width,
        0,
    ) + "\n"
}

/// `--wide`: every measure, one row each, one column per run (one run per
/// design), as wide as it takes.
pub fn render_wide(plan: &Plan, runs: &[RunReport]) -> String {
    let mut rows: Rows = Vec::new();
    push(&mut rows, runs, "outcome", &outcome_cell);
    account_rows(&mut rows, runs);
    latency_rows(&mut rows, runs);
    console_rows(&mut rows, runs);
    particular_rows(&mut rows, runs);
    finding_rows(&mut rows, runs);

    let label_w = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let mut widths: Vec<usize> = runs.iter().map(|r| r.design.len()).collect();
    for (_, cells) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = heading(plan, usize::MAX);
    let _ = write!(s, "{:label_w$}", "");
    for (r, w) in runs.iter().zip(&widths) {
        let _ = write!(s, "  {:>w$}", r.design);
    }
    s.push('\n');
    for (name, cells) in &rows {
        let _ = write!(s, "{name:label_w$}");
        for ((c, w), r) in cells.iter().zip(&widths).zip(runs) {
            let pad = " ".repeat(w.saturating_sub(c.chars().count()));
            let cell = if name == "outcome" {
                paint(c, outcome_style(r.outcome))
            } else {
                c.clone()
            };
            let _ = write!(s, "  {pad}{cell}");
        }
        s.push('\n');
    }
    s + &time_note(plan, usize::MAX)
}

/// A column of the compact table: its heading, how much it matters (lower
/// first, kept first when the width runs out) and one cell per run.
struct Column {
    head: &'static str,
    rank: u8,
    cells: Vec<String>,
}

impl Column {
    fn new(
        head: &'static str,
        rank: u8,
        runs: &[RunReport],
        f: &dyn Fn(&RunReport) -> String,
    ) -> Self {
        Column {
            head,
            rank,
            cells: runs.iter().map(f).collect(),
        }
    }

    fn width(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.chars().count())
            .chain([self.head.len()])
            .max()
            .unwrap_or(0)
    }
}

/// The compact table's columns in the order they are shown; the ones no run
/// has anything for are left out.
fn columns(runs: &[RunReport]) -> Vec<Column> {
    let any = |f: &dyn Fn(&RunReport) -> bool| runs.iter().any(f);
    let p99 = |level: usize| {
        move |r: &RunReport| {
            let s = r.latency[level];
            if s.count == 0 {
                "-".into()
            } else {
                us(s.p99)
            }
        }
    };
    let mut cols = vec![
        Column::new("design", 0, runs, &|r| r.design.to_string()),
        Column::new("outcome", 0, runs, &|r| r.outcome.name().to_uppercase()),
        Column::new("attempted", 1, runs, &|r| r.accounts.attempted.to_string()),
        Column::new("stored", 3, runs, &|r| r.accounts.stored.to_string()),
        Column::new("dropped", 1, runs, &|r| r.accounts.dropped.to_string()),
        Column::new("lost", 1, runs, &|r| {
            r.accounts.lost_in_deadlock.to_string()
        }),
    ];
    if any(&|r| r.accounts.overwritten > 0) {
        cols.push(Column::new("overwritten", 4, runs, &|r| {
            r.accounts.overwritten.to_string()
        }));
    }
    cols.push(Column::new("printed", 2, runs, &|r| {
        r.accounts.printed.to_string()
    }));
    if any(&|r| r.nmis.iter().any(|n| *n > 0)) {
        cols.push(Column::new("nmis", 7, runs, &|r| {
            r.nmis.iter().sum::<u64>().to_string()
        }));
    }
    cols.push(Column::new("task p99", 4, runs, &p99(0)));
    if any(&|r| r.latency[2].count > 0) {
        cols.push(Column::new("irq p99", 6, runs, &p99(2)));
    }
    if any(&|r| r.latency[3].count > 0) {
        cols.push(Column::new("nmi p99", 2, runs, &p99(3)));
    }
    cols.push(Column::new("lag max", 5, runs, &|r| {
        us(r.console.max_lag_ns)
    }));
    cols
}

/// Which columns fit in `width`: the most important first, two spaces
/// between columns.
fn fit(cols: &[Column], width: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&i| (cols[i].rank, i));
    let mut keep = vec![false; cols.len()];
    let mut used = 0;
    for i in order {
        let w = cols[i].width() + if used == 0 { 0 } else { 2 };
        if cols[i].rank == 0 || used + w <= width {
            keep[i] = true;
            used += w;
        }
    }
    keep
}

/// The compact table: one row per design, the columns that fit.
fn compact_table(runs: &[RunReport], width: usize) -> (String, Vec<&'static str>) {
    let cols = columns(runs);
    let keep = fit(&cols, width);
    let shown: Vec<&Column> = cols
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c)
        .collect();
    let widths: Vec<usize> = shown.iter().map(|c| c.width()).collect();
    let mut s = String::new();
    let line = |s: &mut String, cells: &[String], paint_outcome: Option<&RunReport>| {
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w.saturating_sub(c.chars().count()));
            let sep = if i == 0 { "" } else { "  " };
            let cell = match paint_outcome {
                Some(r) if i == 1 => paint(c, outcome_style(r.outcome)),
                _ => c.clone(),
            };
            // Names and outcomes read left to right, numbers line up right.
            if i < 2 {
                let _ = write!(s, "{sep}{cell}{pad}");
            } else {
                let _ = write!(s, "{sep}{pad}{cell}");
            }
        }
        let trimmed = s.trim_end_matches(' ').len();
        s.truncate(trimmed);
        s.push('\n');
    };
    let heads: Vec<String> = shown.iter().map(|c| c.head.to_string()).collect();
    line(&mut s, &heads, None);
    for (i, r) in runs.iter().enumerate() {
        let cells: Vec<String> = shown.iter().map(|c| c.cells[i].clone()).collect();
        line(&mut s, &cells, Some(r));
    }
    let hidden = cols
        .iter()
        .zip(&keep)
        .filter(|(_, k)| !**k)
        .map(|(c, _)| c.head)
        .collect();
    (s, hidden)
}

/// Under the table: every finding, and lockdep's, one per line.
fn findings_list(runs: &[RunReport], width: usize) -> String {
    let name_w = runs.iter().map(|r| r.design.len() + 1).max().unwrap_or(0);
    let mut s = String::new();
    for r in runs {
        let head = format!("{:name_w$}", format!("{}:", r.design));
        let items = r
            .findings
            .iter()
            .map(finding_cell)
            .chain(
                r.stuck
                    .iter()
                    .map(|w| format!("still spinning at the end: {}", verdict::stuck_words(w))),
            )
            .chain(
                r.lockdep
                    .iter()
                    .map(|f| format!("lockdep {}", lockdep_cell(f))),
            );
        for item in items {
            let kind = item.split(' ').next().unwrap_or("").len();
            let text = wrap_from(&item, 2 + head.len() + 1, width, name_w + 3);
            let _ = writeln!(s, "  {head} {}", paint_first(&text, kind, finding_style()));
        }
    }
    if s.is_empty() {
        s
    } else {
        format!("findings:\n{s}")
    }
}

/// The run's report laid out for `width` columns: the scenario, a verdict
/// per design, the compact table, the findings under it, and what was left
/// out for width.
pub fn render(plan: &Plan, runs: &[RunReport], width: usize) -> String {
    let mut s = heading(plan, width);
    s.push('\n');
    s += &verdict::render(runs, width);
    s.push('\n');
    let (table, hidden) = compact_table(runs, width);
    s += &table;
    s += &findings_list(runs, width);
    if !hidden.is_empty() {
        s += &wrap(
            &format!(
                "not shown at {width} columns: {}; --wide or --json has every measure",
                hidden.join(", ")
            ),
            width,
            0,
        );
        s.push('\n');
    }
    s + &time_note(plan, width)
}

/// What the rates table says above its rows: the scenario, its machine,
/// and the designs in the order they ran.
#[derive(Clone, Debug)]
pub struct RatesHead {
    /// The scenario's name.
    pub scenario: String,
    /// CPUs.
    pub cpus: usize,
    /// Run length.
    pub duration_ms: u64,
    /// The designs, in order.
    pub designs: Vec<String>,
}

impl RatesHead {
    /// The head of `plan`'s table.
    pub fn of(plan: &Plan) -> RatesHead {
        RatesHead {
            scenario: plan.name.clone(),
            cpus: plan.cpus,
            duration_ms: plan.duration_ms,
            designs: plan.designs.iter().map(|d| d.name.to_string()).collect(),
        }
    }
}

/// With `--repeat`: one row per design, how often each outcome came up and
/// how soon the first finding was made.
pub fn render_rates(head: &RatesHead, runs: &[Tally], width: usize) -> String {
    let seeds = runs
        .iter()
        .map(|r| r.seed)
        .collect::<std::collections::BTreeSet<_>>();
    let mut s = wrap(
        &format!(
            "{}: {} runs per design (seeds {}..={}), {} CPUs, {} ms",
            head.scenario,
            seeds.len(),
            seeds.first().copied().unwrap_or(0),
            seeds.last().copied().unwrap_or(0),
            head.cpus,
            head.duration_ms
        ),
        width,
        2,
    );
    s.push('\n');
    let outcomes = [
        Outcome::Timeout,
        Outcome::Deadlock,
        Outcome::Lockup,
        Outcome::Loss,
        Outcome::Clean,
    ];
    let mut table: Vec<Vec<String>> = vec![["design"]
        .into_iter()
        .chain(outcomes.map(Outcome::name))
        .chain(["first p50", "first p90"])
        .map(String::from)
        .collect()];
    for d in &head.designs {
        let mine: Vec<&Tally> = runs.iter().filter(|r| r.design == *d).collect();
        let n = mine.len();
        let mut firsts: Vec<f64> = mine.iter().filter_map(|r| r.first_at_ms).collect();
        firsts.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            if firsts.is_empty() {
                "-".to_string()
            } else {
                let i = ((firsts.len() as f64 * q).ceil() as usize).clamp(1, firsts.len()) - 1;
                format!("{:.1} ms", firsts[i])
            }
        };
        let mut row = vec![d.clone()];
        row.extend(
            outcomes.map(|o| format!("{}/{n}", mine.iter().filter(|r| r.outcome == o).count())),
        );
        row.extend([pct(0.5), pct(0.9)]);
        table.push(row);
    }
    // Too wide: the outcomes no run had go first (said under the table).
    let mut left_out = Vec::new();
    for o in [
        Outcome::Timeout,
        Outcome::Lockup,
        Outcome::Loss,
        Outcome::Deadlock,
    ] {
        if table_width(&table) <= width {
            break;
        }
        let Some(c) = table
            .first()
            .and_then(|h| h.iter().position(|h| h == o.name()))
        else {
            continue;
        };
        if table.iter().skip(1).all(|row| row[c].starts_with("0/")) {
            for row in &mut table {
                row.remove(c);
            }
            left_out.push(o.name());
        }
    }
    let widths = column_widths(&table);
    for row in &table {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(line, "{cell:w$}");
            } else {
                let _ = write!(line, "  {cell:>w$}");
            }
        }
        s += &line;
        s.push('\n');
    }
    if !left_out.is_empty() {
        s += &wrap(&format!("no run had: {}", left_out.join(", ")), width, 0);
        s.push('\n');
    }
    s += &distinct_findings(head, runs, width);
    s
}

/// The findings of many runs grouped by title, per design: how many
/// distinct bugs a sweep found, and in how many runs each (with the first
/// seed that shows it).
fn distinct_findings(head: &RatesHead, runs: &[Tally], width: usize) -> String {
    let mut rows: Vec<(&str, String, usize, usize, u64)> = Vec::new();
    for d in &head.designs {
        let mine: Vec<&Tally> = runs.iter().filter(|r| r.design == *d).collect();
        let mut titles: Vec<(String, usize, u64)> = Vec::new();
        for r in &mine {
            let mut seen: Vec<String> = r.titles.clone();
            seen.sort();
            seen.dedup();
            for t in seen {
                match titles.iter_mut().find(|(x, _, _)| *x == t) {
                    Some(e) => e.1 += 1,
                    None => titles.push((t, 1, r.seed)),
                }
            }
        }
        titles.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows.extend(
            titles
                .into_iter()
                .map(|(t, n, seed)| (d.as_str(), t, n, mine.len(), seed)),
        );
    }
    if rows.is_empty() {
        return String::new();
    }
    let distinct = rows.len();
    let mut s = format!(
        "distinct findings: {distinct} (runs that had each, of the design's runs; first seed)\n"
    );
    let name_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let count_w = rows
        .iter()
        .map(|r| format!("{}/{}", r.2, r.3).len())
        .max()
        .unwrap_or(0);
    for (design, title, n, of, seed) in rows {
        let head = format!("  {design:name_w$}  {:>count_w$}  ", format!("{n}/{of}"));
        s += &head;
        s += &crate::report::layout::wrap_from(
            &format!("{title} (seed {seed})"),
            head.chars().count(),
            width,
            head.chars().count(),
        );
        s.push('\n');
    }
    s
}

/// Each column's width: its widest cell.
fn column_widths(table: &[Vec<String>]) -> Vec<usize> {
    let n = table.first().map_or(0, Vec::len);
    (0..n)
        .map(|c| {
            table
                .iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// The width of `table` printed with two spaces between columns.
fn table_width(table: &[Vec<String>]) -> usize {
    let w = column_widths(table);
    w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1)
}
