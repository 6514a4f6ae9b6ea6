//! The run's randomness: every random choice of a run comes from the
//! scenario's seed through this generator, so a seed replays a run's
//! choices. Signal-safe (plain arithmetic on a word).

/// A small seeded generator (SplitMix64): all the randomness of a run comes
/// from the scenario's seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, (lo, hi): (usize, usize)) -> usize {
        let span = hi.saturating_sub(lo) as u64 + 1;
        lo + (self.next_u64() % span) as usize
    }

    /// An exponentially distributed gap for a Poisson process of `rate_hz`.
    pub fn exponential_ns(&mut self, rate_hz: f64) -> u64 {
        let u = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        (-u.ln() / rate_hz * 1e9) as u64
    }
}
