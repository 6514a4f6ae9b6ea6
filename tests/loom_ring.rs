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
            r.write(&bytes[..len], &m);
            r.final_commit(&Quiet);
            true
        }
        Err(_) => false,
    }
}

fn bound(default: usize) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(
        std::env::var("LOOM_MAX_PREEMPTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    );
    builder
}

/// A ring of 4 descriptors and 64 bytes holding three records (blocks of
/// 16, 24 and 16 bytes): a 24-byte block more must recycle the oldest data
/// and wraps past the end of the array.
fn prefilled() -> Arc<Ring> {
    let ring = Arc::new(Ring::new(2, 6));
    assert!(write(&ring, 2, 8));
    assert!(write(&ring, 2, 16));
    assert!(write(&ring, 2, 8));
    ring
}

/// Quiescent checks: every readable record whole, sequence numbers
/// contiguous from the first readable one, and readable + recycled ==
/// stored.
fn check_quiescent(ring: &Ring, stored: u64) {
    let mut seq = ring.first_seq();
    let mut t = TextBuf::<32>::new();
    let mut readable = 0;
    let mut last: Option<u64> = None;
    while let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
        let b = t.as_bytes();
        assert!(b.len() == 8 || b.len() == 16, "length {}", b.len());
        assert!(b.iter().all(|&x| x == b'a' + r.meta.cpu as u8), "torn");
        if let Some(l) = last {
            assert!(r.seq > l);
        }
        last = Some(r.seq);
        readable += 1;
        seq = r.seq + 1;
    }
    assert_eq!(readable + ring.overwritten(), stored);
}

/// Two writers race to reserve, recycle and wrap.
#[test]
fn two_writers_recycling_and_wrapping() {
    bound(2).check(|| {
        let ring = prefilled();
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
        for w in writers {
            w.join().unwrap();
        }
        check_quiescent(&ring, ok.load(Ordering::Relaxed));
    });
}

/// A reader copies the oldest record while a writer recycles it: the
/// reader gets the whole old record or nothing, never a mix.
#[test]
fn a_reader_racing_the_writer_that_recycles_its_record() {
    bound(2).check(|| {
        let ring = prefilled();
        let writer = {
            let ring = ring.clone();
            thread::spawn(move || assert!(write(&ring, 0, 16)))
        };
        let mut t = TextBuf::<32>::new();
        if let Ok(r) = ring.read(&Quiet, 0, &mut t) {
            assert_eq!(r.seq, 0);
            assert_eq!(
                t.as_bytes(),
                &[b'c'; 8],
                "record 0 read whole or not at all"
            );
        }
        writer.join().unwrap();
        check_quiescent(&ring, 4);
    });
}

/// Two writers and a reader at once, on an empty ring: the reader's view
/// of the first records while both writers are reserving, writing and
/// finalizing them. (Recycling and wrapping are covered, with fewer
/// threads, by the models above.)
#[test]
fn two_writers_one_reader() {
    bound(2).check(|| {
        let ring = Arc::new(Ring::new(2, 7));
        let writers: Vec<_> = (0..2)
            .map(|cpu| {
                let ring = ring.clone();
                thread::spawn(move || assert!(write(&ring, cpu, 8)))
            })
            .collect();
        let reader = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut seq = 0;
                let mut t = TextBuf::<32>::new();
                if let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
                    assert_eq!(r.seq, 0, "nothing is lost on an empty ring");
                    let b = t.as_bytes();
                    assert_eq!(b.len(), 8);
                    assert!(b.iter().all(|&x| x == b'a' + r.meta.cpu as u8), "torn");
                }
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        reader.join().unwrap();
        check_quiescent(&ring, 2);
    });
}

/// A caller extends its open record while another writer reserves a new
/// one: whichever wins, the open record ends up finalized and readable,
/// and the extension is either in it or in a record of its own.
#[test]
fn extending_the_last_record_against_a_new_writer() {
    bound(2).check(|| {
        let ring = Arc::new(Ring::new(2, 6));
        let a = meta(0);
        let mut r = ring.reserve(&Quiet, 8, &a).unwrap();
        r.write(&[b'a'; 8], &a);
        r.commit(&Quiet);
        let other = {
            let ring = ring.clone();
            thread::spawn(move || assert!(write(&ring, 1, 8)))
        };
        let extended = match ring.reserve_in_last(&Quiet, CallerId(0), 8, 16) {
            Some(mut r) => {
                r.write(&[b'a'; 8], &a);
                r.final_commit(&Quiet);
                true
            }
            None => false,
        };
        other.join().unwrap();
        let mut seq = ring.first_seq();
        let mut t = TextBuf::<32>::new();
        let mut lens = Vec::new();
        while let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
            if r.meta.cpu == 0 {
                lens.push(t.as_bytes().len());
            }
            seq = r.seq + 1;
        }
        // Never left open (unreadable), never torn.
        let want: &[usize] = if extended { &[16] } else { &[8] };
        assert_eq!(lens, want);
    });
}
