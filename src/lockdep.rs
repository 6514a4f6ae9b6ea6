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
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::arch::{Arch, Frame};
use crate::context::Context;
use crate::era::Kernel;
use crate::owner::Owner;
use crate::point::Point;

pub use crate::held::{Held, MAX_HELD};

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

/// A lock class's lockdep state: the contexts it was taken in (usage bits,
/// with the first example of each), and the order graph's edges that end
/// at it. Every lock carries one; only lockdep reads and writes it.
#[derive(Debug)]
pub struct ClassState {
    /// Usage bits (see [`usage`]).
    usage: AtomicU32,
    /// The first non-try acquisition in NMI context, in hardirq context, in
    /// task context with interrupts on, and the first of any kind outside
    /// NMI context.
    first_nmi: Example,
    first_hardirq: Example,
    first_irqs_on: Example,
    first_other: Example,
    /// Ids of the locks held when this one was taken (the edges that end
    /// here), and for each the owner word of the acquisition that first
    /// made the edge.
    before: [AtomicUsize; MAX_HELD],
    before_tag: [AtomicU64; MAX_HELD],
}

impl ClassState {
    /// A class nothing has taken yet.
    pub const fn new() -> ClassState {
        ClassState {
            usage: AtomicU32::new(0),
            first_nmi: Example::new(),
            first_hardirq: Example::new(),
            first_irqs_on: Example::new(),
            first_other: Example::new(),
            before: [const { AtomicUsize::new(0) }; MAX_HELD],
            before_tag: [const { AtomicU64::new(0) }; MAX_HELD],
        }
    }

    /// The ids of the locks that were held when this one was
    /// taken.
    pub fn before(&self) -> Vec<usize> {
        self.before
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&id| id != 0)
            .collect()
    }

    /// Record that lock `id` was held when this one was taken: one relaxed
    /// load per slot when known already.
    fn note_before(&self, id: usize, tag: u64) {
        for (slot, slot_tag) in self.before.iter().zip(&self.before_tag) {
            match slot.load(Ordering::Relaxed) {
                x if x == id => return,
                0 => match slot.compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        slot_tag.store(tag, Ordering::Relaxed);
                        return;
                    }
                    Err(x) if x == id => return,
                    Err(_) => {}
                },
                _ => {}
            }
        }
    }

    /// Who first took this lock while holding lock `id`.
    pub fn edge_example(&self, id: usize) -> Option<Owner> {
        let i = self
            .before
            .iter()
            .position(|s| s.load(Ordering::Relaxed) == id)?;
        Owner::decode(self.before_tag.get(i)?.load(Ordering::Relaxed))
    }

    /// Before a (non-try) acquisition of lock `me` waits: every lock the
    /// calling CPU holds gains an edge to this one. Checked before the
    /// wait, as the kernel's lock_acquire() does, so an order that is
    /// about to deadlock is on record.
    pub(crate) fn note_edges<A: Arch>(&self, arch: &A, me: usize, at: Option<Point>) {
        let Some(held) = arch.lockdep_held() else {
            return;
        };
        let context = arch.context();
        let tag = Owner::encode(arch.this_cpu(), context, at);
        held.each_in_context(context.level(), |id| {
            if id != me {
                self.note_before(id, tag);
            }
        });
    }

    /// Record the context this acquisition is made in. One
    /// relaxed load when the bit is known already.
    pub(crate) fn note_use<A: Arch>(&self, arch: &A, at: Option<Point>, trylock: bool) {
        let context = arch.context();
        let bit = match context {
            Context::Task if arch.irqs_disabled() => usage::TASK_IRQS_OFF,
            Context::Task => usage::TASK_IRQS_ON,
            // As in the kernel, a trylock does not make a class
            // interrupt-safe: it cannot wait for the context it interrupted.
            Context::Softirq | Context::Hardirq if trylock => usage::IRQ_TRY,
            Context::Softirq => usage::SOFTIRQ,
            Context::Hardirq => usage::HARDIRQ,
            Context::Nmi if trylock => usage::NMI_TRY,
            Context::Nmi => usage::NMI,
        };
        if self.usage.load(Ordering::Relaxed) & bit == 0 {
            let before = self.usage.fetch_or(bit, Ordering::Relaxed);
            // Which of two usages came first decides the report's order
            // (and whether the kernel's one-way NMI check sees it).
            match bit {
                usage::NMI => {
                    self.first_nmi.record(arch, context, at);
                    if before & usage::OUTSIDE_NMI != 0 {
                        self.usage
                            .fetch_or(usage::NMI_AFTER_OTHER, Ordering::Relaxed);
                    }
                }
                usage::HARDIRQ => {
                    self.first_hardirq.record(arch, context, at);
                    if before & usage::TASK_IRQS_ON != 0 {
                        self.usage
                            .fetch_or(usage::HARDIRQ_AFTER_IRQS_ON, Ordering::Relaxed);
                    }
                }
                usage::TASK_IRQS_ON => self.first_irqs_on.record(arch, context, at),
                _ => {}
            }
            if bit & usage::OUTSIDE_NMI != 0 {
                self.first_other.record(arch, context, at);
            }
        }
    }

    /// The lockdep usage bits so far.
    pub fn usage(&self) -> u32 {
        self.usage.load(Ordering::Relaxed)
    }

    /// Where the first non-try acquisition in NMI context happened, and
    /// its call trace (outermost first).
    pub fn first_nmi_use(&self) -> Option<(Owner, Vec<&'static str>)> {
        self.first_nmi.get()
    }

    /// The same for hardirq context.
    pub fn first_hardirq_use(&self) -> Option<(Owner, Vec<&'static str>)> {
        self.first_hardirq.get()
    }

    /// The same for task context with interrupts on.
    pub fn first_irqs_on_use(&self) -> Option<(Owner, Vec<&'static str>)> {
        self.first_irqs_on.get()
    }

    /// The first acquisition of any kind outside NMI context.
    pub fn first_other_use(&self) -> Option<(Owner, Vec<&'static str>)> {
        self.first_other.get()
    }
}

