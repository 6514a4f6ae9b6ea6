//! The machine: CPUs as OS threads, interrupts as signals, a timer tick,
//! irq_work, injection points, and the `klog::Arch` implementation that the
//! designs run on.
//!
//! A [`Machine`] is built for one run of one design; everything a handler
//! can touch is allocated in [`Machine::new`], before any CPU starts.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use klog::printk::{DesignConfig, DesignInfo};
use klog::{
    Arch, Context, Frame, IrqFlags, LockCore, LockKey, Point, Printk, RawSpinLock, WaitTicket,
};

use crate::latency::Histogram;

pub mod cpu;
pub mod inject;
pub mod irq;
pub mod panic;
pub mod printer;
pub mod reader;
pub mod stack;
pub mod tick;
pub mod trace;

pub use cpu::Cpu;
pub use inject::{Dump, Injector, Interrupt, NmiAction, NmiSource, Pass, Targets, Trigger};

/// Spins between two host-CPU yields of a waiting simulated CPU.
const YIELD_EVERY: u64 = 256;

/// CLOCK_MONOTONIC in nanoseconds (vDSO; async-signal-safe).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// What the machine needs besides the design and the workload.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Number of CPUs.
    pub nr_cpus: usize,
    /// Timer ticks per second per CPU.
    pub hz: u32,
    /// How long an at-point injection with `wait` waits for its target to
    /// enter the NMI handler before going on.
    pub nmi_wait_limit_ns: u64,
    /// Seed for the machine's own randomness (random NMI sources).
    pub seed: u64,
    /// How long the requester of an all-CPU backtrace waits for the other
    /// CPUs (the kernel's 10 s, scaled).
    pub backtrace_wait_ns: u64,
    /// How long the panic CPU waits for the others to stop (x86's 1 s,
    /// scaled).
    pub stop_wait_ns: u64,
    /// Timeline events kept per CPU for `--trace`/`--svg` (0: no tracing).
    pub trace_capacity: usize,
    /// The scenario's time scale: kernel time is real time divided by it
    /// (jiffies, log timestamps and the kernel's own messages use kernel
    /// time).
    pub time_scale: f64,
}

/// What the CPUs run: each CPU's task loop, and the work of each interrupt
/// source's handler. The machine calls it; the workload module has the one
/// the scenarios describe.
pub trait Work: Send + Sync {
    /// The task-context loop of `cpu`, until the machine stops.
    fn task_loop(&self, m: &Machine, cpu: usize);

    /// The handler's work for interrupt source `source` on `cpu`, in NMI or
    /// hardirq context. Runs in signal context: no allocation, no locks but
    /// klog's, no panics.
    fn interrupt(&self, m: &Machine, cpu: usize, source: usize);
}

/// What a finished run's machine counted.
#[derive(Clone, Debug)]
pub struct MachineStats {
    /// Per CPU: NMI handlers entered.
    pub nmis: Vec<u64>,
    /// Per CPU: NMIs merged into one already pending.
    pub nmis_latched: Vec<u64>,
    /// Per interrupt source: times it fired.
    pub fired: Vec<u64>,
    /// printk latency per context level (task, softirq, hardirq, NMI).
    pub latency: [crate::latency::Summary; 4],
    /// The CPU that panicked, and whether its panic ran to the end.
    pub panic: Option<(usize, bool)>,
    /// Stacks walked by remote dumps.
    pub remote_traces: u64,
    /// Of those, the ones that changed during the walk.
    pub torn_traces: u64,
    /// The log reader: records read, missed, times told it fell behind.
    pub reader: (u64, u64, u64),
}

/// One machine, for one run of one design.
pub struct Machine {
    cpus: Box<[CachePadded<Cpu>]>,
    design: Box<dyn Printk<Machine>>,
    design_info: &'static DesignInfo,
    config: MachineConfig,
    workload: Box<dyn Work>,
    inject: Injector,
    /// CLOCK_MONOTONIC when the CPUs were released.
    base_ns: AtomicU64,
    /// The run is over: workloads return, senders stop.
    stop: AtomicBool,
    /// Every wait gives up now (the end of the run, or `on_deadlock = stop`).
    abort_all: AtomicBool,
    /// The tick/NMI sender thread has finished.
    senders_stopped: AtomicBool,
    wait_seq: AtomicU64,
    /// Threads that reached the start gate.
    ready: AtomicUsize,
    /// The start gate is open.
    go: AtomicBool,
    /// printk latency per context level.
    latency: [Histogram; 4],
    pid: i32,
    /// The CPU in `panic()`, `usize::MAX` for none.
    panic_cpu: AtomicUsize,
    /// The panic CPU finished its last flush.
    panic_done: AtomicBool,
    /// Which halted CPU is running on after the run ended (`usize::MAX`:
    /// none); see [`Machine::halt`].
    resume_turn: AtomicUsize,
    /// The printer thread's futex word: bumped by every wake-up.
    printer_wake: AtomicU32,
    /// `nmi_cpu_backtrace()`'s private lock before 4.19 (used by dumps
    /// with `serialize`).
    backtrace_lock: RawSpinLock<()>,
    /// Stacks walked by a remote dump, and of those, the torn ones.
    remote_traces: AtomicU64,
    torn_traces: AtomicU64,
    /// The log reader's accounts.
    reader: reader::ReaderStats,
    /// Timeline events, when asked for.
    trace: Option<trace::Trace>,
}

