//! The lockless ring on its own: bootstrap, wrap-around, recycling,
//! failures with their reasons, extension of the newest record, readers
//! that discard what was recycled under them, and two writers at once with
//! a concurrent reader. Small enough to run under Miri.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use klog::arch::Quiet;
use klog::record::{CallerId, Meta, TextBuf};
use klog::ringbuf::{Fail, ReadError, Ring};
use klog::testing::FakeArch;
use klog::{point, Context, Level, Point};

fn meta(cpu: usize, caller: u32) -> Meta {
    Meta {
        ts_ns: 7,
        cpu,
        context: Context::Task,
        caller: CallerId(caller),
        level: Level::Notice,
        cont: false,
    }
}

/// Write one final record of `text`.
fn put(ring: &Ring, text: &[u8]) -> Result<(), Fail> {
    let m = meta(0, 1);
    let mut r = ring.reserve(&Quiet, text.len(), &m)?;
    r.write(text, &m);
    r.final_commit(&Quiet);
    Ok(())
}

fn get(ring: &Ring, seq: u64) -> Result<String, ReadError> {
    let mut t = TextBuf::<2048>::new();
    ring.read(&Quiet, seq, &mut t)?;
    Ok(String::from_utf8(t.as_bytes().to_vec()).unwrap())
}

/// Every readable record from the first, with its sequence number.
fn all(ring: &Ring) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut seq = ring.first_seq();
    let mut t = TextBuf::<2048>::new();
    while let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
        out.push((r.seq, String::from_utf8(t.as_bytes().to_vec()).unwrap()));
        seq = r.seq + 1;
    }
    out
}

fn text(i: u64) -> Vec<u8> {
    let len = 1 + (i * 37 % 61) as usize;
    vec![b'a' + (i % 26) as u8; len]
}

#[test]
fn an_empty_ring_reads_nothing_and_starts_at_sequence_zero() {
    let ring = Ring::new(4, 9);
    assert_eq!(ring.count(), 16);
    assert_eq!(ring.first_seq(), 0);
    assert!(all(&ring).is_empty());
    assert!(!ring.has_next(0));
    put(&ring, b"hello").unwrap();
    assert_eq!(all(&ring), vec![(0, "hello".to_string())]);
    assert_eq!(get(&ring, 0).as_deref(), Ok("hello"));
    assert_eq!(get(&ring, 1), Err(ReadError::Invalid), "not written yet");
    let mut t = TextBuf::<64>::new();
    let r = ring.read(&Quiet, 0, &mut t).unwrap();
    assert_eq!(r.meta, meta(0, 1));
}

#[test]
fn wrapping_many_times_keeps_the_newest_records_whole() {
    // 8 descriptors, 256 bytes: both rings wrap many times, blocks straddle
    // the end of the data array and are placed at its start.
    let ring = Ring::new(3, 8);
    let n = if cfg!(miri) { 60 } else { 2000 };
    for i in 0..n {
        put(&ring, &text(i)).unwrap();
        let got = all(&ring);
        assert!(!got.is_empty());
        // The newest is always there, and the readable ones are contiguous.
        assert_eq!(got.last().unwrap().0, i);
        for (k, (seq, t)) in got.iter().enumerate() {
            assert_eq!(*seq, got[0].0 + k as u64);
            assert_eq!(t.as_bytes(), text(*seq), "record {seq} after writing {i}");
        }
        assert_eq!(
            got.len() as u64 + ring.overwritten(),
            i + 1,
            "stored = readable + overwritten"
        );
    }
    assert_eq!(ring.fails(), Default::default());
}

#[test]
fn an_empty_text_is_a_record_too() {
    let ring = Ring::new(3, 8);
    put(&ring, b"").unwrap();
    put(&ring, b"x").unwrap();
    assert_eq!(all(&ring), vec![(0, String::new()), (1, "x".to_string())]);
    // And the census counts it readable, as the reader does (it once
    // counted an empty line as a failed data allocation).
    let c = ring.census();
    assert_eq!((c.readable, c.overwritten, c.unfinished), (2, 0, 0));
}

#[test]
fn too_big_fails_with_its_reason() {
    let ring = Ring::new(3, 8);
    assert_eq!(put(&ring, &[b'x'; 200]), Err(Fail::TooBig));
    assert_eq!(ring.fails().too_big, 1);
    // At most half the data ring, id word included.
    assert_eq!(put(&ring, &[b'x'; 120]), Ok(()));
}

