//! `lockless`: a printk whose write path takes no lock at all.
//!
//! This first version stores records in a ring of fixed-size slots, each
//! with its own state word; it is lock-free in the way the kernel's 5.10
//! ring is (a writer never waits for another context: when the slot it
//! needs is still being written by an interrupted writer, it fails and the
//! message is counted as dropped) but simpler in layout. The kernel-faithful
//! descriptor/data ring replaces the storage later; the printk and console
//! logic around it stay.
//!
//! Slot state word (`u64`):
//!
//! ```text
//!  63                                   2 1   0
//! +--------------------------------------+-----+
//! |              seq + 1                 |state|
//! +--------------------------------------+-----+
//! ```
//!
//! | word            | meaning                                      |
//! |-----------------|----------------------------------------------|
//! | `0`             | never used                                   |
//! | `seq+1`, `1`    | WRITING: the writer of `seq` owns the slot   |
//! | `seq+1`, `2`    | COMMITTED: record `seq` is complete          |
//!
//! Writers reserve the next sequence number by moving `head` with a
//! compare-and-swap, but only after checking that the slot it maps to is not
//! still WRITING for an earlier lap (a slot already holding this or a later
//! sequence number means the head was read stale: retry); then they claim the slot with a compare-and-swap from the
//! state they saw. A writer that loses that race (a later lap took the slot
//! while it was interrupted) drops its message: its sequence number becomes
//! a gap. Readers copy a record and re-check the state word; a record
//! recycled under them is discarded.
//!
//! Orderings (`ORD(function:letter)` labels in the code):
//!
//! | pair                                   | why                                        |
//! |----------------------------------------|--------------------------------------------|
//! | reserve:C (fence Release) / read:C (fence Acquire) | a reader that saw any byte of a new writer also sees its WRITING mark on re-check |
//! | commit:A (Release) / read:A (Acquire)  | a reader that sees COMMITTED sees the text |
//! | reserve:A (Acquire) / commit:A         | a writer reusing a slot sees the old writer done with it |
//!
//! The console is printed outside anything an NMI could need: from NMI
//! context printk only queues irq_work; elsewhere it takes `console_sem`
//! with a trylock (never spinning) and reads the ring without locks.

use core::fmt;
use core::sync::atomic::{fence, AtomicU64, Ordering};

use crate::arch::{Arch, Frame};
use crate::console::Console;
use crate::context::Context;
use crate::lock::{LockCore, Semaphore};
use crate::point;
use crate::printk::{Accounts, Counters, DesignConfig, Printk};
use crate::record::{CallerId, Level, Meta, Record, TextBuf, TEXT_MAX};

/// Bytes per slot: state word, three metadata words, the text.
const SLOT_BYTES: usize = 256;
const TEXT_WORDS: usize = (SLOT_BYTES - 4 * 8) / 8;
/// Longest text a slot holds; longer messages are truncated.
pub const SLOT_TEXT: usize = TEXT_WORDS * 8;

const WRITING: u64 = 1;
const COMMITTED: u64 = 2;

static VPRINTK_EMIT: Frame = Frame("vprintk_emit");
static CONSOLE_FLUSH: Frame = Frame("console_flush_all");

fn encode(seq: u64, state: u64) -> u64 {
    (seq + 1) << 2 | state
}

/// (seq, state) of a used slot; `None` if never used.
fn decode(word: u64) -> Option<(u64, u64)> {
    (word != 0).then(|| ((word >> 2) - 1, word & 3))
}

