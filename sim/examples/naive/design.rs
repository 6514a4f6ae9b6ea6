//! The `naive` design itself, apart from its `main` (`main.rs`) so that
//! the tests grade the same code in their own process.

use core::fmt;

use klog::console::Console;
use klog::lock::RawSpinLock;
use klog::printk::{
    DesignConfig, DesignInfo, DesignKind, DropReason, External, PointUse, PrbLog, Printk,
};
use klog::printk::{RING_POINTS, SERIAL_POINTS};
use klog::record::Level;
use klog::{point, Arch, Kernel, LockCore};
use printk_sim::lab::Build;
use printk_sim::machine::Machine;

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

fn build(config: &DesignConfig) -> Box<dyn Printk<Machine>> {
    Box::new(Naive::new(config))
}
static BUILD: Build = build;

/// Where the design holds its own lock.
const OWN_POINTS: [PointUse; 2] = [
    PointUse {
        point: point::VPRINTK_LOGBUF_LOCKED,
        about: "naive_lock is held: the message is being stored",
    },
    PointUse {
        point: point::CONSOLE_UNLOCK_LOGBUF_LOCKED,
        about: "naive_lock is held: a record is being printed",
    },
];

/// The design as the lab sees it: its name, what it is, the points it
/// passes (explore raises an NMI at each).
pub static NAIVE: DesignInfo = DesignInfo {
    kind: DesignKind::External(External(&BUILD)),
    name: "naive",
    summary: "one spinlock around the ring and the console, in every context, NMI included",
    // Its own points, then those of the ring it stores into and the
    // console it writes to (explore raises an NMI at every one).
    point_groups: &[&OWN_POINTS, &RING_POINTS, &SERIAL_POINTS],
    kernel: Kernel::new(6, 12),
};
