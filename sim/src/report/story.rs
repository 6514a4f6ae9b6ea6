//! `explain`'s part for what a scenario is about besides deadlocks: torn
//! remote stack dumps, the NMI buffers and their flush, who printed the
//! console and the hand-offs between them, nbcon's handover and replay, a
//! panic and what reached the console, a log reader falling behind. Each
//! paragraph is told only when the run has it, from the run's own data.

use std::fmt::Write as _;

use klog::printk::{DropReason, Event};
use klog::Context;

use crate::outcome::RunReport;
use crate::report::layout::ms;
use crate::report::table::printed_by;
use crate::scenario::Plan;
use crate::workload::parse_msg;

/// A record's time in real ns since the run started (records carry kernel
/// time: real time divided by the time scale).
fn real_ns(plan: &Plan, kernel_ns: u64) -> u64 {
    (kernel_ns as f64 * plan.time_scale) as u64
}

/// Every paragraph that applies to `r`.
pub fn tell(s: &mut String, plan: &Plan, r: &RunReport) {
    tell_torn(s, r);
    tell_nmi_buffers(s, plan, r);
    tell_console(s, r);
    tell_nbcon(s, r);
    tell_panic(s, plan, r);
    tell_reader(s, r);
}

fn tell_torn(s: &mut String, r: &RunReport) {
    if r.remote_traces == 0 {
        return;
    }
    let _ = writeln!(
        s,
        "Remote stack dumps: {} of {} remote stack dumps torn. The stall report walked the \
         stalled CPU's stack from another CPU without stopping it (3.17's way, no NMI), and \
         {} times the stack changed under the walk. A torn trace mixes two moments: it can \
         list calls that were never on the stack together, so it cannot be trusted the way \
         an NMI backtrace (which holds the CPU where it is) can.\n",
        r.torn_traces, r.remote_traces, r.torn_traces
    );
}

fn tell_nmi_buffers(s: &mut String, plan: &Plan, r: &RunReport) {
    let full = r
        .dropped_by
        .iter()
        .find(|(why, _)| *why == DropReason::NmiBufferFull)
        .map_or(0, |(_, n)| *n);
    // NMI messages that reached the log from a per-CPU buffer: stored
    // later, in hardirq context (irq_work) or by a flush.
    let moved: Vec<u64> = r
        .records
        .iter()
        .filter(|rec| rec.context != Context::Nmi)
        .filter(|rec| parse_msg(&rec.text).is_some_and(|(_, c, _)| c == Context::Nmi))
        .map(|rec| real_ns(plan, rec.ts_ns))
        .collect();
    if full == 0 && moved.is_empty() {
        return;
    }
    s.push_str("NMI buffers: ");
    if full > 0 {
        let _ = write!(
            s,
            "{full} NMI message(s) did not fit in the per-CPU NMI buffer and were dropped \
             (nmi_buffer_full). "
        );
    }
    if let (Some(first), Some(last)) = (moved.iter().min(), moved.iter().max()) {
        let _ = write!(
            s,
            "{} NMI message(s) waited in a per-CPU buffer and reached the log later, copied \
             out of NMI context: the first at {}, the last at {}",
            moved.len(),
            ms(*first),
            ms(*last)
        );
        if let Some(nmi) = first_nmi_ns(r) {
            let _ = write!(
                s,
                ", {} after the first NMI began",
                ms(first.saturating_sub(nmi))
            );
        }
        s.push('.');
    }
    s.push_str("\n\n");
}

/// When the run's first NMI handler began, from the timeline.
fn first_nmi_ns(r: &RunReport) -> Option<u64> {
    crate::report::timeline::lanes(r)
        .iter()
        .flat_map(|l| &l.spans)
        .filter(|sp| sp.kind == crate::report::timeline::SpanKind::Context(Context::Nmi))
        .map(|sp| sp.start)
        .min()
}

fn event(r: &RunReport, which: Event) -> u64 {
    r.events
        .iter()
        .find(|(what, _)| *what == which)
        .map_or(0, |(_, n)| *n)
}

/// Whether `r`'s console is nbcon's (it counts handovers of its own).
fn is_nbcon(r: &RunReport) -> bool {
    r.events
        .iter()
        .any(|(what, _)| *what == Event::NbconHandover)
}

