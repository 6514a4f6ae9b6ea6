//! The design a newcomer writes first when told "make printk work from
//! NMI context": one spinlock around the ring and the console, taken in
//! every context, NMIs included. It is correct until an NMI lands on a CPU
//! that holds the lock; then the NMI's printk spins on a lock its own CPU
//! can never release.
//!
//! `cargo run --release --example naive` grades it: every built-in
//! scenario next to the six designs of the kernel's history, and explore
//! on the flagship, which finds the window.

mod design;

use printk_sim::lab::CountingAlloc;

/// Allocations inside a simulated interrupt fail the card (and are served
/// from an arena, never from malloc, which a signal handler must not call).
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> std::process::ExitCode {
    printk_sim::grade::main(&design::NAIVE)
}
