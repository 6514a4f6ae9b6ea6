//! The printk designs: one trait, one module per design.
//!
//! A design's `printk` is callable from any context (task, hardirq, NMI),
//! allocates nothing, takes no std or parking_lot lock, formats into a
//! fixed stack buffer with `core::fmt`, and never fails its caller: what it
//! cannot store it counts. Every design keeps exact accounts:
//!
//! ```text
//! attempted = stored + dropped + lost_in_deadlock
//! stored    = readable + overwritten + unfinished + merged
//! ```
//!
//! `attempted` counts printk calls, every `KERN_CONT` piece included, in
//! every design, and the lines a design prints about itself (such as
//! legacy's "BUG: recent printk recursion!"), counted separately as
//! `internal`; `stored` counts the calls whose text reached the buffer.
//! `readable`, `overwritten` and `unfinished` count records, each on its
//! own; `merged` counts the pieces that went into a record another call
//! had opened (the lockless ring's `prb_reserve_in_last()`; legacy stores
//! every piece as a record of its own).

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::Arch;
use crate::console::{Console, ConsoleConfig, ConsoleStats};
use crate::era::Kernel;
use crate::lock::LockCore;
use crate::point::{self, Point};
use crate::record::{Level, Meta, Record, TextBuf, TEXT_MAX};

pub mod cpu_sync;
mod handoff;
pub mod legacy;
pub mod lockless;
pub mod nbcon;
pub mod safe;

pub use lockless::PrbLog;

/// What a design needs to know about the machine it runs on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DesignConfig {
    /// Number of CPUs.
    pub nr_cpus: usize,
    /// Main log buffer size in bytes (a power of two).
    pub buffer_size: usize,
    /// The console.
    pub console: ConsoleConfig,
}

/// A design's message accounts after a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    /// printk calls, plus the design's own lines.
    pub attempted: u64,
    /// Records that reached the buffer.
    pub stored: u64,
    /// Messages the design chose to drop (recursion, a failed trylock, no
    /// room), counted.
    pub dropped: u64,
    /// Messages whose printk was broken out of a deadlock.
    pub lost_in_deadlock: u64,
    /// Stored records later overwritten by newer ones.
    pub overwritten: u64,
    /// Records still reserved, or open for continuation, when the run
    /// ended (their writer was stopped, or never ended the line).
    pub unfinished: u64,
    /// Pieces appended to a record another printk call had opened.
    pub merged: u64,
    /// Records still in the buffer at the end.
    pub readable: u64,
    /// Records that reached the console.
    pub printed: u64,
    /// Of `attempted`, the lines the design printed about itself.
    pub internal: u64,
}

impl Accounts {
    /// Whether both account identities hold.
    pub fn balanced(&self) -> bool {
        self.attempted == self.stored + self.dropped + self.lost_in_deadlock
            && self.stored == self.readable + self.overwritten + self.unfinished + self.merged
    }
}

/// The counters behind [`Accounts`], updated from any context.
#[derive(Debug, Default)]
pub struct Counters {
    attempted: AtomicU64,
    stored: AtomicU64,
    dropped: AtomicU64,
    lost_in_deadlock: AtomicU64,
    overwritten: AtomicU64,
    merged: AtomicU64,
    internal: AtomicU64,
}

