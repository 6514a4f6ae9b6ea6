//! Per-CPU state and the CPU threads.
//!
//! Everything a signal handler may touch is here, allocated before any CPU
//! thread starts, in cache-padded atomics. A CPU thread names itself
//! `cpuN`, installs its own 64 KiB alternate signal stack with a guard page
//! (std's 8 KiB one is too small for an NMI nested in an IRQ, as measured
//! when the machine was built), unblocks the interrupt signals and runs its workload.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::io;

use klog::Context;

use super::irq::set_this_cpu;
use super::stack::ShadowStack;

/// A published wait of one context of one CPU (see `klog::Arch::wait_begin`).
#[derive(Debug, Default)]
pub struct WaitSlot {
    /// Address of the `LockCore` waited for; 0 when not waiting.
    pub(super) lock: AtomicUsize,
    /// When the wait began, ns since the run started.
    pub(super) since_ns: AtomicU64,
    /// The wait's sequence number, unique across the run: the watchdog
    /// breaks this wait, and no later one, by storing it in `abort`.
    pub(super) seq: AtomicU64,
    /// Spins so far.
    pub(super) spins: AtomicU64,
    /// The sequence number of the wait the watchdog broke.
    pub(super) abort: AtomicU64,
}

/// One simulated CPU's state.
#[derive(Debug, Default)]
pub struct Cpu {
    /// Published waits, one per context level.
    pub(super) waits: [WaitSlot; 4],
    /// The context word (`preempt_count` layout).
    pub(super) preempt_count: AtomicU32,
    /// Interrupts soft-disabled.
    pub(super) irqs_off: AtomicBool,
    /// An IRQ arrived while soft-disabled; `local_irq_restore` replays it.
    pub(super) irq_pending: AtomicBool,
    /// A timer tick is waiting to be handled.
    pub(super) tick_pending: AtomicBool,
    /// irq_work is waiting to run.
    pub(super) work_pending: AtomicBool,
    /// irq_work was queued inside the running NMI handler: its IRQ signal
    /// is sent as the handler returns (see `Machine::irq_work_queue`).
    pub(super) raise_on_nmi_exit: AtomicBool,
    /// Latched NMI: source index + 1, 0 when none (hardware latches one).
    pub(super) nmi_pending: AtomicU32,
    /// Timer ticks handled (the kernel's `hrtimer_interrupts`).
    pub(super) heartbeat: AtomicU64,
    /// Timer ticks sent.
    pub(super) ticks_sent: AtomicU64,
    /// Task-context loop iterations (what the soft-lockup detector watches).
    pub(super) progress: AtomicU64,
    /// NMI handlers entered.
    pub(super) nmis: AtomicU64,
    /// IRQ handlers run (not counting deferrals).
    pub(super) irqs: AtomicU64,
    /// `[[irq]]` handler runs (numbers their messages).
    pub(super) irq_actions: AtomicU64,
    /// NMIs not sent because one was already latched.
    pub(super) nmis_latched: AtomicU64,
    /// Kernel thread id, for `tgkill`.
    pub(super) tid: AtomicI32,
    /// Signals may be sent to this CPU.
    pub(super) online: AtomicBool,
    /// The CPU thread has finished.
    pub(super) exited: AtomicBool,
    /// Per-CPU random state for NMI-context workloads (NMIs do not nest).
    pub(super) nmi_rng: AtomicU64,
    /// The same for hardirq-context workloads (IRQs do not nest).
    pub(super) irq_rng: AtomicU64,
    /// Latched `[[irq]]` source: source index + 1, 0 when none.
    pub(super) irq_source: AtomicU32,
    /// The shadow call stack.
    pub(super) stack: ShadowStack,
    /// The panic CPU asked this CPU to stop (`smp_send_stop()`): the next
    /// NMI handler halts instead of returning.
    pub(super) stop_requested: AtomicBool,
    /// Halted in an NMI handler, for good (until the run ends).
    pub(super) stopped: AtomicBool,
    /// The panic's stop NMI is to land when this CPU next passes the
    /// point with this id + 1 (0: none).
    pub(super) stop_at: AtomicU32,
    /// The locks this CPU holds, for lockdep's order graph.
    pub(super) held: klog::lockdep::Held,
    /// Stuck on purpose (a `[[task]]` stall or an at-point `hold`): what
    /// the RCU stall detector reports.
    pub(super) stalled: AtomicBool,
    /// An all-CPU backtrace's NMI waiting for this CPU to pass the
    /// source's `land_at` point: source index + 1, 0 when none.
    pub(super) deferred_nmi: AtomicU32,
    /// An all-CPU backtrace request is waiting for this CPU's answer: its
    /// NMI count when the request was sent, plus one; 0 when none.
    pub(super) backtrace_mark: AtomicU64,
}

