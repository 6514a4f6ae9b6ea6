//! `printk-sim bench`: what each design costs on the hot path and what it
//! does to latency when things go wrong, measured side by side in one run,
//! next to the floor any logger pays.
//!
//! * **floor**: per record, one clock read, one `fetch_add` on a shared
//!   head and a 64-byte copy into a ring slot, measured in turns with the
//!   records below;
//! * **the ring alone**: the lockless ring's reserve, 64-byte write and
//!   final commit, one writer, next to its own floor (the same without
//!   the clock), in turns;
//! * **record**: printk of a 64-byte text already formatted, task context,
//!   no console registered (store and return), on the fake `Arch` with the
//!   host's monotonic clock: the median of repeated batches after a
//!   warm-up, each round a batch of the floor and of every design;
//! * **record, formatted**: the same with integers to format;
//! * **throughput** with 1, 2, 4 (or `--cpus`) threads printing at once;
//! * **NMI latency**: printk latency in NMI context on the real machine
//!   under periodic NMIs while the CPUs print;
//! * **storm**: task-context printk latency and who printed the console's
//!   records under `console-storm` (4 CPUs, the default scaled baud).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use klog::arch::Quiet;
use klog::console::ConsoleConfig;
use klog::printk::{DesignConfig, DesignInfo};
use klog::record::Meta;
use klog::ringbuf::Ring;
use klog::testing::FakeArch;
use klog::Level;

pub use crate::report::bench::{render, BenchReport, DesignBench, Latency, MachineInfo, RingBench};
use crate::runner;
use crate::scenario::{self, Overrides};

const TEXT: &str = "cpu0 task #12345 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu";
const BATCH: usize = 20_000;
const BATCHES: usize = 15;
const WARMUP: usize = 3;
const THROUGHPUT_FOR: Duration = Duration::from_millis(300);

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

/// ns per op of one batch of `op`.
fn batch(op: &mut impl FnMut(usize)) -> f64 {
    let t0 = Instant::now();
    for i in 0..BATCH {
        op(i);
    }
    t0.elapsed().as_nanos() as f64 / BATCH as f64
}

/// The ring alone, one writer (reserve, 64 bytes, final commit), and its
/// floor (a `fetch_add` and a 64-byte copy: no clock, as the ring is
/// given its timestamp): a batch of each in turn, so that a noisy moment
/// costs both alike, and the fastest batch of each (on a shared host the
/// noise only ever adds; the medians moved by ±25 % from run to run).
fn ring_alone() -> RingBench {
    const REC: [u8; 64] = [b'r'; 64];
    let ring = Ring::for_buffer(1 << 17);
    let meta = Meta::now(&Quiet, Level::Info);
    let head = AtomicU64::new(0);
    let mut slots = vec![[0u8; 64]; 1024];
    let (mut rings, mut floors) = (Vec::new(), Vec::new());
    for b in 0..WARMUP + 2 * BATCHES {
        let f = batch(&mut |_| {
            let i = head.fetch_add(1, Ordering::Relaxed) as usize & 1023;
            if let Some(slot) = slots.get_mut(i) {
                *slot = std::hint::black_box(REC);
            }
        });
        let r = batch(&mut |_| {
            if let Ok(mut w) = ring.reserve(&Quiet, 64, &meta) {
                w.write(std::hint::black_box(&REC), &meta);
                w.final_commit(&Quiet);
            }
        });
        if b >= WARMUP {
            floors.push(f);
            rings.push(r);
        }
    }
    let fastest = |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min);
    RingBench {
        record_ns: fastest(rings),
        floor_ns: fastest(floors),
    }
}

/// The floor: a clock read, a shared `fetch_add`, a 64-byte copy; one
/// batch of `BATCH` of them, ns per op.
fn floor_batch(base: Instant, head: &AtomicU64, ring: &mut [[u8; 64]]) -> f64 {
    let src = [b'x'; 64];
    batch(&mut |_| {
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

/// The floor, and per design ns per record pre-formatted and formatted.
/// Batches are interleaved (a floor batch, then one batch of each design,
/// in turn), so that a noisy moment on a shared host costs the floor and
/// every design alike; each is the median of its batches.
fn records(designs: &[&'static DesignInfo]) -> (f64, Vec<(f64, f64)>) {
    let base = Instant::now();
    let head = AtomicU64::new(0);
    let mut ring = vec![[0u8; 64]; 1024];
    let mut floors = Vec::new();
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
        let f = floor_batch(base, &head, &mut ring);
        if b >= WARMUP {
            floors.push(f);
        }
        for ((plain, fmt), (ps, fs)) in built.iter().zip(samples.iter_mut()) {
            // Only the catalogue's designs are measured here: they all
            // build on any Arch.
            let (Some(plain), Some(fmt)) = (plain, fmt) else {
                continue;
            };
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
    let costs = samples
        .into_iter()
        .map(|(p, f)| (median(p), median(f)))
        .collect();
    (median(floors), costs)
}

fn throughput(d: &DesignInfo, threads: usize) -> f64 {
    let Some(design) = d.build::<FakeArch>(&config(threads)) else {
        return 0.0;
    };
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

/// The scenario the interrupt benchmarks run.
const NMI_PLAN: &str = include_str!("bench-nmi.toml");

/// Run the benchmarks for `designs` with thread counts `cpus`; `progress`
/// hears what was just measured (the hot paths of all designs, then each
/// design's threads and runs).
pub fn run(
    designs: &[&'static DesignInfo],
    cpus: &[usize],
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, String> {
    let nmi_plan = scenario::Scenario::parse("bench-nmi.toml", NMI_PLAN)
        .and_then(|s| s.plan(&Overrides::default()))
        .map_err(|e| e.to_string())?;
    let storm_plan = scenario::load("console-storm")
        .and_then(|s| s.plan(&Overrides::default()))
        .map_err(|e| e.to_string())?;
    let ring = ring_alone();
    let (floor_ns, costs) = records(designs);
    progress("hot paths");
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
        progress(d.name);
    }
    Ok(BenchReport {
        machine: machine_info(),
        floor_ns,
        ring,
        designs: out,
    })
}
