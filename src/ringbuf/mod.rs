//! The lockless ring buffer, after the kernel's `printk_ringbuffer` (5.10
//! onward, with the 2025 refinements to block sizes).
//!
//! # Data structure
//!
//! Two rings. The **descriptor ring** has `2^count_bits` descriptors, each a
//! state word and the logical positions (`begin`, `next`) of its text block,
//! with a parallel array of record metadata (`Info`: sequence number,
//! timestamp, caller, level, CPU, context, text length). The **data ring**
//! has `2^size_bits` bytes of text blocks, each block an id word followed by
//! the text, 8-byte aligned. Two pairs of atomics say what is in use:
//! `head_id`/`tail_id` and `head_lpos`/`tail_lpos`.
//!
//! # Descriptor states and the state word
//!
//! ```text
//!  63 62 61                                                      0
//! +-----+----------------------------------------------------------+
//! |state|                       id (62 bits)                       |
//! +-----+----------------------------------------------------------+
//! ```
//!
//! | state        | meaning                                                         |
//! |--------------|-----------------------------------------------------------------|
//! | `reserved`   | a writer owns the descriptor and is filling it                  |
//! | `committed`  | complete, but its writer (same caller) may still reopen it      |
//! | `finalized`  | complete and immutable: visible to readers, recyclable          |
//! | `reusable`   | the record existed; its data may be gone; the slot may be reused|
//!
//! A reader asking about an id whose slot holds a different id gets `Miss`.
//! A record is finalized three ways: committed as final, finalized by the
//! next reservation (no extension once a newer record exists), or on commit
//! when a newer record already exists.
//!
//! # Ids, sequence numbers and wrap-around
//!
//! Consecutive reservations get consecutive ids; the slot of an id is
//! `id & (count - 1)`, so reusing a slot adds `count` to its id. Ids are 62
//! bits: an ABA (a slot coming back to the same id while a writer holds a
//! stale copy) needs 2^62 reservations in between. Sequence numbers live in
//! `Info` and advance by `count` each time a slot is reused. A logical
//! position (`lpos`) is a byte counter that never wraps in practice; its
//! index in the data ring is `lpos & (size - 1)`, its wrap `lpos >> size_bits`.
//! Odd lpos values are special (real ones are 8-aligned): `FAILED_LPOS`
//! marks a record whose data could not be allocated, `NO_LPOS` one that has
//! no text.
//!
//! A block that would straddle the end of the data array is placed whole at
//! index 0; only its id is written at its logical begin (so the tail, which
//! walks by logical positions, can identify it). A block that ends exactly at
//! the end of the array is not wrapped.
//!
//! Bootstrap: the ring starts with `head_id == tail_id` pointing at the
//! last slot, marked reusable with no data and sequence 0, so that the tail
//! always points at a finalized or reusable descriptor and readers see an
//! empty ring; slot 0's sequence starts at `-count`, so that the first
//! reservation (which adds `count`) gets sequence 0. The initial ids and
//! positions are negative so that the wrap code runs early.
//!
//! # Usage
//!
//! Writers: [`Ring::reserve`], fill the text through [`Reserved::write`],
//! then [`Reserved::commit`] or [`Reserved::final_commit`]; [`Ring::reserve_in_last`]
//! reopens the newest committed record of the same caller to append to it.
//! Reservation fails (and says why) instead of waiting for another context:
//! the oldest record is still being written, or the text is too large.
//! Readers: [`Ring::read`] one sequence number, [`Ring::read_valid`] the next
//! readable record at or after it (a jump is the count of records lost).
//! Readers never block writers; a reader stops at the first record that is
//! not finalized yet. The caller keeps interrupts (not NMIs) off between
//! reserve and commit, as the kernel does, to keep that window short.
//!
//! # Memory ordering
//!
//! Every ordering-relevant access carries a label `ORD(function:letter)`,
//! the kernel's `LMM()` names. The kernel's value-returning
//! compare-and-exchange is a full barrier: it orders every access before
//! it against every access after it, on any variable. A Rust `SeqCst`
//! compare-and-exchange orders only itself, so the translation is the CAS
//! plus a `fence(Release)` where later plain stores must stay behind it
//! (data_alloc:A, data_realloc:A, desc_reserve:G), Acquire on the loads and
//! failed CASes that must bring along another writer's recycling, and
//! `SeqCst` on both sides of the one store-buffering pattern (prb_commit:A
//! against desc_make_final). `smp_rmb()` is `fence(Acquire)` after the loads
//! it orders. (The loom model found the first of these the hard way: a
//! reader saw a new writer's bytes without seeing the recycling.) Two of
//! the kernel's cmpxchgs are stores here, because no other context can
//! change the state word at that moment and so they could never fail:
//! taking the recycled slot (desc_reserve:F, after the head moved to it: a
//! release store) and committing (_prb_commit:B, while the state is
//! `reserved`, which only its writer leaves, and `Reserved` is consumed by
//! its commit: a release store to finalize, as the kernel's "a write memory
//! barrier is sufficient", and `SeqCst` to commit, for the store-buffering
//! pair with prb_commit:A). On x86 only that last store is a locked
//! instruction (`xchg`). The pairs:
//!
//! | writer side              | reader side                | why                                                        |
//! |--------------------------|----------------------------|------------------------------------------------------------|
//! | desc_reserve:D           | desc_reserve:B             | the tail was pushed before the head moved; a writer that sees the new head sees the new tail |
//! | desc_reserve:D           | data_push_tail:B           | the data tail was pushed before the new descriptor was reserved |
//! | desc_reserve:D           | desc_push_tail:C           | the descriptor tail was pushed before the new descriptor was reserved |
//! | desc_reserve:D           | prb_first_seq:C            | same, for the first-sequence reader loop                   |
//! | desc_reserve:F           | desc_read:D                | the new id and reserved state are stored before the writer changes the descriptor |
//! | data_alloc:A             | desc_read:D                | the old descriptor was made reusable before the new data area is written |
//! | data_alloc:A             | data_push_tail:B           | the data tail was pushed before the new data area is written |
//! | _prb_commit:B            | desc_read:B                | the writer's data is stored before the state says committed or finalized |
//! | desc_reopen_last:A       | _prb_commit:B              | the state is reserved again before the writer reads the record data |
//! | _prb_commit:B            | prb_commit:A               | the commit is stored before the head id is checked (to finalize) |
//! | data_push_tail:D         | data_push_tail:A           | descriptors were made reusable before the data tail moved |
//! | desc_push_tail:B         | desc_reserve:D             | the descriptor was made reusable before the descriptor tail moved |
//! | desc_reserve:D           | prb_next_reserve_seq:A     | a reader that read a record's descriptor sees the head at or past its id |
//!
//! Every function reachable from `reserve`, `commit` and `read` is
//! async-signal-safe: atomics only, no allocation, no panics, and every loop
//! either makes progress or fails.