struct Slot {
    state: AtomicU64,
    /// ts_ns; cpu | ctx << 16 | level << 24 | cont << 32 | text_len << 40;
    /// caller.
    meta: [AtomicU64; 3],
    text: [AtomicU64; TEXT_WORDS],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            state: AtomicU64::new(0),
            meta: core::array::from_fn(|_| AtomicU64::new(0)),
            text: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn write(&self, meta: &Meta, text: &[u8]) {
        let len = text.len().min(SLOT_TEXT);
        let packed = meta.cpu as u64 & 0xffff
            | u64::from(meta.context.level()) << 16
            | (meta.level as u64) << 24
            | u64::from(meta.cont) << 32
            | (len as u64) << 40;
        let [ts, info, caller] = &self.meta;
        ts.store(meta.ts_ns, Ordering::Relaxed);
        info.store(packed, Ordering::Relaxed);
        caller.store(u64::from(meta.caller.0), Ordering::Relaxed);
        for (word, chunk) in self
            .text
            .iter()
            .zip(text.get(..len).unwrap_or(&[]).chunks(8))
        {
            let mut b = [0u8; 8];
            b.get_mut(..chunk.len())
                .unwrap_or(&mut [])
                .copy_from_slice(chunk);
            word.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
    }

    fn copy<const N: usize>(&self, text: &mut TextBuf<N>) -> Meta {
        let [ts, info, caller] = &self.meta;
        let info = info.load(Ordering::Relaxed);
        let len = ((info >> 40) as usize).min(SLOT_TEXT);
        for word in self.text.iter().take(len.div_ceil(8)) {
            let b = word.load(Ordering::Relaxed).to_le_bytes();
            let room = len.saturating_sub(text.as_bytes().len()).min(8);
            text.push_bytes(b.get(..room).unwrap_or(&[]));
        }
        Meta {
            ts_ns: ts.load(Ordering::Relaxed),
            cpu: (info & 0xffff) as usize,
            context: Context::from_level(((info >> 16) & 3) as u8),
            caller: CallerId(caller.load(Ordering::Relaxed) as u32),
            level: Level::from_u8(((info >> 24) & 7) as u8),
            cont: (info >> 32) & 1 != 0,
        }
    }
}

/// What a reader found at a sequence number.
enum Read {
    /// The record, copied and validated.
    Record(Meta),
    /// Not written yet (or still being written).
    NotYet,
    /// Overwritten, or its writer failed: skip it.
    Gone,
}

/// The slot ring.
struct Ring {
    head: AtomicU64,
    slots: Box<[Slot]>,
}

/// A reservation: the slot is WRITING for `seq`.
struct Reserved<'a> {
    seq: u64,
    slot: &'a Slot,
    /// The slot held a committed record, now overwritten.
    replaced: bool,
}

impl Ring {
    fn new(buffer_size: usize) -> Ring {
        let n = (buffer_size / SLOT_BYTES).next_power_of_two().max(16);
        Ring {
            head: AtomicU64::new(0),
            slots: (0..n).map(|_| Slot::new()).collect(),
        }
    }

    fn slot(&self, seq: u64) -> Option<&Slot> {
        self.slots.get(seq as usize & (self.slots.len() - 1))
    }

    /// Reserve the next sequence number and its slot, or fail without
    /// waiting for anybody.
    fn reserve<A: Arch>(&self, arch: &A) -> Option<Reserved<'_>> {
        loop {
            let seq = self.head.load(Ordering::Relaxed);
            let slot = self.slot(seq)?;
            // ORD(reserve:A): Acquire pairs with commit:A of the slot's
            // previous writer.
            let old = slot.state.load(Ordering::Acquire);
            match decode(old) {
                // Another writer took `seq` since we read the head: retry.
                Some((s, _)) if s >= seq => continue,
                // A writer from an earlier lap is interrupted mid-record:
                // fail rather than wait for it (unless the head moved on).
                Some((_, WRITING)) => {
                    if self.head.load(Ordering::Relaxed) == seq {
                        return None;
                    }
                    continue;
                }
                _ => {}
            }
            if self
                .head
                .compare_exchange(seq, seq + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // ORD(reserve:B): claim the slot. Fails only if a later lap took
            // it while this writer was interrupted; seq becomes a gap.
            slot.state
                .compare_exchange(
                    old,
                    encode(seq, WRITING),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .ok()?;
            // ORD(reserve:C): pairs with read:C; the WRITING mark is ordered
            // before every text store below.
            fence(Ordering::Release);
            arch.point(point::PRB_RESERVED);
            return Some(Reserved {
                seq,
                slot,
                replaced: matches!(decode(old), Some((_, COMMITTED))),
            });
        }
    }

    fn commit<A: Arch>(&self, arch: &A, r: Reserved<'_>) {
        arch.point(point::PRB_BEFORE_COMMIT);
        // ORD(commit:A): Release pairs with read:A and reserve:A.
        r.slot
            .state
            .store(encode(r.seq, COMMITTED), Ordering::Release);
    }

    fn read<A: Arch, const N: usize>(&self, arch: &A, seq: u64, text: &mut TextBuf<N>) -> Read {
        let Some(slot) = self.slot(seq) else {
            return Read::Gone;
        };
        // ORD(read:A): pairs with commit:A.
        let before = slot.state.load(Ordering::Acquire);
        match decode(before) {
            Some((s, COMMITTED)) if s == seq => {}
            Some((s, _)) if s > seq => return Read::Gone,
            _ => return Read::NotYet,
        }
        let meta = slot.copy(text);
        arch.point(point::PRB_READ_COPIED);
        // ORD(read:C): pairs with reserve:C; if the copy saw a newer
        // writer's bytes, the re-check sees its state.
        fence(Ordering::Acquire);
        if slot.state.load(Ordering::Relaxed) != before {
            return Read::Gone;
        }
        Read::Record(meta)
    }

    fn committed(&self) -> impl Iterator<Item = (u64, &Slot)> {
        self.slots
            .iter()
            .filter_map(|s| match decode(s.state.load(Ordering::Acquire)) {
                Some((seq, COMMITTED)) => Some((seq, s)),
                _ => None,
            })
    }
}

/// The lockless printk.
pub struct Lockless {
    ring: Ring,
    console_sem: Semaphore,
    /// Next record the console prints; written only by the holder of
    /// `console_sem`.
    console_seq: AtomicU64,
    console: Console,
    counters: Counters,
}

impl Lockless {
    /// A lockless printk whose ring takes `config.buffer_size` bytes.
    pub fn new(config: &DesignConfig) -> Lockless {
        Lockless {
            ring: Ring::new(config.buffer_size),
            console_sem: Semaphore::new("console_sem"),
            console_seq: AtomicU64::new(0),
            console: Console::new(config.console, config.nr_cpus),
            counters: Counters::default(),
        }
    }

