//! 4.16's console hand-off (`console_owner`, `console_waiter`), kept by every
//! kernel that printed to legacy consoles from the printk caller since:
//! `legacy_handoff` (4.16) and `lockless` (5.x/6.x) share it.
//!
//! The CPU printing in `console_unlock()` marks itself the console owner
//! around each record's write (`console_lock_spinning_enable()`) and, after
//! it, looks for a waiter (`console_lock_spinning_disable_and_check()`). A
//! printk caller that fails `console_trylock()` calls
//! `console_trylock_spinning()`: if there is an owner on another CPU and no
//! waiter yet, it becomes the waiter and spins, interrupts off, until the
//! owner clears the flag, which hands `console_sem` over without an `up()`.
//! Each caller prints about its share instead of one CPU printing everybody's
//! records for as long as the others keep printing.
//!
//! `console_owner_lock` (a raw spinlock) serialises the two flags. Nothing
//! here is reached from NMI context: no kernel that had the hand-off let an
//! NMI's printk touch the console.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::arch::{Arch, Frame};
use crate::lock::{LockCore, RawSpinLock, Semaphore};

const NO_CPU: usize = usize::MAX;

static TRYLOCK_SPINNING: Frame = Frame("console_trylock_spinning");

/// The hand-off state.
pub(crate) struct Handoff {
    owner_lock: RawSpinLock<()>,
    owner: AtomicUsize,
    waiter: AtomicBool,
    handed_over: AtomicU64,
    /// 5.19's "printk: disable optimistic spin during panic": no spinning
    /// once a panic has begun (the owner may have been stopped).
    no_spin_in_panic: bool,
}

impl Handoff {
    /// The hand-off of a kernel that did (`no_spin_in_panic`, 5.19 on) or
    /// did not (4.16–5.18) refuse to spin during a panic.
    pub(crate) fn new(no_spin_in_panic: bool) -> Handoff {
        Handoff {
            owner_lock: RawSpinLock::new("console_owner_lock", ()),
            owner: AtomicUsize::new(NO_CPU),
            waiter: AtomicBool::new(false),
            handed_over: AtomicU64::new(0),
            no_spin_in_panic,
        }
    }

    /// `console_owner_lock`, for the watchdog and lockdep.
    pub(crate) fn lock(&self) -> &LockCore {
        self.owner_lock.core()
    }

    /// How many times `console_sem` went from the printing CPU to a waiter.
    pub(crate) fn handovers(&self) -> u64 {
        self.handed_over.load(Ordering::Relaxed)
    }

    /// `console_trylock_spinning()` after a failed `console_trylock()`: if
    /// another CPU is writing to the console and nobody waits yet, become
    /// the waiter and spin, interrupts off, until it hands `console_sem`
    /// over. True if we now hold `console_sem`.
    pub(crate) fn trylock_spinning<A: Arch>(&self, arch: &A, sem: &Semaphore) -> bool {
        if self.no_spin_in_panic && arch.panic_cpu().is_some() {
            return false;
        }
        let flags = arch.local_irq_save();
        let me = arch.this_cpu();
        let Ok(guard) = self.owner_lock.lock(arch, None) else {
            arch.local_irq_restore(flags);
            return false;
        };
        let owner = self.owner.load(Ordering::Relaxed);
        let spin = !self.waiter.load(Ordering::Relaxed) && owner != NO_CPU && owner != me;
        if spin {
            self.waiter.store(true, Ordering::Relaxed);
        }
        drop(guard);
        if !spin {
            arch.local_irq_restore(flags);
            return false;
        }
        arch.push_frame(&TRYLOCK_SPINNING);
        // The wait is for console_sem, which the owner holds: that is the
        // edge the watchdog needs.
        let ticket = arch.wait_begin(sem.core().key());
        let mut got = true;
        // Acquire pairs with the Release clearing in `disable_and_check`:
        // the owner's console state is ours once we see the flag cleared.
        while self.waiter.load(Ordering::Acquire) {
            core::hint::spin_loop();
            if arch.wait_should_abort(&ticket) {
                // Withdraw; if the owner cleared the flag first, the
                // semaphore is ours after all.
                got = self
                    .waiter
                    .compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed)
                    .is_err();
                break;
            }
        }
        arch.wait_end(ticket);
        if got {
            sem.take_handed(arch);
        }
        arch.pop_frame();
        arch.local_irq_restore(flags);
        got
    }

    /// `console_lock_spinning_enable()`: this CPU is about to write a
    /// record to the console.
    pub(crate) fn enable<A: Arch>(&self, arch: &A) {
        if let Ok(_guard) = self.owner_lock.lock(arch, None) {
            self.owner.store(arch.this_cpu(), Ordering::Relaxed);
        }
    }

    /// `console_lock_spinning_disable_and_check()`: the write is done; if a
    /// waiter spins, hand `console_sem` to it (true: we no longer hold it).
    pub(crate) fn disable_and_check<A: Arch>(&self, arch: &A) -> bool {
        let waiter = match self.owner_lock.lock(arch, None) {
            Ok(_guard) => {
                self.owner.store(NO_CPU, Ordering::Relaxed);
                self.waiter.load(Ordering::Relaxed)
            }
            Err(_) => false,
        };
        // A waiter may have withdrawn after we looked: only a successful
        // clear hands over.
        let handed = waiter
            && self
                .waiter
                .compare_exchange(true, false, Ordering::Release, Ordering::Relaxed)
                .is_ok();
        if handed {
            self.handed_over.fetch_add(1, Ordering::Relaxed);
        }
        handed
    }
}
