//! lockdep, the part of it this simulator needs so far: per lock class, the
//! contexts it was acquired in, and the rules that say a deadlock *could*
//! happen even when the run was lucky.
//!
//! Usage is recorded at each acquisition ([`crate::lock`]), in atomics, from
//! any context; the rules are evaluated after the run. Each finding is
//! reported once per class, with the first example where there is one.
//!
//! | rule | when | the kernel's words |
//! |---|---|---|
//! | `nmi-unsafe-lock` | acquired (not trylocked) in NMI context and used in any other context | `inconsistent {INITIAL USE} -> {IN-NMI} usage.` |
//! | `inconsistent-irq-usage` | acquired (not trylocked) in hardirq context and in task context with interrupts on | `inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage.` |
//! | `circular-lock-order` | a cycle in the class order graph: A taken while B was held, and B (perhaps through others) while A was | `possible circular locking dependency detected` |
//!
//! The order graph: every CPU keeps the locks it holds, all contexts
//! together (an interrupt's locks go on top of those of the context it
//! interrupted, as they go on the interrupted task's list in the kernel);
//! taking a lock without a trylock adds an edge to it from every lock held
//! in the same context, as `check_prevs_add()` does: an order between a
//! lock held in task context and one taken in an interrupt handler on the
//! same CPU is for the usage rules, not for the order graph. Each report carries the kernel's "Possible unsafe locking scenario"
//! box. Not modelled: sleeping in atomic context (no design here sleeps).

use core::fmt::Write;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::context::Context;
use crate::era::Kernel;
use crate::lock::{LockCore, Owner};

/// How many locks one CPU may hold at once for the order graph (deeper
/// nesting is counted but not tracked).
pub const MAX_HELD: usize = 8;

/// The locks one CPU holds, all its contexts together, innermost last,
/// each with the context it was taken in (an interrupt's locks go on top of
/// those of the context it interrupted, as on the interrupted task's list
/// in the kernel). Changed only by the owning CPU (an interrupt's pushes and
/// pops are balanced before it returns); atomics so the watchdog could read
/// it.
#[derive(Debug, Default)]
pub struct Held {
    depth: AtomicUsize,
    ids: [AtomicUsize; MAX_HELD],
    contexts: [AtomicU8; MAX_HELD],
}

impl Held {
    /// The locks held now in the context at the top of the list,
    /// innermost first, stopping where another context's begin: the ones
    /// `check_prevs_add()` links a new acquisition to (it walks the held
    /// locks back and stops where `irq_context` changes). `context` is the
    /// acquiring context's level; locks of another are never visited.
    pub fn each_in_context(&self, context: u8, mut f: impl FnMut(usize)) {
        let d = self.depth.load(Ordering::Relaxed).min(MAX_HELD);
        for (slot, ctx) in self.ids.iter().zip(&self.contexts).take(d).rev() {
            if ctx.load(Ordering::Relaxed) != context {
                break;
            }
            f(slot.load(Ordering::Relaxed));
        }
    }

    pub(crate) fn push(&self, id: usize, context: u8) {
        let d = self.depth.load(Ordering::Relaxed);
        if let (Some(slot), Some(ctx)) = (self.ids.get(d), self.contexts.get(d)) {
            slot.store(id, Ordering::Relaxed);
            ctx.store(context, Ordering::Relaxed);
        }
        self.depth.store(d + 1, Ordering::Relaxed);
    }

