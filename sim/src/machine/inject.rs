//! NMI sources and injection points.
//!
//! A scenario's `[[nmi]]` entries become [`NmiSource`]s. `at_point` sources
//! arm a point; the CPU that passes it (`hit_on`) raises the NMI itself, so
//! that an NMI on the same CPU lands exactly there, every time (a signal a
//! thread sends itself is delivered before `tgkill` returns). Cross-CPU
//! injection cannot rely on timing (a signal to another core lands 10–30 µs
//! later), so with `wait` the passing CPU holds still until its target is
//! inside the NMI handler. Timed sources (`periodic`, `random`) are sent by
//! the sender thread in `tick.rs`.
//!
//! `fire` runs on CPU threads, possibly inside a handler: atomics only.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use klog::{Context, Level, Point};

use super::{irq, mono_ns, Machine};

/// What makes a source fire.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// When CPU `hit_on` passes `point` for the `nth` time (1-based) and
    /// after, up to the source's `times`.
    AtPoint {
        /// The point.
        point: Point,
        /// The CPU whose passing fires it (`nr_cpus`: the printer thread).
        hit_on: usize,
        /// Fire from this hit on.
        nth: u64,
        /// For another target: hold still until it is inside its handler
        /// (the NMI handler, or the work of an `[[irq]]` source).
        wait: bool,
        /// Then hold still where it is (with whatever it holds) until an
        /// NMI from elsewhere reaches this CPU, or the run ends.
        hold: bool,
        /// Hold at most this long (0: no limit). Explore's pairs hold less
        /// than a threshold, so that holding is never a lockup of its own.
        hold_limit_ns: u64,
        /// Count only passes made in this context (any, if `None`).
        context: Option<Context>,
        /// Count only passes made once source `after` has fired and, if
        /// that source holds its CPU, while it still does (`explore
        /// --depth 2` holds one CPU at its point while the other fires).
        after: Option<usize>,
    },
    /// Every `period_ns` from the start of the run.
    Periodic {
        /// The period.
        period_ns: u64,
    },
    /// A Poisson process of `rate_hz` per target CPU.
    Random {
        /// Mean NMIs per second per target.
        rate_hz: f64,
    },
    /// Once, `at_ns` after the start of the run (`panic`, `backtrace_all`).
    At {
        /// When.
        at_ns: u64,
    },
}

/// Which CPUs a source's NMI goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// One CPU.
    One(usize),
    /// Every CPU.
    All,
    /// None: the source only holds its CPU at the point (`hold`).
    Nobody,
}

impl Targets {
    /// The target CPUs on a machine of `nr_cpus`.
    pub fn cpus(self, nr_cpus: usize) -> core::ops::Range<usize> {
        match self {
            Targets::One(c) => c..c + 1,
            Targets::All => 0..nr_cpus,
            Targets::Nobody => 0..0,
        }
    }
}

/// What the NMI handler does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NmiAction {
    /// printk `lines` lines of `len` characters at `level`.
    Printk {
        /// Lines per NMI.
        lines: u32,
        /// Text length range, inclusive.
        len: (usize, usize),
        /// Their level.
        level: Level,
    },
    /// Print this CPU's shadow stack, like `nmi_cpu_backtrace()`: under
    /// its private lock if `serialize` (the kernels before 4.19).
    Backtrace {
        /// Take the private backtrace lock.
        serialize: bool,
    },
    /// An all-CPU backtrace, as the RCU stall detector or the hard-lockup
    /// detector asks for one: the CPU that gets this interrupt prints its
    /// own stack, sends every other CPU an NMI that prints theirs, waits
    /// for them (up to the scaled 10 s), then flushes the per-CPU buffers
    /// of the designs that have them.
    BacktraceAll(Dump),
    /// A `WARN()`: an emergency section in which the CPU prints a warning
    /// line and its stack.
    Warn,
    /// The handler never returns: a wedged CPU (until the run ends).
    Hang,
    /// `panic()`: print the panic line, stop every other CPU with an NMI
    /// that never returns, flush the consoles, end the run. With
    /// `stop_at`, each other CPU's stop NMI lands when it next passes that
    /// point (at once on designs without it, or if it does not get there
    /// soon): the stop catches it at the worst moment, every run.
    Panic {
        /// Where the stop NMIs land.
        stop_at: Option<Point>,
    },
    /// Nothing: the NMI only interrupts.
    Nothing,
}

