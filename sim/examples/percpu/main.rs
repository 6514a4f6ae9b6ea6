//! The second try, the one Linux 4.7 shipped as printk_nmi: an NMI never
//! takes the lock. Its printk writes into a buffer of its own CPU's and
//! queues irq_work; the irq_work (hardirq context, after the NMI) copies
//! the buffer into the log under the lock. Everywhere else, printk takes
//! the lock as the naive design does.
//!
//! `cargo run --release --example percpu` grades it: explore finds no
//! point where an NMI breaks it; the scenarios still find where the lock
//! hurts (a panic that stops a CPU holding it).

mod design;

use printk_sim::lab::CountingAlloc;

/// Allocations inside a simulated interrupt fail the card (and are served
/// from an arena, never from malloc, which a signal handler must not call).
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> std::process::ExitCode {
    printk_sim::grade::main(&design::PERCPU)
}
