//! `printk-sim`: the machine that runs the `klog` printk designs.
//!
//! CPUs are OS threads, interrupts are real-time signals, a sender thread
//! ticks every CPU, and a watchdog thread finds lockups and deadlocks from
//! outside. Scenarios (TOML) say what the CPUs do and where NMIs land; the
//! runner runs each design on the same scenario and seed, and the reports
//! put them side by side.
//!
//! What this crate must never do: call anything that allocates, locks, prints
//! or panics on a path a signal handler can reach (`machine::irq` lists those
//! paths), or let a run hang (the watchdog's hard limit ends every run).

#![deny(unsafe_op_in_unsafe_fn)]
// Signal context is sacred (machine::irq): every lint that lets a panic in
// is denied here, and allowed below only for modules no handler reaches
// (and in unit tests).
#![deny(clippy::indexing_slicing, clippy::panic)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::panic))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[doc(hidden)]
pub use klog as __klog;

pub mod bench;
pub mod cli;
pub mod explore;
pub mod grade;
pub mod lab;
pub mod latency;
pub mod machine;
pub mod outcome;
pub mod progress;
pub mod reduce;
// Never reached from a handler: reports are written after the run.
#[allow(clippy::indexing_slicing)]
pub mod report;
pub mod rng;
pub mod runner;
// Never reached from a handler: scenarios are read before the run.
#[allow(clippy::indexing_slicing)]
pub mod scenario;
pub mod shard;
pub mod sweep;
pub mod watchdog;
pub mod workload;

/// Whether the calling thread is a CPU of a running machine and is inside a
/// simulated interrupt (hardirq or NMI). Test allocators use this to catch
/// allocation in interrupt context; it only reads a thread-local and an
/// atomic, so it is safe to call from an allocator.
pub fn in_interrupt() -> bool {
    machine::irq::current_cpu_context()
        .is_some_and(|pc| pc & (klog::context::HARDIRQ_MASK | klog::context::NMI_MASK) != 0)
}
