//! Reduce: a seed that failed becomes a scenario that fails every time.
//!
//! The seed's run gives the first finding. When an NMI closed its cycle
//! (the waiter is in NMI context and the lock's holder took it at a named
//! point), the scenario's `[[nmi]]` sources are replaced by one `at_point`
//! NMI where the holder was: at that point, on that CPU, in that context
//! (the lock word knows where its holder acquired it; if the NMI landed
//! in a sliver next to that point, or the lock was taken at no named
//! point, the design's other points are tried).
//! Then, one at a time, `[[irq]]` and `[[task]]` entries, the other
//! `[[nmi]]` entries and the reader are removed, the CPUs cut to the
//! fewest that still fail, and the duration halved, each candidate kept
//! only if it reproduces the finding (the same title) in every one of
//! `checks` runs on different seeds. The result is checked the way a user
//! runs it: `final_runs` runs of the file as written.
//!
//! Candidates are TOML documents: what is written is what was checked.

use klog::printk::DesignInfo;
use klog::Context;
use std::fmt::Write as _;
use toml::{Table, Value};

use crate::explore::SETTLE_THRESHOLDS;
use crate::outcome::RunReport;
use crate::runner;
use crate::scenario::{Overrides, Scenario};
use crate::watchdog::{Finding, OnDeadlock};

/// What reduce was asked to do.
pub struct ReduceRequest<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The design whose run failed.
    pub design: &'static DesignInfo,
    /// The seed that failed.
    pub seed: u64,
    /// Runs per candidate (all must reproduce).
    pub checks: usize,
    /// Runs of the result.
    pub final_runs: usize,
    /// The command line, for the file's header.
    pub command: String,
}

/// What reduce made.
#[derive(Debug)]
pub struct Reduction {
    /// The finding's title.
    pub title: String,
    /// The reduced scenario, with its header.
    pub toml: String,
    /// Of `final_runs` runs, how many reproduced the finding.
    pub reproduced: usize,
    /// The runs of the result.
    pub final_runs: usize,
    /// What was removed or replaced, in order.
    pub removed: Vec<String>,
    /// Runs made in all.
    pub runs: usize,
    /// Whether the NMI could be placed deterministically.
    pub placed: bool,
}

impl Reduction {
    /// Whether the result reproduces in at least 19 of 20 runs (95 %).
    pub fn reliable(&self) -> bool {
        self.reproduced * 20 >= self.final_runs * 19
    }
}

/// Why nothing could be reduced.
#[derive(Debug)]
pub enum ReduceError {
    /// The seed's run found nothing.
    NoFinding(String),
    /// A run could not be made, or a candidate did not parse.
    Internal(String),
}

struct Reducer<'a> {
    req: &'a ReduceRequest<'a>,
    title: String,
    runs: usize,
}

impl Reducer<'_> {
    /// Run `doc` `n` times on seeds from the request's, stopping at the
    /// first run that does not reproduce (`fast`: end each run at its
    /// first finding or soon after its placed NMI). How many reproduced.
    /// A candidate that is not a valid scenario (a cut that left a key
    /// without what it needs) reproduces nothing.
    fn check(&mut self, doc: &Table, n: usize, fast: bool) -> Result<usize, ReduceError> {
        let text = toml::to_string(doc).map_err(|e| ReduceError::Internal(e.to_string()))?;
        let Ok(mut plan) =
            Scenario::parse("(candidate)", &text).and_then(|s| s.plan(&Overrides::default()))
        else {
            return Ok(0);
        };
        if fast {
            plan.on_deadlock = OnDeadlock::Stop;
            plan.settle_ms = Some(SETTLE_THRESHOLDS * plan.threshold_ms);
        }
        let mut good = 0;
        for i in 0..n as u64 {
            let seed = self.req.seed.saturating_add(i);
            let r =
                runner::run(&plan, self.req.design, seed, false).map_err(ReduceError::Internal)?;
            self.runs += 1;
            if !self.reproduces(&r) {
                if fast {
                    break;
                }
                continue;
            }
            good += 1;
        }
        Ok(good)
    }

    fn reproduces(&self, r: &RunReport) -> bool {
        r.findings.iter().any(|f| f.title() == self.title)
    }

    /// Whether `doc` reproduces in every check run.
    fn holds(&mut self, doc: &Table) -> Result<bool, ReduceError> {
        Ok(self.check(doc, self.req.checks, true)? == self.req.checks)
    }
}

fn entries(doc: &Table, key: &str) -> usize {
    doc.get(key)
        .and_then(Value::as_array)
        .map_or(0, |a| a.len())
}