impl Counters {
    /// A printk call began.
    pub fn attempt(&self) {
        self.attempted.fetch_add(1, Ordering::Relaxed);
    }
    /// The design is about to store a line of its own.
    pub fn attempt_internal(&self) {
        self.attempted.fetch_add(1, Ordering::Relaxed);
        self.internal.fetch_add(1, Ordering::Relaxed);
    }
    /// The next attempt (counted where it is made) is a line of the
    /// design's own, like "Lost 3 message(s)!".
    pub fn mark_internal(&self) {
        self.internal.fetch_add(1, Ordering::Relaxed);
    }
    /// A record reached the buffer.
    pub fn store(&self) {
        self.stored.fetch_add(1, Ordering::Relaxed);
    }
    /// A message was dropped on purpose.
    pub fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    /// A message was lost because its printk was broken out of a deadlock.
    pub fn lose_in_deadlock(&self) {
        self.lost_in_deadlock.fetch_add(1, Ordering::Relaxed);
    }
    /// A piece went into a record another call had opened.
    pub fn merge(&self) {
        self.merged.fetch_add(1, Ordering::Relaxed);
    }
    /// A stored record was overwritten.
    pub fn overwrite(&self, n: u64) {
        self.overwritten.fetch_add(n, Ordering::Relaxed);
    }
    /// The accounts, given what is still readable and the console's stats.
    pub fn accounts(&self, readable: u64, console: &ConsoleStats) -> Accounts {
        Accounts {
            attempted: self.attempted.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            lost_in_deadlock: self.lost_in_deadlock.load(Ordering::Relaxed),
            overwritten: self.overwritten.load(Ordering::Relaxed),
            unfinished: 0,
            merged: self.merged.load(Ordering::Relaxed),
            readable,
            printed: console.printed,
            internal: self.internal.load(Ordering::Relaxed),
        }
    }
}

/// One printk design.
///
/// The contract: every method but the after-the-run ones ([`Printk::accounts`],
/// [`Printk::records`], [`Printk::check`]) may be called from any context,
/// NMI included: no allocation, no std or parking_lot lock (only klog's
/// locks, whose waits the watchdog sees), no panic; and the accounts are
/// exact (`attempted = stored + dropped + lost_in_deadlock`).
///
/// # Example
///
/// The smallest honest design: it stores nothing and says so, counting
/// every message as dropped.
///
/// ```
/// use core::fmt;
/// use core::sync::atomic::{AtomicU64, Ordering};
///
/// use klog::console::{Console, ConsoleConfig};
/// use klog::printk::{Accounts, DropReason, Printk, ReadAt};
/// use klog::record::{Record, TextBuf, TEXT_MAX};
/// use klog::{Arch, Level, LockCore};
///
/// struct Nothing {
///     dropped: AtomicU64,
///     console: Console,
/// }
///
/// impl<A: Arch> Printk<A> for Nothing {
///     fn name(&self) -> &'static str {
///         "nothing"
///     }
///     fn printk(&self, _: &A, _: Level, _: fmt::Arguments<'_>) {
///         self.dropped.fetch_add(1, Ordering::Relaxed);
///     }
///     fn irq_work(&self, _: &A) {}
///     fn accounts(&mut self) -> Accounts {
///         let n = self.dropped.load(Ordering::Relaxed);
///         Accounts { attempted: n, dropped: n, ..Accounts::default() }
///     }
///     fn records(&mut self) -> Vec<Record> {
///         Vec::new()
///     }
///     fn read_at(&self, _: &A, _: u64, _: &mut TextBuf<TEXT_MAX>) -> ReadAt {
///         ReadAt::NotYet
///     }
///     fn locks(&self) -> Vec<&LockCore> {
///         Vec::new()
///     }
///     fn console(&self) -> &Console {
///         &self.console
///     }
///     fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
///         vec![(DropReason::NoSpace, self.dropped.load(Ordering::Relaxed))]
///     }
///     fn check(&mut self) -> Result<(), String> {
///         Ok(())
///     }
/// }
///
/// let mut d = Nothing {
///     dropped: AtomicU64::new(0),
///     console: Console::new(ConsoleConfig::serial(115_200, 0.01), 1),
/// };
/// let cpu = klog::arch::Quiet;
/// d.printk(&cpu, Level::Info, format_args!("hello\n"));
/// let a = Printk::<klog::arch::Quiet>::accounts(&mut d);
/// assert_eq!((a.attempted, a.dropped, a.stored), (1, 1, 0));
/// ```
pub trait Printk<A: Arch>: Send + Sync {
    /// The design's name (`legacy`, `lockless`, ...).
    fn name(&self) -> &'static str;

