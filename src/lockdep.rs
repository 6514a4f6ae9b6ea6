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
//! taking a lock without a trylock adds an edge from every lock held to
//! it. Each report carries the kernel's "Possible unsafe locking scenario"
//! box. Not modelled: sleeping in atomic context (no design here sleeps).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::lock::LockCore;

/// How many locks one CPU may hold at once for the order graph (deeper
/// nesting is counted but not tracked).
pub const MAX_HELD: usize = 8;

/// The locks one CPU holds, all its contexts together, innermost last.
/// Changed only by the owning CPU (an interrupt's pushes and pops are
/// balanced before it returns); atomics so the watchdog could read it.
#[derive(Debug, Default)]
pub struct Held {
    depth: AtomicUsize,
    ids: [AtomicUsize; MAX_HELD],
}

impl Held {
    /// Every lock id held now, outermost first.
    pub fn each(&self, mut f: impl FnMut(usize)) {
        let d = self.depth.load(Ordering::Relaxed).min(MAX_HELD);
        for slot in self.ids.iter().take(d) {
            f(slot.load(Ordering::Relaxed));
        }
    }

    pub(crate) fn push(&self, id: usize) {
        let d = self.depth.load(Ordering::Relaxed);
        if let Some(slot) = self.ids.get(d) {
            slot.store(id, Ordering::Relaxed);
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
}

/// One lockdep finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `nmi-unsafe-lock` or `inconsistent-irq-usage`.
    pub rule: &'static str,
    /// The lock class.
    pub lock: &'static str,
    /// The kernel's wording.
    pub message: &'static str,
    /// The first example: CPU, context and acquire point, where known.
    pub example: Option<crate::lock::Owner>,
    /// The kernel's "Possible unsafe locking scenario" box.
    pub scenario: String,
    /// The first example's call trace, outermost first, where known.
    pub stack: Vec<&'static str>,
}

fn irq_box(lock: &str, interrupt: &str) -> String {
    format!(
        " Possible unsafe locking scenario:\n\n       CPU0\n       ----\n  lock({lock});\n  <{interrupt}>\n    lock({lock});\n\n *** DEADLOCK ***\n"
    )
}

fn abba_box(a: &str, b: &str) -> String {
    let pad = |s: String| format!("{s:<32}");
    let mut out = String::from(" Possible unsafe locking scenario:\n\n");
    out.push_str(&format!("       {}CPU1\n", pad("CPU0".into())));
    out.push_str(&format!("       {}----\n", pad("----".into())));
    out.push_str(&format!("  lock({a});\n"));
    out.push_str(&format!("       {}lock({b});\n", pad(String::new())));
    out.push_str(&format!("       {}lock({a});\n", pad(String::new())));
    out.push_str(&format!("  lock({b});\n\n *** DEADLOCK ***\n"));
    out
}

/// The findings for these lock classes, once each.
pub fn check(locks: &[&LockCore]) -> Vec<Finding> {
    let mut out = Vec::new();
    for lock in locks {
        let used = lock.usage();
        if used & usage::NMI != 0 && used & usage::OUTSIDE_NMI != 0 {
            out.push(Finding {
                rule: "nmi-unsafe-lock",
                lock: lock.name(),
                message: "inconsistent {INITIAL USE} -> {IN-NMI} usage.",
                example: lock.first_nmi_use().map(|e| e.0),
                scenario: irq_box(lock.name(), "NMI"),
                stack: lock.first_nmi_use().map(|e| e.1).unwrap_or_default(),
            });
        }
        if used & usage::HARDIRQ != 0 && used & usage::TASK_IRQS_ON != 0 {
            out.push(Finding {
                rule: "inconsistent-irq-usage",
                lock: lock.name(),
                message: "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage.",
                example: lock.first_hardirq_use().map(|e| e.0),
                scenario: irq_box(lock.name(), "Interrupt"),
                stack: lock.first_hardirq_use().map(|e| e.1).unwrap_or_default(),
            });
        }
    }
    // The order graph: a cycle through each lock, reported once per cycle
    // (at its first lock in `locks` order).
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
        let a = locks[start].name();
        let b = cycle
            .iter()
            .find(|&&i| i != start)
            .map_or(a, |&i| locks[i].name());
        out.push(Finding {
            rule: "circular-lock-order",
            lock: a,
            message: "possible circular locking dependency detected",
            // The acquisition of this lock that closed the cycle.
            example: cycle
                .last()
                .and_then(|&i| locks[start].edge_example(locks[i].id())),
            scenario: abba_box(a, b),
            stack: Vec::new(),
        });
    }
    out
}
