//! Golden tests: each message printk-sim prints in the kernel's words,
//! matched against the kernel's own format string (quoted, with the
//! function it comes from), in the release the design follows.

mod common;

use common::{plan, plan_text, run};
use klog::console::{Console, ConsoleConfig};
use klog::lockdep;
use klog::lockdep::Rule;
use klog::printk::safe::{Kind, SafeBuffers};
use klog::record::Meta;
use klog::testing::FakeArch;
use klog::{Context, Kernel, Level, RawSpinLock};
use printk_sim::report::splat::{splat, Splat};
use printk_sim::runner::RunReport;
use printk_sim::scenario::Overrides;
use printk_sim::watchdog::FindingKind;

/// Whether `line` is what the C format `fmt` prints: `%d`, `%u`, `%lu`,
/// `%ld`, `%llu` match digits (a `-` in front allowed), `%s` and `%pS` any
/// text without a newline, `%*pbl` a CPU list; everything else literally.
fn matches(fmt: &str, line: &str) -> bool {
    fn conv(f: &str) -> Option<(&'static str, usize)> {
        for (spec, class) in [
            ("%*pbl", "cpus"),
            ("%llu", "num"),
            ("%lu", "num"),
            ("%ld", "num"),
            ("%pS", "text"),
            ("%d", "num"),
            ("%u", "num"),
            ("%s", "text"),
        ] {
            if f.starts_with(spec) {
                return Some((class, spec.len()));
            }
        }
        None
    }
    fn go(f: &str, l: &str) -> bool {
        if f.is_empty() {
            return l.is_empty();
        }
        if let Some((class, n)) = conv(f) {
            let ok = |c: char| match class {
                "num" => c.is_ascii_digit() || c == '-',
                "cpus" => c.is_ascii_digit() || c == '-' || c == ',',
                _ => c != '\n',
            };
            let rest = &f[n..];
            let mut end = 0;
            for (i, c) in l.char_indices() {
                if go(rest, &l[i..]) && i > 0 {
                    return true;
                }
                if !ok(c) {
                    return false;
                }
                end = i + c.len_utf8();
            }
            return end > 0 && go(rest, &l[end..]);
        }
        let c = f.chars().next().unwrap();
        l.starts_with(c) && go(&f[c.len_utf8()..], &l[c.len_utf8()..])
    }
    go(fmt, line)
}

fn has(r: &RunReport, fmt: &str) -> bool {
    r.records
        .iter()
        .any(|rec| matches(fmt, &format!("{}\n", rec.text)))
}

fn cfg(kernel: Kernel) -> Splat {
    Splat {
        label: "test".into(),
        kernel,
        time_scale: 0.01,
    }
}

#[test]
fn the_matcher_matches_what_printf_prints() {
    assert!(matches(
        "CPU#%d stuck for %us! [%s:%d]\n",
        "CPU#2 stuck for 22s! [cat:123]\n"
    ));
    assert!(!matches("CPU#%d stuck\n", "CPU#x stuck\n"));
    assert!(matches("to CPUs %*pbl:\n", "to CPUs 0-2,5:\n"));
    assert!(!matches("a %d b\n", "a 1 c\n"));
}

/// watchdog_timer_fn() (kernel/watchdog.c): `pr_emerg("BUG: soft lockup -
/// CPU#%d stuck for %us! [%s:%d]\n", ...)`, with `pr_fmt` "watchdog: "
/// from 4.13 (none in 3.x), the time in the kernel's seconds.
#[test]
fn soft_lockup() {
    let p = plan("console-storm", Overrides::default());
    let r = run(&p, "legacy");
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::SoftLockup)
        .expect("legacy's console hog is a soft lockup");
    for (kernel, prefix) in [(Kernel::new(3, 16), ""), (Kernel::new(6, 1), "watchdog: ")] {
        let text = splat(f, &cfg(kernel));
        let line = text.lines().nth(1).unwrap();
        let fmt = format!("{prefix}BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]");
        assert!(matches(&fmt, line), "{line}");
        // 200 ms and more real at time_scale 0.01: 20 s and more to the
        // kernel.
        let secs: u64 = line
            .split("stuck for ")
            .nth(1)
            .and_then(|s| s.split('s').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(secs >= 20, "{line}");
        assert_eq!(secs, (f.detected_after_ms / 1000.0 / 0.01) as u64);
    }
}

