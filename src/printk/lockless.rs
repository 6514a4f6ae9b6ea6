//! `lockless`: printk on the lockless ring buffer (5.10 onward).
//!
//! The write path takes no lock at all: format into a stack buffer, reserve
//! a record in [`crate::ringbuf::Ring`] with interrupts (not NMIs) off,
//! write it, and final-commit it if it ends in a newline (otherwise it
//! stays open, and a `KERN_CONT` printk from the same caller appends to it
//! with `reserve_in_last`; accounts count records, so an appended piece is
//! not a message of its own). A reservation that cannot be made without
//! waiting for another context (the oldest record is still being written)
//! fails, and the message is counted as dropped, with the ring keeping the
//! reason.
//!
//! The console is printed outside anything an NMI could need: from NMI
//! context printk only queues irq_work; elsewhere it takes `console_sem`
//! with a trylock (never spinning) and reads the ring, which never blocks
//! writers.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{Arch, Frame};
use crate::console::Console;
use crate::lock::{LockCore, Semaphore};
use crate::point;
use crate::printk::cpu_sync::CpuSync;
use crate::printk::handoff::Handoff;
use crate::printk::{Accounts, Counters, DesignConfig, DropReason, Event, Printk, ReadAt};
use crate::record::{Level, Meta, Record, TextBuf, TEXT_MAX};
use crate::ringbuf::{Fail, FailCounts, Reserved, Ring};

static VPRINTK_EMIT: Frame = Frame("vprintk_emit");
static CONSOLE_FLUSH: Frame = Frame("console_flush_all");

/// printk's side of the ring, shared by `lockless` and `nbcon` and open to
/// designs written outside klog: storing a message with its accounts, a
/// reader's step, and the records and accounts after a run. It takes no
/// lock and allocates nothing on the store path; a design adds what
/// decides who stores when (a lock, per-CPU buffers) and its console.
pub struct PrbLog {
    /// The ring.
    pub ring: Ring,
    /// The message accounts; a design that loses a message before
    /// [`PrbLog::store`] (a wait the watchdog broke) counts it here.
    pub counters: Counters,
    /// Messages dropped, by the reason their last reservation failed
    /// (the ring counts every failed reservation, and a message may try
    /// twice).
    dropped: FailAtomics,
}

/// [`FailCounts`] as atomics.
#[derive(Default)]
struct FailAtomics {
    too_big: AtomicU64,
    desc_busy: AtomicU64,
    data_busy: AtomicU64,
}