    pub(crate) fn pop(&self, id: usize) {
        let d = self.depth.load(Ordering::Relaxed);
        if d == 0 {
            return;
        }
        if d > MAX_HELD {
            self.depth.store(d - 1, Ordering::Relaxed);
            return;
        }
        // Usually the top; otherwise close the gap it leaves.
        let Some(at) = (0..d).rev().find(|&i| {
            self.ids
                .get(i)
                .is_some_and(|s| s.load(Ordering::Relaxed) == id)
        }) else {
            return;
        };
        for i in at..d - 1 {
            if let (Some(to), Some(from)) = (self.ids.get(i), self.ids.get(i + 1)) {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            if let (Some(to), Some(from)) = (self.contexts.get(i), self.contexts.get(i + 1)) {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        self.depth.store(d - 1, Ordering::Relaxed);
    }
}

/// Usage bits, one per way a class was acquired.
pub mod usage {
    /// In task context with interrupts on (`HARDIRQ-ON`).
    pub const TASK_IRQS_ON: u32 = 1 << 0;
    /// In task context with interrupts off.
    pub const TASK_IRQS_OFF: u32 = 1 << 1;
    /// While serving a softirq.
    pub const SOFTIRQ: u32 = 1 << 2;
    /// In a hardirq handler (`IN-HARDIRQ`).
    pub const HARDIRQ: u32 = 1 << 3;
    /// In an NMI handler, spinning (not a trylock).
    pub const NMI: u32 = 1 << 4;
    /// In an NMI handler, by trylock (allowed).
    pub const NMI_TRY: u32 = 1 << 5;
    /// In a softirq or hardirq, by trylock (does not make the class
    /// interrupt-safe, as in the kernel).
    pub const IRQ_TRY: u32 = 1 << 6;
    /// Any use outside NMI context.
    pub const OUTSIDE_NMI: u32 = TASK_IRQS_ON | TASK_IRQS_OFF | SOFTIRQ | HARDIRQ | IRQ_TRY;
    /// Not a usage: the first NMI use came after a use outside NMI (the
    /// only order the kernel's `verify_lock_unused()` catches).
    pub const NMI_AFTER_OTHER: u32 = 1 << 7;
    /// Not a usage: the first hardirq use came after a task use with
    /// interrupts on.
    pub const HARDIRQ_AFTER_IRQS_ON: u32 = 1 << 8;
}

/// The rule a lockdep finding broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A lock taken in NMI context and also anywhere else.
    NmiUnsafeLock,
    /// A lock taken in a hardirq handler and, elsewhere, with interrupts
    /// on.
    InconsistentIrqUsage,
    /// Two locks taken in both orders (in the same context).
    CircularLockOrder,
}

impl Rule {
    /// The name tables and JSON use.
    pub fn name(self) -> &'static str {
        match self {
            Rule::NmiUnsafeLock => "nmi-unsafe-lock",
            Rule::InconsistentIrqUsage => "inconsistent-irq-usage",
            Rule::CircularLockOrder => "circular-lock-order",
        }
    }
}

impl core::fmt::Display for Rule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One lockdep finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule broken.
    pub rule: Rule,
    /// The lock class.
    pub lock: &'static str,
    /// The kernel's wording, the first usage first.
    pub message: &'static str,
    /// The example: CPU, context and acquire point of the acquisition that
    /// broke the rule, where known.
    pub example: Option<crate::lock::Owner>,
    /// The kernel's "Possible unsafe locking scenario" box.
    pub scenario: String,
    /// The example's call trace, outermost first, where known.
    pub stack: Vec<&'static str>,
    /// Whether the design's kernel's lockdep would have printed this; if
    /// not, it is printk-sim's own finding, and `why` says why.
    pub kernel: bool,
    /// Why the kernel of the design's era would not have printed it
    /// (empty when it would have).
    pub why: &'static str,
    /// The whole report as that kernel's lockdep prints it.
    pub report: String,
}

/// The task name and pid a report shows for CPU `cpu`'s task.
fn task(cpu: usize) -> String {
    format!("printk_workload/{}", 100 + cpu)
}

/// `print_kernel_ident()`: release, version, taint.
fn ident(kernel: Kernel) -> String {
    format!("{kernel}.0-printk-sim #1 Not tainted")
}