static IDLE: Frame = Frame("cpu_idle");

impl Machine {
    /// A machine running `design` under `workload`, with NMI sources
    /// `inject`. An error if `design` cannot be built for this machine (an
    /// external design whose builder is for another `Arch`).
    pub fn new(
        config: MachineConfig,
        design: &'static DesignInfo,
        design_config: &DesignConfig,
        workload: Box<dyn Work>,
        inject: Injector,
    ) -> Result<Machine, String> {
        let trace_capacity = config.trace_capacity;
        let nr_cpus = config.nr_cpus;
        let built = design.build(design_config).ok_or_else(|| {
            format!(
                "design `{}` was not built for the simulator: its builder must be a `printk_sim::lab::Build`",
                design.name
            )
        })?;
        Ok(Machine {
            cpus: (0..config.nr_cpus)
                .map(|_| CachePadded::new(Cpu::default()))
                .collect(),
            design: built,
            design_info: design,
            config,
            workload,
            inject,
            base_ns: AtomicU64::new(mono_ns()),
            stop: AtomicBool::new(false),
            abort_all: AtomicBool::new(false),
            senders_stopped: AtomicBool::new(false),
            wait_seq: AtomicU64::new(0),
            ready: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            latency: core::array::from_fn(|_| Histogram::new()),
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
            panic_cpu: AtomicUsize::new(usize::MAX),
            panic_done: AtomicBool::new(false),
            resume_turn: AtomicUsize::new(usize::MAX),
            printer_wake: AtomicU32::new(0),
            backtrace_lock: RawSpinLock::new("nmi_backtrace_lock", ()),
            remote_traces: AtomicU64::new(0),
            torn_traces: AtomicU64::new(0),
            reader: reader::ReaderStats::default(),
            trace: (trace_capacity > 0).then(|| trace::Trace::new(nr_cpus, trace_capacity)),
        })
    }

    /// The CPUs' state.
    pub fn cpus(&self) -> &[CachePadded<Cpu>] {
        &self.cpus
    }

    /// The run's interrupt sources (what fired, the census).
    pub fn injector(&self) -> &Injector {
        &self.inject
    }

