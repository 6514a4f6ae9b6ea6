//! `klog`: the kernel side of printk-sim.
//!
//! Everything here is written the way kernel code is written against its
//! architecture: through one trait, [`Arch`], that answers "which CPU am I",
//! "what context am I in", masks interrupts, raises irq_work, reads the
//! clock, busy-waits, marks injection points and decides whether a spinning
//! wait must give up. The printk designs ([`printk`]), their locks
//! ([`lock`]), records ([`record`]) and consoles ([`console`]) live here.
//!
//! What this crate must never do: spawn a thread, install a signal handler,
//! read a real clock or draw a random number. The machine that does those
//! things is the `printk-sim` crate; tests use a fake [`Arch`].
//!
//! Every path a design's `printk` can take is callable from a signal
//! handler: no allocation, no std or parking_lot locks, no printing, no
//! panics (ARCHITECTURE.md, Invariants). Allocation happens only in constructors and in the
//! after-the-run readers ([`printk::Printk::records`]).

#![deny(unsafe_op_in_unsafe_fn)]
// Nothing a signal handler can reach may panic: the lints that would let
// a panic in are denied in the whole crate, unit tests excepted.
#![deny(clippy::indexing_slicing, clippy::panic)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::indexing_slicing, clippy::panic))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[macro_use]
mod named;

pub mod arch;
pub mod console;
pub mod context;
pub mod era;
pub mod held;
pub mod lock;
pub mod lockdep;
pub mod owner;
pub mod point;
pub mod printk;
pub mod record;
pub mod ringbuf;
#[cfg(feature = "testing")]
pub mod testing;

pub use arch::{Arch, Frame, IrqFlags, LockKey, WaitTicket};
pub use context::Context;
pub use era::Kernel;
pub use lock::{Broken, LockCore, Owner, RawSpinLock, Semaphore};
pub use point::Point;
pub use printk::{Accounts, DesignConfig, Printk};
pub use record::{Level, Record};
