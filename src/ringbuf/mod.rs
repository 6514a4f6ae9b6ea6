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
//! then [`Ring::commit`] or [`Ring::final_commit`]; [`Ring::reserve_in_last`]
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
//! reader saw a new writer's bytes without seeing the recycling.) The
//! pairs:
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

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
#[cfg(not(loom))]
use core::sync::atomic::{fence, AtomicU64};
#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU64};

use crate::arch::Arch;
use crate::context::Context;
use crate::point;
use crate::record::{CallerId, Level, Meta, TextBuf};

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
    if state_var & ID_MASK != id & ID_MASK {
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
    count_bits: u32,
    descs: Box<[Desc]>,
    infos: Box<[Info]>,
    head_id: AtomicU64,
    tail_id: AtomicU64,
    size_bits: u32,
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

/// A reserved record: the writer fills it, then commits it.
#[must_use = "a reservation must be committed"]
pub struct Reserved {
    id: u64,
    /// First word of the text in the data ring (None for a record with no
    /// text).
    text_word: Option<usize>,
    /// Bytes of text space.
    space: usize,
    /// Bytes already in the record (for `reserve_in_last`).
    len: usize,
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
            count_bits,
            descs,
            infos,
            head_id: AtomicU64::new(boot),
            tail_id: AtomicU64::new(boot),
            size_bits,
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
        1 << self.count_bits
    }

    fn data_size(&self) -> u64 {
        1 << self.size_bits
    }

    /// Bytes in the data ring (printk's `log_buf_len`).
    pub fn data_bytes(&self) -> u64 {
        self.data_size()
    }

    fn desc(&self, id: u64) -> Option<&Desc> {
        self.descs.get((id & (self.count() - 1)) as usize)
    }

    fn info(&self, id: u64) -> Option<&Info> {
        self.infos.get((id & (self.count() - 1)) as usize)
    }

    fn prev_wrap(&self, id: u64) -> u64 {
        id.wrapping_sub(self.count()) & ID_MASK
    }

    fn wraps(&self, lpos: u64) -> u64 {
        lpos >> self.size_bits
    }

    /// The wrap after `wrap`; wrap numbers are counted modulo
    /// 2^(64 - size_bits), like the positions they come from.
    fn next_wrap(&self, wrap: u64) -> u64 {
        wrap.wrapping_add(1) & (u64::MAX >> self.size_bits)
    }

    fn word_index(&self, lpos: u64) -> usize {
        ((lpos & (self.data_size() - 1)) / 8) as usize
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
            let (state, d) = self.desc_read(id);
            match state {
                DescState::Miss | DescState::Reserved | DescState::Committed => c.unfinished += 1,
                _ if dataless(d.begin, d.next) => dataless_here += 1,
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

    // ------------------------------------------------------------------
    // Reading descriptors.

    /// Copy descriptor `id`, validated against its state word before and
    /// after the copy. The copy is only trustworthy for the returned state.
    fn desc_read(&self, id: u64) -> (DescState, DescCopy) {
        let (Some(d), Some(info)) = (self.desc(id), self.info(id)) else {
            return (DescState::Miss, DescCopy::default());
        };
        // ORD(desc_read:A)
        let before = d.state_var.load(Relaxed);
        let state = state_of(id, before);
        if matches!(state, DescState::Miss | DescState::Reserved) {
            return (state, DescCopy::default());
        }
        // ORD(desc_read:B): pairs with _prb_commit:B; the copy below sees
        // at least the data committed with the state just read.
        fence(Acquire);
        // ORD(desc_read:C)
        let copy = DescCopy {
            begin: d.begin.load(Relaxed),
            next: d.next.load(Relaxed),
            seq: info.seq.load(Relaxed),
            caller: info.caller.load(Relaxed),
        };
        // ORD(desc_read:D): pairs with desc_reserve:F and data_alloc:A; a
        // copy that saw a new writer's stores sees its state below.
        fence(Acquire);
        // ORD(desc_read:E)
        let after = d.state_var.load(Relaxed);
        (state_of(id, after), copy)
    }

    /// Finalized → reusable.
    fn desc_make_reusable(&self, id: u64) {
        if let Some(d) = self.desc(id) {
            // ORD(desc_make_reusable:A): relaxed; ordered by the tail pushes
            // that follow (data_push_tail:D, desc_push_tail:B).
            let _ =
                d.state_var
                    .compare_exchange(sv(id, FINALIZED), sv(id, REUSABLE), Relaxed, Relaxed);
        }
    }

    // ------------------------------------------------------------------
    // The data ring.

    /// Whether `lpos` lies before `target` (the tail must move past it).
    fn need_more_space(&self, lpos: u64, target: u64) -> bool {
        target.wrapping_sub(lpos).wrapping_sub(1) < self.data_size()
    }

    fn is_wrapped(&self, begin: u64, next: u64) -> bool {
        self.wraps(begin) != self.wraps(next.wrapping_sub(1))
    }

    fn next_lpos(&self, begin: u64, size: u64) -> u64 {
        let next = begin.wrapping_add(size);
        if !self.is_wrapped(begin, next) {
            return next;
        }
        // Placed whole at the start of the next wrap.
        (self.wraps(begin).wrapping_add(1) << self.size_bits).wrapping_add(size)
    }

    fn blk_size(text: usize) -> u64 {
        ID_WORD + (text as u64).div_ceil(8) * 8
    }

    /// The first word of a block's text and its size in bytes.
    fn get_data(&self, begin: u64, next: u64) -> Option<(usize, u64)> {
        if dataless(begin, next) || begin & 7 != 0 || next & 7 != 0 {
            return None;
        }
        let (start, size) = if !self.is_wrapped(begin, next) {
            (begin, next.wrapping_sub(begin))
        } else if self.next_wrap(self.wraps(begin)) == self.wraps(next.wrapping_sub(1)) {
            (0, next & (self.data_size() - 1))
        } else {
            return None;
        };
        if size < ID_WORD || size > self.data_size() / 2 {
            return None;
        }
        Some((self.word_index(start) + 1, size - ID_WORD))
    }

    /// Make every block from `begin` up to `end` reusable; on success the
    /// position after the last one.
    fn data_make_reusable(&self, mut begin: u64, end: u64) -> Option<u64> {
        while self.need_more_space(begin, end) {
            // ORD(data_make_reusable:A): a racy read by design; the
            // descriptor read below validates it.
            let id = self.data.get(self.word_index(begin))?.load(Relaxed);
            // ORD(data_make_reusable:B)
            let (state, d) = self.desc_read(id);
            match state {
                DescState::Miss | DescState::Reserved | DescState::Committed => return None,
                DescState::Finalized => {
                    if d.begin != begin {
                        return None;
                    }
                    self.desc_make_reusable(id);
                }
                DescState::Reusable => {
                    if d.begin != begin {
                        return None;
                    }
                }
            }
            begin = d.next;
        }
        Some(begin)
    }

    /// Move the data tail to at least `lpos`, recycling what lies before it.
    fn data_push_tail(&self, lpos: u64) -> bool {
        if lpos & 1 == 1 {
            return true;
        }
        // ORD(data_push_tail:A): pairs with data_push_tail:D.
        let mut tail = self.tail_lpos.load(Acquire);
        while self.need_more_space(tail, lpos) {
            let Some(next) = self.data_make_reusable(tail, lpos) else {
                // ORD(data_push_tail:B): pairs with desc_reserve:D and
                // data_alloc:A; if the tail did not move, the failure is real.
                fence(Acquire);
                // ORD(data_push_tail:C): Acquire, so that a tail moved by
                // someone else brings along what they made reusable.
                let now = self.tail_lpos.load(Acquire);
                if now == tail {
                    return false;
                }
                tail = now;
                continue;
            };
            // ORD(data_push_tail:D): the descriptors made reusable above are
            // ordered before the tail move (AcqRel would do; the kernel's
            // cmpxchg is fully ordered).
            match self.tail_lpos.compare_exchange(tail, next, SeqCst, Acquire) {
                Ok(_) => break,
                Err(now) => tail = now,
            }
        }
        true
    }

    /// Allocate a text block of `text` bytes for descriptor `id`.
    fn data_alloc<A: Arch>(&self, arch: &A, id: u64, text: usize) -> Option<(u64, u64)> {
        let size = Self::blk_size(text);
        loop {
            let begin = self.head_lpos.load(Relaxed);
            let next = self.next_lpos(begin, size);
            if !self.data_push_tail(next.wrapping_sub(self.data_size())) {
                return None;
            }
            // ORD(data_alloc:A): pairs with desc_read:D and data_push_tail:B;
            // the tail push above happens before the new area is written.
            if self
                .head_lpos
                .compare_exchange(begin, next, SeqCst, Relaxed)
                .is_ok()
            {
                // The kernel's cmpxchg is a full barrier; in Rust the CAS
                // orders only itself, so a release fence keeps every store
                // to the new block after the recycling that made room for
                // it (pairs with desc_read:B in a reader of the old record).
                fence(Release);
                arch.point(point::PRB_DATA_ALLOCATED);
                self.write_ids(id, begin, next);
                return Some((begin, next));
            }
        }
    }

    fn write_ids(&self, id: u64, begin: u64, next: u64) {
        if let Some(w) = self.data.get(self.word_index(begin)) {
            w.store(id, Relaxed);
        }
        if self.is_wrapped(begin, next) {
            if let Some(w) = self.data.first() {
                w.store(id, Relaxed);
            }
        }
    }

    // ------------------------------------------------------------------
    // Descriptors.

    /// Move the descriptor tail past `tail_id`, recycling it.
    fn desc_push_tail(&self, tail_id: u64) -> bool {
        let (state, d) = self.desc_read(tail_id);
        match state {
            DescState::Miss => {
                // One wrap behind: being reserved by someone right now.
                let now = self.desc(tail_id).map_or(0, |x| x.state_var.load(Relaxed));
                return now & ID_MASK != self.prev_wrap(tail_id);
            }
            DescState::Reserved | DescState::Committed => return false,
            DescState::Finalized => self.desc_make_reusable(tail_id),
            DescState::Reusable => {}
        }
        // Its data must be invalidated before the descriptor is recycled.
        if !self.data_push_tail(d.next) {
            return false;
        }
        let next_id = tail_id.wrapping_add(1) & ID_MASK;
        // ORD(desc_push_tail:A)
        let (next_state, _) = self.desc_read(next_id);
        if matches!(next_state, DescState::Finalized | DescState::Reusable) {
            // ORD(desc_push_tail:B): pairs with desc_reserve:D (AcqRel
            // would do). Failure means another writer pushed it.
            let _ = self
                .tail_id
                .compare_exchange(tail_id, next_id, SeqCst, Acquire);
        } else {
            // ORD(desc_push_tail:C): pairs with desc_reserve:D; if the tail
            // did not move, the next record is genuinely unfinished.
            fence(Acquire);
            // ORD(desc_push_tail:D)
            if self.tail_id.load(Acquire) == tail_id {
                return false;
            }
        }
        true
    }

    /// Reserve the next descriptor: its id.
    fn desc_reserve<A: Arch>(&self, arch: &A) -> Option<u64> {
        // ORD(desc_reserve:A)
        let mut head = self.head_id.load(Relaxed);
        let id = loop {
            let id = head.wrapping_add(1) & ID_MASK;
            let prev = self.prev_wrap(id);
            // ORD(desc_reserve:B): pairs with desc_reserve:D; the tail read
            // below is at least as new as the head read above.
            fence(Acquire);
            // ORD(desc_reserve:C)
            if self.tail_id.load(Relaxed) == prev && !self.desc_push_tail(prev) {
                return None;
            }
            // ORD(desc_reserve:D): fully ordered: the tail push and the
            // reads above happen before the head moves (pairs with B,
            // data_push_tail:B, desc_push_tail:C, prb_first_seq:C).
            match self.head_id.compare_exchange(head, id, SeqCst, Relaxed) {
                Ok(_) => break id,
                Err(now) => head = now,
            }
        };
        arch.point(point::PRB_HEAD_MOVED);
        let d = self.desc(id)?;
        // ORD(desc_reserve:E)
        let old = d.state_var.load(Relaxed);
        if old != 0 && state_of(self.prev_wrap(id), old) != DescState::Reusable {
            // Should never happen: the slot is not the reusable previous wrap.
            return None;
        }
        // ORD(desc_reserve:F): pairs with desc_read:D; Acquire orders the
        // writer's later stores after taking the slot (desc_reserve:G).
        d.state_var
            .compare_exchange(old, sv(id, RESERVED), AcqRel, Relaxed)
            .ok()?;
        // ORD(desc_reserve:G): the kernel's full barrier, as a release
        // fence: every store to the descriptor and its info below comes
        // after the new state, so a reader whose copy saw one of them sees
        // the new state on re-check (pairs with desc_read:D).
        fence(Release);
        Some(id)
    }

    /// committed → finalized, if it still is committed.
    fn desc_make_final(&self, id: u64) {
        if let Some(d) = self.desc(id) {
            // SeqCst, load and compare-and-swap: with prb_commit:A this is
            // the store-buffering pattern (the committer stores its state
            // then loads the head; the next reserver stores the head then
            // loads the state); only a single total order guarantees that at
            // least one of them sees the other and finalizes. The load first
            // spares the locked instruction when the record is not
            // committed (the common case: printk final-commits whole lines).
            if d.state_var.load(SeqCst) == sv(id, COMMITTED) {
                let _ = d.state_var.compare_exchange(
                    sv(id, COMMITTED),
                    sv(id, FINALIZED),
                    SeqCst,
                    SeqCst,
                );
            }
        }
    }

    // ------------------------------------------------------------------
    // Writers.

    /// Reserve a record with room for `text` bytes. On failure nothing is
    /// left reserved, the reason is counted and returned; a record whose data
    /// could not be allocated still exists, without text, so readers see
    /// the loss.
    pub fn reserve<A: Arch>(&self, arch: &A, text: usize, meta: &Meta) -> Result<Reserved, Fail> {
        if Self::blk_size(text) > self.data_size() / 2 {
            self.fail_too_big.fetch_add(1, Relaxed);
            return Err(Fail::TooBig);
        }
        let Some(id) = self.desc_reserve(arch) else {
            self.fail_desc.fetch_add(1, Relaxed);
            return Err(Fail::DescBusy);
        };
        arch.point(point::PRB_RESERVED);
        let (Some(d), Some(info)) = (self.desc(id), self.info(id)) else {
            return Err(Fail::DescBusy);
        };
        let index = id & (self.count() - 1);
        let old_seq = info.seq.load(Relaxed);
        let seq = if old_seq == 0 && index != 0 {
            index
        } else {
            old_seq.wrapping_add(self.count())
        };
        info.seq.store(seq, Relaxed);
        if seq > 0 {
            // A newer record exists now: the previous one can no longer be
            // extended.
            self.desc_make_final(id.wrapping_sub(1) & ID_MASK);
        }
        if text == 0 {
            self.set_info(info, meta, 0);
            d.begin.store(NO_LPOS, Relaxed);
            d.next.store(NO_LPOS, Relaxed);
            return Ok(Reserved {
                id,
                text_word: None,
                space: 0,
                len: 0,
            });
        }
        match self.data_alloc(arch, id, text) {
            Some((begin, next)) => {
                d.begin.store(begin, Relaxed);
                d.next.store(next, Relaxed);
                let (word, space) = self.get_data(begin, next).unwrap_or((0, 0));
                Ok(Reserved {
                    id,
                    text_word: Some(word),
                    space: space as usize,
                    len: 0,
                })
            }
            None => {
                self.set_info(info, meta, 0);
                d.begin.store(FAILED_LPOS, Relaxed);
                d.next.store(FAILED_LPOS, Relaxed);
                self.fail_data.fetch_add(1, Relaxed);
                self.commit_state(arch, id, FINALIZED);
                Err(Fail::DataBusy)
            }
        }
    }

    fn set_info(&self, info: &Info, meta: &Meta, text_len: usize) {
        info.ts_ns.store(meta.ts_ns, Relaxed);
        info.caller.store(u64::from(meta.caller.0), Relaxed);
        info.packed.store(pack(meta, text_len), Relaxed);
    }

    fn commit_state<A: Arch>(&self, arch: &A, id: u64, state: u64) {
        arch.point(point::PRB_BEFORE_COMMIT);
        if let Some(d) = self.desc(id) {
            // ORD(_prb_commit:B): pairs with desc_read:B and prb_commit:A;
            // every store to the record happens before the new state.
            let _ = d
                .state_var
                .compare_exchange(sv(id, RESERVED), sv(id, state), SeqCst, Relaxed);
        }
    }

    /// Commit: complete, but the same caller may still extend it. Finalized
    /// at once if a newer record was reserved meanwhile.
    pub fn commit<A: Arch>(&self, arch: &A, r: Reserved) {
        self.commit_id(arch, r.id);
    }

    /// `prb_commit()` by id: committed, and finalized at once if a newer
    /// record exists (nobody else would finalize it then).
    fn commit_id<A: Arch>(&self, arch: &A, id: u64) {
        self.commit_state(arch, id, COMMITTED);
        // ORD(prb_commit:A): pairs with _prb_commit:B via desc_reserve:D: a
        // reservation that did not see our commit is visible here.
        arch.point(point::PRB_BEFORE_FINALIZE);
        if self.head_id.load(SeqCst) != id {
            self.desc_make_final(id);
        }
    }

    /// Commit and finalize: visible to readers, never extended.
    pub fn final_commit<A: Arch>(&self, arch: &A, r: Reserved) {
        self.commit_state(arch, r.id, FINALIZED);
    }

    /// Reopen the newest record if it is committed (not finalized) and was
    /// written by `caller`, with room for `extra` more bytes of text (the
    /// whole text at most `max` bytes). The returned reservation appends.
    pub fn reserve_in_last<A: Arch>(
        &self,
        arch: &A,
        caller: CallerId,
        extra: usize,
        max: usize,
    ) -> Option<Reserved> {
        let id = self.head_id.load(Relaxed);
        let (state, copy) = self.desc_read(id);
        if state != DescState::Committed || copy.caller != u64::from(caller.0) {
            return None;
        }
        let d = self.desc(id)?;
        // ORD(desc_reopen_last:A): pairs with _prb_commit:B; the record is
        // ours again before we read its length and data.
        d.state_var
            .compare_exchange(sv(id, COMMITTED), sv(id, RESERVED), SeqCst, Relaxed)
            .ok()?;
        let info = self.info(id)?;
        let packed = info.packed.load(Relaxed);
        let len = (packed & 0xffff) as usize;
        if info.caller.load(Relaxed) != u64::from(caller.0) || len + extra > max {
            // Give it back as it was; a newer record may exist by now.
            self.commit_id(arch, id);
            return None;
        }
        let (begin, next) = (d.begin.load(Relaxed), d.next.load(Relaxed));
        let placed = if dataless(begin, next) {
            self.data_alloc(arch, id, len + extra)
        } else {
            self.data_realloc(arch, id, begin, next, len, len + extra)
        };
        let Some((begin, next)) = placed else {
            self.commit_id(arch, id);
            return None;
        };
        d.begin.store(begin, Relaxed);
        d.next.store(next, Relaxed);
        let Some((word, space)) = self.get_data(begin, next) else {
            self.commit_id(arch, id);
            return None;
        };
        Some(Reserved {
            id,
            text_word: Some(word),
            space: space as usize,
            len,
        })
    }

    /// Grow the newest block in place (it must still be the newest).
    fn data_realloc<A: Arch>(
        &self,
        arch: &A,
        id: u64,
        begin: u64,
        next: u64,
        old_len: usize,
        new_len: usize,
    ) -> Option<(u64, u64)> {
        let size = Self::blk_size(new_len);
        if size > self.data_size() / 2 {
            return None;
        }
        let head = self.head_lpos.load(Relaxed);
        if head != next {
            return None;
        }
        // A block that wrapped stays where it is, so measure from where its
        // text really starts.
        let new_next = if self.is_wrapped(begin, next) {
            (self.wraps(next.wrapping_sub(1)) << self.size_bits).wrapping_add(size)
        } else {
            self.next_lpos(begin, size)
        };
        if new_next.wrapping_sub(next) as i64 <= 0 {
            return Some((begin, next));
        }
        if !self.data_push_tail(new_next.wrapping_sub(self.data_size())) {
            return None;
        }
        // ORD(data_realloc:A): as data_alloc:A, fence included.
        self.head_lpos
            .compare_exchange(next, new_next, SeqCst, Relaxed)
            .ok()?;
        fence(Release);
        if !self.is_wrapped(begin, next) && self.is_wrapped(begin, new_next) {
            // The grown block no longer fits before the end: move the text
            // to the start, behind a fresh id word.
            let (from, _) = self.get_data(begin, next)?;
            let words = old_len.div_ceil(8);
            for i in 0..words {
                let w = self.data.get(from + i).map_or(0, |w| w.load(Relaxed));
                if let Some(dst) = self.data.get(1 + i) {
                    dst.store(w, Relaxed);
                }
            }
            self.write_ids(id, begin, new_next);
        }
        arch.point(point::PRB_DATA_ALLOCATED);
        Some((begin, new_next))
    }

    // ------------------------------------------------------------------
    // Readers.

    /// The oldest sequence number the ring may still hold.
    pub fn first_seq(&self) -> u64 {
        loop {
            let id = self.tail_id.load(Relaxed);
            let (state, d) = self.desc_read(id);
            if matches!(state, DescState::Finalized | DescState::Reusable) {
                return d.seq;
            }
            // ORD(prb_first_seq:C): pairs with desc_reserve:D.
            fence(Acquire);
        }
    }

    fn read_finalized(&self, id: u64, seq: u64) -> Result<DescCopy, ReadError> {
        let (state, d) = self.desc_read(id);
        if !matches!(state, DescState::Finalized | DescState::Reusable) || d.seq != seq {
            return Err(ReadError::Invalid);
        }
        if state == DescState::Reusable || (d.begin == FAILED_LPOS && d.next == FAILED_LPOS) {
            return Err(ReadError::NoEnt);
        }
        Ok(d)
    }

    /// Read record `seq` into `text`: copied, then validated again, so a
    /// record recycled during the copy is never returned.
    pub fn read<A: Arch, const N: usize>(
        &self,
        arch: &A,
        seq: u64,
        text: &mut TextBuf<N>,
    ) -> Result<ReadRecord, ReadError> {
        let id = self
            .desc(seq)
            .map_or(0, |d| d.state_var.load(Relaxed) & ID_MASK);
        let d = self.read_finalized(id, seq)?;
        let info = self.info(id).ok_or(ReadError::Invalid)?;
        let packed = info.packed.load(Relaxed);
        let ts_ns = info.ts_ns.load(Relaxed);
        let text_len = (packed & 0xffff) as usize;
        text.clear();
        if !dataless(d.begin, d.next) {
            let (word, space) = self.get_data(d.begin, d.next).ok_or(ReadError::Invalid)?;
            let len = text_len.min(space as usize);
            self.copy_out(word, len, text);
        }
        arch.point(point::PRB_READ_COPIED);
        // Re-validate: anything copied while the record was being recycled
        // is discarded.
        self.read_finalized(id, seq)?;
        Ok(ReadRecord {
            seq,
            meta: unpack(packed, ts_ns, d.caller),
        })
    }

    /// Whether a reader at `seq` would find something: a record (possibly
    /// one whose data is lost) or a gap to skip. False when `seq` is not
    /// finalized yet.
    pub fn has_next(&self, seq: u64) -> bool {
        if seq < self.first_seq() {
            return true;
        }
        let id = self
            .desc(seq)
            .map_or(0, |d| d.state_var.load(Relaxed) & ID_MASK);
        !matches!(self.read_finalized(id, seq), Err(ReadError::Invalid))
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

    /// The first readable record at or after `*seq`; `*seq` is left on it.
    /// `None` when the next record is not finalized yet (or none exists).
    pub fn read_valid<A: Arch, const N: usize>(
        &self,
        arch: &A,
        seq: &mut u64,
        text: &mut TextBuf<N>,
    ) -> Option<ReadRecord> {
        loop {
            match self.read(arch, *seq, text) {
                Ok(r) => return Some(r),
                Err(e) => {
                    let first = self.first_seq();
                    if *seq < first {
                        *seq = first;
                    } else if e == ReadError::NoEnt {
                        *seq += 1;
                    } else {
                        return None;
                    }
                }
            }
        }
    }

    fn copy_out<const N: usize>(&self, word: usize, len: usize, text: &mut TextBuf<N>) {
        let mut left = len;
        let mut i = word;
        while left > 0 {
            let w = self
                .data
                .get(i)
                .map_or(0, |w| w.load(Relaxed))
                .to_le_bytes();
            let n = left.min(8);
            text.push_bytes(w.get(..n).unwrap_or(&[]));
            left -= n;
            i += 1;
        }
    }
}

impl Reserved {
    /// Room for text, in bytes, including what is already there.
    pub fn space(&self) -> usize {
        self.space
    }

    /// Bytes already in the record (after `reserve_in_last`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the record has no text yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `bytes` (as much as fits) and set the metadata; the text
    /// length becomes what is stored.
    pub fn write(&mut self, ring: &Ring, bytes: &[u8], meta: &Meta) {
        let n = bytes.len().min(self.space.saturating_sub(self.len));
        if let Some(word) = self.text_word {
            let mut src = bytes.get(..n).unwrap_or(&[]);
            let mut at = self.len;
            // Only this writer owns the block, so a partial word (where an
            // extension starts, or where the text ends) can be read,
            // patched and stored back.
            let patch = |at: usize, part: &[u8]| {
                if let Some(cell) = ring.data.get(word + at / 8) {
                    let mut b = cell.load(Relaxed).to_le_bytes();
                    let off = at % 8;
                    if let Some(dst) = b.get_mut(off..off + part.len()) {
                        dst.copy_from_slice(part);
                    }
                    cell.store(u64::from_le_bytes(b), Relaxed);
                }
            };
            if !at.is_multiple_of(8) {
                let take = (8 - at % 8).min(src.len());
                patch(at, src.get(..take).unwrap_or(&[]));
                src = src.get(take..).unwrap_or(&[]);
                at += take;
            }
            let mut words = src.chunks_exact(8);
            for chunk in &mut words {
                if let (Some(cell), Ok(b)) =
                    (ring.data.get(word + at / 8), <[u8; 8]>::try_from(chunk))
                {
                    cell.store(u64::from_le_bytes(b), Relaxed);
                }
                at += 8;
            }
            let rest = words.remainder();
            if !rest.is_empty() {
                patch(at, rest);
                at += rest.len();
            }
            self.len = at;
        }
        if let Some(info) = ring.info(self.id) {
            ring.set_info(info, meta, self.len);
        }
    }
}

fn pack(meta: &Meta, text_len: usize) -> u64 {
    (text_len as u64 & 0xffff)
        | (meta.level as u64) << 16
        | u64::from(meta.cont) << 19
        | u64::from(meta.context.level()) << 20
        | (meta.cpu as u64 & 0xffff) << 32
}

fn unpack(packed: u64, ts_ns: u64, caller: u64) -> Meta {
    Meta {
        ts_ns,
        cpu: ((packed >> 32) & 0xffff) as usize,
        context: Context::from_level(((packed >> 20) & 3) as u8),
        caller: CallerId(caller as u32),
        level: Level::from_u8(((packed >> 16) & 7) as u8),
        cont: (packed >> 19) & 1 == 1,
    }
}
