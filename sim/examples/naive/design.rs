//! The `naive` design itself, apart from its `main` (`main.rs`) so that
//! the tests grade the same code in their own process.

use core::fmt;

use klog::console::Console;
use klog::lock::RawSpinLock;
use klog::printk::{DesignConfig, DropReason, PointUse, PrbLog, Printk};
use klog::printk::{RING_POINTS, SERIAL_POINTS};
use klog::record::Level;
use klog::{point, Arch, Kernel, LockCore};

/// One lock, `naive_lock`, around storing a message and printing
/// everything not printed yet; it holds the next record to print.
pub struct Naive {
    lock: RawSpinLock<u64>,
    log: PrbLog,
    console: Console,
}

impl Naive {
    /// A naive printk for the machine `config` describes.
    pub fn new(config: &DesignConfig) -> Naive {
        Naive {
            lock: RawSpinLock::new("naive_lock", 0),
            log: PrbLog::new(config.buffer_size),
            console: Console::new(config.console, config.nr_cpus),
        }
    }
}

impl<A: Arch> Printk<A> for Naive {
    fn name(&self) -> &'static str {
        "naive"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        // Interrupts off while the lock is held, as every printk did: a
        // hardirq cannot land in the window. An NMI still can.
        match self
            .lock
            .lock_irqsave(arch, Some(point::VPRINTK_LOGBUF_LOCKED))
        {
            Ok((mut next, flags)) => {
                arch.point(point::VPRINTK_LOGBUF_LOCKED);
                self.log.store(arch, level, args);
                self.log.print_to(arch, &self.console, &mut next);
                drop(next);
                arch.local_irq_restore(flags);
            }
            // The watchdog broke our wait (we were deadlocked): the
            // message is lost, and counted.
            Err(_) => {
                self.log.counters.attempt();
                self.log.counters.lose_in_deadlock();
            }
        }
    }

    fn irq_work(&self, _arch: &A) {}

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.lock.core(), self.console.port_lock()]
    }

    klog::prb_printk_methods!(accounts);

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        self.log.drop_reasons()
    }
}

/// Where the design holds its own lock.
const OWN_POINTS: [PointUse; 2] = klog::lock_points!("naive_lock");

printk_sim::design! {
    /// The design as the lab sees it: its name, what it is, the points it
    /// passes (explore raises an NMI at each): its own, then those of the ring
    /// it stores into and the console it writes to.
    pub static NAIVE = Naive::new, "naive", Kernel::new(6, 12);
    summary: "one spinlock around the ring and the console, in every context, NMI included";
    points: &[&OWN_POINTS, &RING_POINTS, &SERIAL_POINTS];
}