/// How an all-CPU backtrace is taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dump {
    /// Print the RCU stall splat first ("INFO: rcu_sched detected stalls on
    /// CPUs/tasks: { ... }"), naming the stalled CPUs.
    pub rcu_splat: bool,
    /// 3.17's `rcu_dump_cpu_stacks()`: no NMI; the requester walks each
    /// stalled CPU's stack itself while that CPU runs on.
    pub remote: bool,
    /// Before 4.19, `nmi_cpu_backtrace()` serialised the CPUs' dumps with
    /// a private spinlock taken in the NMI handler.
    pub serialize: bool,
    /// The requester does not dump its own stack
    /// (`trigger_allbutself_cpu_backtrace()`).
    pub exclude_self: bool,
    /// Deliver each target's NMI when it next passes this point (at once
    /// on designs without it): the NMI lands at the worst moment, every
    /// run, instead of when the timing happens to put it there.
    pub land_at: Option<Point>,
}

/// Which interrupt a source raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// The NMI signal: nothing masks it.
    Nmi,
    /// The IRQ signal: `local_irq_save()` defers it; its work runs in
    /// hardirq context.
    Irq,
}

/// One interrupt source (`[[nmi]]` or `[[irq]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct NmiSource {
    /// NMI or IRQ.
    pub interrupt: Interrupt,
    /// When it fires.
    pub trigger: Trigger,
    /// Where the NMI goes.
    pub targets: Targets,
    /// At most this many firings (0 = unlimited).
    pub times: u64,
    /// What the handler does.
    pub action: NmiAction,
}

struct Armed {
    source: NmiSource,
    hits: AtomicU64,
    fired: AtomicU64,
    /// Its CPU is holding still at its point now.
    holding: AtomicBool,
    /// Its CPU held still and has gone on.
    released: AtomicBool,
}

/// The sources of one run and the per-point armed flags.
pub struct Injector {
    armed: Box<[AtomicBool]>,
    sources: Box<[Armed]>,
    /// With a census: passes per point, per CPU (the printer last), per
    /// context; empty without.
    passes: Box<[AtomicU64]>,
    /// CPUs plus the printer: the census's stride.
    places: usize,
}

/// How often one CPU (or the printer) passed one point in one context: a
/// census entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    /// The point.
    pub point: Point,
    /// The CPU that passed it (`nr_cpus`: the printer thread).
    pub cpu: usize,
    /// In which context.
    pub context: Context,
    /// How many times.
    pub hits: u64,
}

impl Injector {
    /// Arm the points `sources` name.
    pub fn new(sources: Vec<NmiSource>) -> Injector {
        let armed: Box<[AtomicBool]> = klog::point::ALL
            .iter()
            .map(|p| {
                AtomicBool::new(sources.iter().any(|s| {
                    matches!(s.trigger, Trigger::AtPoint { point, .. } if point == *p)
                        || matches!(s.action, NmiAction::BacktraceAll(d) if d.land_at == Some(*p))
                        || matches!(s.action, NmiAction::Panic { stop_at } if stop_at == Some(*p))
                }))
            })
            .collect();
        Injector {
            armed,
            passes: Box::new([]),
            places: 0,
            sources: sources
                .into_iter()
                .map(|source| Armed {
                    source,
                    hits: AtomicU64::new(0),
                    fired: AtomicU64::new(0),
                    holding: AtomicBool::new(false),
                    released: AtomicBool::new(false),
                })
                .collect(),
        }
    }

