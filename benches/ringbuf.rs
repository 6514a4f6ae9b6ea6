//! The lockless ring's write path next to the alternatives, in one run:
//! reserve + copy 64 bytes + final commit per record, on 1 and 2 threads;
//! `crossbeam_queue::ArrayQueue<[u8; 64]>` push+pop; a
//! `parking_lot::Mutex<VecDeque<[u8; 64]>>`; the legacy design's locked byte
//! ring; and the floor (one `fetch_add` and a 64-byte copy). Two-thread
//! cases report aggregate time per record; the cache-line round trip
//! between the two threads is measured alongside, and the ring's failed
//! reservations are printed.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_queue::ArrayQueue;
use klog::arch::Quiet;
use klog::console::ConsoleConfig;
use klog::printk::legacy::Legacy;
use klog::printk::DesignConfig;
use klog::record::{CallerId, Meta};
use klog::ringbuf::Ring;
use klog::testing::FakeArch;
use klog::{Context, Level};
use parking_lot::Mutex;

const REC: [u8; 64] = [b'r'; 64];

fn meta() -> Meta {
    Meta {
        ts_ns: 1,
        cpu: 0,
        context: Context::Task,
        caller: CallerId(1),
        level: Level::Info,
        cont: false,
    }
}

fn prb_write(ring: &Ring, m: &Meta) -> bool {
    match ring.reserve(&Quiet, 64, m) {
        Ok(mut r) => {
            r.write(black_box(&REC), m);
            r.final_commit(&Quiet);
            true
        }
        Err(_) => false,
    }
}

/// The legacy design, used only through its locked ring.
fn legacy_ring() -> Legacy {
    Legacy::new(&DesignConfig {
        nr_cpus: 2,
        buffer_size: 1 << 17,
        console: ConsoleConfig {
            ns_per_char: 0,
            sink_bytes: 0,
            registered: true,
            time_scale: 1.0,
        },
    })
}

fn queue_op(q: &ArrayQueue<[u8; 64]>) {
    let _ = q.push(black_box(REC));
    black_box(q.pop());
}

fn deque_op(dq: &Mutex<VecDeque<[u8; 64]>>) {
    let mut d = dq.lock();
    if d.len() == 1024 {
        d.pop_front();
    }
    d.push_back(black_box(REC));
}

/// Run `op` `iters` times on each of two threads at once; the wall time
/// from their common start to the end of the slower one.
fn timed_two_threads(iters: u64, op: &(dyn Fn(usize) + Sync)) -> Duration {
    let start = Barrier::new(3);
    let t0 = std::thread::scope(|s| {
        for t in 0..2 {
            let start = &start;
            s.spawn(move || {
                pin(t);
                start.wait();
                for _ in 0..iters {
                    op(t);
                }
            });
        }
        start.wait();
        Instant::now()
    });
    t0.elapsed()
}

/// Pin the calling thread to host CPU `cpu`, so that the two threads do not
/// share a core (best effort).
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity on
    // the calling thread with a valid set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn spinning_arch(cpu: usize) -> FakeArch {
    let mut a = FakeArch::new(cpu, 2);
    a.spin_budget = u64::MAX;
    a
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_64b_1thread");
    let head = AtomicU64::new(0);
    let mut slots = vec![[0u8; 64]; 1024];
    g.bench_function("floor", |b| {
        b.iter(|| {
            let i = head.fetch_add(1, Ordering::Relaxed) as usize & 1023;
            slots[i] = black_box(REC);
        })
    });
    let ring = Ring::for_buffer(1 << 17);
    let m = meta();
    g.bench_function("prb", |b| b.iter(|| prb_write(&ring, &m)));
    let small = Ring::for_buffer(1 << 13);
    g.bench_function("prb_8k", |b| b.iter(|| prb_write(&small, &m)));
    let q = ArrayQueue::<[u8; 64]>::new(1024);
    g.bench_function("arrayqueue_push_pop", |b| {
        b.iter(|| {
            queue_op(&q);
        })
    });
    let dq = Mutex::new(VecDeque::<[u8; 64]>::with_capacity(1024));
    g.bench_function("parking_lot_vecdeque", |b| {
        b.iter(|| {
            deque_op(&dq);
        })
    });
    let legacy = legacy_ring();
    let arch = spinning_arch(0);
    g.bench_function("legacy_locked_ring", |b| {
        b.iter(|| legacy.store_raw(&arch, black_box(&REC)))
    });
    g.finish();
}

fn two_threads_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_64b_2threads_aggregate");
    // The cache-line round trip between the two threads: what every shared
    // line costs here today.
    let ball = AtomicU64::new(0);
    g.bench_function("cacheline_round_trip", |b| {
        b.iter_custom(|iters| {
            ball.store(0, Ordering::Relaxed);
            // Each thread waits for its turn, then passes the ball: per
            // iteration, two hand-offs, one round trip.
            timed_two_threads(iters, &|t| {
                let mut spins = 0u32;
                while ball.load(Ordering::Acquire) & 1 != t as u64 && spins < 1 << 22 {
                    std::hint::spin_loop();
                    spins += 1;
                }
                ball.fetch_add(1, Ordering::AcqRel);
            })
        })
    });
    let head = AtomicU64::new(0);
    g.bench_function("floor", |b| {
        b.iter_custom(|iters| {
            let d = timed_two_threads(iters, &|t| {
                let i = head.fetch_add(1, Ordering::Relaxed);
                let mut local = [[0u8; 64]; 2];
                local[t] = black_box(REC);
                black_box((i, local));
            });
            d / 2
        })
    });
    let ring = Ring::for_buffer(1 << 17);
    let attempts = AtomicU64::new(0);
    let m = meta();
    g.bench_function("prb", |b| {
        b.iter_custom(|iters| {
            let d = timed_two_threads(iters, &|_| {
                prb_write(&ring, &m);
            });
            attempts.fetch_add(2 * iters, Ordering::Relaxed);
            d / 2
        })
    });
    let f = ring.fails();
    let n = attempts.load(Ordering::Relaxed).max(1);
    eprintln!(
        "prb, 2 threads: {} of {n} reservations failed ({:.2} %): {} descriptor busy, {} data busy",
        f.desc_busy + f.data_busy,
        100.0 * (f.desc_busy + f.data_busy) as f64 / n as f64,
        f.desc_busy,
        f.data_busy
    );

    let q = ArrayQueue::<[u8; 64]>::new(1024);
    g.bench_function("arrayqueue_push_pop", |b| {
        b.iter_custom(|iters| {
            timed_two_threads(iters, &|_| {
                queue_op(&q);
            }) / 2
        })
    });
    let dq = Mutex::new(VecDeque::<[u8; 64]>::with_capacity(1024));
    g.bench_function("parking_lot_vecdeque", |b| {
        b.iter_custom(|iters| {
            timed_two_threads(iters, &|_| {
                deque_op(&dq);
            }) / 2
        })
    });
    let legacy = legacy_ring();
    let arches = [spinning_arch(0), spinning_arch(1)];
    g.bench_function("legacy_locked_ring", |b| {
        b.iter_custom(|iters| {
            timed_two_threads(iters, &|t| {
                legacy.store_raw(&arches[t], black_box(&REC));
            }) / 2
        })
    });
    g.finish();
}

criterion_group!(benches, one_thread, two_threads_group);
criterion_main!(benches);
