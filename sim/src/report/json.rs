//! The JSON report (`--json FILE`): stable keys, those of the structs below.

use serde::Serialize;

use crate::report::bench::Latency;

use crate::outcome::{round_us as round3, RunReport};
use crate::scenario::Plan;
use crate::watchdog::Finding;

#[derive(Serialize)]
struct Report<'a, R> {
    scenario: &'a str,
    seed: u64,
    cpus: usize,
    duration_ms: u64,
    /// Which clock the numbers use: `*_ms`, `*_ns` and latencies are real
    /// time; records' timestamps and the kernel's own messages are kernel
    /// time (real time divided by `time_scale`).
    time: Time,
    runs: Vec<R>,
}

#[derive(Serialize)]
struct Time {
    time_scale: f64,
    numbers: &'static str,
    records_and_kernel_messages: &'static str,
}

#[derive(Serialize)]
struct Run<'a> {
    design: &'a str,
    seed: u64,
    outcome: &'a str,
    interrupted: bool,
    messages: Messages,
    dropped_by: serde_json::Map<String, serde_json::Value>,
    findings: Vec<JsonFinding<'a>>,
    lockdep: Vec<Lockdep<'a>>,
    latency_ns: std::collections::BTreeMap<&'static str, Latency>,
    console: Console,
    stuck: Vec<Stuck<'a>>,
    nmis: &'a [u64],
    events: serde_json::Map<String, serde_json::Value>,
    panic: Option<Panic>,
    remote_traces: u64,
    torn_traces: u64,
    reader: Option<Reader>,
    wall_ms: f64,
}

#[derive(Serialize)]
struct Reader {
    read: u64,
    missed: u64,
    overruns: u64,
}

#[derive(Serialize)]
struct Panic {
    cpu: usize,
    completed: bool,
}

#[derive(Serialize)]
struct Messages {
    attempted: u64,
    stored: u64,
    dropped: u64,
    overwritten: u64,
    unfinished: u64,
    merged: u64,
    lost_in_deadlock: u64,
    readable: u64,
    printed: u64,
    internal: u64,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    title: String,
    kind: &'a str,
    cpu: usize,
    context: &'a str,
    lock: Option<&'a str>,
    holder_cpu: Option<usize>,
    holder_context: Option<&'a str>,
    point: Option<&'a str>,
    detected_after_ms: f64,
    at_ms: f64,
    cycle: &'a [String],
    blocked_behind: &'a [usize],
    action: &'a str,
}

#[derive(Serialize)]
struct Lockdep<'a> {
    rule: &'a str,
    lock: &'a str,
    message: &'a str,
    scenario: &'a str,
    stack: &'a [&'static str],
    cpu: Option<usize>,
    context: Option<&'a str>,
    point: Option<&'a str>,
    /// Whether the design's kernel's lockdep would have printed it (false:
    /// printk-sim's own extension, `why` says why).
    kernel: bool,
    why: &'a str,
    /// The report as that kernel prints it.
    report: &'a str,
}

#[derive(Serialize)]
struct Console {
    printed: u64,
    skipped: u64,
    max_lag_ms: f64,
    printed_by: Vec<u64>,
    printed_for_others: Vec<u64>,
}

#[derive(Serialize)]
struct Stuck<'a> {
    cpu: usize,
    context: &'a str,
    lock: &'a str,
    waiting_ms: f64,
    spins: u64,
}

fn finding(f: &Finding) -> JsonFinding<'_> {
    JsonFinding {
        title: f.title(),
        kind: f.kind.name(),
        cpu: f.cpu,
        context: f.context.name(),
        lock: f.lock,
        holder_cpu: f.holder_cpu,
        holder_context: f.holder_context.map(|c| c.name()),
        point: f.point,
        detected_after_ms: round3(f.detected_after_ms),
        at_ms: round3(f.at_ms),
        cycle: &f.cycle,
        blocked_behind: &f.blocked_behind,
        action: f.action.name(),
    }
}

