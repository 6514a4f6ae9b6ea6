//! The watchdog: a thread outside the CPUs that finds hard lockups, soft
//! lockups and deadlocks, explains them, and breaks them so that every run
//! ends with a report.
//!
//! Every `threshold / 4` it takes a snapshot of every CPU's context word and
//! published waits and checks:
//!
//! * **deadlock**: a cycle in the wait-for graph over (CPU, context) nodes.
//!   A context that was interrupted points to the context that interrupted
//!   it (it cannot run until that one returns); otherwise a waiting context
//!   points to the owner of the lock it waits for. A cycle is reported once
//!   every wait in it is at least `threshold` old; the classic one is
//!   `cpu0/nmi -> logbuf_lock -> cpu0/task -> cpu0/nmi`.
//! * **hard lockup**: a CPU whose heartbeat (ticks handled) has not moved
//!   for `threshold` while ticks were sent to it;
//! * **soft lockup**: a CPU whose task-context progress has not moved for
//!   `2 × threshold`.
//!
//! A CPU whose chain of waits leads into a cycle is part of that deadlock,
//! not a lockup of its own. `on_deadlock` decides what follows a deadlock:
//! break it (abort the wait of the innermost context in the cycle), stop the
//! run, or leave it spinning. A CPU still spinning a threshold after the
//! run's end (behind a stopped CPU, say) has its wait aborted then, unless
//! deadlocks are left spinning; whatever happens, the hard wall-clock limit
//! ends the run: every wait is aborted and the outcome is `timeout`.
//!
//! The watchdog never calls printk and never takes a lock a CPU can hold.

use core::sync::atomic::Ordering;
use std::time::Duration;

use klog::{Arch, Context};

use crate::machine::cpu::{CpuSample, WaitSample};
use crate::machine::stack::Trace;
use crate::machine::{irq, Machine};

/// What follows a deadlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDeadlock {
    /// Abort the innermost waiter of the cycle; the run goes on.
    Break,
    /// End the run now.
    Stop,
    /// Leave it spinning (to show that it really is endless); the hard
    /// limit ends the run.
    Off,
}

impl OnDeadlock {
    /// The scenario-file word.
    pub fn name(self) -> &'static str {
        match self {
            OnDeadlock::Break => "break",
            OnDeadlock::Stop => "stop",
            OnDeadlock::Off => "off",
        }
    }
}

/// What the watchdog did about a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reported it (a lockup: nothing to break).
    Report,
    /// Aborted the innermost wait of the cycle.
    Break,
    /// Ended the run.
    Stop,
    /// Left it spinning.
    Off,
}

impl Action {
    /// The word reports use.
    pub fn name(self) -> &'static str {
        match self {
            Action::Report => "report",
            Action::Break => "break",
            Action::Stop => "stop",
            Action::Off => "off",
        }
    }
}

impl From<OnDeadlock> for Action {
    fn from(o: OnDeadlock) -> Action {
        match o {
            OnDeadlock::Break => Action::Break,
            OnDeadlock::Stop => Action::Stop,
            OnDeadlock::Off => Action::Off,
        }
    }
}

/// Set when the user pressed Ctrl-C (SIGINT) or sent SIGTERM: the current
/// run stops within one watchdog period and no further run starts.
pub fn interrupted() -> &'static std::sync::Arc<std::sync::atomic::AtomicBool> {
    static FLAG: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    FLAG.get_or_init(Default::default)
}

/// The watchdog's policy for one run.
#[derive(Clone, Debug)]
pub struct WatchdogConfig {
    /// The lockup threshold (the kernel's `watchdog_thresh`, scaled).
    pub threshold_ns: u64,
    /// What to do about a deadlock.
    pub on_deadlock: OnDeadlock,
    /// When the run ends normally.
    pub duration_ns: u64,
    /// When the run is ended whatever happens (outcome `timeout`).
    pub hard_limit_ns: u64,
    /// End the run this long after every `at_point` source has fired,
    /// if that comes before `duration_ns` (explore and reduce: what one
    /// placed NMI does is done by then); at once if one never can.
    pub settle_ns: Option<u64>,
    /// The release whose watchdog rules apply (the soft lockup repeats
    /// from about 5.11).
    pub kernel: klog::Kernel,
}