fn tell_console(s: &mut String, r: &RunReport) {
    let c = &r.console;
    let total: u64 = c.printed_by.iter().sum();
    let writers = c.printed_by.iter().filter(|n| **n > 0).count();
    let handovers = event(r, Event::ConsoleHandoff);
    if total == 0 || (writers < 2 && handovers == 0 && c.skipped == 0) || is_nbcon(r) {
        return;
    }
    let mut said = vec![format!(
        "The console: it printed {} records, written by {}",
        r.accounts.printed,
        printed_by(r)
    )];
    if c.skipped > 0 {
        said.push(format!(
            "{} records were overwritten before it got to them, and it said so in a line",
            c.skipped
        ));
    }
    if handovers > 0 {
        said.push(format!(
            "It changed hands {handovers} times: a CPU that called printk while another \
             was printing spun as the console waiter and took the printing over (4.16's \
             console_owner hand-off), so no one CPU printed for everybody"
        ));
    }
    let cpus = r.nmis.len();
    let top = c
        .printed_by
        .iter()
        .take(cpus)
        .enumerate()
        .max_by_key(|(_, n)| **n);
    if let Some((cpu, n)) = top.filter(|(_, n)| cpus > 1 && **n * 10 >= total * 9) {
        let mut one = format!(
            "CPU {cpu} printed {:.0}% of it from inside its own printk calls",
            *n as f64 * 100.0 / total as f64
        );
        if r.findings.iter().any(|f| f.cpu == cpu) {
            one.push_str(", which is why it did not get back to its own work in time");
        }
        said.push(one);
    }
    let _ = writeln!(s, "{}.\n", said.join(". "));
}

fn tell_nbcon(s: &mut String, r: &RunReport) {
    if !is_nbcon(r) {
        return;
    }
    let (handovers, replays, lost) = (
        event(r, Event::NbconHandover),
        event(r, Event::Replay),
        event(r, Event::LostOwnership),
    );
    let takeovers = event(r, Event::HostileTakeover);
    let _ = write!(
        s,
        "nbcon's console printed {} records ({}).",
        r.accounts.printed,
        printed_by(r)
    );
    if handovers + takeovers > 0 {
        let _ = write!(
            s,
            " {handovers} handovers: a CPU in an emergency section (WARN, panic) asked the \
             printer for the console and got it at the printer's next safe point; \
             {takeovers} hostile takeovers (in panic, without waiting)."
        );
    }
    if lost + replays > 0 {
        let _ = write!(
            s,
            " The printer lost ownership {lost} times in the middle of a record; {replays} \
             records cut short were printed again whole by the next owner (a replay), so the \
             console shows them twice, the first time torn."
        );
    }
    s.push_str("\n\n");
}

fn tell_panic(s: &mut String, plan: &Plan, r: &RunReport) {
    let Some(p) = r.panic else {
        return;
    };
    let at = r
        .records
        .iter()
        .find(|rec| rec.text.starts_with("Kernel panic - not syncing"))
        .map(|rec| real_ns(plan, rec.ts_ns));
    let console = r.console_text();
    let lines: Vec<&str> = console.lines().collect();
    let after = lines
        .iter()
        .position(|l| l.contains("Kernel panic - not syncing"))
        .map(|i| lines.len() - i - 1);
    let _ = write!(s, "Panic: CPU {} panicked", p.cpu);
    if let Some(at) = at {
        let _ = write!(s, " at {}", ms(at));
    }
    let _ = write!(
        s,
        ", stopped the other CPUs with an NMI each that never returns, and {}. ",
        if p.finished {
            "flushed the log to the console"
        } else {
            "never finished: it was still spinning when the run ended"
        }
    );
    match after {
        Some(n) => {
            let _ = write!(
                s,
                "The panic line reached the console, and {n} line(s) after it"
            );
        }
        None => s.push_str("The panic line never reached the console"),
    }
    if let Some(last) = lines.last() {
        let _ = write!(s, "; the console's last line: `{}`", last.trim_end());
    }
    s.push_str(".\n\n");
}

fn tell_reader(s: &mut String, r: &RunReport) {
    let Some(rd) = r.reader else {
        return;
    };
    let _ = writeln!(
        s,
        "The log reader (like `dmesg --follow` on /dev/kmsg) read {} records and missed {}: \
         the ring overwrote them before it got to them. It was told {} times that it had \
         fallen behind (read() fails once with EPIPE and the reader starts again from the \
         oldest record).\n",
        rd.read, rd.missed, rd.overruns
    );
}
