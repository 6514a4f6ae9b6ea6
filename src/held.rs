//! The locks each CPU holds, for lockdep's order graph: kept by the
//! architecture (one list per CPU), read and written by the locks.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// How many locks one CPU may hold at once for the order graph (deeper
/// nesting is counted but not tracked).
pub const MAX_HELD: usize = 8;

/// The locks one CPU holds, all its contexts together, innermost last,
/// each with the context it was taken in (an interrupt's locks go on top of
/// those of the context it interrupted, as on the interrupted task's list
/// in the kernel). Changed only by the owning CPU (an interrupt's pushes and
/// pops are balanced before it returns); atomics so the watchdog could read
/// it.
#[derive(Debug, Default)]
pub struct Held {
    depth: AtomicUsize,
    ids: [AtomicUsize; MAX_HELD],
    contexts: [AtomicU8; MAX_HELD],
}

impl Held {
    /// The locks held now in the context at the top of the list,
    /// innermost first, stopping where another context's begin: the ones
    /// `check_prevs_add()` links a new acquisition to (it walks the held
    /// locks back and stops where `irq_context` changes). `context` is the
    /// acquiring context's level; locks of another are never visited.
    pub fn each_in_context(&self, context: u8, mut f: impl FnMut(usize)) {
        let d = self.depth.load(Ordering::Relaxed).min(MAX_HELD);
        for (slot, ctx) in self.ids.iter().zip(&self.contexts).take(d).rev() {
            if ctx.load(Ordering::Relaxed) != context {
                break;
            }
            f(slot.load(Ordering::Relaxed));
        }
    }

    pub(crate) fn push(&self, id: usize, context: u8) {
        let d = self.depth.load(Ordering::Relaxed);
        if let (Some(slot), Some(ctx)) = (self.ids.get(d), self.contexts.get(d)) {
            slot.store(id, Ordering::Relaxed);
            ctx.store(context, Ordering::Relaxed);
        }
        self.depth.store(d + 1, Ordering::Relaxed);
    }

    pub(crate) fn pop(&self, id: usize) {
        let d = self.depth.load(Ordering::Relaxed);
        if d == 0 {
            return;
        }
        if d > MAX_HELD {
            self.depth.store(d - 1, Ordering::Relaxed);
            return;
        }
        // Usually the top; otherwise close the gap it leaves.
        let Some(at) = (0..d).rev().find(|&i| {
            self.ids
                .get(i)
                .is_some_and(|s| s.load(Ordering::Relaxed) == id)
        }) else {
            return;
        };
        for i in at..d - 1 {
            if let (Some(to), Some(from)) = (self.ids.get(i), self.ids.get(i + 1)) {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            if let (Some(to), Some(from)) = (self.contexts.get(i), self.contexts.get(i + 1)) {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        self.depth.store(d - 1, Ordering::Relaxed);
    }
}
