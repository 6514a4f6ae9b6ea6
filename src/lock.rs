//! Locks of the kernel side: `RawSpinLock` and the `Semaphore` used for
//! `console_sem`.
//!
//! Both keep their owner in the lock word itself, so there is never a
//! "locked, owner unknown" window for the watchdog to misread. A contended
//! acquisition publishes its wait through [`Arch::wait_begin`], spins, and
//! asks [`Arch::wait_should_abort`] on every spin; when the watchdog breaks a
//! deadlock the acquisition returns [`Broken`] and the caller backs out.
//!
//! Owner word (`u64`):
//!
//! ```text
//!  63        48 47          32 31     18 17   16 15            0
//! +------------+--------------+---------+-------+---------------+
//! |  (unused)  | point id + 1 | (unused)|  ctx  |    cpu + 1    |
//! +------------+--------------+---------+-------+---------------+
//! ```
//!
//! | word                | meaning                                    |
//! |---------------------|--------------------------------------------|
//! | `0`                 | free                                       |
//! | `cpu+1 != 0`        | held by `cpu` in context `ctx` (0..=3)     |
//! | `point id + 1 == 0` | acquired at no named point                 |
//!
//! Nothing here allocates, and every method is callable from a signal
//! handler.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{Arch, IrqFlags, LockKey};
use crate::lockdep::{self, ClassState, LockClass};

use crate::point::{self, Point};

/// The watchdog broke this wait (or the run ended): back out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broken;

pub use crate::owner::Owner;

/// The part of every lock the watchdog reads: a name and the owner word;
/// and the lock's lockdep class state, which lockdep owns.
#[derive(Debug)]
pub struct LockCore {
    name: &'static str,
    owner: AtomicU64,
    dep: ClassState,
}

impl LockCore {
    /// A free lock called `name`; the name is also its lockdep class.
    pub const fn new(name: &'static str) -> LockCore {
        LockCore {
            name,
            owner: AtomicU64::new(0),
            dep: ClassState::new(),
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The current owner, if held.
    pub fn owner(&self) -> Option<Owner> {
        Owner::decode(self.owner.load(Ordering::Relaxed))
    }

    /// The lock as the architecture sees it: id and name.
    pub fn key(&self) -> LockKey {
        LockKey {
            id: self.id(),
            name: self.name,
        }
    }

    /// An identity for the wait registry: the lock's address.
    pub fn id(&self) -> usize {
        self as *const LockCore as usize
    }

    pub(crate) fn try_acquire<A: Arch>(&self, arch: &A, at: Option<Point>) -> bool {
        let tag = Owner::encode(arch.this_cpu(), arch.context(), at);
        // Acquire pairs with the Release in `release`: the previous holder's
        // critical section happens before ours.
        self.owner
            .compare_exchange(0, tag, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn spin_acquire<A: Arch>(&self, arch: &A, at: Option<Point>) -> Result<(), Broken> {
        if self.try_acquire(arch, at) {
            return Ok(());
        }
        let ticket = arch.wait_begin(self.key());
        loop {
            core::hint::spin_loop();
            if self.owner.load(Ordering::Relaxed) == 0 && self.try_acquire(arch, at) {
                arch.wait_end(ticket);
                return Ok(());
            }
            if arch.wait_should_abort(&ticket) {
                arch.wait_end(ticket);
                return Err(Broken);
            }
        }
    }

    pub(crate) fn release(&self) {
        // Release pairs with the Acquire in `try_acquire`.
        self.owner.store(0, Ordering::Release);
    }
}

impl LockClass for LockCore {
    fn class_name(&self) -> &'static str {
        self.name
    }
    fn class_id(&self) -> usize {
        self.id()
    }
    fn class_state(&self) -> &ClassState {
        &self.dep
    }
}

/// `raw_spinlock_t` protecting a `T`: spins, never sleeps, and is therefore
/// the lock an NMI deadlocks on when it lands on the holder.
pub struct RawSpinLock<T> {
    core: LockCore,
    data: UnsafeCell<T>,
}

// SAFETY: the data is only reachable through a guard, and a guard exists only
// while the owner word names its holder, so at most one thread (or one
// context of one thread) accesses `data` at a time; `T: Send` lets it move
// between the threads that take turns.
unsafe impl<T: Send> Sync for RawSpinLock<T> {}

impl<T> RawSpinLock<T> {
    /// A free lock named `name` around `data`.
    pub const fn new(name: &'static str, data: T) -> RawSpinLock<T> {
        RawSpinLock {
            core: LockCore::new(name),
            data: UnsafeCell::new(data),
        }
    }

    /// What the watchdog reads.
    pub fn core(&self) -> &LockCore {
        &self.core
    }

    /// `raw_spin_lock()`: spin until acquired or broken. `at` names the point
    /// the holder will be reported at.
    pub fn lock<'a, A: Arch>(
        &'a self,
        arch: &'a A,
        at: Option<Point>,
    ) -> Result<SpinGuard<'a, T>, Broken> {
        self.core.dep.note_use(arch, at, false);
        self.core.dep.note_edges(arch, self.core.id(), at);
        self.core.spin_acquire(arch, at)?;
        lockdep::acquired(arch, self.core.id());
        arch.lock_event(self.core.key(), true);
        Ok(SpinGuard { lock: self, arch })
    }

    /// `raw_spin_lock_irqsave()`: disable interrupts, then spin. On
    /// [`Broken`] the interrupts are already restored.
    pub fn lock_irqsave<'a, A: Arch>(
        &'a self,
        arch: &'a A,
        at: Option<Point>,
    ) -> Result<(SpinGuard<'a, T>, IrqFlags), Broken> {
        let flags = arch.local_irq_save();
        match self.lock(arch, at) {
            Ok(guard) => Ok((guard, flags)),
            Err(broken) => {
                arch.local_irq_restore(flags);
                Err(broken)
            }
        }
    }

