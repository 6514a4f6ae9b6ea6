//! A console: a slow device that prints records, and the accounts of who
//! printed what.
//!
//! A write busy-waits for its characters (`ns_per_char`, from the baud rate
//! scaled by the scenario's time scale) inside whatever lock or
//! interrupt-disabled section the design holds at that moment, because that
//! is where the kernel spent that time. Output goes to a pre-allocated
//! in-memory sink; what does not fit is counted, not kept.
//!
//! A record goes out under the serial driver's `port->lock`, as
//! `serial8250_console_write()` writes it: taken with interrupts off,
//! except while an oops is in progress (`bust_spinlocks(1)`), when the
//! driver only tries it and writes without it if it is taken. nbcon's
//! atomic console writes character by character under its ownership word
//! instead ([`Console::emit_char`]), as the kernel's nbcon drivers do.
//!
//! Everything here except the constructor and [`Console::output`] is
//! callable from a signal handler.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::arch::Arch;
use crate::lock::{LockCore, RawSpinLock};
use crate::point;
use crate::record::{Meta, TextBuf, Timestamp};

/// Bits per character on the wire (8N1: start + 8 data + stop).
const BITS_PER_CHAR: u64 = 10;

/// A console's speed and sink size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConsoleConfig {
    /// Busy-wait per character written, in nanoseconds (0 = instant).
    pub ns_per_char: u64,
    /// Bytes of output kept in memory.
    pub sink_bytes: usize,
    /// A console is registered at all. Without one printk stores and
    /// returns (what `printk-sim bench` measures as a record's cost).
    pub registered: bool,
    /// The scenario's `time_scale`: kernel time is real time divided by
    /// it, and the console's timestamps are in kernel time, as a real
    /// log's.
    pub time_scale: f64,
}

impl ConsoleConfig {
    /// A serial console at `baud` (0 = instant), with kernel time scaled by
    /// `time_scale` (0.01 turns 87 µs per character at 115200 into 0.87 µs).
    pub fn serial(baud: u32, time_scale: f64) -> ConsoleConfig {
        let ns_per_char = if baud == 0 {
            0
        } else {
            let ns = 1e9 * BITS_PER_CHAR as f64 / f64::from(baud) * time_scale;
            ns.round() as u64
        };
        ConsoleConfig {
            ns_per_char,
            sink_bytes: 1 << 20,
            registered: true,
            time_scale,
        }
    }

    /// No console registered.
    pub fn none() -> ConsoleConfig {
        ConsoleConfig {
            ns_per_char: 0,
            sink_bytes: 0,
            registered: false,
            time_scale: 1.0,
        }
    }
}

/// What a console did, read after the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Records written.
    pub printed: u64,
    /// Records the console skipped because they were overwritten before it
    /// got to them ("** N printk messages dropped **").
    pub skipped: u64,
    /// Longest time from a record's timestamp to its console write, ns.
    pub max_lag_ns: u64,
    /// Per CPU: records that CPU wrote to the console.
    pub printed_by: Vec<u64>,
    /// Per CPU: of those, records another CPU had produced.
    pub printed_for_others: Vec<u64>,
    /// Bytes of output that did not fit in the sink.
    pub sink_overflow: u64,
}

/// A console line: a record's text plus its timestamp.
pub type LineBuf = TextBuf<{ crate::record::TEXT_MAX + 32 }>;

/// One console device.
pub struct Console {
    registered: bool,
    time_scale: f64,
    /// "** N printk messages dropped **" ends in a newline (4.13 on), not
    /// in a space before the next record on the same line.
    dropped_newline: bool,
    /// The serial driver's `port->lock`.
    port_lock: RawSpinLock<()>,
    /// The kernel's `oops_in_progress` as the serial driver reads it.
    oops_in_progress: AtomicBool,
    ns_per_char: u64,
    sink: Box<[AtomicU8]>,
    sink_len: AtomicUsize,
    sink_overflow: AtomicU64,
    printed: AtomicU64,
    skipped: AtomicU64,
    max_lag_ns: AtomicU64,
    printed_by: Box<[AtomicU64]>,
    printed_for_others: Box<[AtomicU64]>,
}

