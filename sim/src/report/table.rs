//! The side-by-side table on stdout: one column per design.

use std::fmt::Write as _;

use crate::runner::{Outcome, RunReport};
use crate::scenario::Plan;

fn us(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

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
fn printed_by(r: &RunReport) -> String {
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

/// One column per run (one run per design).
pub fn render(plan: &Plan, runs: &[RunReport]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&RunReport) -> String| {
        rows.push((name.to_string(), runs.iter().map(f).collect()));
    };
    row("outcome", &|r| {
        let o = r.outcome.name().to_uppercase();
        if r.interrupted {
            format!("{o} (interrupted)")
        } else {
            o
        }
    });
    row("attempted", &|r| r.accounts.attempted.to_string());
    row("stored", &|r| r.accounts.stored.to_string());
    row("dropped", &|r| r.accounts.dropped.to_string());
    row("overwritten", &|r| r.accounts.overwritten.to_string());
    row("lost in deadlock", &|r| {
        r.accounts.lost_in_deadlock.to_string()
    });
    row("readable", &|r| r.accounts.readable.to_string());
    // Shown only when some run has them, like the latency rows.
    if runs
        .iter()
        .any(|r| r.accounts.unfinished + r.accounts.merged > 0)
    {
        row("unfinished / merged", &|r| {
            format!("{} / {}", r.accounts.unfinished, r.accounts.merged)
        });
    }
    row("printed", &|r| r.accounts.printed.to_string());
    for (level, name) in [(0, "task"), (2, "hardirq"), (3, "nmi")] {
        if runs.iter().any(|r| r.latency[level].count > 0) {
            row(&format!("latency {name} p50/p99"), &|r| {
                let s = r.latency[level];
                if s.count == 0 {
                    "-".into()
                } else {
                    format!("{} / {}", us(s.p50), us(s.p99))
                }
            });
            row(&format!("latency {name} max"), &|r| {
                let s = r.latency[level];
                if s.count == 0 {
                    "-".into()
                } else {
                    us(s.max)
                }
            });
        }
    }
    row("nmis handled", &|r| r.nmis.iter().sum::<u64>().to_string());
    row("dropped because", &|r| {
        list(
            r.dropped_by
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(why, n)| format!("{why} {n}")),
        )
    });
    row("console max lag", &|r| us(r.console.max_lag_ns));
    row("console skipped", &|r| r.console.skipped.to_string());
    row("console printed by", &|r| printed_by(r));
    if runs.iter().any(|r| r.events.iter().any(|(_, n)| *n > 0)) {
        row("console events", &|r| {
            list(
                r.events
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(what, n)| format!("{what} {n}")),
            )
        });
    }
    if runs.iter().any(|r| r.reader.is_some()) {
        row("log reader read/missed", &|r| match r.reader {
            Some((read, missed, overruns)) => {
                format!("{read} / {missed} ({overruns} overruns)")
            }
            None => "-".into(),
        });
    }
    if runs.iter().any(|r| r.remote_traces > 0) {
        row("remote stack dumps torn", &|r| {
            format!("{} of {}", r.torn_traces, r.remote_traces)
        });
    }
    if runs.iter().any(|r| r.panic.is_some()) {
        row("panic", &|r| match r.panic {
            Some((cpu, true)) => format!("cpu{cpu}, flushed"),
            Some((cpu, false)) => format!("cpu{cpu}, never finished"),
            None => "-".into(),
        });
    }
    row("findings", &|r| {
        list(r.findings.iter().map(|f| {
            let lock = f.lock.map(|l| format!(" on {l}")).unwrap_or_default();
            let behind = if f.blocked_behind.is_empty() {
                String::new()
            } else {
                let cpus: Vec<String> =
                    f.blocked_behind.iter().map(|c| format!("cpu{c}")).collect();
                format!(" (behind it: {})", cpus.join(" "))
            };
            format!("{} cpu{}/{}{lock}{behind}", f.kind.name(), f.cpu, f.context)
        }))
    });
    if runs.iter().any(|r| !r.stuck.is_empty()) {
        row("still spinning at the end", &|r| {
            list(
                r.stuck
                    .iter()
                    .map(|w| format!("cpu{}/{} on {}", w.cpu, w.context, w.lock)),
            )
        });
    }
    row("lockdep findings", &|r| {
        list(r.lockdep.iter().map(|f| {
            let own = if f.kernel { "" } else { " (printk-sim)" };
            format!("{} on {}{own}", f.rule, f.lock)
        }))
    });

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
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} ({} CPUs, {} ms, seed {})",
        plan.name, plan.summary, plan.cpus, plan.duration_ms, plan.seed
    );
    let _ = write!(s, "{:label_w$}", "");
    for (r, w) in runs.iter().zip(&widths) {
        let _ = write!(s, "  {:>w$}", r.design);
    }
    s.push('\n');
    for (name, cells) in &rows {
        let _ = write!(s, "{name:label_w$}");
        for (c, w) in cells.iter().zip(&widths) {
            let pad = w.saturating_sub(c.chars().count());
            let _ = write!(s, "  {}{c}", " ".repeat(pad));
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "times above are real; logs, the console and the kernel's messages speak kernel time (real / {})",
        plan.time_scale
    );
    s
}

/// With `--repeat`: one row per design, how often each outcome came up and
/// how soon the first finding was made.
pub fn render_rates(plan: &Plan, runs: &[RunReport]) -> String {
    let mut s = String::new();
    let seeds = runs
        .iter()
        .map(|r| r.seed)
        .collect::<std::collections::BTreeSet<_>>();
    let _ = writeln!(
        s,
        "{}: {} runs per design (seeds {}..={}), {} CPUs, {} ms",
        plan.name,
        seeds.len(),
        seeds.first().copied().unwrap_or(0),
        seeds.last().copied().unwrap_or(0),
        plan.cpus,
        plan.duration_ms
    );
    let _ = writeln!(
        s,
        "{:<14} {:>9} {:>9} {:>7} {:>7} {:>7} {:>12} {:>12}",
        "design", "timeout", "deadlock", "lockup", "loss", "clean", "first p50", "first p90"
    );
    for d in &plan.designs {
        let mine: Vec<&RunReport> = runs.iter().filter(|r| r.design == d.name).collect();
        let n = mine.len();
        let count = |o: Outcome| format!("{}/{n}", mine.iter().filter(|r| r.outcome == o).count());
        let mut firsts: Vec<f64> = mine
            .iter()
            .filter_map(|r| r.findings.first().map(|f| f.at_ms))
            .collect();
        firsts.sort_by(f64::total_cmp);
        let pct = |q: f64| {
            if firsts.is_empty() {
                "-".to_string()
            } else {
                let i = ((firsts.len() as f64 * q).ceil() as usize).clamp(1, firsts.len()) - 1;
                format!("{:.1} ms", firsts[i])
            }
        };
        let _ = writeln!(
            s,
            "{:<14} {:>9} {:>9} {:>7} {:>7} {:>7} {:>12} {:>12}",
            d.name,
            count(Outcome::Timeout),
            count(Outcome::Deadlock),
            count(Outcome::Lockup),
            count(Outcome::Loss),
            count(Outcome::Clean),
            pct(0.5),
            pct(0.9)
        );
    }
    s
}