/// watchdog_overflow_callback(): `WARN(1, "Watchdog detected hard LOCKUP on
/// cpu %d", this_cpu)` before 4.11; then `pr_emerg()` with "NMI watchdog: "
/// (watchdog_hld.c), "watchdog: " from 6.5 (watchdog_hardlockup_check()).
#[test]
fn hard_lockup() {
    let p = plan("panic-stops-port-lock-holder", Overrides::default());
    let r = run(&p, "legacy");
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::HardLockup)
        .unwrap();
    let old = splat(f, &cfg(Kernel::new(3, 16)));
    let lines: Vec<&str> = old.lines().collect();
    assert_eq!(lines[1], "------------[ cut here ]------------");
    assert!(
        matches("WARNING: CPU: %d PID: %d at %pS", lines[2]),
        "{}",
        lines[2]
    );
    assert!(matches("Watchdog detected hard LOCKUP on cpu %d", lines[3]));
    for (kernel, prefix) in [
        (Kernel::new(4, 16), "NMI watchdog: "),
        (Kernel::new(6, 12), "watchdog: "),
    ] {
        let text = splat(f, &cfg(kernel));
        let line = text.lines().nth(1).unwrap();
        assert!(
            matches(
                &format!("{prefix}Watchdog detected hard LOCKUP on cpu %d"),
                line
            ),
            "{line}"
        );
    }
}

/// printk-sim's own deadlock report says it is printk-sim's.
#[test]
fn printk_sims_own_deadlock_report_is_marked() {
    let p = plan("nmi-in-console-unlock", Overrides::default());
    let r = run(&p, "legacy");
    let text = splat(&r.findings[0], &cfg(Kernel::new(3, 16)));
    assert!(text.contains("printk-sim: WARNING: possible deadlock detected"));
    assert!(text.contains("printk-sim's own report"));
}

fn nmi_after_task_use(kernel: Kernel) -> lockdep::Finding {
    use klog::context::{HARDIRQ_OFFSET, NMI_OFFSET};
    use std::sync::atomic::Ordering;
    let l = RawSpinLock::new("logbuf_lock", ());
    let task = FakeArch::new(0, 1);
    drop(l.lock(&task, None).unwrap());
    let nmi = FakeArch::new(0, 1);
    nmi.preempt_count
        .store(NMI_OFFSET + HARDIRQ_OFFSET, Ordering::Relaxed);
    drop(l.lock(&nmi, None).unwrap());
    lockdep::check(&[l.core()], kernel).remove(0)
}

/// print_usage_bug() (kernel/locking/lockdep.c), 4.11 on: the banner
/// "WARNING: inconsistent lock state" between lines of 32, then
/// `"inconsistent {%s} -> {%s} usage.\n"`,
/// `"%s/%d [HC%u[%lu]:SC%u[%lu]:HE%u:SE%u] takes:\n"`,
/// `"{%s} state was registered at:\n"`, "other info that might help us debug
/// this:", print_usage_bug_scenario()'s box with `<Interrupt>`. Before:
/// "[ INFO: inconsistent lock state ]" between lines of 33.
#[test]
fn lockdep_inconsistent_lock_state() {
    let f = nmi_after_task_use(Kernel::new(6, 1));
    assert!(
        f.kernel,
        "6.1's verify_lock_unused() catches USED then IN-NMI"
    );
    let lines: Vec<&str> = f.report.lines().collect();
    assert_eq!(lines[1], "=".repeat(32));
    assert_eq!(lines[2], "WARNING: inconsistent lock state");
    assert!(matches("%s %s %s", lines[3]), "print_kernel_ident()");
    assert_eq!(lines[4], "-".repeat(32));
    assert!(matches("inconsistent {%s} -> {%s} usage.", lines[5]));
    assert_eq!(lines[5], "inconsistent {INITIAL USE} -> {IN-NMI} usage.");
    assert!(
        matches("%s/%d [HC%u[%lu]:SC%u[%lu]:HE%u:SE%u] takes:", lines[6]),
        "{}",
        lines[6]
    );
    assert!(lines[7].starts_with(" (logbuf_lock){"), "{}", lines[7]);
    assert!(f
        .report
        .contains("{INITIAL USE} state was registered at:\n"));
    assert!(f
        .report
        .contains("\nother info that might help us debug this:\n"));
    assert!(f.report.contains(
        " Possible unsafe locking scenario:\n\n       CPU0\n       ----\n  lock(logbuf_lock);\n  <Interrupt>\n    lock(logbuf_lock);\n\n *** DEADLOCK ***\n"
    ));
    assert!(f.report.contains("\nstack backtrace:\n"));

    let old = nmi_after_task_use(Kernel::new(3, 16));
    assert!(!old.kernel, "NMI context was invisible to 3.16's lockdep");
    assert!(old.why.contains("nmi_enter()"));
    let lines: Vec<&str> = old.report.lines().collect();
    assert_eq!(lines[1], "=".repeat(33));
    assert_eq!(lines[2], "[ INFO: inconsistent lock state ]");
}