/// The banner of a lockdep report: `title` between rules as wide as it,
/// "WARNING: ..." from 4.11, "[ INFO: ... ]" before.
fn banner(out: &mut String, kernel: Kernel, title: &str) {
    let title = if kernel.lockdep_warning_banner() {
        format!("WARNING: {title}")
    } else {
        format!("[ INFO: {title} ]")
    };
    let _ = write!(
        out,
        "\n{}\n{title}\n{}\n{}\n",
        "=".repeat(title.len()),
        ident(kernel),
        "-".repeat(title.len())
    );
}

/// `[HC%u[%lu]:SC%u[%lu]:HE%u:SE%u]` for an acquisition in `context`.
fn irq_state(context: Context) -> &'static str {
    match context {
        Context::Nmi | Context::Hardirq => "[HC1[1]:SC0[0]:HE0:SE1]",
        Context::Softirq => "[HC0[0]:SC1[1]:HE1:SE0]",
        Context::Task => "[HC0[0]:SC0[0]:HE1:SE1]",
    }
}

/// `print_lock()`: " (name){usage}, at: where".
fn lock_line(lock: &LockCore, stack: &[&str]) -> String {
    let used = lock.usage();
    // get_usage_chars(): per state, '-' used in that interrupt, '+' used
    // with it enabled, '?' both, '.' neither; write then read.
    let state = |in_irq: u32, enabled: u32| match (used & in_irq != 0, used & enabled != 0) {
        (true, true) => '?',
        (true, false) => '-',
        (false, true) => '+',
        (false, false) => '.',
    };
    let hard = state(usage::HARDIRQ, usage::TASK_IRQS_ON);
    let soft = state(usage::SOFTIRQ, usage::TASK_IRQS_ON);
    let at = stack.last().copied().unwrap_or("?");
    format!(" ({}){{{hard}.{soft}.}}, at: {at}+0x0/0x0\n", lock.name())
}

fn trace(out: &mut String, stack: &[&str]) {
    for frame in stack.iter().rev() {
        let _ = writeln!(out, "  {frame}+0x0/0x0");
    }
}

/// `print_usage_bug()`: `first` was registered, `then` happened at `ex`.
fn usage_report(
    kernel: Kernel,
    lock: &LockCore,
    (first, first_ex): Usage,
    (then, then_ex): Usage,
) -> String {
    let mut out = String::new();
    banner(&mut out, kernel, "inconsistent lock state");
    let _ = writeln!(out, "inconsistent {{{first}}} -> {{{then}}} usage.");
    let (cpu, context, stack) = then_ex.map_or((0, Context::Task, Vec::new()), |(o, s)| {
        (o.cpu, o.context, s)
    });
    let _ = writeln!(out, "{} {} takes:", task(cpu), irq_state(context));
    out.push_str(&lock_line(lock, &stack));
    let _ = writeln!(out, "{{{first}}} state was registered at:");
    trace(&mut out, first_ex.as_ref().map_or(&[][..], |e| &e.1[..]));
    out.push_str("\nother info that might help us debug this:\n");
    out.push_str(&irq_box(lock.name()));
    out.push_str("\nstack backtrace:\n");
    trace(&mut out, &stack);
    out
}

/// `print_usage_bug_scenario()`. The kernel prints `<Interrupt>` for
/// every kind of interrupt, an NMI included.
fn irq_box(lock: &str) -> String {
    format!(
        " Possible unsafe locking scenario:\n\n       CPU0\n       ----\n  lock({lock});\n  <Interrupt>\n    lock({lock});\n\n *** DEADLOCK ***\n\n"
    )
}