    /// Arm the points `sources` name, and count every pass of every point
    /// on a machine of `nr_cpus` (a census: which CPU passes which point in
    /// which context, the scenario's own sources in place).
    pub fn with_census(sources: Vec<NmiSource>, nr_cpus: usize) -> Injector {
        let places = nr_cpus + 1;
        let mut injector = Injector::new(sources);
        for a in injector.armed.iter() {
            a.store(true, Ordering::Relaxed);
        }
        injector.passes = (0..klog::point::ALL.len() * places * Context::ALL.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        injector.places = places;
        injector
    }

    /// The census: every (point, CPU, context) passed at least once, in
    /// point order. Empty without a census.
    pub fn passes(&self) -> Vec<Pass> {
        let mut out = Vec::new();
        for (i, n) in self.passes.iter().enumerate() {
            let hits = n.load(Ordering::Relaxed);
            let per_point = self.places * Context::ALL.len();
            let point = klog::point::ALL.get(i / per_point.max(1));
            let cpu = i % per_point / Context::ALL.len();
            let context = Context::ALL.get(i % Context::ALL.len());
            if let (true, Some(&point), Some(&context)) = (hits > 0, point, context) {
                out.push(Pass {
                    point,
                    cpu,
                    context,
                    hits,
                });
            }
        }
        out
    }

    /// Count one pass (census only). Signal-safe.
    fn count_pass(&self, point: Point, cpu: usize, context: Context) {
        // CPUs and the printer only (the log reader passes no point of
        // its own).
        if cpu >= self.places {
            return;
        }
        let i = (usize::from(point.id) * self.places + cpu) * Context::ALL.len() + context as usize;
        if let Some(n) = self.passes.get(i) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Source `index`.
    pub fn source(&self, index: usize) -> Option<&NmiSource> {
        self.sources.get(index).map(|a| &a.source)
    }

    /// Number of sources.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// How many times source `index` fired.
    pub fn fired(&self, index: usize) -> u64 {
        self.sources
            .get(index)
            .map_or(0, |a| a.fired.load(Ordering::Relaxed))
    }

    /// Whether every `at_point` source has fired all its times (false if
    /// there is none, or one may fire without limit).
    pub fn placed_done(&self) -> bool {
        let mut placed = self.placed().peekable();
        placed.peek().is_some()
            && placed
                .all(|a| a.source.times > 0 && a.fired.load(Ordering::Acquire) >= a.source.times)
    }

    /// Whether an `at_point` source can never fire any more: it waits on
    /// a source that held its CPU and holds it no more.
    pub fn placed_missed(&self) -> bool {
        self.placed().any(|a| match a.source.trigger {
            Trigger::AtPoint { after: Some(k), .. } => {
                a.fired.load(Ordering::Acquire) == 0
                    && self
                        .sources
                        .get(k)
                        .is_some_and(|g| g.released.load(Ordering::Acquire))
            }
            _ => false,
        })
    }

    fn placed(&self) -> impl Iterator<Item = &Armed> {
        self.sources
            .iter()
            .filter(|a| matches!(a.source.trigger, Trigger::AtPoint { .. }))
    }

    /// Whether any source waits at `point`: the one relaxed load an unarmed
    /// point costs.
    pub fn armed(&self, point: Point) -> bool {
        self.armed
            .get(usize::from(point.id))
            .is_some_and(|a| a.load(Ordering::Relaxed))
    }

    /// Whether a source gated on source `k` may fire: `k` has fired and,
    /// if it holds its CPU, is holding it now.
    fn open_after(&self, k: usize) -> bool {
        let Some(a) = self.sources.get(k) else {
            return false;
        };
        let holds = matches!(a.source.trigger, Trigger::AtPoint { hold: true, .. });
        a.fired.load(Ordering::Acquire) > 0 && (!holds || a.holding.load(Ordering::Acquire))
    }

    /// Take one of source `index`'s firings, if it has any left.
    pub(crate) fn claim(&self, index: usize) -> bool {
        let Some(a) = self.sources.get(index) else {
            return false;
        };
        let times = a.source.times;
        a.fired
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |f| {
                (times == 0 || f < times).then_some(f + 1)
            })
            .is_ok()
    }

    /// The calling CPU passes the armed `point`.
    pub(crate) fn fire(&self, m: &Machine, point: Point) {
        let Some(me) = irq::this_cpu() else {
            return;
        };
        // The printer thread is no CPU: it runs in task context.
        let context = m.cpus.get(me).map_or(Context::Task, |c| c.context());
        self.count_pass(point, me, context);
        // The panic CPU's stop NMI waiting for this CPU to get here.
        if let Some(c) = m.cpus.get(me) {
            let at = c.stop_at.load(Ordering::Acquire);
            if at == u32::from(point.id) + 1 && c.stop_at.swap(0, Ordering::AcqRel) == at {
                m.send(me, super::irq::nmi_signal());
            }
        }
        // An NMI of an all-CPU backtrace waiting for this CPU to get here.
        if let Some(c) = m.cpus.get(me) {
            let deferred = c.deferred_nmi.load(Ordering::Acquire);
            if let Some(source) = (deferred as usize).checked_sub(1) {
                let here = matches!(
                    self.source(source).map(|s| s.action),
                    Some(NmiAction::BacktraceAll(d)) if d.land_at == Some(point)
                );
                if here && c.deferred_nmi.swap(0, Ordering::AcqRel) == deferred {
                    m.raise_nmi(me, source);
                }
            }
        }
        for (index, a) in self.sources.iter().enumerate() {
            let Trigger::AtPoint {
                point: p,
                hit_on,
                nth,
                wait,
                hold,
                hold_limit_ns,
                context: only_in,
                after,
            } = a.source.trigger
            else {
                continue;
            };
            if p != point || hit_on != me || only_in.is_some_and(|c| c != context) {
                continue;
            }
            // Nothing more is placed once the run is ending (a CPU held
            // until then would otherwise fire late).
            if m.stopping() || after.is_some_and(|k| !self.open_after(k)) {
                continue;
            }
            let hit = a.hits.fetch_add(1, Ordering::Relaxed) + 1;
            if hit < nth || !self.claim(index) {
                continue;
            }
            // NMIs this CPU has taken, not counting one it sends itself
            // below (a signal to oneself is handled before `tgkill`
            // returns): the hold ends at the next one from elsewhere.
            let mut mine = m.cpus.get(me).map_or(0, |c| c.nmis.load(Ordering::Acquire));
            let nmi = a.source.interrupt == Interrupt::Nmi;
            for target in a.source.targets.cpus(m.cpus.len()) {
                let entered = |c: &super::Cpu| {
                    if nmi {
                        c.nmis.load(Ordering::Acquire)
                    } else {
                        c.irq_actions.load(Ordering::Acquire)
                    }
                };
                let before = m.cpus.get(target).map_or(0, |c| entered(c));
                let sent = m.raise(target, index);
                if sent && target == me && nmi {
                    mine += 1;
                }
                if sent && wait && target != me {
                    m.wait_for_handler(target, before, &entered);
                }
            }
            if hold {
                a.holding.store(true, Ordering::Release);
                m.hold_until_nmi(me, mine, hold_limit_ns);
                a.holding.store(false, Ordering::Release);
                a.released.store(true, Ordering::Release);
            }
        }
    }
}

impl Machine {
    /// Hold still on `cpu` until it has taken an NMI after the first
    /// `before`, the run ends, or `limit_ns` (if not 0) has passed: a CPU
    /// stuck at a point with what it holds, until an NMI (a backtrace, the
    /// panic CPU's stop) reaches it.
    fn hold_until_nmi(&self, cpu: usize, before: u64, limit_ns: u64) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        let deadline = match limit_ns {
            0 => u64::MAX,
            n => mono_ns().saturating_add(n),
        };
        c.stalled.store(true, Ordering::Relaxed);
        while c.nmis.load(Ordering::Acquire) <= before
            && !self.stop.load(Ordering::Relaxed)
            && !self.abort_all.load(Ordering::Relaxed)
            && (limit_ns == 0 || mono_ns() < deadline)
        {
            core::hint::spin_loop();
        }
        c.stalled.store(false, Ordering::Relaxed);
    }

    /// Hold still until `cpu` has entered the handler more than `before`
    /// times (as `entered` counts), the run ends, or the wait limit passes.
    fn wait_for_handler(&self, cpu: usize, before: u64, entered: &dyn Fn(&super::Cpu) -> u64) {
        let Some(c) = self.cpus.get(cpu) else {
            return;
        };
        let deadline = mono_ns().saturating_add(self.config.nmi_wait_limit_ns);
        while entered(c) <= before {
            if self.abort_all.load(Ordering::Relaxed) || mono_ns() > deadline {
                return;
            }
            core::hint::spin_loop();
        }
    }
}
