//! The `Arch` trait: everything the kernel side may ask of the machine.
//!
//! `klog` is written against this trait the way kernel code is written
//! against its architecture. The simulator implements it with OS threads and
//! signals; tests implement it with a fake. Every method may be called from
//! a signal handler and must therefore be async-signal-safe in every
//! implementation: atomics, pre-allocated memory, raw system calls.

use crate::context::{self, Context};
use crate::point::Point;

/// What `local_irq_save()` returns: whether interrupts were already off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "interrupts stay off until the flags are restored"]
pub struct IrqFlags {
    /// Interrupts were disabled before the save.
    pub was_disabled: bool,
}

/// A frame of a shadow call stack: a static function name.
#[derive(Debug)]
pub struct Frame(pub &'static str);

/// A lock as the architecture sees it: an id (its address, unique while
/// it lives) and its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockKey {
    /// The lock's id.
    pub id: usize,
    /// The lock's name (its lockdep class).
    pub name: &'static str,
}

/// A published wait: which CPU, in which context, and the wait's sequence
/// number, which the watchdog uses to abort exactly this wait and no later
/// one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTicket {
    /// The waiting CPU (a thread that is no CPU, such as a printer
    /// thread, gives the number it goes by, which is `nr_cpus` or more).
    pub cpu: usize,
    /// The waiting context.
    pub context: Context,
    /// Unique per wait across the run.
    pub seq: u64,
    /// The name of the lock waited for, for the wait's end in a trace.
    pub name: &'static str,
}

/// The machine as the kernel side sees it.
pub trait Arch: Sync {
    /// The calling CPU's number.
    fn this_cpu(&self) -> usize;

    /// How many CPUs the machine has.
    fn nr_cpus(&self) -> usize;

    /// The calling CPU's context word (see [`crate::context`]).
    fn preempt_count(&self) -> u32;

    /// The calling CPU's innermost context.
    fn context(&self) -> Context {
        Context::from_preempt_count(self.preempt_count())
    }

    /// True inside an NMI handler.
    fn in_nmi(&self) -> bool {
        context::in_nmi(self.preempt_count())
    }

    /// True in task context.
    fn in_task(&self) -> bool {
        context::in_task(self.preempt_count())
    }

    /// True while the calling CPU has interrupts disabled.
    fn irqs_disabled(&self) -> bool;

    /// `local_irq_save()`: disable interrupts (not NMIs) on this CPU.
    fn local_irq_save(&self) -> IrqFlags;

    /// `local_irq_restore()`: restore the state `flags` describes; an
    /// interrupt that arrived meanwhile runs now.
    fn local_irq_restore(&self, flags: IrqFlags);

    /// `irq_work_queue()`: ask for [`crate::Printk::irq_work`] to run on this
    /// CPU in hardirq context as soon as interrupts are enabled.
    fn irq_work_queue(&self);

    /// Nanoseconds since the run started (`local_clock()`).
    fn now_ns(&self) -> u64;

    /// Busy-wait `ns` nanoseconds, the way a polled UART driver does.
    fn delay_ns(&self, ns: u64);

    /// The pid shown as `T<pid>` in the caller id of task-context records.
    fn task_pid(&self) -> u32;

    /// Pass the injection point `point`. Unarmed, this costs one relaxed
    /// load; armed, it may raise an NMI right here.
    fn point(&self, point: Point);

    /// Publish "this CPU, in this context, waits for `lock`" for the
    /// watchdog. Called once per contended acquisition.
    fn wait_begin(&self, lock: LockKey) -> WaitTicket;

    /// Called on every spin of a published wait: true when the watchdog (or
    /// the end of the run) has broken this wait and the caller must back out.
    fn wait_should_abort(&self, ticket: &WaitTicket) -> bool;

    /// Withdraw a published wait.
    fn wait_end(&self, ticket: WaitTicket);

    /// Push a frame on this CPU's shadow call stack.
    fn push_frame(&self, frame: &'static Frame);

    /// Pop the frame pushed last.
    fn pop_frame(&self);

    /// The CPU that is in `panic()`, if any (the kernel's `panic_cpu`).
    fn panic_cpu(&self) -> Option<usize> {
        None
    }

    /// `num_online_cpus()`: CPUs not stopped (a CPU that `smp_send_stop()`
    /// halted is offline, as x86's `stop_this_cpu()` marks it).
    fn num_online_cpus(&self) -> usize {
        self.nr_cpus()
    }

    /// Wake the design's printer thread, if the machine runs one. Called
    /// from irq_work, so it must be as signal-safe as everything else.
    fn wake_printer(&self) {}

    /// Copy the calling CPU's shadow call stack, outermost first, into
    /// `out`; the number of frames copied. Signal-safe (no allocation).
    fn stack(&self, out: &mut [Option<&'static Frame>]) -> usize {
        let _ = out;
        0
    }

    /// The calling CPU's list of held locks for lockdep's order graph, if
    /// the machine keeps one.
    fn lockdep_held(&self) -> Option<&crate::held::Held> {
        None
    }

    /// The calling CPU took (`held`) or released a spinlock: for timelines.
    fn lock_event(&self, lock: LockKey, held: bool) {
        let _ = (lock, held);
    }
}

/// An `Arch` for kernel-side code that runs outside any machine: reading a
/// buffer after a run, model checks. CPU 0, task context, interrupts on, a
/// clock that stands still, no points; any spinning wait is broken at once
/// (nothing else could ever release it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Arch for Quiet {
    #[inline]
    fn this_cpu(&self) -> usize {
        0
    }
    #[inline]
    fn nr_cpus(&self) -> usize {
        1
    }
    #[inline]
    fn preempt_count(&self) -> u32 {
        0
    }
    #[inline]
    fn irqs_disabled(&self) -> bool {
        false
    }
    #[inline]
    fn local_irq_save(&self) -> IrqFlags {
        IrqFlags {
            was_disabled: false,
        }
    }
    #[inline]
    fn local_irq_restore(&self, _flags: IrqFlags) {}
    #[inline]
    fn irq_work_queue(&self) {}
    #[inline]
    fn now_ns(&self) -> u64 {
        0
    }
    #[inline]
    fn delay_ns(&self, _ns: u64) {}
    #[inline]
    fn task_pid(&self) -> u32 {
        0
    }
    #[inline]
    fn point(&self, _point: Point) {}
    #[inline]
    fn wait_begin(&self, lock: LockKey) -> WaitTicket {
        WaitTicket {
            cpu: 0,
            context: Context::Task,
            seq: 0,
            name: lock.name,
        }
    }
    #[inline]
    fn wait_should_abort(&self, _ticket: &WaitTicket) -> bool {
        true
    }
    #[inline]
    fn wait_end(&self, _ticket: WaitTicket) {}
    #[inline]
    fn push_frame(&self, _frame: &'static Frame) {}
    #[inline]
    fn pop_frame(&self) {}
}
