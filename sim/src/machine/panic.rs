//! `panic()`, `smp_send_stop()` and the all-CPU backtrace: the machine-wide
//! events that make one CPU act on all the others.
//!
//! Everything here runs in a CPU's interrupt handler (the panic in the NMI
//! or IRQ its source raised, the backtrace request in hardirq context like
//! the RCU stall detector's tick): atomics, signals and `nanosleep` only.

use core::sync::atomic::Ordering;

use klog::context::NMI_MASK;
use klog::{Arch, Frame, Level};

use super::cpu::Cpu;
use super::inject::Dump;
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

static BACKTRACE: Frame = Frame("nmi_cpu_backtrace");

impl Machine {
    /// `nmi_cpu_backtrace()`: "NMI backtrace for cpu N" and the stack.
    /// From 5.15 under `printk_cpu_sync` (lib/nmi_backtrace.c), so that
    /// the CPUs' backtraces do not interleave.
    pub(crate) fn print_backtrace(&self, cpu: usize) {
        let level_idx = self
            .cpus
            .get(cpu)
            .map_or(0, |c| usize::from(c.context().level()));
        self.push_frame(&BACKTRACE);
        self.in_cpu_sync(|| {
            let t0 = self.now_ns();
            self.printk(
                Level::Warning,
                format_args!("NMI backtrace for cpu {cpu}\n"),
            );
            self.record_latency(level_idx, t0);
            self.print_stack(cpu, level_idx);
        });
        self.pop_frame();
    }

    /// Run `dump` holding the design's `printk_cpu_sync`, if it has one (a
    /// wait for it that the watchdog broke skips the dump).
    pub(crate) fn in_cpu_sync(&self, dump: impl FnOnce()) {
        match self.design.cpu_sync() {
            Some(sync) => {
                if let Ok(flags) = sync.get(self) {
                    dump();
                    sync.put(self, flags);
                }
            }
            None => dump(),
        }
    }