/// The kinds of findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingKind {
    /// A cycle in the wait-for graph.
    Deadlock,
    /// Heartbeat stopped while ticks were sent.
    HardLockup,
    /// Task-context progress stopped.
    SoftLockup,
}

impl FindingKind {
    /// The JSON word.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Deadlock => "deadlock",
            FindingKind::HardLockup => "hard_lockup",
            FindingKind::SoftLockup => "soft_lockup",
        }
    }

    /// The words a finding's title starts with.
    pub fn title(self) -> &'static str {
        match self {
            FindingKind::Deadlock => "deadlock",
            FindingKind::HardLockup => "hard lockup",
            FindingKind::SoftLockup => "soft lockup",
        }
    }
}

/// One finding.
#[derive(Clone, Debug)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// The CPU: for a deadlock, the waiter the watchdog acts on.
    pub cpu: usize,
    /// Its context.
    pub context: Context,
    /// The lock it waits for.
    pub lock: Option<&'static str>,
    /// Who holds that lock.
    pub holder_cpu: Option<usize>,
    /// In which context.
    pub holder_context: Option<Context>,
    /// Where the holder acquired it.
    pub point: Option<&'static str>,
    /// From the start of the cycle (or stall) to detection, ms.
    pub detected_after_ms: f64,
    /// When it was detected, ms since the run started.
    pub at_ms: f64,
    /// The cycle, alternating nodes and locks, starting at `cpu/context`.
    pub cycle: Vec<String>,
    /// CPUs stuck behind the cycle.
    pub blocked_behind: Vec<usize>,
    /// Spins of the waiter when it was found.
    pub spins: u64,
    /// What the watchdog did.
    pub action: Action,
    /// Shadow stacks of the CPUs involved.
    pub stacks: Vec<(usize, Trace)>,
}

impl Finding {
    /// A title that names the bug and not the run, the same whichever CPU
    /// or moment it happened on (as syzbot titles its crashes): "deadlock:
    /// logbuf_lock in NMI at console_unlock:logbuf_locked". `run --repeat`
    /// groups findings by it; explore and reduce compare by it.
    pub fn title(&self) -> String {
        let context = match self.context {
            Context::Nmi => "NMI",
            c => c.name(),
        };
        // A cycle through more than one lock names them all.
        let mut locks: Vec<&str> = Vec::new();
        // The cycle alternates nodes ("cpu0/nmi") and locks; two nodes in
        // a row are an interruption.
        let node = |e: &str| {
            e.strip_prefix("cpu")
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        for l in self.cycle.iter().filter(|e| !node(e)) {
            if !locks.contains(&l.as_str()) {
                locks.push(l);
            }
        }
        if self.kind == FindingKind::Deadlock && locks.len() > 1 {
            // Which CPU's wait is the victim depends on who came first:
            // the locks in name order, and no point, keep the title one.
            locks.sort_unstable();
            return format!("deadlock: {} in {context}", locks.join(" and "));
        }
        let mut t = match (self.kind, self.lock) {
            (FindingKind::Deadlock, Some(lock)) => format!("deadlock: {lock} in {context}"),
            (kind, Some(lock)) => format!("{}: {context} on {lock}", kind.title()),
            (kind, None) => format!("{}: {context}", kind.title()),
        };
        if let Some(point) = self.point {
            t.push_str(" at ");
            t.push_str(point);
        }
        t
    }
}

/// A wait still spinning when the run was ended (the hard limit, or a
/// threshold after its end).
#[derive(Clone, Debug, PartialEq)]
pub struct Stuck {
    /// The waiting CPU.
    pub cpu: usize,
    /// Its context.
    pub context: Context,
    /// The lock.
    pub lock: &'static str,
    /// How long it had been waiting, ms.
    pub waiting_ms: f64,
    /// How many times it had spun.
    pub spins: u64,
}

/// What the watchdog saw in one run.
#[derive(Clone, Debug, Default)]
pub struct WatchdogReport {
    /// Findings in the order found.
    pub findings: Vec<Finding>,
    /// The hard limit ended the run.
    pub timed_out: bool,
    /// Waits still spinning when the run was ended.
    pub stuck: Vec<Stuck>,
    /// The user interrupted the run.
    pub interrupted: bool,
    /// When the last CPU stopped, ms.
    pub ended_ms: f64,
}

type Wait = WaitSample;

type Node = (usize, u8);

/// Every CPU as sampled at one moment of a period.
struct Snapshot {
    active: Vec<[bool; 4]>,
    waits: Vec<[Option<Wait>; 4]>,
    cpus: Vec<CpuSample>,
}

impl Snapshot {
    fn take(m: &Machine) -> Snapshot {
        let cpus: Vec<CpuSample> = m.cpus().iter().map(|c| c.sample()).collect();
        Snapshot {
            active: cpus.iter().map(|c| c.active).collect(),
            waits: cpus.iter().map(|c| c.waits).collect(),
            cpus,
        }
    }