impl FailAtomics {
    fn count(&self, fail: Fail) {
        let c = match fail {
            Fail::TooBig => &self.too_big,
            Fail::DescBusy => &self.desc_busy,
            Fail::DataBusy => &self.data_busy,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl PrbLog {
    /// A ring of `buffer_size` text bytes and one descriptor per 32.
    pub fn new(buffer_size: usize) -> PrbLog {
        PrbLog {
            ring: Ring::for_buffer(buffer_size),
            counters: Counters::default(),
            dropped: FailAtomics::default(),
        }
    }

    /// Format and store one message (or append a `KERN_CONT` piece to the
    /// caller's open record). Never waits.
    // `#[inline]`: with no console, a design's printk is little more than
    // this call, and in the simulator's binary the compiler kept it out of
    // line, which cost lockless and nbcon about 5 ns a record
    // (BENCHMARKS.md, 2026-12-01).
    #[inline]
    pub fn store<A: Arch>(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        let mut text = TextBuf::<TEXT_MAX>::new();
        text.format(args);
        let cont = text.strip_cont();
        let newline = text.strip_newline();
        let mut meta = Meta::now(arch, level);
        // Interrupts (not NMIs) stay off from reserve to commit, as in the
        // kernel, to keep a reserved record from blocking recycling long.
        let flags = arch.local_irq_save();
        // A continuation appends to the caller's open record if it can; a
        // complete line is finalized at once, a partial one stays open.
        let appended = cont
            .then(|| {
                self.ring
                    .reserve_in_last(arch, meta.caller, text.len(), TEXT_MAX)
            })
            .flatten();
        self.counters.attempt();
        let reserved = match appended {
            Some(r) => {
                self.counters.store();
                self.counters.merge();
                Ok(r)
            }
            None => {
                meta.cont = cont;
                // The first try inline (the reservation stays in registers),
                // the truncating retry out of line.
                self.ring
                    .reserve(arch, text.len(), &meta)
                    .or_else(|_| self.truncate_and_reserve(arch, &mut text, &meta))
                    .inspect(|_| self.counters.store())
            }
        };
        match reserved {
            Ok(mut r) => {
                arch.point(point::VPRINTK_LOGBUF_LOCKED);
                r.write(text.as_bytes(), &meta);
                if newline {
                    r.final_commit(arch);
                } else {
                    r.commit(arch);
                }
            }
            Err(fail) => {
                self.counters.drop_one();
                self.dropped.count(fail);
            }
        }
        arch.local_irq_restore(flags);
    }

    /// `vprintk_store()`'s second try, when `prb_reserve()` failed:
    /// `truncate_msg()` caps the text at a quarter of the ring
    /// (`MAX_LOG_TAKE_PART`), ending it in "<truncated>", and the record
    /// is reserved once more at that size.
    #[cold]
    #[inline(never)]
    fn truncate_and_reserve<A: Arch>(
        &self,
        arch: &A,
        text: &mut TextBuf<TEXT_MAX>,
        meta: &Meta,
    ) -> Result<Reserved<'_>, Fail> {
        const TRUNC: &[u8] = b"<truncated>";
        let max = usize::try_from(self.ring.data_bytes() / 4).unwrap_or(usize::MAX);
        if text.len() > max {
            let keep = max.saturating_sub(TRUNC.len());
            text.truncate(keep);
            text.push_bytes(TRUNC);
        }
        self.ring.reserve(arch, text.len(), meta)
    }

    /// The accounts, with the console's.
    pub fn accounts(&self, console: &crate::console::ConsoleStats) -> Accounts {
        let census = self.ring.census();
        let mut a = self.counters.accounts(census.readable, console);
        a.overwritten = census.overwritten;
        a.unfinished = census.unfinished;
        a
    }

    /// The records still readable, oldest first (past any a stopped
    /// writer left unfinished).
    pub fn records(&self) -> Vec<Record> {
        let quiet = crate::arch::Quiet;
        let mut out = Vec::new();
        let mut text = TextBuf::<TEXT_MAX>::new();
        for seq in self.ring.first_seq()..self.ring.next_reserve_seq() {
            let Ok(r) = self.ring.read(&quiet, seq, &mut text) else {
                continue;
            };
            out.push(Record {
                seq: r.seq,
                ts_ns: r.meta.ts_ns,
                cpu: r.meta.cpu,
                context: r.meta.context,
                caller: r.meta.caller,
                level: r.meta.level,
                facility: 0,
                text: String::from_utf8_lossy(text.as_bytes()).into_owned(),
                cont: r.meta.cont,
            });
        }
        out
    }

    /// A log reader's step at `seq`.
    pub fn read_at<A: Arch>(&self, arch: &A, seq: u64, text: &mut TextBuf<TEXT_MAX>) -> ReadAt {
        let mut at = seq;
        match self.ring.read_valid(arch, &mut at, text) {
            Some(r) if r.seq == seq => ReadAt::Record(r.meta),
            Some(r) => ReadAt::Gone { next: r.seq },
            None if at > seq => ReadAt::Gone { next: at },
            None => ReadAt::NotYet,
        }
    }

    /// Print every record from `*next` on to `console` (if one is
    /// registered), moving `*next` past them (and past records overwritten before they were printed,
    /// which the console counts as skipped). Whoever calls it decides who
    /// may print: a design's own lock, a console owner. Passes the point
    /// `console_unlock:logbuf_locked` as it copies each record.
    pub fn print_to<A: Arch>(&self, arch: &A, console: &Console, next: &mut u64) {
        if !console.registered() {
            return;
        }
        let mut text = TextBuf::<TEXT_MAX>::new();
        loop {
            match self.read_at(arch, *next, &mut text) {
                ReadAt::Record(meta) => {
                    arch.point(point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
                    console.write_record(arch, 0, &meta, text.as_bytes());
                    *next += 1;
                }
                ReadAt::Gone { next: oldest } => {
                    console.count_skipped(oldest.saturating_sub(*next));
                    *next = oldest;
                }
                ReadAt::NotYet => return,
            }
        }
    }

    /// Dropped messages by the reason their reservation failed.
    pub fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            (DropReason::DescBusy, load(&self.dropped.desc_busy)),
            (DropReason::DataBusy, load(&self.dropped.data_busy)),
            (DropReason::TooBig, load(&self.dropped.too_big)),
        ]
    }
}

/// The [`Printk`] methods every design whose log is a [`PrbLog`] in
/// `self.log` and whose console is `self.console` writes alike (lockless,
/// nbcon, and designs written outside klog): the records left, a reader's
/// step, the console, the ring's check; with `accounts`, the accounts too
/// (the log's, with the console's counts). The impl's `Arch` parameter
/// must be called `A`.
///
/// ```
/// # use core::fmt;
/// # use klog::console::{Console, ConsoleConfig};
/// # use klog::printk::{DropReason, PrbLog, Printk};
/// # use klog::{Arch, Level, LockCore};
/// struct Mine {
///     log: PrbLog,
///     console: Console,
/// }
///
/// impl<A: Arch> Printk<A> for Mine {
///     fn name(&self) -> &'static str {
///         "mine"
///     }
///     fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
///         self.log.store(arch, level, args);
///     }
///     fn irq_work(&self, _: &A) {}
///     fn locks(&self) -> Vec<&LockCore> {
///         Vec::new()
///     }
///     fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
///         self.log.drop_reasons()
///     }
///     klog::prb_printk_methods!(accounts);
/// }
///
/// let mut d = Mine {
///     log: PrbLog::new(1 << 16),
///     console: Console::new(ConsoleConfig::none(), 1),
/// };
/// let cpu = klog::arch::Quiet;
/// d.printk(&cpu, Level::Info, format_args!("hello\n"));
/// assert_eq!(Printk::<klog::arch::Quiet>::records(&mut d)[0].text, "hello");
/// ```
#[macro_export]
macro_rules! prb_printk_methods {
    (accounts) => {
        fn accounts(&mut self) -> $crate::printk::Accounts {
            self.log.accounts(&self.console.stats())
        }

        $crate::prb_printk_methods!();
    };
    () => {
        fn records(&mut self) -> ::std::vec::Vec<$crate::record::Record> {
            self.log.records()
        }

        fn read_at(
            &self,
            arch: &A,
            seq: u64,
            text: &mut $crate::record::TextBuf<{ $crate::record::TEXT_MAX }>,
        ) -> $crate::printk::ReadAt {
            self.log.read_at(arch, seq, text)
        }

        fn console(&self) -> &$crate::console::Console {
            &self.console
        }

        fn check(&mut self) -> ::core::result::Result<(), ::std::string::String> {
            self.log.ring.check()
        }
    };
}

/// The lockless printk.
pub struct Lockless {
    log: PrbLog,
    console_sem: Semaphore,
    /// The console hand-off, with 5.19's "no spinning during a panic".
    handoff: Handoff,
    /// Next record the console prints; written only by the holder of
    /// `console_sem`.
    console_seq: AtomicU64,
    /// Records skipped and not yet announced on the console.
    console_dropped: AtomicU64,
    console: Console,
    cpu_sync: CpuSync,
}

impl Lockless {
    /// A lockless printk with a ring of `config.buffer_size` text bytes and
    /// one descriptor per 32 bytes.
    pub fn new(config: &DesignConfig) -> Lockless {
        Lockless {
            log: PrbLog::new(config.buffer_size),
            console_sem: Semaphore::new("console_sem", "(console_sem).lock"),
            handoff: Handoff::new(true),
            console_seq: AtomicU64::new(0),
            console_dropped: AtomicU64::new(0),
            console: Console::new(config.console, config.nr_cpus)
                .for_kernel(super::kernel_of("lockless")),
            cpu_sync: CpuSync::new(),
        }
    }

