//! What the CPUs do: printk in task context at a rate, and whatever each
//! NMI source's action says in NMI context.
//!
//! Messages are self-describing (`cpu1 task #42 ` followed by filler to the
//! drawn length) so that a log can be checked line by line. Task-context
//! lengths are drawn from one seeded generator per CPU; NMI-context lengths
//! from a per-CPU state kept in an atomic (NMIs do not nest, so one state per
//! CPU is enough and the handler allocates nothing).

use core::fmt;
use core::sync::atomic::Ordering;
use std::time::Duration;

use klog::{Arch, Context, Frame, Level};

use crate::machine::{Machine, NmiAction, Work};

pub use crate::rng::Rng;

/// One CPU's task-context load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskSpec {
    /// printk calls per second (0 = as fast as possible).
    pub printk_hz: u32,
    /// Text length range, inclusive.
    pub len: (usize, usize),
    /// Level of every message.
    pub level: Level,
    /// Print each message in this many pieces: the first without a
    /// newline, the rest as `KERN_CONT` continuations, the last ending the
    /// line.
    pub pieces: u32,
    /// Stop after this many messages (0 = print until the run ends).
    pub count: u64,
    /// Spin once, at a given time, with interrupts or preemption off.
    pub stall: Option<Stall>,
}

/// How a stalled CPU spins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallKind {
    /// `local_irq_disable()`: no tick, no irq_work; NMIs still land.
    IrqsOff,
    /// `preempt_disable()`: interrupts run, the task makes no progress.
    PreemptOff,
}

/// A stall: from `at_ns` for `for_ns`, spinning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// What is off while it spins.
    pub kind: StallKind,
    /// When it starts, ns since the run started.
    pub at_ns: u64,
    /// How long it spins.
    pub for_ns: u64,
    /// Keep printing while stuck (a runaway loop that logs), instead of
    /// spinning silently.
    pub printk: bool,
}

/// The workload of one run.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Per CPU: its task load, if any (idle otherwise).
    pub tasks: Vec<Option<TaskSpec>>,
    /// The run's seed.
    pub seed: u64,
}

/// A message of exactly `len` bytes: a self-describing prefix, then filler.
pub struct Msg {
    /// Printing CPU.
    pub cpu: usize,
    /// Context it prints from.
    pub context: Context,
    /// Per CPU and context, the message number.
    pub n: u64,
    /// Total length.
    pub len: usize,
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prefix = klog::record::TextBuf::<48>::new();
        prefix.format(format_args!(
            "cpu{} {} #{} ",
            self.cpu, self.context, self.n
        ));
        let p = prefix.as_bytes();
        let head = p.get(..self.len.min(p.len())).unwrap_or(&[]);
        f.write_str(core::str::from_utf8(head).unwrap_or(""))?;
        let fill = b"abcdefghijklmnopqrstuvwxyz";
        let mut left = self.len - head.len();
        while left > 0 {
            let n = left.min(fill.len());
            f.write_str(core::str::from_utf8(fill.get(..n).unwrap_or(&[])).unwrap_or(""))?;
            left -= n;
        }
        Ok(())
    }
}

/// Check a message text made by [`Msg`]: its CPU, context and number if
/// the text is exactly what `Msg` writes for them (prefix, then filler),
/// `None` if it is torn or foreign. A message shorter than its prefix is
/// accepted if it is a prefix of what `Msg` would write.
pub fn parse_msg(text: &str) -> Option<(usize, Context, u64)> {
    let rest = text.strip_prefix("cpu")?;
    let mut parts = rest.splitn(3, ' ');
    let cpu: usize = parts.next()?.parse().ok()?;
    let context = Context::by_name(parts.next()?)?;
    let tail = parts.next()?;
    let n: u64 = tail.strip_prefix('#')?.split(' ').next()?.parse().ok()?;
    let expect = Msg {
        cpu,
        context,
        n,
        len: text.len(),
    }
    .to_string();
    (expect == text).then_some((cpu, context, n))
}

static TASK: Frame = Frame("printk_workload");
static STALL: Frame = Frame("stall_spin");
static STALL_BODY: Frame = Frame("stall_loop_body");

