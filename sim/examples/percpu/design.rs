//! The `percpu` design itself, apart from its `main` (`main.rs`) so that
//! the tests grade the same code in their own process.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use klog::console::Console;
use klog::lock::RawSpinLock;
use klog::printk::safe::{Kind, SafeBuffers};
use klog::printk::{Accounts, DesignConfig, DropReason, PointUse, PrbLog, Printk};
use klog::printk::{RING_POINTS, SERIAL_POINTS};
use klog::record::{Level, TextBuf, TEXT_MAX};
use klog::{point, Arch, Kernel, LockCore};

/// A lock for every context but NMI, and per-CPU buffers for NMIs.
pub struct PerCpu {
    lock: RawSpinLock<u64>,
    log: PrbLog,
    nmi: SafeBuffers,
    /// Messages lost because their CPU's buffer was full.
    nmi_full: AtomicU64,
    console: Console,
}

impl PerCpu {
    /// A printk with per-CPU NMI buffers for the machine `config` describes.
    pub fn new(config: &DesignConfig) -> PerCpu {
        PerCpu {
            lock: RawSpinLock::new("percpu_lock", 0),
            log: PrbLog::new(config.buffer_size),
            nmi: SafeBuffers::new(config.nr_cpus, false),
            nmi_full: AtomicU64::new(0),
            console: Console::new(config.console, config.nr_cpus),
        }
    }

    /// Store one message under the lock and print what is pending; false
    /// if the watchdog broke the wait.
    fn store_and_print<A: Arch>(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) -> bool {
        let Ok((mut next, flags)) = self
            .lock
            .lock_irqsave(arch, Some(point::VPRINTK_LOGBUF_LOCKED))
        else {
            return false;
        };
        arch.point(point::VPRINTK_LOGBUF_LOCKED);
        self.log.store(arch, level, args);
        self.log.print_to(arch, &self.console, &mut next);
        drop(next);
        arch.local_irq_restore(flags);
        true
    }
}

impl<A: Arch> Printk<A> for PerCpu {
    fn name(&self) -> &'static str {
        "percpu"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        if arch.in_nmi() {
            // Never the lock in NMI context: this CPU's buffer, and
            // irq_work to move it into the log once the NMI is over.
            let mut text = TextBuf::<TEXT_MAX>::new();
            text.format(args);
            // The buffer ends each message's line itself.
            text.strip_newline();
            if !self.nmi.write(arch, Kind::Nmi, level, text.as_bytes()) {
                // Full: lost, and counted.
                self.log.counters.attempt();
                self.log.counters.drop_one();
                self.nmi_full.fetch_add(1, Ordering::Relaxed);
            }
            arch.irq_work_queue();
            return;
        }
        if !self.store_and_print(arch, level, args) {
            self.log.counters.attempt();
            self.log.counters.lose_in_deadlock();
        }
    }

    fn irq_work(&self, arch: &A) {
        self.flush_all_cpus(arch);
    }

    // Its accounts are its own (below); the rest is any PrbLog design's.
    klog::prb_printk_methods!();

    fn flush_all_cpus(&self, arch: &A) {
        for cpu in 0..arch.nr_cpus() {
            self.nmi.flush(arch, cpu, |level, text, internal| {
                // "Lost N message(s)!" is the design's own line.
                if internal {
                    self.log.counters.mark_internal();
                }
                let text = core::str::from_utf8(text).unwrap_or("?");
                if !self.store_and_print(arch, level, format_args!("{text}\n")) {
                    self.log.counters.attempt();
                    self.log.counters.lose_in_deadlock();
                }
            });
        }
    }

    fn nmi_enter(&self, arch: &A) {
        self.nmi.nmi_enter(arch, false);
    }

    fn nmi_exit(&self, arch: &A) {
        self.nmi.nmi_exit(arch);
    }

    fn accounts(&mut self) -> Accounts {
        let mut a = self.log.accounts(&self.console.stats());
        // Messages still in a CPU's buffer never reached the log.
        let waiting = self.nmi.pending();
        a.attempted += waiting;
        a.dropped += waiting;
        a
    }

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.lock.core(), self.nmi.lock(), self.console.port_lock()]
    }

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        let mut v = self.log.drop_reasons();
        v.push((
            DropReason::NmiBufferFull,
            self.nmi_full.load(Ordering::Relaxed),
        ));
        v.push((DropReason::NeverFlushed, self.nmi.pending()));
        v
    }
}

/// Where the design holds its own lock.
const OWN_POINTS: [PointUse; 2] = klog::lock_points!("percpu_lock");

printk_sim::design! {
    /// The design as the lab sees it: its own points, then those of the ring
    /// it stores into and the console it writes to.
    pub static PERCPU = PerCpu::new, "percpu", Kernel::new(6, 12);
    summary: "a lock everywhere but in NMI context; NMIs write per-CPU buffers that irq_work copies into the log";
    points: &[&OWN_POINTS, &RING_POINTS, &SERIAL_POINTS];
}
