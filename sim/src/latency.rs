//! Latency histograms that a signal handler can record into: fixed
//! log-linear buckets of atomics (32 sub-buckets per power of two, so a
//! value is known to within about 3 %), plus the exact maximum. Percentiles
//! report the highest value of their bucket (capped at the maximum), so
//! they may over-state by up to 3 % but never under-state.

use core::sync::atomic::{AtomicU64, Ordering};

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB as usize;

/// One histogram.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

/// Percentiles of a histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum (exact).
    pub max: u64,
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    ((shift as u64 + 1) * SUB + ((v >> shift) & (SUB - 1))) as usize
}

fn lower_bound(b: usize) -> u64 {
    let b = b as u64;
    if b < SUB {
        return b;
    }
    let shift = b / SUB - 1;
    (SUB + b % SUB) << shift
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Record one value. Async-signal-safe.
    pub fn record(&self, v: u64) {
        if let Some(b) = self.buckets.get(bucket(v)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
    }

    /// p50, p99 and max.
    pub fn summary(&self) -> Summary {
        let count = self.count.load(Ordering::Relaxed);
        let max = self.max.load(Ordering::Relaxed);
        let at = |q: f64| -> u64 {
            if count == 0 {
                return 0;
            }
            let rank = ((count as f64 * q).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, b) in self.buckets.iter().enumerate() {
                seen += b.load(Ordering::Relaxed);
                if seen >= rank {
                    // The bucket's highest value: never under-reports.
                    return (lower_bound(i + 1) - 1).min(max);
                }
            }
            max
        };
        Summary {
            count,
            p50: at(0.50),
            p99: at(0.99),
            max,
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_tight() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            100,
            1000,
            123_456,
            u64::MAX / 2,
        ] {
            let b = bucket(v);
            assert!(b >= last);
            last = b;
            let lo = lower_bound(b);
            assert!(lo <= v && v - lo <= v / 32 + 1, "{v} {lo}");
        }
    }

    #[test]
    fn percentiles() {
        let h = Histogram::new();
        for v in 1..=100 {
            h.record(v * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((50_000..=51_600).contains(&s.p50), "{s:?}");
        assert!((99_000..=100_000).contains(&s.p99), "{s:?}");
        assert_eq!(s.max, 100_000);
        let one = Histogram::new();
        one.record(98_765);
        assert_eq!(one.summary().p50, 98_765, "a single value is exact");
    }
}
