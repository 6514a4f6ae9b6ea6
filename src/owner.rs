//! Who holds (or took) a lock: CPU, context and acquire point, packed in
//! one word, so a lock's owner and each of lockdep's examples is a single
//! atomic the watchdog can read at any time.

use crate::context::Context;
use crate::point::{self, Point};

/// Who holds a lock, decoded from its owner word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The holding CPU.
    pub cpu: usize,
    /// The context it acquired the lock in.
    pub context: Context,
    /// The point the holder acquired it at, if named.
    pub point: Option<Point>,
}

impl Owner {
    pub(crate) fn encode(cpu: usize, context: Context, at: Option<Point>) -> u64 {
        let point = at.map_or(0, |p| u64::from(p.id) + 1);
        (cpu as u64 + 1) & 0xffff | u64::from(context.level()) << 16 | point << 32
    }

    pub(crate) fn decode(word: u64) -> Option<Owner> {
        let cpu = word & 0xffff;
        if cpu == 0 {
            return None;
        }
        let point = (word >> 32) & 0xffff;
        Some(Owner {
            cpu: cpu as usize - 1,
            context: Context::from_level(((word >> 16) & 3) as u8),
            point: point
                .checked_sub(1)
                .and_then(|id| point::ALL.get(id as usize).copied()),
        })
    }
}
