//! The first thing on the screen: one line per design with its outcome and
//! what made it ("legacy: DEADLOCK, cpu0/nmi on logbuf_lock, 1 message
//! lost").

use klog::printk::{DropReason, Event};

use crate::outcome::RunReport;
use crate::report::layout::{outcome_style, paint_first, wrap_from};
use crate::watchdog::{Finding, FindingKind, Stuck};

/// How many findings a verdict names before it says "+N more".
const FINDINGS_NAMED: usize = 2;

/// A finding in a few words: where the CPU spun, and on what.
pub fn finding_words(f: &Finding) -> String {
    match f.kind {
        FindingKind::Deadlock => who_on(f),
        FindingKind::HardLockup => format!("hard lockup {}", who_on(f)),
        FindingKind::SoftLockup => format!("soft lockup {}", who_on(f)),
    }
}

/// "cpu0/nmi on logbuf_lock": the CPU and context of a finding, and the
/// lock it spun on, if any.
pub fn who_on(f: &Finding) -> String {
    let lock = f.lock.map(|l| format!(" on {l}")).unwrap_or_default();
    format!("cpu{}/{}{lock}", f.cpu, f.context)
}

/// "cpu1/task on console_sem": a wait still spinning when the run ended.
pub fn stuck_words(w: &Stuck) -> String {
    format!("cpu{}/{} on {}", w.cpu, w.context, w.lock)
}

/// "name count" for each of `counts` that is not zero.
pub fn named_counts<T: Copy>(counts: &[(T, u64)], name: fn(T) -> &'static str) -> Vec<String> {
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|&(what, n)| format!("{} {n}", name(what)))
        .collect()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What was lost, and why; "nothing lost" when nothing was.
fn losses(r: &RunReport) -> Vec<String> {
    let a = r.accounts;
    let mut v = Vec::new();
    if a.lost_in_deadlock > 0 {
        v.push(format!(
            "{} lost",
            plural(a.lost_in_deadlock, "message", "messages")
        ));
    }
    if a.dropped > 0 {
        let why = named_counts(&r.dropped_by, DropReason::name);
        v.push(format!("{} dropped ({})", a.dropped, why.join(", ")));
    }
    if v.is_empty() && a.attempted > 0 {
        v.push("nothing lost".into());
    }
    v
}

/// The particulars a scenario is about, when the run has them: a panic, torn
/// remote stack dumps, a log reader that fell behind, the console's own
/// machinery, one CPU printing nearly everything.
pub fn particulars(r: &RunReport) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = r.panic {
        let how = if p.finished {
            "flushed"
        } else {
            "never finished"
        };
        v.push(format!("panic on cpu{}, {how}", p.cpu));
    }
    if r.remote_traces > 0 {
        v.push(format!(
            "{} of {} remote stack dumps torn",
            r.torn_traces, r.remote_traces
        ));
    }
    if let Some(rd) = r.reader {
        v.push(format!("log reader missed {}", rd.missed));
    }
    let events = named_counts(&r.events, Event::name);
    if !events.is_empty() {
        v.push(format!("console {}", events.join(", ")));
    }
    let total: u64 = r.console.printed_by.iter().sum();
    let cpus = r.nmis.len();
    let top = r
        .console
        .printed_by
        .iter()
        .take(cpus)
        .enumerate()
        .max_by_key(|(_, n)| **n);
    if let Some((cpu, n)) = top.filter(|(_, n)| cpus > 1 && **n * 10 >= total * 9 && total > 0) {
        v.push(format!(
            "cpu{cpu} printed {:.0}% of the console",
            *n as f64 * 100.0 / total as f64
        ));
    }
    v
}

/// The verdict's words after the outcome, in the order a reader wants them.
pub fn parts(r: &RunReport) -> Vec<String> {
    let mut v = Vec::new();
    if r.interrupted {
        v.push("interrupted by Ctrl-C".to_string());
    }
    v.extend(r.findings.iter().take(FINDINGS_NAMED).map(finding_words));
    if r.findings.len() > FINDINGS_NAMED {
        v.push(format!(
            "+{} more",
            plural(
                (r.findings.len() - FINDINGS_NAMED) as u64,
                "finding",
                "findings"
            )
        ));
    }
    v.extend(
        r.stuck
            .iter()
            .map(|w| format!("still spinning: {}", stuck_words(w))),
    );
    v.extend(losses(r));
    v.extend(particulars(r));
    v
}

/// One design's verdict, wrapped to `width`, its name padded to `name_w`.
pub fn line(r: &RunReport, name_w: usize, width: usize) -> String {
    let outcome = r.outcome.name().to_uppercase();
    let head = format!("{:name_w$} ", format!("{}:", r.design));
    let mut words = vec![outcome.clone()];
    words.extend(parts(r));
    let text = wrap_from(&words.join(", "), head.len(), width, name_w + 1);
    head + &paint_first(&text, outcome.len(), outcome_style(r.outcome))
}

/// Every design's verdict, one under the other.
pub fn render(runs: &[RunReport], width: usize) -> String {
    let name_w = runs.iter().map(|r| r.design.len() + 1).max().unwrap_or(0);
    runs.iter().map(|r| line(r, name_w, width) + "\n").collect()
}