//! # Example
//!
//! A record is reserved, written through the reservation (which borrows the
//! ring, so it can only be committed there), finalized, then read back by
//! its sequence number:
//!
//! ```
//! use klog::arch::Quiet;
//! use klog::record::{CallerId, Meta, TextBuf};
//! use klog::ringbuf::Ring;
//! use klog::{Context, Level};
//!
//! let ring = Ring::new(4, 12); // 16 descriptors, 4 KiB of text
//! let meta = Meta {
//!     ts_ns: 1_000,
//!     cpu: 0,
//!     context: Context::Task,
//!     caller: CallerId(1),
//!     level: Level::Info,
//!     cont: false,
//! };
//! let mut r = ring.reserve(&Quiet, 5, &meta).expect("room for 5 bytes");
//! r.write(b"hello", &meta);
//! r.final_commit(&Quiet);
//!
//! let mut text = TextBuf::<64>::new();
//! let rec = ring.read(&Quiet, 0, &mut text).expect("record 0");
//! assert_eq!((rec.seq, text.as_bytes()), (0, &b"hello"[..]));
//! assert_eq!(rec.meta.level, Level::Info);
//! ```

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
#[cfg(not(loom))]
use core::sync::atomic::{fence, AtomicU64};
#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU64};

use crate::arch::Arch;
use crate::context::Context;
use crate::point;
use crate::record::{CallerId, Level, Meta, TextBuf};

mod data;
mod desc;
mod reader;
mod writer;

pub use writer::Reserved;

