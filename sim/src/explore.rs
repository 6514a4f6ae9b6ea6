//! Explore: every place an NMI can land in a scenario, tried one by one.
//!
//! For each design, a first run takes a census (which CPU passes which
//! injection point in which context) with the scenario's own load and
//! `[[irq]]` sources in place. Then every (point, CPU, context) the census
//! saw becomes a cell: one run with one NMI raised there, deterministically
//! (an `at_point` source on that CPU, in that context; for a point the
//! printer thread passes, the NMI goes to the CPU while the printer holds
//! still at the point). A run ends at its first finding, or a while after
//! its NMI has fired (`SETTLE_THRESHOLDS` thresholds: long enough for a
//! deadlock, a hard or a soft lockup to be found).
//!
//! `--depth 2` tries pairs of places: on one CPU, the second NMI at the
//! second point after the first; on two CPUs, the first CPU holds still at
//! its point (for at most half a threshold, so that holding is never a
//! lockup of its own) until the second CPU reaches its own, which then
//! sends the first an NMI (waiting until it is in its handler) and takes
//! its own: two NMIs in flight at once, the class of `backtrace-abba`. A
//! pair whose second CPU never got there while the first held is `not
//! reached`. All pairs
//! when they fit the budget, else a seeded sample of them.
//!
//! The scenario's own `[[nmi]]` sources are left out, and so are `[[irq]]`
//! sources that raise NMIs themselves (`backtrace_all`, `rcu_stall`,
//! `panic`): explore places the NMIs. Everything else stays.

use klog::printk::DesignInfo;
use klog::{Context, Point};

use crate::machine::{Interrupt, NmiAction, NmiSource, Pass, Targets, Trigger};
use crate::outcome::{Outcome, RunReport};
use crate::rng::Rng;
use crate::runner;
use crate::scenario::Plan;
use crate::shard::Shard;
use crate::watchdog::OnDeadlock;

/// How long a cell's run goes on after its NMIs fired, in thresholds: a
/// soft lockup takes two to be found.
pub const SETTLE_THRESHOLDS: f64 = 2.5;

/// Where a place's point was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Where {
    /// By the CPU itself, in this context; the NMI lands on it there.
    Cpu(Context),
    /// By the printer thread; the NMI lands on the CPU meanwhile.
    Printer,
}

impl Where {
    /// The word reports use: `task`, `hardirq`, ..., `printer`.
    pub fn name(self) -> &'static str {
        match self {
            Where::Cpu(c) => c.name(),
            Where::Printer => "printer",
        }
    }
}

/// One place an NMI lands: a point, the CPU the NMI goes to, and where the
/// point was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The injection point.
    pub point: Point,
    /// The CPU the NMI goes to.
    pub cpu: usize,
    /// Who passed the point, in which context.
    pub at: Where,
}

klog::named_enum! {
    /// What one cell's run came to: an [`Outcome`], or `not reached` (the
    /// NMI never fired: the run never passed the point there).
    pub enum CellOutcome {
        Clean = "clean", Loss = "loss", Lockup = "lockup", Deadlock = "deadlock",
        Timeout = "timeout", NotReached = "not reached",
    }
}

impl CellOutcome {
    /// Whether it is a failure: a loss, a lockup, a deadlock, a timeout.
    pub fn failed(self) -> bool {
        !matches!(self, CellOutcome::Clean | CellOutcome::NotReached)
    }

    fn from(o: Outcome) -> CellOutcome {
        match o {
            Outcome::Clean => CellOutcome::Clean,
            Outcome::Loss => CellOutcome::Loss,
            Outcome::Lockup => CellOutcome::Lockup,
            Outcome::Deadlock => CellOutcome::Deadlock,
            Outcome::Timeout => CellOutcome::Timeout,
        }
    }
}

/// One cell: an NMI at one place (or, at depth 2, two).
#[derive(Clone, Debug)]
pub struct Cell {
    /// Where the NMIs landed: one place, or two at depth 2.
    pub places: Vec<Place>,
    /// What came of it.
    pub outcome: CellOutcome,
    /// The first finding's title, if any.
    pub finding: Option<String>,
    /// Why messages were lost, when that is the outcome ("recursion 1").
    pub loss: Option<String>,
    /// Whether a run was made for it (false: the census never saw its
    /// CPU pass the point, in any context).
    pub tried: bool,
    /// What the run broke, if anything: the design's accounts or its
    /// buffer's invariants (the report card fails a design for it).
    pub broken: Option<String>,
}