    /// `printk()`: format and store a message, and print to the console if
    /// this design does that here. Callable from any context.
    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>);

    /// The design's irq_work, run in hardirq context after
    /// [`Arch::irq_work_queue`].
    fn irq_work(&self, arch: &A);

    /// The accounts, read from the counters and the buffer itself. Only
    /// after the run, when every CPU has stopped.
    fn accounts(&mut self) -> Accounts;

    /// The records left in the buffer, oldest first. Only after the run.
    fn records(&mut self) -> Vec<Record>;

    /// A log reader's next step (`/dev/kmsg`, `syslog(2)`): the record
    /// `seq` into `text`, or where to go on. Callable while CPUs run, from
    /// a thread that is not a CPU; allocates nothing.
    fn read_at(&self, arch: &A, seq: u64, text: &mut TextBuf<TEXT_MAX>) -> ReadAt;

    /// The locks the watchdog may find CPUs waiting for.
    fn locks(&self) -> Vec<&LockCore>;

    /// The design's console.
    fn console(&self) -> &Console;

    /// Why messages were dropped: `(reason, count)`, adding up to
    /// [`Accounts::dropped`].
    fn drop_reasons(&self) -> Vec<(DropReason, u64)>;

    /// Check the buffer's invariants. Only after the run.
    fn check(&mut self) -> Result<(), String>;

    /// `printk_safe_flush()`: move every CPU's buffered messages into the
    /// log, as the CPU that requested an all-CPU backtrace does once the
    /// other CPUs have answered. Designs without per-CPU buffers have
    /// nothing to do.
    fn flush_all_cpus(&self, _arch: &A) {}

    /// `printk_nmi_enter()`, called by the machine as an NMI handler
    /// begins (the kernel calls it from `nmi_enter()`).
    fn nmi_enter(&self, _arch: &A) {}

    /// `printk_nmi_exit()`, as the NMI handler ends.
    fn nmi_exit(&self, _arch: &A) {}

    /// The panic CPU's last flush to the consoles, after every other CPU
    /// was stopped.
    fn panic_flush(&self, _arch: &A) {}

    /// `printk_cpu_sync` (5.14 on), which keeps one CPU's dump
    /// (`dump_stack()`, an NMI backtrace) from interleaving with
    /// another's, if this design's kernel had it.
    fn cpu_sync(&self) -> Option<&cpu_sync::CpuSync> {
        None
    }

    /// The kernel's final `nbcon_atomic_flush_unsafe()` in `panic()`,
    /// after the last [`Printk::panic_flush`] (behind the "end Kernel
    /// panic" line): the one flush allowed to take a console over in an
    /// unsafe state. Designs without such a console have nothing more to
    /// do.
    fn panic_flush_unsafe(&self, _arch: &A) {}

    /// `nbcon_cpu_emergency_enter()`: printk on this CPU flushes in the
    /// caller until the matching exit (a WARN, an oops, a stall report).
    fn emergency_enter(&self, _arch: &A) {}

    /// `nbcon_cpu_emergency_exit()`.
    fn emergency_exit(&self, _arch: &A) {}

    /// Whether this design prints from a printer thread of its own when
    /// the machine runs one.
    fn wants_printer(&self) -> bool {
        false
    }

    /// The machine started (true) or stopped (false) the printer thread:
    /// printk offloads to it only while it runs.
    fn set_printer_running(&self, _running: bool) {}

    /// What the design's own machinery did, for the report: `(event,
    /// count)` pairs such as console hand-offs. Only after the run.
    fn events(&self) -> Vec<(Event, u64)> {
        Vec::new()
    }

    /// One pass of the printer thread: print what is pending. True if
    /// there may be more.
    fn printer_pass(&self, _arch: &A) -> bool {
        false
    }
}