    /// The design's catalogue entry.
    pub fn design_info(&self) -> &'static DesignInfo {
        self.design_info
    }

    /// Interrupt source number `index` of the scenario.
    pub fn source(&self, index: usize) -> Option<&NmiSource> {
        self.inject.source(index)
    }

    /// The design under test.
    pub fn design(&self) -> &dyn Printk<Machine> {
        &*self.design
    }

    /// The design, once the run is over.
    pub fn design_mut(&mut self) -> &mut dyn Printk<Machine> {
        &mut *self.design
    }

    /// Called by each CPU and sender thread when set up: wait until the
    /// gate opens (or the run is abandoned).
    pub(crate) fn gate_wait(&self) {
        self.ready.fetch_add(1, Ordering::AcqRel);
        while !self.go.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Wait until `threads` threads reached the gate (at most `limit`), then
    /// start the run clock at zero and open the gate. False if they did not
    /// all arrive; the gate opens anyway, with the run already stopped.
    pub(crate) fn gate_open(&self, threads: usize, limit: Duration) -> bool {
        let t0 = Instant::now();
        let all = loop {
            if self.ready.load(Ordering::Acquire) >= threads {
                break true;
            }
            if t0.elapsed() > limit {
                break false;
            }
            std::thread::sleep(Duration::from_micros(50));
        };
        if !all {
            self.stop.store(true, Ordering::Release);
            self.abort_all.store(true, Ordering::Release);
        }
        self.base_ns.store(mono_ns(), Ordering::Release);
        self.go.store(true, Ordering::Release);
        all
    }

    fn this(&self) -> Option<(usize, &Cpu)> {
        let cpu = irq::this_cpu()?;
        Some((cpu, self.cpus.get(cpu)?))
    }

    /// What the finished run's machine counted, for its report. Only after
    /// the run.
    pub fn stats(&self) -> MachineStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MachineStats {
            nmis: self.cpus.iter().map(|c| load(&c.nmis)).collect(),
            nmis_latched: self.cpus.iter().map(|c| load(&c.nmis_latched)).collect(),
            fired: (0..self.inject.len())
                .map(|i| self.inject.fired(i))
                .collect(),
            latency: self.latency.each_ref().map(Histogram::summary),
            panic: klog::Arch::panic_cpu(self)
                .map(|cpu| (cpu, self.panic_done.load(Ordering::Acquire))),
            remote_traces: load(&self.remote_traces),
            torn_traces: load(&self.torn_traces),
            reader: (
                load(&self.reader.read),
                load(&self.reader.missed),
                load(&self.reader.overruns),
            ),
        }
    }

    /// The run's timeline, when it was traced: per CPU the events in time
    /// order, the events that did not fit, and the run's end (ns).
    pub fn timeline(&self) -> Option<(Vec<Vec<trace::Event>>, u64, u64)> {
        self.trace.as_ref().map(|t| {
            let names: Vec<&'static str> = self.locks().iter().map(|l| l.name()).collect();
            (t.events(&names), t.lost(), klog::Arch::now_ns(self))
        })
    }

    /// The run is ending: task loops return, senders stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// End the run: task loops return at their next round.
    pub(crate) fn end_run(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// End the run and break every wait now (the hard limit, Ctrl-C,
    /// `on_deadlock = "stop"`).
    pub(crate) fn abort_everything(&self) {
        self.stop.store(true, Ordering::Release);
        self.abort_all.store(true, Ordering::Release);
    }

    /// A printk in context level `level_idx` that began at `since_ns`
    /// returned now: its latency. Signal-safe.
    pub(crate) fn record_latency(&self, level_idx: usize, since_ns: u64) {
        if let Some(h) = self.latency.get(level_idx) {
            h.record(self.now_ns().saturating_sub(since_ns));
        }
    }

    /// CPU `cpu`'s thread could not be started: nothing waits for it.
    pub(crate) fn cpu_never_started(&self, cpu: usize) {
        if let Some(c) = self.cpus.get(cpu) {
            c.exited.store(true, Ordering::Release);
        }
    }

    /// The sender thread could not be started: nothing waits for it.
    pub(crate) fn senders_never_started(&self) {
        self.senders_stopped.store(true, Ordering::Release);
    }

    /// Every lock a CPU may wait for: the design's and the machine's own.
    pub fn locks(&self) -> Vec<&LockCore> {
        let mut locks = self.design.locks();
        locks.push(self.backtrace_lock.core());
        locks
    }

    /// The lock with this id among [`Machine::locks`].
    pub fn lock_by_id(&self, id: usize) -> Option<&LockCore> {
        self.locks().into_iter().find(|l| l.id() == id)
    }

    /// Record a timeline event for the calling CPU, if tracing.
    /// Signal-safe.
    pub(crate) fn trace(&self, kind: trace::Kind) {
        if let (Some(t), Some(cpu)) = (&self.trace, irq::this_cpu()) {
            t.push(cpu, self.now_ns(), kind);
        }
    }

    /// printk through the design, marked on the timeline.
    pub(crate) fn printk(&self, level: klog::Level, args: core::fmt::Arguments<'_>) {
        // A CPU released from a halt or a hang when the run ended says no
        // more: what it was printing belongs to a run that is over.
        if self.stop.load(Ordering::Relaxed)
            && self.panic_cpu().is_some_and(|p| Some(p) != irq::this_cpu())
        {
            return;
        }
        self.trace(trace::Kind::Printk(self.context()));
        self.design.printk(self, level, args);
    }

    /// The idle frame every CPU starts in.
    pub(crate) fn idle_frame() -> &'static Frame {
        &IDLE
    }
}

impl Arch for Machine {
    fn this_cpu(&self) -> usize {
        irq::this_cpu().unwrap_or(0)
    }

    fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    fn preempt_count(&self) -> u32 {
        self.this()
            .map_or(0, |(_, c)| c.preempt_count.load(Ordering::Relaxed))
    }

    fn irqs_disabled(&self) -> bool {
        // A thread that is not a CPU (the printer, the log reader) never
        // takes an interrupt: as good as interrupts off, always.
        self.this()
            .is_none_or(|(_, c)| c.irqs_off.load(Ordering::Relaxed))
    }

