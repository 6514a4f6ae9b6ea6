//! `printk-sim explain`: a run told in plain sentences, for teaching.
//!
//! Everything said comes from the runs themselves: the watchdog's findings
//! (cycle, holder, point, stacks), the timeline of each CPU (when an NMI
//! came, how long a CPU spun and on what), lockdep's findings, the
//! accounts; and, for "how the other designs avoid it", the other designs'
//! runs of the same scenario with the same seed.

use std::fmt::Write as _;

use klog::lockdep::Rule;
use klog::printk::DropReason;
use klog::Context;

use crate::outcome::{Outcome, RunReport};
use crate::report::layout::ms;
use crate::report::timeline::{self, SpanKind};
use crate::scenario::Plan;
use crate::watchdog::{Action, Finding, FindingKind};

fn us(ns: u64) -> String {
    if ns >= 1_000_000 {
        ms(ns)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

fn context_words(c: Context) -> &'static str {
    match c {
        Context::Task => "task context",
        Context::Softirq => "a softirq",
        Context::Hardirq => "a hardirq handler",
        Context::Nmi => "an NMI handler",
    }
}

/// What a drop reason means, in words.
fn reason_words(why: DropReason) -> &'static str {
    match why {
        DropReason::NmiTrylockFailed => {
            "the NMI's one trylock of logbuf_lock failed and the message was dropped"
        }
        DropReason::Recursion => {
            "printk found itself re-entered on the same CPU and dropped the message"
        }
        DropReason::NoSpace => "the message did not fit in the buffer",
        DropReason::NmiBufferFull => "the per-CPU NMI buffer was full",
        DropReason::NeverFlushed => {
            "messages were still waiting in a per-CPU buffer when the run ended"
        }
        DropReason::DescBusy | DropReason::DataBusy => {
            "the ring could not recycle a record another context had not finished"
        }
        DropReason::TooBig => "the message was larger than the ring",
        DropReason::OtherCpuInPanic => "another CPU was in panic, and only its messages count",
    }
}