    /// One line per frame of `cpu`'s shadow stack, outermost first.
    pub(crate) fn print_stack(&self, cpu: usize, level_idx: usize) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        c.stack.for_each(|frame| {
            // A CPU released from a halt when the run ended prints no more.
            if self.stopping() {
                return;
            }
            let t0 = self.now_ns();
            self.printk(Level::Warning, format_args!(" {frame}+0x0/0x0\n"));
            self.record_latency(level_idx, t0);
        });
    }

    /// Halt the calling CPU inside its interrupt handler until the run
    /// ends, as a CPU stopped by the panic CPU (or the panic CPU itself
    /// when it is done) sits with interrupts off forever. It goes offline:
    /// no more signals, no lockup reports.
    ///
    /// When the run ends the halted CPUs go on one at a time, each to the
    /// end of its thread before the next: a panic may have re-initialised
    /// a lock a halted CPU held (`zap_locks()`,
    /// `printk_safe_flush_on_panic()`), which is sound in the kernel only
    /// because that CPU never runs again.
    pub(crate) fn halt(&self, c: &Cpu, cpu: usize) {
        c.online.store(false, Ordering::Release);
        c.stopped.store(true, Ordering::Release);
        while !self.stop.load(Ordering::Acquire) && !self.abort_all.load(Ordering::Acquire) {
            nap();
        }
        // (A CPU that already has its turn and halts again, on an NMI that
        // came after the run ended, keeps it.)
        while let Err(holder) =
            self.resume_turn
                .compare_exchange(usize::MAX, cpu, Ordering::AcqRel, Ordering::Acquire)
        {
            if holder == cpu {
                break;
            }
            nap();
        }
    }

    /// A halted CPU's thread is done: the next may resume.
    pub(crate) fn end_turn(&self, cpu: usize) {
        let _ =
            self.resume_turn
                .compare_exchange(cpu, usize::MAX, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// A handler that never returns: the CPU is wedged where it was (still
    /// online, so the watchdog sees it stop).
    pub(crate) fn hang(&self) {
        while !self.stop.load(Ordering::Acquire) && !self.abort_all.load(Ordering::Acquire) {
            nap();
        }
    }

    /// `panic()` on `cpu`, stopping the others (at `stop_at`, if given).
    pub(crate) fn panic(&self, cpu: usize, stop_at: Option<klog::Point>) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        if self
            .panic_cpu
            .compare_exchange(usize::MAX, cpu, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another CPU panics already: stop here (panic_smp_self_stop).
            self.halt(c, cpu);
            return;
        }
        self.push_frame(&PANIC);
        // bust_spinlocks(1): oops_in_progress, which the serial driver reads.
        self.design.console().bust_spinlocks(true);
        self.printk(
            Level::Emerg,
            format_args!("Kernel panic - not syncing: simulated panic on CPU {cpu}\n"),
        );
        self.push_frame(&SEND_STOP);
        self.stop_other_cpus(cpu, stop_at);
        self.pop_frame();
        // x86's panic notifier (dump_kernel_offset(), KASLR off): the first
        // printk after smp_send_stop(), before the consoles are flushed.
        self.printk(Level::Emerg, format_args!("Kernel Offset: disabled\n"));
        self.design.panic_flush(self);
        self.printk(
            Level::Emerg,
            format_args!(
                "---[ end Kernel panic - not syncing: simulated panic on CPU {cpu} ]---\n"
            ),
        );
        self.design.panic_flush(self);
        // console_flush_on_panic()'s nbcon_atomic_flush_unsafe(): the only
        // flush that may take a console over in an unsafe state.
        self.design.panic_flush_unsafe(self);
        self.pop_frame();
        // A panic that got through only because the run ended (and let go
        // of whatever held it up) did not finish within the run.
        if !self.stop.load(Ordering::Acquire) {
            self.panic_done.store(true, Ordering::Release);
        }
        // The machine is dead: end the run.
        self.stop.store(true, Ordering::Release);
        self.halt(c, cpu);
    }

    /// `smp_send_stop()`: an NMI to every other online CPU whose handler
    /// never returns; wait (up to x86's 1 s, scaled) until they halted. A
    /// CPU already inside an NMI handler cannot take another one and is
    /// never stopped, as on real hardware.
    fn stop_other_cpus(&self, me: usize, stop_at: Option<klog::Point>) {
        let land_at = stop_at.filter(|p| self.design_info.has_point(*p));
        for (i, c) in self.cpus.iter().enumerate() {
            if i != me && c.online.load(Ordering::Acquire) {
                c.stop_requested.store(true, Ordering::Release);
                match land_at {
                    Some(p) => c.stop_at.store(u32::from(p.id) + 1, Ordering::Release),
                    None => {
                        self.send(i, nmi_signal());
                    }
                }
            }
        }
        let deadline = mono_ns().saturating_add(self.config.stop_wait_ns);
        // A CPU that does not pass the landing point soon gets its stop NMI
        // where it is.
        let mut land_by = mono_ns().saturating_add(self.config.stop_wait_ns / 2);
        while mono_ns() < deadline && !self.abort_all.load(Ordering::Relaxed) {
            if mono_ns() >= land_by {
                land_by = u64::MAX;
                for (i, c) in self.cpus.iter().enumerate() {
                    if c.stop_at.swap(0, Ordering::AcqRel) != 0 {
                        self.send(i, nmi_signal());
                    }
                }
            }
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

    /// `nmi_cpu_backtrace()` on `cpu`, in its NMI handler: the banner and
    /// the stack, under the private lock of the kernels before 4.19 if
    /// `serialize`.
    pub(crate) fn nmi_cpu_backtrace(&self, cpu: usize, serialize: bool) {
        if !serialize {
            self.print_backtrace(cpu);
            return;
        }
        // Broken out of a deadlock: this CPU's backtrace is not printed.
        if let Ok(_guard) = self.backtrace_lock.lock(self, None) {
            self.print_backtrace(cpu);
        }
    }

    /// The all-CPU backtrace requested from `cpu` by source `source`: the
    /// RCU splat if asked for, our own stack, then the others' (by NMI, or
    /// walked remotely), then the flush.
    pub(crate) fn backtrace_all(&self, cpu: usize, source: usize, dump: Dump) {
        self.push_frame(&TRIGGER_BACKTRACE);
        if dump.rcu_splat {
            self.rcu_stall_splat(cpu);
        }
        if !dump.exclude_self {
            self.nmi_cpu_backtrace(cpu, dump.serialize);
        }
        if dump.remote {
            self.dump_remote(cpu, dump.rcu_splat);
        } else {
            self.backtrace_by_nmi(cpu, source, dump.land_at);
        }
        // printk_safe_flush(): the requester empties every CPU's buffer,
        // including those of CPUs that never re-enable interrupts.
        self.design.flush_all_cpus(self);
        self.pop_frame();
    }

    /// `print_other_cpu_stall()`'s report in the words of the design's
    /// release, the stalled CPUs being those stuck on purpose, `t` in
    /// kernel jiffies. Not modelled: grace periods (the first one, `g=1`,
    /// never completes, `c=0`), callbacks (`q=0`), the per-CPU line's
    /// counters (zero).
    fn rcu_stall_splat(&self, me: usize) {
        let kernel = self.design_info.kernel;
        let jiffies = (self.now_ns() as f64
            / self.config.time_scale
            / (1e9 / f64::from(self.config.hz.max(1)))) as u64;
        let stalled = || {
            self.cpus
                .iter()
                .enumerate()
                .filter(|(_, c)| c.stalled.load(Ordering::Relaxed))
                .map(|(i, _)| i)
        };
        let pre = kernel.rcu_prefix();
        if kernel.rcu_stall_braces() {
            // 3.3-4.1 with CONFIG_RCU_CPU_STALL_INFO=n: "{ 1 3} (detected
            // by 0, t=2102 jiffies, g=..., c=..., q=...)" on one line.
            let mut list = klog::record::TextBuf::<256>::new();
            for i in stalled() {
                list.format(format_args!(" {i}"));
            }
            let cpus = core::str::from_utf8(list.as_bytes()).unwrap_or("");
            self.printk(Level::Err, format_args!(
                "INFO: rcu_sched detected stalls on CPUs/tasks: {{{cpus}}} (detected by {me}, t={jiffies} jiffies, g=1, c=0, q=0)\n"
            ));
            return;
        }
        self.printk(
            Level::Err,
            format_args!("{pre}INFO: rcu_sched detected stalls on CPUs/tasks:\n"),
        );
        for i in stalled() {
            self.printk(
                Level::Err,
                format_args!(
                    "{pre}\t{i}-...!: (0 ticks this GP) idle=000/0/0x0 softirq=0/0 fqs=0\n"
                ),
            );
        }
        if kernel >= klog::Kernel::new(5, 2) {
            let n = self.cpus.len();
            self.printk(
                Level::Err,
                format_args!(
                    "{pre}\t(detected by {me}, t={jiffies} jiffies, g=1, q=0 ncpus={n})\n"
                ),
            );
        } else {
            self.printk(
                Level::Err,
                format_args!("{pre}\t(detected by {me}, t={jiffies} jiffies, g=1, c=0, q=0)\n"),
            );
        }
    }

    /// NMI every other online CPU (or arrange for the NMI to land at
    /// `land_at`) and wait (up to the scaled 10 s) until each has answered.
    fn backtrace_by_nmi(&self, cpu: usize, source: usize, land_at: Option<klog::Point>) {
        // The CPUs asked, for the "Sending NMI" line below.
        let mut targets = [0usize; 64];
        let mut n = 0;
        for (i, c) in self.cpus.iter().enumerate() {
            if i != cpu && c.online.load(Ordering::Acquire) {
                if let Some(slot) = targets.get_mut(n) {
                    *slot = i;
                    n += 1;
                }
            }
        }
        for (i, c) in self.cpus.iter().enumerate() {
            if i == cpu || !c.online.load(Ordering::Acquire) {
                continue;
            }
            let before = c.nmis.load(Ordering::Acquire);
            c.backtrace_mark.store(before + 1, Ordering::Release);
            if land_at.is_some_and(|p| self.design_info.has_point(p)) {
                let tag = u32::try_from(source).unwrap_or(u32::MAX - 1) + 1;
                c.deferred_nmi.store(tag, Ordering::Release);
            } else if self.raise_nmi(i, source) {
                // One after the other, in CPU order: each NMI is in its
                // handler before the next is sent, so who comes first is
                // the same every run.
                let limit = mono_ns().saturating_add(self.config.backtrace_wait_ns / 10);
                while c.nmis.load(Ordering::Acquire) <= before
                    && mono_ns() < limit
                    && !self.abort_all.load(Ordering::Relaxed)
                {
                    core::hint::spin_loop();
                }
            } else {
                c.backtrace_mark.store(0, Ordering::Release);
            }
        }
        // "Sending NMI from CPU %d to CPUs %*pbl:" (pr_info), in the
        // design's release's words. The kernel prints it just before the
        // NMIs go out; here just after, so that a CPU a scenario holds in
        // printk with logbuf_lock does not stop the request itself.
        let mut line = klog::record::TextBuf::<512>::new();
        self.design_info
            .kernel
            .sending_nmi_line(&mut line, cpu, targets.get(..n).unwrap_or(&[]));
        let text = core::str::from_utf8(line.as_bytes()).unwrap_or("");
        self.printk(Level::Info, format_args!("{text}"));
        let start = mono_ns();
        let deadline = start.saturating_add(self.config.backtrace_wait_ns);
        // A target that does not pass the landing point soon (it is not
        // printing, or stuck elsewhere) gets its NMI where it is.
        let mut land_by = start.saturating_add(self.config.backtrace_wait_ns / 10);
        while mono_ns() < deadline && !self.abort_all.load(Ordering::Relaxed) {
            if mono_ns() >= land_by {
                land_by = u64::MAX;
                for (i, c) in self.cpus.iter().enumerate() {
                    let deferred = c.deferred_nmi.swap(0, Ordering::AcqRel);
                    if deferred != 0 && !self.raise_nmi(i, source) {
                        c.backtrace_mark.store(0, Ordering::Release);
                    }
                }
            }
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
            c.deferred_nmi.store(0, Ordering::Release);
        }
    }

    /// 3.17's `rcu_dump_cpu_stacks()`: no NMI. The requester walks each
    /// other CPU's stack (only the stalled ones after an RCU splat) while
    /// that CPU keeps running, printing frames as it reads them. A stack
    /// that changed during the walk is counted as a torn trace.
    fn dump_remote(&self, me: usize, stalled_only: bool) {
        for (i, c) in self.cpus.iter().enumerate() {
            if i == me || (stalled_only && !c.stalled.load(Ordering::Relaxed)) {
                continue;
            }
            self.printk(Level::Warning, format_args!("Task dump for CPU {i}:\n"));
            let torn = c.stack.walk_remote(|frame| {
                self.printk(Level::Warning, format_args!(" {frame}+0x0/0x0\n"));
            });
            self.remote_traces.fetch_add(1, Ordering::Relaxed);
            if torn {
                self.torn_traces.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