/// Why a design dropped a message: the reasons behind
/// [`Accounts::dropped`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The log had no room for it.
    NoSpace,
    /// printk found itself re-entered on its CPU (3.x/4.x `logbuf_cpu`).
    Recursion,
    /// The `trylock` wrapper's one try of `logbuf_lock` in NMI failed.
    NmiTrylockFailed,
    /// The per-CPU NMI (or printk-safe) buffer was full.
    NmiBufferFull,
    /// Still in a per-CPU buffer when the run ended.
    NeverFlushed,
    /// The ring could not recycle a descriptor another context had not
    /// finished.
    DescBusy,
    /// The ring could not recycle data another context had not finished.
    DataBusy,
    /// Larger than the ring.
    TooBig,
    /// Another CPU was in panic, and only its messages are stored
    /// (6.x `panic_on_other_cpu()`).
    OtherCpuInPanic,
}

impl DropReason {
    /// The name tables and JSON use.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoSpace => "no_space",
            DropReason::Recursion => "recursion",
            DropReason::NmiTrylockFailed => "nmi_trylock_failed",
            DropReason::NmiBufferFull => "nmi_buffer_full",
            DropReason::NeverFlushed => "never_flushed",
            DropReason::DescBusy => "desc_busy",
            DropReason::DataBusy => "data_busy",
            DropReason::TooBig => "too_big",
            DropReason::OtherCpuInPanic => "other_cpu_in_panic",
        }
    }
}

/// Something a design's console machinery did, counted for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// 4.16's console_owner/console_waiter hand-off: a printing CPU passed
    /// the console to a CPU spinning for it.
    ConsoleHandoff,
    /// nbcon: an owner handed the console to a CPU that asked for it.
    NbconHandover,
    /// nbcon: a request for the console timed out.
    HandoverTimeout,
    /// nbcon: the console taken without waiting (panic).
    HostileTakeover,
    /// nbcon: a record cut short by a lost ownership, printed again whole.
    Replay,
    /// nbcon: an owner found its console taken in the middle of a record.
    LostOwnership,
    /// nbcon: the final unsafe takeover in panic happened.
    UnsafeTakeover,
}

impl Event {
    /// The name tables and JSON use (both hand-offs are "handovers").
    pub fn name(self) -> &'static str {
        match self {
            Event::ConsoleHandoff | Event::NbconHandover => "handovers",
            Event::HandoverTimeout => "handover_timeouts",
            Event::HostileTakeover => "hostile_takeovers",
            Event::Replay => "replays",
            Event::LostOwnership => "lost_ownership",
            Event::UnsafeTakeover => "unsafe_takeover",
        }
    }
}

/// What a log reader finds at the sequence number it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAt {
    /// The record (its text in the caller's buffer).
    Record(Meta),
    /// Overwritten before it was read: the oldest record still there is
    /// `next` (`/dev/kmsg` returns `-EPIPE` here).
    Gone {
        /// Where to go on.
        next: u64,
    },
    /// Not written (or not finished) yet.
    NotYet,
}

/// An injection point as one design uses it.
#[derive(Clone, Copy, Debug)]
pub struct PointUse {
    /// The point.
    pub point: Point,
    /// What is happening there in this design.
    pub about: &'static str,
}

/// The six designs of the history, and designs from outside klog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DesignKind {
    /// A design written outside klog: [`External`] holds what builds it.
    External(External),
    /// 3.x-4.10 printk under logbuf_lock.
    Legacy,
    /// The proposed NMI trylock wrapper.
    Trylock,
    /// 4.7/4.11 per-CPU NMI and printk-safe buffers.
    NmiBuffers,
    /// 4.16: printk_safe, deferred NMI mode and the console hand-off.
    LegacyHandoff,
    /// The 5.10 lockless ring (5.18-6.5 console).
    Lockless,
    /// 6.12 nbcon consoles and the printer thread.
    Nbcon,
}

