//! `panic()`, `smp_send_stop()` and the all-CPU backtrace: the machine-wide
//! events that make one CPU act on all the others.
//!
//! Everything here runs in a CPU's interrupt handler (the panic in the NMI
//! or IRQ its source raised, the backtrace request in hardirq context like
//! the RCU stall detector's tick): atomics, signals and `nanosleep` only.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::sync::atomic::Ordering;

use klog::context::NMI_MASK;
use klog::{Arch, Frame, Level};

use super::cpu::Cpu;
use super::irq::nmi_signal;
use super::{mono_ns, Machine};

static PANIC: Frame = Frame("panic");
static SEND_STOP: Frame = Frame("smp_send_stop");
static TRIGGER_BACKTRACE: Frame = Frame("nmi_trigger_cpumask_backtrace");

fn nap() {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 200_000,
    };
    // SAFETY: nanosleep with a valid request and no remainder pointer.
    unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
}

impl Machine {
    /// Halt the calling CPU inside its interrupt handler until the run
    /// ends, as a CPU stopped by the panic CPU (or the panic CPU itself
    /// when it is done) sits with interrupts off forever. It goes offline:
    /// no more signals, no lockup reports.
    pub(crate) fn halt(&self, c: &Cpu) {
        c.online.store(false, Ordering::Release);
        c.stopped.store(true, Ordering::Release);
        while !self.stop.load(Ordering::Acquire) && !self.abort_all.load(Ordering::Acquire) {
            nap();
        }
    }

    /// A handler that never returns: the CPU is wedged where it was (still
    /// online, so the watchdog sees it stop).
    pub(crate) fn hang(&self) {
        while !self.stop.load(Ordering::Acquire) && !self.abort_all.load(Ordering::Acquire) {
            nap();
        }
    }

    /// `panic()` on `cpu`.
    pub(crate) fn panic(&self, cpu: usize) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        if self
            .panic_cpu
            .compare_exchange(usize::MAX, cpu, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another CPU panics already: stop here (panic_smp_self_stop).
            self.halt(c);
            return;
        }
        self.push_frame(&PANIC);
        self.design.printk(
            self,
            Level::Emerg,
            format_args!("Kernel panic - not syncing: simulated panic on CPU {cpu}\n"),
        );
        self.push_frame(&SEND_STOP);
        self.stop_other_cpus(cpu);
        self.pop_frame();
        self.design.panic_flush(self);
        self.design.printk(
            self,
            Level::Emerg,
            format_args!(
                "---[ end Kernel panic - not syncing: simulated panic on CPU {cpu} ]---\n"
            ),
        );
        self.design.panic_flush(self);
        self.pop_frame();
        self.panic_done.store(true, Ordering::Release);
        // The machine is dead: end the run.
        self.stop.store(true, Ordering::Release);
        self.halt(c);
    }

    /// `smp_send_stop()`: an NMI to every other online CPU whose handler
    /// never returns; wait (up to x86's 1 s, scaled) until they halted. A
    /// CPU already inside an NMI handler cannot take another one and is
    /// never stopped, as on real hardware.
    fn stop_other_cpus(&self, me: usize) {
        for (i, c) in self.cpus.iter().enumerate() {
            if i != me && c.online.load(Ordering::Acquire) {
                c.stop_requested.store(true, Ordering::Release);
                self.send(i, nmi_signal());
            }
        }
        let deadline = mono_ns().saturating_add(self.config.stop_wait_ns);
        while mono_ns() < deadline && !self.abort_all.load(Ordering::Relaxed) {
            let all = self.cpus.iter().enumerate().all(|(i, c)| {
                i == me
                    || c.stopped.load(Ordering::Acquire)
                    || !c.stop_requested.load(Ordering::Acquire)
            });
            if all {
                break;
            }
            core::hint::spin_loop();
        }
    }

    /// The all-CPU backtrace requested from `cpu` by source `source`: print
    /// our own stack, NMI the others, wait for their answers, flush.
    pub(crate) fn backtrace_all(&self, cpu: usize, source: usize) {
        self.push_frame(&TRIGGER_BACKTRACE);
        self.workload.print_backtrace(self, cpu);
        for (i, c) in self.cpus.iter().enumerate() {
            if i == cpu || !c.online.load(Ordering::Acquire) {
                continue;
            }
            let before = c.nmis.load(Ordering::Acquire);
            c.backtrace_mark.store(before + 1, Ordering::Release);
            if !self.raise_nmi(i, source) {
                c.backtrace_mark.store(0, Ordering::Release);
            }
        }
        let deadline = mono_ns().saturating_add(self.config.backtrace_wait_ns);
        while mono_ns() < deadline && !self.abort_all.load(Ordering::Relaxed) {
            let answered = self.cpus.iter().all(|c| {
                let mark = c.backtrace_mark.load(Ordering::Acquire);
                mark == 0
                    || (c.nmis.load(Ordering::Acquire) >= mark
                        && c.preempt_count.load(Ordering::Relaxed) & NMI_MASK == 0)
            });
            if answered {
                break;
            }
            core::hint::spin_loop();
        }
        for c in self.cpus.iter() {
            c.backtrace_mark.store(0, Ordering::Release);
        }
        // printk_safe_flush(): the requester empties every CPU's buffer,
        // including those of CPUs that never re-enable interrupts.
        self.design.flush_all_cpus(self);
        self.pop_frame();
    }
}
