//! Writing a record: reserve, fill through the [`Reserved`] handle,
//! commit or finalize; reopen the caller's last record to extend it (the
//! kernel's `prb_reserve()`, `prb_commit()`, `prb_final_commit()`,
//! `prb_reserve_in_last()`).

use super::*;

impl Ring {
    // ------------------------------------------------------------------
    // Writers.

    /// Reserve a record with room for `text` bytes. On failure nothing is
    /// left reserved, the reason is counted and returned; a record whose data
    /// could not be allocated still exists, without text, so readers see
    /// the loss.
    // Always inlined, as `write`: the `Reserved` handle (48 bytes) is then
    // kept in registers from reserve to commit. Returned through memory
    // and read back field by field in `write`, it cost 10 ns of a 44 ns
    // record on this kind of machine (BENCHMARKS.md).
    #[inline(always)]
    pub fn reserve<A: Arch>(
        &self,
        arch: &A,
        text: usize,
        meta: &Meta,
    ) -> Result<Reserved<'_>, Fail> {
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
        let index = id & self.desc_mask;
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
                ring: self,
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
                    ring: self,
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

    /// `prb_commit()` by id: committed, and finalized at once if a newer
    /// record exists (nobody else would finalize it then).
    pub(super) fn commit_id<A: Arch>(&self, arch: &A, id: u64) {
        self.commit_state(arch, id, COMMITTED);
        // ORD(prb_commit:A): pairs with _prb_commit:B via desc_reserve:D: a
        // reservation that did not see our commit is visible here.
        arch.point(point::PRB_BEFORE_FINALIZE);
        if self.head_id.load(SeqCst) != id {
            self.desc_make_final(id);
        }
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
    ) -> Option<Reserved<'_>> {
        let id = self.head_id.load(Relaxed);
        let (state, copy) = self.desc_read(id, true);
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
            ring: self,
            id,
            text_word: Some(word),
            space: space as usize,
            len,
        })
    }
}

/// A reserved record: the writer fills it, then commits it.
#[must_use = "a reservation must be committed"]
pub struct Reserved<'r> {
    /// The ring it is in: the handle borrows it, so it can only be
    /// written and committed there.
    ring: &'r Ring,
    id: u64,
    /// First word of the text in the data ring (None for a record with no
    /// text).
    text_word: Option<usize>,
    /// Bytes of text space.
    space: usize,
    /// Bytes already in the record (for `reserve_in_last`).
    len: usize,
}

impl Reserved<'_> {
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
    #[inline(always)]
    pub fn write(&mut self, bytes: &[u8], meta: &Meta) {
        let ring = self.ring;
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
            // Whole words: the cells looked up once, then one store each.
            let (words, rest) = src.as_chunks::<8>();
            let first = word + at / 8;
            if let Some(cells) = ring.data.get(first..first + words.len()) {
                for (cell, w) in cells.iter().zip(words) {
                    cell.store(u64::from_le_bytes(*w), Relaxed);
                }
            }
            at += 8 * words.len();
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

    /// `prb_commit()`: complete, but the same caller may still extend it.
    /// Finalized at once if a newer record was reserved meanwhile.
    pub fn commit<A: Arch>(self, arch: &A) {
        self.ring.commit_id(arch, self.id);
    }

    /// `prb_final_commit()`: complete and finalized, visible to readers,
    /// never extended.
    pub fn final_commit<A: Arch>(self, arch: &A) {
        self.ring.commit_state(arch, self.id, FINALIZED);
    }
}
