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
//! Three later kernels are flavours of the same code ([`Flavour`]):
//!
//! * `trylock`: the proposed NMI wrapper. In NMI context printk tries
//!   `logbuf_lock` once; if that fails the message is dropped and counted;
//!   the console is never touched from NMI (irq_work prints later).
//! * `legacy_handoff`: 4.16's console_owner/console_waiter hand-off. The
//!   CPU printing in console_unlock() marks itself the console owner around
//!   each record's write; a printk caller that finds `console_sem` taken
//!   and an owner on another CPU sets `console_waiter` and spins (interrupts
//!   off) until the owner, between two records, hands `console_sem` over
//!   without releasing it. Each caller prints about its share.
//! * `nmi_buffers`: 4.7's printk_nmi with 4.11's printk_safe (see
//!   [`super::safe`]): NMI context and printk recursion write per-CPU
//!   buffers instead of the log, flushed into the log by irq_work.
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

use crate::arch::IrqFlags;
use crate::arch::{Arch, Frame};
use crate::console::Console;
use crate::context::Context;
use crate::lock::{Broken, LockCore, RawSpinLock, Semaphore, SpinGuard};
use crate::point;
use crate::printk::handoff::Handoff;
use crate::printk::safe::{self, SafeBuffers};
use crate::printk::{Accounts, Counters, DesignConfig, DropReason, Event, Printk, ReadAt};
use crate::record::{CallerId, Level, Meta, Record, TextBuf, TEXT_MAX};

const HDR: usize = 24;
const ALIGN: usize = 8;
const NO_CPU: usize = usize::MAX;

/// Which kernel's variant of the locked printk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// 3.x/4.x as it was.
    Plain,
    /// One trylock of `logbuf_lock` in NMI context, console deferred.
    Trylock,
    /// 4.16's console_owner/console_waiter hand-off.
    Handoff,
    /// 4.7/4.11 per-CPU NMI and printk-safe buffers.
    NmiBuffers,
}

impl Flavour {
    /// The design name of this flavour.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Plain => "legacy",
            Flavour::Trylock => "trylock",
            Flavour::Handoff => "legacy_handoff",
            Flavour::NmiBuffers => "nmi_buffers",
        }
    }
}

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
    flavour: Flavour,
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
    dropped_nmi_trylock: AtomicU64,
    dropped_buffer_full: AtomicU64,
    /// 4.16's console hand-off (`legacy_handoff` only).
    handoff: Option<Handoff>,
    safe: Option<SafeBuffers>,
    /// 3.x/4.x `zap_locks()` already broke the locks once in this run.
    zapped: AtomicBool,
}

impl Legacy {
    /// A legacy printk with a `config.buffer_size`-byte log buffer.
    pub fn new(config: &DesignConfig) -> Legacy {
        Legacy::with_flavour(config, Flavour::Plain)
    }

    /// The `flavour` variant.
    pub fn with_flavour(config: &DesignConfig, flavour: Flavour) -> Legacy {
        Legacy {
            flavour,
            logbuf: RawSpinLock::new("logbuf_lock", LogBuf::new(config.buffer_size)),
            logbuf_cpu: AtomicUsize::new(NO_CPU),
            recursion_bug: AtomicBool::new(false),
            console_sem: Semaphore::new("console_sem", "(console_sem).lock"),
            console: Console::new(config.console, config.nr_cpus)
                .for_kernel(super::kernel_of(flavour.name())),
            counters: Counters::default(),
            dropped_recursion: AtomicU64::new(0),
            dropped_no_space: AtomicU64::new(0),
            dropped_nmi_trylock: AtomicU64::new(0),
            dropped_buffer_full: AtomicU64::new(0),
            // 4.16 ran 4.11's printk_safe and 4.7's printk_nmi, with 4.13's
            // deferred NMI mode, under the hand-off.
            handoff: (flavour == Flavour::Handoff).then(|| Handoff::new(false)),
            safe: matches!(flavour, Flavour::NmiBuffers | Flavour::Handoff)
                .then(|| SafeBuffers::new(config.nr_cpus, flavour == Flavour::Handoff)),
            zapped: AtomicBool::new(false),
        }
    }

    /// How many times `console_sem` was handed from the printing CPU to a
    /// spinning waiter (`legacy_handoff`).
    pub fn handovers(&self) -> u64 {
        self.handoff.as_ref().map_or(0, Handoff::handovers)
    }