/// print_circular_bug_header() and print_circular_lock_scenario(): the
/// banner between lines of 54, `"%s/%d is trying to acquire lock:\n"`,
/// `"\nbut task is already holding lock:\n"`, "which lock already depends on
/// the new lock.", `"\n-> #%u"` per link, "Chain exists of:" when the
/// chain is longer than two, and the two-column box (CPU1's column at 31).
#[test]
fn lockdep_circular_dependency() {
    let (a, b, c) = (
        RawSpinLock::new("lock_a", ()),
        RawSpinLock::new("lock_b", ()),
        RawSpinLock::new("lock_c", ()),
    );
    let arch = FakeArch::new(0, 1);
    for (x, y) in [(&a, &b), (&b, &c), (&c, &a)] {
        let _gx = x.lock(&arch, None).unwrap();
        let _gy = y.lock(&arch, None).unwrap();
    }
    let f = lockdep::check(&[a.core(), b.core(), c.core()], Kernel::new(4, 16));
    let f = f
        .iter()
        .find(|f| f.rule == Rule::CircularLockOrder)
        .unwrap();
    assert!(f.kernel);
    let lines: Vec<&str> = f.report.lines().collect();
    assert_eq!(lines[1], "=".repeat(54));
    assert_eq!(
        lines[2],
        "WARNING: possible circular locking dependency detected"
    );
    assert!(
        matches("%s/%d is trying to acquire lock:", lines[5]),
        "{}",
        lines[5]
    );
    assert!(f.report.contains("\nbut task is already holding lock:\n"));
    assert!(f
        .report
        .contains("\nwhich lock already depends on the new lock.\n\n"));
    assert!(f
        .report
        .contains("\nthe existing dependency chain (in reverse order) is:\n"));
    assert!(f.report.contains("\n-> #2 ("));
    assert!(f.report.contains("Chain exists of:\n  "));
    assert!(f
        .report
        .contains("       CPU0                    CPU1\n       ----                    ----\n"));
    let col = " ".repeat(31);
    assert!(f.report.contains(&format!("\n{col}lock(")));
    assert!(f.report.contains("\n *** DEADLOCK ***\n"));
}

/// console_unlock(): `"** %u printk messages dropped ** "` before 4.13, the
/// next record on the same line; `"** %lu printk messages dropped **\n"`
/// from 4.13 (console_prepend_dropped() in 6.x).
#[test]
fn printk_messages_dropped() {
    let config = ConsoleConfig {
        ns_per_char: 0,
        sink_bytes: 1 << 12,
        registered: true,
        time_scale: 0.01,
    };
    let arch = FakeArch::new(0, 1);
    let meta = Meta {
        ts_ns: 10_000_000,
        cpu: 0,
        context: Context::Task,
        caller: klog::record::CallerId(0),
        level: Level::Info,
        cont: false,
    };
    for (kernel, want) in [
        (
            Kernel::new(3, 16),
            "** 7 printk messages dropped ** [    1.000000] next\n",
        ),
        (
            Kernel::new(6, 1),
            "** 7 printk messages dropped **\n[    1.000000] next\n",
        ),
    ] {
        let c = Console::new(config, 1).for_kernel(kernel);
        c.write_record(&arch, 7, &meta, b"next");
        let out = String::from_utf8(c.output()).unwrap();
        // The timestamp in kernel time: 10 ms real at time_scale 0.01.
        assert_eq!(out, want, "{kernel}");
        let first = out.lines().next().unwrap();
        let fmt = if kernel.dropped_line_ends_in_newline() {
            "** %lu printk messages dropped **"
        } else {
            "** %u printk messages dropped ** [%s] next"
        };
        assert!(matches(fmt, first), "{first}");
    }
}