    fn wait(&self, (cpu, level): Node) -> Option<Wait> {
        self.waits
            .get(cpu)?
            .get(usize::from(level))
            .copied()
            .flatten()
    }

    fn top(&self, cpu: usize) -> Node {
        let level = self
            .active
            .get(cpu)
            .and_then(|a| a.iter().rposition(|&x| x))
            .unwrap_or(0);
        (cpu, level as u8)
    }

    /// The node `node` cannot run without, and the lock in between if it is
    /// a wait.
    fn next(&self, m: &Machine, (cpu, level): Node) -> Option<(Node, Option<&'static str>)> {
        let active = self.active.get(cpu)?;
        for above in usize::from(level) + 1..4 {
            if active.get(above) == Some(&true) {
                return Some(((cpu, above as u8), None));
            }
        }
        let w = self.wait((cpu, level))?;
        let lock = m.lock_by_id(w.lock)?;
        let owner = lock.owner()?;
        Some(((owner.cpu, owner.context.level()), Some(lock.name())))
    }

    /// Follow `start` until a node repeats; the cycle it ends in, if any.
    /// Follow `cpu`'s waits (its top context waits for a lock, the lock's
    /// holder CPU's top context waits for another...) to the CPU at the
    /// end: the one that is not waiting, or `cpu` itself if the chain
    /// loops back.
    fn chain_root(&self, m: &Machine, cpu: usize) -> usize {
        let mut at = cpu;
        for _ in 0..self.waits.len() {
            let Some(owner) = self
                .wait(self.top(at))
                .and_then(|w| m.lock_by_id(w.lock))
                .and_then(|l| l.owner())
            else {
                return at;
            };
            if owner.cpu == at || owner.cpu == cpu {
                return cpu;
            }
            at = owner.cpu;
        }
        cpu
    }