    /// Take `logbuf_lock` with interrupts off (and, for `nmi_buffers`, in
    /// printk-safe context: a printk from inside goes to the safe buffer).
    fn logbuf_lock_irqsave<'a, A: Arch>(
        &'a self,
        arch: &'a A,
        at: Option<point::Point>,
    ) -> Result<(SpinGuard<'a, LogBuf>, IrqFlags), Broken> {
        let flags = arch.local_irq_save();
        self.safe_enter(arch);
        match self.logbuf.lock(arch, at) {
            Ok(guard) => Ok((guard, flags)),
            Err(b) => {
                self.safe_exit(arch);
                arch.local_irq_restore(flags);
                Err(b)
            }
        }
    }

    /// Release what [`Legacy::logbuf_lock_irqsave`] took, keeping interrupts
    /// off.
    fn logbuf_unlock<A: Arch>(&self, arch: &A, guard: SpinGuard<'_, LogBuf>) {
        drop(guard);
        self.safe_exit(arch);
    }

    /// Messages still waiting in a per-CPU buffer.
    fn unflushed(&self) -> u64 {
        self.safe.as_ref().map_or(0, SafeBuffers::pending)
    }

    fn safe_enter<A: Arch>(&self, arch: &A) {
        if let Some(s) = &self.safe {
            s.enter(arch);
        }
    }

    fn safe_exit<A: Arch>(&self, arch: &A) {
        if let Some(s) = &self.safe {
            s.exit(arch);
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
        if let Some(kind) = self.safe.as_ref().and_then(|s| s.diverted(arch)) {
            self.printk_safe(arch, kind, level, args);
            return;
        }
        if self.flavour == Flavour::Trylock && arch.in_nmi() {
            self.printk_nmi_trylock(arch, level, args);
            return;
        }
        let flags = arch.local_irq_save();
        let cpu = arch.this_cpu();
        // printk_safe (4.11) replaced the logbuf_cpu recursion check.
        if self.safe.is_none() && self.logbuf_cpu.load(Ordering::Relaxed) == cpu {
            // Re-entered on the CPU that is inside the locked window below
            // (an NMI landed there). During an oops (a panic here) 3.x/4.x
            // breaks the locks once and barges on (`zap_locks()`);
            // otherwise the message is lost rather than deadlock.
            if arch.panic_cpu().is_none() || self.zapped.swap(true, Ordering::Relaxed) {
                self.recursion_bug.store(true, Ordering::Relaxed);
                self.counters.drop_one();
                self.dropped_recursion.fetch_add(1, Ordering::Relaxed);
                arch.local_irq_restore(flags);
                return;
            }
            self.zap_locks();
        }
        self.safe_enter(arch);
        let Ok(mut log) = self.logbuf.lock(arch, Some(point::VPRINTK_LOGBUF_LOCKED)) else {
            self.counters.lose_in_deadlock();
            self.safe_exit(arch);
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
        self.logbuf_unlock(arch, log);
        arch.local_irq_restore(flags);

        if !self.console.registered() {
            return;
        }
        if arch.in_nmi() && self.safe.is_some() {
            // 4.13's deferred NMI (vprintk_deferred): stored, the console
            // left to irq_work. (Before printk_safe an NMI's printk went on
            // to the console like any other.)
            arch.irq_work_queue();
            return;
        }
        if self.console_trylock(arch) || self.console_trylock_spinning(arch) {
            self.console_unlock(arch);
        }
    }

    /// `trylock`: in NMI context, one attempt at `logbuf_lock`; on failure
    /// the message is dropped. The console waits for irq_work.
    fn printk_nmi_trylock<A: Arch>(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        let flags = arch.local_irq_save();
        let Some(mut log) = self.logbuf.try_lock(arch, None) else {
            self.counters.drop_one();
            self.dropped_nmi_trylock.fetch_add(1, Ordering::Relaxed);
            arch.local_irq_restore(flags);
            return;
        };
        let mut text = TextBuf::<TEXT_MAX>::new();
        text.format(args);
        let mut meta = Meta::now(arch, level);
        meta.cont = text.strip_cont();
        text.strip_newline();
        self.store(&mut log, &meta, text.as_bytes());
        drop(log);
        arch.local_irq_restore(flags);
        arch.irq_work_queue();
    }

    /// `nmi_buffers`: write to this CPU's NMI or safe buffer and let
    /// irq_work flush it.
    fn printk_safe<A: Arch>(
        &self,
        arch: &A,
        kind: safe::Kind,
        level: Level,
        args: fmt::Arguments<'_>,
    ) {
        let Some(s) = &self.safe else {
            return;
        };
        let mut text = TextBuf::<TEXT_MAX>::new();
        text.format(args);
        text.strip_cont();
        text.strip_newline();
        if !s.write(arch, kind, level, text.as_bytes()) {
            self.counters.drop_one();
            self.dropped_buffer_full.fetch_add(1, Ordering::Relaxed);
        }
        arch.irq_work_queue();
    }

    /// Flush `cpu`'s NMI and safe buffers into the log (printk_deferred:
    /// store only; the console is left to whoever prints next).
    fn flush_safe<A: Arch>(&self, arch: &A, cpu: usize) {
        let Some(s) = &self.safe else {
            return;
        };
        s.flush(arch, cpu, |level, text, internal| {
            if internal {
                self.counters.attempt_internal();
            }
            let Ok((mut log, flags)) = self.logbuf_lock_irqsave(arch, None) else {
                self.counters.lose_in_deadlock();
                return;
            };
            let meta = Meta::now(arch, level);
            self.store(&mut log, &meta, text);
            self.logbuf_unlock(arch, log);
            arch.local_irq_restore(flags);
        });
    }

    /// `console_trylock()`: `down_trylock(&console_sem)` (in printk-safe
    /// context from 4.11 on, as `__down_trylock_console_sem()` has it).
    fn console_trylock<A: Arch>(&self, arch: &A) -> bool {
        self.safe_enter(arch);
        let got = self.console_sem.try_down(arch, None);
        self.safe_exit(arch);
        got
    }

    /// `up(&console_sem)` (printk-safe from 4.11 on).
    fn console_sem_up<A: Arch>(&self, arch: &A) {
        self.safe_enter(arch);
        self.console_sem.up(arch);
        self.safe_exit(arch);
    }

    /// 4.16's `console_trylock_spinning()` after a failed trylock, in
    /// printk-safe context: become the console owner's waiter and spin
    /// until it hands `console_sem` over. 4.16 spins during a panic too.
    fn console_trylock_spinning<A: Arch>(&self, arch: &A) -> bool {
        let Some(h) = &self.handoff else {
            return false;
        };
        self.safe_enter(arch);
        let got = h.trylock_spinning(arch, &self.console_sem);
        self.safe_exit(arch);
        got
    }

    /// console_unlock(): print every pending record, then release
    /// `console_sem`, and go again if a record slipped in meanwhile.
    fn console_unlock<A: Arch>(&self, arch: &A) {
        arch.push_frame(&CONSOLE_UNLOCK);
        'again: loop {
            let flags = loop {
                let Ok((mut log, flags)) =
                    self.logbuf_lock_irqsave(arch, Some(point::CONSOLE_UNLOCK_LOGBUF_LOCKED))
                else {
                    self.console_sem_up(arch);
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
                    self.logbuf_unlock(arch, log);
                    break flags;
                }
                let mut text = TextBuf::<TEXT_MAX>::new();
                let meta = log.read(log.console_idx, &mut text);
                log.console_idx = log.next(log.console_idx);
                log.console_seq += 1;
                // Still printk-safe for the write, as in 4.11.
                drop(log);

                // logbuf_lock is free, interrupts stay off while the slow
                // console writes: that is where the kernel's time went.
                if let Some(h) = &self.handoff {
                    h.enable(arch);
                }
                arch.point(point::CONSOLE_UNLOCK_WRITE);
                self.console
                    .write_record(arch, skipped, &meta, text.as_bytes());
                let handed = self
                    .handoff
                    .as_ref()
                    .is_some_and(|h| h.disable_and_check(arch));
                self.safe_exit(arch);
                arch.local_irq_restore(flags);
                if handed {
                    // console_sem now belongs to the waiter, who prints on.
                    arch.pop_frame();
                    return;
                }
            };
            self.console_sem_up(arch);

            // A printk that failed the trylock after our last check relies on
            // us to print its record.
            self.safe_enter(arch);
            let retry = match self.logbuf.lock(arch, None) {
                Ok(log) => log.console_seq != log.next_seq,
                Err(_) => false,
            };
            self.safe_exit(arch);
            arch.local_irq_restore(flags);
            if retry && self.console_trylock(arch) {
                continue 'again;
            }
            break;
        }
        arch.pop_frame();
    }

    /// Print what is pending if nobody else is printing (the deferred
    /// console output of irq_work).
    fn console_trylock_and_unlock<A: Arch>(&self, arch: &A) {
        if self.console.registered() && self.console_trylock(arch) {
            self.console_unlock(arch);
        }
    }

    /// 3.x/4.x `zap_locks()`: lockdep off, `logbuf_lock` and `console_sem`
    /// re-initialised under whoever held them. Once per run here (the
    /// kernel allowed once per 30 s).
    fn zap_locks(&self) {
        self.logbuf.reinit();
        self.console_sem.reinit();
    }

    /// `printk_safe_flush_on_panic()` as 4.13–4.18 had it: if
    /// `logbuf_lock` is held in NMI context, re-initialise it, but only
    /// when every other CPU is stopped (otherwise give up, flushing
    /// nothing); then flush every CPU's buffers. `read_lock` is not
    /// re-initialised (that came in 5.12), so a CPU stopped inside a flush
    /// still hangs the panic CPU here.
    fn printk_safe_flush_on_panic<A: Arch>(&self, arch: &A) {
        if arch.in_nmi() && self.logbuf.core().owner().is_some() {
            if arch.num_online_cpus() > 1 {
                return;
            }
            self.logbuf.reinit();
        }
        for cpu in 0..arch.nr_cpus() {
            self.flush_safe(arch, cpu);
        }
    }
}