/// printk `msg` as one line in `pieces` calls, recording each call's latency
/// under context level `level_idx`. Signal-safe: the text is rendered into
/// a stack buffer.
fn print_in_pieces(m: &Machine, level: Level, msg: &Msg, pieces: u32, level_idx: usize) {
    let mut full = klog::record::TextBuf::<{ klog::record::TEXT_MAX }>::new();
    full.format(format_args!("{msg}"));
    let text = core::str::from_utf8(full.as_bytes()).unwrap_or("");
    let pieces = (pieces.max(1) as usize).min(text.len().max(1));
    let step = text.len().div_ceil(pieces);
    let mut at = 0;
    for i in 0..pieces {
        let end = (at + step).min(text.len());
        let part = text.get(at..end).unwrap_or("");
        let cont = if i == 0 { "" } else { klog::record::KERN_CONT };
        let nl = if i + 1 == pieces { "\n" } else { "" };
        let t0 = m.now_ns();
        m.printk(level, format_args!("{cont}{part}{nl}"));
        m.record_latency(level_idx, t0);
        at = end;
    }
}
static WARN: Frame = Frame("__warn");

/// Spin for the stall's length with interrupts (or preemption) off, as a
/// CPU stuck in a loop does; the end of the run ends it early.
fn stall_spin(
    m: &Machine,
    c: &crate::machine::Cpu,
    st: Stall,
    gap_ns: u64,
    mut print: impl FnMut(),
) {
    m.push_frame(&STALL);
    let end = m.now_ns().saturating_add(st.for_ns);
    let preempt_off = st.kind == StallKind::PreemptOff;
    c.begin_stall(preempt_off);
    let flags = (st.kind == StallKind::IrqsOff).then(|| m.local_irq_save());
    // Printing, it keeps its rate by busy-waiting: a CPU that is stuck
    // cannot sleep.
    let mut next = m.now_ns();
    while m.now_ns() < end && !m.stopping() {
        if st.printk && m.now_ns() >= next {
            print();
            next = next.saturating_add(gap_ns);
        }
        // The loop calls something, as stuck kernel loops do: the stack
        // keeps changing under anyone who walks it from outside.
        m.push_frame(&STALL_BODY);
        core::hint::spin_loop();
        m.pop_frame();
    }
    c.end_stall(preempt_off);
    if let Some(flags) = flags {
        if m.stopping() {
            // The run ended during the stall: what waited for interrupts
            // to come back on never ran within it.
            c.drop_pending_irq();
        }
        m.local_irq_restore(flags);
    }
    m.pop_frame();
}

impl Workload {
    /// When `cpu`'s first message is due: the CPUs with a load start spread
    /// evenly over one period of its rate (CPU 0 at once), so which CPU
    /// prints first, and how their periods interleave, follows from the
    /// scenario and not from which thread woke first at the start gate.
    fn first_print_ns(&self, cpu: usize, cpus: usize) -> u64 {
        match self.tasks.get(cpu).copied().flatten() {
            Some(t) if t.printk_hz > 0 && cpus > 0 => {
                let gap_ns = 1_000_000_000 / u64::from(t.printk_hz);
                gap_ns / cpus as u64 * cpu as u64
            }
            _ => 0,
        }
    }
}

