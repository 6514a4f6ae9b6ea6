//! Signal hygiene: a run puts back the signal actions it found, leaves the
//! calling thread with the interrupt signals blocked (it is not a CPU), and
//! repeated runs do not grow the process.

mod common;

use common::{assert_balanced, plan_text, run};
use printk_sim::machine::irq::{irq_signal, nmi_signal};

extern "C" fn marker(_: libc::c_int) {}

fn action(sig: libc::c_int) -> libc::sigaction {
    // SAFETY: querying the current action into a zeroed struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old
    }
}

fn short() -> printk_sim::scenario::Plan {
    plan_text(
        r#"
name = "short"
cpus = 1
duration_ms = 20
designs = ["lockless"]
[[task]]
cpus = "all"
printk_hz = 2000
[[nmi]]
kind = "periodic"
period_us = 1000
cpu = 0
"#,
    )
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// One test, so that nothing else in this process touches signal state
/// meanwhile.
#[test]
fn runs_restore_handlers_block_interrupts_in_the_caller_and_do_not_grow() {
    // A handler of our own on both signals, with a flag to recognise.
    for sig in [nmi_signal(), irq_signal()] {
        // SAFETY: installing a do-nothing handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = marker as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
        }
    }
    let p = short();
    let r = run(&p, "lockless");
    assert!(r.nmis[0] > 5, "the run took NMIs: {:?}", r.nmis);
    assert_balanced(&r);
    for sig in [nmi_signal(), irq_signal()] {
        let a = action(sig);
        assert_eq!(
            a.sa_sigaction, marker as extern "C" fn(libc::c_int) as usize,
            "signal {sig} restored"
        );
        assert_eq!(a.sa_flags & libc::SA_ONSTACK, 0, "our flags, not the run's");
    }
    // The caller is not a CPU: both interrupt signals stay blocked in it.
    // SAFETY: querying this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set),
            0
        );
        assert_eq!(libc::sigismember(&set, nmi_signal()), 1);
        assert_eq!(libc::sigismember(&set, irq_signal()), 1);
    }

    // Repeated runs: threads joined, stacks unmapped, nothing kept.
    for _ in 0..10 {
        drop(run(&p, "lockless"));
    }
    let after_10 = rss_kib();
    for _ in 0..190 {
        drop(run(&p, "lockless"));
    }
    let after_200 = rss_kib();
    assert!(
        after_200 < after_10 + 4096,
        "RSS grew from {after_10} KiB after 10 runs to {after_200} KiB after 200"
    );
}

/// Both crates deny the lints that would let a panic into a signal
/// handler (indexing, `unwrap`, `expect`, `panic!`) crate-wide, and allow
/// them only where no handler can reach: the report layer and the scenario
/// loader (declared in `sim/src/lib.rs`), and lockdep's after-the-run cycle
/// search (ARCHITECTURE.md, Invariants).
#[test]
fn the_panicking_lints_are_denied_everywhere_a_handler_reaches() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    const LINTS: [&str; 4] = [
        "clippy::indexing_slicing",
        "clippy::unwrap_used",
        "clippy::expect_used",
        "clippy::panic",
    ];
    for lib in ["src/lib.rs", "sim/src/lib.rs"] {
        let text = std::fs::read_to_string(root.join(lib)).unwrap();
        let denied: String = text.lines().filter(|l| l.starts_with("#![deny(")).collect();
        for lint in LINTS {
            assert!(denied.contains(lint), "{lib} does not deny {lint}");
        }
    }
    // Every `allow` or `expect` of one of them (outer, inner or under
    // `cfg_attr`) is one of these: the crate-wide one for unit tests, or an
    // item no handler reaches.
    let allowed = [
        ("sim/src/lib.rs", "#![cfg_attr(test,"),
        ("src/lib.rs", "#![cfg_attr(test,"),
        ("sim/src/lib.rs", "pub mod report;"),
        ("sim/src/lib.rs", "pub mod scenario;"),
        ("src/lockdep.rs", "fn cycle_findings("),
    ];
    let names = |t: &str| {
        LINTS.iter().any(|l| {
            t.match_indices(l).any(|(at, _)| {
                !t[at + l.len()..].starts_with(|c: char| c == '_' || c.is_alphanumeric())
            })
        })
    };
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src"), root.join("sim/src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t0 = line.trim_start();
            if !(t0.starts_with("#[") || t0.starts_with("#![")) {
                continue;
            }
            // The attribute, over as many lines as it takes, then its item.
            let end = (i..lines.len())
                .find(|&j| lines[j].trim_end().ends_with(']'))
                .unwrap_or(i);
            let t = lines[i..=end].join(" ");
            if !(t.contains("allow(") || t.contains("expect(")) || !names(&t) {
                continue;
            }
            let next = lines.get(end + 1).copied().unwrap_or("");
            assert!(
                allowed
                    .iter()
                    .any(|(file, item)| rel == *file
                        && (t0.starts_with(item) || next.contains(item))),
                "{rel}:{}: `{t}` before `{next}` is not where no handler reaches",
                i + 1
            );
        }
    }
}
