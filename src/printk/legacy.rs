//! `legacy`: printk as Linux 3.x/4.x had it.
//!
//! A byte ring of variable-length records (`log_buf`) protected by
//! `logbuf_lock`, a raw spinlock always taken with interrupts off; sequence
//! numbers `first_seq`/`next_seq` with byte indices; the oldest records
//! silently overwritten when space runs out. After storing, the caller tries
//! `console_sem`; whoever wins runs `console_unlock()`, which prints every
//! pending record, everybody's, taking `logbuf_lock` once per record to copy
//! it out.
//!
//! The `logbuf_cpu` recursion check is here too, with its historical
//! effect: an NMI that lands inside vprintk_emit()'s own locked window finds
//! `logbuf_cpu == this CPU`, loses its message and leaves "BUG: recent
//! printk recursion!" for the next printk to store; an NMI that lands while
//! console_unlock() holds `logbuf_lock` (which does not set `logbuf_cpu`)
//! spins forever on a lock its own CPU holds. That is the deadlock this
//! simulator exists to show.
//!
//! Record layout in `log_buf` (our own, 8-byte aligned, 24-byte header):
//!
//! ```text
//! 0        8     10         12    14     15     16        20    24
//! +--------+------+----------+-----+------+------+---------+-----+------+
//! | ts_ns  | len  | text_len | cpu |level |flags | caller  | pad | text |
//! +--------+------+----------+-----+------+------+---------+-----+------+
//! ```
//!
//! `len` is the whole record including header and padding; a header with
//! `len == 0` means "the next record is at index 0". `flags`: bit 0 =
//! continuation, bits 4–5 = context level.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::arch::{Arch, Frame};
use crate::console::Console;
use crate::context::Context;
use crate::lock::{LockCore, RawSpinLock, Semaphore};
use crate::point;
use crate::printk::{Accounts, Counters, DesignConfig, Printk};
use crate::record::{CallerId, Level, Meta, Record, TextBuf, TEXT_MAX};

const HDR: usize = 24;
const ALIGN: usize = 8;
const NO_CPU: usize = usize::MAX;

static VPRINTK_EMIT: Frame = Frame("vprintk_emit");
static CONSOLE_UNLOCK: Frame = Frame("console_unlock");

/// The state `logbuf_lock` protects.
struct LogBuf {
    buf: Box<[u8]>,
    first_seq: u64,
    first_idx: usize,
    next_seq: u64,
    next_idx: usize,
    console_seq: u64,
    console_idx: usize,
}

fn align(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

impl LogBuf {
    fn new(size: usize) -> LogBuf {
        LogBuf {
            buf: vec![0; size].into_boxed_slice(),
            first_seq: 0,
            first_idx: 0,
            next_seq: 0,
            next_idx: 0,
            console_seq: 0,
            console_idx: 0,
        }
    }

    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0; N];
        if let Some(src) = self.buf.get(at..at + N) {
            out.copy_from_slice(src);
        }
        out
    }

    fn put(&mut self, at: usize, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }

    fn len_at(&self, idx: usize) -> usize {
        usize::from(u16::from_le_bytes(self.bytes(idx + 8)))
    }

    /// Where the record that `idx` points to really starts (a wrap marker
    /// at `idx` sends it to 0).
    fn start(&self, idx: usize) -> usize {
        if self.len_at(idx) == 0 {
            0
        } else {
            idx
        }
    }

    /// The index after the record at `idx`.
    fn next(&self, idx: usize) -> usize {
        let at = self.start(idx);
        at + self.len_at(at)
    }

    /// Whether a record of `size` bytes (plus room for a wrap marker) fits
    /// in front of the oldest record.
    fn has_space(&self, size: usize, empty: bool) -> bool {
        let free = if self.next_idx > self.first_idx || empty {
            (self.buf.len() - self.next_idx).max(self.first_idx)
        } else {
            self.first_idx - self.next_idx
        };
        free >= size + HDR
    }

    /// Drop the oldest records until `size` fits; returns whether it does
    /// and how many records were overwritten.
    fn make_free_space(&mut self, size: usize) -> (bool, u64) {
        let mut dropped = 0;
        while self.first_seq < self.next_seq {
            if self.has_space(size, false) {
                return (true, dropped);
            }
            self.first_idx = self.next(self.first_idx);
            self.first_seq += 1;
            dropped += 1;
        }
        (self.has_space(size, true), dropped)
    }

    /// `log_store()`: append one record. Returns whether it was stored and
    /// how many old records it overwrote.
    fn store(&mut self, meta: &Meta, text: &[u8]) -> (bool, u64) {
        let size = align(HDR + text.len());
        let (fits, overwritten) = self.make_free_space(size);
        if !fits {
            return (false, overwritten);
        }
        if self.next_idx + size + HDR > self.buf.len() {
            // Not enough room before the end: leave a wrap marker.
            self.put(self.next_idx + 8, &0u16.to_le_bytes());
            self.next_idx = 0;
        }
        let at = self.next_idx;
        let flags = u8::from(meta.cont) | meta.context.level() << 4;
        self.put(at, &meta.ts_ns.to_le_bytes());
        self.put(at + 8, &(size as u16).to_le_bytes());
        self.put(at + 10, &(text.len() as u16).to_le_bytes());
        self.put(at + 12, &(meta.cpu as u16).to_le_bytes());
        self.put(at + 14, &[meta.level as u8, flags]);
        self.put(at + 16, &meta.caller.0.to_le_bytes());
        self.put(at + HDR, text);
        self.next_idx = at + size;
        self.next_seq += 1;
        (true, overwritten)
    }

    /// Copy the record at `idx` into `text`; returns its metadata.
    fn read<const N: usize>(&self, idx: usize, text: &mut TextBuf<N>) -> Meta {
        let at = self.start(idx);
        let [level, flags] = self.bytes(at + 14);
        let text_len = usize::from(u16::from_le_bytes(self.bytes(at + 10)));
        if let Some(src) = self.buf.get(at + HDR..at + HDR + text_len) {
            text.push_bytes(src);
        }
        Meta {
            ts_ns: u64::from_le_bytes(self.bytes(at)),
            cpu: usize::from(u16::from_le_bytes(self.bytes(at + 12))),
            context: Context::from_level(flags >> 4),
            caller: CallerId(u32::from_le_bytes(self.bytes(at + 16))),
            level: Level::from_u8(level),
            cont: flags & 1 != 0,
        }
    }
}

