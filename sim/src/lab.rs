//! Bring your own design: run it on every built-in scenario and under
//! `explore`, next to the six designs of the history, and get a report
//! card.
//!
//! A design is any type that implements [`klog::printk::Printk`] (for
//! every `Arch`, as the six do, or for the simulator's [`Machine`]). To
//! plug it in, give it a [`DesignInfo`] whose kind is
//! [`klog::printk::DesignKind::External`] holding a [`Build`]:
//!
//! ```no_run
//! use klog::printk::{DesignConfig, DesignInfo, DesignKind, External, Printk};
//! use printk_sim::lab::{Build, Lab};
//! use printk_sim::machine::Machine;
//! # use klog::printk::lockless::Lockless as MyDesign;
//!
//! fn build(config: &DesignConfig) -> Box<dyn Printk<Machine>> {
//!     Box::new(MyDesign::new(config))
//! }
//! static BUILD: Build = build;
//! static MINE: DesignInfo = DesignInfo {
//!     kind: DesignKind::External(External(&BUILD)),
//!     name: "mine",
//!     summary: "my printk",
//!     point_groups: &[],
//!     kernel: klog::Kernel::new(6, 12),
//! };
//!
//! let card = Lab::new().design(&MINE).run(&mut |_| {}).unwrap();
//! print!("{}", printk_sim::report::card::render(&card, 100));
//! ```
//!
//! [`design!`](crate::design) writes the same three items from one line
//! per field:
//!
//! ```
//! # use klog::printk::lockless::Lockless as MyDesign;
//! printk_sim::design! {
//!     static MINE = MyDesign::new, "mine", klog::Kernel::new(6, 12);
//!     summary: "my printk";
//!     points: &[&klog::printk::RING_POINTS];
//! }
//! assert_eq!(MINE.name, "mine");
//! assert_eq!(MINE.points().count(), klog::printk::RING_POINTS.len());
//! ```
//!
//! Nothing in the simulator knows the design: it runs exactly as the six
//! do, on the same machine, scenarios and watchdog. Install
//! [`CountingAlloc`] as the program's global allocator and the card also
//! fails a design that allocates inside a simulated interrupt, saying
//! where.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use klog::printk::{Accounts, DesignConfig, DesignInfo, Printk};
use klog::Context;

use crate::explore::{self, Exploration, ExploreRequest};
use crate::machine::{Machine, NmiAction};
use crate::outcome::{Outcome, RunReport};
use crate::runner;
use crate::scenario::{self, Overrides};
use crate::shard::Shard;

/// What builds a design for the simulator's machine: put one in a
/// `static` and the `static` in [`klog::printk::External`].
pub type Build = fn(&DesignConfig) -> Box<dyn Printk<Machine>>;

