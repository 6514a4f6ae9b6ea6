//! Interrupts as real signals: the NMI and IRQ handlers, soft interrupt
//! masking, irq_work, and sending signals to CPU threads.
//!
//! The NMI is `SIGRTMIN+1`, the IRQ `SIGRTMIN+2` (computed at run time:
//! glibc keeps the first real-time signals for itself). Both are installed
//! with raw `sigaction` (`SA_SIGINFO | SA_ONSTACK | SA_RESTART`) because nix
//! has no real-time signals and signal-hook sets neither `SA_ONSTACK` nor a
//! mask. The NMI's `sa_mask` holds the IRQ signal, so no IRQ runs inside an
//! NMI; the NMI signal itself stays blocked while its handler runs, so NMIs
//! do not nest. Nothing ever blocks the NMI signal on a running CPU.
//!
//! `local_irq_save()` masks the IRQ lazily, as PowerPC's soft masking does:
//! it sets a per-CPU flag; an IRQ that arrives while the flag is set is
//! recorded as pending and replayed by `local_irq_restore()`.
//!
//! # What a handler can reach, and why each is async-signal-safe
//!
//! * `on_nmi`/`on_irq`: save and restore `errno`; read the const
//!   thread-local CPU number and the `CURRENT` machine pointer.
//! * `Machine::nmi_entry`, `irq_entry`, `do_irq`: atomics on the
//!   pre-allocated per-CPU state.
//! * The workload's interrupt actions and the design's `printk`/`irq_work`: `klog`
//!   code, which allocates nothing, formats into stack buffers and only
//!   spins on its own abortable locks.
//! * `Arch` methods of the machine: atomics, `clock_gettime` (vDSO),
//!   `tgkill`.
//!
//! No allocation, no std or parking_lot lock, no printing, no panic: slice
//! accesses use `get`, arithmetic saturates.

use core::cell::Cell;
use core::sync::atomic::{compiler_fence, AtomicPtr, Ordering};
use std::io;

use klog::context::{in_nmi, HARDIRQ_OFFSET, NMI_OFFSET};
use klog::Frame;

use super::Machine;

