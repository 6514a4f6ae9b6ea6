//! The per-CPU buffers of 4.7's printk_nmi and 4.11's printk_safe, used by
//! the `nmi_buffers` flavour of [`super::legacy`].
//!
//! Each CPU has two 8 KiB buffers (`CONFIG_PRINTK_SAFE_LOG_BUF_SHIFT = 13`):
//! one written in NMI context, one written when printk recurses while this
//! CPU holds printk's own locks (the per-CPU "safe" nesting count is
//! raised around every `logbuf_lock` section). A writer appends a line
//! (`"\x01" level text "\n"`) after the buffer's current length and
//! publishes it with a compare-and-swap of the length, so it never waits
//! for anybody; a line that does not fit is truncated to the room left,
//! and once the buffer is full messages are lost and counted.
//!
//! The flusher, in irq_work on the CPU that wrote (or, for every CPU, on
//! the CPU that requested an all-CPU backtrace), takes the flushers' own
//! raw spinlock `read_lock`, stores each complete line into the main log,
//! and swaps the length back to zero only if no writer appended meanwhile
//! (otherwise it goes on from where it stopped). Lost messages are reported
//! in the log as "Lost N message(s)!", as 4.11's `report_message_lost()`
//! did for either buffer. The per-CPU text carries
//! no timestamp or origin: a flushed record has the flusher's time, CPU and
//! context, as in the kernel.
//!
//! Writers are callable from any context; nothing here allocates after
//! construction.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::arch::Arch;
use crate::lock::{LockCore, RawSpinLock};
use crate::record::{Level, TextBuf, TEXT_MAX};

/// Bytes per per-CPU buffer.
pub const SAFE_BUF_SIZE: usize = 8192;

/// One per-CPU buffer: `struct printk_safe_seq_buf`.
struct SeqBuf {
    len: AtomicUsize,
    lost: AtomicU64,
    buf: Box<[AtomicU8]>,
}