    fn cycle_from(&self, m: &Machine, start: Node) -> Option<Vec<Node>> {
        let mut path = vec![start];
        let mut node = start;
        for _ in 0..self.active.len() * 4 + 1 {
            let (next, _) = self.next(m, node)?;
            if let Some(i) = path.iter().position(|&n| n == next) {
                return Some(path.split_off(i));
            }
            path.push(next);
            node = next;
        }
        None
    }
}

fn node_name((cpu, level): Node) -> String {
    format!("cpu{cpu}/{}", Context::from_level(level))
}

#[derive(Clone, Copy, Default)]
struct CpuWatch {
    heartbeat: u64,
    heartbeat_at: u64,
    ticks_at: u64,
    progress: u64,
    progress_at: u64,
    hard_reported: bool,
    /// When the current soft lockup was last reported.
    soft_reported_at: Option<u64>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// A finding due this period: the CPU, its kind, since when.
type Due = (usize, FindingKind, u64);

/// The watchdog's state through one run.
struct Watcher<'a> {
    m: &'a Machine,
    cfg: &'a WatchdogConfig,
    /// Told of every finding as it is made (the splat on stderr).
    on_finding: &'a (dyn Fn(&Finding) + Sync),
    report: WatchdogReport,
    watch: Vec<CpuWatch>,
    /// Deadlock victims already reported: CPU, level, wait number.
    reported: Vec<(usize, u8, u64)>,
    /// When every wait was aborted, if it was.
    aborted_at: Option<std::time::Instant>,
    /// When the run ends: `duration_ns`, or sooner once the placed
    /// sources have settled.
    end_ns: u64,
}

/// Watch `m` until every CPU has stopped, telling `on_finding` of each
/// finding as it is made.
pub fn watch(
    m: &Machine,
    cfg: &WatchdogConfig,
    on_finding: &(dyn Fn(&Finding) + Sync),
) -> WatchdogReport {
    irq::block_interrupts();
    let period = Duration::from_nanos((cfg.threshold_ns / 4).clamp(500_000, 50_000_000));
    let mut w = Watcher {
        m,
        cfg,
        on_finding,
        report: WatchdogReport::default(),
        watch: vec![CpuWatch::default(); m.cpus().len()],
        reported: Vec::new(),
        aborted_at: None,
        end_ns: cfg.duration_ns,
    };
    loop {
        w.nap(period);
        let now = m.now_ns();
        if m.cpus().iter().all(|c| c.has_exited()) {
            w.report.ended_ms = ms(now);
            break;
        }
        if let Some(t) = w.aborted_at {
            w.check_stopped(t);
            continue;
        }
        let snap = Snapshot::take(m);
        if w.end_if_due(&snap, now) {
            continue;
        }
        let in_chain = w.deadlocks(&snap, now);
        let due = w.lockups_due(&snap, now, &in_chain);
        w.report_lockups(&snap, now, &due);
    }
    w.report
}

impl Watcher<'_> {
    /// Sleep one period, but wake within a millisecond when the run's end
    /// comes due or every CPU has exited: a run lasts its duration, not
    /// its duration rounded up to the next period (up to 50 ms, which was
    /// most of a short run's cost in `--repeat` and `explore`).
    fn nap(&self, period: Duration) {
        const SLICE: Duration = Duration::from_millis(1);
        let t0 = std::time::Instant::now();
        loop {
            let left = period.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(SLICE));
            let due = !self.m.stopping() && self.m.now_ns() >= self.end_ns;
            if due || self.m.cpus().iter().all(|c| c.has_exited()) {
                return;
            }
        }
    }

    /// Every wait was aborted at `t`: the CPUs must stop within 20 s (a
    /// loaded host may keep a thread off its core for a while), or the
    /// simulator itself is broken: the process says which CPUs, where,
    /// and exits rather than hang.
    fn check_stopped(&self, t: std::time::Instant) {
        if t.elapsed() <= Duration::from_secs(20) {
            return;
        }
        let mut msg = String::from(
            "printk-sim: internal error: CPUs did not stop 20 s after every wait was aborted:\n",
        );
        for (i, c) in self.m.cpus().iter().enumerate() {
            if c.has_exited() {
                continue;
            }
            let sample = c.sample();
            msg += &format!(
                "  cpu{i}: contexts {:?}, waits {:?}, stack {:?}\n",
                sample.active,
                sample.waits.map(|w| w.map(|w| w.lock)),
                c.trace().frames
            );
        }
        // Straight to the process's stderr: a test harness captures
        // eprintln!, and this process is about to exit.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
        std::process::exit(1);
    }

    /// Stop every CPU and abort every wait.
    fn abort_all(&mut self) {
        self.m.abort_everything();
        self.aborted_at = Some(std::time::Instant::now());
    }

    /// End the run when it is due: the hard limit ends any run (outcome
    /// `timeout`); unless told to leave deadlocks spinning, a run whose CPUs
    /// still spin a threshold after its end is ended the same way, its
    /// findings standing; Ctrl-C ends it now. True if it was ended.
    fn end_if_due(&mut self, snap: &Snapshot, now: u64) -> bool {
        let (m, cfg) = (self.m, self.cfg);
        if let Some(settle) = cfg.settle_ns {
            let placed = m.injector();
            if self.end_ns == cfg.duration_ns {
                if placed.placed_missed() {
                    // What was to be placed never will be: nothing to wait for.
                    self.end_ns = cfg.duration_ns.min(now);
                } else if placed.placed_done() {
                    self.end_ns = cfg.duration_ns.min(now.saturating_add(settle));
                }
            }
        }
        let over = cfg.on_deadlock != OnDeadlock::Off
            && now >= self.end_ns.saturating_add(cfg.threshold_ns);
        if now >= cfg.hard_limit_ns || over {
            self.report.timed_out = now >= cfg.hard_limit_ns;
            for (cpu, waits) in snap.waits.iter().enumerate() {
                for (level, w) in waits.iter().enumerate() {
                    if let Some(w) = w {
                        self.report.stuck.push(Stuck {
                            cpu,
                            context: Context::from_level(level as u8),
                            lock: m.lock_by_id(w.lock).map_or("?", |l| l.name()),
                            waiting_ms: ms(now.saturating_sub(w.since)),
                            spins: w.spins,
                        });
                    }
                }
            }
            self.abort_all();
            return true;
        }
        if now >= self.end_ns {
            m.end_run();
        }
        if interrupted().load(Ordering::Relaxed) && !self.report.interrupted {
            self.report.interrupted = true;
            self.abort_all();
            return true;
        }
        false
    }

    /// Report and act on every cycle whose newest wait is a threshold old;
    /// per CPU, whether it is in a cycle.
    fn deadlocks(&mut self, snap: &Snapshot, now: u64) -> Vec<bool> {
        let m = self.m;
        let mut in_chain = vec![false; m.cpus().len()];
        let mut cycles: Vec<Vec<Node>> = Vec::new();
        for (cpu, chained) in in_chain.iter_mut().enumerate() {
            if let Some(cycle) = snap.cycle_from(m, snap.top(cpu)) {
                *chained = true;
                let mut key = cycle.clone();
                key.sort_unstable();
                if !cycles.iter().any(|c| {
                    let mut k = c.clone();
                    k.sort_unstable();
                    k == key
                }) {
                    cycles.push(cycle);
                }
            }
        }
        for cycle in &cycles {
            self.deadlock(snap, cycle, now);
        }
        in_chain
    }

    /// One cycle: found once its newest wait is a threshold old, its
    /// innermost wait (the highest level) the victim.
    fn deadlock(&mut self, snap: &Snapshot, cycle: &[Node], now: u64) {
        let (m, cfg) = (self.m, self.cfg);
        let waits: Vec<(Node, Wait)> = cycle
            .iter()
            .filter_map(|&n| snap.wait(n).map(|w| (n, w)))
            .collect();
        let Some(newest) = waits.iter().map(|(_, w)| w.since).max() else {
            return;
        };
        if now.saturating_sub(newest) < cfg.threshold_ns {
            return;
        }
        let Some(&(victim, vw)) = waits
            .iter()
            .max_by_key(|((cpu, level), _)| (*level, core::cmp::Reverse(*cpu)))
        else {
            return;
        };
        if self.reported.contains(&(victim.0, victim.1, vw.seq)) {
            return;
        }
        self.reported.push((victim.0, victim.1, vw.seq));
        let finding = deadlock_finding(m, cfg, snap, cycle, victim, vw, newest, now);
        match cfg.on_deadlock {
            OnDeadlock::Break => {
                if let Some(c) = m.cpus().get(victim.0) {
                    c.abort_wait(Context::from_level(victim.1), vw.seq);
                }
            }
            OnDeadlock::Stop => {
                m.abort_everything();
            }
            OnDeadlock::Off => {}
        }
        self.found(finding);
    }

    /// A finding made: told, then kept.
    fn found(&mut self, f: Finding) {
        (self.on_finding)(&f);
        self.report.findings.push(f);
    }

    /// The lockups due now, CPUs in a cycle left out: a CPU that handled
    /// no timer tick for a threshold (hard), or made no progress in task
    /// context for two (soft).
    fn lockups_due(&mut self, snap: &Snapshot, now: u64, in_chain: &[bool]) -> Vec<Due> {
        let cfg = self.cfg;
        let mut due = Vec::new();
        let cpus = snap.cpus.iter().enumerate();
        for ((cpu, c), w) in cpus.zip(self.watch.iter_mut()) {
            let (hb, ticks, progress) = (c.heartbeat, c.ticks_sent, c.progress);
            if hb != w.heartbeat || w.heartbeat_at == 0 {
                *w = CpuWatch {
                    heartbeat: hb,
                    heartbeat_at: now,
                    ticks_at: ticks,
                    hard_reported: false,
                    ..*w
                };
            }
            if progress != w.progress || w.progress_at == 0 {
                w.progress = progress;
                w.progress_at = now;
                w.soft_reported_at = None;
            }
            if !c.online || in_chain.get(cpu) == Some(&true) {
                continue;
            }
            if !w.hard_reported
                && now.saturating_sub(w.heartbeat_at) >= cfg.threshold_ns
                && ticks.saturating_sub(w.ticks_at) >= 2
            {
                w.hard_reported = true;
                due.push((cpu, FindingKind::HardLockup, w.heartbeat_at));
            }
            // The soft-lockup check runs in the CPU's own timer interrupt
            // (watchdog_timer_fn(), hardirq context): a CPU with interrupts
            // off cannot report it (that is the hard-lockup detector's
            // case). Reported once per lockup, or (about 5.11 on) again
            // every further 2 x threshold while it lasts.
            let timer_runs = now.saturating_sub(w.heartbeat_at) < cfg.threshold_ns / 2;
            let stuck = now.saturating_sub(w.progress_at);
            let due_soft = match w.soft_reported_at {
                None => stuck >= 2 * cfg.threshold_ns,
                Some(at) => {
                    cfg.kernel.soft_lockup_repeats()
                        && now.saturating_sub(at) >= 2 * cfg.threshold_ns
                }
            };
            if due_soft && timer_runs {
                w.soft_reported_at = Some(now);
                due.push((cpu, FindingKind::SoftLockup, w.progress_at));
            }
        }
        due
    }

    /// A lockup finding for `cpu`, stuck since `since`.
    fn lockup(&self, snap: &Snapshot, now: u64, (cpu, kind, since): Due) -> Finding {
        let top = snap.top(cpu);
        let wait = snap.wait(top);
        let mut f = finding(self.m, kind, top, wait.map(|w| w.lock), since, now);
        f.spins = wait.map_or(0, |w| w.spins);
        f.stacks = self
            .m
            .cpus()
            .get(cpu)
            .map(|c| vec![(cpu, c.trace())])
            .unwrap_or_default();
        f
    }

    /// Report the lockups due: a CPU spinning on a lock whose holder is
    /// itself locked up (or stopped) is part of that CPU's lockup, listed
    /// behind it rather than reported on its own.
    fn report_lockups(&mut self, snap: &Snapshot, now: u64, due: &[Due]) {
        let m = self.m;
        let roots: Vec<usize> = due
            .iter()
            .map(|&(cpu, ..)| snap.chain_root(m, cpu))
            .collect();
        let is_root = |cpu: usize, kind: FindingKind| {
            due.iter()
                .zip(&roots)
                .any(|(&(c, k, _), &r)| c == cpu && k == kind && r == cpu)
        };
        let mut fresh: Vec<Finding> = Vec::new();
        let mut behind: Vec<(Due, usize)> = Vec::new();
        for (&d, &root) in due.iter().zip(&roots) {
            let (cpu, kind, _) = d;
            let root_stuck = root != cpu
                && (is_root(root, kind)
                    || self
                        .report
                        .findings
                        .iter()
                        .any(|f| f.kind == kind && f.cpu == root)
                    || m.cpus().get(root).is_some_and(|c| !c.is_online()));
            if root_stuck {
                behind.push((d, root));
            } else {
                fresh.push(self.lockup(snap, now, d));
            }
        }
        for (d, root) in behind {
            let target = fresh
                .iter_mut()
                .chain(self.report.findings.iter_mut())
                .find(|f| f.kind == d.1 && f.cpu == root);
            match target {
                Some(f) => f.blocked_behind.push(d.0),
                // Behind a stopped CPU, which has no finding of its own.
                None => fresh.push(self.lockup(snap, now, d)),
            }
        }
        for f in fresh {
            self.found(f);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn deadlock_finding(
    m: &Machine,
    cfg: &WatchdogConfig,
    snap: &Snapshot,
    cycle: &[Node],
    victim: Node,
    vw: Wait,
    started: u64,
    now: u64,
) -> Finding {
    // The cycle as text, from the victim round to it again.
    let mut text = Vec::new();
    let mut node = victim;
    for _ in 0..=cycle.len() {
        text.push(node_name(node));
        let Some((next, label)) = snap.next(m, node) else {
            break;
        };
        if let Some(label) = label {
            text.push(label.to_string());
        }
        if next == victim {
            break;
        }
        node = next;
    }
    let mut cpus: Vec<usize> = cycle.iter().map(|n| n.0).collect();
    cpus.sort_unstable();
    cpus.dedup();
    let blocked_behind: Vec<usize> = (0..m.cpus().len())
        .filter(|c| !cpus.contains(c))
        .filter(|&c| {
            snap.cycle_from(m, snap.top(c))
                .is_some_and(|cy| cy.iter().any(|n| cycle.contains(n)))
        })
        .collect();
    Finding {
        cycle: text,
        blocked_behind,
        spins: vw.spins,
        action: cfg.on_deadlock.into(),
        stacks: cpus
            .iter()
            .filter_map(|&c| m.cpus().get(c).map(|s| (c, s.trace())))
            .collect(),
        ..finding(
            m,
            FindingKind::Deadlock,
            victim,
            Some(vw.lock),
            started,
            now,
        )
    }
}

/// A finding of `kind` about `node` (a CPU and its context level), waiting
/// on lock `lock_id` (if any) since `since`: the lock, its holder and where
/// the holder took it; no cycle, stacks or spins yet.
fn finding(
    m: &Machine,
    kind: FindingKind,
    (cpu, level): Node,
    lock_id: Option<usize>,
    since: u64,
    now: u64,
) -> Finding {
    let lock = lock_id.and_then(|id| m.lock_by_id(id));
    let owner = lock.and_then(|l| l.owner());
    Finding {
        kind,
        cpu,
        context: Context::from_level(level),
        lock: lock.map(|l| l.name()),
        holder_cpu: owner.map(|o| o.cpu),
        holder_context: owner.map(|o| o.context),
        point: owner.and_then(|o| o.point).map(|p| p.name),
        detected_after_ms: ms(now.saturating_sub(since)),
        at_ms: ms(now),
        cycle: Vec::new(),
        blocked_behind: Vec::new(),
        spins: 0,
        action: Action::Report,
        stacks: Vec::new(),
    }
}
