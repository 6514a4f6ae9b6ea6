//! The designs on a fake `Arch`: what they store, in what order, how they
//! overwrite, and that their accounts balance. The same bodies run against
//! every design. (Real interrupts are the simulator's business; here the
//! fake's point hook only stands in for re-entry to check the designs'
//! bookkeeping.)

use klog::lockdep::Rule;
use std::cell::Cell;
use std::sync::atomic::Ordering;

use klog::console::ConsoleConfig;
use klog::context::{HARDIRQ_OFFSET, NMI_OFFSET};
use klog::printk::{legacy::Legacy, DesignConfig, DESIGNS};
use klog::testing::FakeArch;
use klog::{point, Accounts, Context, Level, Point, Printk, Record};

fn config(buffer_size: usize) -> DesignConfig {
    DesignConfig {
        nr_cpus: 2,
        buffer_size,
        console: ConsoleConfig {
            ns_per_char: 0,
            sink_bytes: 1 << 20,
            registered: true,
            time_scale: 1.0,
        },
    }
}

fn fill(d: &dyn Printk<FakeArch>, arch: &FakeArch, n: usize) {
    for i in 0..n {
        d.printk(
            arch,
            Level::Info,
            format_args!("message {i:05} {}\n", "x".repeat(i % 90)),
        );
    }
}

fn expected(i: usize) -> String {
    format!("message {i:05} {}", "x".repeat(i % 90))
}

#[test]
fn every_design_stores_in_order_and_prints_everything() {
    for info in DESIGNS {
        let arch = FakeArch::new(1, 2);
        let mut d = info.build::<FakeArch>(&config(1 << 17)).unwrap();
        fill(&*d, &arch, 300);
        let a = d.accounts();
        assert!(a.balanced(), "{}: {a:?}", info.name);
        assert_eq!(
            (a.attempted, a.stored, a.dropped),
            (300, 300, 0),
            "{}",
            info.name
        );
        assert_eq!(
            a.printed, 300,
            "{}: the console got every record",
            info.name
        );
        let recs: Vec<Record> = d.records();
        assert_eq!(recs.len() as u64, a.readable);
        // The newest records are all there, intact, in order.
        for (r, i) in recs.iter().rev().zip((0..300).rev()) {
            assert_eq!(r.text, expected(i), "{}", info.name);
            assert_eq!(r.seq, i as u64, "{}", info.name);
            assert_eq!((r.cpu, r.context, r.level), (1, Context::Task, Level::Info));
            assert_eq!(r.caller.to_string(), "T101");
        }
        let out = String::from_utf8(d.console().output()).unwrap();
        assert_eq!(out.lines().count(), 300);
        assert!(
            out.lines().last().unwrap().ends_with(&expected(299)),
            "{}",
            info.name
        );
    }
}

#[test]
fn every_design_overwrites_the_oldest_and_counts_it() {
    for info in DESIGNS {
        let arch = FakeArch::new(0, 2);
        let mut d = info.build::<FakeArch>(&config(4096)).unwrap();
        fill(&*d, &arch, 1000);
        let a = d.accounts();
        assert!(a.balanced(), "{}: {a:?}", info.name);
        assert!(a.overwritten > 0 && a.readable > 0, "{}: {a:?}", info.name);
        let recs = d.records();
        assert_eq!(recs.len() as u64, a.readable);
        let first = 1000 - recs.len();
        for (k, r) in recs.iter().enumerate() {
            assert_eq!(r.seq, (first + k) as u64, "{}: contiguous tail", info.name);
            assert_eq!(r.text, expected(first + k), "{}", info.name);
        }
    }
}

#[test]
fn records_from_interrupts_carry_their_context_and_cpu_caller_id() {
    for info in DESIGNS {
        let arch = FakeArch::new(1, 2);
        let mut d = info.build::<FakeArch>(&config(1 << 17)).unwrap();
        arch.preempt_count.store(HARDIRQ_OFFSET, Ordering::Relaxed);
        d.printk(&arch, Level::Err, format_args!("from irq\n"));
        arch.preempt_count.store(0, Ordering::Relaxed);
        let r = &d.records()[0];
        assert_eq!((r.context, r.level), (Context::Hardirq, Level::Err));
        assert_eq!(r.caller.to_string(), "C1");
    }
}

