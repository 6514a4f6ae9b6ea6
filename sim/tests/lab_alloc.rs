//! The report card fails a design that allocates inside a simulated
//! interrupt, and says where. This test binary installs the lab's own
//! counting allocator, as a grading program does (the other test binaries
//! install the stricter one of `common/`).

use core::fmt;

use klog::console::Console;
use klog::printk::{DesignConfig, DesignInfo, DesignKind, DropReason, External, PrbLog, Printk};
use klog::record::Level;
use klog::{Arch, Kernel, LockCore};
use printk_sim::lab::{Build, CountingAlloc, Lab};
use printk_sim::machine::Machine;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Lockless, but it formats every message into a `String` first: an
/// allocation in whatever context printk was called from.
struct Formats {
    log: PrbLog,
    console: Console,
}

impl<A: Arch> Printk<A> for Formats {
    fn name(&self) -> &'static str {
        "formats"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        let text = args.to_string();
        self.log.store(arch, level, format_args!("{text}"));
    }

    fn irq_work(&self, _arch: &A) {}

    fn locks(&self) -> Vec<&LockCore> {
        Vec::new()
    }

    klog::prb_printk_methods!(accounts);

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        self.log.drop_reasons()
    }
}

fn build(config: &DesignConfig) -> Box<dyn Printk<Machine>> {
    Box::new(Formats {
        log: PrbLog::new(config.buffer_size),
        console: Console::new(config.console, config.nr_cpus),
    })
}
static BUILD: Build = build;

static FORMATS: DesignInfo = DesignInfo {
    kind: DesignKind::External(External(&BUILD)),
    name: "formats",
    summary: "formats into a String: allocates in every context",
    point_groups: &[],
    kernel: Kernel::new(6, 12),
};

#[test]
fn a_design_that_allocates_in_an_nmi_fails_the_card_with_the_place() {
    // lockdep-only: CPU 0 prints in task context, CPU 1 only takes NMIs
    // that print.
    let card = Lab::new()
        .design(&FORMATS)
        .without_history()
        .scenarios(&["lockdep-only"])
        .explore_on(&[])
        .run(&mut |_| {})
        .unwrap();
    assert_eq!(card.failures.len(), 1, "{:?}", card.failures);
    let f = &card.failures[0];
    assert_eq!((f.design, f.scenario.as_str()), ("formats", "lockdep-only"));
    assert!(
        f.what.ends_with(
            "inside a simulated interrupt, the first on CPU 1 in nmi context: a handler may not allocate"
        ),
        "{}",
        f.what
    );
    let n: u64 = f.what.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 40, "one or more per NMI (40 NMIs): {}", f.what);
    let text = printk_sim::report::card::render(&card, 1000);
    assert!(text.contains("FAILS: formats on lockdep-only: "), "{text}");
    assert!(text.contains("FAILS: 1 broken rule(s)"), "{text}");
}