impl Default for ClassState {
    fn default() -> Self {
        Self::new()
    }
}

/// The calling CPU now holds lock `id`: on its list for the order graph.
pub(crate) fn acquired<A: Arch>(arch: &A, id: usize) {
    if let Some(held) = arch.lockdep_held() {
        held.push(id, arch.context().level());
    }
}

/// What lockdep needs of a lock after the run: its class name, its id and
/// its class state.
pub trait LockClass {
    /// The class name (the lock's name).
    fn class_name(&self) -> &'static str;
    /// The lock's id (as in [`Held`] and the wait registry).
    fn class_id(&self) -> usize;
    /// Its lockdep state.
    fn class_state(&self) -> &ClassState;
}

/// Frames kept of a lockdep example's call trace.
const STACK_MAX: usize = 16;

/// A lockdep example: who took the lock (owner word: CPU, context,
/// point) and the call trace then. Set once, by the first to get there.
#[derive(Debug)]
struct Example {
    tag: AtomicU64,
    stack: [AtomicPtr<Frame>; STACK_MAX],
}

impl Example {
    const fn new() -> Example {
        Example {
            tag: AtomicU64::new(0),
            stack: [const { AtomicPtr::new(core::ptr::null_mut()) }; STACK_MAX],
        }
    }

    /// Record the calling CPU's acquisition, if this is the first.
    fn record<A: Arch>(&self, arch: &A, context: Context, at: Option<Point>) {
        let tag = Owner::encode(arch.this_cpu(), context, at);
        if self
            .tag
            .compare_exchange(0, tag, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let mut frames = [None; STACK_MAX];
        let n = arch.stack(&mut frames);
        for (slot, f) in self.stack.iter().zip(frames.iter().take(n)) {
            let p = f.map_or(core::ptr::null_mut(), |f| f as *const Frame as *mut Frame);
            slot.store(p, Ordering::Relaxed);
        }
    }

    /// The example, if there is one.
    fn get(&self) -> Option<(Owner, Vec<&'static str>)> {
        let owner = Owner::decode(self.tag.load(Ordering::Relaxed))?;
        let stack = self
            .stack
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .take_while(|p| !p.is_null())
            // SAFETY: only `record` stores here, and only pointers made
            // from `&'static Frame`.
            .filter_map(|p| unsafe { p.as_ref() })
            .map(|f| f.0)
            .collect();
        Some((owner, stack))
    }
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
    pub example: Option<Owner>,
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
fn lock_line(lock: &dyn LockClass, stack: &[&str]) -> String {
    let used = lock.class_state().usage();
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
    format!(
        " ({}){{{hard}.{soft}.}}, at: {at}+0x0/0x0\n",
        lock.class_name()
    )
}

fn trace(out: &mut String, stack: &[&str]) {
    for frame in stack.iter().rev() {
        let _ = writeln!(out, "  {frame}+0x0/0x0");
    }
}

/// `print_usage_bug()`: `first` was registered, `then` happened at `ex`.
fn usage_report(
    kernel: Kernel,
    lock: &dyn LockClass,
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
    out.push_str(&irq_box(lock.class_name()));
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
fn circular_report(
    kernel: Kernel,
    cycle: &[&dyn LockClass],
    ex: Option<Owner>,
) -> (String, String) {
    let (Some(source), Some(target)) = (cycle.first(), cycle.last()) else {
        return (String::new(), String::new());
    };
    let parent = cycle
        .len()
        .checked_sub(2)
        .and_then(|i| cycle.get(i))
        .unwrap_or(source);
    let names: Vec<&str> = cycle.iter().map(|l| l.class_name()).collect();
    let scenario = circular_box(
        source.class_name(),
        parent.class_name(),
        target.class_name(),
        &names,
    );
    let mut out = String::new();
    banner(
        &mut out,
        kernel,
        "possible circular locking dependency detected",
    );
    let cpu = ex.map_or(0, |o| o.cpu);
    let _ = writeln!(out, "{} is trying to acquire lock:", task(cpu));
    out.push_str(&lock_line(*source, &[]));
    out.push_str("\nbut task is already holding lock:\n");
    out.push_str(&lock_line(*target, &[]));
    out.push_str("\nwhich lock already depends on the new lock.\n\n");
    out.push_str("\nthe existing dependency chain (in reverse order) is:\n");
    for (depth, l) in cycle.iter().enumerate().rev() {
        let _ = write!(out, "\n-> #{depth} ({}):\n", l.class_name());
    }
    out.push_str("\nother info that might help us debug this:\n\n");
    out.push_str(&scenario);
    (scenario, out)
}

/// The findings for these lock classes, once each, told as the lockdep
/// of `kernel` (the design's release) would, or marked as printk-sim's own.
pub fn check<L: LockClass>(locks: &[&L], kernel: Kernel) -> Vec<Finding> {
    let locks: Vec<&dyn LockClass> = locks.iter().map(|&l| l as &dyn LockClass).collect();
    let mut out = Vec::new();
    for &lock in &locks {
        usage_findings(lock, kernel, &mut out);
    }
    cycle_findings(&locks, kernel, &mut out);
    out
}

/// The usage rules for one lock class.
fn usage_findings(lock: &dyn LockClass, kernel: Kernel, out: &mut Vec<Finding>) {
    let used = lock.class_state().usage();
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
            Conflict::Nmi,
            after,
            (kernel_sees, why),
        ));
    }
    if used & usage::HARDIRQ != 0 && used & usage::TASK_IRQS_ON != 0 {
        let after = used & usage::HARDIRQ_AFTER_IRQS_ON != 0;
        out.push(usage_bug(
            lock,
            kernel,
            Conflict::Hardirq,
            after,
            (true, ""),
        ));
    }
}

