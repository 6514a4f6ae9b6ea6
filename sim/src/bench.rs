//! `printk-sim bench`: what each design costs on the hot path and what it
//! does to latency when things go wrong, measured side by side in one run,
//! next to the floor any logger pays.
//!
//! * **floor**: per record, one clock read, one `fetch_add` on a shared
//!   head and a 64-byte copy into a ring slot;
//! * **record**: printk of a 64-byte text already formatted, task context,
//!   no console registered (store and return), on the fake `Arch` with the
//!   host's monotonic clock: the median of repeated batches after a
//!   warm-up;
//! * **record, formatted**: the same with integers to format;
//! * **throughput** with 1, 2, 4 (or `--cpus`) threads printing at once;
//! * **NMI latency**: printk latency in NMI context on the real machine
//!   under periodic NMIs while the CPUs print;
//! * **storm**: task-context printk latency and who printed the console's
//!   records under `console-storm` (4 CPUs, the default scaled baud).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use klog::console::ConsoleConfig;
use klog::printk::{DesignConfig, DesignInfo};
use klog::testing::FakeArch;
use klog::Level;
use serde::Serialize;

use crate::latency::Summary;
use crate::runner;
use crate::scenario::{self, Overrides};

const TEXT: &str = "cpu0 task #12345 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu";
const BATCH: usize = 20_000;
const BATCHES: usize = 15;
const WARMUP: usize = 3;
const THROUGHPUT_FOR: Duration = Duration::from_millis(300);

/// The machine the numbers came from.
#[derive(Clone, Debug, Serialize)]
pub struct MachineInfo {
    /// CPU model.
    pub cpu: String,
    /// Host CPUs available.
    pub host_cpus: usize,
    /// Kernel release.
    pub kernel: String,
}

/// p50/p99/max in ns.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
}

impl From<Summary> for Latency {
    fn from(s: Summary) -> Latency {
        Latency {
            p50: s.p50,
            p99: s.p99,
            max: s.max,
        }
    }
}

/// One design's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct DesignBench {
    /// The design.
    pub design: &'static str,
    /// ns per record, text already formatted, no console.
    pub record_ns: f64,
    /// ns per record with formatting.
    pub record_fmt_ns: f64,
    /// Records per second with N threads, keyed by N.
    pub throughput: std::collections::BTreeMap<String, f64>,
    /// NMI-context printk latency under periodic NMIs.
    pub nmi_latency_ns: Latency,
    /// Task-context printk latency in the console storm.
    pub storm_latency_ns: Latency,
    /// Share of the storm's console records each CPU printed (one more
    /// entry, last, for a design's printer thread).
    pub storm_print_share: Vec<f64>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Where it ran.
    pub machine: MachineInfo,
    /// The floor, ns per record.
    pub floor_ns: f64,
    /// Per design.
    pub designs: Vec<DesignBench>,
}