#[test]
fn a_record_still_being_written_blocks_recycling_and_writers_fail() {
    let ring = Ring::new(3, 8);
    let m = meta(0, 1);
    let mut held = ring.reserve(&Quiet, 10, &m).unwrap();
    held.write(b"held-open!", &m);
    // Readers stop at the unfinished record.
    assert!(all(&ring).is_empty());
    let mut failed = None;
    for i in 0..20 {
        if let Err(e) = put(&ring, &text(i)) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the ring should fill up behind the held record");
    assert!(matches!(e, Fail::DescBusy | Fail::DataBusy), "{e:?}");
    let f = ring.fails();
    assert_eq!(f.desc_busy + f.data_busy, 1);
    // Once it is committed, everything behind it becomes readable and the
    // writers go on.
    held.final_commit(&Quiet);
    let got = all(&ring);
    assert_eq!(got[0], (0, "held-open!".to_string()));
    put(&ring, b"after").unwrap();
    assert_eq!(all(&ring).last().unwrap().1, "after");
}

/// A record never finished (its writer stopped) is unfinished, and the
/// finished records after it are counted readable, not overwritten.
#[test]
fn the_census_counts_an_unfinished_record_on_its_own() {
    let ring = Ring::new(4, 10);
    put(&ring, b"before").unwrap();
    let m = meta(1, 2);
    let mut held = ring.reserve(&Quiet, 6, &m).unwrap();
    held.write(b"frozen", &m);
    for i in 0..3 {
        put(&ring, &text(i)).unwrap();
    }
    let c = ring.census();
    assert_eq!((c.readable, c.overwritten, c.unfinished), (4, 0, 1));
    assert_eq!(ring.overwritten(), 0);
    // Wrap the ring behind it: the first record goes, the frozen one holds
    // the rest in place, and every record is in exactly one count.
    let mut stored = 5;
    while put(&ring, &text(stored)).is_ok() {
        stored += 1;
    }
    let c = ring.census();
    assert_eq!(c.unfinished, 1);
    assert_eq!(c.readable + c.overwritten + c.unfinished, stored);
    drop(held);
}

#[test]
fn a_failed_data_allocation_leaves_a_record_without_text() {
    // Descriptors to spare, data short: the block at the data tail is held.
    let ring = Ring::new(5, 8);
    let m = meta(0, 1);
    let mut held = ring.reserve(&Quiet, 100, &m).unwrap();
    held.write(&[b'h'; 100], &m);
    let mut fails = 0;
    for i in 0..10 {
        if put(&ring, &[b'0' + i; 60]) == Err(Fail::DataBusy) {
            fails += 1;
        }
    }
    assert!(fails > 0);
    assert_eq!(ring.fails().data_busy, fails);
    held.final_commit(&Quiet);
    put(&ring, b"after").unwrap();
    // The data-less records are skipped by readers: a gap in the sequence.
    let got = all(&ring);
    assert_eq!(got.last().unwrap().1, "after");
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).any(|w| w[1] > w[0] + 1), "{seqs:?}");
}

#[test]
fn the_newest_record_can_be_extended_by_its_own_caller() {
    let ring = Ring::new(3, 8);
    let (a, b) = (meta(0, 10), meta(0, 20));
    let mut r = ring.reserve(&Quiet, 3, &a).unwrap();
    r.write(b"abc", &a);
    r.commit(&Quiet);
    // Committed but not finalized: not visible yet.
    assert!(all(&ring).is_empty());
    assert!(
        ring.reserve_in_last(&Quiet, CallerId(20), 3, 1024)
            .is_none(),
        "another caller"
    );
    let mut r = ring.reserve_in_last(&Quiet, CallerId(10), 3, 1024).unwrap();
    assert_eq!(r.len(), 3);
    r.write(b"def", &a);
    r.final_commit(&Quiet);
    assert_eq!(all(&ring), vec![(0, "abcdef".to_string())]);
    // Finalized: no more extension.
    assert!(ring
        .reserve_in_last(&Quiet, CallerId(10), 1, 1024)
        .is_none());
    // A newer record finalizes the previous committed one.
    let mut r = ring.reserve(&Quiet, 1, &b).unwrap();
    r.write(b"x", &b);
    r.commit(&Quiet);
    let mut r = ring.reserve(&Quiet, 1, &a).unwrap();
    r.write(b"y", &a);
    r.final_commit(&Quiet);
    assert!(ring
        .reserve_in_last(&Quiet, CallerId(20), 1, 1024)
        .is_none());
    assert_eq!(
        all(&ring).iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["abcdef", "x", "y"]
    );
}