fn without_entry(doc: &Table, key: &str, i: usize) -> Table {
    let mut d = doc.clone();
    if let Some(Value::Array(a)) = d.get_mut(key) {
        if i < a.len() {
            a.remove(i);
        }
        if a.is_empty() {
            d.remove(key);
        }
    }
    d
}

/// The CPUs a selector value names on a machine of `n`.
fn selected(v: &Value, n: usize) -> Option<Vec<usize>> {
    match v {
        Value::Integer(i) => Some(vec![usize::try_from(*i).ok()?]),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_integer().and_then(|i| usize::try_from(i).ok()))
            .collect(),
        Value::String(s) if s == "all" => Some((0..n).collect()),
        Value::String(s) => {
            let (a, b) = s.split_once('-')?;
            let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            Some((a..=b).collect())
        }
        _ => None,
    }
}

/// `doc` on the CPUs `kept` (old numbers, in their new order), every CPU
/// index renumbered; entries left with no CPU are dropped.
fn on_cpus(doc: &Table, n: usize, kept: &[usize]) -> Table {
    let new = |old: usize| kept.iter().position(|&k| k == old);
    let mut d = doc.clone();
    d.insert("cpus".into(), Value::Integer(kept.len() as i64));
    if let Some(Value::Array(tasks)) = d.get_mut("task") {
        tasks.retain_mut(|t| {
            let Some(t) = t.as_table_mut() else {
                return false;
            };
            let all = t.get("cpus").and_then(Value::as_str) == Some("all");
            if all {
                return true;
            }
            let Some(cpus) = t.get("cpus").and_then(|v| selected(v, n)) else {
                return false;
            };
            let mapped: Vec<Value> = cpus
                .into_iter()
                .filter_map(new)
                .map(|c| Value::Integer(c as i64))
                .collect();
            if mapped.is_empty() {
                return false;
            }
            t.insert("cpus".into(), Value::Array(mapped));
            true
        });
    }
    for key in ["nmi", "irq"] {
        let Some(Value::Array(srcs)) = d.get_mut(key) else {
            continue;
        };
        srcs.retain_mut(|s| {
            let Some(s) = s.as_table_mut() else {
                return false;
            };
            for k in ["cpu", "hit_on", "from_cpu"] {
                if let Some(Value::Integer(c)) = s.get(k) {
                    // A source whose CPU is gone goes too.
                    let Some(c) = usize::try_from(*c).ok().and_then(new) else {
                        return false;
                    };
                    s.insert(k.into(), Value::Integer(c as i64));
                }
            }
            true
        });
        if srcs.is_empty() {
            d.remove(key);
        }
    }
    d
}

/// The action keys of the scenario's first `[[nmi]]` entry that reaches
/// `cpu`.
fn action_of(doc: &Table, cpu: usize, n: usize) -> Table {
    let mut out = Table::new();
    let Some(srcs) = doc.get("nmi").and_then(Value::as_array) else {
        return out;
    };
    let reaches = |s: &Table| {
        s.get("cpu")
            .and_then(|v| selected(v, n))
            .is_some_and(|c| c.contains(&cpu))
    };
    if let Some(s) = srcs
        .iter()
        .filter_map(Value::as_table)
        .find(|s| reaches(s))
        .or_else(|| srcs.iter().filter_map(Value::as_table).next())
    {
        // Kinds that are their own action place the NMI their targets
        // take: a backtrace's for an all-CPU backtrace or a stall report
        // (serialised or not), a panic's for a panic.
        match s.get("kind").and_then(Value::as_str) {
            Some("backtrace_all" | "rcu_stall") => {
                out.insert("action".into(), Value::String("backtrace".into()));
                if let Some(v) = s.get("serialize") {
                    out.insert("serialize".into(), v.clone());
                }
            }
            Some("panic") => {
                out.insert("action".into(), Value::String("panic".into()));
            }
            _ => {
                for k in ["action", "lines", "len", "level", "serialize", "stop_at"] {
                    if let Some(v) = s.get(k) {
                        out.insert(k.into(), v.clone());
                    }
                }
            }
        }
    }
    out
}

/// The `at_point` NMI that replaces the scenario's own: at `point`, raised
/// by `hit_on` passing it in `context`, landing on `cpu`.
fn placed_nmi(point: &str, cpu: usize, hit_on: usize, context: Context, action: &Table) -> Table {
    let mut t = Table::new();
    t.insert("kind".into(), Value::String("at_point".into()));
    t.insert("point".into(), Value::String(point.into()));
    t.insert("cpu".into(), Value::Integer(cpu as i64));
    if hit_on != cpu {
        t.insert("hit_on".into(), Value::Integer(hit_on as i64));
        t.insert("wait".into(), Value::Boolean(true));
    }
    t.insert("context".into(), Value::String(context.name().into()));
    t.insert("times".into(), Value::Integer(1));
    for (k, v) in action {
        t.insert(k.clone(), v.clone());
    }
    t
}