thread_local! {
    /// The design the point hook re-enters (set only while `first`/`second`
    /// are being printed below).
    static CURRENT: Cell<*const Legacy> = const { Cell::new(std::ptr::null()) };
}

fn reenter(arch: &FakeArch, _p: Point) {
    let d = CURRENT.with(Cell::get);
    arch.preempt_count
        .fetch_add(NMI_OFFSET + HARDIRQ_OFFSET, Ordering::Relaxed);
    // SAFETY: CURRENT points at the `Legacy` that `reentered_at` keeps alive
    // and borrows immutably for as long as the pointer is set.
    if let Some(d) = unsafe { d.as_ref() } {
        Printk::<FakeArch>::printk(d, arch, Level::Warning, format_args!("re-entered\n"));
    }
    arch.preempt_count
        .fetch_sub(NMI_OFFSET + HARDIRQ_OFFSET, Ordering::Relaxed);
}

/// Print two messages on legacy, re-entering printk "from NMI" the first
/// time `p` is passed; the accounts, the records, and how many spins the
/// fake had to break.
fn reentered_at(p: Point) -> (Accounts, Vec<Record>, u64) {
    let mut d = Legacy::new(&config(1 << 16));
    let arch = FakeArch::new(0, 1).with_hook(p, reenter);
    CURRENT.with(|c| c.set(&d));
    Printk::<FakeArch>::printk(&d, &arch, Level::Info, format_args!("first\n"));
    Printk::<FakeArch>::printk(&d, &arch, Level::Info, format_args!("second\n"));
    CURRENT.with(|c| c.set(std::ptr::null()));
    let broken = arch.waits_broken.load(Ordering::Relaxed);
    let a = Printk::<FakeArch>::accounts(&mut d);
    (a, Printk::<FakeArch>::records(&mut d), broken)
}

fn texts(recs: &[Record]) -> Vec<&str> {
    recs.iter().map(|r| r.text.as_str()).collect()
}

#[test]
fn legacy_reentered_inside_vprintk_loses_the_message_and_reports_recursion() {
    let (a, recs, broken) = reentered_at(point::VPRINTK_LOGBUF_LOCKED);
    assert_eq!(broken, 0, "the recursion check, not a spin, stopped it");
    assert_eq!((a.attempted, a.stored, a.dropped, a.internal), (4, 3, 1, 1));
    assert!(a.balanced());
    // The interrupted printk itself, still inside its window, stores the
    // report before its own message.
    assert_eq!(
        texts(&recs),
        ["BUG: recent printk recursion!", "first", "second"]
    );
}

