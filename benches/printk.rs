//! Hot-path cost of one printk per design on one CPU, next to a floor (a
//! clock read, one `fetch_add` and a 64-byte copy), on a fake `Arch` (no
//! signals) reading the host's clock: what a record costs the caller.
//! Three cases per design: no console registered (store and return), the
//! same with integers to format, and an instant console printing each
//! record inline. `printk-sim bench` measures the same hot paths plus
//! throughput and latencies, all designs in one run.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use klog::console::ConsoleConfig;
use klog::printk::{DesignConfig, DESIGNS};
use klog::testing::FakeArch;
use klog::{Level, Printk};

fn config(console: ConsoleConfig) -> DesignConfig {
    DesignConfig {
        nr_cpus: 1,
        buffer_size: 1 << 17,
        console,
    }
}

fn printk(c: &mut Criterion) {
    let mut group = c.benchmark_group("printk_64b");
    let head = AtomicU64::new(0);
    let mut ring = vec![[0u8; 64]; 1024];
    let src = [b'x'; 64];
    let base = Instant::now();
    group.bench_function("floor", |b| {
        b.iter(|| {
            let ts = base.elapsed().as_nanos() as u64;
            let i = head.fetch_add(1, Ordering::Relaxed) as usize & 1023;
            ring[i] = black_box(src);
            ring[i][..8].copy_from_slice(&ts.to_le_bytes());
        })
    });
    let text = "y".repeat(64);
    let instant = ConsoleConfig {
        ns_per_char: 0,
        sink_bytes: 1 << 12,
        registered: true,
        time_scale: 1.0,
    };
    for info in DESIGNS {
        let arch = FakeArch::new(0, 1).with_real_clock();
        let design: Box<dyn Printk<FakeArch>> = info.build(&config(ConsoleConfig::none())).unwrap();
        group.bench_function(format!("{}/record", info.name), |b| {
            b.iter(|| design.printk(&arch, Level::Info, format_args!("{}\n", black_box(&text))))
        });
        let design: Box<dyn Printk<FakeArch>> = info.build(&config(ConsoleConfig::none())).unwrap();
        let mut i = 0u64;
        group.bench_function(format!("{}/formatted", info.name), |b| {
            b.iter(|| {
                i += 1;
                design.printk(
                    &arch,
                    Level::Info,
                    format_args!(
                        "cpu{} task #{} value={:#010x} {}\n",
                        0,
                        i,
                        i * 7919,
                        &text[..40]
                    ),
                )
            })
        });
        let design: Box<dyn Printk<FakeArch>> = info.build(&config(instant)).unwrap();
        group.bench_function(format!("{}/console", info.name), |b| {
            b.iter(|| design.printk(&arch, Level::Info, format_args!("{}\n", black_box(&text))))
        });
    }
    // lockdep's held-lock stack, off: legacy is the design whose store path
    // takes a lock (the fake keeps no timeline, so no other hook is on).
    let arch = FakeArch::new(0, 1).with_real_clock().without_lockdep();
    if let Some(legacy) = DESIGNS.iter().find(|d| d.name == "legacy") {
        let design: Box<dyn Printk<FakeArch>> =
            legacy.build(&config(ConsoleConfig::none())).unwrap();
        group.bench_function("legacy/record_without_lockdep", |b| {
            b.iter(|| design.printk(&arch, Level::Info, format_args!("{}\n", black_box(&text))))
        });
    }
    group.finish();
}

criterion_group!(benches, printk);
criterion_main!(benches);