impl Cpu {
    /// The wait slot of `context`.
    pub fn wait(&self, context: Context) -> &WaitSlot {
        let [task, softirq, hardirq, nmi] = &self.waits;
        match context {
            Context::Task => task,
            Context::Softirq => softirq,
            Context::Hardirq => hardirq,
            Context::Nmi => nmi,
        }
    }

    /// Abort the wait of `context` if it is still wait number `seq` (the
    /// watchdog breaking a deadlock: the waiter gives up at its next spin).
    pub fn abort_wait(&self, context: Context, seq: u64) {
        self.wait(context).abort.store(seq, Ordering::Release);
    }

    /// The innermost context of this CPU right now.
    pub fn context(&self) -> Context {
        Context::from_preempt_count(self.preempt_count.load(Ordering::Relaxed))
    }

    /// What the watchdog reads of this CPU each period, in one place.
    pub fn sample(&self) -> CpuSample {
        let pc = self.preempt_count.load(Ordering::Relaxed);
        CpuSample {
            active: [
                true,
                pc & klog::context::SOFTIRQ_MASK != 0,
                klog::context::hardirq_depth(pc) > 0,
                klog::context::nmi_depth(pc) > 0,
            ],
            waits: self.waits.each_ref().map(|slot| {
                let lock = slot.lock.load(Ordering::Acquire);
                // Acquire on the lock word: since and seq were stored before it.
                (lock != 0).then(|| WaitSample {
                    lock,
                    since: slot.since_ns.load(Ordering::Relaxed),
                    seq: slot.seq.load(Ordering::Relaxed),
                    spins: slot.spins.load(Ordering::Relaxed),
                })
            }),
            heartbeat: self.heartbeat.load(Ordering::Relaxed),
            ticks_sent: self.ticks_sent.load(Ordering::Relaxed),
            progress: self.progress.load(Ordering::Relaxed),
            online: self.online.load(Ordering::Acquire),
        }
    }

    /// The CPU thread has returned.
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// The CPU takes interrupts and can be found locked up (not halted).
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Its shadow call stack, outermost frame first.
    pub fn trace(&self) -> super::stack::Trace {
        self.stack.trace()
    }