/// A usage name and the first acquisition that made it.
type Usage = (&'static str, Option<(Owner, Vec<&'static str>)>);

/// The two usage rules: a lock used both outside an interrupt and in it.
#[derive(Clone, Copy)]
enum Conflict {
    /// Used in NMI context and outside it.
    Nmi,
    /// Used in a hardirq and with interrupts on.
    Hardirq,
}

impl Conflict {
    /// The rule broken.
    fn rule(self) -> Rule {
        match self {
            Conflict::Nmi => Rule::NmiUnsafeLock,
            Conflict::Hardirq => Rule::InconsistentIrqUsage,
        }
    }

    /// The two usages as lockdep names them: outside the interrupt, in it.
    fn usage_names(self) -> [&'static str; 2] {
        match self {
            Conflict::Nmi => ["INITIAL USE", "IN-NMI"],
            Conflict::Hardirq => ["HARDIRQ-ON-W", "IN-HARDIRQ-W"],
        }
    }

    /// lockdep's message when the outside use came first, and when the
    /// interrupt's did.
    fn messages(self) -> [&'static str; 2] {
        match self {
            Conflict::Nmi => [
                "inconsistent {INITIAL USE} -> {IN-NMI} usage.",
                "inconsistent {IN-NMI} -> {INITIAL USE} usage.",
            ],
            Conflict::Hardirq => [
                "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage.",
                "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage.",
            ],
        }
    }

    /// The two usages (outside the interrupt, in it), each with its first
    /// use.
    fn usages(self, lock: &dyn LockClass) -> (Usage, Usage) {
        let state = lock.class_state();
        let [plain, irq] = self.usage_names();
        match self {
            Conflict::Nmi => (
                (plain, state.first_other_use()),
                (irq, state.first_nmi_use()),
            ),
            Conflict::Hardirq => (
                (plain, state.first_irqs_on_use()),
                (irq, state.first_hardirq_use()),
            ),
        }
    }
}

/// One usage rule broken: the use outside the interrupt and the one in it,
/// told in the order they happened (`plain_first`: the outside use came
/// first), and whether the kernel's lockdep would have said so (and if
/// not, why).
fn usage_bug(
    lock: &dyn LockClass,
    kernel: Kernel,
    conflict: Conflict,
    plain_first: bool,
    (kernel_sees, why): (bool, &'static str),
) -> Finding {
    let (rule, messages) = (conflict.rule(), conflict.messages());
    let (plain, irq) = conflict.usages(lock);
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
        lock: lock.class_name(),
        message,
        example,
        scenario: irq_box(lock.class_name()),
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
fn cycle_findings(locks: &[&dyn LockClass], kernel: Kernel, out: &mut Vec<Finding>) {
    let index = |id: usize| locks.iter().position(|l| l.class_id() == id);
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); locks.len()];
    for (b, l) in locks.iter().enumerate() {
        for a in l.class_state().before().into_iter().filter_map(index) {
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
        let ring: Vec<&dyn LockClass> = cycle.iter().map(|&i| locks[i]).collect();
        let example = cycle
            .last()
            .and_then(|&i| locks[start].class_state().edge_example(locks[i].class_id()));
        let (scenario, report) = circular_report(kernel, &ring, example);
        out.push(Finding {
            rule: Rule::CircularLockOrder,
            lock: locks[start].class_name(),
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
