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
    // A ratio to legacy's number, or a dash when legacy was not measured.
    let vs_legacy = |of: fn(&DesignBench) -> f64, d: &DesignBench, digits: usize| {
        legacy.map_or_else(
            || "-".to_string(),
            |l| format!("{:.digits$}x", of(d) / of(l).max(1.0)),
        )
    };
    let record = |d: &DesignBench| d.record_ns;
    let storm_max = |d: &DesignBench| d.storm_latency_ns.max as f64;
    for d in &r.designs {
        let top = d.storm_print_share.iter().copied().fold(0.0_f64, f64::max);
        let _ = write!(
            s,
            "{:<15} {:>6.1} ns {:>6.1}x {:>8} {:>6.1} ns",
            d.design,
            d.record_ns,
            d.record_ns / r.floor_ns,
            vs_legacy(record, d, 2),
            d.record_fmt_ns
        );
        for t in &threads {
            let v = d.throughput.get(t).copied().unwrap_or(0.0);
            let _ = write!(s, " {:>10.2}", v / 1e6);
        }
        let _ = writeln!(
            s,
            " {:>10} {:>10} {:>10} {:>10} {:>10} {:>8.0}%",
            us(d.nmi_latency_ns.p99),
            us(d.nmi_latency_ns.max),
            us(d.storm_latency_ns.p99),
            us(d.storm_latency_ns.max),
            vs_legacy(storm_max, d, 4),
            top * 100.0
        );
    }
    s
}

/// The report as pretty-printed JSON (`bench --json`).
pub fn json(r: &BenchReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design(name: &'static str, record_ns: f64, storm_max: u64) -> DesignBench {
        let latency = Latency {
            p50: 1_000,
            p99: 2_000,
            max: storm_max,
        };
        DesignBench {
            design: name,
            record_ns,
            record_fmt_ns: 2.0 * record_ns,
            throughput: [("1".to_string(), 1e6)].into(),
            nmi_latency_ns: latency,
            storm_latency_ns: latency,
            storm_print_share: vec![0.25, 0.75],
        }
    }

    fn report(designs: Vec<DesignBench>) -> BenchReport {
        BenchReport {
            machine: MachineInfo {
                cpu: "test".into(),
                host_cpus: 2,
                kernel: "6.0".into(),
            },
            floor_ns: 20.0,
            ring: RingBench {
                record_ns: 30.0,
                floor_ns: 5.0,
            },
            designs,
        }
    }

    fn row<'a>(table: &'a str, design: &str) -> Vec<&'a str> {
        let line = table.lines().find(|l| l.starts_with(design));
        line.map(|l| l.split_whitespace().collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_table_gives_ratios_to_the_floor_and_to_legacy() {
        let t = render(&report(vec![
            design("legacy", 40.0, 8_000),
            design("lockless", 50.0, 2_000),
        ]));
        assert!(t.contains("30.0 ns/record, 6.0x its floor"), "{t}");
        // design, record, ns, /floor, /legacy, formatted, ns, 1 thr,
        // 4 latencies, storm /legacy, top share.
        assert_eq!(
            row(&t, "lockless"),
            ["lockless", "50.0", "ns", "2.5x", "1.25x", "100.0", "ns", "1.00"]
                .into_iter()
                .chain(["2.0", "µs", "2.0", "µs", "2.0", "µs", "2.0", "µs"])
                .chain(["0.2500x", "75%"])
                .collect::<Vec<_>>(),
            "{t}"
        );
    }

    #[test]
    fn without_legacy_the_ratios_to_it_are_dashes_not_nan() {
        let t = render(&report(vec![design("lockless", 50.0, 2_000)]));
        let row = row(&t, "lockless");
        assert_eq!((row[4], row[16]), ("-", "-"), "{t}");
        assert!(!t.contains("NaN"), "{t}");
    }
}