#[test]
fn legacy_reentered_in_console_unlock_spins_on_its_own_lock() {
    let (a, recs, broken) = reentered_at(point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
    assert_eq!(broken, 1, "the re-entry spun on logbuf_lock until broken");
    assert_eq!(a.lost_in_deadlock, 1);
    assert_eq!((a.attempted, a.stored), (3, 2));
    assert!(a.balanced());
    assert_eq!(texts(&recs), ["first", "second"]);
}

#[test]
fn legacy_reentered_before_logbuf_cpu_is_set_spins_too() {
    let (a, _, broken) = reentered_at(point::VPRINTK_LOCK_ACQUIRED);
    assert_eq!((broken, a.lost_in_deadlock, a.dropped), (1, 1, 0));
    assert!(a.balanced());
}

#[test]
fn two_writers_at_once_keep_records_whole_and_in_per_cpu_order() {
    for info in DESIGNS {
        let mut d = info.build::<FakeArch>(&config(1 << 16)).unwrap();
        let per_cpu = if cfg!(miri) { 50 } else { 20_000 };
        std::thread::scope(|s| {
            for cpu in 0..2 {
                let d = &d;
                s.spawn(move || {
                    let arch = FakeArch::new(cpu, 2);
                    let fillc = char::from(b'a' + cpu as u8);
                    for n in 0..per_cpu {
                        let fill: String = std::iter::repeat_n(fillc, n % 50).collect();
                        d.printk(&arch, Level::Info, format_args!("{cpu}:{n:06}:{fill}\n"));
                    }
                });
            }
        });
        let a = d.accounts();
        assert!(a.balanced(), "{}: {a:?}", info.name);
        assert_eq!(a.attempted, 2 * per_cpu as u64);
        let mut last = [None::<usize>; 2];
        for r in d.records() {
            let mut parts = r.text.splitn(3, ':');
            let cpu: usize = parts.next().unwrap().parse().unwrap();
            let n: usize = parts.next().unwrap().parse().unwrap();
            let fill = parts.next().unwrap();
            assert_eq!(cpu, r.cpu, "{}: {r:?}", info.name);
            assert_eq!(fill.len(), n % 50, "{}: torn {r:?}", info.name);
            assert!(
                fill.bytes().all(|b| b == b'a' + cpu as u8),
                "{}: torn {r:?}",
                info.name
            );
            assert!(
                last[cpu] < Some(n),
                "{}: cpu{cpu} out of order at {r:?}",
                info.name
            );
            last[cpu] = Some(n);
        }
    }
}

#[test]
fn a_line_printed_in_pieces_is_one_record_and_open_until_its_newline() {
    let arch = FakeArch::new(0, 1);
    let info = klog::printk::design("lockless").unwrap();
    let mut d = info.build::<FakeArch>(&config(1 << 16)).unwrap();
    d.printk(&arch, Level::Info, format_args!("abc"));
    assert!(d.records().is_empty(), "an open line is not visible yet");
    d.printk(
        &arch,
        Level::Info,
        format_args!("{}def", klog::record::KERN_CONT),
    );
    d.printk(
        &arch,
        Level::Info,
        format_args!("{}ghi\n", klog::record::KERN_CONT),
    );
    let recs = d.records();
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].text.as_str(), recs[0].cont), ("abcdefghi", false));
    // Three printk calls, all stored; one record, two pieces merged in.
    let a = d.accounts();
    assert_eq!((a.attempted, a.stored, a.readable, a.merged), (3, 3, 1, 2));

    // Another caller's record in between closes the line: the continuation
    // becomes a record of its own, flagged.
    let irq = FakeArch::new(0, 1);
    irq.preempt_count.store(HARDIRQ_OFFSET, Ordering::Relaxed);
    d.printk(&arch, Level::Info, format_args!("one"));
    d.printk(&irq, Level::Info, format_args!("from irq\n"));
    d.printk(
        &arch,
        Level::Info,
        format_args!("{}two\n", klog::record::KERN_CONT),
    );
    let texts: Vec<(String, bool)> = d.records().into_iter().map(|r| (r.text, r.cont)).collect();
    assert_eq!(
        texts[1..],
        [
            ("one".to_string(), false),
            ("from irq".to_string(), false),
            ("two".to_string(), true)
        ]
    );
    assert!(d.accounts().balanced());
}

