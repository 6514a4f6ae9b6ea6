//! Reading: a record by sequence number into the caller's buffer, the
//! oldest valid one, whether more are coming (the kernel's
//! `prb_read_valid()`, `prb_first_valid_seq()`).

use super::desc::unpack;
use super::*;

impl Ring {
    // ------------------------------------------------------------------
    // Readers.

    /// The oldest sequence number the ring may still hold.
    pub fn first_seq(&self) -> u64 {
        loop {
            let id = self.tail_id.load(Relaxed);
            let (state, d) = self.desc_read(id, true);
            if matches!(state, DescState::Finalized | DescState::Reusable) {
                return d.seq;
            }
            // ORD(prb_first_seq:C): pairs with desc_reserve:D.
            fence(Acquire);
        }
    }

    pub(super) fn read_finalized(&self, id: u64, seq: u64) -> Result<DescCopy, ReadError> {
        let (state, d) = self.desc_read(id, true);
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

    pub(super) fn copy_out<const N: usize>(&self, word: usize, len: usize, text: &mut TextBuf<N>) {
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