    fn local_irq_save(&self) -> IrqFlags {
        // A load and a store, as `pushf; cli` is no locked instruction: only
        // this CPU's thread writes its flag, and a handler that runs between
        // the two (an IRQ, an NMI) puts back what it found before returning.
        let was_disabled = self.this().is_none_or(|(_, c)| {
            let was = c.irqs_off.load(Ordering::Relaxed);
            c.irqs_off.store(true, Ordering::Relaxed);
            was
        });
        core::sync::atomic::compiler_fence(Ordering::SeqCst);
        IrqFlags { was_disabled }
    }

    fn local_irq_restore(&self, flags: IrqFlags) {
        if !flags.was_disabled {
            if let Some((cpu, _)) = self.this() {
                self.irq_enable(cpu);
            }
        }
    }

    /// The kernel raises irq_work with a self-IPI, an APIC write; here it
    /// is the IRQ signal sent to this CPU's thread, a `tgkill()` of 1 to
    /// 4 µs on this kind of host. Inside an NMI the signal is sent as the
    /// handler returns instead: the NMI's signal mask holds the IRQ signal,
    /// so the IRQ runs after the handler returns either way (as a self-IPI
    /// waits for the NMI's `iret`), and the NMI's printk is not charged for
    /// the simulator's way of raising it.
    fn irq_work_queue(&self) {
        if let Some((cpu, c)) = self.this() {
            if !c.work_pending.swap(true, Ordering::AcqRel) {
                if c.preempt_count.load(Ordering::Relaxed) & klog::context::NMI_MASK != 0 {
                    c.raise_on_nmi_exit.store(true, Ordering::Relaxed);
                } else {
                    self.send(cpu, irq::irq_signal());
                }
            }
        }
    }

    fn now_ns(&self) -> u64 {
        mono_ns().saturating_sub(self.base_ns.load(Ordering::Relaxed))
    }

    fn delay_ns(&self, ns: u64) {
        let end = mono_ns().saturating_add(ns);
        while mono_ns() < end {
            if self.abort_all.load(Ordering::Relaxed) {
                return;
            }
            core::hint::spin_loop();
        }
    }

    fn task_pid(&self) -> u32 {
        self.this()
            .map_or(0, |(_, c)| c.tid.load(Ordering::Relaxed) as u32)
    }

    fn point(&self, point: Point) {
        if self.inject.armed(point) {
            self.inject.fire(self, point);
        }
    }

    fn wait_begin(&self, lock: LockKey) -> WaitTicket {
        self.trace(trace::Kind::SpinBegin(lock.name));
        let seq = self.wait_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let (cpu, context) = match self.this() {
            Some((cpu, c)) => {
                let context = c.context();
                let slot = c.wait(context);
                slot.since_ns.store(self.now_ns(), Ordering::Relaxed);
                slot.spins.store(0, Ordering::Relaxed);
                slot.seq.store(seq, Ordering::Relaxed);
                // Release: the watchdog that sees the lock sees since/seq.
                slot.lock.store(lock.id, Ordering::Release);
                (cpu, context)
            }
            // The printer and reader threads are no CPUs: their ticket
            // names their own number, which has no wait slot, so that
            // their waits touch no CPU's published wait.
            None => (irq::this_cpu().unwrap_or(usize::MAX), Context::Task),
        };
        WaitTicket {
            cpu,
            context,
            seq,
            name: lock.name,
        }
    }

    fn wait_should_abort(&self, ticket: &WaitTicket) -> bool {
        if self.abort_all.load(Ordering::Relaxed) {
            return true;
        }
        let Some(c) = self.cpus.get(ticket.cpu) else {
            // A thread that is no CPU (no slot, invisible to the
            // watchdog) spins until the run ends, giving its host CPU
            // away at every turn.
            // SAFETY: as below.
            unsafe { libc::sched_yield() };
            return false;
        };
        let slot = c.wait(ticket.context);
        let spins = slot.spins.load(Ordering::Relaxed) + 1;
        slot.spins.store(spins, Ordering::Relaxed);
        // The CPUs are threads that the host may preempt, holder and
        // waiters alike: a waiter gives its host CPU away now and then, as
        // a paravirtualised spinlock lets a guest's vCPU do, so that a
        // preempted holder gets to run (64 simulated CPUs on 2 host cores
        // would otherwise spin for the holder's whole wait in the queue).
        // It still spins: the wait, its spin count and what the watchdog
        // sees are unchanged.
        if spins % YIELD_EVERY == 0 {
            // SAFETY: sched_yield takes no arguments and touches no memory
            // of ours; it is a plain system call, safe in a signal handler.
            unsafe { libc::sched_yield() };
        }
        slot.abort.load(Ordering::Relaxed) == ticket.seq
    }