/// Reduce the request's failing seed.
pub fn reduce(req: &ReduceRequest<'_>) -> Result<Reduction, ReduceError> {
    let design = req.design;
    let plan = req
        .scenario
        .plan(&Overrides {
            designs: vec![design.name.to_string()],
            seed: Some(req.seed),
            ..Overrides::default()
        })
        .map_err(|e| ReduceError::Internal(e.to_string()))?;
    let first = runner::run(&plan, design, req.seed, false).map_err(ReduceError::Internal)?;
    let Some(f) = first.findings.first().cloned() else {
        return Err(ReduceError::NoFinding(format!(
            "seed {} of {} on {} ends {} with no finding: nothing to reduce",
            req.seed,
            plan.name,
            design.name,
            first.outcome.name()
        )));
    };
    let mut r = Reducer {
        req,
        title: f.title(),
        runs: 1,
    };
    let mut doc: Table = toml::from_str(req.scenario.text())
        .map_err(|e| ReduceError::Internal(format!("re-reading the scenario: {e}")))?;
    let n = plan.cpus;
    doc.insert(
        "name".into(),
        Value::String(format!("{}-{}-seed{}", plan.name, design.name, req.seed)),
    );
    doc.insert(
        "summary".into(),
        Value::String(format!("Reduced: {}", r.title)),
    );
    doc.insert(
        "designs".into(),
        Value::Array(vec![Value::String(design.name.into())]),
    );
    doc.insert("seed".into(), Value::Integer(req.seed as i64));
    let mut expect = Table::new();
    expect.insert(
        design.name.into(),
        Value::String(first.outcome.name().into()),
    );
    doc.insert("expect".into(), Value::Table(expect));
    let mut removed = Vec::new();
    let mut involved = vec![f.cpu];
    if let Some(h) = f.holder_cpu.filter(|h| *h < n && *h != f.cpu) {
        involved.push(h);
    }
    let placed = place(&mut r, &mut doc, &f, design, n, &mut removed, &mut involved)?;
    drop_entries(&mut r, &mut doc, placed, &mut removed)?;
    // The placement may have cut the machine already.
    let n_now = doc
        .get("cpus")
        .and_then(Value::as_integer)
        .and_then(|c| usize::try_from(c).ok())
        .unwrap_or(n);
    fewer_cpus(&mut r, &mut doc, n_now, &involved, &mut removed)?;
    shorter(&mut r, &mut doc, &mut removed)?;
    let reproduced = r.check(&doc, req.final_runs, false)?;
    let body = toml::to_string(&doc).map_err(|e| ReduceError::Internal(e.to_string()))?;
    let mut header = format!("# Reduced by `{}`\n", req.command);
    let file = req.scenario.file();
    let _ = writeln!(
        header,
        "# from {file} (seed {}, design {}).",
        req.seed, design.name
    );
    let _ = writeln!(header, "# The finding: {}", r.title);
    for line in &removed {
        let _ = writeln!(header, "# - {line}");
    }
    let last = req.seed.saturating_add(req.final_runs as u64 - 1);
    let _ = writeln!(
        header,
        "# Reproduces in {reproduced} of {} runs (seeds {}..={last}).\n",
        req.final_runs, req.seed
    );
    Ok(Reduction {
        title: r.title,
        toml: header + &body,
        reproduced,
        final_runs: req.final_runs,
        removed,
        runs: r.runs,
        placed,
    })
}

/// Replace the `[[nmi]]` sources with one placed NMI, if the finding was
/// an NMI's and a placement reproduces it.
fn place(
    r: &mut Reducer<'_>,
    doc: &mut Table,
    f: &Finding,
    design: &DesignInfo,
    n: usize,
    removed: &mut Vec<String>,
    involved: &mut Vec<usize>,
) -> Result<bool, ReduceError> {
    let (Some(holder), Some(ctx)) = (f.holder_cpu, f.holder_context) else {
        return Ok(false);
    };
    if f.context != Context::Nmi || ctx == Context::Nmi || entries(doc, "nmi") == 0 {
        return Ok(false);
    }
    let action = action_of(doc, f.cpu, n);
    // Where the holder took the lock first (a lock taken at no named
    // point, like a semaphore's own spinlock, has none), then the rest.
    let mut points: Vec<&str> = f.point.into_iter().collect();
    for u in design.points() {
        if !points.contains(&u.point.name) {
            points.push(u.point.name);
        }
    }
    // The CPUs the placed NMI needs: on a busy machine another CPU may
    // keep them from ever passing the point (the console owner prints
    // everybody's records), so each placement is also tried on them alone.
    let mut needed = vec![f.cpu];
    if holder != f.cpu {
        needed.push(holder);
    }
    for p in points {
        let mut candidate = doc.clone();
        candidate.insert(
            "nmi".into(),
            Value::Array(vec![Value::Table(placed_nmi(
                p, f.cpu, holder, ctx, &action,
            ))]),
        );
        let placed = format!(
            "the [[nmi]] sources, replaced by one NMI at {p} on CPU {} (raised when CPU {holder} passes it in {ctx} context)",
            f.cpu
        );
        let (chosen, cut) = if r.holds(&candidate)? {
            (candidate, false)
        } else if needed.len() < n && r.holds(&on_cpus(&candidate, n, &needed))? {
            (on_cpus(&candidate, n, &needed), true)
        } else {
            continue;
        };
        removed.push(placed);
        if cut {
            removed.push(cpus_cut(n, &needed));
            involved.clear();
            involved.extend(0..needed.len());
        } else if !involved.contains(&holder) {
            involved.push(holder);
        }
        *doc = chosen;
        return Ok(true);
    }
    Ok(false)
}