fn machine_info() -> MachineInfo {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    MachineInfo {
        cpu,
        host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// ns per op of `op`, the median of batches after a warm-up.
fn per_op(mut op: impl FnMut(usize)) -> f64 {
    let mut samples = Vec::with_capacity(BATCHES);
    for b in 0..WARMUP + BATCHES {
        let t0 = Instant::now();
        for i in 0..BATCH {
            op(i);
        }
        let ns = t0.elapsed().as_nanos() as f64 / BATCH as f64;
        if b >= WARMUP {
            samples.push(ns);
        }
    }
    median(samples)
}

/// The floor: a clock read, a shared `fetch_add`, a 64-byte copy.
fn floor() -> f64 {
    let base = Instant::now();
    let head = AtomicU64::new(0);
    let mut ring = vec![[0u8; 64]; 1024];
    let src = [b'x'; 64];
    per_op(|_| {
        let ts = base.elapsed().as_nanos() as u64;
        let at = head.fetch_add(1, Ordering::Relaxed) as usize % 1024;
        if let Some(slot) = ring.get_mut(at) {
            *slot = src;
            slot[..8].copy_from_slice(&ts.to_le_bytes());
        }
        std::hint::black_box(&ring);
    })
}

fn config(nr_cpus: usize) -> DesignConfig {
    DesignConfig {
        nr_cpus,
        buffer_size: 1 << 17,
        console: ConsoleConfig::none(),
    }
}

fn arch(cpu: usize, nr_cpus: usize) -> FakeArch {
    let mut a = FakeArch::new(cpu, nr_cpus).with_real_clock();
    // Contention is real here: never break a spin.
    a.spin_budget = u64::MAX;
    a
}

/// Per design, ns per record pre-formatted and formatted. Batches are
/// interleaved across designs (one batch of each in turn), so a noisy
/// moment on a shared host costs every design alike.
fn records(designs: &[&'static DesignInfo]) -> Vec<(f64, f64)> {
    let a = arch(0, 1);
    let built: Vec<_> = designs
        .iter()
        .map(|d| {
            (
                d.build::<FakeArch>(&config(1)),
                d.build::<FakeArch>(&config(1)),
            )
        })
        .collect();
    let mut samples = vec![(Vec::new(), Vec::new()); designs.len()];
    for b in 0..WARMUP + BATCHES {
        for ((plain, fmt), (ps, fs)) in built.iter().zip(samples.iter_mut()) {
            let t0 = Instant::now();
            for _ in 0..BATCH {
                plain.printk(&a, Level::Info, format_args!("{TEXT}\n"));
            }
            let p = t0.elapsed().as_nanos() as f64 / BATCH as f64;
            let t0 = Instant::now();
            for i in 0..BATCH {
                fmt.printk(
                    &a,
                    Level::Info,
                    format_args!(
                        "cpu{} task #{} value={:#010x} {}\n",
                        0,
                        i,
                        i * 7919,
                        &TEXT[..40]
                    ),
                );
            }
            let f = t0.elapsed().as_nanos() as f64 / BATCH as f64;
            if b >= WARMUP {
                ps.push(p);
                fs.push(f);
            }
        }
    }
    samples
        .into_iter()
        .map(|(p, f)| (median(p), median(f)))
        .collect()
}

fn throughput(d: &DesignInfo, threads: usize) -> f64 {
    let design = d.build::<FakeArch>(&config(threads));
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    std::thread::scope(|s| {
        for cpu in 0..threads {
            let (design, stop, total) = (&design, &stop, &total);
            s.spawn(move || {
                let a = arch(cpu, threads);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        design.printk(&a, Level::Info, format_args!("{TEXT}\n"));
                    }
                    n += 64;
                }
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(THROUGHPUT_FOR);
        stop.store(true, Ordering::Relaxed);
    });
    total.load(Ordering::Relaxed) as f64 / THROUGHPUT_FOR.as_secs_f64()
}

const NMI_PLAN: &str = r#"
name = "bench-nmi"
summary = "periodic NMIs that print, on CPUs that print"
cpus = 2
duration_ms = 300
seed = 1
[console]
baud = 0
[[task]]
cpus = "all"
printk_hz = 2000
len = [40, 100]
[[nmi]]
kind = "periodic"
period_us = 1000
cpu = "all"
lines = 1
"#;

/// Run the benchmarks for `designs` with thread counts `cpus`.
pub fn run(designs: &[&'static DesignInfo], cpus: &[usize]) -> Result<BenchReport, String> {
    let nmi_plan = scenario::Scenario::parse("bench-nmi.toml", NMI_PLAN)
        .and_then(|s| s.plan(&Overrides::default()))
        .map_err(|e| e.to_string())?;
    let storm_plan = scenario::load("console-storm")
        .and_then(|s| s.plan(&Overrides::default()))
        .map_err(|e| e.to_string())?;
    let floor_ns = floor();
    let costs = records(designs);
    let mut out = Vec::new();
    for (d, &(record_ns, record_fmt_ns)) in designs.iter().zip(&costs) {
        let throughput = cpus
            .iter()
            .map(|&n| (n.to_string(), throughput(d, n)))
            .collect();
        let nmi = runner::run(&nmi_plan, d, nmi_plan.seed, false)?;
        let storm = runner::run(&storm_plan, d, storm_plan.seed, false)?;
        let total: u64 = storm.console.printed_by.iter().sum();
        let storm_print_share = storm
            .console
            .printed_by
            .iter()
            .map(|&n| {
                if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                }
            })
            .collect();
        out.push(DesignBench {
            design: d.name,
            record_ns,
            record_fmt_ns,
            throughput,
            nmi_latency_ns: nmi.latency[3].into(),
            storm_latency_ns: storm.latency[0].into(),
            storm_print_share,
        });
    }
    Ok(BenchReport {
        machine: machine_info(),
        floor_ns,
        designs: out,
    })
}

fn us(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

/// The table: absolute numbers, and ratios to legacy and to the floor.
pub fn render(r: &BenchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "machine: {}, {} host CPUs, Linux {}",
        r.machine.cpu, r.machine.host_cpus, r.machine.kernel
    );
    let _ = writeln!(
        s,
        "floor (clock read + fetch_add + 64-byte copy): {:.1} ns/record\n",
        r.floor_ns
    );
    let legacy = r.designs.iter().find(|d| d.design == "legacy");
    let threads: Vec<String> = r
        .designs
        .first()
        .map(|d| d.throughput.keys().cloned().collect())
        .unwrap_or_default();
    let _ = write!(
        s,
        "{:<15} {:>9} {:>7} {:>8} {:>9}",
        "design", "record", "/floor", "/legacy", "formatted"
    );
    for t in &threads {
        let _ = write!(s, " {:>10}", format!("{t} thr M/s"));
    }
    let _ = writeln!(
        s,
        " {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "nmi p99", "nmi max", "storm p99", "storm max", "/legacy", "top share"
    );
    for d in &r.designs {
        let vs_legacy = legacy.map_or(f64::NAN, |l| d.record_ns / l.record_ns);
        let storm_vs = legacy.map_or(f64::NAN, |l| {
            d.storm_latency_ns.max as f64 / l.storm_latency_ns.max.max(1) as f64
        });
        let top = d.storm_print_share.iter().copied().fold(0.0_f64, f64::max);
        let _ = write!(
            s,
            "{:<15} {:>6.1} ns {:>6.1}x {:>7.2}x {:>6.1} ns",
            d.design,
            d.record_ns,
            d.record_ns / r.floor_ns,
            vs_legacy,
            d.record_fmt_ns
        );
        for t in &threads {
            let v = d.throughput.get(t).copied().unwrap_or(0.0);
            let _ = write!(s, " {:>10.2}", v / 1e6);
        }
        let _ = writeln!(
            s,
            " {:>10} {:>10} {:>10} {:>10} {:>9.4}x {:>8.0}%",
            us(d.nmi_latency_ns.p99),
            us(d.nmi_latency_ns.max),
            us(d.storm_latency_ns.p99),
            us(d.storm_latency_ns.max),
            storm_vs,
            top * 100.0
        );
    }
    s
}