    /// `raw_spin_trylock()`: one attempt, never spins.
    pub fn try_lock<'a, A: Arch>(
        &'a self,
        arch: &'a A,
        at: Option<Point>,
    ) -> Option<SpinGuard<'a, T>> {
        self.core.dep.note_use(arch, at, true);
        // `then`, not `then_some`: a guard built eagerly for a failed
        // attempt would be dropped at once and release the holder's lock.
        self.core.try_acquire(arch, at).then(|| {
            lockdep::acquired(arch, self.core.id());
            arch.lock_event(self.core.key(), true);
            SpinGuard { lock: self, arch }
        })
    }

    /// `raw_spin_lock_init()` on a lock somebody may hold: free again,
    /// whoever had it. The kernel's last resort in a panic
    /// (`zap_locks()`, `printk_safe_flush_on_panic()`), and only sound
    /// because the holder never runs again: it has been stopped.
    pub fn reinit(&self) {
        self.core.release();
    }

    /// Access without locking, for the after-the-run readers.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// Proof of holding a [`RawSpinLock`]; releases it when dropped.
pub struct SpinGuard<'a, T> {
    lock: &'a RawSpinLock<T>,
    arch: &'a dyn Arch,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this thread holds the lock, and
        // `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.core.release();
        if let Some(held) = self.arch.lockdep_held() {
            held.pop(self.lock.core.id());
        }
        self.arch.lock_event(self.lock.core.key(), false);
    }
}

/// A binary semaphore used as `console_sem`, as `kernel/locking/semaphore.c`
/// has it: the count is guarded by the semaphore's own raw spinlock
/// (`sem->lock`), which `down_trylock()` and `up()` take with interrupts
/// off. An NMI that lands inside either and reaches the semaphore spins on
/// that lock forever. `down_trylock()` never waits for the count, and
/// `up()` may be called by whoever holds the semaphore, including a CPU it
/// was handed to.
pub struct Semaphore {
    core: LockCore,
    lock: RawSpinLock<()>,
}