/// What builds a design written outside klog, for the one [`Arch`] it was
/// written to run on: a `&'static` function pointer of type
/// `fn(&DesignConfig) -> Box<dyn Printk<A>>`, type-erased so that a
/// [`DesignInfo`] (which knows no `Arch`) can carry it.
/// [`DesignInfo::build`] gives `None` for any other `Arch`.
///
/// # Example
///
/// ```
/// use klog::printk::{DesignConfig, DesignInfo, DesignKind, External, Printk};
/// # use klog::printk::lockless::Lockless;
/// # type MyDesign = Lockless;
/// type Quiet = klog::arch::Quiet;
///
/// fn build(config: &DesignConfig) -> Box<dyn Printk<Quiet>> {
///     Box::new(MyDesign::new(config))
/// }
/// static BUILD: fn(&DesignConfig) -> Box<dyn Printk<Quiet>> = build;
///
/// static MINE: DesignInfo = DesignInfo {
///     kind: DesignKind::External(External(&BUILD)),
///     name: "mine",
///     summary: "my own printk",
///     point_groups: &[],
///     kernel: klog::Kernel::new(6, 12),
/// };
/// let config = DesignConfig {
///     nr_cpus: 1,
///     buffer_size: 1 << 16,
///     console: klog::console::ConsoleConfig::none(),
/// };
/// assert!(MINE.build::<Quiet>(&config).is_some());
/// ```
#[derive(Clone, Copy)]
pub struct External(pub &'static (dyn core::any::Any + Send + Sync));

impl External {
    fn addr(&self) -> *const () {
        (self.0 as *const (dyn core::any::Any + Send + Sync)).cast()
    }
}

impl PartialEq for External {
    fn eq(&self, other: &External) -> bool {
        self.addr() == other.addr()
    }
}

impl Eq for External {}

impl core::hash::Hash for External {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.addr().hash(h);
    }
}

impl fmt::Debug for External {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "External({:p})", self.addr())
    }
}

/// A design as the catalogue lists it.
#[derive(Clone, Copy, Debug)]
pub struct DesignInfo {
    /// Which design it is.
    pub kind: DesignKind,
    /// The name scenarios and the command line use.
    pub name: &'static str,
    /// One line: what it models.
    pub summary: &'static str,
    /// The injection points this design passes, in groups (some groups are
    /// shared between designs); [`DesignInfo::points`] walks them all.
    pub point_groups: &'static [&'static [PointUse]],
    /// The release whose messages it prints (lockdep's reports, the
    /// watchdog's lines, printk's own lines).
    pub kernel: Kernel,
}

impl DesignInfo {
    /// Every injection point this design passes, with what happens there.
    pub fn points(&self) -> impl Iterator<Item = &'static PointUse> {
        self.point_groups.iter().flat_map(|g| g.iter())
    }

    /// Whether this design passes `point`.
    pub fn has_point(&self, point: Point) -> bool {
        self.points().any(|u| u.point == point)
    }

    /// A design of this kind for a machine described by `config`: always
    /// for the six of the history; for an [`External`] one, only on the
    /// `Arch` its builder was written for (`None` on any other).
    pub fn build<A: Arch + 'static>(&self, config: &DesignConfig) -> Option<Box<dyn Printk<A>>> {
        use legacy::{Flavour, Legacy};
        Some(match self.kind {
            DesignKind::Legacy => Box::new(Legacy::with_flavour(config, Flavour::Plain)),
            DesignKind::Trylock => Box::new(Legacy::with_flavour(config, Flavour::Trylock)),
            DesignKind::NmiBuffers => Box::new(Legacy::with_flavour(config, Flavour::NmiBuffers)),
            DesignKind::LegacyHandoff => Box::new(Legacy::with_flavour(config, Flavour::Handoff)),
            DesignKind::Lockless => Box::new(lockless::Lockless::new(config)),
            DesignKind::Nbcon => Box::new(nbcon::Nbcon::new(config)),
            DesignKind::External(e) => {
                let build =
                    e.0.downcast_ref::<fn(&DesignConfig) -> Box<dyn Printk<A>>>()?;
                build(config)
            }
        })
    }
}

