//! `nbcon`: printk on the lockless ring with an atomic console (6.12).
//!
//! There is no `console_sem`. The console has an ownership word that every
//! printing context acquires with a priority; the owner wraps every
//! character it puts on the wire in an *unsafe* section, and checks between
//! characters whether someone of higher priority asked for the console:
//!
//! ```text
//!  31 30 29                        6     5          4      3   2  1   0
//! +-----+---------------------------+-----------+--------+--------+-------+
//! |  0  |            cpu            | unsafe_   | unsafe |req_prio| prio  |
//! |     |                           | takeover  |        |        |       |
//! +-----+---------------------------+-----------+--------+--------+-------+
//! ```
//!
//! | prio | meaning |
//! |---|---|
//! | 0 none | unowned |
//! | 1 normal | the printer thread, or a caller flushing because no thread runs |
//! | 2 emergency | a CPU inside an emergency section (WARN, oops, stall report) |
//! | 3 panic | the panic CPU |
//!
//! Acquiring goes in three steps, as in `nbcon_context_try_acquire()`:
//!
//! 1. **direct**: the console is unowned, or owned at a lower priority in a
//!    safe state: take it with one compare-and-swap;
//! 2. **handover**: the owner is in an unsafe section on another CPU: set
//!    `req_prio` and poll up to the spin limit for the owner to release it
//!    at the end of its unsafe section (it does so when it sees the
//!    request), then take it;
//! 3. **hostile takeover**: only for the panic CPU's last flush, when the
//!    owner never released (it is stopped inside its unsafe section): take
//!    the console anyway and set `unsafe_takeover`, which stays set.
//!
//! An owner that lost the console notices at its next unsafe-section
//! boundary and backs out without touching the device. The next owner
//! prints the interrupted record again from its start, headed by
//! "** replaying previous printk message **".
//!
//! Where printk prints (the flush-type table of 6.12, for a system with
//! only this nbcon console): at normal priority with the printer thread
//! running, nowhere: the thread is woken through irq_work; at normal
//! priority without a thread, and at emergency and panic priority, the
//! caller flushes atomically itself. A CPU that is not the panic CPU drops
//! its messages once a panic is in progress.
//!
//! The handover spin is the kernel's 2 ms, not scaled by the scenario's
//! time scale: the owner is an OS thread the host may deschedule for
//! milliseconds, and a scaled 20 µs would turn every such pause into a
//! failed handover that the kernel would not see.

use crate::printk::cpu_sync::CpuSync;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::arch::{Arch, Frame};
use crate::console::Console;
use crate::lock::LockCore;
use crate::point;
use crate::printk::lockless::PrbLog;
use crate::printk::{DesignConfig, DropReason, Event, Printk};
use crate::record::{Level, TextBuf, TEXT_MAX};

static VPRINTK_EMIT: Frame = Frame("vprintk_emit");
static ATOMIC_FLUSH: Frame = Frame("nbcon_atomic_flush_pending");
static PRINTER: Frame = Frame("nbcon_kthread_func");

/// How long a handover request waits for the owner, ns.
pub const SPINWAIT_NS: u64 = 2_000_000;

/// Console owner priorities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prio {
    /// Unowned.
    None = 0,
    /// The printer thread, or a caller flushing for lack of one.
    Normal = 1,
    /// A CPU in an emergency section.
    Emergency = 2,
    /// The panic CPU.
    Panic = 3,
}

impl Prio {
    fn from_bits(b: u32) -> Prio {
        match b & 3 {
            0 => Prio::None,
            1 => Prio::Normal,
            2 => Prio::Emergency,
            _ => Prio::Panic,
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Prio::None => "none",
            Prio::Normal => "normal",
            Prio::Emergency => "emergency",
            Prio::Panic => "panic",
        }
    }
}

/// The console's ownership word, unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// The owner's priority.
    pub prio: Prio,
    /// The priority of a context waiting for a handover.
    pub req_prio: Prio,
    /// The owner is in an unsafe section.
    pub unsafe_: bool,
    /// A hostile takeover happened in an unsafe section (sticky).
    pub unsafe_takeover: bool,
    /// The owner's CPU.
    pub cpu: u32,
}

const CPU_MASK: u32 = (1 << 24) - 1;

impl State {
    /// Pack into the ownership word.
    pub fn pack(self) -> u32 {
        self.prio as u32
            | (self.req_prio as u32) << 2
            | u32::from(self.unsafe_) << 4
            | u32::from(self.unsafe_takeover) << 5
            | (self.cpu & CPU_MASK) << 6
    }

    /// Unpack the ownership word.
    pub fn unpack(word: u32) -> State {
        State {
            prio: Prio::from_bits(word),
            req_prio: Prio::from_bits(word >> 2),
            unsafe_: word & 1 << 4 != 0,
            unsafe_takeover: word & 1 << 5 != 0,
            cpu: (word >> 6) & CPU_MASK,
        }
    }
}

/// Where a printk's record gets printed (`printk_get_console_flush_type()`
/// for a system whose only console is this nbcon console).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushType {
    /// Wake the printer thread; the caller prints nothing.
    Offload,
    /// Flush atomically in the caller.
    Atomic,
}

/// The flush-type table of 6.12 (`printk_get_console_flush_type()`, kernel/printk/internal.h), nbcon column:
///
/// | prio | printer thread running | not running |
/// |---|---|---|
/// | normal | offload | atomic |
/// | emergency | atomic | atomic |
/// | panic | atomic | atomic |
pub fn flush_type(prio: Prio, printer_running: bool) -> FlushType {
    match prio {
        Prio::None | Prio::Normal if printer_running => FlushType::Offload,
        _ => FlushType::Atomic,
    }
}

/// Why an acquire failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// Not allowed at all (equal or lower priority, or another CPU panics).
    Perm,
    /// The owner is busy (unsafe, on this CPU, or the spin ran out).
    Busy,
    /// The word changed under us: start over.
    Again,
}

/// One acquisition: who, at what priority, and the next record to print.
#[derive(Clone, Copy, Debug)]
struct Ctxt {
    prio: Prio,
    cpu: u32,
    seq: u64,
}

