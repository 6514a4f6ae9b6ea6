//! The sender thread: the timer tick on every CPU and the timed NMI
//! sources (`periodic`, `random`).
//!
//! A tick sets the CPU's `tick_pending` and sends the IRQ signal only if
//! none was pending, so a CPU stuck with interrupts off (or inside an NMI
//! handler) does not pile up queued real-time signals; `ticks_sent` counts
//! every tick regardless, which is what the hard-lockup check compares the
//! heartbeat with. Like every thread that is not a CPU, the sender blocks
//! both interrupt signals.

use core::sync::atomic::Ordering;
use std::time::Duration;

use super::inject::Trigger;
use super::irq::{block_interrupts, irq_signal};
use super::Machine;
use crate::rng::Rng;
use klog::Arch;

struct Timed {
    source: usize,
    /// Next due time per target CPU (all the same for periodic sources).
    due: Vec<u64>,
}

/// Run until the machine stops.
pub(crate) fn sender(m: &Machine) {
    block_interrupts();
    m.gate_wait();
    let n = m.cpus.len();
    let tick_ns = 1_000_000_000 / u64::from(m.config.hz.max(1));
    let mut rng = Rng::new(m.config.seed ^ 0x005e_ed0f_71c4);
    let mut timed: Vec<Timed> = (0..m.inject.len())
        .filter_map(|source| {
            let s = m.inject.source(source)?;
            let targets = s.targets.cpus(n);
            let due = match s.trigger {
                Trigger::AtPoint { .. } => return None,
                Trigger::Periodic { period_ns } => targets.map(|_| period_ns).collect(),
                Trigger::Random { rate_hz } => {
                    targets.map(|_| rng.exponential_ns(rate_hz)).collect()
                }
                Trigger::At { at_ns } => targets.map(|_| at_ns).collect(),
            };
            Some(Timed { source, due })
        })
        .collect();
    let mut next_tick = tick_ns;
    while !m.stop.load(Ordering::Acquire) {
        let now = m.now_ns();
        if now >= next_tick {
            for (cpu, c) in m.cpus.iter().enumerate() {
                if !c.online.load(Ordering::Acquire) {
                    continue;
                }
                c.ticks_sent.fetch_add(1, Ordering::Relaxed);
                if !c.tick_pending.swap(true, Ordering::AcqRel) {
                    m.send(cpu, irq_signal());
                }
            }
            next_tick = (next_tick + tick_ns).max(now + tick_ns / 2);
        }
        let mut earliest = next_tick;
        for t in &mut timed {
            let Some(s) = m.inject.source(t.source) else {
                continue;
            };
            let targets = s.targets.cpus(n);
            for (cpu, due) in targets.zip(t.due.iter_mut()) {
                if now >= *due {
                    if m.inject.claim(t.source) {
                        m.raise(cpu, t.source);
                    }
                    *due = match s.trigger {
                        Trigger::Periodic { period_ns } => (*due + period_ns).max(now + 1),
                        Trigger::Random { rate_hz } => now + rng.exponential_ns(rate_hz),
                        Trigger::AtPoint { .. } | Trigger::At { .. } => u64::MAX,
                    };
                }
                earliest = earliest.min(*due);
            }
        }
        let now = m.now_ns();
        if earliest > now {
            std::thread::sleep(Duration::from_nanos((earliest - now).min(1_000_000)));
        }
    }
    m.senders_stopped.store(true, Ordering::Release);
}
