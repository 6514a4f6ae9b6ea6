//! The data ring: text blocks at logical positions, each an id word and
//! the text; allocating a block, pushing the tail past blocks whose
//! descriptors are reusable (the kernel's `data_alloc()`,
//! `data_push_tail()`, `data_make_reusable()`, `data_realloc()`).

use super::*;

impl Ring {
    pub(super) fn prev_wrap(&self, id: u64) -> u64 {
        id.wrapping_sub(self.count()) & ID_MASK
    }

    pub(super) fn wraps(&self, lpos: u64) -> u64 {
        lpos >> self.size_bits
    }

    /// The wrap after `wrap`; wrap numbers are counted modulo
    /// 2^(64 - size_bits), like the positions they come from.
    pub(super) fn next_wrap(&self, wrap: u64) -> u64 {
        wrap.wrapping_add(1) & (u64::MAX >> self.size_bits)
    }

    pub(super) fn word_index(&self, lpos: u64) -> usize {
        ((lpos & self.data_mask) / 8) as usize
    }

    // ------------------------------------------------------------------
    // The data ring.

    /// Whether `lpos` lies before `target` (the tail must move past it).
    pub(super) fn need_more_space(&self, lpos: u64, target: u64) -> bool {
        target.wrapping_sub(lpos).wrapping_sub(1) < self.data_size()
    }

    pub(super) fn is_wrapped(&self, begin: u64, next: u64) -> bool {
        self.wraps(begin) != self.wraps(next.wrapping_sub(1))
    }

    pub(super) fn next_lpos(&self, begin: u64, size: u64) -> u64 {
        let next = begin.wrapping_add(size);
        if !self.is_wrapped(begin, next) {
            return next;
        }
        // Placed whole at the start of the next wrap.
        (self.wraps(begin).wrapping_add(1) << self.size_bits).wrapping_add(size)
    }

    pub(super) fn blk_size(text: usize) -> u64 {
        ID_WORD + (text as u64).div_ceil(8) * 8
    }

    /// The first word of a block's text and its size in bytes.
    pub(super) fn get_data(&self, begin: u64, next: u64) -> Option<(usize, u64)> {
        if dataless(begin, next) || begin & 7 != 0 || next & 7 != 0 {
            return None;
        }
        let (start, size) = if !self.is_wrapped(begin, next) {
            (begin, next.wrapping_sub(begin))
        } else if self.next_wrap(self.wraps(begin)) == self.wraps(next.wrapping_sub(1)) {
            (0, next & self.data_mask)
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
    pub(super) fn data_make_reusable(&self, mut begin: u64, end: u64) -> Option<u64> {
        while self.need_more_space(begin, end) {
            // ORD(data_make_reusable:A): a racy read by design; the
            // descriptor read below validates it.
            let id = self.data.get(self.word_index(begin))?.load(Relaxed);
            // ORD(data_make_reusable:B)
            let (state, d) = self.desc_read(id, false);
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
    pub(super) fn data_push_tail(&self, lpos: u64) -> bool {
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
    pub(super) fn data_alloc<A: Arch>(&self, arch: &A, id: u64, text: usize) -> Option<(u64, u64)> {
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

    // `#[inline]`, as `set_info`: the generic writer that calls it is
    // compiled in the caller's crate, and without the hint the compiler
    // called it out of line there (BENCHMARKS.md, 2026-12-01).
    #[inline]
    pub(super) fn write_ids(&self, id: u64, begin: u64, next: u64) {
        if let Some(w) = self.data.get(self.word_index(begin)) {
            w.store(id, Relaxed);
        }
        if self.is_wrapped(begin, next) {
            if let Some(w) = self.data.first() {
                w.store(id, Relaxed);
            }
        }
    }

    /// Grow the newest block in place (it must still be the newest).
    pub(super) fn data_realloc<A: Arch>(
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
}