/// Why an atomic flush stopped before its stop seq (the kernel's error
/// codes of `__nbcon_atomic_flush_pending_con()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlushErr {
    /// `-EPERM`: the console could not be acquired.
    Perm,
    /// `-EAGAIN`: ownership was lost while printing.
    Again,
    /// `-ENOENT`: a record before the stop seq is not finalized.
    NoEnt,
}

/// What emitting one record came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Emit {
    /// A record went out; still the owner.
    Printed,
    /// Nothing to print; still the owner.
    Empty,
    /// Ownership was lost (handed over or taken): do not touch the device.
    Lost,
}

/// What the console's ownership did during a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NbconStats {
    /// Direct acquisitions.
    pub direct: u64,
    /// Friendly handovers: a waiter got the console from a releasing owner.
    pub handovers: u64,
    /// Handover requests that timed out.
    pub handover_timeouts: u64,
    /// Hostile takeovers (panic only).
    pub hostile_takeovers: u64,
    /// Records printed again after an owner was interrupted in them.
    pub replays: u64,
    /// Times an owner found it had lost the console.
    pub lost_ownership: u64,
}

#[derive(Default)]
struct StatCounters {
    direct: AtomicU64,
    handovers: AtomicU64,
    handover_timeouts: AtomicU64,
    hostile_takeovers: AtomicU64,
    replays: AtomicU64,
    lost_ownership: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The nbcon printk.
pub struct Nbcon {
    log: PrbLog,
    /// `printk_cpu_sync`, for dumps.
    cpu_sync: CpuSync,
    /// `con->nbcon_state`.
    state: AtomicU32,
    /// `con->nbcon_seq`: the next record to print.
    seq: AtomicU64,
    /// `con->nbcon_prev_seq`: the record the last owner started; `u64::MAX`
    /// for none.
    prev_seq: AtomicU64,
    /// Records skipped and not yet announced.
    dropped: AtomicU64,
    console: Console,
    /// Per CPU: emergency section nesting.
    emergency: Box<[AtomicU32]>,
    printer_running: AtomicBool,
    dropped_panic: AtomicU64,
    stats: StatCounters,
    spinwait_ns: u64,
}

impl Nbcon {
    /// An nbcon printk with a ring of `config.buffer_size` text bytes. The
    /// console's per-CPU accounts have one extra slot, index `nr_cpus`, for
    /// the printer thread.
    pub fn new(config: &DesignConfig) -> Nbcon {
        Nbcon {
            log: PrbLog::new(config.buffer_size),
            cpu_sync: CpuSync::new(),
            state: AtomicU32::new(0),
            seq: AtomicU64::new(0),
            prev_seq: AtomicU64::new(u64::MAX),
            dropped: AtomicU64::new(0),
            console: Console::new(config.console, config.nr_cpus + 1)
                .for_kernel(super::kernel_of("nbcon")),
            emergency: (0..config.nr_cpus).map(|_| AtomicU32::new(0)).collect(),
            printer_running: AtomicBool::new(false),
            dropped_panic: AtomicU64::new(0),
            stats: StatCounters::default(),
            spinwait_ns: SPINWAIT_NS,
        }
    }

    /// The same with a handover spin of `ns` instead of [`SPINWAIT_NS`].
    pub fn with_spinwait(config: &DesignConfig, ns: u64) -> Nbcon {
        Nbcon {
            spinwait_ns: ns,
            ..Nbcon::new(config)
        }
    }

    /// The ownership word now.
    pub fn state(&self) -> State {
        State::unpack(self.state.load(Ordering::Relaxed))
    }

    /// What ownership did so far.
    pub fn stats(&self) -> NbconStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NbconStats {
            direct: l(&self.stats.direct),
            handovers: l(&self.stats.handovers),
            handover_timeouts: l(&self.stats.handover_timeouts),
            hostile_takeovers: l(&self.stats.hostile_takeovers),
            replays: l(&self.stats.replays),
            lost_ownership: l(&self.stats.lost_ownership),
        }
    }

    /// `nbcon_get_default_prio()`.
    fn default_prio<A: Arch>(&self, arch: &A) -> Prio {
        let me = arch.this_cpu();
        if arch.panic_cpu() == Some(me) {
            Prio::Panic
        } else if self
            .emergency
            .get(me)
            .is_some_and(|n| n.load(Ordering::Relaxed) > 0)
        {
            Prio::Emergency
        } else {
            Prio::Normal
        }
    }

    /// `this_cpu_in_panic()`.
    fn this_cpu_in_panic<A: Arch>(&self, arch: &A) -> bool {
        arch.panic_cpu() == Some(arch.this_cpu())
    }

    fn other_cpu_in_panic<A: Arch>(&self, arch: &A) -> bool {
        arch.panic_cpu().is_some_and(|p| p != arch.this_cpu())
    }

