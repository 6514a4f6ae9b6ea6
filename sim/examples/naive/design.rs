//! The design a newcomer writes first when told "make printk work from
//! NMI context": one spinlock around the ring and the console, taken in
//! every context, NMIs included. It is correct until an NMI lands on a CPU
//! that holds the lock; then the NMI's printk spins on a lock its own CPU
//! can never release.
//!
//! `cargo run --release --example naive` grades it: every built-in
//! scenario next to the six designs of the kernel's history, and explore
//! on the flagship, which finds the window.

use core::fmt;

use klog::console::Console;
use klog::lock::RawSpinLock;
use klog::printk::{
    Accounts, DesignConfig, DesignInfo, DesignKind, DropReason, External, PointUse, PrbLog, Printk,
    ReadAt,
};
use klog::record::{Level, Record, TextBuf, TEXT_MAX};
use klog::{point, Arch, Kernel, LockCore};
use printk_sim::lab::{Build, CountingAlloc};
use printk_sim::machine::Machine;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

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

    fn accounts(&mut self) -> Accounts {
        self.log.accounts(&self.console.stats())
    }

    fn records(&mut self) -> Vec<Record> {
        self.log.records()
    }

    fn read_at(&self, arch: &A, seq: u64, text: &mut TextBuf<TEXT_MAX>) -> ReadAt {
        self.log.read_at(arch, seq, text)
    }

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.lock.core(), self.console.port_lock()]
    }

    fn console(&self) -> &Console {
        &self.console
    }

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        self.log.drop_reasons()
    }

    fn check(&mut self) -> Result<(), String> {
        self.log.ring.check()
    }
}

fn build(config: &DesignConfig) -> Box<dyn Printk<Machine>> {
    Box::new(Naive::new(config))
}
static BUILD: Build = build;

/// The design as the lab sees it: its name, what it is, the points it
/// passes (explore raises an NMI at each).
pub static NAIVE: DesignInfo = DesignInfo {
    kind: DesignKind::External(External(&BUILD)),
    name: "naive",
    summary: "one spinlock around the ring and the console, in every context, NMI included",
    point_groups: &[&[
        PointUse {
            point: point::VPRINTK_LOGBUF_LOCKED,
            about: "naive_lock is held: the message is being stored",
        },
        PointUse {
            point: point::CONSOLE_UNLOCK_LOGBUF_LOCKED,
            about: "naive_lock is held: a record is being printed",
        },
    ]],
    kernel: Kernel::new(6, 12),
};

fn main() -> std::process::ExitCode {
    printk_sim::lab::grade_main(&NAIVE)
}