    /// The task loop went round once more (what the soft-lockup detector
    /// watches).
    pub fn made_progress(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// A stall begins in task context (`preempt_off`: with preemption off,
    /// which the context word shows); remote stack walks see it.
    pub fn begin_stall(&self, preempt_off: bool) {
        self.stalled.store(true, Ordering::Relaxed);
        if preempt_off {
            self.preempt_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The stall begun by [`Cpu::begin_stall`] ends.
    pub fn end_stall(&self, preempt_off: bool) {
        self.stalled.store(false, Ordering::Relaxed);
        if preempt_off {
            self.preempt_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Forget an IRQ that arrived while interrupts were off (the run ended
    /// before they came back on).
    pub fn drop_pending_irq(&self) {
        self.irq_pending.store(false, Ordering::Relaxed);
    }

    /// Seed the random state of this CPU's NMI and IRQ handlers.
    pub fn seed_rngs(&self, nmi: u64, irq: u64) {
        self.nmi_rng.store(nmi, Ordering::Relaxed);
        self.irq_rng.store(irq, Ordering::Relaxed);
    }

    /// Number this `[[irq]]` handler run (from 1); it also tells a CPU
    /// waiting at a point that the handler has begun.
    pub fn next_irq_action(&self) -> u64 {
        self.irq_actions.fetch_add(1, Ordering::Release) + 1
    }

    /// NMI handlers entered so far.
    pub fn nmis_handled(&self) -> u64 {
        self.nmis.load(Ordering::Relaxed)
    }

    /// Call `f` with each frame of the shadow stack, outermost first.
    pub fn for_each_frame(&self, f: impl FnMut(&'static str)) {
        let _depth = self.stack.for_each(f);
    }

    /// The random state of this CPU's handlers for `context` (NMIs and IRQs
    /// do not nest, so each has its own).
    pub fn rng_state(&self, context: Context) -> &AtomicU64 {
        if context == Context::Nmi {
            &self.nmi_rng
        } else {
            &self.irq_rng
        }
    }
}

/// A published wait, as the watchdog sampled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitSample {
    /// The lock's id.
    pub lock: usize,
    /// When the wait began, ns since the run started.
    pub since: u64,
    /// The wait's sequence number.
    pub seq: u64,
    /// Spins so far.
    pub spins: u64,
}

/// A CPU as the watchdog sampled it.
#[derive(Clone, Copy, Debug)]
pub struct CpuSample {
    /// Per context level (task, softirq, hardirq, NMI): whether it is
    /// active (task always is).
    pub active: [bool; 4],
    /// Per context level: its published wait.
    pub waits: [Option<WaitSample>; 4],
    /// Timer ticks handled.
    pub heartbeat: u64,
    /// Timer ticks sent to it.
    pub ticks_sent: u64,
    /// Rounds of its task loop.
    pub progress: u64,
    /// Not halted.
    pub online: bool,
}

/// A thread's own alternate signal stack with a guard page below it.
pub(crate) struct AltStack {
    base: *mut libc::c_void,
    len: usize,
}

const ALT_STACK: usize = 64 * 1024;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

impl AltStack {
    /// Map and install a 64 KiB alternate stack for the calling thread.
    pub(crate) fn install() -> io::Result<AltStack> {
        let guard = page_size();
        let len = guard + ALT_STACK;
        // SAFETY: an anonymous private mapping with no address hint.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = AltStack { base, len };
        // SAFETY: the first page lies inside the mapping just made.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let ss = libc::stack_t {
            // SAFETY: base + guard is inside the mapping.
            ss_sp: unsafe { base.cast::<u8>().add(guard) }.cast(),
            ss_flags: 0,
            ss_size: ALT_STACK,
        };
        // SAFETY: `ss` describes memory that stays mapped until `drop`,
        // which disables the alternate stack before unmapping it.
        if unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let ss = libc::stack_t {
            ss_sp: core::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disabling the calling thread's alternate stack; the caller
        // has blocked the interrupt signals, so no handler is on it.
        unsafe { libc::sigaltstack(&ss, core::ptr::null_mut()) };
        // SAFETY: unmapping exactly the mapping made in `install`, no longer
        // in use as a signal stack.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// The kernel thread id of the calling thread.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The body of CPU thread `cpu`: set up, wait for the others, run the
/// workload, tear down. Returns an error only if setup failed, in which case
/// the CPU never went online.
pub(crate) fn cpu_thread(m: &super::Machine, cpu: usize) -> io::Result<()> {
    let Some(c) = m.cpus.get(cpu) else {
        return Ok(());
    };
    set_this_cpu(Some(cpu));
    c.tid.store(gettid(), Ordering::Relaxed);
    let alt = AltStack::install();
    if alt.is_ok() {
        super::irq::unblock_interrupts();
        c.online.store(true, Ordering::Release);
    }
    m.gate_wait();
    let alt = match alt {
        Ok(alt) => alt,
        Err(e) => {
            set_this_cpu(None);
            c.exited.store(true, Ordering::Release);
            return Err(e);
        }
    };
    m.workload.task_loop(m, cpu);
    m.end_turn(cpu);
    // Go offline: no new signals are sent; then wait for the sender to stop
    // before masking, so nothing it sent is left half-delivered.
    c.online.store(false, Ordering::Release);
    while !m.senders_stopped.load(Ordering::Acquire) {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    super::irq::block_interrupts();
    drop(alt);
    set_this_cpu(None);
    c.exited.store(true, Ordering::Release);
    Ok(())
}