/// One design explored.
#[derive(Clone, Debug)]
pub struct DesignExploration {
    /// The design.
    pub design: &'static DesignInfo,
    /// The points it lists.
    pub listed: Vec<Point>,
    /// Those the census saw passed (by an explored CPU or the printer).
    pub reached: Vec<Point>,
    /// The scenario without any placed NMI (the census run).
    pub baseline: CellOutcome,
    /// One cell per place (and, where a CPU never passed a point, one
    /// `not reached` cell for that point and CPU).
    pub cells: Vec<Cell>,
    /// Depth 2: the pairs tried.
    pub pairs: Vec<Cell>,
    /// Depth 2: how many pairs there were in all.
    pub pairs_total: usize,
    /// Depth 2: the pairs were a seeded sample (the budget was smaller
    /// than the total).
    pub pairs_sampled: bool,
}

/// What explore was asked to do.
#[derive(Clone, Debug)]
pub struct ExploreRequest {
    /// The scenario, checked.
    pub plan: Plan,
    /// The designs to explore.
    pub designs: Vec<&'static DesignInfo>,
    /// The CPUs NMIs go to.
    pub cpus: Vec<usize>,
    /// What each NMI's handler does.
    pub action: NmiAction,
    /// 1 or 2 NMIs per run.
    pub depth: u8,
    /// At most this many pairs per design at depth 2.
    pub budget: usize,
    /// The part of the cells this process tries (the census runs on every
    /// shard, and the cells are shared out by their places).
    pub shard: Shard,
}

/// One design's census: what it saw, and the cells this shard tries.
#[derive(Clone, Debug)]
pub struct Census {
    /// The design.
    pub design: &'static DesignInfo,
    /// The scenario without any placed NMI.
    pub baseline: CellOutcome,
    /// The (point, CPU) pairs the census never saw passed, in any context:
    /// `not reached` without a run.
    pub unseen: Vec<(Point, usize)>,
    /// The cells to try, in order: a place each, then (depth 2) the pairs.
    pub todo: Vec<Vec<Place>>,
    /// Depth 2: how many pairs there were in all.
    pub pairs_total: usize,
    /// Depth 2: the pairs were a seeded sample.
    pub pairs_sampled: bool,
}

/// The key that names a cell on every machine (`point@cpu/context`, `+`
/// between the places of a pair): what shards share the cells out by.
pub fn cell_key(places: &[Place]) -> String {
    places
        .iter()
        .map(|p| format!("{}@{}/{}", p.point.name, p.cpu, p.at.name()))
        .collect::<Vec<_>>()
        .join("+")
}

/// Everything explore found.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// The scenario's name.
    pub scenario: String,
    /// The seed every run used; also the pair sample's.
    pub seed: u64,
    /// The NMIs' action, as named on the command line.
    pub action: &'static str,
    /// 1 or 2.
    pub depth: u8,
    /// The CPUs NMIs went to.
    pub cpus: Vec<usize>,
    /// Per design.
    pub designs: Vec<DesignExploration>,
    /// Runs made, the census runs included.
    pub runs: usize,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Ctrl-C cut it short.
    pub interrupted: bool,
}

/// The scenario's sources explore keeps: those that place no NMI.
fn kept_sources(plan: &Plan) -> Vec<NmiSource> {
    plan.nmis
        .iter()
        .filter(|s| {
            s.interrupt == Interrupt::Irq
                && !matches!(
                    s.action,
                    NmiAction::BacktraceAll(_) | NmiAction::Panic { .. }
                )
        })
        .cloned()
        .collect()
}

/// An `at_point` NMI source.
fn at_point(
    point: Point,
    hit_on: usize,
    context: Option<Context>,
    targets: Targets,
    action: NmiAction,
) -> NmiSource {
    NmiSource {
        interrupt: Interrupt::Nmi,
        trigger: Trigger::AtPoint {
            point,
            hit_on,
            nth: 1,
            wait: false,
            hold: false,
            hold_limit_ns: 0,
            context,
            after: None,
        },
        targets,
        times: 1,
        action,
    }
}

fn set_trigger(s: &mut NmiSource, wait_for_target: bool, hold_here: bool, after_source: usize) {
    if let Trigger::AtPoint {
        wait, hold, after, ..
    } = &mut s.trigger
    {
        *wait = wait_for_target;
        *hold = hold_here;
        *after = Some(after_source);
    }
}

