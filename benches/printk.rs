//! Hot-path cost of one printk per design on one CPU, next to a floor (one
//! `fetch_add` and a 64-byte copy), with an instant console and a fake
//! `Arch` (no signals): what a record costs the caller, nothing else.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion};
use klog::console::ConsoleConfig;
use klog::printk::{DesignConfig, DESIGNS};
use klog::testing::FakeArch;
use klog::{Level, Printk};

fn printk(c: &mut Criterion) {
    let config = DesignConfig {
        nr_cpus: 1,
        buffer_size: 1 << 17,
        console: ConsoleConfig {
            ns_per_char: 0,
            sink_bytes: 1 << 12,
            registered: true,
        },
    };
    let mut group = c.benchmark_group("printk_64b");
    let head = AtomicU64::new(0);
    let mut ring = vec![[0u8; 64]; 1024];
    let src = [b'x'; 64];
    group.bench_function("floor", |b| {
        b.iter(|| {
            let i = head.fetch_add(1, Ordering::Relaxed) as usize & 1023;
            ring[i] = black_box(src);
        })
    });
    let text = "y".repeat(64);
    for info in DESIGNS {
        let arch = FakeArch::new(0, 1);
        let design: Box<dyn Printk<FakeArch>> = info.build(&config);
        group.bench_function(info.name, |b| {
            b.iter(|| design.printk(&arch, Level::Info, format_args!("{}\n", black_box(&text))))
        });
    }
    group.finish();
}

criterion_group!(benches, printk);
criterion_main!(benches);