    fn cas(&self, cur: State, new: State) -> Result<(), State> {
        // AcqRel: taking the console orders our device and seq accesses
        // after the previous owner's; releasing it publishes ours.
        self.state
            .compare_exchange(cur.pack(), new.pack(), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(State::unpack)
    }

    /// The word after `ctxt` takes the console from `cur`: no waiter left,
    /// unsafe only if a hostile takeover ever left it so.
    fn taken(cur: State, ctxt: &Ctxt) -> State {
        State {
            prio: ctxt.prio,
            req_prio: Prio::None,
            unsafe_: cur.unsafe_takeover,
            unsafe_takeover: cur.unsafe_takeover,
            cpu: ctxt.cpu,
        }
    }

    /// Step 1: take an unowned console, or one owned at lower priority in a
    /// safe state.
    fn acquire_direct<A: Arch>(&self, arch: &A, ctxt: &Ctxt) -> Result<(), Refused> {
        let cur = self.state();
        if self.other_cpu_in_panic(arch) {
            return Err(Refused::Perm);
        }
        if ctxt.prio <= cur.prio || ctxt.prio <= cur.req_prio {
            return Err(Refused::Perm);
        }
        if cur.unsafe_ {
            return Err(Refused::Busy);
        }
        self.cas(cur, Self::taken(cur, ctxt))
            .map_err(|_| Refused::Again)?;
        bump(&self.stats.direct);
        Ok(())
    }

    /// Step 2: ask the owner to hand over at the end of its unsafe section
    /// and poll for it, up to the spin limit.
    fn acquire_handover<A: Arch>(&self, arch: &A, ctxt: &Ctxt) -> Result<(), Refused> {
        let cur = self.state();
        if self.other_cpu_in_panic(arch) {
            return Err(Refused::Perm);
        }
        // The owner is the context we interrupted: it cannot run to hand
        // over until we return.
        if cur.prio != Prio::None && cur.cpu == ctxt.cpu {
            return Err(Refused::Busy);
        }
        if cur.unsafe_takeover {
            return Err(Refused::Busy);
        }
        if ctxt.prio <= cur.prio || ctxt.prio <= cur.req_prio {
            return Err(Refused::Perm);
        }
        let requested = State {
            req_prio: ctxt.prio,
            ..cur
        };
        self.cas(cur, requested).map_err(|_| Refused::Again)?;
        let deadline = arch.now_ns().saturating_add(self.spinwait_ns);
        // Busy: timed out; Perm: aborted by a panic elsewhere.
        let mut request_err = Refused::Busy;
        loop {
            core::hint::spin_loop();
            let cur = self.state();
            // nbcon_context_try_acquire_requested() checks this first, on
            // every iteration: once another CPU panics, a non-panic CPU
            // must not gain the console, not even handed over.
            if self.other_cpu_in_panic(arch) {
                request_err = Refused::Perm;
                break;
            }
            if cur.req_prio != ctxt.prio {
                // Superseded by a higher priority.
                return Err(Refused::Perm);
            }
            if cur.prio == Prio::None {
                if self.cas(cur, Self::taken(cur, ctxt)).is_ok() {
                    bump(&self.stats.handovers);
                    return Ok(());
                }
                continue;
            }
            if arch.now_ns() >= deadline {
                break;
            }
        }
        // Timed out or aborted: withdraw the request, unless someone
        // else's replaced it; take the console if it was released
        // meanwhile, unless another CPU panics (checked again each time
        // round, as the kernel's loop does).
        loop {
            let cur = self.state();
            if cur.req_prio != ctxt.prio {
                return Err(Refused::Perm);
            }
            let take = cur.prio == Prio::None && !self.other_cpu_in_panic(arch);
            let new = if take {
                Self::taken(cur, ctxt)
            } else {
                State {
                    req_prio: Prio::None,
                    ..cur
                }
            };
            if self.cas(cur, new).is_ok() {
                if take {
                    bump(&self.stats.handovers);
                    return Ok(());
                }
                if request_err == Refused::Busy {
                    bump(&self.stats.handover_timeouts);
                }
                return Err(request_err);
            }
        }
    }

    /// Step 3: the panic CPU takes the console whatever state it is in.
    fn acquire_hostile(&self, ctxt: &Ctxt) {
        loop {
            let cur = self.state();
            let broke = cur.unsafe_ || cur.unsafe_takeover;
            let new = State {
                prio: ctxt.prio,
                req_prio: cur.req_prio,
                unsafe_: broke,
                unsafe_takeover: broke,
                cpu: ctxt.cpu,
            };
            if self.cas(cur, new).is_ok() {
                // Counted when taken from an owner; after a takeover in an
                // unsafe state every later acquire goes this way too.
                if cur.prio != Prio::None {
                    bump(&self.stats.hostile_takeovers);
                }
                return;
            }
        }
    }

    /// `nbcon_context_try_acquire()`.
    fn try_acquire<A: Arch>(
        &self,
        arch: &A,
        prio: Prio,
        spin: bool,
        allow_unsafe_takeover: bool,
    ) -> Option<Ctxt> {
        let mut ctxt = Ctxt {
            prio,
            cpu: arch.this_cpu() as u32 & CPU_MASK,
            seq: 0,
        };
        loop {
            match self.acquire_direct(arch, &ctxt) {
                Ok(()) => break,
                Err(Refused::Again) => continue,
                Err(Refused::Perm) => return None,
                Err(Refused::Busy) => {}
            }
            if spin {
                match self.acquire_handover(arch, &ctxt) {
                    Ok(()) => break,
                    Err(Refused::Again) => continue,
                    Err(Refused::Perm) => return None,
                    Err(Refused::Busy) => {}
                }
            }
            if !(allow_unsafe_takeover && prio == Prio::Panic) {
                return None;
            }
            self.acquire_hostile(&ctxt);
            break;
        }
        ctxt.seq = self.seq.load(Ordering::Acquire);
        Some(ctxt)
    }

    /// Whether `ctxt` owns the console in `cur`.
    fn owner_matches(cur: State, ctxt: &Ctxt) -> bool {
        cur.prio == ctxt.prio && cur.cpu == ctxt.cpu
    }

    /// `nbcon_context_release()`.
    fn release(&self, ctxt: &Ctxt) {
        loop {
            let cur = self.state();
            if !Self::owner_matches(cur, ctxt) {
                return;
            }
            let new = State {
                prio: Prio::None,
                unsafe_: cur.unsafe_ || cur.unsafe_takeover,
                ..cur
            };
            if self.cas(cur, new).is_ok() {
                return;
            }
        }
    }

    /// `nbcon_context_can_proceed()`: false if we lost the console, or if a
    /// waiter asked for it while we are safe (then we release it now).
    fn can_proceed(&self, ctxt: &Ctxt, cur: State) -> bool {
        if !Self::owner_matches(cur, ctxt) {
            return false;
        }
        if cur.req_prio == Prio::None || cur.unsafe_ {
            return true;
        }
        // Friendly handover: the waiter takes it from here.
        self.release(ctxt);
        false
    }

    /// `nbcon_context_update_unsafe()`: enter or leave an unsafe section;
    /// false means ownership is gone and the device must not be touched.
    fn update_unsafe(&self, ctxt: &Ctxt, unsafe_: bool) -> bool {
        let mut cur = self.state();
        // After a hostile takeover the console never becomes safe again.
        if !unsafe_ && cur.unsafe_takeover {
            return self.proceed_or_note(ctxt, cur);
        }
        loop {
            if !self.proceed_or_note(ctxt, cur) {
                return false;
            }
            let new = State { unsafe_, ..cur };
            match self.cas(cur, new) {
                Ok(()) => return self.proceed_or_note(ctxt, new),
                Err(actual) => cur = actual,
            }
        }
    }

    fn proceed_or_note(&self, ctxt: &Ctxt, cur: State) -> bool {
        let ok = self.can_proceed(ctxt, cur);
        if !ok {
            bump(&self.stats.lost_ownership);
        }
        ok
    }

    /// `nbcon_emit_next_record()`: print the record at `ctxt.seq`, one
    /// character per unsafe section.
    fn emit_next_record<A: Arch>(&self, arch: &A, ctxt: &mut Ctxt) -> Emit {
        if !self.update_unsafe(ctxt, true) {
            return Emit::Lost;
        }
        let mut text = TextBuf::<TEXT_MAX>::new();
        let mut seq = ctxt.seq;
        arch.point(point::CONSOLE_UNLOCK_LOGBUF_LOCKED);
        let mut found = self.log.ring.read_valid(arch, &mut seq, &mut text);
        // _prb_read_valid(): the panic CPU does not wait for a record
        // another CPU will never finish (it is stopped): it skips any
        // record but the newest reserved one, whether or not what follows
        // is readable yet. The newest may be its own line still waiting
        // for its newline.
        while found.is_none()
            && self.this_cpu_in_panic(arch)
            && seq + 1 < self.log.ring.next_reserve_seq()
        {
            seq += 1;
            found = self.log.ring.read_valid(arch, &mut seq, &mut text);
        }
        let skipped = seq.saturating_sub(ctxt.seq);
        let Some(r) = found else {
            // printk_get_next_message() found nothing: neither the seq nor
            // the dropped count changes. What was skipped on the way is
            // counted by whoever reads the next record, from the seq.
            return if self.update_unsafe(ctxt, false) {
                Emit::Empty
            } else {
                Emit::Lost
            };
        };
        // con->dropped, read once: racy only against a hostile takeover.
        let con_dropped = self.dropped.load(Ordering::Relaxed);
        let dropped = con_dropped + skipped;
        let prev = self.prev_seq.load(Ordering::Relaxed);
        let replay = prev == r.seq;
        if replay {
            // An earlier owner was stopped in the middle of this record.
            bump(&self.stats.replays);
        } else {
            // Still the owner? Otherwise `prev` may be the value of the
            // context that took over, not of the previous owner: leave it.
            if !self.proceed_or_note(ctxt, self.state()) {
                return Emit::Lost;
            }
            // And only from the value read: a new owner's value wins.
            let _ =
                self.prev_seq
                    .compare_exchange(prev, r.seq, Ordering::Relaxed, Ordering::Relaxed);
        }
        // console_prepend_dropped() then console_prepend_replay(): both
        // prepend, so the replay line comes first.
        let mut out = TextBuf::<{ TEXT_MAX + 160 }>::new();
        if replay {
            out.push_bytes(b"** replaying previous printk message **\n");
        }
        if dropped > 0 {
            out.push_bytes(self.console.dropped_line(dropped).as_bytes());
        }
        out.push_bytes(self.console.line(&r.meta, text.as_bytes()).as_bytes());
        if !self.update_unsafe(ctxt, false) {
            return Emit::Lost;
        }
        arch.point(point::CONSOLE_UNLOCK_WRITE);
        for &b in out.as_bytes() {
            if !self.update_unsafe(ctxt, true) {
                return Emit::Lost;
            }
            arch.point(point::NBCON_UNSAFE);
            self.console.emit_char(arch, b);
            if !self.update_unsafe(ctxt, false) {
                return Emit::Lost;
            }
        }
        if !self.update_unsafe(ctxt, true) {
            return Emit::Lost;
        }
        self.console.count_record(arch, &r.meta);
        if dropped > 0 {
            self.console.count_skipped(dropped);
        }
        // Everything announced went out: the count is 0 again, stored, not
        // subtracted (the kernel's WRITE_ONCE(con->dropped, 0)), so a
        // hostile takeover that already cleared it cannot make it wrap.
        if con_dropped != 0 {
            self.dropped.store(0, Ordering::Relaxed);
        }
        // nbcon_seq_try_update(): from the value we started with. If a
        // takeover (or a forced seq) moved it, that value wins and is where
        // we go on from, as we may keep the console for the next record.
        ctxt.seq = match self.seq.compare_exchange(
            ctxt.seq,
            r.seq + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => r.seq + 1,
            Err(now) => now,
        };
        if !self.update_unsafe(ctxt, false) {
            return Emit::Lost;
        }
        arch.point(point::NBCON_SAFE);
        Emit::Printed
    }

    /// `prb_read_valid()` without the copy: whether there is something to
    /// print at `seq`, a readable record (or a gap), or, for the panic CPU,
    /// one behind unfinished records it skips (every one but the newest
    /// reserved, as `_prb_read_valid()` skips them). The walk is bounded
    /// by the ring: `seq` is past the tail once `has_next` says no.
    fn pending<A: Arch>(&self, arch: &A, mut seq: u64) -> bool {
        if self.log.ring.has_next(seq) {
            return true;
        }
        if !self.this_cpu_in_panic(arch) {
            return false;
        }
        let end = self.log.ring.next_reserve_seq();
        while seq + 1 < end {
            seq += 1;
            if self.log.ring.has_next(seq) {
                return true;
            }
        }
        false
    }

    /// The printer thread's way (`nbcon_emit_one()` in a loop): print
    /// records one by one, acquiring the console for each at `prio`, until
    /// none is pending. True if it stopped with records left (the console
    /// was someone else's, or was taken from us).
    fn print_pending<A: Arch>(&self, arch: &A, prio: Prio, spin: bool, hostile: bool) -> bool {
        while self.pending(arch, self.seq.load(Ordering::Acquire)) {
            let Some(mut ctxt) = self.try_acquire(arch, prio, spin, hostile) else {
                return true;
            };
            match self.emit_next_record(arch, &mut ctxt) {
                Emit::Printed => self.release(&ctxt),
                Emit::Empty => {
                    self.release(&ctxt);
                    return false;
                }
                Emit::Lost => return true,
            }
        }
        false
    }

    /// `__nbcon_atomic_flush_pending_con()`: acquire the console once at
    /// `prio`, print every record before `stop_seq` holding it, release it
    /// once. A context of the same priority that comes along meanwhile is
    /// refused outright (`-EPERM`) instead of taking the console between
    /// two records.
    fn flush_con<A: Arch>(
        &self,
        arch: &A,
        prio: Prio,
        stop_seq: u64,
        allow_unsafe_takeover: bool,
    ) -> Result<(), FlushErr> {
        let Some(mut ctxt) = self.try_acquire(arch, prio, true, allow_unsafe_takeover) else {
            return Err(FlushErr::Perm);
        };
        let mut res = Ok(());
        while self.seq.load(Ordering::Acquire) < stop_seq {
            match self.emit_next_record(arch, &mut ctxt) {
                Emit::Printed => {}
                // Handed over or taken: the new owner prints the rest.
                Emit::Lost => return Err(FlushErr::Again),
                // A record before stop_seq is reserved but not finalized.
                Emit::Empty => {
                    if self.seq.load(Ordering::Acquire) < stop_seq {
                        res = Err(FlushErr::NoEnt);
                    }
                    break;
                }
            }
        }
        self.release(&ctxt);
        res
    }

    /// `nbcon_atomic_flush_pending()` (and, `allow_unsafe_takeover`,
    /// `nbcon_atomic_flush_unsafe()`) with `nbcon_atomic_flush_pending_con()`:
    /// print in the caller, at this CPU's priority, interrupts off, up to
    /// `prb_next_reserve_seq()` as it was when the flush began, so that one
    /// CPU does not print for ever while others keep adding records. If
    /// that worked and no printer thread takes over from here (the flush
    /// is not offloaded), records added meanwhile are this context's too:
    /// another round, bounded again (the kernel's `goto again`).
    fn atomic_flush<A: Arch>(&self, arch: &A, allow_unsafe_takeover: bool) {
        let prio = self.default_prio(arch);
        arch.push_frame(&ATOMIC_FLUSH);
        let mut stop_seq = self.log.ring.next_reserve_seq();
        while self.seq.load(Ordering::Acquire) < stop_seq {
            let flags = arch.local_irq_save();
            let res = self.flush_con(arch, prio, stop_seq, allow_unsafe_takeover);
            arch.local_irq_restore(flags);
            // -EPERM, -EAGAIN: the owner completes. -ENOENT: do not wait
            // for the writer; it finalizes its record and flushes itself,
            // or the panic CPU skips it.
            if res.is_err() {
                break;
            }
            let offloaded = flush_type(prio, self.printer_running.load(Ordering::Acquire))
                == FlushType::Offload;
            if offloaded || !self.pending(arch, self.seq.load(Ordering::Acquire)) {
                break;
            }
            stop_seq = self.log.ring.next_reserve_seq();
        }
        arch.pop_frame();
    }
}

impl<A: Arch> Printk<A> for Nbcon {
    fn name(&self) -> &'static str {
        "nbcon"
    }