const STATE_SHIFT: u32 = 62;
const ID_MASK: u64 = (1 << STATE_SHIFT) - 1;
/// lpos of a record whose data could not be allocated.
pub const FAILED_LPOS: u64 = 0x1;
/// lpos of a record that has no text.
pub const NO_LPOS: u64 = 0x3;
const ID_WORD: u64 = 8;

/// A descriptor's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescState {
    /// The slot holds another id.
    Miss,
    /// A writer owns it.
    Reserved,
    /// Complete; its writer may reopen it.
    Committed,
    /// Complete and immutable.
    Finalized,
    /// Existed; data may be gone; slot reusable.
    Reusable,
}

fn sv(id: u64, state: u64) -> u64 {
    state << STATE_SHIFT | (id & ID_MASK)
}

const RESERVED: u64 = 0;
const COMMITTED: u64 = 1;
const FINALIZED: u64 = 2;
const REUSABLE: u64 = 3;

fn state_of(id: u64, state_var: u64) -> DescState {
    // The ids agree when the low bits of `state_var ^ id` are zero: shifted
    // left past the state bits, the xor is zero (one shift, no mask).
    if (state_var ^ id) << (64 - STATE_SHIFT) != 0 {
        return DescState::Miss;
    }
    match state_var >> STATE_SHIFT {
        RESERVED => DescState::Reserved,
        COMMITTED => DescState::Committed,
        FINALIZED => DescState::Finalized,
        _ => DescState::Reusable,
    }
}

fn dataless(begin: u64, next: u64) -> bool {
    begin & 1 == 1 && next & 1 == 1
}

/// Why a reservation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// The text is larger than half the data ring.
    TooBig,
    /// The oldest descriptor (or the one after it) is still being written:
    /// no descriptor can be recycled.
    DescBusy,
    /// The oldest data block belongs to a record still being written: no
    /// data can be recycled. The record exists, without its text.
    DataBusy,
}

/// Where the records a ring handed out stand after a run
/// ([`Ring::census`]); records that never had data are in none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Finalized, with their data.
    pub readable: u64,
    /// Their data recycled by newer records.
    pub overwritten: u64,
    /// Still reserved, or committed and open, when the run ended.
    pub unfinished: u64,
}

/// Failed reservations, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailCounts {
    /// [`Fail::TooBig`].
    pub too_big: u64,
    /// [`Fail::DescBusy`].
    pub desc_busy: u64,
    /// [`Fail::DataBusy`].
    pub data_busy: u64,
}

struct Desc {
    state_var: AtomicU64,
    begin: AtomicU64,
    next: AtomicU64,
}

/// Record metadata kept beside each descriptor.
struct Info {
    seq: AtomicU64,
    ts_ns: AtomicU64,
    /// text_len (16) | level (3) << 16 | cont << 19 | ctx (2) << 20 | cpu (16) << 32
    packed: AtomicU64,
    caller: AtomicU64,
}

/// A copy of what a reader validated.
#[derive(Clone, Copy, Debug, Default)]
struct DescCopy {
    begin: u64,
    next: u64,
    seq: u64,
    caller: u64,
}

/// The ring. See the module documentation.
pub struct Ring {
    /// Descriptors - 1 (kept as a mask: the hot path masks ids, never
    /// shifts).
    desc_mask: u64,
    descs: Box<[Desc]>,
    infos: Box<[Info]>,
    head_id: AtomicU64,
    tail_id: AtomicU64,
    size_bits: u32,
    /// Data bytes - 1.
    data_mask: u64,
    /// The data ring, as words so every access is atomic.
    data: Box<[AtomicU64]>,
    head_lpos: AtomicU64,
    tail_lpos: AtomicU64,
    fail_too_big: AtomicU64,
    fail_desc: AtomicU64,
    fail_data: AtomicU64,
    /// The id the ring started with (the bootstrap descriptor's).
    boot_id: u64,
}

/// What [`Ring::read`] found at a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Not there (yet), or overwritten by a newer record in the same slot.
    Invalid,
    /// The record existed but its data is gone (or was never allocated).
    NoEnt,
}

/// A record as read: metadata; the text went into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Sequence number.
    pub seq: u64,
    /// Metadata.
    pub meta: Meta,
}