/// The points of the logbuf_lock designs (`legacy` and its flavours).
const LEGACY_POINTS: &[PointUse] = &[
            PointUse {
                point: point::VPRINTK_LOCK_ACQUIRED,
                about: "vprintk_emit() took logbuf_lock, logbuf_cpu not yet set (legacy: an NMI printk here deadlocks)",
            },
            PointUse {
                point: point::VPRINTK_LOGBUF_LOCKED,
                about: "vprintk_emit() holds logbuf_lock with logbuf_cpu set (legacy: an NMI printk here is lost to the recursion check)",
            },
            PointUse {
                point: point::CONSOLE_UNLOCK_LOGBUF_LOCKED,
                about: "console_unlock() copies a record under logbuf_lock (legacy: an NMI printk here deadlocks)",
            },
            PointUse {
                point: point::CONSOLE_UNLOCK_WRITE,
                about: "console_unlock() writes a record to the console, interrupts off, logbuf_lock free (legacy_handoff: this CPU is the console owner)",
            },
        ];

/// console_sem's internal lock, in every design that prints from the
/// printk caller through console_sem.
const SEM_POINTS: [PointUse; 2] = [
    PointUse {
        point: point::DOWN_TRYLOCK_SEM_LOCKED,
        about: "console_trylock(): down_trylock() holds console_sem's own raw spinlock (sem->lock), interrupts off",
    },
    PointUse {
        point: point::UP_SEM_LOCKED,
        about: "console_unlock(): up() holds console_sem's own raw spinlock (sem->lock), interrupts off",
    },
];

/// The two points at which a design that stores and prints under one lock
/// of its own holds it, described for the lock named `$lock` (a string
/// literal): [`point::VPRINTK_LOGBUF_LOCKED`] while a message is stored and
/// [`point::CONSOLE_UNLOCK_LOGBUF_LOCKED`] while a record is printed, the
/// two windows in which legacy holds logbuf_lock.
///
/// ```
/// const OWN: [klog::printk::PointUse; 2] = klog::lock_points!("my_lock");
/// assert_eq!(OWN[0].about, "my_lock is held: the message is being stored");
/// assert_eq!(OWN[1].point, klog::point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
/// ```
#[macro_export]
macro_rules! lock_points {
    ($lock:literal) => {
        [
            $crate::printk::PointUse {
                point: $crate::point::VPRINTK_LOGBUF_LOCKED,
                about: concat!($lock, " is held: the message is being stored"),
            },
            $crate::printk::PointUse {
                point: $crate::point::CONSOLE_UNLOCK_LOGBUF_LOCKED,
                about: concat!($lock, " is held: a record is being printed"),
            },
        ]
    };
}

/// The serial driver's port lock: every design that writes records with
/// [`crate::console::Console::write_record`] passes it (a design written
/// outside klog lists it too).
pub const SERIAL_POINTS: [PointUse; 1] = [PointUse {
    point: point::SERIAL_PORT_LOCKED,
    about: "the serial driver holds port->lock and writes a record, interrupts off",
}];

/// The ring's own points, the same in `lockless` and `nbcon` (they share
/// the ring), and in any design that stores and reads with [`PrbLog`].
pub const RING_POINTS: [PointUse; 6] = [
    PointUse {
        point: point::PRB_HEAD_MOVED,
        about: "the ring's descriptor head moved; the descriptor is not reserved yet",
    },
    PointUse {
        point: point::PRB_RESERVED,
        about: "a descriptor is reserved; no data allocated yet",
    },
    PointUse {
        point: point::PRB_DATA_ALLOCATED,
        about: "the data head moved for a new block; its id not yet written",
    },
    PointUse {
        point: point::PRB_BEFORE_COMMIT,
        about: "the text is written; the record is not committed yet",
    },
    PointUse {
        point: point::PRB_BEFORE_FINALIZE,
        about: "a record is committed (open for continuation) and not yet finalized",
    },
    PointUse {
        point: point::PRB_READ_COPIED,
        about: "a reader copied a record and has not re-validated it yet",
    },
];