impl Work for Workload {
    /// The task-context loop of `cpu`, until the machine stops.
    fn task_loop(&self, m: &Machine, cpu: usize) {
        let Some(c) = m.cpus().get(cpu) else {
            return;
        };
        let spec = self.tasks.get(cpu).copied().flatten();
        let mut rng = Rng::new(self.seed ^ (cpu as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let (nmi, irq) = (rng.next_u64(), rng.next_u64());
        c.seed_rngs(nmi, irq);
        m.push_frame(Machine::idle_frame());
        let mut next = m.now_ns().max(self.first_print_ns(cpu, m.cpus().len()));
        let mut n = 0;
        let mut stall = spec.and_then(|t| t.stall);
        let print_one = |rng: &mut Rng, n: &mut u64, t: &TaskSpec| {
            m.push_frame(&TASK);
            let len = rng.range(t.len);
            let msg = Msg {
                cpu,
                context: Context::Task,
                n: *n,
                len,
            };
            print_in_pieces(m, t.level, &msg, t.pieces, 0);
            m.pop_frame();
            *n += 1;
        };
        while !m.stopping() && m.now_ns() < next {
            let left = next.saturating_sub(m.now_ns());
            std::thread::sleep(Duration::from_nanos(left.min(1_000_000)));
            // Sleeping is not being stuck: the soft-lockup detector's
            // thread could run.
            c.made_progress();
        }
        while !m.stopping() {
            if let (Some(st), Some(t)) = (stall.filter(|st| m.now_ns() >= st.at_ns), spec) {
                stall = None;
                let gap_ns = 1_000_000_000 / u64::from(t.printk_hz.max(1));
                stall_spin(m, c, st, gap_ns, || print_one(&mut rng, &mut n, &t));
            }
            match spec {
                Some(t) if t.count == 0 || n < t.count => {
                    print_one(&mut rng, &mut n, &t);
                    if t.printk_hz > 0 {
                        next += 1_000_000_000 / u64::from(t.printk_hz);
                        let now = m.now_ns();
                        if next > now {
                            std::thread::sleep(Duration::from_nanos(next - now));
                        } else {
                            next = now;
                        }
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
            c.made_progress();
        }
        m.pop_frame();
    }

    /// An interrupt handler's work for source `source` on `cpu`, in NMI or
    /// hardirq context. Runs in signal context: no allocation, no locks but
    /// klog's.
    fn interrupt(&self, m: &Machine, cpu: usize, source: usize) {
        let (Some(c), Some(s)) = (m.cpus().get(cpu), m.source(source)) else {
            return;
        };
        let context = c.context();
        // One number per `[[irq]]` handler run, even when one IRQ entry
        // handles several (it also tells a CPU waiting at a point that the
        // handler has begun).
        let irq_run = if context == Context::Nmi {
            0
        } else {
            c.next_irq_action()
        };
        let level_idx = usize::from(context.level());
        let rng_state = c.rng_state(context);
        match s.action {
            NmiAction::Nothing => {}
            NmiAction::Printk { lines, len, level } => {
                let mut rng = Rng::new(rng_state.load(Ordering::Relaxed));
                let n0 = if context == Context::Nmi {
                    c.nmis_handled()
                } else {
                    irq_run
                };
                for line in 0..u64::from(lines) {
                    if m.stopping() {
                        break;
                    }
                    let msg = Msg {
                        cpu,
                        context,
                        n: n0 * 1000 + line,
                        len: rng.range(len),
                    };
                    print_in_pieces(m, level, &msg, 1, level_idx);
                }
                rng_state.store(rng.next_u64(), Ordering::Relaxed);
            }
            NmiAction::Backtrace { serialize } => m.nmi_cpu_backtrace(cpu, serialize),
            NmiAction::BacktraceAll(dump) if context == Context::Nmi => {
                m.nmi_cpu_backtrace(cpu, dump.serialize)
            }
            NmiAction::BacktraceAll(dump) => m.backtrace_all(cpu, source, dump),
            NmiAction::Warn => {
                m.design().emergency_enter(m);
                m.push_frame(&WARN);
                // The WARN is "at" the function the interrupt landed in.
                let (mut at, mut inside) = ("?", false);
                c.for_each_frame(|f| {
                    inside |= f == "irq_handler" || f == "nmi_handler";
                    if !inside {
                        at = f;
                    }
                });
                let t0 = m.now_ns();
                // __warn() (4.6 on, without a file and line): CUT_HERE,
                // then the WARNING line, both pr_warn().
                m.printk(
                    Level::Warning,
                    format_args!("------------[ cut here ]------------\n"),
                );
                m.printk(
                    Level::Warning,
                    format_args!(
                        "WARNING: CPU: {cpu} PID: {} at {at}+0x0/0x0\n",
                        m.task_pid()
                    ),
                );
                m.record_latency(level_idx, t0);
                // dump_stack() (under printk_cpu_sync where the design's
                // kernel had it).
                m.in_cpu_sync(|| m.print_stack(cpu, level_idx));
                m.pop_frame();
                m.design().emergency_exit(m);
            }
            NmiAction::Panic { stop_at } => m.panic(cpu, stop_at),
            NmiAction::Hang => m.hang(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_has_exact_length_and_prefix() {
        for len in [1, 5, 16, 40, 120] {
            let s = Msg {
                cpu: 3,
                context: Context::Nmi,
                n: 7,
                len,
            }
            .to_string();
            assert_eq!(s.len(), len);
            assert!("cpu3 nmi #7 abcdef".starts_with(&s[..len.min(12)]));
        }
    }

    #[test]
    fn parse_msg_accepts_whole_and_rejects_torn() {
        let m = Msg {
            cpu: 1,
            context: Context::Nmi,
            n: 42,
            len: 60,
        }
        .to_string();
        assert_eq!(parse_msg(&m), Some((1, Context::Nmi, 42)));
        let mut torn = m.clone();
        torn.replace_range(30..31, "X");
        assert_eq!(parse_msg(&torn), None);
        assert_eq!(
            parse_msg("cpu1 nmi #42 abcdefg"),
            Some((1, Context::Nmi, 42))
        );
        assert_eq!(parse_msg("cpu1 nmi #42 abcdefh"), None);
    }

    #[test]
    fn rng_is_deterministic() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        for _ in 0..10 {
            assert_eq!(a.range((16, 120)), b.range((16, 120)));
        }
    }
}