fn counters(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl Console {
    /// A console for a machine of `nr_cpus` CPUs.
    pub fn new(config: ConsoleConfig, nr_cpus: usize) -> Console {
        Console {
            registered: config.registered,
            time_scale: if config.time_scale > 0.0 {
                config.time_scale
            } else {
                1.0
            },
            dropped_newline: true,
            port_lock: RawSpinLock::new("&port_lock_key", ()),
            oops_in_progress: AtomicBool::new(false),
            ns_per_char: config.ns_per_char,
            sink: (0..config.sink_bytes).map(|_| AtomicU8::new(0)).collect(),
            sink_len: AtomicUsize::new(0),
            sink_overflow: AtomicU64::new(0),
            printed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            max_lag_ns: AtomicU64::new(0),
            printed_by: counters(nr_cpus),
            printed_for_others: counters(nr_cpus),
        }
    }

    /// The same console printing the lines of `kernel`'s release.
    pub fn for_kernel(mut self, kernel: crate::era::Kernel) -> Console {
        self.dropped_newline = kernel.dropped_line_ends_in_newline();
        self
    }

    /// Whether a console is registered (without one, designs only store).
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// `port->lock`, for the watchdog and lockdep.
    pub fn port_lock(&self) -> &LockCore {
        self.port_lock.core()
    }

    /// `bust_spinlocks()`: set (true) or clear `oops_in_progress`, which
    /// makes the driver only try `port->lock`.
    pub fn bust_spinlocks(&self, yes: bool) {
        self.oops_in_progress.store(yes, Ordering::Relaxed);
    }

    /// Write one record as the console shows it, `[ts] text`, busy-waiting
    /// for every character, under `port->lock`; `dropped` records skipped
    /// before it are announced first. A wait for `port->lock` that the
    /// watchdog broke writes nothing.
    pub fn write_record<A: Arch>(&self, arch: &A, dropped: u64, meta: &Meta, text: &[u8]) {
        let flags = arch.local_irq_save();
        let at = Some(point::SERIAL_PORT_LOCKED);
        let guard = if self.oops_in_progress.load(Ordering::Relaxed) {
            // serial8250_console_write(): during an oops, write whether or
            // not the lock could be had.
            Ok(self.port_lock.try_lock(arch, at))
        } else {
            self.port_lock.lock(arch, at).map(Some)
        };
        if guard.is_ok() {
            arch.point(point::SERIAL_PORT_LOCKED);
            if dropped > 0 {
                self.emit(arch, self.dropped_line(dropped).as_bytes());
                self.count_skipped(dropped);
            }
            let line = self.line(meta, text);
            self.emit(arch, line.as_bytes());
            self.count_record(arch, meta);
        }
        drop(guard);
        arch.local_irq_restore(flags);
    }

    /// The line a record becomes on the console: `[ts] text\n`, the
    /// timestamp in kernel time.
    pub fn line(&self, meta: &Meta, text: &[u8]) -> LineBuf {
        let mut line = LineBuf::new();
        let _ = write!(line, "{} ", Timestamp(self.kernel_ns(meta.ts_ns)));
        line.push_bytes(text);
        line.push_bytes(b"\n");
        line
    }

    /// Count a record as printed by the calling CPU (after its characters
    /// went out).
    pub fn count_record<A: Arch>(&self, arch: &A, meta: &Meta) {
        let me = arch.this_cpu();
        self.printed.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.printed_by.get(me) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if meta.cpu != me {
            if let Some(c) = self.printed_for_others.get(me) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        let lag = arch.now_ns().saturating_sub(meta.ts_ns);
        self.max_lag_ns.fetch_max(lag, Ordering::Relaxed);
    }

    /// Real nanoseconds since the run began as kernel nanoseconds.
    pub fn kernel_ns(&self, real_ns: u64) -> u64 {
        (real_ns as f64 / self.time_scale) as u64
    }

    /// "** N printk messages dropped **\n" (console_unlock() from 4.13,
    /// and on): or, before 4.13, "** N printk messages dropped ** " with
    /// the next record's line following on the same line.
    pub fn dropped_line(&self, n: u64) -> TextBuf<64> {
        let mut line = TextBuf::<64>::new();
        let end = if self.dropped_newline { "\n" } else { " " };
        let _ = write!(line, "** {n} printk messages dropped **{end}");
        line
    }

    /// Count `n` records as skipped.
    pub fn count_skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }

    /// Write one character, busy-waiting for the wire, as a polled UART
    /// does.
    pub fn emit_char<A: Arch>(&self, arch: &A, b: u8) {
        self.emit(arch, &[b]);
    }

    fn emit<A: Arch>(&self, arch: &A, bytes: &[u8]) {
        if self.ns_per_char > 0 {
            arch.delay_ns(self.ns_per_char * bytes.len() as u64);
        }
        let at = self.sink_len.fetch_add(bytes.len(), Ordering::Relaxed);
        for (i, b) in bytes.iter().enumerate() {
            match self.sink.get(at + i) {
                Some(slot) => slot.store(*b, Ordering::Relaxed),
                None => {
                    let lost = (bytes.len() - i) as u64;
                    self.sink_overflow.fetch_add(lost, Ordering::Relaxed);
                    break;
                }
            }
        }
    }

    /// The accounts so far.
    pub fn stats(&self) -> ConsoleStats {
        let load = |v: &[AtomicU64]| v.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        ConsoleStats {
            printed: self.printed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            max_lag_ns: self.max_lag_ns.load(Ordering::Relaxed),
            printed_by: load(&self.printed_by),
            printed_for_others: load(&self.printed_for_others),
            sink_overflow: self.sink_overflow.load(Ordering::Relaxed),
        }
    }

    /// What was printed, for after the run.
    pub fn output(&self) -> Vec<u8> {
        let len = self.sink_len.load(Ordering::Acquire).min(self.sink.len());
        self.sink
            .iter()
            .take(len)
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

impl core::fmt::Debug for Console {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Console")
            .field("registered", &self.registered)
            .field("ns_per_char", &self.ns_per_char)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_speed_scales_with_time() {
        assert_eq!(ConsoleConfig::serial(115_200, 1.0).ns_per_char, 86_806);
        assert_eq!(ConsoleConfig::serial(115_200, 0.01).ns_per_char, 868);
        assert_eq!(ConsoleConfig::serial(0, 0.01).ns_per_char, 0);
    }
}