/// "CPU 1, CPU 3".
fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(|c| format!("CPU {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The call trace of `cpu` in `f`, outermost first, as "a → b → c".
fn trace_of(f: &Finding, cpu: usize) -> Option<String> {
    f.stacks
        .iter()
        .find(|(c, _)| *c == cpu)
        .map(|(_, t)| t.frames.join(" → "))
}

/// The story of one finding.
fn tell_finding(s: &mut String, r: &RunReport, f: &Finding) {
    let at = (f.at_ms * 1e6) as u64;
    match f.kind {
        FindingKind::Deadlock => tell_deadlock(s, r, f, at),
        FindingKind::HardLockup | FindingKind::SoftLockup => tell_lockup(s, f, at),
    }
}

/// A deadlock: who held what, what came in on top, why it could never end.
fn tell_deadlock(s: &mut String, r: &RunReport, f: &Finding, at: u64) {
    let lanes = timeline::lanes(r);
    let since = at.saturating_sub((f.detected_after_ms * 1e6) as u64);
    let lock = f.lock.unwrap_or("a lock");
    let holder = f.holder_cpu.unwrap_or(f.cpu);
    let holder_ctx = f.holder_context.unwrap_or(Context::Task);
    let _ = write!(
        s,
        "CPU {holder} was in {} and held {lock}",
        context_words(holder_ctx)
    );
    if let Some(p) = f.point {
        let _ = write!(s, ", taken at the point {p}");
    }
    s.push_str(".\n");
    // The interrupt that came in on top, from the timeline.
    let interrupting = lanes.get(f.cpu).and_then(|l| {
        l.spans
            .iter()
            .filter(|sp| sp.kind == SpanKind::Context(f.context) && sp.start <= since + 1_000_000)
            .filter(|sp| sp.end + 1_000_000 >= since)
            .max_by_key(|sp| sp.end - sp.start)
    });
    if f.context != Context::Task {
        match interrupting {
            Some(sp) => {
                let _ = writeln!(
                    s,
                    "At {} {} began on CPU {} and ran for {}.",
                    ms(sp.start),
                    context_words(f.context),
                    f.cpu,
                    ms(sp.end - sp.start)
                );
            }
            None => {
                let _ = writeln!(s, "{} ran on CPU {}.", context_words(f.context), f.cpu);
            }
        }
    }
    if let Some(t) = trace_of(f, f.cpu) {
        let _ = writeln!(s, "CPU {}'s call trace then: {t}.", f.cpu);
    }
    let _ = writeln!(
        s,
        "In {} CPU {} needed {lock} and spun on it {} times for {} before the watchdog stepped in.",
        context_words(f.context),
        f.cpu,
        f.spins,
        ms((f.detected_after_ms * 1e6) as u64)
    );
    tell_cycle(s, &f.cycle);
    if !f.blocked_behind.is_empty() {
        let _ = writeln!(
            s,
            "{} spun behind it, waiting for the same lock: stuck too, though not part of the cycle.",
            cpu_list(&f.blocked_behind)
        );
    }
    let _ = writeln!(
        s,
        "The watchdog found the cycle at {} and {}.",
        ms(at),
        match f.action {
            Action::Break =>
                "broke the innermost wait: that printk gave up and its message was lost",
            Action::Stop => "stopped the run",
            Action::Off => "left it spinning",
            Action::Report => "reported it",
        }
    );
}

/// Why a deadlock's wait could never end, link by link of its cycle.
fn tell_cycle(s: &mut String, cycle: &[String]) {
    // Why it could never end, link by link.
    s.push_str("That wait could never end:\n");
    let nodes: Vec<&String> = cycle.iter().collect();
    let mut i = 0;
    while i < nodes.len() {
        let node = nodes[i];
        match nodes.get(i + 1) {
            Some(next) if next.contains('/') => {
                let _ = writeln!(
                    s,
                    "  {node} cannot run again until {next}, which interrupted it, returns;"
                );
                i += 1;
            }
            Some(l) => {
                let holder = nodes.get(i + 2).map_or(&nodes[0], |n| n);
                let _ = writeln!(s, "  {node} waits for {l}, held by {holder};");
                i += 2;
            }
            None => {
                let _ = writeln!(
                    s,
                    "  {node} cannot run again until {}, which interrupted it, returns.",
                    nodes[0]
                );
                i += 1;
            }
        }
    }
}

/// A lockup: how long, where, spinning on what.
fn tell_lockup(s: &mut String, f: &Finding, at: u64) {
    let what = if f.kind == FindingKind::HardLockup {
        "handled no timer interrupt"
    } else {
        "made no progress in task context"
    };
    let _ = write!(
        s,
        "CPU {} {what} for {} (found at {})",
        f.cpu,
        ms((f.detected_after_ms * 1e6) as u64),
        ms(at),
    );
    if f.kind == FindingKind::HardLockup || f.context != Context::Task {
        let _ = write!(s, ", in {}", context_words(f.context));
    }
    if let Some(l) = f.lock {
        let _ = write!(s, ", spinning on {l}");
        if let (Some(h), Some(hc)) = (f.holder_cpu, f.holder_context) {
            let _ = write!(s, " held by CPU {h} in {}", context_words(hc));
        }
    }
    s.push_str(".\n");
    if let Some(t) = trace_of(f, f.cpu) {
        let _ = writeln!(s, "Its call trace: {t}.");
    }
    if !f.blocked_behind.is_empty() {
        let _ = writeln!(s, "Stuck behind it: {}.", cpu_list(&f.blocked_behind));
    }
}

/// What each CPU did, in time order: the interrupts that came, the spins
/// longer than a millisecond.
fn tell_cpus(s: &mut String, r: &RunReport) {
    for (cpu, l) in timeline::lanes(r).iter().enumerate() {
        let printks = l.marks.iter().filter(|m| !m.finding).count();
        let nmis: Vec<_> = l
            .spans
            .iter()
            .filter(|sp| sp.kind == SpanKind::Context(Context::Nmi))
            .collect();
        let _ = write!(
            s,
            "CPU {cpu}: called printk {printks} times; took {} NMI(s)",
            nmis.len()
        );
        if let Some(longest) = nmis.iter().max_by_key(|sp| sp.end - sp.start) {
            let _ = write!(
                s,
                " (the longest at {} for {})",
                ms(longest.start),
                us(longest.end - longest.start)
            );
        }
        let long_spins: Vec<_> = l
            .spans
            .iter()
            .filter(|sp| sp.kind == SpanKind::Spin && sp.end - sp.start > 1_000_000)
            .collect();
        for sp in long_spins {
            let _ = write!(
                s,
                "; from {} spun {} on {}",
                ms(sp.start),
                ms(sp.end - sp.start),
                sp.name
            );
        }
        s.push_str(".\n");
    }
}

/// How design `r` fared on the same scenario, from its run.
fn tell_other(s: &mut String, r: &RunReport, focus_lock: Option<&str>) {
    let _ = write!(s, "  {}: {}", r.design, r.outcome.name());
    match r.outcome {
        Outcome::Deadlock => {
            if let Some(f) = r.findings.iter().find(|f| f.kind == FindingKind::Deadlock) {
                let _ = write!(
                    s,
                    ", the same way: {} waited for {} held by cpu{}/{}",
                    f.cycle.first().map_or("?", String::as_str),
                    f.lock.unwrap_or("?"),
                    f.holder_cpu.unwrap_or(0),
                    f.holder_context.unwrap_or(Context::Task)
                );
            }
        }
        _ => {
            let nmis: u64 = r.nmis.iter().sum();
            let fired: u64 = r.fired.iter().sum();
            let mut said = Vec::new();
            if fired == 0 && nmis == 0 {
                let total: u64 = r.console.printed_by.iter().sum();
                let printer = r.console.printed_by.get(r.nmis.len()).copied().unwrap_or(0);
                if total > 0 && printer == total {
                    let mut w =
                        "no CPU ever printed to the console (its printer thread did all of it)"
                            .to_string();
                    if !r.fired.is_empty() {
                        w += ", so no CPU was ever in the window and the NMI never came";
                    }
                    said.push(w);
                } else if !r.fired.is_empty() {
                    said.push("the NMI never came: no CPU reached the point".to_string());
                }
            } else {
                let nmi = r.latency[3];
                if nmi.count > 0 {
                    said.push(format!(
                        "its NMI printk returned in at most {}",
                        us(nmi.max)
                    ));
                }
                let takes_it = r.lockdep.iter().any(|l| Some(l.lock) == focus_lock);
                if let Some(lock) = focus_lock {
                    if !takes_it && nmis > 0 {
                        said.push(format!("nothing in NMI context waited for {lock}"));
                    }
                }
                let moved = r
                    .records
                    .iter()
                    .filter(|rec| {
                        rec.context == Context::Hardirq
                            && crate::workload::parse_msg(&rec.text)
                                .is_some_and(|(_, c, _)| c == Context::Nmi)
                    })
                    .count();
                if moved > 0 {
                    said.push(format!(
                        "the NMI's {moved} message(s) reached the log later, copied from a per-CPU buffer in hardirq context"
                    ));
                }
            }
            for (why, n) in r.dropped_by.iter().filter(|(_, n)| *n > 0) {
                said.push(format!("{n} message(s) dropped: {}", reason_words(*why)));
            }
            if r.accounts.lost_in_deadlock > 0 {
                said.push(format!(
                    "{} lost in a deadlock",
                    r.accounts.lost_in_deadlock
                ));
            }
            said.extend(crate::report::verdict::particulars(r));
            if !said.is_empty() {
                let _ = write!(s, ": {}", said.join("; "));
            }
        }
    }
    s.push_str(".\n");
}

/// The narration of `runs` (one per design of `plan`, same seed), told
/// from `focus`'s point of view.
pub fn explain(plan: &Plan, runs: &[RunReport], focus: &str) -> String {
    let mut s = String::new();
    let Some(r) = runs.iter().find(|r| r.design == focus) else {
        return s;
    };
    let _ = writeln!(
        s,
        "{} on {} ({} CPUs, {} ms, seed {}): {}",
        r.design,
        plan.name,
        plan.cpus,
        plan.duration_ms,
        r.seed,
        r.outcome.name()
    );
    let _ = writeln!(s, "{}\n", plan.summary);
    s.push_str("What each CPU did:\n");
    tell_cpus(&mut s, r);
    s.push('\n');
    if r.findings.is_empty() {
        s.push_str("Nothing hung: the watchdog found no deadlock and no lockup.\n");
    }
    for f in &r.findings {
        tell_finding(&mut s, r, f);
        s.push('\n');
    }
    crate::report::story::tell(&mut s, plan, r);
    let a = r.accounts;
    let _ = writeln!(
        s,
        "Messages: {} attempted, {} stored, {} dropped, {} lost in a deadlock.",
        a.attempted, a.stored, a.dropped, a.lost_in_deadlock
    );
    for (why, n) in r.dropped_by.iter().filter(|(_, n)| *n > 0) {
        let _ = writeln!(s, "  {n} dropped because {}.", reason_words(*why));
    }
    if r.lockdep.is_empty() {
        s.push_str("lockdep: no rule broken.\n");
    }
    for l in &r.lockdep {
        let why = match l.rule {
            Rule::NmiUnsafeLock => format!(
                "{} is taken in NMI context and elsewhere; an NMI can land on a CPU while that CPU holds it, and then neither can go on. A lock an NMI takes must never be taken anywhere else",
                l.lock
            ),
            Rule::InconsistentIrqUsage => format!(
                "{} is taken in a hardirq handler and in task context with interrupts on; the interrupt can land while its own CPU holds it",
                l.lock
            ),
            Rule::CircularLockOrder => format!(
                "{} and another lock are taken in both orders; two CPUs taking them at once wait for each other",
                l.lock
            ),
        };
        let _ = writeln!(s, "Rule broken (lockdep: \"{}\"): {why}.", l.message);
        let kernel = klog::printk::design(r.design).map(|d| d.kernel);
        match (l.kernel, kernel) {
            (true, Some(k)) => {
                let _ = writeln!(s, "{k}'s lockdep would have printed it, in these words:");
            }
            _ => {
                let _ = writeln!(
                    s,
                    "printk-sim's own finding, not the kernel's: {}. Had it printed it, in these words:",
                    l.why
                );
            }
        }
        s.push_str(&l.report);
        if let Some(e) = l.example {
            let _ = writeln!(
                s,
                "  First seen on CPU {} in {}{}.",
                e.cpu,
                context_words(e.context),
                e.point
                    .map(|p| format!(" at {}", p.name))
                    .unwrap_or_default()
            );
        }
        if !l.stack.is_empty() {
            let _ = writeln!(s, "  Its call trace then: {}.", l.stack.join(" → "));
        }
    }
    let focus_lock = r.findings.iter().find_map(|f| f.lock);
    let others: Vec<&RunReport> = runs.iter().filter(|o| o.design != focus).collect();
    if !others.is_empty() {
        s.push_str("\nThe same scenario, the same seed, under the other designs:\n");
        for o in others {
            tell_other(&mut s, o, focus_lock);
        }
    }
    s
}