/// Declares a `static` [`DesignInfo`] for a design written outside klog:
/// `$new` builds it from a [`DesignConfig`] (usually its `new`), then come
/// its name and the [`klog::Kernel`] whose messages it prints, its summary
/// and its point groups (see [`DesignInfo::point_groups`]). The build
/// function and its [`Build`] `static` are written inside the
/// initializer, so that the design's file holds only what is its own.
///
/// ```
/// # use klog::printk::lockless::Lockless;
/// printk_sim::design! {
///     /// Lockless again, under another name.
///     pub static AGAIN = Lockless::new, "again", klog::Kernel::new(6, 1);
///     summary: "the lockless design, graded as if it were new";
///     points: &[&klog::printk::RING_POINTS, &klog::printk::SERIAL_POINTS];
/// }
/// assert!(matches!(AGAIN.kind, klog::printk::DesignKind::External(_)));
/// ```
#[macro_export]
macro_rules! design {
    (
        $(#[$attr:meta])*
        $vis:vis static $info:ident = $new:path, $name:literal, $kernel:expr;
        summary: $summary:expr;
        points: $points:expr $(;)?
    ) => {
        $(#[$attr])*
        $vis static $info: $crate::__klog::printk::DesignInfo = {
            fn build(
                config: &$crate::__klog::printk::DesignConfig,
            ) -> ::std::boxed::Box<dyn $crate::__klog::printk::Printk<$crate::machine::Machine>> {
                ::std::boxed::Box::new($new(config))
            }
            static BUILD: $crate::lab::Build = build;
            $crate::__klog::printk::DesignInfo {
                kind: $crate::__klog::printk::DesignKind::External(
                    $crate::__klog::printk::External(&BUILD),
                ),
                name: $name,
                summary: $summary,
                point_groups: $points,
                kernel: $kernel,
            }
        };
    };
}

/// Allocations (and frees) made inside a simulated interrupt, in this
/// process.
static IN_INTERRUPT: AtomicU64 = AtomicU64::new(0);
/// The first one's CPU + 1 (0: none yet) and context level.
static FIRST_CPU: AtomicUsize = AtomicUsize::new(0);
static FIRST_LEVEL: AtomicUsize = AtomicUsize::new(0);

/// A global allocator that forwards to the system's and counts every
/// allocation made inside a simulated interrupt (an NMI or hardirq handler
/// on a CPU thread), remembering where the first one was; those are served
/// from a static arena and frees there are leaked, so that a design that
/// allocates fails its card instead of hanging on malloc's lock. Install
/// it with `#[global_allocator]`; the [`Lab`] reads it after every run.
pub struct CountingAlloc;

/// Count the calling allocation if it is made inside a simulated
/// interrupt; whether it is.
fn note_in_interrupt() -> bool {
    let Some(pc) = crate::machine::irq::current_cpu_context() else {
        return false;
    };
    if pc & (klog::context::HARDIRQ_MASK | klog::context::NMI_MASK) == 0 {
        return false;
    }
    if IN_INTERRUPT.fetch_add(1, Ordering::Relaxed) == 0 {
        let cpu = crate::machine::irq::this_cpu().unwrap_or(usize::MAX - 1);
        FIRST_CPU.store(cpu + 1, Ordering::Relaxed);
        FIRST_LEVEL.store(
            usize::from(Context::from_preempt_count(pc).level()),
            Ordering::Relaxed,
        );
    }
    true
}

/// Memory for allocations made inside a simulated interrupt: malloc is not
/// async-signal-safe (an NMI that lands while its thread is inside malloc
/// and calls malloc again would wait on malloc's own lock, where no
/// watchdog sees it), so those allocations are cut from this arena with
/// one `fetch_add` and never reused. 8 MiB is plenty for a design that is
/// failing its card anyway; past it, allocation fails (null).
const ARENA_BYTES: usize = 8 << 20;

struct Arena(core::cell::UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: the bytes are handed out in disjoint pieces (ARENA_NEXT only
// grows), each to one allocation; the arena itself is never read.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(core::cell::UnsafeCell::new([0; ARENA_BYTES]));
static ARENA_NEXT: AtomicUsize = AtomicUsize::new(0);

fn in_arena(ptr: *mut u8) -> bool {
    let start = ARENA.0.get().cast::<u8>() as usize;
    (start..start + ARENA_BYTES).contains(&(ptr as usize))
}

/// A piece of the arena for `layout`, or null if it is used up.
fn arena_alloc(layout: Layout) -> *mut u8 {
    let base = ARENA.0.get().cast::<u8>();
    let align = layout.align().max(1);
    // Room for the worst alignment, taken in one step.
    let take = layout.size().saturating_add(align);
    let at = ARENA_NEXT.fetch_add(take, Ordering::Relaxed);
    if at.saturating_add(take) > ARENA_BYTES {
        return core::ptr::null_mut();
    }
    let addr = base as usize + at;
    let aligned = addr.next_multiple_of(align);
    // SAFETY: `aligned` lies in [base + at, base + at + align), and the
    // piece [base + at, base + at + take) is ours alone, so `aligned +
    // size` stays inside it and inside the arena.
    unsafe { base.add(aligned - base as usize) }
}

// SAFETY: outside interrupts it forwards to the system allocator
// unchanged; inside, it hands out disjoint, suitably aligned pieces of a
// static arena that are never freed (dealloc ignores them), and frees
// nothing (a leak is sound). The default realloc goes through these two.
// The count only reads a thread-local and atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if note_in_interrupt() {
            return arena_alloc(layout);
        }
        // SAFETY: the caller keeps GlobalAlloc's contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Arena pieces are never reused; and free() is no more
        // async-signal-safe than malloc: a block freed inside an interrupt
        // is leaked (counted, like the allocation).
        if note_in_interrupt() || in_arena(ptr) {
            return;
        }
        // SAFETY: not from the arena, so from System.alloc, as the
        // caller's contract says.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations inside simulated interrupts since the last call, and where
/// the first of them was (CPU, context); the count starts again at zero.
/// Always zero unless [`CountingAlloc`] is installed.
pub fn take_allocations_in_interrupt() -> (u64, Option<(usize, Context)>) {
    let n = IN_INTERRUPT.swap(0, Ordering::Relaxed);
    let cpu = FIRST_CPU.swap(0, Ordering::Relaxed);
    let first = (cpu > 0).then(|| {
        (
            cpu - 1,
            Context::from_level(FIRST_LEVEL.load(Ordering::Relaxed) as u8),
        )
    });
    (n, first)
}

/// Grades designs: every built-in scenario (or those chosen), each run
/// next to the six designs of the history, and `explore` on the chosen
/// scenarios.
pub struct Lab {
    designs: Vec<&'static DesignInfo>,
    scenarios: Vec<String>,
    explore_on: Vec<String>,
    history: bool,
    shard: Shard,
}

impl Default for Lab {
    fn default() -> Lab {
        Lab::new()
    }
}

/// One design's run of one scenario, as the card shows it.
#[derive(Clone, Debug)]
pub struct CardRun {
    /// The design.
    pub design: &'static str,
    /// One of the designs being graded (not one of the six).
    pub graded: bool,
    /// What the run came to.
    pub outcome: Outcome,
    /// The outcome the scenario's `[expect]` table names for this design,
    /// if it names one (the card's JSON shows it next to `outcome`).
    pub expected: Option<Outcome>,
    /// The watchdog's findings, by title.
    pub findings: Vec<String>,
    /// lockdep's findings: rule and lock.
    pub lockdep: Vec<String>,
    /// The message accounts.
    pub accounts: Accounts,
}

/// One scenario on the card.
#[derive(Clone, Debug)]
pub struct ScenarioCard {
    /// The scenario's name.
    pub name: String,
    /// What it shows.
    pub summary: String,
    /// Every design's run, the history's first (in the scenario's order),
    /// then the graded ones.
    pub runs: Vec<CardRun>,
}

/// Something that fails a graded design whatever its outcomes: a broken
/// account, a broken buffer invariant, an allocation inside an interrupt.
#[derive(Clone, Debug, PartialEq)]
pub struct CardFailure {
    /// The design.
    pub design: &'static str,
    /// The scenario whose run showed it.
    pub scenario: String,
    /// What and where.
    pub what: String,
}

/// The report card.
#[derive(Clone, Debug)]
pub struct Card {
    /// The graded designs.
    pub graded: Vec<&'static DesignInfo>,
    /// Per scenario.
    pub scenarios: Vec<ScenarioCard>,
    /// `explore` per chosen scenario.
    pub explorations: Vec<Exploration>,
    /// What fails a graded design outright.
    pub failures: Vec<CardFailure>,
}

impl Card {
    /// Every design on the card, in the order of its columns: as they
    /// first appear in the scenarios' runs.
    pub fn design_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for r in self.scenarios.iter().flat_map(|sc| sc.runs.iter()) {
            if !names.contains(&r.design) {
                names.push(r.design);
            }
        }
        names
    }
}

/// What the lab tells its `progress` callback as it goes.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// Running this scenario.
    Scenario(&'a str),
    /// Exploring this scenario.
    Explore(&'a str),
    /// A scenario done: its runs, and what it failed a graded design for.
    ScenarioDone(&'a ScenarioCard, &'a [CardFailure]),
    /// An exploration done, and what it failed a graded design for.
    ExploreDone(&'a Exploration, &'a [CardFailure]),
}

/// What hears a lab's [`Progress`].
type Listener<'a> = dyn FnMut(Progress<'_>) + 'a;

impl Lab {
    /// A lab with every built-in scenario, `explore` on the flagship, and
    /// the six designs of the history alongside. Add designs with
    /// [`Lab::design`].
    pub fn new() -> Lab {
        Lab {
            designs: Vec::new(),
            scenarios: scenario::BUILTIN
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            explore_on: vec![scenario::FLAGSHIP.to_string()],
            history: true,
            shard: Shard::WHOLE,
        }
    }

    /// Do only shard `shard` of the card: the scenarios and explorations
    /// whose key (`scenario:NAME`, `explore:NAME`) is its.
    pub fn shard(mut self, shard: Shard) -> Lab {
        self.shard = shard;
        self
    }

    /// The card's units, in order: `scenario:NAME` for each scenario, then
    /// `explore:NAME` for each exploration (what shards share out).
    pub fn units(&self) -> Vec<String> {
        let scenarios = self.scenarios.iter().map(|n| format!("scenario:{n}"));
        let explores = self.explore_on.iter().map(|n| format!("explore:{n}"));
        scenarios.chain(explores).collect()
    }

    /// The names of the designs on the card, the history's first.
    pub fn design_names(&self) -> Vec<&'static str> {
        let history = klog::printk::DESIGNS.iter().filter(|_| self.history);
        history
            .chain(self.designs.iter().copied())
            .map(|d| d.name)
            .collect()
    }

    /// Grade `design` too.
    pub fn design(mut self, design: &'static DesignInfo) -> Lab {
        self.designs.push(design);
        self
    }

    /// Only these scenarios (built-in names or files).
    pub fn scenarios(mut self, names: &[&str]) -> Lab {
        self.scenarios = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Explore these scenarios (none: no explore).
    pub fn explore_on(mut self, names: &[&str]) -> Lab {
        self.explore_on = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Leave the six designs of the history out (a quicker card).
    pub fn without_history(mut self) -> Lab {
        self.history = false;
        self
    }

    /// Run everything and make the card. Errors are bad scenarios or
    /// internal errors.
    pub fn run(&self, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Card, String> {
        if self.designs.is_empty() {
            return Err("the lab has no design to grade".into());
        }
        for (i, d) in self.designs.iter().enumerate() {
            let twice = self.designs.iter().skip(i + 1).any(|o| o.name == d.name);
            let historic = self.history
                && klog::printk::DESIGNS
                    .iter()
                    .any(|h| h.name == d.name && !core::ptr::eq(h, *d));
            if twice || historic {
                return Err(format!(
                    "two designs are called `{}`: the card tells designs apart by name",
                    d.name
                ));
            }
        }
        let mut card = Card {
            graded: self.designs.clone(),
            scenarios: Vec::new(),
            explorations: Vec::new(),
            failures: Vec::new(),
        };
        // Ctrl-C ends the card where it is: no exploration after a cut
        // scenario.
        for name in self.owned("scenario", &self.scenarios) {
            if !self.scenario(name, &mut card, progress)? {
                return Ok(card);
            }
        }
        for name in self.owned("explore", &self.explore_on) {
            if !self.explore(name, &mut card, progress)? {
                return Ok(card);
            }
        }
        Ok(card)
    }

    /// The names of `names` whose unit (`kind:name`) is this shard's.
    fn owned<'a>(&'a self, kind: &'a str, names: &'a [String]) -> impl Iterator<Item = &'a str> {
        let mine = move |n: &&String| self.shard.owns_key(&format!("{kind}:{n}"));
        names.iter().filter(mine).map(String::as_str)
    }

    /// `explore` on scenario `name`: the history's designs in one go,
    /// then each graded design on its own, so that what its runs broke
    /// (allocations inside interrupts included) is its own. Adds it to
    /// `card`, unless Ctrl-C cut it short: then false.
    fn explore(&self, name: &str, card: &mut Card, tell: &mut Listener) -> Result<bool, String> {
        tell(Progress::Explore(name));
        let before = card.failures.len();
        let failures = &mut card.failures;
        let plan = scenario::load(name)
            .and_then(|s| s.plan(&Overrides::default()))
            .map_err(|e| e.to_string())?;
        let request = |designs: Vec<&'static DesignInfo>| ExploreRequest {
            designs,
            cpus: (0..plan.cpus).collect(),
            plan: plan.clone(),
            action: NmiAction::Printk {
                lines: 1,
                len: (40, 80),
                level: klog::Level::Warning,
            },
            depth: 1,
            budget: 1,
            shard: Shard::WHOLE,
        };
        let mut x = explore::explore(
            &request(if self.history {
                plan.designs.clone()
            } else {
                Vec::new()
            }),
            &mut (),
        )?;
        for &d in &self.designs {
            take_allocations_in_interrupt();
            let mine = explore::explore(&request(vec![d]), &mut ())?;
            let place = format!("explore {name}");
            let (n, first) = take_allocations_in_interrupt();
            if n > 0 {
                failures.push(CardFailure {
                    design: d.name,
                    scenario: place.clone(),
                    what: allocation_words(n, first),
                });
            }
            for dx in &mine.designs {
                for c in &dx.cells {
                    if let (Some(what), Some(p)) = (&c.broken, c.places.first()) {
                        failures.push(CardFailure {
                            design: d.name,
                            scenario: format!("{place}, NMI at {} on CPU {}", p.point.name, p.cpu),
                            what: what.clone(),
                        });
                    }
                }
            }
            x.runs += mine.runs;
            x.wall_s += mine.wall_s;
            x.interrupted |= mine.interrupted;
            x.designs.extend(mine.designs);
        }
        if x.interrupted {
            return Ok(false);
        }
        let failed = card.failures.get(before..).unwrap_or(&[]);
        tell(Progress::ExploreDone(&x, failed));
        card.explorations.push(x);
        Ok(true)
    }

    /// One scenario: the history's designs and the graded ones. Adds it to
    /// `card`, unless Ctrl-C cut it short: then false.
    fn scenario(&self, name: &str, card: &mut Card, tell: &mut Listener) -> Result<bool, String> {
        tell(Progress::Scenario(name));
        let before = card.failures.len();
        let mut plan = scenario::load(name)
            .and_then(|s| s.plan(&Overrides::default()))
            .map_err(|e| e.to_string())?;
        if !self.history {
            plan.designs.clear();
        }
        let history = plan.designs.len();
        plan.designs.extend(self.designs.iter().copied());
        let mut runs = Vec::new();
        for (i, d) in plan.designs.iter().enumerate() {
            let graded = i >= history;
            take_allocations_in_interrupt();
            let r = runner::run(&plan, d, plan.seed, false)?;
            if graded {
                card.failures.extend(failures_of(&plan.name, d.name, &r));
            }
            runs.push(CardRun {
                design: d.name,
                graded,
                outcome: r.outcome,
                expected: plan
                    .expect
                    .iter()
                    .find(|(n, _)| *n == d.name)
                    .map(|(_, o)| *o),
                accounts: r.accounts,
                findings: r.findings.iter().map(|f| f.title()).collect(),
                lockdep: r
                    .lockdep
                    .iter()
                    .map(|f| format!("{} on {}", f.rule.name(), f.lock))
                    .collect(),
            });
        }
        if runner::interrupted().load(Ordering::Relaxed) {
            return Ok(false);
        }
        let sc = ScenarioCard {
            name: plan.name.clone(),
            summary: plan.summary.clone(),
            runs,
        };
        tell(Progress::ScenarioDone(
            &sc,
            card.failures.get(before..).unwrap_or(&[]),
        ));
        card.scenarios.push(sc);
        Ok(true)
    }
}

/// "N allocation(s) or free(s) inside a simulated interrupt, the first on
/// CPU c in ctx context: ...".
fn allocation_words(n: u64, first: Option<(usize, Context)>) -> String {
    let at = first.map_or(String::new(), |(cpu, ctx)| {
        format!(", the first on CPU {cpu} in {ctx} context")
    });
    format!(
        "{n} allocation(s) or free(s) inside a simulated interrupt{at}: a handler may not allocate"
    )
}

/// What fails `design` in its run `r` of `scenario`.
fn failures_of(scenario: &str, design: &'static str, r: &RunReport) -> Vec<CardFailure> {
    let mut out = Vec::new();
    let mut fail = |what: String| {
        out.push(CardFailure {
            design,
            scenario: scenario.to_string(),
            what,
        })
    };
    if let Some(what) = explore::broken(r) {
        fail(what);
    }
    let (n, first) = take_allocations_in_interrupt();
    if n > 0 {
        fail(allocation_words(n, first));
    }
    out
}
