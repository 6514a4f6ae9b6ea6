//! The context word: the kernel's `preempt_count` layout and the questions
//! asked of it (`in_nmi()`, `in_hardirq()`, `in_task()`).
//!
//! Bit layout of the 32-bit word (as in `include/linux/preempt.h`):
//!
//! ```text
//!  31        24 23    20 19    16 15         8 7          0
//! +------------+--------+--------+------------+------------+
//! |  (unused)  |  NMI   |HARDIRQ |  SOFTIRQ   |  PREEMPT   |
//! +------------+--------+--------+------------+------------+
//! ```
//!
//! Entering an NMI adds `NMI_OFFSET + HARDIRQ_OFFSET`, so inside an NMI both
//! `in_nmi()` and `in_hardirq()` are true, exactly as in the kernel. Whether
//! interrupts are disabled is not part of this word; it is a separate
//! per-CPU flag ([`crate::Arch::irqs_disabled`]).

/// Preemption-disable depth, bits 0–7.
pub const PREEMPT_MASK: u32 = 0x0000_00ff;
/// Softirq count, bits 8–15.
pub const SOFTIRQ_MASK: u32 = 0x0000_ff00;
/// Hardirq nesting count, bits 16–19.
pub const HARDIRQ_MASK: u32 = 0x000f_0000;
/// NMI nesting count, bits 20–23.
pub const NMI_MASK: u32 = 0x00f0_0000;
/// Added while a softirq is being served.
pub const SOFTIRQ_OFFSET: u32 = 0x0000_0100;
/// Added on hardirq entry (and on NMI entry).
pub const HARDIRQ_OFFSET: u32 = 0x0001_0000;
/// Added on NMI entry, together with [`HARDIRQ_OFFSET`].
pub const NMI_OFFSET: u32 = 0x0010_0000;

/// True inside an NMI handler.
pub fn in_nmi(pc: u32) -> bool {
    pc & NMI_MASK != 0
}

/// True inside a hardirq handler, and inside an NMI handler.
pub fn in_hardirq(pc: u32) -> bool {
    pc & HARDIRQ_MASK != 0
}

/// True while a softirq is being served.
pub fn in_serving_softirq(pc: u32) -> bool {
    pc & SOFTIRQ_OFFSET != 0
}

/// True in task context: no NMI, no hardirq, no softirq being served.
pub fn in_task(pc: u32) -> bool {
    pc & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_OFFSET) == 0
}

/// Hardirq nesting that is not due to an NMI (NMI entry adds both fields).
pub fn hardirq_depth(pc: u32) -> u32 {
    ((pc & HARDIRQ_MASK) >> 16).saturating_sub((pc & NMI_MASK) >> 20)
}

/// NMI nesting depth.
pub fn nmi_depth(pc: u32) -> u32 {
    (pc & NMI_MASK) >> 20
}

named_enum! {
    /// The context a record, lock hold or finding is attributed to,
    /// innermost last; its number is the kernel's
    /// `interrupt_context_level()`: 0 process context, 1 serving a
    /// softirq, 2 a hardirq handler, 3 an NMI handler.
    pub enum Context { Task = "task", Softirq = "softirq", Hardirq = "hardirq", Nmi = "nmi" }
}

impl Context {
    /// The innermost context a `preempt_count` value describes.
    pub fn from_preempt_count(pc: u32) -> Context {
        if in_nmi(pc) {
            Context::Nmi
        } else if in_hardirq(pc) {
            Context::Hardirq
        } else if in_serving_softirq(pc) {
            Context::Softirq
        } else {
            Context::Task
        }
    }

    /// The context for an `interrupt_context_level()` value (0–3).
    pub fn from_level(level: u8) -> Context {
        Context::ALL
            .get(usize::from(level))
            .copied()
            .unwrap_or(Context::Nmi)
    }

    /// `interrupt_context_level()`: 0 task, 1 softirq, 2 hardirq, 3 NMI.
    pub fn level(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmi_entry_is_also_hardirq() {
        let pc = NMI_OFFSET + HARDIRQ_OFFSET;
        assert!(in_nmi(pc) && in_hardirq(pc) && !in_task(pc));
        assert_eq!(Context::from_preempt_count(pc), Context::Nmi);
        assert_eq!(hardirq_depth(pc), 0);
        assert_eq!(hardirq_depth(pc + HARDIRQ_OFFSET), 1);
    }

    #[test]
    fn preempt_disable_is_still_task() {
        assert!(in_task(3));
        assert_eq!(Context::from_preempt_count(3), Context::Task);
        assert_eq!(
            Context::from_preempt_count(SOFTIRQ_OFFSET),
            Context::Softirq
        );
        assert_eq!(
            Context::from_preempt_count(HARDIRQ_OFFSET),
            Context::Hardirq
        );
    }
}
