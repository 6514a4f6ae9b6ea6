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
    let n = plan.cpus;
    let threshold_ns = (plan.threshold_ms * 1e6) as u64;
    let mut m = Machine::new(
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
        Workload {
            tasks: plan.tasks.clone(),
            seed,
        },
        Injector::new(plan.nmis.clone()),
    );
    let wcfg = WatchdogConfig {
        threshold_ns,
        on_deadlock: plan.on_deadlock,
        duration_ns: plan.duration_ms * 1_000_000,
        hard_limit_ns: plan.hard_limit_ms * 1_000_000,
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
    // dropped below, after the scope has joined every CPU thread.
    let handlers = unsafe { Handlers::install(&m) }.map_err(|e| format!("sigaction: {e}"))?;
    let result = std::thread::scope(|s| -> Result<watchdog::WatchdogReport, String> {
        let m = &m;
        let mut spawned = 0;
        let mut errors = Vec::new();
        let mut cpus = Vec::new();
        for i in 0..n {
            match std::thread::Builder::new()
                .name(format!("cpu{i}"))
                .spawn_scoped(s, move || cpu::cpu_thread(m, i))
            {
                Ok(h) => {
                    spawned += 1;
                    cpus.push(h);
                }
                Err(e) => {
                    errors.push(format!("cannot start cpu{i}: {e}"));
                    // A CPU that never ran has nothing to wait for.
                    if let Some(c) = m.cpus().get(i) {
                        c.exited.store(true, core::sync::atomic::Ordering::Release);
                    }
                }
            }
        }
        if plan.reader_hz > 0 {
            let hz = plan.reader_hz;
            match std::thread::Builder::new()
                .name("reader".into())
                .spawn_scoped(s, move || reader::reader(m, hz))
            {
                Ok(_) => spawned += 1,
                Err(e) => errors.push(format!("cannot start the log reader: {e}")),
            }
        }
        if m.design().wants_printer() {
            match std::thread::Builder::new()
                .name("printer".into())
                .spawn_scoped(s, move || printer::printer(m))
            {
                Ok(_) => spawned += 1,
                Err(e) => errors.push(format!("cannot start the printer thread: {e}")),
            }
        }
        match std::thread::Builder::new()
            .name("sender".into())
            .spawn_scoped(s, move || tick::sender(m))
        {
            Ok(_) => spawned += 1,
            Err(e) => {
                errors.push(format!("cannot start the sender: {e}"));
                m.senders_stopped
                    .store(true, core::sync::atomic::Ordering::Release);
            }
        }
        if !m.gate_open(spawned, Duration::from_secs(10)) {
            errors.push("threads did not reach the start gate within 10 s".into());
        }
        let report = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn_scoped(s, || watchdog::watch(m, &wcfg, &on_finding))
            .map_err(|e| format!("cannot start the watchdog: {e}"))?
            .join()
            .map_err(|_| "the watchdog panicked".to_string())?;
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
    });
    drop(handlers);
    let report = result?;
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;

    let nmis = m
        .cpus()
        .iter()
        .map(|c| c.nmis.load(core::sync::atomic::Ordering::Relaxed))
        .collect();
    let nmis_latched = m
        .cpus()
        .iter()
        .map(|c| c.nmis_latched.load(core::sync::atomic::Ordering::Relaxed))
        .collect();
    let fired = (0..m.inject.len()).map(|i| m.inject.fired(i)).collect();
    let latency = core::array::from_fn(|i| m.latency[i].summary());
    let console = m.design().console().stats();
    let console_output = m.design().console().output();
    let dropped_by = m.design().drop_reasons();
    let events = m.design().events();
    let panic = klog::Arch::panic_cpu(&m).map(|cpu| PanicReport {
        cpu,
        finished: m.panic_done.load(core::sync::atomic::Ordering::Acquire),
    });
    let lockdep = klog::lockdep::check(&m.locks(), m.design_info.kernel);
    let timeline = m.trace.as_ref().map(|t| {
        let names: Vec<&'static str> = m.locks().iter().map(|l| l.name()).collect();
        Timeline {
            cpus: t.events(&names),
            lost: t.lost(),
            end_ns: klog::Arch::now_ns(&m),
        }
    });
    let remote_traces = m.remote_traces.load(core::sync::atomic::Ordering::Relaxed);
    let torn_traces = m.torn_traces.load(core::sync::atomic::Ordering::Relaxed);
    let design_mut = m.design_mut();
    let invariant_violation = design_mut.check().err();
    let accounts = design_mut.accounts();
    // Kernel time, as the log the kernel would have kept: a run at
    // time_scale 0.01 that lasted 300 ms real is 30 s of kernel time.
    let mut records = design_mut.records();
    for r in &mut records {
        r.ts_ns = (r.ts_ns as f64 / plan.time_scale) as u64;
    }
    let outcome = if report.timed_out {
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
    };
    Ok(RunReport {
        design: design.name,
        seed,
        outcome,
        accounts,
        dropped_by,
        findings: report.findings,
        lockdep,
        stuck: report.stuck,
        interrupted: report.interrupted,
        invariant_violation,
        latency,
        console,
        records,
        nmis,
        nmis_latched,
        fired,
        wall_ms,
        console_output,
        events,
        panic,
        remote_traces,
        torn_traces,
        timeline,
        reader: (plan.reader_hz > 0).then(|| {
            let l =
                |c: &core::sync::atomic::AtomicU64| c.load(core::sync::atomic::Ordering::Relaxed);
            ReaderReport {
                read: l(&m.reader.read),
                missed: l(&m.reader.missed),
                overruns: l(&m.reader.overruns),
            }
        }),
    })
}
