//! `printk-sim bench`'s report: the numbers as data (what `--json`
//! writes) and as the table on stdout.

use std::fmt::Write as _;

use serde::Serialize;

use crate::latency::Summary;
use crate::report::layout::us;

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

/// The ring alone, one writer, next to its own floor, measured in turns
/// in the same run: the ratio the criterion bench `ringbuf` tracks, seen
/// on every `bench`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RingBench {
    /// ns per record: reserve, write 64 bytes, final commit.
    pub record_ns: f64,
    /// ns per record of the floor: one `fetch_add` and a 64-byte copy.
    pub floor_ns: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Where it ran.
    pub machine: MachineInfo,
    /// The floor, ns per record.
    pub floor_ns: f64,
    /// The ring alone.
    pub ring: RingBench,
    /// Per design.
    pub designs: Vec<DesignBench>,
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
    let _ = writeln!(
        s,
        "the ring alone, one writer (reserve + 64 bytes + final commit): {:.1} ns/record, {:.1}x its floor (fetch_add + 64-byte copy: {:.1} ns)\n",
        r.ring.record_ns,
        r.ring.record_ns / r.ring.floor_ns,
        r.ring.floor_ns
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

/// The report as pretty-printed JSON (`bench --json`).
pub fn json(r: &BenchReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
