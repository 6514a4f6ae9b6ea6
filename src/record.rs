//! The record every design stores, its level and caller id, and the
//! fixed-size stack buffer printk formats into.

use core::fmt;
use core::mem::MaybeUninit;

use crate::context::Context;

/// Longest record text a design stores, in bytes (the kernel's
/// `PRINTKRB_RECORD_MAX`); longer messages are truncated.
pub const TEXT_MAX: usize = 1024;

/// The `KERN_CONT` prefix: this text continues the caller's previous line.
pub const KERN_CONT: &str = "\x01c";

named_enum! {
    /// Kernel log levels, most severe first, named as in scenario files
    /// and by `dmesg`:
    ///
    /// | number | level | meaning |
    /// |---|---|---|
    /// | 0 | `KERN_EMERG` | system is unusable |
    /// | 1 | `KERN_ALERT` | action must be taken immediately |
    /// | 2 | `KERN_CRIT` | critical conditions |
    /// | 3 | `KERN_ERR` | error conditions |
    /// | 4 | `KERN_WARNING` | warning conditions |
    /// | 5 | `KERN_NOTICE` | normal but significant |
    /// | 6 | `KERN_INFO` | informational |
    /// | 7 | `KERN_DEBUG` | debug-level messages |
    pub enum Level {
        Emerg = "emerg", Alert = "alert", Crit = "crit", Err = "err",
        Warning = "warning", Notice = "notice", Info = "info", Debug = "debug",
    }
}

impl Level {
    /// The level with this number (values above 7 clamp to `Debug`).
    pub fn from_u8(n: u8) -> Level {
        Level::ALL
            .get(usize::from(n))
            .copied()
            .unwrap_or(Level::Debug)
    }
}

/// `CONFIG_PRINTK_CALLER`'s caller id: the pid in task context, the CPU
/// with the top bit set elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallerId(pub u32);

impl CallerId {
    const CPU_FLAG: u32 = 0x8000_0000;

    /// The caller id of a printk from `context` on `cpu` by task `pid`.
    pub fn new(context: Context, cpu: usize, pid: u32) -> CallerId {
        if context == Context::Task {
            CallerId(pid & !Self::CPU_FLAG)
        } else {
            CallerId(Self::CPU_FLAG | cpu as u32)
        }
    }
}

impl fmt::Display for CallerId {
    /// `T<pid>` or `C<cpu>`, as `CONFIG_PRINTK_CALLER` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 & Self::CPU_FLAG != 0 {
            write!(f, "C{}", self.0 & !Self::CPU_FLAG)
        } else {
            write!(f, "T{}", self.0)
        }
    }
}

/// One stored record, as read back after a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Sequence number, 0 for the first record of the run.
    pub seq: u64,
    /// Nanoseconds since the run started.
    pub ts_ns: u64,
    /// The CPU that printed it.
    pub cpu: usize,
    /// The context it was printed from.
    pub context: Context,
    /// `T<pid>` / `C<cpu>`.
    pub caller: CallerId,
    /// Log level.
    pub level: Level,
    /// Syslog facility (0 = kernel).
    pub facility: u8,
    /// The text, without a trailing newline.
    pub text: String,
    /// A continuation fragment (`LOG_CONT`).
    pub cont: bool,
}

/// Record metadata as a design keeps it while storing (no text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Nanoseconds since the run started.
    pub ts_ns: u64,
    /// Printing CPU.
    pub cpu: usize,
    /// Printing context.
    pub context: Context,
    /// Caller id.
    pub caller: CallerId,
    /// Level.
    pub level: Level,
    /// Continuation fragment.
    pub cont: bool,
}

impl Meta {
    /// The metadata of a record printed now, at `level`, by the calling CPU
    /// in its current context.
    pub fn now<A: crate::arch::Arch>(arch: &A, level: Level) -> Meta {
        let context = arch.context();
        let cpu = arch.this_cpu();
        Meta {
            ts_ns: arch.now_ns(),
            cpu,
            context,
            caller: CallerId::new(context, cpu, arch.task_pid()),
            level,
            cont: false,
        }
    }
}

/// A fixed buffer on the stack that `core::fmt` writes into, truncating
/// what does not fit. Never allocates, never fails. Not zeroed when made:
/// printk makes one per call, and clearing a kilobyte each time was a
/// measurable share of a record's cost; only the written prefix is ever
/// read.
pub struct TextBuf<const N: usize> {
    buf: [MaybeUninit<u8>; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> TextBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        TextBuf {
            buf: [MaybeUninit::uninit(); N],
            len: 0,
            truncated: false,
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.len.min(N);
        // SAFETY: the first `len` bytes were written (by `push_bytes`,
        // then maybe moved by `strip_cont`; every method that changes `len`
        // keeps it at or below `N`, and it is read through `min(N)` all the
        // same); `MaybeUninit<u8>` and `u8` have the same layout.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), len) }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len.min(N)
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keep only the first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Empty the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }

    /// Whether something did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Append raw bytes, truncating.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let room = N.saturating_sub(self.len);
        let n = bytes.len().min(room);
        if n < bytes.len() {
            self.truncated = true;
        }
        // SAFETY: `len <= N` always (every method that changes `len` keeps
        // it so; here `n <= N - len`), so the destination, `n` bytes from
        // `buf + len`, lies in `buf` (or is empty at its end); the source
        // holds at least `n` bytes and is not `buf` (it is borrowed while
        // `self` is borrowed mutably); `MaybeUninit<u8>` and `u8` have the
        // same layout. A plain copy: the slice version paid a bounds check
        // and a loop set-up per piece, and printk writes several pieces per
        // record.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.buf.as_mut_ptr().add(self.len).cast::<u8>(),
                n,
            );
        }
        self.len += n;
    }

    /// Drop a trailing newline, as printk does (it becomes `LOG_NEWLINE`);
    /// whether there was one.
    pub fn strip_newline(&mut self) -> bool {
        if self.as_bytes().last() == Some(&b'\n') {
            self.len -= 1;
            return true;
        }
        false
    }

    /// Drop a leading `KERN_CONT` marker; whether there was one.
    pub fn strip_cont(&mut self) -> bool {
        if self.as_bytes().starts_with(KERN_CONT.as_bytes()) {
            self.buf.copy_within(2..self.len, 0);
            self.len -= 2;
            return true;
        }
        false
    }

    /// Format `args` into the buffer.
    pub fn format(&mut self, args: fmt::Arguments<'_>) {
        // `write_str` below never fails, so neither does this.
        let _ = fmt::write(self, args);
    }
}

impl<const N: usize> Default for TextBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for TextBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes());
        Ok(())
    }
}

/// The console/syslog timestamp prefix `[SSSSS.UUUUUU] `.
pub struct Timestamp(pub u64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0 / 1000;
        write!(f, "[{:5}.{:06}]", us / 1_000_000, us % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbuf_truncates_without_failing() {
        let mut b = TextBuf::<8>::new();
        b.format(format_args!("{}-{}", 1234, "abcdefgh"));
        assert_eq!(b.as_bytes(), b"1234-abc");
        assert!(b.truncated());
    }

    #[test]
    fn caller_id_and_timestamp_format_like_the_kernel() {
        assert_eq!(CallerId::new(Context::Task, 3, 120).to_string(), "T120");
        assert_eq!(CallerId::new(Context::Nmi, 3, 120).to_string(), "C3");
        assert_eq!(Timestamp(1_234_567_891).to_string(), "[    1.234567]");
    }
}