/// The source that raises the NMI of `place`.
fn source_for(place: Place, nr_cpus: usize, action: NmiAction) -> NmiSource {
    match place.at {
        Where::Cpu(c) => at_point(
            place.point,
            place.cpu,
            Some(c),
            Targets::One(place.cpu),
            action,
        ),
        Where::Printer => {
            let mut s = at_point(place.point, nr_cpus, None, Targets::One(place.cpu), action);
            if let Trigger::AtPoint { wait, .. } = &mut s.trigger {
                *wait = true;
            }
            s
        }
    }
}

/// The sources of a pair, after the `base` kept sources: see the module
/// comment. The pair is reached when the last source has fired.
fn pair_sources(
    a: Place,
    b: Place,
    base: usize,
    action: NmiAction,
    hold_ns: u64,
) -> Vec<NmiSource> {
    let ctx = |p: Place| match p.at {
        Where::Cpu(c) => Some(c),
        Where::Printer => None,
    };
    if a.cpu == b.cpu {
        let first = at_point(a.point, a.cpu, ctx(a), Targets::One(a.cpu), action);
        let mut second = at_point(b.point, b.cpu, ctx(b), Targets::One(b.cpu), action);
        set_trigger(&mut second, false, false, base);
        return vec![first, second];
    }
    // A holds still at its point (no NMI yet) until B's CPU gets to its
    // own: B then sends A its NMI, waits until A is in the handler, and
    // takes its own.
    let mut park = at_point(a.point, a.cpu, ctx(a), Targets::Nobody, NmiAction::Nothing);
    if let Trigger::AtPoint {
        hold,
        hold_limit_ns,
        ..
    } = &mut park.trigger
    {
        *hold = true;
        *hold_limit_ns = hold_ns;
    }
    let mut to_a = at_point(b.point, b.cpu, ctx(b), Targets::One(a.cpu), action);
    set_trigger(&mut to_a, true, false, base);
    // Its own NMI follows the one it sent (which may already have ended
    // the hold).
    let mut to_b = at_point(b.point, b.cpu, ctx(b), Targets::One(b.cpu), action);
    set_trigger(&mut to_b, false, false, base + 1);
    vec![park, to_a, to_b]
}

impl ExploreRequest {
    /// The plan of one run: the kept sources plus `placed`, stopping at
    /// the first finding and soon after the placed NMIs fired.
    fn plan_with(&self, placed: Vec<NmiSource>) -> Plan {
        let mut plan = self.plan.clone();
        plan.nmis = kept_sources(&self.plan);
        plan.nmis.extend(placed);
        plan.on_deadlock = OnDeadlock::Stop;
        plan.settle_ms = Some(SETTLE_THRESHOLDS * plan.threshold_ms);
        plan.timeline = false;
        plan.census = false;
        plan
    }

    /// The census of `design`: one run with the scenario's own load, then
    /// the places it saw and, of those, the cells this shard tries.
    pub fn census(&self, design: &'static DesignInfo) -> Result<Census, String> {
        let mut plan = self.plan_with(Vec::new());
        plan.settle_ms = None;
        plan.census = true;
        let r = runner::run(&plan, design, self.plan.seed, false)?;
        let (places, unseen) = places(design, &r.passes, &self.cpus, self.plan.cpus);
        let mut census = Census {
            design,
            baseline: CellOutcome::from(r.outcome),
            unseen,
            todo: places.iter().map(|&p| vec![p]).collect(),
            pairs_total: 0,
            pairs_sampled: false,
        };
        if self.depth >= 2 {
            // Pairs of places a CPU passes itself (the printer cannot be
            // held still at a point).
            let singles: Vec<Place> = places
                .iter()
                .copied()
                .filter(|p| p.at != Where::Printer)
                .collect();
            let n = singles.len();
            census.pairs_total = n * n.saturating_sub(1);
            census.pairs_sampled = self.budget < census.pairs_total;
            for idx in sample(census.pairs_total, self.budget, self.plan.seed) {
                let (i, j) = (idx / (n - 1), idx % (n - 1));
                let j = if j >= i { j + 1 } else { j };
                if let (Some(&a), Some(&b)) = (singles.get(i), singles.get(j)) {
                    census.todo.push(vec![a, b]);
                }
            }
        }
        census
            .todo
            .retain(|places| self.shard.owns_key(&cell_key(places)));
        Ok(census)
    }