/// The 3.x/4.x printk.
pub struct Legacy {
    logbuf: RawSpinLock<LogBuf>,
    /// Which CPU is inside vprintk_emit()'s locked window (`NO_CPU`: none).
    logbuf_cpu: AtomicUsize,
    /// An earlier printk was lost to the recursion check.
    recursion_bug: AtomicBool,
    console_sem: Semaphore,
    console: Console,
    counters: Counters,
    dropped_recursion: AtomicU64,
    dropped_no_space: AtomicU64,
}

impl Legacy {
    /// A legacy printk with a `config.buffer_size`-byte log buffer.
    pub fn new(config: &DesignConfig) -> Legacy {
        Legacy {
            logbuf: RawSpinLock::new("logbuf_lock", LogBuf::new(config.buffer_size)),
            logbuf_cpu: AtomicUsize::new(NO_CPU),
            recursion_bug: AtomicBool::new(false),
            console_sem: Semaphore::new("console_sem"),
            console: Console::new(config.console, config.nr_cpus),
            counters: Counters::default(),
            dropped_recursion: AtomicU64::new(0),
            dropped_no_space: AtomicU64::new(0),
        }
    }

    fn store(&self, log: &mut LogBuf, meta: &Meta, text: &[u8]) {
        let (stored, overwritten) = log.store(meta, text);
        self.counters.overwrite(overwritten);
        if stored {
            self.counters.store();
        } else {
            self.counters.drop_one();
            self.dropped_no_space.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Store `text` as one record under `logbuf_lock` (interrupts off), with
    /// no formatting and no console: the locked ring's own cost, for
    /// benchmarks. True if stored.
    pub fn store_raw<A: Arch>(&self, arch: &A, text: &[u8]) -> bool {
        let Ok((mut log, flags)) = self.logbuf.lock_irqsave(arch, None) else {
            return false;
        };
        let meta = Meta::now(arch, Level::Info);
        let (stored, _) = log.store(&meta, text);
        drop(log);
        arch.local_irq_restore(flags);
        stored
    }

    /// vprintk_emit(), 4.x flavour: interrupts are back on for the console.
    fn vprintk_emit<A: Arch>(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        self.counters.attempt();
        let flags = arch.local_irq_save();
        let cpu = arch.this_cpu();
        if self.logbuf_cpu.load(Ordering::Relaxed) == cpu {
            // Re-entered on the CPU that is inside the locked window below
            // (an NMI landed there): lose the message rather than deadlock.
            self.recursion_bug.store(true, Ordering::Relaxed);
            self.counters.drop_one();
            self.dropped_recursion.fetch_add(1, Ordering::Relaxed);
            arch.local_irq_restore(flags);
            return;
        }
        let Ok(mut log) = self.logbuf.lock(arch, Some(point::VPRINTK_LOGBUF_LOCKED)) else {
            self.counters.lose_in_deadlock();
            arch.local_irq_restore(flags);
            return;
        };
        arch.point(point::VPRINTK_LOCK_ACQUIRED);
        self.logbuf_cpu.store(cpu, Ordering::Relaxed);
        arch.point(point::VPRINTK_LOGBUF_LOCKED);

        if self.recursion_bug.swap(false, Ordering::Relaxed) {
            self.counters.attempt_internal();
            let meta = Meta::now(arch, Level::Crit);
            self.store(&mut log, &meta, b"BUG: recent printk recursion!");
        }
        let mut text = TextBuf::<TEXT_MAX>::new();
        text.format(args);
        // Continuation fragments are stored as records of their own, flagged
        // (the 3.x cont buffer that merged them is not modelled).
        let cont = text.strip_cont();
        text.strip_newline();
        let mut meta = Meta::now(arch, level);
        meta.cont = cont;
        self.store(&mut log, &meta, text.as_bytes());

        self.logbuf_cpu.store(NO_CPU, Ordering::Relaxed);
        drop(log);
        arch.local_irq_restore(flags);

        if self.console_sem.try_down(arch, None) {
            self.console_unlock(arch);
        }
    }

    /// console_unlock(): print every pending record, then release
    /// `console_sem`, and go again if a record slipped in meanwhile.
    fn console_unlock<A: Arch>(&self, arch: &A) {
        arch.push_frame(&CONSOLE_UNLOCK);
        'again: loop {
            let flags = loop {
                let Ok((mut log, flags)) = self
                    .logbuf
                    .lock_irqsave(arch, Some(point::CONSOLE_UNLOCK_LOGBUF_LOCKED))
                else {
                    self.console_sem.up();
                    arch.pop_frame();
                    return;
                };
                arch.point(point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
                let mut skipped = 0;
                if log.console_seq < log.first_seq {
                    // Overtaken by the writers: the records in between are gone.
                    skipped = log.first_seq - log.console_seq;
                    log.console_seq = log.first_seq;
                    log.console_idx = log.first_idx;
                }
                if log.console_seq == log.next_seq {
                    drop(log);
                    break flags;
                }
                let mut text = TextBuf::<TEXT_MAX>::new();
                let meta = log.read(log.console_idx, &mut text);
                log.console_idx = log.next(log.console_idx);
                log.console_seq += 1;
                drop(log);

                // logbuf_lock is free, interrupts stay off while the slow
                // console writes: that is where the kernel's time went.
                arch.point(point::CONSOLE_UNLOCK_WRITE);
                if skipped > 0 {
                    self.console.write_dropped(arch, skipped);
                }
                self.console.write_record(arch, &meta, text.as_bytes());
                arch.local_irq_restore(flags);
            };
            self.console_sem.up();

            // A printk that failed the trylock after our last check relies on
            // us to print its record.
            let retry = match self.logbuf.lock(arch, None) {
                Ok(log) => log.console_seq != log.next_seq,
                Err(_) => false,
            };
            arch.local_irq_restore(flags);
            if retry && self.console_sem.try_down(arch, None) {
                continue 'again;
            }
            break;
        }
        arch.pop_frame();
    }
}

impl<A: Arch> Printk<A> for Legacy {
    fn name(&self) -> &'static str {
        "legacy"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        arch.push_frame(&VPRINTK_EMIT);
        self.vprintk_emit(arch, level, args);
        arch.pop_frame();
    }

    fn irq_work(&self, _arch: &A) {}

    fn accounts(&mut self) -> Accounts {
        let log = self.logbuf.get_mut();
        let readable = log.next_seq - log.first_seq;
        self.counters.accounts(readable, &self.console.stats())
    }

    fn records(&mut self) -> Vec<Record> {
        let log = self.logbuf.get_mut();
        let mut out = Vec::new();
        let (mut seq, mut idx) = (log.first_seq, log.first_idx);
        while seq < log.next_seq {
            let mut text = TextBuf::<TEXT_MAX>::new();
            let meta = log.read(idx, &mut text);
            out.push(Record {
                seq,
                ts_ns: meta.ts_ns,
                cpu: meta.cpu,
                context: meta.context,
                caller: meta.caller,
                level: meta.level,
                facility: 0,
                text: String::from_utf8_lossy(text.as_bytes()).into_owned(),
                cont: meta.cont,
            });
            idx = log.next(idx);
            seq += 1;
        }
        out
    }

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.logbuf.core(), self.console_sem.core()]
    }

    fn console(&self) -> &Console {
        &self.console
    }

    fn check(&mut self) -> Result<(), String> {
        let log = self.logbuf.get_mut();
        let (mut idx, mut seq) = (log.first_idx, log.first_seq);
        while seq < log.next_seq {
            let at = log.start(idx);
            let len = log.len_at(at);
            let text_len = usize::from(u16::from_le_bytes(log.bytes(at + 10)));
            if len < HDR || len != align(HDR + text_len) || at + len > log.buf.len() {
                return Err(format!(
                    "record {seq} at {at}: length {len}, text {text_len}"
                ));
            }
            idx = at + len;
            seq += 1;
        }
        if idx != log.next_idx && !(log.next_idx == 0 && log.len_at(idx) == 0) {
            return Err(format!(
                "records end at {idx}, next_idx is {}",
                log.next_idx
            ));
        }
        if log.console_seq > log.next_seq {
            return Err(format!(
                "console_seq {} beyond next_seq {}",
                log.console_seq, log.next_seq
            ));
        }
        Ok(())
    }

    fn drop_reasons(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("recursion", self.dropped_recursion.load(Ordering::Relaxed)),
            ("no_space", self.dropped_no_space.load(Ordering::Relaxed)),
        ]
    }
}