/// What the report says of the scenario, above its runs: from the plan,
/// or from a shard's JSON-lines header (`merge`).
#[derive(Clone, Debug)]
pub struct Head<'a> {
    /// The scenario's name.
    pub scenario: &'a str,
    /// The first seed.
    pub seed: u64,
    /// CPUs.
    pub cpus: usize,
    /// Run length.
    pub duration_ms: u64,
    /// Kernel time constants × this.
    pub time_scale: f64,
}

impl Head<'_> {
    /// The head of `plan`'s report.
    pub fn of(plan: &Plan) -> Head<'_> {
        Head {
            scenario: &plan.name,
            seed: plan.seed,
            cpus: plan.cpus,
            duration_ms: plan.duration_ms,
            time_scale: plan.time_scale,
        }
    }
}

/// The JSON report: `head`, then `runs` (each a run's view, or a line of
/// a shard's file that holds one).
pub fn document<R: Serialize>(head: &Head<'_>, runs: Vec<R>) -> String {
    let report = Report {
        scenario: head.scenario,
        seed: head.seed,
        cpus: head.cpus,
        duration_ms: head.duration_ms,
        time: Time {
            time_scale: head.time_scale,
            numbers: "real",
            records_and_kernel_messages: "kernel (real / time_scale)",
        },
        runs,
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// One run's view, as a JSON value: what `runs` of the report holds, and
/// what a line of `--jsonl` carries.
pub fn run_value(r: &RunReport) -> serde_json::Value {
    serde_json::to_value(run(r)).unwrap_or_default()
}

/// One run's view.
fn run(r: &RunReport) -> Run<'_> {
    let a = &r.accounts;
    let latency = r
        .latency
        .iter()
        .enumerate()
        .filter(|(_, s)| s.count > 0)
        .map(|(level, s)| {
            let name = klog::Context::from_level(level as u8).name();
            (name, Latency::from(*s))
        })
        .collect();
    Run {
        design: r.design,
        seed: r.seed,
        outcome: r.outcome.name(),
        interrupted: r.interrupted,
        messages: Messages {
            attempted: a.attempted,
            stored: a.stored,
            dropped: a.dropped,
            overwritten: a.overwritten,
            unfinished: a.unfinished,
            merged: a.merged,
            lost_in_deadlock: a.lost_in_deadlock,
            readable: a.readable,
            printed: a.printed,
            internal: a.internal,
        },
        dropped_by: r
            .dropped_by
            .iter()
            .map(|(k, v)| (k.name().to_string(), serde_json::Value::from(*v)))
            .collect(),
        findings: r.findings.iter().map(finding).collect(),
        lockdep: r.lockdep.iter().map(lockdep).collect(),
        latency_ns: latency,
        console: Console {
            printed: r.console.printed,
            skipped: r.console.skipped,
            max_lag_ms: round3(r.console.max_lag_ns as f64 / 1e6),
            printed_by: r.console.printed_by.clone(),
            printed_for_others: r.console.printed_for_others.clone(),
        },
        stuck: r
            .stuck
            .iter()
            .map(|s| Stuck {
                cpu: s.cpu,
                context: s.context.name(),
                lock: s.lock,
                waiting_ms: round3(s.waiting_ms),
                spins: s.spins,
            })
            .collect(),
        nmis: &r.nmis,
        events: r
            .events
            .iter()
            .map(|(k, v)| (k.name().to_string(), serde_json::Value::from(*v)))
            .collect(),
        panic: r.panic.map(|p| Panic {
            cpu: p.cpu,
            completed: p.finished,
        }),
        remote_traces: r.remote_traces,
        torn_traces: r.torn_traces,
        reader: r.reader.map(|rd| Reader {
            read: rd.read,
            missed: rd.missed,
            overruns: rd.overruns,
        }),
        wall_ms: round3(r.wall_ms),
    }
}

/// One lockdep finding's view.
fn lockdep(f: &klog::lockdep::Finding) -> Lockdep<'_> {
    Lockdep {
        rule: f.rule.name(),
        lock: f.lock,
        message: f.message,
        scenario: &f.scenario,
        stack: &f.stack,
        cpu: f.example.map(|o| o.cpu),
        context: f.example.map(|o| o.context.name()),
        point: f.example.and_then(|o| o.point).map(|p| p.name),
        kernel: f.kernel,
        why: f.why,
        report: &f.report,
    }
}
