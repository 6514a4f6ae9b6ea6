//! The kernel release a design's messages follow.
//!
//! A design models a generation of printk; its messages (lockdep's report,
//! the watchdog's lines, printk's own "messages dropped" line, the RCU
//! stall line, ...) are printed in the words of one release of that
//! generation, so that a run's output can be laid next to a real log of
//! the time. Each rule below names the kernel change it follows (see
//! docs/FIDELITY.md for the sources read).

use core::fmt;

/// A kernel release, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kernel {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
}

impl Kernel {
    /// `major.minor`.
    pub const fn new(major: u8, minor: u8) -> Kernel {
        Kernel { major, minor }
    }

    fn at_least(self, major: u8, minor: u8) -> bool {
        self >= Kernel::new(major, minor)
    }

    /// The words of the newest of `since` (release it first appeared in,
    /// newest first) this release has; `before` if it predates them all.
    fn newest(self, since: &[((u8, u8), &'static str)], before: &'static str) -> &'static str {
        let mut had = since
            .iter()
            .filter(|((major, minor), _)| self.at_least(*major, *minor));
        had.next().map_or(before, |(_, words)| words)
    }

    /// lockdep looks at locks taken in NMI context: only the "USED then
    /// IN-NMI" check of `verify_lock_unused()` (f6f48e180404, working from
    /// 23870f122768, 5.9). Before it `nmi_enter()` turned lockdep off.
    pub fn lockdep_sees_nmi(self) -> bool {
        self.at_least(5, 9)
    }

    /// lockdep's banners say "WARNING: ..." between lines of 32 (or 54)
    /// characters (4.11); before, "[ INFO: ... ]" between lines one
    /// longer.
    pub fn lockdep_warning_banner(self) -> bool {
        self.at_least(4, 11)
    }

    /// console_unlock()'s "** N printk messages dropped **" ends in a
    /// newline (4.13 on); before, in a space, and the next record follows
    /// on the same console line.
    pub fn dropped_line_ends_in_newline(self) -> bool {
        self.at_least(4, 13)
    }

    /// The watchdog's `pr_fmt()` prefix: none before 4.0 (plain
    /// `printk(KERN_EMERG ...)`), "NMI watchdog: " in 4.x, "watchdog: "
    /// from 4.13.
    pub fn watchdog_prefix(self) -> &'static str {
        self.newest(&[((4, 13), "watchdog: "), ((4, 0), "NMI watchdog: ")], "")
    }

    /// The hard-lockup line's prefix: a `WARN()` before 4.11; then
    /// `pr_emerg()` in watchdog_hld.c ("NMI watchdog: "), in watchdog.c
    /// from 6.5 ("watchdog: ").
    pub fn hard_lockup_prefix(self) -> &'static str {
        self.newest(&[((6, 5), "watchdog: "), ((4, 11), "NMI watchdog: ")], "")
    }

    /// The hard lockup was reported by `WARN()` (cut-here line and all).
    pub fn hard_lockup_is_warn(self) -> bool {
        !self.at_least(4, 11)
    }

    /// A soft lockup is reported again every 2 × `watchdog_thresh` while
    /// it lasts (about 5.11); before, once until the CPU recovered.
    pub fn soft_lockup_repeats(self) -> bool {
        self.at_least(5, 11)
    }

    /// The all-CPU backtrace's first line (`pr_info()`), written into
    /// `out` without allocating: `cpus` are the CPUs sent an NMI.
    pub fn sending_nmi_line(self, out: &mut impl fmt::Write, from: usize, cpus: &[usize]) {
        let _ = if self.at_least(4, 9) {
            // nmi_trigger_cpumask_backtrace(), 4.9 on.
            write!(out, "Sending NMI from CPU {from} to CPUs ")
                .and_then(|()| write_cpu_list(out, cpus))
                .and_then(|()| out.write_str(":\n"))
        } else if self.at_least(4, 3) {
            // lib/nmi_backtrace.c, 4.3-4.8.
            out.write_str("Sending NMI to other CPUs:\n")
        } else {
            // arch/x86/kernel/apic/hw_nmi.c, before 4.3.
            out.write_str("sending NMI to other CPUs:\n")
        };
    }

    /// The RCU CPU stall warning's pr_fmt prefix: "rcu: " from 4.20.
    pub fn rcu_prefix(self) -> &'static str {
        self.newest(&[((4, 20), "rcu: ")], "")
    }

    /// The RCU stall line lists the stalled CPUs in braces on the same
    /// line ("{ 1 3} (detected by ..."), as with
    /// `CONFIG_RCU_CPU_STALL_INFO=n` before 4.2; later one line per CPU.
    pub fn rcu_stall_braces(self) -> bool {
        !self.at_least(4, 2)
    }
}

/// A CPU set as the kernel's `%*pbl` prints it: "0-2,5".
pub fn write_cpu_list(out: &mut impl fmt::Write, cpus: &[usize]) -> fmt::Result {
    let mut i = 0;
    let mut first_range = true;
    while let Some(&first) = cpus.get(i) {
        let mut last = first;
        while cpus.get(i + 1) == Some(&(last + 1)) {
            last += 1;
            i += 1;
        }
        if !first_range {
            out.write_str(",")?;
        }
        first_range = false;
        if last == first {
            write!(out, "{first}")?;
        } else {
            write!(out, "{first}-{last}")?;
        }
        i += 1;
    }
    Ok(())
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_print_as_pbl() {
        let list = |cpus: &[usize]| {
            let mut s = String::new();
            write_cpu_list(&mut s, cpus).unwrap();
            s
        };
        assert_eq!(list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(list(&[3]), "3");
        assert_eq!(list(&[]), "");
    }

    #[test]
    fn eras_order_and_rules() {
        assert!(Kernel::new(4, 16) > Kernel::new(4, 9));
        assert!(!Kernel::new(4, 16).lockdep_sees_nmi());
        assert!(Kernel::new(6, 1).lockdep_sees_nmi());
        assert_eq!(Kernel::new(3, 16).watchdog_prefix(), "");
        assert_eq!(Kernel::new(4, 11).watchdog_prefix(), "NMI watchdog: ");
        assert_eq!(Kernel::new(6, 12).watchdog_prefix(), "watchdog: ");
        assert_eq!(Kernel::new(6, 1).hard_lockup_prefix(), "NMI watchdog: ");
        assert_eq!(Kernel::new(6, 12).hard_lockup_prefix(), "watchdog: ");
    }
}