    /// Try one cell of `design`: an NMI at one place, or two at a pair.
    pub fn try_cell(&self, design: &'static DesignInfo, places: &[Place]) -> Result<Cell, String> {
        let base = kept_sources(&self.plan).len();
        let sources = match places {
            [a] => vec![source_for(*a, self.plan.cpus, self.action)],
            [a, b] => {
                // Held for less than half a threshold: never a lockup of
                // its own, and long enough for the other CPU to get there.
                let hold_ns = (self.plan.threshold_ms * 1e6 / 2.0) as u64;
                pair_sources(*a, *b, base, self.action, hold_ns)
            }
            _ => {
                return Err(format!(
                    "a cell has one or two places, not {}",
                    places.len()
                ))
            }
        };
        // The cell was reached when its last source fired.
        let last = base + sources.len() - 1;
        let plan = self.plan_with(sources);
        let r = runner::run(&plan, design, self.plan.seed, false)?;
        let reached = r.fired.get(last).is_some_and(|&n| n > 0);
        Ok(cell_of(places.to_vec(), &r, reached))
    }
}

fn cell_of(places: Vec<Place>, r: &RunReport, reached: bool) -> Cell {
    if !reached {
        return Cell {
            places,
            outcome: CellOutcome::NotReached,
            finding: None,
            loss: None,
            tried: true,
            broken: None,
        };
    }
    let outcome = CellOutcome::from(r.outcome);
    let loss = (outcome == CellOutcome::Loss).then(|| {
        let mut why: Vec<String> = r
            .dropped_by
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| format!("{} {n}", d.name()))
            .collect();
        if r.accounts.lost_in_deadlock > 0 {
            why.push(format!("lost_in_deadlock {}", r.accounts.lost_in_deadlock));
        }
        why.join(", ")
    });
    Cell {
        places,
        outcome,
        finding: r.findings.first().map(|f| f.title()),
        loss,
        tried: true,
        broken: broken(r),
    }
}

/// What run `r` broke: its accounts, or its buffer's invariants.
pub fn broken(r: &RunReport) -> Option<String> {
    let a = &r.accounts;
    if !a.balanced() {
        return Some(format!(
            "the accounts do not add up: attempted {} = stored {} + dropped {} + lost {}, stored {} = readable {} + overwritten {} + unfinished {} + merged {}",
            a.attempted, a.stored, a.dropped, a.lost_in_deadlock, a.stored, a.readable, a.overwritten, a.unfinished, a.merged
        ));
    }
    r.invariant_violation
        .as_ref()
        .map(|v| format!("the buffer's invariant is broken: {v}"))
}

/// The places of `design` on the explored CPUs, from its census `passes`,
/// and the (point, CPU) pairs a CPU never passed.
fn places(
    design: &DesignInfo,
    passes: &[Pass],
    cpus: &[usize],
    nr_cpus: usize,
) -> (Vec<Place>, Vec<(Point, usize)>) {
    let mut places = Vec::new();
    let mut unseen = Vec::new();
    for point in listed(design) {
        let here = |cpu: usize, context: Context| {
            passes
                .iter()
                .any(|p| p.point == point && p.cpu == cpu && p.context == context)
        };
        let printer = (0..Context::ALL.len())
            .filter_map(|i| Context::ALL.get(i).copied())
            .any(|c| here(nr_cpus, c));
        for &cpu in cpus {
            let before = places.len();
            for context in [Context::Task, Context::Softirq, Context::Hardirq] {
                if here(cpu, context) {
                    places.push(Place {
                        point,
                        cpu,
                        at: Where::Cpu(context),
                    });
                }
            }
            if printer {
                places.push(Place {
                    point,
                    cpu,
                    at: Where::Printer,
                });
            }
            if places.len() == before {
                unseen.push((point, cpu));
            }
        }
    }
    (places, unseen)
}

/// The points `design` lists, each once, in catalogue order (a point may
/// stand in more than one of its groups).
fn listed(design: &DesignInfo) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for u in design.points() {
        if !out.contains(&u.point) {
            out.push(u.point);
        }
    }
    out
}

/// `count` distinct indices of `0..total`, seeded (all of them, in order,
/// if they fit).
pub fn sample(total: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..total).collect();
    if count >= total {
        return all;
    }
    let mut rng = Rng::new(seed);
    for i in 0..count {
        let j = rng.range((i, total - 1));
        all.swap(i, j);
    }
    all.truncate(count);
    all.sort_unstable();
    all
}

