//! The printer thread of designs that print from a thread of their own
//! (nbcon's `pr/ttyS0` kthread).
//!
//! It is an OS thread that is not a simulated CPU: it takes no interrupts
//! (both interrupt signals stay blocked) and never runs in interrupt
//! context, like a kernel thread that the simulated CPUs' interrupts do not
//! reach. It identifies itself as CPU `nr_cpus` so that the console's
//! ownership word and per-CPU accounts tell it apart from every real CPU.
//! It sleeps on a futex that the design's irq_work bumps; `FUTEX_WAKE` is a
//! plain system call, so waking it is safe from a signal handler.

use core::sync::atomic::{AtomicU32, Ordering};

use klog::Arch;

use super::irq::block_interrupts;
use super::irq::set_this_cpu;
use super::Machine;

/// How long the printer sleeps without a wake-up before looking again.
const IDLE_NS: i64 = 1_000_000;

/// Wake one thread sleeping on `word`. Async-signal-safe.
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32 that outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

/// Sleep while `word` still holds `seen`, at most `IDLE_NS`.
fn futex_wait(word: &AtomicU32, seen: u32) {
    let timeout = libc::timespec {
        tv_sec: 0,
        tv_nsec: IDLE_NS,
    };
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with a valid relative
    // timeout; a spurious or early return is harmless.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            &timeout as *const libc::timespec,
        )
    };
}

/// The printer thread's body, until the run stops.
pub(crate) fn printer(m: &Machine) {
    block_interrupts();
    set_this_cpu(Some(m.cpus.len()));
    m.design.set_printer_running(true);
    m.gate_wait();
    while !m.stop.load(Ordering::Acquire) {
        // Read the word before looking for work: a wake-up after this
        // makes the wait return at once.
        let seen = m.printer_wake.load(Ordering::Acquire);
        let more = m.design.printer_pass(m);
        // nbcon_kthread_func(): while a record is readable the wait
        // condition holds and the thread goes round again (the console
        // was someone else's, or was taken from us), giving way first as
        // cond_resched() does. Not during a panic: the thread's CPU would
        // have been stopped, and nothing is ours to print any more.
        if more && m.panic_cpu().is_none() {
            std::thread::yield_now();
            continue;
        }
        // Done: the next record's irq_work wakes us.
        futex_wait(&m.printer_wake, seen);
    }
    m.design.set_printer_running(false);
    set_this_cpu(None);
}