    /// Failed reservations by reason.
    pub fn fails(&self) -> FailCounts {
        self.log.ring.fails()
    }

    /// How many times `console_sem` went from the printing CPU to a
    /// spinning waiter.
    pub fn handovers(&self) -> u64 {
        self.handoff.handovers()
    }

    /// `vprintk_emit()`'s console part: `console_trylock_spinning()`, then
    /// `console_unlock()`.
    fn console_flush<A: Arch>(&self, arch: &A) {
        if self.console_sem.try_down(arch, None)
            || self.handoff.trylock_spinning(arch, &self.console_sem)
        {
            self.console_unlock(arch);
        }
    }

    /// `console_unlock()`: print what the ring holds, hand `console_sem`
    /// to a waiter or release it, and go again if a record was finalized
    /// after the last look and the trylock succeeds. A record still being
    /// written ends a pass (its writer prints it afterwards), and a pass
    /// that got nowhere ends the loop.
    fn console_unlock<A: Arch>(&self, arch: &A) {
        arch.push_frame(&CONSOLE_FLUSH);
        loop {
            let before = self.console_seq.load(Ordering::Relaxed);
            if self.console_flush_all(arch) {
                // console_sem now belongs to the waiter, who prints on.
                break;
            }
            self.console_sem.up(arch);
            let seq = self.console_seq.load(Ordering::Relaxed);
            if seq == before
                || !self.log.ring.has_next(seq)
                || other_cpu_in_panic(arch)
                || !self.console_sem.try_down(arch, None)
            {
                break;
            }
        }
        arch.pop_frame();
    }