/// report_message_lost() (printk_safe.c, 4.11): `printk_deferred("Lost %d
/// message(s)!\n", lost)`, no level of its own: the default, 4.
#[test]
fn lost_messages() {
    let s = SafeBuffers::new(1, false);
    let arch = FakeArch::new(0, 1);
    let line = [b'x'; 1000];
    for _ in 0..10 {
        s.write(&arch, Kind::Nmi, Level::Info, &line);
    }
    let mut lost = Vec::new();
    s.flush(&arch, 0, |level, text, internal| {
        if internal {
            lost.push((level, String::from_utf8_lossy(text).into_owned()));
        }
    });
    assert_eq!(lost.len(), 1);
    assert!(matches(
        "Lost %d message(s)!\n",
        &format!("{}\n", lost[0].1)
    ));
    assert_eq!(lost[0].0, Level::Warning);
}

/// __warn() (4.6 on): `pr_warn(CUT_HERE)` with CUT_HERE
/// "------------[ cut here ]------------\n", then `pr_warn("WARNING: CPU: %d
/// PID: %d at %pS\n", ...)`.
#[test]
fn warn() {
    let p = plan("nbcon-handover", Overrides::default());
    let r = run(&p, "nbcon");
    let i = r
        .records
        .iter()
        .position(|rec| rec.text == "------------[ cut here ]------------")
        .expect("the cut here line");
    // The WARNING line is the same CPU's next record (another CPU's may
    // come in between).
    let cut = &r.records[i];
    let next = &r.records[i + 1..]
        .iter()
        .find(|rec| rec.cpu == cut.cpu && rec.context == cut.context)
        .unwrap()
        .text;
    assert!(
        matches("WARNING: CPU: %d PID: %d at %pS\n", &format!("{next}\n")),
        "{next}"
    );
    assert_eq!(cut.level, Level::Warning);
}

const BACKTRACE: &str = r#"
name = "bt"
cpus = 4
duration_ms = 60
[watchdog]
threshold_ms = 100
[[task]]
cpus = "all"
printk_hz = 500
[[irq]]
kind = "backtrace_all"
at_ms = 20
from_cpu = 1
"#;

/// nmi_trigger_cpumask_backtrace() (lib/nmi_backtrace.c, 4.9 on):
/// `pr_info("Sending NMI from CPU %d to CPUs %*pbl:\n", ...)`; 4.3-4.8
/// "Sending NMI to %s CPUs:", x86's hw_nmi.c before that "sending NMI to %s
/// CPUs:"; each answer `pr_warn("NMI backtrace for cpu %d\n", cpu)`.
#[test]
fn sending_nmi() {
    let p = plan_text(BACKTRACE);
    let r = run(&p, "lockless");
    let line = r
        .records
        .iter()
        .find(|rec| rec.text.starts_with("Sending NMI"))
        .unwrap();
    assert!(matches(
        "Sending NMI from CPU %d to CPUs %*pbl:\n",
        &format!("{}\n", line.text)
    ));
    assert_eq!(line.text, "Sending NMI from CPU 1 to CPUs 0,2-3:");
    assert_eq!(line.level, Level::Info);
    assert!(has(&r, "NMI backtrace for cpu %d\n"));
    let r = run(&p, "legacy");
    assert!(has(&r, "sending NMI to other CPUs:\n"));
}