/// Every design, in history order.
pub const DESIGNS: &[DesignInfo] = &[
    DesignInfo {
        kind: DesignKind::Legacy,
        name: "legacy",
        kernel: Kernel::new(3, 16),
        summary: "3.x-4.10 printk: byte ring under logbuf_lock, console_sem, console_unlock() prints everybody's records; an NMI's printk goes to the console too",
        point_groups: &[LEGACY_POINTS, &SEM_POINTS, &SERIAL_POINTS],
    },
    DesignInfo {
        kind: DesignKind::Trylock,
        name: "trylock",
        kernel: Kernel::new(3, 16),
        summary: "the proposed NMI wrapper (never merged): legacy, but in NMI one trylock of logbuf_lock, the message dropped on failure; console deferred to irq_work",
        point_groups: &[LEGACY_POINTS, &SEM_POINTS, &SERIAL_POINTS],
    },
    DesignInfo {
        kind: DesignKind::NmiBuffers,
        name: "nmi_buffers",
        kernel: Kernel::new(4, 11),
        summary: "4.11-4.12: 4.7's printk_nmi + 4.11's printk_safe, per-CPU 8 KiB buffers in NMI and recursion, flushed into the log by irq_work",
        point_groups: &[LEGACY_POINTS, &SEM_POINTS, &SERIAL_POINTS],
    },
    DesignInfo {
        kind: DesignKind::LegacyHandoff,
        name: "legacy_handoff",
        kernel: Kernel::new(4, 16),
        summary: "4.16: printk_safe with 4.13's deferred NMI mode, and the console_owner/console_waiter hand-off (spinning even in a panic)",
        point_groups: &[LEGACY_POINTS, &SEM_POINTS, &SERIAL_POINTS],
    },
    DesignInfo {
        kind: DesignKind::Lockless,
        name: "lockless",
        kernel: Kernel::new(6, 1),
        summary: "5.18-6.5: the 5.10 printk_ringbuffer, no lock on the store path, console deferred from NMI, the console hand-off (no spinning in a panic)",
        point_groups: &[&[
            PointUse {
                point: point::VPRINTK_LOGBUF_LOCKED,
                about: "a record is reserved and not yet committed (legacy's locked window; no lock here)",
            },
            PointUse {
                point: point::CONSOLE_UNLOCK_LOGBUF_LOCKED,
                about: "the console loop copies a record out of the ring (where legacy holds logbuf_lock; no lock here)",
            },
            PointUse {
                point: point::CONSOLE_UNLOCK_WRITE,
                about: "the console loop writes a record to the console: this CPU holds console_sem and is the console owner",
            },
        ],
        &SEM_POINTS,
        &SERIAL_POINTS,
        &RING_POINTS,
    ],
    },
    DesignInfo {
        kind: DesignKind::Nbcon,
        name: "nbcon",
        kernel: Kernel::new(6, 12),
        summary: "6.12 atomic consoles on the lockless ring: console ownership by priority, handover, panic takeover, a printer thread",
        point_groups: &[&[
            PointUse {
                point: point::VPRINTK_LOGBUF_LOCKED,
                about: "a record is reserved and not yet committed (no lock here)",
            },
            PointUse {
                point: point::CONSOLE_UNLOCK_LOGBUF_LOCKED,
                about: "the console owner copies a record out of the ring (where legacy holds logbuf_lock; no lock here)",
            },
            PointUse {
                point: point::CONSOLE_UNLOCK_WRITE,
                about: "the console owner starts writing a record",
            },
            PointUse {
                point: point::NBCON_UNSAFE,
                about: "the console owner is in an unsafe section, putting one character on the wire",
            },
            PointUse {
                point: point::NBCON_SAFE,
                about: "the console owner finished a record and is safe",
            },
        ],
        &RING_POINTS,
    ],
    },
];

/// The release design `name` prints its messages in (the newest one if
/// `name` is not in the catalogue).
pub(crate) fn kernel_of(name: &str) -> Kernel {
    design(name).map_or(Kernel::new(6, 12), |d| d.kernel)
}

/// The design called `name`.
pub fn design(name: &str) -> Option<&'static DesignInfo> {
    DESIGNS.iter().find(|d| d.name == name)
}