impl SeqBuf {
    fn new() -> SeqBuf {
        SeqBuf {
            len: AtomicUsize::new(0),
            lost: AtomicU64::new(0),
            buf: (0..SAFE_BUF_SIZE).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// Append one line; false if the buffer was full and the message lost.
    fn append(&self, level: Level, text: &[u8]) -> bool {
        let prefix = [1, b'0' + level as u8];
        let line = prefix.iter().chain(text).chain(b"\n");
        loop {
            // Acquire pairs with the flusher's Release reset: our bytes go
            // after what it has finished reading.
            let len = self.len.load(Ordering::Acquire);
            if len >= SAFE_BUF_SIZE - 1 {
                self.lost.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            let mut end = len;
            for (slot, b) in self.buf.iter().skip(len).zip(line.clone()) {
                slot.store(*b, Ordering::Relaxed);
                end += 1;
            }
            // Release: a flusher that sees the new length sees the bytes.
            if self
                .len
                .compare_exchange(len, end, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
            // A flusher reset the buffer meanwhile: write again at the start.
        }
    }

    fn byte(&self, at: usize) -> u8 {
        self.buf
            .get(at)
            .map_or(b'\n', |b| b.load(Ordering::Relaxed))
    }

    /// Complete or partial lines between `from` and `to`.
    fn lines(&self, from: usize, to: usize) -> usize {
        if from >= to {
            return 0;
        }
        let newlines = (from..to).filter(|&i| self.byte(i) == b'\n').count();
        newlines + usize::from(self.byte(to - 1) != b'\n')
    }
}

/// Every CPU's NMI and safe buffers, the safe nesting counts, and the
/// flushers' lock.
pub struct SafeBuffers {
    nmi: Box<[SeqBuf]>,
    safe: Box<[SeqBuf]>,
    safe_depth: Box<[AtomicU32]>,
    /// Per CPU, 4.13's `PRINTK_NMI_DEFERRED_CONTEXT_MASK`: this NMI
    /// stores into the main log (taking `logbuf_lock`) instead of its
    /// per-CPU buffer.
    nmi_deferred: Box<[AtomicBool]>,
    /// Whether NMIs may choose the deferred mode at all (4.13–4.18).
    deferred_mode: bool,
    read_lock: RawSpinLock<()>,
}

/// Which buffer a printk went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Written in NMI context.
    Nmi,
    /// Written while this CPU held printk's locks.
    Safe,
}

impl SafeBuffers {
    /// Buffers for `nr_cpus` CPUs; `deferred_mode` adds 4.13's choice at
    /// NMI entry ([`SafeBuffers::nmi_enter`]).
    pub fn new(nr_cpus: usize, deferred_mode: bool) -> SafeBuffers {
        SafeBuffers {
            nmi: (0..nr_cpus).map(|_| SeqBuf::new()).collect(),
            safe: (0..nr_cpus).map(|_| SeqBuf::new()).collect(),
            safe_depth: (0..nr_cpus).map(|_| AtomicU32::new(0)).collect(),
            nmi_deferred: (0..nr_cpus).map(|_| AtomicBool::new(false)).collect(),
            deferred_mode,
            read_lock: RawSpinLock::new("printk_safe_read_lock", ()),
        }
    }

    /// `printk_nmi_enter()`, 4.13–4.18 (commit 719f6a7040f1): an NMI uses
    /// its per-CPU buffer only if this CPU is in printk-safe context and
    /// `logbuf_lock` is held; otherwise it stores straight into the main
    /// log, waiting for `logbuf_lock` if another CPU holds it. The choice
    /// is made once, here: nothing looks again when the NMI's printk
    /// comes. Without the deferred mode (4.7–4.12, 4.19 on) every NMI
    /// printk goes to the per-CPU buffer.
    pub fn nmi_enter<A: Arch>(&self, arch: &A, logbuf_locked: bool) {
        let cpu = arch.this_cpu();
        let (Some(flag), Some(depth)) = (self.nmi_deferred.get(cpu), self.safe_depth.get(cpu))
        else {
            return;
        };
        let in_safe = depth.load(Ordering::Relaxed) > 0;
        flag.store(
            self.deferred_mode && !(in_safe && logbuf_locked),
            Ordering::Relaxed,
        );
    }

    /// `printk_nmi_exit()`.
    pub fn nmi_exit<A: Arch>(&self, arch: &A) {
        if let Some(flag) = self.nmi_deferred.get(arch.this_cpu()) {
            flag.store(false, Ordering::Relaxed);
        }
    }

    /// The flushers' lock, for the watchdog and lockdep.
    pub fn lock(&self) -> &LockCore {
        self.read_lock.core()
    }

    /// Where a printk on the calling CPU must go instead of the log, if
    /// anywhere (`vprintk_func()`): the NMI buffer in NMI context (unless
    /// this NMI chose the deferred mode at entry), the safe buffer while
    /// this CPU holds printk's locks (a deferred NMI too).
    pub fn diverted<A: Arch>(&self, arch: &A) -> Option<Kind> {
        // The order of the checks is the kernel's: the NMI bit, then the
        // safe count, then the deferred bit (main log).
        let cpu = arch.this_cpu();
        let deferred = self
            .nmi_deferred
            .get(cpu)
            .is_some_and(|d| d.load(Ordering::Relaxed));
        if arch.in_nmi() && !deferred {
            return Some(Kind::Nmi);
        }
        let depth = self.safe_depth.get(cpu)?;
        (depth.load(Ordering::Relaxed) > 0).then_some(Kind::Safe)
    }

    /// `printk_safe_enter()`: this CPU now holds printk's locks.
    pub fn enter<A: Arch>(&self, arch: &A) {
        if let Some(d) = self.safe_depth.get(arch.this_cpu()) {
            d.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `printk_safe_exit()`.
    pub fn exit<A: Arch>(&self, arch: &A) {
        if let Some(d) = self.safe_depth.get(arch.this_cpu()) {
            d.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn buf(&self, kind: Kind, cpu: usize) -> Option<&SeqBuf> {
        match kind {
            Kind::Nmi => self.nmi.get(cpu),
            Kind::Safe => self.safe.get(cpu),
        }
    }

    /// Write a message to the calling CPU's `kind` buffer; false if it was
    /// full and the message is lost (and counted for the flusher to report).
    pub fn write<A: Arch>(&self, arch: &A, kind: Kind, level: Level, text: &[u8]) -> bool {
        self.buf(kind, arch.this_cpu())
            .is_some_and(|b| b.append(level, text))
    }

    /// Flush `cpu`'s buffers: hand every line to `store` (with its level),
    /// then the lost-message line if messages were lost. Takes `read_lock`
    /// with interrupts off; returns false (nothing flushed) if that wait
    /// was broken.
    pub fn flush<A: Arch>(
        &self,
        arch: &A,
        cpu: usize,
        mut store: impl FnMut(Level, &[u8], bool),
    ) -> bool {
        let Ok((guard, flags)) = self.read_lock.lock_irqsave(arch, None) else {
            return false;
        };
        for kind in [Kind::Nmi, Kind::Safe] {
            let Some(b) = self.buf(kind, cpu) else {
                continue;
            };
            let mut from = 0;
            loop {
                // Acquire pairs with the writers' Release.
                let len = b.len.load(Ordering::Acquire);
                if len <= from {
                    if len < from {
                        // Reset and refilled behind us (cannot happen while
                        // we hold read_lock, but never read stale bytes).
                        from = 0;
                        continue;
                    }
                    break;
                }
                let mut line = TextBuf::<TEXT_MAX>::new();
                let mut at = from;
                while at < len {
                    let c = b.byte(at);
                    at += 1;
                    if c != b'\n' {
                        line.push_bytes(&[c]);
                    }
                    if c == b'\n' || at == len {
                        let (level, text) = split_level(line.as_bytes());
                        store(level, text, false);
                        line.clear();
                    }
                }
                from = len;
                // Release: writers that see 0 write over bytes we are done with.
                if b.len
                    .compare_exchange(len, 0, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
                }
            }
            // report_message_lost(): printk_deferred("Lost %d
            // message(s)!\n") with no level of its own, so at the default
            // loglevel (4), for either buffer. (4.7-4.10's nmi.c said "BAD
            // LUCK: lost %d message(s) from NMI context!" at level 2; no
            // design here follows those releases.)
            let lost = b.lost.swap(0, Ordering::Relaxed);
            if lost > 0 {
                let mut msg = TextBuf::<96>::new();
                msg.format(format_args!("Lost {lost} message(s)!"));
                store(Level::Warning, msg.as_bytes(), true);
            }
        }
        drop(guard);
        arch.local_irq_restore(flags);
        true
    }

    /// Messages still waiting in some CPU's buffers (not yet in the log).
    pub fn pending(&self) -> u64 {
        self.nmi
            .iter()
            .chain(self.safe.iter())
            .map(|b| b.lines(0, b.len.load(Ordering::Acquire)) as u64)
            .sum()
    }

    /// Messages lost to full buffers and not yet reported by a flush.
    pub fn unreported_lost(&self) -> u64 {
        self.nmi
            .iter()
            .chain(self.safe.iter())
            .map(|b| b.lost.load(Ordering::Relaxed))
            .sum()
    }
}

/// Split a buffered line into its level prefix and text.
fn split_level(line: &[u8]) -> (Level, &[u8]) {
    match line {
        [1, l @ b'0'..=b'7', rest @ ..] => (Level::from_u8(l - b'0'), rest),
        [1, rest @ ..] => (Level::Warning, rest),
        _ => (Level::Warning, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::NMI_OFFSET;
    use crate::testing::FakeArch;

    fn flushed(s: &SafeBuffers, arch: &FakeArch) -> Vec<(Level, String, bool)> {
        let mut out = Vec::new();
        assert!(s.flush(arch, 0, |l, t, internal| out.push((
            l,
            String::from_utf8_lossy(t).into_owned(),
            internal
        ))));
        out
    }

    #[test]
    fn lines_come_back_with_their_levels() {
        let s = SafeBuffers::new(1, false);
        let arch = FakeArch::new(0, 1);
        arch.preempt_count.store(NMI_OFFSET, Ordering::Relaxed);
        assert_eq!(s.diverted(&arch), Some(Kind::Nmi));
        assert!(s.write(&arch, Kind::Nmi, Level::Err, b"first"));
        assert!(s.write(&arch, Kind::Nmi, Level::Debug, b"second"));
        assert_eq!(s.pending(), 2);
        assert_eq!(
            flushed(&s, &arch),
            vec![
                (Level::Err, "first".into(), false),
                (Level::Debug, "second".into(), false)
            ]
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_full_buffer_truncates_then_loses_and_says_so() {
        let s = SafeBuffers::new(1, false);
        let arch = FakeArch::new(0, 1);
        let line = [b'x'; 1000];
        let mut stored = 0;
        for _ in 0..10 {
            if s.write(&arch, Kind::Nmi, Level::Warning, &line) {
                stored += 1;
            }
        }
        // 8 whole lines of 1003 bytes, a truncated ninth, then one lost.
        assert_eq!(stored, 9);
        let out = flushed(&s, &arch);
        assert_eq!(out.len(), 10);
        assert_eq!(out[8].1.len(), SAFE_BUF_SIZE - 8 * 1003 - 2);
        assert_eq!(out[9], (Level::Warning, "Lost 1 message(s)!".into(), true));
        assert_eq!(s.unreported_lost(), 0);
    }

    #[test]
    fn safe_context_diverts_outside_nmi() {
        let s = SafeBuffers::new(2, false);
        let arch = FakeArch::new(1, 2);
        assert_eq!(s.diverted(&arch), None);
        s.enter(&arch);
        assert_eq!(s.diverted(&arch), Some(Kind::Safe));
        s.exit(&arch);
        assert_eq!(s.diverted(&arch), None);
    }
}
