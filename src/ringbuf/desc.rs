//! The descriptor ring: each record's state word, its text block's
//! logical positions and its metadata; reserving a descriptor, pushing the
//! tail, finalizing (the kernel's `desc_reserve()`, `desc_push_tail()`,
//! `desc_make_final()`, `desc_read()`).

use super::*;

impl Ring {
    pub(super) fn desc(&self, id: u64) -> Option<&Desc> {
        self.descs.get((id & self.desc_mask) as usize)
    }

    pub(super) fn info(&self, id: u64) -> Option<&Info> {
        self.infos.get((id & self.desc_mask) as usize)
    }

    // ------------------------------------------------------------------
    // Reading descriptors.

    /// Copy descriptor `id`, validated against its state word before and
    /// after the copy. The copy is only trustworthy for the returned state.
    /// `with_info`: also its sequence number and caller (readers); the
    /// writers' tail pushes need only the positions, and skip the info's
    /// cache line, as the kernel's callers pass no `seq_out` or
    /// `caller_id_out`.
    pub(super) fn desc_read(&self, id: u64, with_info: bool) -> (DescState, DescCopy) {
        let Some(d) = self.desc(id) else {
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
        let mut copy = DescCopy {
            begin: d.begin.load(Relaxed),
            next: d.next.load(Relaxed),
            ..DescCopy::default()
        };
        if let Some(info) = self.info(id).filter(|_| with_info) {
            copy.seq = info.seq.load(Relaxed);
            copy.caller = info.caller.load(Relaxed);
        }
        // ORD(desc_read:D): pairs with desc_reserve:F and data_alloc:A; a
        // copy that saw a new writer's stores sees its state below.
        fence(Acquire);
        // ORD(desc_read:E)
        let after = d.state_var.load(Relaxed);
        (state_of(id, after), copy)
    }

    /// Finalized → reusable.
    pub(super) fn desc_make_reusable(&self, id: u64) {
        if let Some(d) = self.desc(id) {
            // ORD(desc_make_reusable:A): relaxed; ordered by the tail pushes
            // that follow (data_push_tail:D, desc_push_tail:B).
            let _ =
                d.state_var
                    .compare_exchange(sv(id, FINALIZED), sv(id, REUSABLE), Relaxed, Relaxed);
        }
    }

    // ------------------------------------------------------------------
    // Descriptors.

    /// Move the descriptor tail past `tail_id`, recycling it.
    pub(super) fn desc_push_tail(&self, tail_id: u64) -> bool {
        let (state, d) = self.desc_read(tail_id, false);
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
        let (next_state, _) = self.desc_read(next_id, false);
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
    pub(super) fn desc_reserve<A: Arch>(&self, arch: &A) -> Option<u64> {
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
        // ORD(desc_reserve:E): Acquire, so that the slot's recycling (and
        // whatever was ordered before it) happens before our stores to it.
        let old = d.state_var.load(Acquire);
        if old != 0 && state_of(self.prev_wrap(id), old) != DescState::Reusable {
            // Should never happen: the slot is not the reusable previous wrap.
            return None;
        }
        // ORD(desc_reserve:F): pairs with desc_read:D, and (Release:
        // whatever this writer saw before moving the head, data and
        // descriptor tails pushed included) with data_push_tail:B,
        // desc_push_tail:C and prb_first_seq:C in a context that reads this
        // state. A store where the kernel has a cmpxchg that its own "ABA
        // Issues" note says a set would do (an extra check for 32-bit ids;
        // ours are 62 bits): having moved the head to `id`, this writer is
        // the only one that can change the slot now. Every other
        // compare-and-swap on a state word expects a state this word cannot
        // hold: FINALIZED or COMMITTED of the previous wrap (it is
        // REUSABLE), or COMMITTED of `id` (not before this writer commits).
        // On x86 a release store is a plain `mov`: the locked instruction
        // is spared.
        d.state_var.store(sv(id, RESERVED), Release);
        // ORD(desc_reserve:G): the kernel's full barrier, as a release
        // fence: every store to the descriptor and its info below comes
        // after the new state, so a reader whose copy saw one of them sees
        // the new state on re-check (pairs with desc_read:D).
        fence(Release);
        Some(id)
    }

    /// committed → finalized, if it still is committed.
    pub(super) fn desc_make_final(&self, id: u64) {
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

    // `#[inline]`, as `write_ids`: called from `Reserved::write`, which is
    // compiled in the caller's crate; out of line it cost a call per record.
    #[inline]
    pub(super) fn set_info(&self, info: &Info, meta: &Meta, text_len: usize) {
        info.ts_ns.store(meta.ts_ns, Relaxed);
        info.caller.store(u64::from(meta.caller.0), Relaxed);
        info.packed.store(pack(meta, text_len), Relaxed);
    }

    /// reserved → `state` (committed or finalized), by the writer that
    /// holds the reservation.
    pub(super) fn commit_state<A: Arch>(&self, arch: &A, id: u64, state: u64) {
        arch.point(point::PRB_BEFORE_COMMIT);
        if let Some(d) = self.desc(id) {
            // ORD(_prb_commit:B): pairs with desc_read:B; every store to
            // the record happens before the new state. A store where the
            // kernel has a cmpxchg (which only WARNs if it fails): while
            // the state is RESERVED, only its writer may change it (every
            // other compare-and-swap expects COMMITTED or FINALIZED), and
            // `Reserved` is consumed by its commit, so no second commit
            // exists. Finalized: a release store, no locked instruction.
            // Committed: SeqCst, for the store-buffering pattern with
            // prb_commit:A (see desc_make_final).
            let order = if state == FINALIZED { Release } else { SeqCst };
            d.state_var.store(sv(id, state), order);
        }
    }
}

pub(super) fn pack(meta: &Meta, text_len: usize) -> u64 {
    (text_len as u64 & 0xffff)
        | (meta.level as u64) << 16
        | u64::from(meta.cont) << 19
        | u64::from(meta.context.level()) << 20
        | (meta.cpu as u64 & 0xffff) << 32
}

pub(super) fn unpack(packed: u64, ts_ns: u64, caller: u64) -> Meta {
    Meta {
        ts_ns,
        cpu: ((packed >> 32) & 0xffff) as usize,
        context: Context::from_level(((packed >> 20) & 3) as u8),
        caller: CallerId(caller as u32),
        level: Level::from_u8(((packed >> 16) & 7) as u8),
        cont: (packed >> 19) & 1 == 1,
    }
}
