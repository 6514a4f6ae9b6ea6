//! Self-checking stress of the lockless ring, after the kernel's
//! ring-buffer KUnit test: one writer thread per CPU, real signals (the
//! NMI stand-in is a real-time signal sent with `pthread_kill`) that
//! interrupt the writers anywhere and write records from the handler, and
//! one reader thread that checks every record on its own terms: length
//! 1–127, every byte the same, the byte naming the writer and context, and
//! sequence numbers that only grow. At the end, `read + lost == written`
//! exactly, where `written` counts every sequence number handed out.
//!
//! `PRINTK_SIM_STRESS_MS` sets how long the writers run (default 300 ms).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use klog::arch::Quiet;
use klog::record::{CallerId, Meta, TextBuf};
use klog::ringbuf::Ring;
use klog::{Context, Level};

const WRITERS: usize = 2;

static RING: OnceLock<Ring> = OnceLock::new();
/// Records committed, from task context and from handlers.
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static FROM_HANDLER: AtomicU64 = AtomicU64::new(0);
static SEED: [AtomicU64; WRITERS] = [const { AtomicU64::new(0) }; WRITERS];

thread_local! {
    static WRITER: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn byte(writer: usize, context: Context) -> u8 {
    b'a' + (writer * 2) as u8 + u8::from(context == Context::Nmi)
}

/// Write one record of `len` bytes of the writer's byte. Signal-safe.
fn write(ring: &Ring, writer: usize, context: Context, len: usize) {
    let m = Meta {
        ts_ns: 0,
        cpu: writer,
        context,
        caller: CallerId(writer as u32),
        level: Level::Info,
        cont: false,
    };
    let payload = [byte(writer, context); 127];
    if let Ok(mut r) = ring.reserve(&Quiet, len, &m) {
        r.write(payload.get(..len).unwrap_or(&[]), &m);
        r.final_commit(&Quiet);
        WRITTEN.fetch_add(1, Ordering::Relaxed);
    }
}

fn next_len(state: &AtomicU64) -> usize {
    // xorshift; one state per writer, used only by that writer's contexts.
    let mut x = state.load(Ordering::Relaxed) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    1 + (x % 127) as usize
}

extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: reading this thread's errno slot.
    let errno = unsafe { *libc::__errno_location() };
    let w = WRITER.with(Cell::get);
    if let (Some(ring), Some(seed)) = (RING.get(), SEED.get(w)) {
        for _ in 0..3 {
            write(ring, w, Context::Nmi, next_len(seed));
            FROM_HANDLER.fetch_add(1, Ordering::Relaxed);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

#[test]
fn writers_interrupted_by_signals_and_a_checking_reader() {
    let ms: u64 = std::env::var("PRINTK_SIM_STRESS_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // 4 KiB of text, 128 descriptors: wraps constantly.
    let ring = RING.get_or_init(|| Ring::new(7, 12));
    let sig = libc::SIGRTMIN() + 3;
    // SAFETY: installing a handler that only touches atomics, a const
    // thread-local and the ring, all async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
    let stop = AtomicBool::new(false);
    let senders_done = AtomicBool::new(false);
    let ready = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let tids: Vec<AtomicU64> = (0..WRITERS).map(|_| AtomicU64::new(0)).collect();
    let (read, lost, end, signals) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (stop, ready, tids, senders_done, finished) =
                    (&stop, &ready, &tids, &senders_done, &finished);
                s.spawn(move || {
                    WRITER.with(|c| c.set(w));
                    SEED[w].store(0x9e37_79b9 * (w as u64 + 1), Ordering::Relaxed);
                    // SAFETY: pthread_self has no preconditions.
                    tids[w].store(unsafe { libc::pthread_self() } as u64, Ordering::Release);
                    ready.fetch_add(1, Ordering::AcqRel);
                    let seed = AtomicU64::new(0x1234_5678 + w as u64);
                    while !stop.load(Ordering::Relaxed) {
                        write(ring, w, Context::Task, next_len(&seed));
                    }
                    finished.fetch_add(1, Ordering::AcqRel);
                    while !senders_done.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        // The sender: signals at random writers, a few thousand a second.
        let sender = s.spawn(|| {
            while ready.load(Ordering::Acquire) < WRITERS {
                std::thread::yield_now();
            }
            let mut n = 0u64;
            let mut x = 88172645463325252u64;
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let w = (x % WRITERS as u64) as usize;
                let t = tids[w].load(Ordering::Acquire) as libc::pthread_t;
                // SAFETY: the writer thread is alive until senders_done.
                unsafe { libc::pthread_kill(t, sig) };
                n += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            senders_done.store(true, Ordering::Release);
            n
        });
        let reader = s.spawn(|| {
            let (mut read, mut seq) = (0u64, 0u64);
            let mut t = TextBuf::<256>::new();
            loop {
                // Done once no writer and no handler can write any more.
                let finished = senders_done.load(Ordering::Acquire)
                    && finished.load(Ordering::Acquire) == WRITERS;
                while let Some(r) = ring.read_valid(&Quiet, &mut seq, &mut t) {
                    let b = t.as_bytes();
                    assert!(
                        (1..=127).contains(&b.len()),
                        "record {} has length {}",
                        r.seq,
                        b.len()
                    );
                    assert!(
                        b.iter().all(|&x| x == b[0]),
                        "record {} is torn: {b:?}",
                        r.seq
                    );
                    assert_eq!(
                        b[0],
                        byte(r.meta.cpu, r.meta.context),
                        "record {} byte vs meta",
                        r.seq
                    );
                    assert!(r.seq >= seq, "sequence went back");
                    read += 1;
                    seq = r.seq + 1;
                }
                if finished {
                    break (read, seq - read, seq);
                }
                std::thread::yield_now();
            }
        });
        std::thread::sleep(Duration::from_millis(ms));
        stop.store(true, Ordering::Relaxed);
        let signals = sender.join().unwrap();
        for w in writers {
            w.join().unwrap();
        }
        let (read, lost, end) = reader.join().unwrap();
        (read, lost, end, signals)
    });
    let f = ring.fails();
    let written = WRITTEN.load(Ordering::Relaxed);
    eprintln!(
        "stress {ms} ms: written {written} ({} from {signals} signals), read {read}, lost {lost}, \
         failed: {} desc busy, {} data busy",
        FROM_HANDLER.load(Ordering::Relaxed),
        f.desc_busy,
        f.data_busy
    );
    assert!(signals > 10 && FROM_HANDLER.load(Ordering::Relaxed) > 0);
    assert!(read > 0 && written > 1000);
    assert_eq!(f.too_big, 0);
    // Every sequence number handed out (records written, and the data-less
    // ones whose data could not be allocated) was read or counted lost.
    assert_eq!(end, written + f.data_busy);
}