    fn printk(&self, arch: &A, level: Level, args: fmt::Arguments<'_>) {
        if self.other_cpu_in_panic(arch) {
            // Only the panic CPU's messages matter now.
            self.log.counters.attempt();
            self.log.counters.drop_one();
            bump(&self.dropped_panic);
            return;
        }
        arch.push_frame(&VPRINTK_EMIT);
        self.log.store(arch, level, args);
        if !self.console.registered() {
            arch.pop_frame();
            return;
        }
        let prio = self.default_prio(arch);
        match flush_type(prio, self.printer_running.load(Ordering::Acquire)) {
            // The printer thread is woken from irq_work, which is safe from
            // any context.
            FlushType::Offload => arch.irq_work_queue(),
            FlushType::Atomic => self.atomic_flush(arch, false),
        }
        arch.pop_frame();
    }

    fn irq_work(&self, arch: &A) {
        arch.wake_printer();
    }

    crate::prb_printk_methods!(accounts);

    fn locks(&self) -> Vec<&LockCore> {
        vec![self.cpu_sync.core()]
    }

    fn cpu_sync(&self) -> Option<&CpuSync> {
        Some(&self.cpu_sync)
    }

    fn drop_reasons(&self) -> Vec<(DropReason, u64)> {
        let mut r = self.log.drop_reasons();
        r.push((
            DropReason::OtherCpuInPanic,
            self.dropped_panic.load(Ordering::Relaxed),
        ));
        r
    }

