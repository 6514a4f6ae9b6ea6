//! Timeline events for `--trace` and `--svg`: per CPU, what context it
//! entered and left, which spinlocks it took and released, where it spun,
//! and when it called printk.
//!
//! Each CPU writes its own pre-allocated buffer, from any context: a slot
//! is claimed with one `fetch_add` (an interrupt that lands between the
//! claim and the writes takes the next slot), then filled with relaxed
//! stores. A full buffer keeps its first events and counts the rest.
//! Tracing is off unless asked for; off, every hook is one branch.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use klog::Context;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A context began (hardirq or NMI handler entered).
    Enter(Context),
    /// A context ended.
    Exit(Context),
    /// A spinlock was taken.
    Held(&'static str),
    /// A spinlock was released.
    Released(&'static str),
    /// A contended acquisition started spinning.
    SpinBegin(&'static str),
    /// The spin ended (acquired or broken).
    SpinEnd(&'static str),
    /// printk was called.
    Printk(Context),
}

/// One event of one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// ns since the run started.
    pub ts_ns: u64,
    /// What.
    pub kind: Kind,
}

#[derive(Default)]
struct Slot {
    ts: AtomicU64,
    tag: AtomicU64,
    ptr: AtomicU64,
    len: AtomicU64,
}

/// One CPU's events.
pub struct CpuTrace {
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

impl CpuTrace {
    fn new(capacity: usize) -> CpuTrace {
        CpuTrace {
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }
}

const ENTER: u64 = 1;
const EXIT: u64 = 2;
const HELD: u64 = 3;
const RELEASED: u64 = 4;
const SPIN_BEGIN: u64 = 5;
const SPIN_END: u64 = 6;
const PRINTK: u64 = 7;

/// Every CPU's events.
pub struct Trace {
    cpus: Box<[CpuTrace]>,
    lost: AtomicU64,
}

impl Trace {
    /// Buffers of `capacity` events for `nr_cpus` CPUs.
    pub fn new(nr_cpus: usize, capacity: usize) -> Trace {
        Trace {
            cpus: (0..nr_cpus).map(|_| CpuTrace::new(capacity)).collect(),
            lost: AtomicU64::new(0),
        }
    }

    /// Claim `cpu`'s next slot; a full buffer counts the event as lost.
    fn claim(&self, cpu: usize) -> Option<&Slot> {
        let c = self.cpus.get(cpu)?;
        let i = c.next.fetch_add(1, Ordering::Relaxed);
        let slot = c.slots.get(i);
        if slot.is_none() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
        slot
    }

    fn fill(slot: &Slot, ts_ns: u64, tag: u64, ptr: usize, len: usize) {
        slot.ts.store(ts_ns, Ordering::Relaxed);
        slot.ptr.store(ptr as u64, Ordering::Relaxed);
        slot.len.store(len as u64, Ordering::Relaxed);
        slot.tag.store(tag, Ordering::Release);
    }

    /// Record `kind` at `ts_ns` on `cpu`. Signal-safe.
    pub fn push(&self, cpu: usize, ts_ns: u64, kind: Kind) {
        let Some(slot) = self.claim(cpu) else {
            return;
        };
        let (tag, name): (u64, &'static str) = match kind {
            Kind::Enter(ctx) => (ENTER | u64::from(ctx.level()) << 8, ""),
            Kind::Exit(ctx) => (EXIT | u64::from(ctx.level()) << 8, ""),
            Kind::Held(n) => (HELD, n),
            Kind::Released(n) => (RELEASED, n),
            Kind::SpinBegin(n) => (SPIN_BEGIN, n),
            Kind::SpinEnd(n) => (SPIN_END, n),
            Kind::Printk(ctx) => (PRINTK | u64::from(ctx.level()) << 8, ""),
        };
        Self::fill(slot, ts_ns, tag, name.as_ptr() as usize, name.len());
    }

    /// Events that did not fit.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// After the run: each CPU's events in time order. `names` are the
    /// lock names that may appear (the events point at them).
    pub fn events(&self, names: &[&'static str]) -> Vec<Vec<Event>> {
        self.cpus
            .iter()
            .map(|c| {
                let n = c.next.load(Ordering::Acquire).min(c.slots.len());
                let mut out: Vec<Event> = c
                    .slots
                    .iter()
                    .take(n)
                    .filter_map(|s| {
                        let tag = s.tag.load(Ordering::Acquire);
                        let ptr = s.ptr.load(Ordering::Relaxed);
                        let len = s.len.load(Ordering::Relaxed);
                        let name = || {
                            names
                                .iter()
                                .copied()
                                .find(|n| n.as_ptr() as u64 == ptr && n.len() as u64 == len)
                        };
                        let ctx = Context::from_level(((tag >> 8) & 3) as u8);
                        let kind = match tag & 0xff {
                            ENTER => Kind::Enter(ctx),
                            EXIT => Kind::Exit(ctx),
                            HELD => Kind::Held(name()?),
                            RELEASED => Kind::Released(name()?),
                            SPIN_BEGIN => Kind::SpinBegin(name()?),
                            SPIN_END => Kind::SpinEnd(name()?),
                            PRINTK => Kind::Printk(ctx),
                            _ => return None,
                        };
                        Some(Event {
                            ts_ns: s.ts.load(Ordering::Relaxed),
                            kind,
                        })
                    })
                    .collect();
                out.sort_by_key(|e| e.ts_ns);
                out
            })
            .collect()
    }
}
