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
use std::fmt::Write as _;
use std::time::Duration;

use klog::{Arch, Context};

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
    /// Print each finding as a splat on stderr when it is found.
    pub splat: bool,
    /// The release whose watchdog messages the splats quote.
    pub kernel: klog::Kernel,
    /// The scenario's time scale: the kernel's messages speak kernel time
    /// (real time divided by it).
    pub time_scale: f64,
    /// Names the run in splats (design and seed).
    pub label: String,
}

/// The kinds of findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    pub action: &'static str,
    /// Shadow stacks of the CPUs involved.
    pub stacks: Vec<(usize, Trace)>,
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

#[derive(Clone, Copy, Debug)]
struct Wait {
    lock: usize,
    since: u64,
    seq: u64,
    spins: u64,
}

type Node = (usize, u8);

struct Snapshot {
    active: Vec<[bool; 4]>,
    waits: Vec<[Option<Wait>; 4]>,
}

impl Snapshot {
    fn take(m: &Machine) -> Snapshot {
        let mut active = Vec::with_capacity(m.cpus().len());
        let mut waits = Vec::with_capacity(m.cpus().len());
        for c in m.cpus() {
            let pc = c.preempt_count.load(Ordering::Relaxed);
            active.push([
                true,
                pc & klog::context::SOFTIRQ_MASK != 0,
                klog::context::hardirq_depth(pc) > 0,
                klog::context::nmi_depth(pc) > 0,
            ]);
            waits.push(core::array::from_fn(|level| {
                let slot = &c.waits[level];
                let lock = slot.lock.load(Ordering::Acquire);
                (lock != 0).then(|| Wait {
                    lock,
                    since: slot.since_ns.load(Ordering::Relaxed),
                    seq: slot.seq.load(Ordering::Relaxed),
                    spins: slot.spins.load(Ordering::Relaxed),
                })
            }));
        }
        Snapshot { active, waits }
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

/// Watch `m` until every CPU has stopped.
pub fn watch(m: &Machine, cfg: &WatchdogConfig) -> WatchdogReport {
    irq::block_interrupts();
    let period = Duration::from_nanos((cfg.threshold_ns / 4).clamp(500_000, 50_000_000));
    let mut report = WatchdogReport::default();
    let mut watch = vec![CpuWatch::default(); m.cpus().len()];
    let mut reported: Vec<(usize, u8, u64)> = Vec::new();
    let mut aborted_at: Option<std::time::Instant> = None;
    loop {
        std::thread::sleep(period);
        let now = m.now_ns();
        if m.cpus().iter().all(|c| c.exited.load(Ordering::Acquire)) {
            report.ended_ms = ms(now);
            break;
        }
        if let Some(t) = aborted_at {
            if t.elapsed() > Duration::from_secs(5) {
                let stuck: Vec<usize> = (0..m.cpus().len())
                    .filter(|&i| !m.cpus()[i].exited.load(Ordering::Acquire))
                    .collect();
                eprintln!("printk-sim: internal error: CPUs {stuck:?} did not stop 5 s after every wait was aborted");
                std::process::exit(1);
            }
            continue;
        }
        let snap = Snapshot::take(m);
        // The hard limit ends any run (outcome `timeout`); unless told to
        // leave deadlocks spinning, a run whose CPUs still spin a threshold
        // after its end is ended the same way, its findings standing.
        let over = cfg.on_deadlock != OnDeadlock::Off
            && now >= cfg.duration_ns.saturating_add(cfg.threshold_ns);
        if now >= cfg.hard_limit_ns || over {
            report.timed_out = now >= cfg.hard_limit_ns;
            for (cpu, waits) in snap.waits.iter().enumerate() {
                for (level, w) in waits.iter().enumerate() {
                    if let Some(w) = w {
                        report.stuck.push(Stuck {
                            cpu,
                            context: Context::from_level(level as u8),
                            lock: m.lock_by_id(w.lock).map_or("?", |l| l.name()),
                            waiting_ms: ms(now.saturating_sub(w.since)),
                            spins: w.spins,
                        });
                    }
                }
            }
            m.stop.store(true, Ordering::Release);
            m.abort_all.store(true, Ordering::Release);
            aborted_at = Some(std::time::Instant::now());
            continue;
        }
        if now >= cfg.duration_ns {
            m.stop.store(true, Ordering::Release);
        }
        if crate::runner::interrupted().load(Ordering::Relaxed) && !report.interrupted {
            // Ctrl-C: end the run now, breaking whatever spins.
            report.interrupted = true;
            m.stop.store(true, Ordering::Release);
            m.abort_all.store(true, Ordering::Release);
            aborted_at = Some(std::time::Instant::now());
            continue;
        }

        // Deadlocks.
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
            let waits: Vec<(Node, Wait)> = cycle
                .iter()
                .filter_map(|&n| snap.wait(n).map(|w| (n, w)))
                .collect();
            let Some(newest) = waits.iter().map(|(_, w)| w.since).max() else {
                continue;
            };
            if now.saturating_sub(newest) < cfg.threshold_ns {
                continue;
            }
            let Some(&(victim, vw)) = waits
                .iter()
                .max_by_key(|((cpu, level), _)| (*level, core::cmp::Reverse(*cpu)))
            else {
                continue;
            };
            if reported.contains(&(victim.0, victim.1, vw.seq)) {
                continue;
            }
            reported.push((victim.0, victim.1, vw.seq));
            let finding = deadlock_finding(m, cfg, &snap, cycle, victim, vw, newest, now);
            match cfg.on_deadlock {
                OnDeadlock::Break => {
                    if let Some(c) = m.cpus().get(victim.0) {
                        c.waits[usize::from(victim.1)]
                            .abort
                            .store(vw.seq, Ordering::Release);
                    }
                }
                OnDeadlock::Stop => {
                    m.stop.store(true, Ordering::Release);
                    m.abort_all.store(true, Ordering::Release);
                }
                OnDeadlock::Off => {}
            }
            if cfg.splat {
                eprint!("{}", splat(&finding, cfg));
            }
            report.findings.push(finding);
        }

        // Lockups: first who is stuck, then who is stuck behind whom.
        let mut due: Vec<(usize, FindingKind, u64)> = Vec::new();
        for (cpu, c) in m.cpus().iter().enumerate() {
            let w = &mut watch[cpu];
            let hb = c.heartbeat.load(Ordering::Relaxed);
            let ticks = c.ticks_sent.load(Ordering::Relaxed);
            let progress = c.progress.load(Ordering::Relaxed);
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
            if !c.online.load(Ordering::Acquire) || in_chain[cpu] {
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
        // A CPU spinning on a lock whose holder is itself locked up (or
        // stopped) is part of that CPU's lockup: listed behind it.
        let roots: Vec<usize> = due
            .iter()
            .map(|&(cpu, ..)| snap.chain_root(m, cpu))
            .collect();
        let is_root = |cpu: usize, kind: FindingKind| {
            due.iter()
                .zip(&roots)
                .any(|(&(c, k, _), &r)| c == cpu && k == kind && r == cpu)
        };
        let lockup = |cpu: usize, kind, since: u64| {
            let top = snap.top(cpu);
            let wait = snap.wait(top);
            let lock = wait.and_then(|w| m.lock_by_id(w.lock));
            let owner = lock.and_then(|l| l.owner());
            Finding {
                kind,
                cpu,
                context: Context::from_level(top.1),
                lock: lock.map(|l| l.name()),
                holder_cpu: owner.map(|o| o.cpu),
                holder_context: owner.map(|o| o.context),
                point: owner.and_then(|o| o.point).map(|p| p.name),
                detected_after_ms: ms(now.saturating_sub(since)),
                at_ms: ms(now),
                cycle: Vec::new(),
                blocked_behind: Vec::new(),
                spins: wait.map_or(0, |w| w.spins),
                action: "report",
                stacks: m
                    .cpus()
                    .get(cpu)
                    .map(|c| vec![(cpu, c.stack.trace())])
                    .unwrap_or_default(),
            }
        };
        let mut fresh: Vec<Finding> = Vec::new();
        let mut behind: Vec<(usize, FindingKind, u64, usize)> = Vec::new();
        for (&(cpu, kind, since), &root) in due.iter().zip(&roots) {
            let root_stuck = root != cpu
                && (is_root(root, kind)
                    || report
                        .findings
                        .iter()
                        .any(|f| f.kind == kind && f.cpu == root)
                    || m.cpus()
                        .get(root)
                        .is_some_and(|c| !c.online.load(Ordering::Acquire)));
            if root_stuck {
                behind.push((cpu, kind, since, root));
                continue;
            }
            fresh.push(lockup(cpu, kind, since));
        }
        for (cpu, kind, since, root) in behind {
            let target = fresh
                .iter_mut()
                .chain(report.findings.iter_mut())
                .find(|f| f.kind == kind && f.cpu == root);
            match target {
                Some(f) => f.blocked_behind.push(cpu),
                // Behind a stopped CPU, which has no finding of its own.
                None => fresh.push(lockup(cpu, kind, since)),
            }
        }
        for f in fresh {
            if cfg.splat {
                eprint!("{}", splat(&f, cfg));
            }
            report.findings.push(f);
        }
    }
    report
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
    let lock = m.lock_by_id(vw.lock);
    let owner = lock.and_then(|l| l.owner());
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
        kind: FindingKind::Deadlock,
        cpu: victim.0,
        context: Context::from_level(victim.1),
        lock: lock.map(|l| l.name()),
        holder_cpu: owner.map(|o| o.cpu),
        holder_context: owner.map(|o| o.context),
        point: owner.and_then(|o| o.point).map(|p| p.name),
        detected_after_ms: ms(now.saturating_sub(started)),
        at_ms: ms(now),
        cycle: text,
        blocked_behind,
        spins: vw.spins,
        action: cfg.on_deadlock.name(),
        stacks: cpus
            .iter()
            .filter_map(|&c| m.cpus().get(c).map(|s| (c, s.stack.trace())))
            .collect(),
    }
}

/// A finding as a kernel-style report.
/// The splat for finding `f`: a lockup in the words of `cfg.kernel`'s
/// watchdog, in kernel time, followed by printk-sim's own line in real
/// time; a deadlock in printk-sim's own words (the kernel has no such
/// check), marked as such.
pub fn splat(f: &Finding, cfg: &WatchdogConfig) -> String {
    let label = &cfg.label;
    let mut s = String::new();
    let rule = "=".repeat(60);
    let _ = writeln!(s, "{rule}");
    let me = format!("cpu{}/{}", f.cpu, f.context);
    // The kernel's seconds: real time divided by the time scale.
    let kernel_s = (f.detected_after_ms / 1000.0 / cfg.time_scale.max(1e-9)) as u64;
    let task = format!("printk_workload:{}", 100 + f.cpu);
    match f.kind {
        FindingKind::Deadlock => {
            let _ = writeln!(
                s,
                "printk-sim: WARNING: possible deadlock detected [{label}]"
            );
            let _ = writeln!(
                s,
                "(printk-sim's own report: the kernel has no deadlock check, only its lockup detectors)"
            );
            let _ = writeln!(s, "{}", "-".repeat(60));
            let _ = writeln!(
                s,
                "{me} is trying to acquire lock {} and has spun {} times over {:.1} ms",
                f.lock.unwrap_or("?"),
                f.spins,
                f.detected_after_ms
            );
            if let (Some(hc), Some(hx)) = (f.holder_cpu, f.holder_context) {
                let _ = writeln!(
                    s,
                    "but the lock is held by cpu{hc}/{hx}, acquired at {}",
                    f.point.unwrap_or("an unnamed place")
                );
            }
            let _ = writeln!(s, "and that can never be released:");
            let _ = writeln!(s, "  {}", f.cycle.join(" -> ") + " -> " + &me);
            let _ = writeln!(
                s,
                "(a context points to the lock it waits for, a lock to its holder, a context to the one that interrupted it)"
            );
            if !f.blocked_behind.is_empty() {
                let cpus: Vec<String> =
                    f.blocked_behind.iter().map(|c| format!("cpu{c}")).collect();
                let _ = writeln!(s, "blocked behind it: {}", cpus.join(", "));
            }
        }
        FindingKind::HardLockup => {
            // WARN() before 4.11; pr_emerg() in watchdog_hld.c, later
            // watchdog.c.
            if cfg.kernel.hard_lockup_is_warn() {
                let _ = writeln!(s, "------------[ cut here ]------------");
                let _ = writeln!(
                    s,
                    "WARNING: CPU: {} PID: {} at watchdog_overflow_callback+0x0/0x0",
                    f.cpu,
                    100 + f.cpu
                );
            }
            let _ = writeln!(
                s,
                "{}Watchdog detected hard LOCKUP on cpu {}",
                cfg.kernel.hard_lockup_prefix(),
                f.cpu
            );
            let _ = writeln!(
                s,
                "(printk-sim [{label}]: no timer tick handled on cpu{} for {:.1} ms real time)",
                f.cpu, f.detected_after_ms
            );
            if let Some(l) = f.lock {
                let _ = writeln!(s, "{me} spins on {l} with interrupts off");
            }
        }
        FindingKind::SoftLockup => {
            // watchdog_timer_fn(): "BUG: soft lockup - CPU#%d stuck for
            // %us! [%s:%d]", pr_emerg() with the era's pr_fmt prefix.
            let _ = writeln!(
                s,
                "{}BUG: soft lockup - CPU#{} stuck for {kernel_s}s! [{task}]",
                cfg.kernel.watchdog_prefix(),
                f.cpu
            );
            let _ = writeln!(
                s,
                "(printk-sim [{label}]: no progress on cpu{} for {:.1} ms real time)",
                f.cpu, f.detected_after_ms
            );
        }
    }
    for (cpu, t) in &f.stacks {
        let torn = if t.torn { " (torn)" } else { "" };
        let _ = writeln!(s, "cpu{cpu} call trace{torn}:");
        for frame in t.frames.iter().rev() {
            let _ = writeln!(s, "  {frame}");
        }
    }
    let _ = writeln!(s, "action: {}", f.action);
    let _ = writeln!(s, "{rule}");
    s
}