impl Ring {
    /// A ring of `2^count_bits` descriptors and `2^size_bits` bytes of text.
    pub fn new(count_bits: u32, size_bits: u32) -> Ring {
        let count = 1u64 << count_bits;
        let size = 1u64 << size_bits;
        let descs: Box<[Desc]> = (0..count)
            .map(|_| Desc {
                state_var: AtomicU64::new(0),
                begin: AtomicU64::new(0),
                next: AtomicU64::new(0),
            })
            .collect();
        let infos: Box<[Info]> = (0..count)
            .map(|i| Info {
                // Slot 0 starts a whole lap behind, so the first reservation
                // (which adds `count`) gets sequence 0.
                seq: AtomicU64::new(if i == 0 { 0u64.wrapping_sub(count) } else { 0 }),
                ts_ns: AtomicU64::new(0),
                packed: AtomicU64::new(0),
                caller: AtomicU64::new(0),
            })
            .collect();
        // head == tail == the last slot, reusable, no data, sequence 0.
        let boot = 0u64.wrapping_sub(count + 1) & ID_MASK;
        if let Some(d) = descs.last() {
            d.state_var.store(sv(boot, REUSABLE), Relaxed);
            d.begin.store(FAILED_LPOS, Relaxed);
            d.next.store(FAILED_LPOS, Relaxed);
        }
        let lpos0 = 0u64.wrapping_sub(size);
        Ring {
            desc_mask: count - 1,
            descs,
            infos,
            head_id: AtomicU64::new(boot),
            tail_id: AtomicU64::new(boot),
            size_bits,
            data_mask: size - 1,
            data: (0..size / 8).map(|_| AtomicU64::new(0)).collect(),
            head_lpos: AtomicU64::new(lpos0),
            tail_lpos: AtomicU64::new(lpos0),
            fail_too_big: AtomicU64::new(0),
            fail_desc: AtomicU64::new(0),
            fail_data: AtomicU64::new(0),
            boot_id: boot,
        }
    }

    /// A ring sized as printk sizes it: `buffer_size` bytes of text and one
    /// descriptor per 32 bytes (`PRB_AVGBITS = 5`): 128 KiB → 4096.
    pub fn for_buffer(buffer_size: usize) -> Ring {
        let size_bits = buffer_size.max(64).next_power_of_two().trailing_zeros();
        Ring::new(size_bits.saturating_sub(5).max(2), size_bits)
    }

    /// Number of descriptors.
    pub fn count(&self) -> u64 {
        self.desc_mask + 1
    }

    fn data_size(&self) -> u64 {
        self.data_mask + 1
    }

    /// Bytes in the data ring (printk's `log_buf_len`).
    pub fn data_bytes(&self) -> u64 {
        self.data_size()
    }

    /// Failed reservations so far, by reason.
    pub fn fails(&self) -> FailCounts {
        FailCounts {
            too_big: self.fail_too_big.load(Relaxed),
            desc_busy: self.fail_desc.load(Relaxed),
            data_busy: self.fail_data.load(Relaxed),
        }
    }

    /// `prb_next_reserve_seq()`: the sequence number the next reservation
    /// will get. Valid while writers run:
    /// ids are handed out densely from the bootstrap id and the first
    /// reservation (`boot_id + 1`) gets sequence 0, so the head id alone
    /// gives the answer, without reading a descriptor that a writer may be
    /// filling (the kernel derives it from the last finalized record's id
    /// for the same reason). A reservation whose head move raced with the
    /// call may or may not be counted.
    ///
    /// Ordering: ORD(prb_next_reserve_seq:A), Acquire on the head id,
    /// pairs with desc_reserve:D: a caller that read a record's descriptor
    /// first (`read`, `read_valid`, whose desc_read fences order this load
    /// after that read) gets a value past that record's sequence number.
    pub fn next_reserve_seq(&self) -> u64 {
        // ORD(prb_next_reserve_seq:A)
        let head = self.head_id.load(Acquire);
        head.wrapping_sub(self.boot_id) & ID_MASK
    }