    /// `console_flush_all()`: print every readable record while holding
    /// `console_sem`, each write with interrupts off and this CPU marked
    /// the console owner. Records skipped (overwritten, or without data)
    /// are announced before the next record printed. True if the semaphore
    /// was handed to a waiter. A CPU that is not the panic CPU stops once
    /// a panic began (5.19's `abandon_console_lock_in_panic()`).
    fn console_flush_all<A: Arch>(&self, arch: &A) -> bool {
        let mut text = TextBuf::<TEXT_MAX>::new();
        loop {
            if other_cpu_in_panic(arch) {
                return false;
            }
            let want = self.console_seq.load(Ordering::Relaxed);
            let mut seq = want;
            arch.point(point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
            let found = self.log.ring.read_valid(arch, &mut seq, &mut text);
            self.console_dropped
                .fetch_add(seq.saturating_sub(want), Ordering::Relaxed);
            let Some(r) = found else {
                self.console_seq.store(seq, Ordering::Relaxed);
                return false;
            };
            let flags = arch.local_irq_save();
            self.handoff.enable(arch);
            arch.point(point::CONSOLE_UNLOCK_WRITE);
            let dropped = self.console_dropped.swap(0, Ordering::Relaxed);
            self.console
                .write_record(arch, dropped, &r.meta, text.as_bytes());
            self.console_seq.store(r.seq + 1, Ordering::Relaxed);
            let handed = self.handoff.disable_and_check(arch);
            arch.local_irq_restore(flags);
            if handed {
                return true;
            }
        }
    }
}

/// `other_cpu_in_panic()`.
fn other_cpu_in_panic<A: Arch>(arch: &A) -> bool {
    arch.panic_cpu().is_some_and(|cpu| cpu != arch.this_cpu())
}

impl<A: Arch> Printk<A> for Lockless {
    fn name(&self) -> &'static str {
        "lockless"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        arch.push_frame(&VPRINTK_EMIT);
        self.log.store(arch, level, args);
        if !self.console.registered() {
            // Nothing to print to.
        } else if arch.in_nmi() {
            arch.irq_work_queue();
        } else {
            self.console_flush(arch);
        }
        arch.pop_frame();
    }

    fn irq_work(&self, arch: &A) {
        // defer_console_output()'s irq_work: a plain trylock, no spinning.
        if self.console.registered() && self.console_sem.try_down(arch, None) {
            self.console_unlock(arch);
        }
    }

    fn panic_flush(&self, arch: &A) {
        // console_flush_on_panic(), with oops_in_progress still set from
        // panic()'s bust_spinlocks(1) (5.0 stopped clearing it before the
        // flush): print whether or not console_sem could be taken; the
        // serial driver only tries port->lock.
        if !self.console.registered() {
            return;
        }
        let _ = self.console_sem.try_down(arch, None);
        self.console_unlock(arch);
    }

    fn events(&self) -> Vec<(Event, u64)> {
        vec![(Event::ConsoleHandoff, self.handovers())]
    }

    crate::prb_printk_methods!(accounts);

    fn locks(&self) -> Vec<&LockCore> {
        vec![
            self.console_sem.core(),
            self.console_sem.lock_core(),
            self.console.port_lock(),
            self.handoff.lock(),
            self.cpu_sync.core(),
        ]
    }

    fn cpu_sync(&self) -> Option<&CpuSync> {
        Some(&self.cpu_sync)
    }

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        self.log.drop_reasons()
    }
}