impl Semaphore {
    /// A free semaphore named `name` whose internal spinlock is the lockdep
    /// class `lock_name` (the kernel calls console_sem's
    /// `(console_sem).lock`).
    pub const fn new(name: &'static str, lock_name: &'static str) -> Semaphore {
        Semaphore {
            core: LockCore::new(name),
            lock: RawSpinLock::new(lock_name, ()),
        }
    }

    /// What the watchdog reads: who holds the semaphore.
    pub fn core(&self) -> &LockCore {
        &self.core
    }

    /// What the watchdog reads of `sem->lock`.
    pub fn lock_core(&self) -> &LockCore {
        self.lock.core()
    }

    /// `down_trylock()`: under `sem->lock`, take the semaphore if it is
    /// free; true on success. False too if the wait for `sem->lock` was
    /// broken.
    pub fn try_down<A: Arch>(&self, arch: &A, at: Option<Point>) -> bool {
        let Ok((guard, flags)) = self.lock.lock_irqsave(arch, None) else {
            return false;
        };
        arch.point(point::DOWN_TRYLOCK_SEM_LOCKED);
        self.core.dep.note_use(arch, at, true);
        let got = self.core.try_acquire(arch, at);
        drop(guard);
        arch.local_irq_restore(flags);
        got
    }

    /// Take over a semaphore its holder handed to us without releasing it
    /// (4.16's console hand-off): from now on the owner word names us.
    pub fn take_handed<A: Arch>(&self, arch: &A) {
        let tag = Owner::encode(arch.this_cpu(), arch.context(), None);
        self.core.owner.store(tag, Ordering::Relaxed);
    }

    /// `up()`: under `sem->lock`, release it. If the wait for `sem->lock`
    /// is broken the semaphore is released all the same (the run is being
    /// torn down; nobody would ever take it again otherwise).
    pub fn up<A: Arch>(&self, arch: &A) {
        let held = self.lock.lock_irqsave(arch, None);
        if held.is_ok() {
            arch.point(point::UP_SEM_LOCKED);
        }
        self.core.release();
        if let Ok((guard, flags)) = held {
            drop(guard);
            arch.local_irq_restore(flags);
        }
    }

    /// `sema_init()` on a semaphore somebody holds: free again, as
    /// 3.x's `zap_locks()` did to console_sem when printk recursed during
    /// an oops.
    pub fn reinit(&self) {
        self.lock.reinit();
        self.core.release();
    }

    /// Who holds it.
    pub fn owner(&self) -> Option<Owner> {
        self.core.owner()
    }
}

impl core::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Semaphore")
            .field("core", &self.core)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;

    #[test]
    fn a_failed_trylock_leaves_the_holder_holding() {
        let lock = RawSpinLock::new("l", 0u32);
        let a0 = crate::testing::FakeArch::new(0, 2);
        let a1 = crate::testing::FakeArch::new(1, 2);
        let held = lock.lock(&a0, None).unwrap();
        assert!(lock.try_lock(&a1, None).is_none());
        assert_eq!(lock.core().owner().map(|o| o.cpu), Some(0));
        drop(held);
        assert_eq!(lock.core().owner(), None);
        assert!(lock.try_lock(&a1, None).is_some());
    }

    #[test]
    fn owner_word_round_trips() {
        let w = Owner::encode(5, Context::Nmi, Some(point::CONSOLE_UNLOCK_LOGBUF_LOCKED));
        assert_eq!(
            Owner::decode(w),
            Some(Owner {
                cpu: 5,
                context: Context::Nmi,
                point: Some(point::CONSOLE_UNLOCK_LOGBUF_LOCKED)
            })
        );
        assert_eq!(Owner::decode(0), None);
        let w = Owner::encode(0, Context::Task, None);
        assert_eq!(Owner::decode(w).map(|o| o.point), Some(None));
    }
}