/// The chance that a sample of `tried` of `total` pairs contains at least
/// one of `k` failing pairs: 1 − C(total−k, tried) / C(total, tried).
pub fn chance_to_hit(total: usize, tried: usize, k: usize) -> f64 {
    if tried >= total || k == 0 {
        return if k == 0 { 0.0 } else { 1.0 };
    }
    let mut miss = 1.0;
    for i in 0..k.min(total) {
        miss *= (total - tried).saturating_sub(i) as f64 / (total - i) as f64;
    }
    1.0 - miss
}

/// What `explore` keeps of its work as it goes, and finds again when it
/// carries on: a shard's `--jsonl` file and progress bar, or nothing
/// (`()`, the report card's).
pub trait Ledger {
    /// The census of `design` taken before, and its run's wall-clock ms.
    fn census(&mut self, _design: &'static DesignInfo) -> Option<(Census, f64)> {
        None
    }

    /// The cell of `design` at `places` tried before, and its run's ms.
    fn cell(&mut self, _design: &str, _places: &[Place]) -> Option<(Cell, f64)> {
        None
    }

    /// A census was taken.
    fn took_census(&mut self, _census: &Census, _wall_ms: f64) -> Result<(), String> {
        Ok(())
    }

    /// A cell of `design` was tried (`done` of `total` of the design's).
    fn tried(
        &mut self,
        _design: &str,
        _done: usize,
        _total: usize,
        _cell: &Cell,
        _wall_ms: f64,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// Keeps nothing.
impl Ledger for () {}

/// Explore every design of `req`, telling `ledger` of every census and
/// cell (and taking again from it what it kept).
pub fn explore(req: &ExploreRequest, ledger: &mut dyn Ledger) -> Result<Exploration, String> {
    let mut out = Exploration::of(req);
    let stop = || runner::interrupted().load(std::sync::atomic::Ordering::Relaxed);
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
    for &design in &req.designs {
        let (census, wall) = match ledger.census(design) {
            Some(kept) => kept,
            None => {
                let t = std::time::Instant::now();
                let census = req.census(design)?;
                if stop() {
                    // Cut short by Ctrl-C: not a census to keep.
                    out.interrupted = true;
                    break;
                }
                ledger.took_census(&census, ms(t))?;
                (census, ms(t))
            }
        };
        out.runs += 1;
        out.wall_s += wall / 1e3;
        let mut cells = Vec::new();
        for (i, places) in census.todo.iter().enumerate() {
            let (cell, wall) = match ledger.cell(design.name, places) {
                Some(kept) => kept,
                None if stop() => {
                    out.interrupted = true;
                    break;
                }
                None => {
                    let t = std::time::Instant::now();
                    let cell = req.try_cell(design, places)?;
                    if stop() {
                        // Cut short by Ctrl-C: its outcome is not the
                        // cell's; neither kept nor shown.
                        out.interrupted = true;
                        break;
                    }
                    ledger.tried(design.name, i + 1, census.todo.len(), &cell, ms(t))?;
                    (cell, ms(t))
                }
            };
            out.runs += 1;
            out.wall_s += wall / 1e3;
            cells.push(cell);
        }
        out.designs.push(assemble(&census, cells));
        if out.interrupted {
            break;
        }
    }
    Ok(out)
}

impl Exploration {
    /// An exploration of `req` with nothing done yet.
    pub fn of(req: &ExploreRequest) -> Exploration {
        Exploration {
            scenario: req.plan.name.clone(),
            seed: req.plan.seed,
            action: action_name(req.action),
            depth: req.depth,
            cpus: req.cpus.clone(),
            designs: Vec::new(),
            runs: 0,
            wall_s: 0.0,
            interrupted: false,
        }
    }
}

/// One design's exploration from its census and the cells tried (single
/// places and pairs, in any order): the `not reached` cells of what the
/// census never saw added, the points reached, the cells in catalogue
/// order.
pub fn assemble(census: &Census, tried: Vec<Cell>) -> DesignExploration {
    let (mut cells, pairs): (Vec<Cell>, Vec<Cell>) =
        tried.into_iter().partition(|c| c.places.len() == 1);
    cells.extend(census.unseen.iter().map(|&(point, cpu)| Cell {
        places: vec![Place {
            point,
            cpu,
            at: Where::Cpu(Context::Task),
        }],
        outcome: CellOutcome::NotReached,
        finding: None,
        loss: None,
        tried: false,
        broken: None,
    }));
    let listed = listed(census.design);
    // Reached: some run raised its NMI there.
    let reached = listed
        .iter()
        .copied()
        .filter(|p| {
            cells.iter().any(|c| {
                c.outcome != CellOutcome::NotReached
                    && c.places.first().is_some_and(|pl| pl.point == *p)
            })
        })
        .collect();
    cells.sort_by_key(|c| {
        let p = c.places.first();
        (
            p.map(|p| listed.iter().position(|x| *x == p.point)),
            p.map(|p| p.at),
            p.map(|p| p.cpu),
        )
    });
    DesignExploration {
        design: census.design,
        listed,
        reached,
        baseline: census.baseline,
        cells,
        pairs,
        pairs_total: census.pairs_total,
        pairs_sampled: census.pairs_sampled,
    }
}

/// The command-line word for an NMI action explore places.
pub fn action_name(a: NmiAction) -> &'static str {
    match a {
        NmiAction::Printk { .. } => "printk",
        NmiAction::Backtrace { .. } => "backtrace",
        NmiAction::Warn => "warn",
        NmiAction::Panic { .. } => "panic",
        NmiAction::BacktraceAll(_) => "backtrace_all",
        NmiAction::Hang => "hang",
        NmiAction::Nothing => "none",
    }
}

/// The command-line word `name` as the `'static` one reports use
/// (`printk` for a word explore does not place).
pub fn action_by_name(name: &str) -> &'static str {
    ["printk", "backtrace", "warn", "panic"]
        .into_iter()
        .find(|a| *a == name)
        .unwrap_or("printk")
}