thread_local! {
    /// The CPU this thread is, `usize::MAX` for threads that are not CPUs.
    /// Const-initialised and `Drop`-free, so a signal handler may read it.
    static THIS_CPU: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The CPU the calling thread is, if it is one.
pub fn this_cpu() -> Option<usize> {
    let cpu = THIS_CPU.with(Cell::get);
    (cpu != usize::MAX).then_some(cpu)
}

pub(crate) fn set_this_cpu(cpu: Option<usize>) {
    THIS_CPU.with(|c| c.set(cpu.unwrap_or(usize::MAX)));
}

/// The machine whose CPUs the handlers serve; null between runs.
static CURRENT: AtomicPtr<Machine> = AtomicPtr::new(core::ptr::null_mut());

static NMI_FRAME: Frame = Frame("nmi_handler");
static IRQ_FRAME: Frame = Frame("irq_handler");

/// The NMI signal number (`SIGRTMIN+1`).
pub fn nmi_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

/// The IRQ signal number (`SIGRTMIN+2`).
pub fn irq_signal() -> libc::c_int {
    libc::SIGRTMIN() + 2
}

fn sigset(sigs: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in sigs {
        // SAFETY: `set` is valid and `s` a real signal number.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    set
}

fn set_mask(how: libc::c_int) {
    let set = sigset(&[nmi_signal(), irq_signal()]);
    // SAFETY: changing the calling thread's mask with a valid set.
    unsafe { libc::pthread_sigmask(how, &set, core::ptr::null_mut()) };
}

/// Block both interrupt signals in the calling thread (every thread that is
/// not a CPU, and a CPU thread before it exits).
pub fn block_interrupts() {
    set_mask(libc::SIG_BLOCK);
}

/// Unblock both interrupt signals in the calling CPU thread, and block
/// SIGINT and SIGTERM there, so that Ctrl-C reaches a thread that is not a
/// simulated CPU.
pub(crate) fn unblock_interrupts() {
    set_mask(libc::SIG_UNBLOCK);
    let set = sigset(&[libc::SIGINT, libc::SIGTERM]);
    // SAFETY: changing the calling thread's mask with a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) };
}

/// The installed handlers; dropping this puts the previous ones back.
pub struct Handlers {
    old: [(libc::c_int, libc::sigaction); 2],
}

impl Handlers {
    /// Install the NMI and IRQ handlers for `machine` and make it current.
    ///
    /// # Safety
    ///
    /// `machine` must stay alive, and must not move, until the returned
    /// value is dropped, and the caller must drop it only after every CPU
    /// thread of `machine` has stopped.
    pub(crate) unsafe fn install(machine: &Machine) -> io::Result<Handlers> {
        let nmi = nmi_signal();
        let irq = irq_signal();
        CURRENT.store(machine as *const Machine as *mut Machine, Ordering::Release);
        let install =
            |sig: libc::c_int,
             handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
             mask: &[libc::c_int]|
             -> io::Result<libc::sigaction> {
                // SAFETY: sigaction is plain data; every field we rely on is set.
                let mut new: libc::sigaction = unsafe { core::mem::zeroed() };
                new.sa_sigaction = handler as usize;
                new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
                new.sa_mask = sigset(mask);
                // SAFETY: as above.
                let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
                // SAFETY: valid pointers to initialised sigaction structs.
                if unsafe { libc::sigaction(sig, &new, &mut old) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(old)
            };
        // All or nothing: if the second handler cannot be installed, the
        // first is put back and the machine is no longer current, so no
        // handler is left pointing at a machine about to be dropped.
        let old_nmi = install(nmi, on_nmi, &[irq]).inspect_err(|_| {
            CURRENT.store(core::ptr::null_mut(), Ordering::Release);
        })?;
        let old_irq = install(irq, on_irq, &[]).inspect_err(|_| {
            // SAFETY: restoring the action saved just above.
            unsafe { libc::sigaction(nmi, &old_nmi, core::ptr::null_mut()) };
            CURRENT.store(core::ptr::null_mut(), Ordering::Release);
        })?;
        Ok(Handlers {
            old: [(nmi, old_nmi), (irq, old_irq)],
        })
    }
}

impl Drop for Handlers {
    fn drop(&mut self) {
        for (sig, old) in &self.old {
            // SAFETY: restoring the action saved by `install`.
            unsafe { libc::sigaction(*sig, old, core::ptr::null_mut()) };
        }
        CURRENT.store(core::ptr::null_mut(), Ordering::Release);
    }
}

/// The current machine and the calling CPU, if this thread is one.
fn current() -> Option<(&'static Machine, usize)> {
    let cpu = this_cpu()?;
    let m = CURRENT.load(Ordering::Acquire);
    // SAFETY: `Handlers::install`'s contract keeps the machine alive and in
    // place while it is current, and CPU threads only run while it is.
    let m = unsafe { m.as_ref() }?;
    Some((m, cpu))
}

fn errno() -> *mut libc::c_int {
    // SAFETY: returns the calling thread's errno slot; always valid.
    unsafe { libc::__errno_location() }
}

extern "C" fn on_nmi(_sig: libc::c_int, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    // SAFETY: errno() points at this thread's errno.
    let saved = unsafe { *errno() };
    if let Some((m, cpu)) = current() {
        m.nmi_entry(cpu);
    }
    // SAFETY: as above.
    unsafe { *errno() = saved };
}

extern "C" fn on_irq(_sig: libc::c_int, _info: *mut libc::siginfo_t, _uc: *mut libc::c_void) {
    // SAFETY: errno() points at this thread's errno.
    let saved = unsafe { *errno() };
    if let Some((m, cpu)) = current() {
        m.irq_entry(cpu);
    }
    // SAFETY: as above.
    unsafe { *errno() = saved };
}

impl Machine {
    /// Send `sig` to CPU `cpu` if it is online.
    pub(crate) fn send(&self, cpu: usize, sig: libc::c_int) -> bool {
        let Some(c) = self.cpus.get(cpu) else {
            return false;
        };
        if !c.online.load(Ordering::Acquire) {
            return false;
        }
        let tid = c.tid.load(Ordering::Relaxed);
        // SAFETY: tgkill with our own pid and a thread id of ours.
        unsafe { libc::syscall(libc::SYS_tgkill, self.pid, tid, sig) == 0 }
    }

    /// Raise source `source`'s interrupt (NMI or IRQ) on `cpu`.
    pub(crate) fn raise(&self, cpu: usize, source: usize) -> bool {
        match self.inject.source(source).map(|s| s.interrupt) {
            Some(super::Interrupt::Irq) => self.raise_irq_source(cpu, source),
            _ => self.raise_nmi(cpu, source),
        }
    }

    /// Raise an IRQ from `[[irq]]` source `source` on `cpu`; like the NMI,
    /// one is latched per CPU.
    fn raise_irq_source(&self, cpu: usize, source: usize) -> bool {
        let Some(c) = self.cpus.get(cpu) else {
            return false;
        };
        let tag = u32::try_from(source).unwrap_or(u32::MAX - 1) + 1;
        if c.irq_source
            .compare_exchange(0, tag, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.send(cpu, irq_signal())
    }

    /// Raise an NMI from source `source` on `cpu`. Like hardware, at most
    /// one NMI is latched: if one is pending already, this one merges.
    pub(crate) fn raise_nmi(&self, cpu: usize, source: usize) -> bool {
        let Some(c) = self.cpus.get(cpu) else {
            return false;
        };
        if !c.online.load(Ordering::Acquire) {
            return false;
        }
        let tag = u32::try_from(source).unwrap_or(u32::MAX - 1) + 1;
        if c.nmi_pending
            .compare_exchange(0, tag, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            c.nmis_latched.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.send(cpu, nmi_signal())
    }

    /// The NMI handler proper.
    fn nmi_entry(&self, cpu: usize) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        let source = c.nmi_pending.swap(0, Ordering::AcqRel);
        c.preempt_count
            .fetch_add(NMI_OFFSET + HARDIRQ_OFFSET, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        c.nmis.fetch_add(1, Ordering::Release);
        self.trace(super::trace::Kind::Enter(klog::Context::Nmi));
        c.stack.push(&NMI_FRAME);
        self.design.nmi_enter(self);
        if c.stop_requested.load(Ordering::Acquire) {
            // smp_send_stop(): this handler never returns while the run lasts.
            self.halt(c, cpu);
        } else if let Some(source) = (source as usize).checked_sub(1) {
            self.workload.interrupt(self, cpu, source);
        }
        self.design.nmi_exit(self);
        c.stack.pop();
        self.trace(super::trace::Kind::Exit(klog::Context::Nmi));
        compiler_fence(Ordering::SeqCst);
        c.preempt_count
            .fetch_sub(NMI_OFFSET + HARDIRQ_OFFSET, Ordering::Relaxed);
        if c.raise_on_nmi_exit.swap(false, Ordering::Relaxed) {
            // irq_work queued in this NMI: its IRQ, held by the handler's
            // signal mask, runs once the handler returns.
            self.send(cpu, irq_signal());
        }
    }

    /// The IRQ signal handler: run now, or record it for
    /// `local_irq_restore()` if interrupts are soft-disabled.
    fn irq_entry(&self, cpu: usize) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        if c.irqs_off.load(Ordering::Relaxed) {
            c.irq_pending.store(true, Ordering::Relaxed);
            return;
        }
        self.do_irq(cpu);
    }

    /// Hardirq context: handle the tick and irq_work until none is pending.
    pub(crate) fn do_irq(&self, cpu: usize) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        c.irqs_off.store(true, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        c.preempt_count.fetch_add(HARDIRQ_OFFSET, Ordering::Relaxed);
        c.irqs.fetch_add(1, Ordering::Relaxed);
        self.trace(super::trace::Kind::Enter(klog::Context::Hardirq));
        c.stack.push(&IRQ_FRAME);
        loop {
            let mut handled = false;
            if c.tick_pending.swap(false, Ordering::AcqRel) {
                c.heartbeat.fetch_add(1, Ordering::Relaxed);
                handled = true;
            }
            if c.work_pending.swap(false, Ordering::AcqRel) {
                self.design.irq_work(self);
                handled = true;
            }
            let source = c.irq_source.swap(0, Ordering::AcqRel);
            if let Some(source) = (source as usize).checked_sub(1) {
                self.workload.interrupt(self, cpu, source);
                handled = true;
            }
            if !handled {
                break;
            }
        }
        c.stack.pop();
        self.trace(super::trace::Kind::Exit(klog::Context::Hardirq));
        c.preempt_count.fetch_sub(HARDIRQ_OFFSET, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        c.irqs_off.store(false, Ordering::Relaxed);
    }

    /// `local_irq_restore()` to enabled: replay what arrived meanwhile.
    pub(crate) fn irq_enable(&self, cpu: usize) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        compiler_fence(Ordering::SeqCst);
        c.irqs_off.store(false, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        if in_nmi(c.preempt_count.load(Ordering::Relaxed)) {
            // No IRQ runs inside an NMI; the interrupted context replays.
            return;
        }
        while c.irq_pending.swap(false, Ordering::Relaxed) {
            self.do_irq(cpu);
        }
    }
}

/// The calling CPU's context word, if this thread is a CPU of the current
/// machine.
pub(crate) fn current_cpu_context() -> Option<u32> {
    let (m, cpu) = current()?;
    Some(m.cpus.get(cpu)?.preempt_count.load(Ordering::Relaxed))
}
