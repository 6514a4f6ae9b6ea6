//! loom model of the ring: two writers and a reader on a ring of four
//! descriptors and 64 bytes, which wraps within the model. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release -p klog --test loom_ring`.
//! Every interleaving within loom's preemption bound must keep records
//! whole, sequence numbers growing and the accounts exact.

#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use klog::arch::Quiet;
use klog::record::{CallerId, Meta, TextBuf};
use klog::ringbuf::Ring;
use klog::{Context, Level};

fn meta(cpu: usize) -> Meta {
    Meta {
        ts_ns: 0,
        cpu,
        context: Context::Task,
        caller: CallerId(cpu as u32),
        level: Level::Info,
        cont: false,
    }
}

fn write(ring: &Ring, cpu: usize, len: usize) -> bool {
    let m = meta(cpu);
    let bytes = [b'a' + cpu as u8; 16];
    match ring.reserve(&Quiet, len, &m) {
        Ok(mut r) => {
            r.write(ring, &bytes[..len], &m);
            ring.final_commit(&Quiet, r);
            true
        }
        Err(_) => false,
    }
}

#[test]
fn two_writers_one_reader_on_a_tiny_wrapping_ring() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(
        std::env::var("LOOM_MAX_PREEMPTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
    );
    builder.check(|| {
        // 4 descriptors, 64 bytes. Three records before the threads start
        // (blocks of 16, 24 and 16 bytes): each writer's block below must
        // recycle the oldest data and wraps past the end of the array.
        let ring = Arc::new(Ring::new(2, 6));
        assert!(write(&ring, 2, 8));
        assert!(write(&ring, 2, 16));
        assert!(write(&ring, 2, 8));
        let ok = Arc::new(AtomicU64::new(3));
        let writers: Vec<_> = (0..2)
            .map(|cpu| {
                let (ring, ok) = (ring.clone(), ok.clone());
                thread::spawn(move || {
                    if write(&ring, cpu, 16) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let reader = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut seq = 0;
                let mut t = TextBuf::<32>::new();
                let mut last = None;
                while let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
                    let b = t.as_bytes();
                    assert!(b.len() == 8 || b.len() == 16, "length {}", b.len());
                    assert!(b.iter().all(|&x| x == b'a' + r.meta.cpu as u8), "torn");
                    assert!(last < Some(r.seq));
                    last = Some(r.seq);
                    seq = r.seq + 1;
                }
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        reader.join().unwrap();
        // Quiescent: what is readable plus what was recycled is what was
        // stored.
        let mut seq = ring.first_seq();
        let mut t = TextBuf::<32>::new();
        let mut readable = 0;
        while let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
            readable += 1;
            seq = r.seq + 1;
        }
        assert_eq!(readable + ring.overwritten(), ok.load(Ordering::Relaxed));
    });
}
