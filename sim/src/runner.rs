//! Runs: a [`Plan`] and a design become a machine, its threads, a watchdog,
//! and a [`RunReport`] with an [`Outcome`].
//!
//! Runs never overlap within a process: signal handlers are process-wide,
//! so one global lock serialises them (tests run in parallel threads).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use klog::console::ConsoleConfig;
use klog::printk::{DesignConfig, DesignInfo};

use crate::machine::irq::{self, Handlers};
use crate::machine::{cpu, printer, reader, tick, Injector, Machine, MachineConfig};
use crate::report::{self, splat::Splat};
use crate::scenario::Plan;
use crate::watchdog::{self, Finding, FindingKind, WatchdogConfig};
use crate::workload::Workload;

pub use crate::outcome::{Outcome, PanicReport, ReaderReport, RunReport, Timeline};

static RUN_LOCK: Mutex<()> = Mutex::new(());

pub use crate::watchdog::interrupted;

/// Run `design` on `plan` with `seed`. `splat` prints findings on stderr as
/// they are found. Errors are internal (a thread or a mapping could not be
/// made).
pub fn run(
    plan: &Plan,
    design: &'static DesignInfo,
    seed: u64,
    splat: bool,
) -> Result<RunReport, String> {
    let _serial = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut m = machine(plan, design, seed)?;
    let wcfg = WatchdogConfig {
        threshold_ns: (plan.threshold_ms * 1e6) as u64,
        on_deadlock: plan.on_deadlock,
        duration_ns: plan.duration_ms * 1_000_000,
        hard_limit_ns: plan.hard_limit_ms * 1_000_000,
        settle_ns: plan.settle_ms.map(|ms| (ms * 1e6) as u64),
        kernel: design.kernel,
    };
    let how = Splat {
        label: format!("{} on {}, seed {seed}", design.name, plan.name),
        kernel: design.kernel,
        time_scale: plan.time_scale,
    };
    let on_finding = |f: &Finding| {
        if splat {
            eprint!("{}", report::splat::splat(f, &how));
        }
    };
    irq::block_interrupts();
    let t0 = Instant::now();
    // SAFETY: `m` lives on this frame and does not move until `handlers` is
    // dropped below, after `run_threads` has joined every CPU thread.
    let handlers = unsafe { Handlers::install(&m) }.map_err(|e| format!("sigaction: {e}"))?;
    let result = run_threads(&m, plan, &wcfg, &on_finding);
    drop(handlers);
    let report = result?;
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(harvest(&mut m, plan, seed, report, wall_ms))
}

/// The machine a run of `design` on `plan` with `seed` runs on.
fn machine(plan: &Plan, design: &'static DesignInfo, seed: u64) -> Result<Machine, String> {
    let n = plan.cpus;
    let threshold_ns = (plan.threshold_ms * 1e6) as u64;
    Machine::new(
        MachineConfig {
            nr_cpus: n,
            hz: plan.hz,
            nmi_wait_limit_ns: 2 * threshold_ns,
            seed,
            backtrace_wait_ns: (10e9 * plan.time_scale) as u64,
            stop_wait_ns: (1e9 * plan.time_scale) as u64,
            time_scale: plan.time_scale,
            // About a million events in all (32 MiB), at most 128 Ki per CPU.
            trace_capacity: if plan.timeline {
                ((1 << 20) / n).clamp(1 << 12, 1 << 17)
            } else {
                0
            },
        },
        design,
        &DesignConfig {
            nr_cpus: n,
            buffer_size: plan.buffer_size,
            console: ConsoleConfig::serial(plan.baud, plan.time_scale),
        },
        Box::new(Workload {
            tasks: plan.tasks.clone(),
            seed,
        }),
        if plan.census {
            Injector::with_census(plan.nmis.clone(), n)
        } else {
            Injector::new(plan.nmis.clone())
        },
    )
}

/// Start a named thread in scope `s`; a thread that cannot start is an
/// error in `errors`.
fn start<'s, T: Send + 's>(
    s: &'s std::thread::Scope<'s, '_>,
    name: &str,
    errors: &mut Vec<String>,
    f: impl FnOnce() -> T + Send + 's,
) -> Option<std::thread::ScopedJoinHandle<'s, T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(s, f)
        .map_err(|e| errors.push(format!("cannot start thread {name}: {e}")))
        .ok()
}