#[test]
fn extending_across_the_end_of_the_data_ring_moves_the_text_to_the_start() {
    let ring = Ring::new(4, 8);
    // Fill up to near the end of the 256-byte array: 3 blocks of 72 bytes.
    for i in 0..3 {
        put(&ring, &[b'0' + i; 64]).unwrap();
    }
    let a = meta(0, 5);
    let mut r = ring.reserve(&Quiet, 8, &a).unwrap();
    r.write(b"12345678", &a);
    r.commit(&Quiet);
    for _ in 0..5 {
        let mut r = ring.reserve_in_last(&Quiet, CallerId(5), 8, 1024).unwrap();
        r.write(b"abcdefgh", &a);
        r.commit(&Quiet);
    }
    put(&ring, b"z").unwrap();
    let got = all(&ring);
    let long = got.iter().find(|(_, t)| t.starts_with("1234")).unwrap();
    assert_eq!(long.1, format!("12345678{}", "abcdefgh".repeat(5)));
}

thread_local! {
    static TARGET: Cell<*const Ring> = const { Cell::new(std::ptr::null()) };
}

/// Stand-in for a writer that interrupts a reader between copy and
/// re-check: writes enough to recycle every slot.
fn overwrite_everything(_: &FakeArch, _: Point) {
    // SAFETY: TARGET points at the ring `reader_discards_*` keeps alive
    // while the pointer is set.
    if let Some(ring) = unsafe { TARGET.with(Cell::get).as_ref() } {
        for i in 0..40 {
            put(ring, &[b'N'; 20][..1 + i % 20]).unwrap();
        }
    }
}

#[test]
fn a_reader_discards_a_record_recycled_while_it_copied() {
    let ring = Ring::new(3, 8);
    put(&ring, b"the original").unwrap();
    TARGET.with(|t| t.set(&ring));
    let arch = FakeArch::new(0, 1).with_hook(point::PRB_READ_COPIED, overwrite_everything);
    let mut t = TextBuf::<64>::new();
    let r = ring.read(&arch, 0, &mut t);
    TARGET.with(|t| t.set(std::ptr::null()));
    assert!(
        r.is_err(),
        "copied data of a recycled record was returned: {r:?}"
    );
    // A fresh read finds the newer records, whole.
    let got = all(&ring);
    assert!(got.iter().all(|(_, t)| t.bytes().all(|b| b == b'N')));
}

/// Two writers and a reader at once: every record the reader gets is whole
/// and from the writer its byte names, sequence numbers only grow, and at
/// the end the reader has accounted for every sequence number the writers
/// were handed: `read + lost == written + data-less records`.
#[test]
fn two_writers_and_a_reader() {
    let ring = Ring::new(5, 10);
    let per = if cfg!(miri) { 30 } else { 20_000 };
    let written = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let (read, _lost, end) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u8)
            .map(|w| {
                let (ring, written) = (&ring, &written);
                s.spawn(move || {
                    let arch = FakeArch::new(usize::from(w), 2);
                    let payload = [b'A' + w; 127];
                    for i in 0..per {
                        let len = 1 + (i * 31 + usize::from(w) * 7) % 127;
                        let m = meta(usize::from(w), u32::from(w));
                        if let Ok(mut r) = ring.reserve(&arch, len, &m) {
                            r.write(&payload[..len], &m);
                            r.final_commit(&arch);
                            written.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let (mut read, mut lost, mut seq) = (0u64, 0u64, 0u64);
            let mut t = TextBuf::<256>::new();
            loop {
                let finished = done.load(Ordering::Acquire);
                let from = seq;
                while let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
                    let b = t.as_bytes();
                    assert!((1..=127).contains(&b.len()), "length {}", b.len());
                    assert!(b.iter().all(|&x| x == b[0]), "torn record {}", r.seq);
                    assert_eq!(
                        usize::from(b[0] - b'A'),
                        r.meta.cpu,
                        "the byte names the writer"
                    );
                    assert!(r.seq >= from, "sequence numbers only grow");
                    read += 1;
                    seq = r.seq + 1;
                }
                if finished {
                    lost += seq - read - lost;
                    break (read, lost, seq);
                }
                lost = seq - read;
                std::thread::yield_now();
            }
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap()
    });
    let written = written.load(Ordering::Relaxed);
    let f = ring.fails();
    ring.check().unwrap();
    assert_eq!(f.too_big, 0);
    assert_eq!(
        end,
        written + f.data_busy,
        "every sequence number handed out was seen or counted lost"
    );
    assert!(read > 0);
    assert_eq!(written + f.desc_busy + f.data_busy, 2 * per as u64);
}