impl<A: Arch> Printk<A> for Legacy {
    fn name(&self) -> &'static str {
        self.flavour.name()
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        arch.push_frame(&VPRINTK_EMIT);
        self.vprintk_emit(arch, level, args);
        arch.pop_frame();
    }

    fn irq_work(&self, arch: &A) {
        if self.safe.is_some() {
            self.flush_safe(arch, arch.this_cpu());
        }
        self.console_trylock_and_unlock(arch);
    }

    fn events(&self) -> Vec<(Event, u64)> {
        match self.flavour {
            Flavour::Handoff => vec![(Event::ConsoleHandoff, self.handovers())],
            _ => Vec::new(),
        }
    }

    fn flush_all_cpus(&self, arch: &A) {
        for cpu in 0..arch.nr_cpus() {
            self.flush_safe(arch, cpu);
        }
        arch.irq_work_queue();
    }

    fn nmi_enter(&self, arch: &A) {
        if let Some(s) = &self.safe {
            s.nmi_enter(arch, self.logbuf.core().owner().is_some());
        }
    }

    fn nmi_exit(&self, arch: &A) {
        if let Some(s) = &self.safe {
            s.nmi_exit(arch);
        }
    }

    fn panic_flush(&self, arch: &A) {
        // printk_safe_flush_on_panic(): the per-CPU buffers first (the
        // panic itself may have printed into this CPU's NMI buffer).
        if self.safe.is_some() {
            self.printk_safe_flush_on_panic(arch);
        }
        // 4.x panic() called bust_spinlocks(0) before
        // console_flush_on_panic(): oops_in_progress is back to 0, so the
        // serial driver spins on port->lock again.
        self.console.bust_spinlocks(false);
        // console_flush_on_panic(): print whether or not console_sem could
        // be taken.
        let _ = self.console_trylock(arch);
        self.console_unlock(arch);
    }

    fn accounts(&mut self) -> Accounts {
        let log = self.logbuf.get_mut();
        let readable = log.next_seq - log.first_seq;
        let mut a = self.counters.accounts(readable, &self.console.stats());
        // Messages still in a per-CPU buffer never reached the log.
        a.dropped += self.unflushed();
        a
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

    fn read_at(&self, arch: &A, seq: u64, text: &mut TextBuf<TEXT_MAX>) -> ReadAt {
        let Ok((log, flags)) = self.logbuf_lock_irqsave(arch, None) else {
            return ReadAt::NotYet;
        };
        let found = if seq < log.first_seq {
            ReadAt::Gone {
                next: log.first_seq,
            }
        } else if seq >= log.next_seq {
            ReadAt::NotYet
        } else {
            let mut idx = log.first_idx;
            for _ in log.first_seq..seq {
                idx = log.next(idx);
            }
            text.clear();
            ReadAt::Record(log.read(idx, text))
        };
        self.logbuf_unlock(arch, log);
        arch.local_irq_restore(flags);
        found
    }

    fn locks(&self) -> Vec<&LockCore> {
        let mut locks = vec![
            self.logbuf.core(),
            self.console_sem.core(),
            self.console_sem.lock_core(),
            self.console.port_lock(),
        ];
        locks.extend(self.handoff.as_ref().map(Handoff::lock));
        locks.extend(self.safe.as_ref().map(SafeBuffers::lock));
        locks
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

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut reasons = vec![(DropReason::NoSpace, load(&self.dropped_no_space))];
        match self.flavour {
            Flavour::Plain => {
                reasons.push((DropReason::Recursion, load(&self.dropped_recursion)));
            }
            Flavour::Trylock => {
                reasons.push((DropReason::Recursion, load(&self.dropped_recursion)));
                reasons.push((
                    DropReason::NmiTrylockFailed,
                    load(&self.dropped_nmi_trylock),
                ));
            }
            Flavour::NmiBuffers | Flavour::Handoff => {
                reasons.push((DropReason::NmiBufferFull, load(&self.dropped_buffer_full)));
                reasons.push((DropReason::NeverFlushed, self.unflushed()));
            }
        }
        reasons
    }
}
