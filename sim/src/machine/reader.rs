//! A log reader: a thread that is not a CPU reading the log record by
//! record at a fixed rate, the way `dmesg --follow` or a syslog daemon
//! reads `/dev/kmsg`. Writers never wait for it; when it falls behind, the
//! records it wanted are gone, it is told where the oldest one is
//! (`/dev/kmsg`'s `-EPIPE`), and it counts what it missed.

use core::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use klog::printk::ReadAt;
use klog::record::{TextBuf, TEXT_MAX};

use super::irq::block_interrupts;
use super::irq::set_this_cpu;
use super::Machine;

/// What the reader did.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Records read.
    pub read: AtomicU64,
    /// Records it asked for that were overwritten first.
    pub missed: AtomicU64,
    /// Times it was told it had fallen behind.
    pub overruns: AtomicU64,
}

/// The reader's body: `hz` records a second at most, until the run stops.
pub(crate) fn reader(m: &Machine, hz: u32) {
    block_interrupts();
    set_this_cpu(Some(m.cpus.len() + 1));
    m.gate_wait();
    let gap = Duration::from_nanos(1_000_000_000 / u64::from(hz.max(1)));
    let mut text = TextBuf::<TEXT_MAX>::new();
    let mut seq = 0;
    while !m.stop.load(Ordering::Acquire) {
        match m.design.read_at(m, seq, &mut text) {
            ReadAt::Record(_) => {
                m.reader.read.fetch_add(1, Ordering::Relaxed);
                seq += 1;
                std::thread::sleep(gap);
            }
            ReadAt::Gone { next } => {
                m.reader.overruns.fetch_add(1, Ordering::Relaxed);
                m.reader
                    .missed
                    .fetch_add(next.saturating_sub(seq), Ordering::Relaxed);
                seq = next.max(seq + 1);
            }
            ReadAt::NotYet => std::thread::sleep(gap),
        }
    }
    set_this_cpu(None);
}