/// print_other_cpu_stall(): with CONFIG_RCU_CPU_STALL_INFO=n (3.3-4.1)
/// `pr_err("INFO: %s detected stalls on CPUs/tasks:", ...)`, `" {"`, `" %d"`
/// per CPU, `"} "`, `"(detected by %d, t=%ld jiffies, g=%ld, c=%ld,
/// q=%lu)\n"`: one line. From 5.2 (tree_stall.h) with pr_fmt "rcu: " and a
/// line per CPU, ending `"\t(detected by %d, t=%ld jiffies, g=%ld, q=%lu
/// ncpus=%d)\n"`. `t` in kernel jiffies.
#[test]
fn rcu_stall() {
    let p = plan("rcu-stall-nmi-backtrace", Overrides::default());
    let r = run(&p, "legacy");
    let line = r
        .records
        .iter()
        .find(|rec| rec.text.starts_with("INFO: rcu_sched"))
        .unwrap();
    let fmt = "INFO: %s detected stalls on CPUs/tasks: { %d} (detected by %d, t=%ld jiffies, g=%ld, c=%ld, q=%lu)\n";
    assert!(matches(fmt, &format!("{}\n", line.text)), "{}", line.text);
    // Kernel jiffies: the stall is reported after tens of kernel seconds
    // (at HZ=1000 and time_scale 0.01, 1 ms real is 100 jiffies).
    let t: u64 = line
        .text
        .split("t=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(t > 1000, "{}", line.text);

    let r = run(&p, "lockless");
    assert!(has(&r, "rcu: INFO: %s detected stalls on CPUs/tasks:\n"));
    assert!(has(
        &r,
        "rcu: \t(detected by %d, t=%ld jiffies, g=%ld, q=%lu ncpus=%d)\n"
    ));
}

/// panic(): `pr_emerg("Kernel panic - not syncing: %s\n", buf)` and
/// `pr_emerg("---[ end Kernel panic - not syncing: %s ]---\n", buf)`, both
/// KERN_EMERG; records in kernel time.
#[test]
fn panic_lines_and_kernel_time() {
    let p = plan("panic-frozen-lock-holder", Overrides::default());
    let r = run(&p, "lockless");
    assert!(has(&r, "Kernel panic - not syncing: %s\n"));
    assert!(has(&r, "---[ end Kernel panic - not syncing: %s ]---\n"));
    let panic = r
        .records
        .iter()
        .find(|rec| rec.text.starts_with("Kernel panic"))
        .unwrap();
    assert_eq!(panic.level, Level::Emerg);
    // A 300 ms run at time_scale 0.01 lasts 30 s to the kernel: its last
    // records are stamped near 30 s.
    let p = plan("nmi-in-console-unlock", Overrides::default());
    let r = run(&p, "lockless");
    let last = r.records.iter().map(|rec| rec.ts_ns).max().unwrap();
    assert!((25_000_000_000..=40_000_000_000).contains(&last), "{last}");
}

const STALL: &str = r#"
name = "stall"
cpus = 2
duration_ms = 700
designs = ["legacy", "lockless"]
[watchdog]
threshold_ms = 100
[[task]]
cpus = [1]
printk_hz = 200
stall = "preempt_off"
stall_at_ms = 20
stall_ms = 650
"#;

/// A CPU stuck with preemption off (interrupts on, so its timer runs) is
/// a soft lockup, never a hard one; 3.16 reports it once, 6.1 again every
/// 2 x threshold, each time with the whole time stuck so far.
#[test]
fn soft_lockups_repeat_where_the_release_did() {
    let p = plan_text(STALL);
    for (d, at_least, at_most) in [("legacy", 1, 1), ("lockless", 2, 3)] {
        let r = run(&p, d);
        let soft: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::SoftLockup && f.cpu == 1)
            .collect();
        assert!(
            (at_least..=at_most).contains(&soft.len()),
            "{d}: {} reports",
            soft.len()
        );
        assert!(
            r.findings.iter().all(|f| f.kind != FindingKind::HardLockup),
            "{d}: the timer ran"
        );
        for w in soft.windows(2) {
            assert!(w[1].detected_after_ms > w[0].detected_after_ms + 150.0);
        }
    }
}
