//! What a run produced: its [`Outcome`] and the [`RunReport`] every
//! report is written from. Its own module, so that scenarios (which name
//! expected outcomes), the runner (which fills reports) and the report
//! layer (which reads them) depend on it and not on each other.

use klog::console::ConsoleStats;
use klog::printk::{Accounts, DropReason, Event};
use klog::Record;

use crate::latency::Summary;
use crate::watchdog::{Finding, Stuck};

klog::named_enum! {
    /// The most serious thing that happened in a run, named as in reports,
    /// `[expect]` and `--expect`; later variants are more serious: `clean`
    /// (nothing lost, nothing stuck), `loss` (a message never reached the
    /// buffer: dropped or lost in a deadlock), `lockup` (a hard or soft
    /// lockup without a cycle), `deadlock` (a cycle in the wait-for graph),
    /// `timeout` (the hard limit ended the run).
    pub enum Outcome { Clean = "clean", Loss = "loss", Lockup = "lockup", Deadlock = "deadlock", Timeout = "timeout" }
}

/// Everything one run of one design produced.
#[derive(Debug)]
pub struct RunReport {
    /// The design.
    pub design: &'static str,
    /// The seed.
    pub seed: u64,
    /// The outcome.
    pub outcome: Outcome,
    /// Message accounts.
    pub accounts: Accounts,
    /// Why messages were dropped, adding up to `accounts.dropped`.
    pub dropped_by: Vec<(DropReason, u64)>,
    /// Watchdog findings in the order found.
    pub findings: Vec<Finding>,
    /// lockdep findings: rules broken whether or not a deadlock happened.
    pub lockdep: Vec<klog::lockdep::Finding>,
    /// Waits still spinning when the run was ended.
    pub stuck: Vec<Stuck>,
    /// Ctrl-C ended the run early.
    pub interrupted: bool,
    /// The buffer's invariants, checked after the run: the first violation.
    pub invariant_violation: Option<String>,
    /// printk latency per context level (task, softirq, hardirq, NMI).
    pub latency: [Summary; 4],
    /// What the console did.
    pub console: ConsoleStats,
    /// The records left in the buffer, their timestamps in kernel time
    /// (real time divided by the scenario's time scale).
    pub records: Vec<Record>,
    /// Per CPU: NMI handlers entered.
    pub nmis: Vec<u64>,
    /// Per CPU: NMIs that merged into one already pending (hardware latches
    /// one).
    pub nmis_latched: Vec<u64>,
    /// Per source: times it fired.
    pub fired: Vec<u64>,
    /// Wall-clock length of the run, ms.
    pub wall_ms: f64,
    /// What the console printed (the first MiB).
    pub console_output: Vec<u8>,
    /// What the design's own machinery did (console handovers, takeovers,
    /// replays).
    pub events: Vec<(Event, u64)>,
    /// The CPU that panicked, and whether its panic ran to the end.
    pub panic: Option<PanicReport>,
    /// Stacks walked by a remote (non-NMI) dump.
    pub remote_traces: u64,
    /// Of those, the ones that changed during the walk.
    pub torn_traces: u64,
    /// The log reader (`[reader]`): records read, records missed (gone
    /// before it got to them), times it was told it fell behind.
    pub reader: Option<ReaderReport>,
    /// Per CPU, the timeline events, when the plan asked for them.
    pub timeline: Option<Timeline>,
    /// The census, when the plan asked for one: which CPU (the printer
    /// thread as CPU `nr_cpus`) passed which point in which context, and
    /// how often.
    pub passes: Vec<crate::machine::Pass>,
}

/// A run's timeline.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Per CPU, events in time order.
    pub cpus: Vec<Vec<crate::machine::trace::Event>>,
    /// Events that did not fit in the buffers.
    pub lost: u64,
    /// When the run ended, ns.
    pub end_ns: u64,
}

impl RunReport {
    /// The console output as text.
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&self.console_output).into_owned()
    }
}

/// A panic in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanicReport {
    /// The CPU that panicked.
    pub cpu: usize,
    /// Whether its panic ran to the end (the flush after stopping the
    /// others).
    pub finished: bool,
}

/// What the log reader (`[reader]`) managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderReport {
    /// Records read.
    pub read: u64,
    /// Records gone before it got to them.
    pub missed: u64,
    /// Times it was told it fell behind.
    pub overruns: u64,
}

/// What the rates table of many runs needs of one: read from a
/// [`RunReport`] as it ends, or from a line of a shard's JSON-lines file
/// (`merge`, `--resume`), so that both print the same table.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    /// The design's name.
    pub design: String,
    /// The outcome: the rates table counts runs by it, per design.
    pub outcome: Outcome,
    /// Every finding's title, in the order found.
    pub titles: Vec<String>,
    /// When the first finding happened (ms into the run, to the µs as the
    /// JSON report has it).
    pub first_at_ms: Option<f64>,
    /// The seed (`run --seed` replays the run).
    pub seed: u64,
}

impl Tally {
    /// The tally of `r`.
    pub fn of(r: &RunReport) -> Tally {
        Tally {
            design: r.design.to_string(),
            seed: r.seed,
            outcome: r.outcome,
            first_at_ms: r.findings.first().map(|f| round_us(f.at_ms)),
            titles: r.findings.iter().map(Finding::title).collect(),
        }
    }
}

/// `ms` rounded to the microsecond, as every report writes it.
pub fn round_us(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
