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
use crate::printk::{Accounts, Counters, DesignConfig, Printk, ReadAt};
use crate::record::{Level, Meta, Record, TextBuf, TEXT_MAX};
use crate::ringbuf::{FailCounts, Ring};

static VPRINTK_EMIT: Frame = Frame("vprintk_emit");
static CONSOLE_FLUSH: Frame = Frame("console_flush_all");

/// printk's side of the ring, shared by `lockless` and `nbcon`: storing a
/// message with its accounts, and reading the records back after a run.
pub(crate) struct PrbLog {
    pub(crate) ring: Ring,
    pub(crate) counters: Counters,
}

impl PrbLog {
    pub(crate) fn new(buffer_size: usize) -> PrbLog {
        PrbLog {
            ring: Ring::for_buffer(buffer_size),
            counters: Counters::default(),
        }
    }

    /// Format and store one message (or append a `KERN_CONT` piece to the
    /// caller's open record). Never waits.
    pub(crate) fn store<A: Arch>(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        let mut text = TextBuf::<TEXT_MAX>::new();
        text.format(args);
        let cont = text.strip_cont();
        let newline = text.strip_newline();
        let mut meta = Meta::now(arch, level);
        // Interrupts (not NMIs) stay off from reserve to commit, as in the
        // kernel, to keep a reserved record from blocking recycling long.
        let flags = arch.local_irq_save();
        let bytes = text.as_bytes();
        // A continuation appends to the caller's open record if it can; a
        // complete line is finalized at once, a partial one stays open.
        let appended = cont
            .then(|| {
                self.ring
                    .reserve_in_last(arch, meta.caller, bytes.len(), TEXT_MAX)
            })
            .flatten();
        let reserved = match appended {
            Some(r) => Ok(r),
            None => {
                self.counters.attempt();
                meta.cont = cont;
                self.ring
                    .reserve(arch, bytes.len(), &meta)
                    .inspect(|_| self.counters.store())
            }
        };
        match reserved {
            Ok(mut r) => {
                arch.point(point::VPRINTK_LOGBUF_LOCKED);
                r.write(&self.ring, bytes, &meta);
                if newline {
                    self.ring.final_commit(arch, r);
                } else {
                    self.ring.commit(arch, r);
                }
            }
            Err(_) => self.counters.drop_one(),
        }
        arch.local_irq_restore(flags);
    }

    /// The accounts, with the console's.
    pub(crate) fn accounts(&self, console: &crate::console::ConsoleStats) -> Accounts {
        let readable = self.ring.count_readable(&crate::arch::Quiet);
        let mut a = self.counters.accounts(readable, console);
        a.overwritten = self.ring.overwritten();
        a
    }

    /// The records still readable, oldest first.
    pub(crate) fn records(&self) -> Vec<Record> {
        let quiet = crate::arch::Quiet;
        let mut out = Vec::new();
        let mut seq = self.ring.first_seq();
        let mut text = TextBuf::<TEXT_MAX>::new();
        while let Some(r) = self.ring.read_valid(&quiet, &mut seq, &mut text) {
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
            seq = r.seq + 1;
        }
        out
    }

    /// A log reader's step at `seq`.
    pub(crate) fn read_at<A: Arch>(
        &self,
        arch: &A,
        seq: u64,
        text: &mut TextBuf<TEXT_MAX>,
    ) -> ReadAt {
        let mut at = seq;
        match self.ring.read_valid(arch, &mut at, text) {
            Some(r) if r.seq == seq => ReadAt::Record(r.meta),
            Some(r) => ReadAt::Gone { next: r.seq },
            None if at > seq => ReadAt::Gone { next: at },
            None => ReadAt::NotYet,
        }
    }

    /// Failed reservations by reason.
    pub(crate) fn drop_reasons(&self) -> Vec<(&'static str, u64)> {
        let f = self.ring.fails();
        vec![
            ("desc_busy", f.desc_busy),
            ("data_busy", f.data_busy),
            ("too_big", f.too_big),
        ]
    }
}

/// The lockless printk.
pub struct Lockless {
    log: PrbLog,
    console_sem: Semaphore,
    /// Next record the console prints; written only by the holder of
    /// `console_sem`.
    console_seq: AtomicU64,
    /// Records skipped and not yet announced on the console.
    console_dropped: AtomicU64,
    console: Console,
}

impl Lockless {
    /// A lockless printk with a ring of `config.buffer_size` text bytes and
    /// one descriptor per 32 bytes.
    pub fn new(config: &DesignConfig) -> Lockless {
        Lockless {
            log: PrbLog::new(config.buffer_size),
            console_sem: Semaphore::new("console_sem"),
            console_seq: AtomicU64::new(0),
            console_dropped: AtomicU64::new(0),
            console: Console::new(config.console, config.nr_cpus),
        }
    }

    /// Failed reservations by reason.
    pub fn fails(&self) -> FailCounts {
        self.log.ring.fails()
    }

    /// Print what the ring holds, if nobody else is printing. Never spins:
    /// `console_sem` is only ever try-locked, and a record still being
    /// written ends the pass (its writer flushes it afterwards).
    fn console_flush<A: Arch>(&self, arch: &A) {
        arch.push_frame(&CONSOLE_FLUSH);
        while self.console_sem.try_down(arch, None) {
            let before = self.console_seq.load(Ordering::Relaxed);
            self.console_pass(arch);
            self.console_sem.up();
            // A record finalized after our last look, whose writer found
            // console_sem taken, relies on us; but a pass that got nowhere
            // ends it (the writer it waits for will flush).
            let seq = self.console_seq.load(Ordering::Relaxed);
            if seq == before || !self.log.ring.has_next(seq) {
                break;
            }
        }
        arch.pop_frame();
    }

    /// Print every readable record while holding `console_sem`. Records
    /// skipped (overwritten, or without data) are announced before the next
    /// record printed.
    fn console_pass<A: Arch>(&self, arch: &A) {
        let mut text = TextBuf::<TEXT_MAX>::new();
        loop {
            let want = self.console_seq.load(Ordering::Relaxed);
            let mut seq = want;
            arch.point(point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
            let found = self.log.ring.read_valid(arch, &mut seq, &mut text);
            self.console_dropped
                .fetch_add(seq.saturating_sub(want), Ordering::Relaxed);
            let Some(r) = found else {
                self.console_seq.store(seq, Ordering::Relaxed);
                break;
            };
            arch.point(point::CONSOLE_UNLOCK_WRITE);
            let dropped = self.console_dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                self.console.write_dropped(arch, dropped);
            }
            self.console.write_record(arch, &r.meta, text.as_bytes());
            self.console_seq.store(r.seq + 1, Ordering::Relaxed);
        }
    }
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
        self.console_flush(arch);
    }

    fn accounts(&mut self) -> Accounts {
        self.log.accounts(&self.console.stats())
    }

    fn records(&mut self) -> Vec<Record> {
        self.log.records()
    }

    fn read_at(&self, arch: &A, seq: u64, text: &mut TextBuf<TEXT_MAX>) -> ReadAt {
        self.log.read_at(arch, seq, text)
    }

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.console_sem.core()]
    }

    fn console(&self) -> &Console {
        &self.console
    }

    fn check(&mut self) -> Result<(), String> {
        self.log.ring.check()
    }

    fn drop_reasons(&self) -> Vec<(&'static str, u64)> {
        self.log.drop_reasons()
    }
}