    /// Where every record the ring handed out stands. Only when no writer
    /// is running.
    ///
    /// Each of the three is counted on its own, none derived from the
    /// others: the records behind the tail were recycled (less those that
    /// never had data: every `DataBusy` failure left one such record, and
    /// those still in the ring are seen), and each record between tail and
    /// head is looked at: finalized with data (readable), its data
    /// recycled (overwritten), or still reserved or open (unfinished; a
    /// reader stops there, but the records after it are not lost).
    pub fn census(&self) -> Census {
        let first = self.first_seq();
        let next = self.next_reserve_seq();
        let mut c = Census::default();
        let mut dataless_here = 0u64;
        for seq in first..next {
            let id = self
                .desc(seq)
                .map_or(0, |d| d.state_var.load(Relaxed) & ID_MASK);
            let (state, d) = self.desc_read(id, false);
            match state {
                DescState::Miss | DescState::Reserved | DescState::Committed => c.unfinished += 1,
                // A reservation whose data could not be allocated; an
                // empty line (NO_LPOS) is a record like any other.
                _ if d.begin == FAILED_LPOS && d.next == FAILED_LPOS => dataless_here += 1,
                DescState::Finalized => c.readable += 1,
                DescState::Reusable => c.overwritten += 1,
            }
        }
        let dataless_behind = self.fail_data.load(Relaxed).saturating_sub(dataless_here);
        c.overwritten += first.saturating_sub(dataless_behind);
        c
    }

    /// Stored records no longer readable (see [`Ring::census`]).
    pub fn overwritten(&self) -> u64 {
        self.census().overwritten
    }

    /// Check the ring's invariants; only meaningful when no writer or reader
    /// is running. The first violation found, if any.
    pub fn check(&self) -> Result<(), String> {
        let count = self.count();
        let head = self.head_id.load(Relaxed);
        let tail = self.tail_id.load(Relaxed);
        let used = head.wrapping_sub(tail) & ID_MASK;
        if used >= count {
            return Err(format!(
                "head id {head:#x} is {used} ahead of tail id {tail:#x}, ring has {count}"
            ));
        }
        let head_lpos = self.head_lpos.load(Relaxed);
        let tail_lpos = self.tail_lpos.load(Relaxed);
        if head_lpos.wrapping_sub(tail_lpos) > self.data_size() {
            return Err(format!(
                "data head {head_lpos:#x} more than a ring ahead of tail {tail_lpos:#x}"
            ));
        }
        let mut prev_seq: Option<u64> = None;
        for k in 0..=used {
            let id = tail.wrapping_add(k) & ID_MASK;
            let Some(d) = self.desc(id) else {
                return Err(format!("no descriptor for id {id:#x}"));
            };
            let state = state_of(id, d.state_var.load(Relaxed));
            if k == 0 && !matches!(state, DescState::Finalized | DescState::Reusable) {
                return Err(format!("tail descriptor {id:#x} is {state:?}"));
            }
            if matches!(state, DescState::Miss | DescState::Reserved) {
                return Err(format!(
                    "descriptor {id:#x} between tail and head is {state:?}"
                ));
            }
            let seq = self.info(id).map_or(0, |i| i.seq.load(Relaxed));
            if let Some(p) = prev_seq {
                // The bootstrap descriptor claims seq 0 too (so that an empty
                // ring's first seq is 0).
                let bootstrap = k == 1 && p == 0 && seq == 0;
                if seq != p.wrapping_add(1) && !bootstrap {
                    return Err(format!("descriptor {id:#x} has seq {seq} after {p}"));
                }
            }
            prev_seq = Some(seq);
            let (begin, next) = (d.begin.load(Relaxed), d.next.load(Relaxed));
            if state == DescState::Reusable || dataless(begin, next) {
                continue;
            }
            if self.need_more_space(begin, tail_lpos) || self.need_more_space(head_lpos, next) {
                return Err(format!(
                    "descriptor {id:#x} data {begin:#x}..{next:#x} outside {tail_lpos:#x}..{head_lpos:#x}"
                ));
            }
            let tagged = self
                .data
                .get(self.word_index(begin))
                .map(|w| w.load(Relaxed));
            if tagged != Some(id) || self.get_data(begin, next).is_none() {
                return Err(format!(
                    "descriptor {id:#x}: block at {begin:#x} is not its own"
                ));
            }
        }
        Ok(())
    }
}