#[test]
fn lockdep_rules_fire_once_per_class_with_the_kernels_words() {
    use klog::lockdep;
    use klog::RawSpinLock;

    // A lock taken in task context with interrupts on and in a hardirq.
    let l = RawSpinLock::new("my_lock", ());
    let task = FakeArch::new(0, 1);
    drop(l.lock(&task, None).unwrap());
    let irq = FakeArch::new(0, 1);
    irq.preempt_count.store(HARDIRQ_OFFSET, Ordering::Relaxed);
    drop(l.lock(&irq, None).unwrap());
    drop(l.lock(&irq, None).unwrap());
    let f = lockdep::check(&[l.core()], klog::Kernel::new(6, 12));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].rule, f[0].lock),
        (Rule::InconsistentIrqUsage, "my_lock")
    );
    assert_eq!(
        f[0].message,
        "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage."
    );
    let ex = f[0].example.unwrap();
    assert_eq!(
        (ex.cpu, ex.context),
        (0, Context::Hardirq),
        "the first IRQ use"
    );
    assert!(f[0].scenario.contains("<Interrupt>"));

    // A trylock in hardirq context makes nothing interrupt-safe.
    let t = RawSpinLock::new("try_lock", ());
    drop(t.lock(&task, None).unwrap());
    drop(t.try_lock(&irq, None));
    assert!(lockdep::check(&[t.core()], klog::Kernel::new(6, 12)).is_empty());

    // Taken with interrupts off in task context, and spun on in an NMI.
    let n = RawSpinLock::new("logbuf_lock", ());
    let (g, flags) = n.lock_irqsave(&task, None).unwrap();
    drop(g);
    klog::Arch::local_irq_restore(&task, flags);
    let nmi = FakeArch::new(1, 2);
    nmi.preempt_count
        .store(NMI_OFFSET + HARDIRQ_OFFSET, Ordering::Relaxed);
    drop(
        n.lock(&nmi, Some(point::CONSOLE_UNLOCK_LOGBUF_LOCKED))
            .unwrap(),
    );
    drop(n.lock(&nmi, None).unwrap());
    let f = lockdep::check(&[n.core()], klog::Kernel::new(6, 12));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, Rule::NmiUnsafeLock);
    assert_eq!(
        f[0].message,
        "inconsistent {INITIAL USE} -> {IN-NMI} usage."
    );
    let ex = f[0].example.unwrap();
    assert_eq!((ex.cpu, ex.context), (1, Context::Nmi));
    assert_eq!(
        ex.point,
        Some(point::CONSOLE_UNLOCK_LOGBUF_LOCKED),
        "the first example"
    );
}

/// `check_prevs_add()` links only locks held in the same interrupt
/// context: task context holding `a` while a hardirq on the same CPU
/// takes `b` is no order between them (that is the usage rules' business),
/// so `b` then `a` in task context closes no cycle.
#[test]
fn lockdep_orders_only_locks_held_in_the_same_context() {
    use klog::{lockdep, RawSpinLock};
    let a = RawSpinLock::new("lock_a", ());
    let b = RawSpinLock::new("lock_b", ());
    let arch = FakeArch::new(0, 1);
    {
        let _ga = a.lock(&arch, None).unwrap();
        arch.preempt_count.store(HARDIRQ_OFFSET, Ordering::Relaxed);
        let _gb = b.lock(&arch, None).unwrap();
        drop(_gb);
        arch.preempt_count.store(0, Ordering::Relaxed);
    }
    {
        let _gb = b.lock(&arch, None).unwrap();
        let _ga = a.lock(&arch, None).unwrap();
    }
    let f = lockdep::check(&[a.core(), b.core()], klog::Kernel::new(6, 12));
    assert!(
        f.iter().all(|f| f.rule != Rule::CircularLockOrder),
        "{f:#?}"
    );
    // The same two orders within one context are a cycle.
    {
        let _ga = a.lock(&arch, None).unwrap();
        let _gb = b.lock(&arch, None).unwrap();
    }
    let f = lockdep::check(&[a.core(), b.core()], klog::Kernel::new(6, 12));
    assert!(
        f.iter().any(|f| f.rule == Rule::CircularLockOrder),
        "{f:#?}"
    );
}

