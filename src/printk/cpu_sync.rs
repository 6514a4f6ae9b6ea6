//! `printk_cpu_sync` (5.14's `printk_cpu_lock`, renamed in 5.19): a
//! CPU-reentrant spinning lock that keeps one CPU's multi-line dump
//! (`dump_stack()`, an NMI backtrace, a lockup report) from interleaving
//! with another CPU's. It is not a printk lock: printk inside it stores as
//! usual; it only orders whole dumps.
//!
//! `printk_cpu_sync_get_irqsave()` disables interrupts and tries to make
//! this CPU the owner (or, if it already is, nests one level deeper: an NMI
//! backtrace that lands inside this CPU's own dump); on failure it puts
//! interrupts back as they were and waits until the owner lets go, then
//! tries again (lib/nmi_backtrace.c at 55d6af1d6688, 5.15; the interrupt
//! handling of f5343321b71a, 5.19). The owner lives in a lock word, so the
//! watchdog sees who a waiter waits for.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::arch::{Arch, IrqFlags};
use crate::lock::{Broken, LockCore};

/// The lock. One per design that has it (`lockless`, `nbcon`).
pub struct CpuSync {
    core: LockCore,
    /// How deep the owner has nested beyond its first acquisition.
    nested: AtomicU32,
}

impl CpuSync {
    /// A free lock.
    pub const fn new() -> CpuSync {
        CpuSync {
            core: LockCore::new("printk_cpu_sync"),
            nested: AtomicU32::new(0),
        }
    }

    /// What the watchdog reads.
    pub fn core(&self) -> &LockCore {
        &self.core
    }

    /// `printk_cpu_sync_get_irqsave()`: own the lock (nesting if this CPU
    /// already does), interrupts off; the flags to give back to
    /// [`CpuSync::put`]. `Err` if the wait was broken (interrupts as they
    /// were).
    pub fn get<A: Arch>(&self, arch: &A) -> Result<IrqFlags, Broken> {
        loop {
            let flags = arch.local_irq_save();
            if self.try_get(arch) {
                return Ok(flags);
            }
            arch.local_irq_restore(flags);
            self.wait(arch)?;
        }
    }

    /// `printk_cpu_sync_put_irqrestore()`.
    pub fn put<A: Arch>(&self, arch: &A, flags: IrqFlags) {
        let nested = self.nested.load(Ordering::Relaxed);
        if nested > 0 {
            self.nested.store(nested - 1, Ordering::Relaxed);
        } else {
            self.core.release();
        }
        arch.local_irq_restore(flags);
    }

    fn try_get<A: Arch>(&self, arch: &A) -> bool {
        if self.core.owner().is_some_and(|o| o.cpu == arch.this_cpu()) {
            // Only the owning CPU touches `nested`, with interrupts off
            // (an NMI on it nests and unnests before returning).
            self.nested.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.core.try_acquire(arch, None)
    }

    /// `__printk_cpu_sync_wait()`: spin until the lock is free.
    fn wait<A: Arch>(&self, arch: &A) -> Result<(), Broken> {
        let ticket = arch.wait_begin(self.core.key());
        while self.core.owner().is_some() {
            core::hint::spin_loop();
            if arch.wait_should_abort(&ticket) {
                arch.wait_end(ticket);
                return Err(Broken);
            }
        }
        arch.wait_end(ticket);
        Ok(())
    }
}

impl Default for CpuSync {
    fn default() -> Self {
        CpuSync::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::NMI_OFFSET;
    use crate::testing::FakeArch;

    #[test]
    fn the_owner_nests_and_another_cpu_waits() {
        let sync = CpuSync::new();
        let a0 = FakeArch::new(0, 2);
        let a1 = FakeArch::new(1, 2);
        let outer = sync.get(&a0).unwrap();
        // An NMI on the owning CPU nests.
        a0.preempt_count.store(NMI_OFFSET, Ordering::Relaxed);
        let inner = sync.get(&a0).unwrap();
        sync.put(&a0, inner);
        a0.preempt_count.store(0, Ordering::Relaxed);
        assert_eq!(sync.core().owner().map(|o| o.cpu), Some(0));
        // Another CPU spins until its budget is spent: the FakeArch breaks
        // the wait, as the watchdog would.
        assert_eq!(sync.get(&a1).err(), Some(Broken));
        sync.put(&a0, outer);
        assert_eq!(sync.core().owner(), None);
        let f = sync.get(&a1).unwrap();
        assert_eq!(sync.core().owner().map(|o| o.cpu), Some(1));
        sync.put(&a1, f);
    }
}