/// The run itself: every thread of the machine started, the gate opened,
/// the watchdog watching until every CPU has stopped, every thread joined.
fn run_threads(
    m: &Machine,
    plan: &Plan,
    wcfg: &WatchdogConfig,
    on_finding: &(dyn Fn(&Finding) + Sync),
) -> Result<watchdog::WatchdogReport, String> {
    std::thread::scope(|s| {
        let mut errors = Vec::new();
        let mut cpus = Vec::new();
        for i in 0..plan.cpus {
            match start(s, &format!("cpu{i}"), &mut errors, move || {
                cpu::cpu_thread(m, i)
            }) {
                Some(h) => cpus.push(h),
                // A CPU that never ran has nothing to wait for.
                None => m.cpu_never_started(i),
            }
        }
        let mut spawned = cpus.len();
        if plan.reader_hz > 0 {
            let hz = plan.reader_hz;
            spawned +=
                start(s, "reader", &mut errors, move || reader::reader(m, hz)).map_or(0, |_| 1);
        }
        if m.design().wants_printer() {
            spawned +=
                start(s, "printer", &mut errors, move || printer::printer(m)).map_or(0, |_| 1);
        }
        match start(s, "sender", &mut errors, move || tick::sender(m)) {
            Some(_) => spawned += 1,
            None => m.senders_never_started(),
        }
        if !m.gate_open(spawned, Duration::from_secs(10)) {
            errors.push("threads did not reach the start gate within 10 s".into());
        }
        let watched = start(s, "watchdog", &mut errors, || {
            watchdog::watch(m, wcfg, on_finding)
        })
        .map(|h| h.join());
        let report = match watched {
            Some(Ok(report)) => report,
            // Without a watchdog nothing would end the run: end it here,
            // so the CPU threads return and the scope can close.
            Some(Err(_)) => {
                m.abort_everything();
                return Err("the watchdog panicked".to_string());
            }
            None => {
                m.abort_everything();
                return Err(errors.join("; "));
            }
        };
        for h in cpus {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(format!("a CPU could not set up: {e}")),
                Err(_) => errors.push("a CPU thread panicked".into()),
            }
        }
        if errors.is_empty() {
            Ok(report)
        } else {
            Err(errors.join("; "))
        }
    })
}

/// The most serious thing the watchdog found, or what the accounts say.
fn classify(report: &watchdog::WatchdogReport, accounts: &klog::Accounts) -> Outcome {
    if report.timed_out {
        Outcome::Timeout
    } else if report
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Deadlock)
    {
        Outcome::Deadlock
    } else if !report.findings.is_empty() {
        Outcome::Lockup
    } else if accounts.dropped + accounts.lost_in_deadlock > 0 {
        Outcome::Loss
    } else {
        Outcome::Clean
    }
}

/// Everything the finished run left, gathered into its report.
fn harvest(
    m: &mut Machine,
    plan: &Plan,
    seed: u64,
    report: watchdog::WatchdogReport,
    wall_ms: f64,
) -> RunReport {
    let stats = m.stats();
    let design = m.design_info();
    let lockdep = klog::lockdep::check(&m.locks(), design.kernel);
    let console = m.design().console().stats();
    let console_output = m.design().console().output();
    let dropped_by = m.design().drop_reasons();
    let events = m.design().events();
    let timeline = m
        .timeline()
        .map(|(cpus, lost, end_ns)| Timeline { cpus, lost, end_ns });
    let design_mut = m.design_mut();
    let invariant_violation = design_mut.check().err();
    let accounts = design_mut.accounts();
    // Kernel time, as the log the kernel would have kept: a run at
    // time_scale 0.01 that lasted 300 ms real is 30 s of kernel time.
    let mut records = design_mut.records();
    for r in &mut records {
        r.ts_ns = (r.ts_ns as f64 / plan.time_scale) as u64;
    }
    RunReport {
        design: design.name,
        seed,
        outcome: classify(&report, &accounts),
        accounts,
        dropped_by,
        findings: report.findings,
        lockdep,
        stuck: report.stuck,
        interrupted: report.interrupted,
        invariant_violation,
        latency: stats.latency,
        console,
        records,
        nmis: stats.nmis,
        nmis_latched: stats.nmis_latched,
        fired: stats.fired,
        wall_ms,
        console_output,
        events,
        panic: stats
            .panic
            .map(|(cpu, finished)| PanicReport { cpu, finished }),
        remote_traces: stats.remote_traces,
        torn_traces: stats.torn_traces,
        timeline,
        passes: m.injector().passes(),
        reader: (plan.reader_hz > 0).then_some(ReaderReport {
            read: stats.reader.0,
            missed: stats.reader.1,
            overruns: stats.reader.2,
        }),
    }
}
