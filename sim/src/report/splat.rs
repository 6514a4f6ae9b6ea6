//! The watchdog's findings as splats on stderr: a lockup in the words of
//! the design's kernel's watchdog, in kernel time, then printk-sim's own
//! line in real time; a deadlock in printk-sim's own words (the kernel has
//! no deadlock check), marked as such.

use std::fmt::Write as _;

use crate::watchdog::{Finding, FindingKind};

/// How splats of one run are written.
#[derive(Clone, Debug)]
pub struct Splat {
    /// The run, named in printk-sim's own lines ("legacy on X, seed 1").
    pub label: String,
    /// The release whose watchdog messages the splats quote.
    pub kernel: klog::Kernel,
    /// Kernel time is real time divided by this.
    pub time_scale: f64,
}

/// printk-sim's own deadlock report (the kernel has no such check).
fn deadlock(s: &mut String, f: &Finding, how: &Splat, me: &str) {
    let label = &how.label;
    let _ = writeln!(
        s,
        "printk-sim: WARNING: possible deadlock detected [{label}]"
    );
    let _ = writeln!(
        s,
        "(printk-sim's own report: the kernel has no deadlock check, only its lockup detectors)"
    );
    let _ = writeln!(s, "{}", "-".repeat(60));
    let _ = writeln!(
        s,
        "{me} is trying to acquire lock {} and has spun {} times over {:.1} ms",
        f.lock.unwrap_or("?"),
        f.spins,
        f.detected_after_ms
    );
    if let (Some(hc), Some(hx)) = (f.holder_cpu, f.holder_context) {
        let _ = writeln!(
            s,
            "but the lock is held by cpu{hc}/{hx}, acquired at {}",
            f.point.unwrap_or("an unnamed place")
        );
    }
    let _ = writeln!(s, "and that can never be released:");
    let _ = writeln!(s, "  {} -> {me}", f.cycle.join(" -> "));
    let _ = writeln!(
        s,
        "(a context points to the lock it waits for, a lock to its holder, a context to the one that interrupted it)"
    );
    if !f.blocked_behind.is_empty() {
        let cpus: Vec<String> = f.blocked_behind.iter().map(|c| format!("cpu{c}")).collect();
        let _ = writeln!(s, "blocked behind it: {}", cpus.join(", "));
    }
}

/// printk-sim's own line under the kernel's lockup message: what it saw, in
/// real time.
fn own_line(s: &mut String, label: &str, what: &str, f: &Finding) {
    let _ = writeln!(
        s,
        "(printk-sim [{label}]: {what} on cpu{} for {:.1} ms real time)",
        f.cpu, f.detected_after_ms
    );
}

/// The splat for finding `f`: a lockup in the words of `how.kernel`'s
/// watchdog, in kernel time, followed by printk-sim's own line in real
/// time; a deadlock in printk-sim's own words, marked as such.
pub fn splat(f: &Finding, how: &Splat) -> String {
    let label = &how.label;
    let mut s = String::new();
    let rule = "=".repeat(60);
    let _ = writeln!(s, "{rule}");
    let me = format!("cpu{}/{}", f.cpu, f.context);
    // The kernel's seconds: real time divided by the time scale.
    let kernel_s = (f.detected_after_ms / 1000.0 / how.time_scale.max(1e-9)) as u64;
    let task = format!("printk_workload:{}", 100 + f.cpu);
    match f.kind {
        FindingKind::Deadlock => deadlock(&mut s, f, how, &me),
        FindingKind::HardLockup => {
            // WARN() before 4.11; pr_emerg() in watchdog_hld.c, later
            // watchdog.c.
            if how.kernel.hard_lockup_is_warn() {
                let _ = writeln!(s, "------------[ cut here ]------------");
                let _ = writeln!(
                    s,
                    "WARNING: CPU: {} PID: {} at watchdog_overflow_callback+0x0/0x0",
                    f.cpu,
                    100 + f.cpu
                );
            }
            let _ = writeln!(
                s,
                "{}Watchdog detected hard LOCKUP on cpu {}",
                how.kernel.hard_lockup_prefix(),
                f.cpu
            );
            own_line(&mut s, label, "no timer tick handled", f);
            if let Some(l) = f.lock {
                let _ = writeln!(s, "{me} spins on {l} with interrupts off");
            }
        }
        FindingKind::SoftLockup => {
            // watchdog_timer_fn(): "BUG: soft lockup - CPU#%d stuck for
            // %us! [%s:%d]", pr_emerg() with the era's pr_fmt prefix.
            let _ = writeln!(
                s,
                "{}BUG: soft lockup - CPU#{} stuck for {kernel_s}s! [{task}]",
                how.kernel.watchdog_prefix(),
                f.cpu
            );
            own_line(&mut s, label, "no progress", f);
        }
    }
    for (cpu, t) in &f.stacks {
        let torn = if t.torn { " (torn)" } else { "" };
        let _ = writeln!(s, "cpu{cpu} call trace{torn}:");
        for frame in t.frames.iter().rev() {
            let _ = writeln!(s, "  {frame}");
        }
    }
    let _ = writeln!(s, "action: {}", f.action.name());
    let _ = writeln!(s, "{rule}");
    s
}