    /// Print what the ring holds, if nobody else is printing. Never spins:
    /// `console_sem` is only ever try-locked, and a record still being
    /// written ends the pass (its writer flushes it).
    fn console_flush<A: Arch>(&self, arch: &A) {
        arch.push_frame(&CONSOLE_FLUSH);
        loop {
            if !self.console_sem.try_down(arch, None) {
                break;
            }
            let printed_any = self.console_pass(arch);
            self.console_sem.up();
            let seq = self.console_seq.load(Ordering::Relaxed);
            // A record committed after our last look relies on us.
            if !printed_any || seq >= self.ring.head.load(Ordering::Relaxed) {
                break;
            }
        }
        arch.pop_frame();
    }

    /// One pass of the console loop while holding `console_sem`; true if it
    /// got past at least one record.
    fn console_pass<A: Arch>(&self, arch: &A) -> bool {
        let slots = self.ring.slots.len() as u64;
        let mut progressed = false;
        let mut skipped = 0;
        loop {
            let seq = self.console_seq.load(Ordering::Relaxed);
            let head = self.ring.head.load(Ordering::Relaxed);
            if seq >= head {
                break;
            }
            let oldest = head.saturating_sub(slots);
            if seq < oldest {
                skipped += oldest - seq;
                self.console_seq.store(oldest, Ordering::Relaxed);
                continue;
            }
            arch.point(point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
            let mut text = TextBuf::<TEXT_MAX>::new();
            match self.ring.read(arch, seq, &mut text) {
                Read::NotYet => break,
                Read::Gone => skipped += 1,
                Read::Record(meta) => {
                    arch.point(point::CONSOLE_UNLOCK_WRITE);
                    if skipped > 0 {
                        self.console.write_dropped(arch, skipped);
                        skipped = 0;
                    }
                    self.console.write_record(arch, &meta, text.as_bytes());
                }
            }
            self.console_seq.store(seq + 1, Ordering::Relaxed);
            progressed = true;
        }
        if skipped > 0 {
            self.console.write_dropped(arch, skipped);
        }
        progressed
    }
}

impl<A: Arch> Printk<A> for Lockless {
    fn name(&self) -> &'static str {
        "lockless"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        arch.push_frame(&VPRINTK_EMIT);
        self.counters.attempt();
        let mut text = TextBuf::<TEXT_MAX>::new();
        text.format(args);
        text.strip_newline();
        // Interrupts (not NMIs) stay off from reserve to commit, as in the
        // kernel, to keep the window in which a slot is WRITING short.
        let flags = arch.local_irq_save();
        match self.ring.reserve(arch) {
            None => self.counters.drop_one(),
            Some(r) => {
                arch.point(point::VPRINTK_LOGBUF_LOCKED);
                let context = arch.context();
                let cpu = arch.this_cpu();
                let meta = Meta {
                    ts_ns: arch.now_ns(),
                    cpu,
                    context,
                    caller: CallerId::new(context, cpu, arch.task_pid()),
                    level,
                    cont: false,
                };
                r.slot.write(&meta, text.as_bytes());
                if r.replaced {
                    self.counters.overwrite(1);
                }
                self.ring.commit(arch, r);
                self.counters.store();
            }
        }
        arch.local_irq_restore(flags);
        if arch.in_nmi() {
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
        let readable = self.ring.committed().count() as u64;
        self.counters.accounts(readable, &self.console.stats())
    }

    fn records(&mut self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .ring
            .committed()
            .map(|(seq, slot)| {
                let mut text = TextBuf::<TEXT_MAX>::new();
                let meta = slot.copy(&mut text);
                Record {
                    seq,
                    ts_ns: meta.ts_ns,
                    cpu: meta.cpu,
                    context: meta.context,
                    caller: meta.caller,
                    level: meta.level,
                    facility: 0,
                    text: String::from_utf8_lossy(text.as_bytes()).into_owned(),
                    cont: meta.cont,
                }
            })
            .collect();
        out.sort_by_key(|r| r.seq);
        out
    }

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.console_sem.core()]
    }

    fn console(&self) -> &Console {
        &self.console
    }
}