    fn wait_end(&self, ticket: WaitTicket) {
        if let Some(t) = &self.trace {
            t.push(ticket.cpu, self.now_ns(), trace::Kind::SpinEnd(ticket.name));
        }
        if let Some(c) = self.cpus.get(ticket.cpu) {
            c.wait(ticket.context).lock.store(0, Ordering::Release);
        }
    }

    fn push_frame(&self, frame: &'static Frame) {
        if let Some((_, c)) = self.this() {
            c.stack.push(frame);
        }
    }

    fn pop_frame(&self) {
        if let Some((_, c)) = self.this() {
            c.stack.pop();
        }
    }

    fn panic_cpu(&self) -> Option<usize> {
        let cpu = self.panic_cpu.load(Ordering::Acquire);
        (cpu != usize::MAX).then_some(cpu)
    }

    fn num_online_cpus(&self) -> usize {
        self.cpus
            .iter()
            .filter(|c| !c.stopped.load(Ordering::Acquire))
            .count()
    }

    fn stack(&self, out: &mut [Option<&'static Frame>]) -> usize {
        self.this().map_or(0, |(_, c)| c.stack.copy_into(out))
    }

    fn lockdep_held(&self) -> Option<&klog::held::Held> {
        self.this().map(|(_, c)| &c.held)
    }

    fn lock_event(&self, lock: LockKey, held: bool) {
        if self.trace.is_some() {
            self.trace(if held {
                trace::Kind::Held(lock.name)
            } else {
                trace::Kind::Released(lock.name)
            });
        }
    }

    fn wake_printer(&self) {
        self.printer_wake.fetch_add(1, Ordering::Release);
        printer::futex_wake(&self.printer_wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Idle;

    impl Work for Idle {
        fn task_loop(&self, _: &Machine, _: usize) {}
        fn interrupt(&self, _: &Machine, _: usize, _: usize) {}
    }

    fn machine(nr_cpus: usize) -> Machine {
        let design = klog::printk::design("legacy").unwrap();
        let config = MachineConfig {
            nr_cpus,
            hz: 100,
            nmi_wait_limit_ns: 1_000_000,
            seed: 1,
            backtrace_wait_ns: 1_000_000,
            stop_wait_ns: 1_000_000,
            trace_capacity: 0,
            time_scale: 1.0,
        };
        let design_config = DesignConfig {
            nr_cpus,
            buffer_size: 1 << 12,
            console: klog::console::ConsoleConfig::none(),
        };
        Machine::new(
            config,
            design,
            &design_config,
            Box::new(Idle),
            Injector::new(Vec::new()),
        )
        .unwrap()
    }

    #[test]
    fn a_wait_by_a_thread_that_is_no_cpu_leaves_every_cpus_published_wait_alone() {
        let m = machine(2);
        let a = LockKey { id: 0xa, name: "a" };
        let b = LockKey { id: 0xb, name: "b" };
        // CPU 0 publishes its task-context wait on `a`.
        irq::set_this_cpu(Some(0));
        let cpu0 = m.wait_begin(a);
        let slot = m.cpus[0].wait(Context::Task);
        // The reader thread (which calls itself CPU nr_cpus + 1) waits on
        // `b`, spins and gives up its wait.
        irq::set_this_cpu(Some(3));
        let reader = m.wait_begin(b);
        assert_eq!((reader.cpu, reader.name), (3, "b"));
        for _ in 0..3 {
            assert!(
                !m.wait_should_abort(&reader),
                "only the run's end breaks it"
            );
        }
        m.wait_end(reader);
        assert_eq!(
            slot.lock.load(Ordering::Relaxed),
            0xa,
            "CPU 0 still waits on a"
        );
        assert_eq!(slot.spins.load(Ordering::Relaxed), 0);
        assert_eq!(slot.seq.load(Ordering::Relaxed), cpu0.seq);
        // CPU 0's own wait goes on and ends as before.
        irq::set_this_cpu(Some(0));
        assert!(!m.wait_should_abort(&cpu0));
        assert_eq!(slot.spins.load(Ordering::Relaxed), 1);
        m.wait_end(cpu0);
        assert_eq!(slot.lock.load(Ordering::Relaxed), 0);
        // The run's end breaks every wait, a CPU's or not.
        m.abort_all.store(true, Ordering::Relaxed);
        irq::set_this_cpu(Some(3));
        assert!(m.wait_should_abort(&m.wait_begin(b)));
        irq::set_this_cpu(None);
    }
}