/// Remove every entry the finding does not need, one at a time.
fn drop_entries(
    r: &mut Reducer<'_>,
    doc: &mut Table,
    placed: bool,
    removed: &mut Vec<String>,
) -> Result<(), ReduceError> {
    let mut keys = vec!["irq"];
    if !placed {
        keys.push("nmi");
    }
    keys.push("task");
    for key in keys {
        let mut i = entries(doc, key);
        while i > 0 {
            i -= 1;
            let candidate = without_entry(doc, key, i);
            if r.holds(&candidate)? {
                removed.push(format!("[[{key}]] entry {i}"));
                *doc = candidate;
            }
        }
    }
    if doc.contains_key("reader") {
        let mut candidate = doc.clone();
        candidate.remove("reader");
        if r.holds(&candidate)? {
            removed.push("[reader]".into());
            *doc = candidate;
        }
    }
    Ok(())
}

/// The fewest CPUs that still fail: the involved ones first.
fn fewer_cpus(
    r: &mut Reducer<'_>,
    doc: &mut Table,
    n: usize,
    involved: &[usize],
    removed: &mut Vec<String>,
) -> Result<(), ReduceError> {
    let mut order: Vec<usize> = involved.to_vec();
    order.extend((0..n).filter(|c| !involved.contains(c)));
    for k in involved.len().max(1)..n {
        let kept = order.get(..k).unwrap_or(&order);
        let candidate = on_cpus(doc, n, kept);
        if r.holds(&candidate)? {
            removed.push(cpus_cut(n, kept));
            *doc = candidate;
            return Ok(());
        }
    }
    Ok(())
}

/// What cutting a machine of `n` CPUs to `kept` is called in the header.
fn cpus_cut(n: usize, kept: &[usize]) -> String {
    let names: Vec<String> = kept.iter().map(|c| c.to_string()).collect();
    format!(
        "CPUs: {n} cut to {} (the old CPUs {}, numbered from 0 in that order)",
        kept.len(),
        names.join(", ")
    )
}

/// Halve the duration while it still fails (not below 10 ms).
fn shorter(
    r: &mut Reducer<'_>,
    doc: &mut Table,
    removed: &mut Vec<String>,
) -> Result<(), ReduceError> {
    let Some(start) = doc.get("duration_ms").and_then(Value::as_integer) else {
        return Ok(());
    };
    let mut d = start;
    while d / 2 >= 10 {
        let mut candidate = doc.clone();
        candidate.insert("duration_ms".into(), Value::Integer(d / 2));
        if !r.holds(&candidate)? {
            break;
        }
        d /= 2;
        *doc = candidate;
    }
    if d != start {
        removed.push(format!("duration: {start} ms cut to {d} ms"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_renumbering() {
        assert_eq!(
            selected(&Value::String("1-3".into()), 4),
            Some(vec![1, 2, 3])
        );
        assert_eq!(selected(&Value::String("all".into()), 2), Some(vec![0, 1]));
        let doc: Table = toml::from_str(
            "cpus = 3\n[[task]]\ncpus = [0, 2]\n[[task]]\ncpus = 1\n[[nmi]]\nkind = \"periodic\"\ncpu = 1\nperiod_us = 100\n",
        )
        .unwrap();
        let d = on_cpus(&doc, 3, &[2]);
        assert_eq!(d["cpus"].as_integer(), Some(1));
        let tasks = d["task"].as_array().unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0]["cpus"], Value::Array(vec![Value::Integer(0)]));
        assert!(d.get("nmi").is_none(), "its CPU is gone, so is the source");
    }
}
