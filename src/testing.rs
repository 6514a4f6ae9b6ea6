//! A fake [`Arch`] for unit tests and benchmarks of the kernel side: one
//! CPU per instance, a counter for a clock, no signals.
//!
//! It is not a simulation of interrupts. Code that must really be
//! interrupted runs on the `printk-sim` machine.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::arch::{Arch, Frame, IrqFlags, LockKey, WaitTicket};
use crate::context::Context;
use crate::point::Point;

/// A hook run when the fake passes an armed point.
pub type PointHook = fn(&FakeArch, Point);

/// The fake machine.
#[derive(Debug)]
pub struct FakeArch {
    cpu: usize,
    nr_cpus: usize,
    /// The context word; tests may set it.
    pub preempt_count: AtomicU32,
    irqs_off: AtomicBool,
    clock: AtomicU64,
    /// How many times `irq_work_queue` was called.
    pub irq_work_raised: AtomicU64,
    /// Spins a wait gets before it is broken (a fake has no watchdog).
    pub spin_budget: u64,
    /// How many waits were broken.
    pub waits_broken: AtomicU64,
    spins: AtomicU64,
    hook: Option<(Point, PointHook)>,
    hook_fired: AtomicBool,
    real_clock: Option<std::time::Instant>,
    held: crate::held::Held,
    /// Whether lockdep keeps its held-lock stack here.
    lockdep: bool,
    /// The panic CPU, `usize::MAX` for none.
    panic_cpu: AtomicUsize,
}

impl FakeArch {
    /// CPU `cpu` of `nr_cpus`, in task context, interrupts on.
    pub fn new(cpu: usize, nr_cpus: usize) -> FakeArch {
        FakeArch {
            cpu,
            nr_cpus,
            preempt_count: AtomicU32::new(0),
            irqs_off: AtomicBool::new(false),
            clock: AtomicU64::new(0),
            irq_work_raised: AtomicU64::new(0),
            spin_budget: 1000,
            waits_broken: AtomicU64::new(0),
            spins: AtomicU64::new(0),
            hook: None,
            hook_fired: AtomicBool::new(false),
            real_clock: None,
            held: crate::held::Held::default(),
            lockdep: true,
            panic_cpu: AtomicUsize::new(usize::MAX),
        }
    }

    /// Read the host's monotonic clock instead of the counter, for tests
    /// in which two threads must really wait for each other.
    pub fn with_real_clock(mut self) -> FakeArch {
        self.real_clock = Some(std::time::Instant::now());
        self
    }

    /// No held-lock stack for lockdep (`lockdep_held()` is `None`), as on
    /// a thread that is no CPU: what the bookkeeping costs, measured.
    pub fn without_lockdep(mut self) -> FakeArch {
        self.lockdep = false;
        self
    }

    /// Make `cpu` the CPU in `panic()` as this fake sees it (`None`: no
    /// panic), as if that CPU had just won the kernel's `panic_cpu`. Through
    /// `&self`, so a test may start a panic while another thread uses the
    /// fake. SeqCst, so the threads of a test agree on when it began.
    pub fn set_panic_cpu(&self, cpu: Option<usize>) {
        self.panic_cpu
            .store(cpu.unwrap_or(usize::MAX), Ordering::SeqCst);
    }

    /// Run `hook` the first time `point` is passed.
    pub fn with_hook(mut self, point: Point, hook: PointHook) -> FakeArch {
        self.hook = Some((point, hook));
        self
    }
}

impl Arch for FakeArch {
    #[inline]
    fn this_cpu(&self) -> usize {
        self.cpu
    }
    #[inline]
    fn nr_cpus(&self) -> usize {
        self.nr_cpus
    }
    #[inline]
    fn preempt_count(&self) -> u32 {
        self.preempt_count.load(Ordering::Relaxed)
    }
    #[inline]
    fn irqs_disabled(&self) -> bool {
        self.irqs_off.load(Ordering::Relaxed)
    }
    #[inline]
    fn local_irq_save(&self) -> IrqFlags {
        // A load and a store, as `pushf; cli` is no locked instruction: only
        // this CPU writes its flag, and an interrupt that comes between
        // the two puts back what it found before it returns.
        let was_disabled = self.irqs_off.load(Ordering::Relaxed);
        self.irqs_off.store(true, Ordering::Relaxed);
        IrqFlags { was_disabled }
    }
    #[inline]
    fn local_irq_restore(&self, flags: IrqFlags) {
        self.irqs_off.store(flags.was_disabled, Ordering::Relaxed);
    }
    fn irq_work_queue(&self) {
        self.irq_work_raised.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    fn now_ns(&self) -> u64 {
        match self.real_clock {
            Some(t0) => t0.elapsed().as_nanos() as u64,
            None => self.clock.fetch_add(1000, Ordering::Relaxed),
        }
    }
    fn delay_ns(&self, ns: u64) {
        self.clock.fetch_add(ns, Ordering::Relaxed);
    }
    #[inline]
    fn task_pid(&self) -> u32 {
        100 + self.cpu as u32
    }
    #[inline]
    fn point(&self, point: Point) {
        if let Some((p, hook)) = self.hook {
            if p == point && !self.hook_fired.swap(true, Ordering::Relaxed) {
                hook(self, point);
            }
        }
    }
    fn wait_begin(&self, lock: LockKey) -> WaitTicket {
        self.spins.store(0, Ordering::Relaxed);
        WaitTicket {
            cpu: self.cpu,
            context: Context::from_preempt_count(self.preempt_count()),
            seq: 0,
            name: lock.name,
        }
    }
    fn wait_should_abort(&self, ticket: &WaitTicket) -> bool {
        let _ = ticket;
        if self.spins.fetch_add(1, Ordering::Relaxed) + 1 >= self.spin_budget {
            self.waits_broken.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }
    fn wait_end(&self, _ticket: WaitTicket) {}
    #[inline]
    fn push_frame(&self, _frame: &'static Frame) {}
    #[inline]
    fn pop_frame(&self) {}
    fn panic_cpu(&self) -> Option<usize> {
        let cpu = self.panic_cpu.load(Ordering::SeqCst);
        (cpu != usize::MAX).then_some(cpu)
    }
    fn lockdep_held(&self) -> Option<&crate::held::Held> {
        self.lockdep.then_some(&self.held)
    }
}