    fn panic_flush(&self, arch: &A) {
        // console_flush_on_panic() → nbcon_atomic_flush_pending(): a
        // stopped owner in an unsafe section costs a handover timeout, not
        // a takeover; that is left to the very last flush.
        self.atomic_flush(arch, false);
    }

    fn panic_flush_unsafe(&self, arch: &A) {
        // nbcon_atomic_flush_unsafe(): the last attempt, hostile if need be.
        self.atomic_flush(arch, true);
    }

    fn emergency_enter(&self, arch: &A) {
        if let Some(n) = self.emergency.get(arch.this_cpu()) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn emergency_exit(&self, arch: &A) {
        if let Some(n) = self.emergency.get(arch.this_cpu()) {
            let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
        // Nothing else: nbcon_cpu_emergency_exit() neither flushes nor
        // wakes the thread (every printk in the section flushed itself).
    }

    fn events(&self) -> Vec<(Event, u64)> {
        let s = self.stats();
        vec![
            (Event::NbconHandover, s.handovers),
            (Event::HandoverTimeout, s.handover_timeouts),
            (Event::HostileTakeover, s.hostile_takeovers),
            (Event::Replay, s.replays),
            (Event::LostOwnership, s.lost_ownership),
            (
                Event::UnsafeTakeover,
                u64::from(self.state().unsafe_takeover),
            ),
        ]
    }

    fn wants_printer(&self) -> bool {
        true
    }

    fn set_printer_running(&self, running: bool) {
        self.printer_running.store(running, Ordering::Release);
    }

    fn printer_pass(&self, arch: &A) -> bool {
        arch.push_frame(&PRINTER);
        // The thread never waits for a handover: whoever holds the console
        // prints, and the thread looks again when this returns true.
        let more = self.print_pending(arch, Prio::Normal, false, false);
        arch.pop_frame();
        more
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::ConsoleConfig;
    use crate::record::Meta;
    use crate::testing::{FakeArch, PointHook};
    use std::sync::OnceLock;

    fn config() -> DesignConfig {
        DesignConfig {
            nr_cpus: 2,
            buffer_size: 1 << 14,
            console: ConsoleConfig {
                ns_per_char: 0,
                sink_bytes: 1 << 16,
                registered: true,
                time_scale: 1.0,
            },
        }
    }

    /// CPU 1 takes `n` at normal priority and enters an unsafe section;
    /// once it is inside, `waiter` runs on this thread. CPU 1 stays in the
    /// section until someone asks for the console (5 s at most: a test
    /// must never hang), then `asked` says what it does next.
    fn unsafe_owner<T>(
        n: &Nbcon,
        asked: impl FnOnce(&Ctxt) + Send,
        waiter: impl FnOnce() -> T,
    ) -> T {
        use std::sync::atomic::AtomicBool;
        let inside = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let a1 = FakeArch::new(1, 2);
                let owner = n.try_acquire(&a1, Prio::Normal, false, false).unwrap();
                assert!(n.update_unsafe(&owner, true));
                inside.store(true, Ordering::Release);
                let t0 = std::time::Instant::now();
                while n.state().req_prio == Prio::None
                    && t0.elapsed() < std::time::Duration::from_secs(5)
                {
                    std::hint::spin_loop();
                }
                asked(&owner);
            });
            while !inside.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            waiter()
        })
    }

    /// A ring of 32 descriptors and 1 KiB of text, quick to fill.
    fn small_config() -> DesignConfig {
        DesignConfig {
            buffer_size: 1 << 10,
            ..config()
        }
    }

    /// The console's output, line by line.
    fn lines(n: &Nbcon) -> Vec<String> {
        String::from_utf8_lossy(&n.console.output())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// With the printer thread running, printk at normal priority only
    /// stores.
    fn offload(n: &Nbcon) {
        Printk::<FakeArch>::set_printer_running(n, true);
    }

    /// A console on a machine of two CPUs, and the two CPUs.
    fn two_cpus() -> (Nbcon, FakeArch, FakeArch) {
        (
            Nbcon::new(&config()),
            FakeArch::new(0, 2),
            FakeArch::new(1, 2),
        )
    }

    /// CPU 0 of two, the panic CPU.
    fn panic_cpu0() -> FakeArch {
        let a0 = FakeArch::new(0, 2);
        a0.set_panic_cpu(Some(0));
        a0
    }

    /// The panic CPU takes the console over and prints everything.
    fn panic_flush(n: &Nbcon) {
        n.atomic_flush(&panic_cpu0(), true);
    }

    /// An offloaded console in `static $cell` (so that a hook, a plain
    /// `fn`, reaches it as `$cell.get()`), bound to `$n`.
    macro_rules! offloaded_static {
        ($cell:ident, $n:ident, $config:expr) => {
            static $cell: OnceLock<Nbcon> = OnceLock::new();
            let $n = $cell.get_or_init(|| Nbcon::new(&$config));
            offload($n);
        };
    }

    #[test]
    fn state_word_round_trips_with_the_documented_layout() {
        let s = State {
            prio: Prio::Emergency,
            req_prio: Prio::Panic,
            unsafe_: true,
            unsafe_takeover: false,
            cpu: 5,
        };
        assert_eq!(s.pack(), 2 | 3 << 2 | 1 << 4 | 5 << 6);
        assert_eq!(State::unpack(s.pack()), s);
    }

    #[test]
    fn flush_type_follows_the_kernels_table() {
        use FlushType::{Atomic, Offload};
        let table = [
            (Prio::Normal, true, Offload),
            (Prio::Normal, false, Atomic),
            (Prio::Emergency, true, Atomic),
            (Prio::Emergency, false, Atomic),
            (Prio::Panic, true, Atomic),
            (Prio::Panic, false, Atomic),
        ];
        for (prio, running, want) in table {
            assert_eq!(flush_type(prio, running), want, "{prio:?} {running}");
        }
    }

    #[test]
    fn an_unsafe_owner_hands_over_at_the_end_of_its_section() {
        // A spin long enough for a loaded test machine to schedule the
        // owner thread.
        let n = Nbcon::with_spinwait(&config(), 2_000_000_000);
        let asked = |owner: &Ctxt| {
            // Still ours inside the section; given up at its end.
            assert!(n.update_unsafe(owner, true));
            assert!(!n.update_unsafe(owner, false));
        };
        let got = unsafe_owner(&n, asked, || {
            let a0 = FakeArch::new(0, 2).with_real_clock();
            n.try_acquire(&a0, Prio::Emergency, true, false)
        });
        assert!(got.is_some(), "{:?}", n.stats());
        let s = n.stats();
        assert_eq!((s.handovers, s.hostile_takeovers), (1, 0));
        assert_eq!((n.state().prio, n.state().cpu), (Prio::Emergency, 0));
    }

    #[test]
    fn higher_priority_takes_a_safe_console_directly() {
        let (n, a0, a1) = two_cpus();
        let normal = n.try_acquire(&a0, Prio::Normal, false, false).unwrap();
        assert_eq!(n.state().prio, Prio::Normal);
        // Same priority: refused.
        assert!(n.try_acquire(&a1, Prio::Normal, false, false).is_none());
        let emerg = n.try_acquire(&a1, Prio::Emergency, true, false).unwrap();
        assert_eq!((n.state().prio, n.state().cpu), (Prio::Emergency, 1));
        // The normal owner finds out at its next unsafe boundary.
        assert!(!n.update_unsafe(&normal, true));
        n.release(&normal);
        assert_eq!(
            n.state().prio,
            Prio::Emergency,
            "a stale release is a no-op"
        );
        n.release(&emerg);
        assert_eq!(n.state().prio, Prio::None);
    }

    #[test]
    fn an_unsafe_owner_on_the_same_cpu_cannot_hand_over() {
        let n = Nbcon::new(&config());
        let a0 = FakeArch::new(0, 2);
        let owner = n.try_acquire(&a0, Prio::Normal, false, false).unwrap();
        assert!(n.update_unsafe(&owner, true));
        // An emergency on the same CPU interrupted the owner.
        assert!(n.try_acquire(&a0, Prio::Emergency, true, false).is_none());
        assert_eq!(n.stats().handover_timeouts, 0, "refused without spinning");
    }

    #[test]
    fn panic_takes_a_stuck_unsafe_console_and_it_stays_unsafe() {
        let (n, a0, a1) = two_cpus();
        let owner = n.try_acquire(&a1, Prio::Emergency, false, false).unwrap();
        assert!(n.update_unsafe(&owner, true));
        // Without the hostile step, the panic CPU gives up after the spin.
        assert!(n.try_acquire(&a0, Prio::Panic, true, false).is_none());
        assert_eq!(n.stats().handover_timeouts, 1);
        let panic = n.try_acquire(&a0, Prio::Panic, true, true).unwrap();
        let s = n.state();
        assert_eq!((s.prio, s.cpu, s.unsafe_takeover), (Prio::Panic, 0, true));
        assert_eq!(n.stats().hostile_takeovers, 1);
        // Leaving the unsafe section does not make it safe again.
        assert!(n.update_unsafe(&panic, false));
        assert!(n.state().unsafe_);
        assert!(!n.update_unsafe(&owner, false), "the old owner lost it");
    }

    #[test]
    fn an_atomic_flush_keeps_the_console_across_records() {
        let (n, a0, a1) = two_cpus();
        offload(&n);
        for i in 0..3 {
            n.printk(&a1, Level::Info, format_args!("line {i}\n"));
        }
        assert!(lines(&n).is_empty());
        n.emergency_enter(&a0);
        n.atomic_flush(&a0, false);
        assert_eq!(lines(&n).len(), 3, "{:?}", lines(&n));
        assert_eq!(n.stats().direct, 1, "one acquisition for the whole flush");
        assert_eq!(n.state().prio, Prio::None, "released at the end");
    }

    #[test]
    fn an_offloaded_atomic_flush_stops_where_reservations_were_when_it_began() {
        offloaded_static!(N, n, config());
        let a1 = FakeArch::new(1, 2);
        n.printk(&a1, Level::Info, format_args!("early\n"));
        // CPU 1 stores a record while the flush prints the first one.
        let late: PointHook = |_, _| {
            if let Some(n) = N.get() {
                n.printk(&FakeArch::new(1, 2), Level::Info, format_args!("late\n"));
            }
        };
        // Normal priority with the thread running: the thread prints what
        // came after the flush began.
        let a0 = FakeArch::new(0, 2).with_hook(point::NBCON_UNSAFE, late);
        n.atomic_flush(&a0, false);
        let out = lines(n);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].ends_with("early"), "{out:?}");
        assert_eq!(n.seq.load(Ordering::Relaxed), 1);
        // In an emergency nobody else prints: rounds repeat while something
        // is readable, each bounded where reservations were when it began.
        let a0 = FakeArch::new(0, 2).with_hook(point::NBCON_UNSAFE, late);
        n.emergency_enter(&a0);
        n.atomic_flush(&a0, false);
        let out = lines(n);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(
            out[1].ends_with("late") && out[2].ends_with("late"),
            "{out:?}"
        );
        assert_eq!(n.stats().direct, 3, "one acquisition per round");
    }

    #[test]
    fn a_failed_seq_update_carries_on_from_the_consoles_seq() {
        offloaded_static!(N, n, config());
        // nbcon_seq_force() while record 0 goes out.
        let a1 = FakeArch::new(1, 2).with_hook(point::NBCON_UNSAFE, |_, _| {
            N.get().map_or((), |n| n.seq.store(3, Ordering::Relaxed))
        });
        for i in 0..4 {
            n.printk(&a1, Level::Info, format_args!("line {i}\n"));
        }
        let mut c = n.try_acquire(&a1, Prio::Normal, false, false).unwrap();
        assert_eq!(n.emit_next_record(&a1, &mut c), Emit::Printed);
        assert_eq!(c.seq, 3, "the next record is the console's, not ours + 1");
        assert_eq!(n.seq.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_panic_cpu_skips_unfinished_records_but_the_newest() {
        let (n, a0, a1) = two_cpus();
        let meta = Meta::now(&a1, Level::Info);
        // Two contexts stopped inside vprintk_store(): records 0 and 1 stay
        // reserved for ever, and nothing behind them is readable yet.
        let _r0 = n.log.ring.reserve(&a1, 8, &meta).unwrap();
        let _r1 = n.log.ring.reserve(&a1, 8, &meta).unwrap();
        a0.set_panic_cpu(Some(0));
        assert!(
            !n.pending(&a0, 0),
            "the newest reserved record is not skipped"
        );
        n.log.store(
            &a0,
            Level::Emerg,
            format_args!("Kernel panic - not syncing\n"),
        );
        assert!(n.pending(&a0, 0), "the panic CPU looks past both");
        assert!(!n.pending(&a1, 0), "nobody else does");
        n.atomic_flush(&a0, false);
        let out = lines(&n);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], "** 2 printk messages dropped **");
        assert!(out[1].ends_with("Kernel panic - not syncing"), "{out:?}");
        assert_eq!(n.console.stats().skipped, 2);
    }

    #[test]
    fn a_waiter_never_takes_the_console_during_another_cpus_panic() {
        let n = Nbcon::with_spinwait(&config(), 2_000_000_000);
        let a0 = FakeArch::new(0, 2).with_real_clock();
        let asked = |owner: &Ctxt| {
            // CPU 2 panics while CPU 0 waits; then the owner leaves its
            // section (handing over, if the request is still there).
            a0.set_panic_cpu(Some(2));
            if n.update_unsafe(owner, false) {
                n.release(owner);
            }
        };
        let got = unsafe_owner(&n, asked, || {
            n.try_acquire(&a0, Prio::Emergency, true, false)
        });
        assert!(got.is_none(), "{:?} {:?}", n.state(), n.stats());
        let st = n.state();
        assert_eq!((st.prio, st.req_prio), (Prio::None, Prio::None));
        let s = n.stats();
        assert_eq!((s.handovers, s.handover_timeouts), (0, 0), "{s:?}");
    }

    #[test]
    fn a_stale_owner_leaves_prev_seq_to_the_new_one() {
        offloaded_static!(N, n, config());
        // Before CPU 1 reads record 0, the panic CPU takes the console over
        // and prints records 0 and 1.
        let a1 = FakeArch::new(1, 2).with_hook(point::CONSOLE_UNLOCK_LOGBUF_LOCKED, |_, _| {
            let Some(n) = N.get() else { return };
            let a0 = panic_cpu0();
            let mut c = n.try_acquire(&a0, Prio::Panic, false, true).unwrap();
            assert_eq!(n.emit_next_record(&a0, &mut c), Emit::Printed);
            assert_eq!(n.emit_next_record(&a0, &mut c), Emit::Printed);
            n.release(&c);
        });
        n.printk(&a1, Level::Info, format_args!("zero\n"));
        n.printk(&a1, Level::Info, format_args!("one\n"));
        let mut c1 = n.try_acquire(&a1, Prio::Normal, false, false).unwrap();
        assert_eq!(n.emit_next_record(&a1, &mut c1), Emit::Lost);
        assert_eq!(
            n.prev_seq.load(Ordering::Relaxed),
            1,
            "the new owner's value stays"
        );
    }

    #[test]
    fn an_owner_that_finds_nothing_counts_nothing() {
        offloaded_static!(N, n, small_config());
        let a1 = FakeArch::new(1, 2);
        // Record 0 is stored; record 1 is reserved by a context that does
        // not go on; records 2 to 31 fill the descriptor ring; the next
        // reservation recycles record 0 (its data is gone) and fails.
        n.printk(&a1, Level::Info, format_args!("zero\n"));
        let meta = Meta::now(&a1, Level::Info);
        let mut r1 = n.log.ring.reserve(&a1, 8, &meta).unwrap();
        for i in 2..33 {
            n.printk(&a1, Level::Info, format_args!("line {i}\n"));
        }
        assert_eq!(n.log.ring.next_reserve_seq(), 32);
        // CPU 1 finds 0 gone and 1 unfinished. Before it looks, the panic
        // CPU takes the console over and prints 2 to 31, behind "2 dropped".
        let a1 = a1.with_hook(point::CONSOLE_UNLOCK_LOGBUF_LOCKED, |_, _| {
            N.get().map_or((), panic_flush)
        });
        let mut c1 = n.try_acquire(&a1, Prio::Normal, false, false).unwrap();
        assert_eq!(n.emit_next_record(&a1, &mut c1), Emit::Lost);
        assert_eq!(n.dropped.load(Ordering::Relaxed), 0);
        // The writer of record 1 finishes; the panic CPU prints one more
        // line (hostile again: the console stays unsafe after a takeover
        // in an unsafe state), with no phantom "dropped" line ahead of it.
        r1.write(b"one", &meta);
        r1.final_commit(&a1);
        let a0 = panic_cpu0();
        n.log.store(&a0, Level::Emerg, format_args!("after\n"));
        n.atomic_flush(&a0, true);
        let out = lines(n);
        assert_eq!(out[0], "** 2 printk messages dropped **", "{out:?}");
        assert_eq!(out.len(), 32, "{out:?}");
        assert!(out[31].ends_with("after"), "{out:?}");
        assert_eq!(n.console.stats().skipped, 2);
    }

    #[test]
    fn a_complete_write_clears_the_dropped_count_absolutely() {
        offloaded_static!(N, n, config());
        // While the record goes out, a racing update (a hostile takeover's,
        // the kernel's data_race()) clears the count under the owner.
        let a1 = FakeArch::new(1, 2).with_hook(point::NBCON_UNSAFE, |_, _| {
            N.get()
                .map_or((), |n| n.dropped.store(0, Ordering::Relaxed))
        });
        n.printk(&a1, Level::Info, format_args!("line\n"));
        // con->dropped as suppressed records leave it (we have none).
        n.dropped.store(3, Ordering::Relaxed);
        let mut c = n.try_acquire(&a1, Prio::Normal, false, false).unwrap();
        assert_eq!(n.emit_next_record(&a1, &mut c), Emit::Printed);
        assert_eq!(n.dropped.load(Ordering::Relaxed), 0, "not wrapped");
        assert_eq!(lines(n)[0], "** 3 printk messages dropped **");
    }

    #[test]
    fn panic_flush_waits_and_only_the_unsafe_flush_takes_over() {
        let (n, a0, a1) = two_cpus();
        offload(&n);
        n.printk(&a1, Level::Info, format_args!("pending\n"));
        // CPU 1 was stopped inside an unsafe section.
        let owner = n.try_acquire(&a1, Prio::Normal, false, false).unwrap();
        assert!(n.update_unsafe(&owner, true));
        a0.set_panic_cpu(Some(0));
        Printk::<FakeArch>::panic_flush(&n, &a0);
        let s = n.stats();
        assert_eq!((s.hostile_takeovers, s.handover_timeouts), (0, 1), "{s:?}");
        assert!(lines(&n).is_empty());
        Printk::<FakeArch>::panic_flush_unsafe(&n, &a0);
        assert_eq!(n.stats().hostile_takeovers, 1);
        assert_eq!(lines(&n).len(), 1, "{:?}", lines(&n));
    }

    #[test]
    fn a_replayed_record_says_so_before_the_dropped_count() {
        offloaded_static!(N, n, small_config());
        let a1 = FakeArch::new(1, 2);
        // The first records are overwritten before the console gets to them.
        for i in 0..40 {
            n.printk(&a1, Level::Info, format_args!("line {i}\n"));
        }
        let first = n.log.ring.first_seq();
        assert!(first > 0);
        // CPU 1 starts on the first record left; the panic CPU takes over
        // before its first character.
        let a1 = a1.with_hook(point::NBCON_UNSAFE, |_, _| N.get().map_or((), panic_flush));
        let mut c1 = n.try_acquire(&a1, Prio::Normal, false, false).unwrap();
        assert_eq!(n.emit_next_record(&a1, &mut c1), Emit::Lost);
        let out = lines(n);
        assert_eq!(out[0], "** replaying previous printk message **", "{out:?}");
        assert_eq!(out[1], format!("** {first} printk messages dropped **"));
        assert!(out[2].ends_with(&format!("line {first}")), "{out:?}");
    }

    #[test]
    fn leaving_an_emergency_section_wakes_nobody() {
        let n = Nbcon::new(&config());
        let a0 = FakeArch::new(0, 2);
        offload(&n);
        n.emergency_enter(&a0);
        n.emergency_exit(&a0);
        assert_eq!(a0.irq_work_raised.load(Ordering::Relaxed), 0);
        assert_eq!(n.default_prio(&a0), Prio::Normal);
    }
}