#[test]
fn lockdep_finds_an_ab_ba_order_once_with_the_kernels_box() {
    use klog::{lockdep, RawSpinLock};
    let a = RawSpinLock::new("lock_a", ());
    let b = RawSpinLock::new("lock_b", ());
    let c = RawSpinLock::new("lock_c", ());
    let arch = FakeArch::new(0, 1);
    {
        let _ga = a.lock(&arch, None).unwrap();
        let _gb = b.lock(&arch, None).unwrap();
    }
    // Only ever one order between a and c, and a trylock adds no edge.
    {
        let _ga = a.lock(&arch, None).unwrap();
        let _gc = c.lock(&arch, None).unwrap();
    }
    {
        let _gc = c.lock(&arch, None).unwrap();
        let _ga = a.try_lock(&arch, None).unwrap();
    }
    assert!(lockdep::check(&[a.core(), b.core(), c.core()], klog::Kernel::new(6, 12)).is_empty());
    {
        let _gb = b.lock(&arch, None).unwrap();
        let _ga = a.lock(&arch, None).unwrap();
    }
    let f = lockdep::check(&[a.core(), b.core(), c.core()], klog::Kernel::new(6, 12));
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!((f[0].rule, f[0].lock), (Rule::CircularLockOrder, "lock_a"));
    assert_eq!(
        f[0].message,
        "possible circular locking dependency detected"
    );
    for line in [
        "lock(lock_a);",
        "lock(lock_b);",
        "*** DEADLOCK ***",
        "CPU0",
        "CPU1",
    ] {
        assert!(f[0].scenario.contains(line), "{}", f[0].scenario);
    }
}

/// vprintk_store() (5.10 on): a reservation that fails is tried once more
/// with the text cut to a quarter of the ring, ending in "<truncated>"
/// (truncate_msg()); the message is stored, not dropped.
#[test]
fn lockless_truncates_a_message_too_big_for_its_ring_and_stores_it() {
    let arch = FakeArch::new(0, 1);
    let info = klog::printk::design("lockless").unwrap();
    // 1 KiB of text: a block may take at most half of it.
    let mut d = info.build::<FakeArch>(&config(1024)).unwrap();
    let long = "x".repeat(1000);
    d.printk(&arch, Level::Info, format_args!("{long}\n"));
    let recs = d.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].text, format!("{}<truncated>", "x".repeat(256 - 11)));
    let a = d.accounts();
    assert_eq!((a.attempted, a.stored, a.dropped), (1, 1, 0));
    assert!(a.balanced());
}

static ZAP: std::sync::OnceLock<Legacy> = std::sync::OnceLock::new();

/// An NMI's printk on the CPU inside vprintk_emit()'s locked window.
fn nmi_printk_inside_the_window(a: &FakeArch, _: Point) {
    a.preempt_count
        .store(NMI_OFFSET + HARDIRQ_OFFSET, Ordering::Relaxed);
    if let Some(d) = ZAP.get() {
        d.printk(a, Level::Emerg, format_args!("from the NMI\n"));
    }
    a.preempt_count.store(0, Ordering::Relaxed);
}

/// 3.x/4.x zap_locks(): printk recursing on the CPU that holds logbuf_lock
/// while an oops (here a panic) is in progress re-initialises the locks and
/// barges on, instead of losing the message to the recursion check.
#[test]
fn legacy_zaps_its_locks_when_printk_recurses_during_a_panic() {
    use klog::printk::ReadAt;
    use klog::record::{TextBuf, TEXT_MAX};
    let d = ZAP.get_or_init(|| Legacy::new(&config(1 << 16)));
    let arch =
        FakeArch::new(0, 1).with_hook(point::VPRINTK_LOGBUF_LOCKED, nmi_printk_inside_the_window);
    arch.set_panic_cpu(Some(0));
    d.printk(&arch, Level::Info, format_args!("the interrupted one\n"));
    let dropped: Vec<(klog::printk::DropReason, u64)> = Printk::<FakeArch>::drop_reasons(d)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(dropped.is_empty(), "nothing dropped: {dropped:?}");
    // Both stored, the NMI's first: it got in while the interrupted printk
    // held the lock it re-initialised.
    let quiet = klog::arch::Quiet;
    let read = |seq| {
        let mut t = TextBuf::<TEXT_MAX>::new();
        match Printk::<klog::arch::Quiet>::read_at(d, &quiet, seq, &mut t) {
            ReadAt::Record(_) => String::from_utf8_lossy(t.as_bytes()).into_owned(),
            other => format!("{other:?}"),
        }
    };
    assert_eq!(read(0), "from the NMI");
    assert_eq!(read(1), "the interrupted one");
}