/// `print_circular_lock_scenario()`: CPU 0 holds `target` and takes
/// `source`; CPU 1 took `parent` (the lock just before `target` in the
/// existing chain) and takes `target`.
fn circular_box(source: &str, parent: &str, target: &str, chain: &[&str]) -> String {
    let col = " ".repeat(31);
    let mut out = String::new();
    if parent != source {
        let _ = write!(out, "Chain exists of:\n  {}\n\n", chain.join(" --> "));
    }
    out.push_str(" Possible unsafe locking scenario:\n\n");
    out.push_str("       CPU0                    CPU1\n");
    out.push_str("       ----                    ----\n");
    let _ = writeln!(out, "  lock({target});");
    let _ = writeln!(out, "{col}lock({parent});");
    let _ = writeln!(out, "{col}lock({target});");
    let _ = writeln!(out, "  lock({source});");
    out.push_str("\n *** DEADLOCK ***\n\n");
    out
}

/// `print_circular_bug()`: the acquisition of `source` at `ex` while
/// holding `target` closed `cycle` (source first, target last).
fn circular_report(kernel: Kernel, cycle: &[&LockCore], ex: Option<Owner>) -> (String, String) {
    let (Some(source), Some(target)) = (cycle.first(), cycle.last()) else {
        return (String::new(), String::new());
    };
    let parent = cycle
        .len()
        .checked_sub(2)
        .and_then(|i| cycle.get(i))
        .unwrap_or(source);
    let names: Vec<&str> = cycle.iter().map(|l| l.name()).collect();
    let scenario = circular_box(source.name(), parent.name(), target.name(), &names);
    let mut out = String::new();
    banner(
        &mut out,
        kernel,
        "possible circular locking dependency detected",
    );
    let cpu = ex.map_or(0, |o| o.cpu);
    let _ = writeln!(out, "{} is trying to acquire lock:", task(cpu));
    out.push_str(&lock_line(source, &[]));
    out.push_str("\nbut task is already holding lock:\n");
    out.push_str(&lock_line(target, &[]));
    out.push_str("\nwhich lock already depends on the new lock.\n\n");
    out.push_str("\nthe existing dependency chain (in reverse order) is:\n");
    for (depth, l) in cycle.iter().enumerate().rev() {
        let _ = write!(out, "\n-> #{depth} ({}):\n", l.name());
    }
    out.push_str("\nother info that might help us debug this:\n\n");
    out.push_str(&scenario);
    (scenario, out)
}

/// The findings for these lock classes, once each, told as the lockdep
/// of `kernel` (the design's release) would, or marked as printk-sim's own.
pub fn check(locks: &[&LockCore], kernel: Kernel) -> Vec<Finding> {
    let mut out = Vec::new();
    for lock in locks {
        usage_findings(lock, kernel, &mut out);
    }
    cycle_findings(locks, kernel, &mut out);
    out
}

/// The usage rules for one lock class.
fn usage_findings(lock: &LockCore, kernel: Kernel, out: &mut Vec<Finding>) {
    let used = lock.usage();
    if used & usage::NMI != 0 && used & usage::OUTSIDE_NMI != 0 {
        // verify_lock_unused() (5.9) catches only a lock used before
        // it was taken in NMI context, and only while lockdep looks
        // at NMIs at all.
        let after = used & usage::NMI_AFTER_OTHER != 0;
        let (kernel_sees, why) = match (kernel.lockdep_sees_nmi(), after) {
            (true, true) => (true, ""),
            (true, false) => (false, "the kernel checks only a lock used before its first NMI use (verify_lock_unused()); here the NMI came first"),
            (false, _) => (false, "lockdep did not look at NMI context in this release (nmi_enter() turned it off until 5.9)"),
        };
        out.push(usage_bug(
            lock,
            kernel,
            Rule::NmiUnsafeLock,
            ("INITIAL USE", lock.first_other_use()),
            ("IN-NMI", lock.first_nmi_use()),
            after,
            [
                "inconsistent {INITIAL USE} -> {IN-NMI} usage.",
                "inconsistent {IN-NMI} -> {INITIAL USE} usage.",
            ],
            (kernel_sees, why),
        ));
    }
    if used & usage::HARDIRQ != 0 && used & usage::TASK_IRQS_ON != 0 {
        out.push(usage_bug(
            lock,
            kernel,
            Rule::InconsistentIrqUsage,
            ("HARDIRQ-ON-W", lock.first_irqs_on_use()),
            ("IN-HARDIRQ-W", lock.first_hardirq_use()),
            used & usage::HARDIRQ_AFTER_IRQS_ON != 0,
            [
                "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage.",
                "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.",
            ],
            (true, ""),
        ));
    }
}