impl DesignExploration {
    /// The worst outcome of any cell at `point`.
    pub fn worst_at(&self, point: Point) -> CellOutcome {
        self.cells
            .iter()
            .filter(|c| c.places.first().is_some_and(|p| p.point == point))
            .map(|c| c.outcome)
            .filter(|o| *o != CellOutcome::NotReached)
            .max()
            .unwrap_or(CellOutcome::NotReached)
    }

    /// The pairs that fail worse than either of their NMIs alone: what
    /// only two NMIs at once find.
    pub fn pairs_worse_than_singles(&self) -> Vec<&Cell> {
        let alone = |p: &Place| {
            self.cells
                .iter()
                .find(|c| c.places.first() == Some(p))
                .map_or(CellOutcome::Clean, |c| c.outcome)
        };
        self.pairs
            .iter()
            .filter(|pair| {
                let worst_alone = pair
                    .places
                    .iter()
                    .map(alone)
                    .filter(|o| *o != CellOutcome::NotReached)
                    .max()
                    .unwrap_or(CellOutcome::Clean);
                pair.outcome != CellOutcome::NotReached && pair.outcome > worst_alone
                    || pair.outcome.failed()
                        && pair.outcome == worst_alone
                        && pair.finding.is_some()
                        && pair.places.iter().all(|p| {
                            self.cells
                                .iter()
                                .find(|c| c.places.first() == Some(p))
                                .is_none_or(|c| c.finding != pair.finding)
                        })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_distinct_seeded_and_all_when_it_fits() {
        assert_eq!(sample(5, 10, 1), vec![0, 1, 2, 3, 4]);
        let s = sample(182, 30, 1);
        assert_eq!(s.len(), 30);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        assert!(s.iter().all(|&i| i < 182));
        assert_eq!(s, sample(182, 30, 1), "the seed decides");
        assert_ne!(s, sample(182, 30, 2));
    }

    #[test]
    fn the_chance_to_hit_is_the_hypergeometric_one() {
        // One failing pair: the sampled fraction.
        assert!((chance_to_hit(182, 30, 1) - 30.0 / 182.0).abs() < 1e-12);
        // Two of four, sample of two: 1 - C(2,2)/C(4,2) = 5/6.
        assert!((chance_to_hit(4, 2, 2) - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(chance_to_hit(10, 10, 1), 1.0);
        assert_eq!(chance_to_hit(10, 3, 0), 0.0);
        // More failing pairs than the rest: the sample cannot miss them.
        assert_eq!(chance_to_hit(10, 5, 6), 1.0);
    }
}
