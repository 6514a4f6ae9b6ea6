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
//!
//! Not yet: the class order graph (AB-BA), sleeping in atomic context.

use crate::lock::LockCore;

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
                example: lock.first_nmi_use(),
            });
        }
        if used & usage::HARDIRQ != 0 && used & usage::TASK_IRQS_ON != 0 {
            out.push(Finding {
                rule: "inconsistent-irq-usage",
                lock: lock.name(),
                message: "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage.",
                example: None,
            });
        }
    }
    out
}