/// A usage name and the first acquisition that made it.
type Usage = (&'static str, Option<(Owner, Vec<&'static str>)>);

/// One usage rule broken: `plain` (outside the interrupt) and `irq` (in
/// it) told in the order they happened (`messages[0]` when `plain` came
/// first), the example being the interrupt's acquisition.
#[allow(clippy::too_many_arguments)]
fn usage_bug(
    lock: &LockCore,
    kernel: Kernel,
    rule: Rule,
    plain: Usage,
    irq: Usage,
    plain_first: bool,
    messages: [&'static str; 2],
    (kernel_sees, why): (bool, &'static str),
) -> Finding {
    let (example, stack) = irq
        .1
        .clone()
        .map_or((None, Vec::new()), |(o, s)| (Some(o), s));
    let (message, report) = if plain_first {
        (messages[0], usage_report(kernel, lock, plain, irq))
    } else {
        (messages[1], usage_report(kernel, lock, irq, plain))
    };
    Finding {
        rule,
        lock: lock.name(),
        message,
        example,
        scenario: irq_box(lock.name()),
        stack,
        kernel: kernel_sees,
        why,
        report,
    }
}

/// The order graph: a cycle through each lock, reported once per cycle
/// (at its first lock in `locks` order).
// Runs in `check()`, after the run, on indices it made itself.
#[allow(clippy::indexing_slicing)]
fn cycle_findings(locks: &[&LockCore], kernel: Kernel, out: &mut Vec<Finding>) {
    let index = |id: usize| locks.iter().position(|l| l.id() == id);
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); locks.len()];
    for (b, l) in locks.iter().enumerate() {
        for a in l.before().into_iter().filter_map(index) {
            after[a].push(b);
        }
    }
    let mut reported: Vec<Vec<usize>> = Vec::new();
    for start in 0..locks.len() {
        // Shortest path back to `start`, breadth first.
        let mut prev: Vec<Option<usize>> = vec![None; locks.len()];
        let mut queue = std::collections::VecDeque::from([start]);
        let mut seen = vec![false; locks.len()];
        let mut found = None;
        while let Some(n) = queue.pop_front() {
            for &m in &after[n] {
                if m == start {
                    found = Some(n);
                    break;
                }
                if !seen[m] {
                    seen[m] = true;
                    prev[m] = Some(n);
                    queue.push_back(m);
                }
            }
            if found.is_some() {
                break;
            }
        }
        let Some(mut n) = found else {
            continue;
        };
        let mut cycle = vec![n];
        while let Some(p) = prev[n] {
            cycle.push(p);
            n = p;
        }
        if !cycle.contains(&start) {
            cycle.push(start);
        }
        let mut key = cycle.clone();
        key.sort_unstable();
        if reported.contains(&key) {
            continue;
        }
        reported.push(key);
        cycle.reverse();
        // `cycle` runs start -> ... -> last, and taking `start` while
        // holding `last` closed it: source `start`, target `last`.
        let ring: Vec<&LockCore> = cycle.iter().map(|&i| locks[i]).collect();
        let example = cycle
            .last()
            .and_then(|&i| locks[start].edge_example(locks[i].id()));
        let (scenario, report) = circular_report(kernel, &ring, example);
        out.push(Finding {
            rule: Rule::CircularLockOrder,
            lock: locks[start].name(),
            message: "possible circular locking dependency detected",
            example,
            scenario,
            stack: Vec::new(),
            kernel: true,
            why: "",
            report,
        });
    }
}
