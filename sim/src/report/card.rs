//! The report card of designs graded by the [`crate::lab::Lab`]: a table
//! of every scenario's outcome per design, the graded designs' particulars
//! where they were not clean, their explore verdicts and matrices, and
//! what fails them outright; the same as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::explore::Exploration;
use crate::lab::{Card, CardRun};
use crate::outcome::Outcome;
use crate::report::layout::{outcome_style, paint, wrap_from};

fn para(text: &str, width: usize, first: usize, rest: usize) -> String {
    let mut s = " ".repeat(first);
    s += &wrap_from(text, first, width, rest);
    s.push('\n');
    s
}

/// A graded design's grade in one line.
pub fn grade(card: &Card, design: &str) -> String {
    let runs: Vec<&CardRun> = card
        .scenarios
        .iter()
        .flat_map(|s| s.runs.iter())
        .filter(|r| r.graded && r.design == design)
        .collect();
    let count = |o: Outcome| runs.iter().filter(|r| r.outcome == o).count();
    let failures = card.failures.iter().filter(|f| f.design == design).count();
    let mut s = format!(
        "{design}: {} scenarios: {} deadlock, {} lockup, {} timeout, {} loss, {} clean",
        runs.len(),
        count(Outcome::Deadlock),
        count(Outcome::Lockup),
        count(Outcome::Timeout),
        count(Outcome::Loss),
        count(Outcome::Clean)
    );
    for x in &card.explorations {
        if let Some(d) = x.designs.iter().find(|d| d.design.name == design) {
            let _ = write!(
                s,
                "; explore {}: {}",
                x.scenario,
                crate::report::explore::verdict(d)
            );
        }
    }
    if failures > 0 {
        let _ = write!(s, "; FAILS: {failures} broken rule(s), below");
    }
    s
}

/// The card as text for a terminal `width` columns wide.
pub fn render(card: &Card, width: usize) -> String {
    let mut s = String::new();
    for d in &card.graded {
        s += &para(
            &format!("report card: {} ({})", d.name, d.summary),
            width,
            0,
            2,
        );
    }
    s.push('\n');
    s += &table(card);
    for d in &card.graded {
        s.push('\n');
        s += &not_clean(card, d.name, width);
    }
    for x in &card.explorations {
        s.push('\n');
        s += &explore_part(card, x, width);
    }
    s.push('\n');
    if card.failures.is_empty() {
        s += &para(
            "no broken accounts, no broken buffer invariant, no allocation inside an interrupt",
            width,
            0,
            2,
        );
    }
    for f in &card.failures {
        s += &para(
            &format!("FAILS: {} on {}: {}", f.design, f.scenario, f.what),
            width,
            0,
            2,
        );
    }
    for d in &card.graded {
        s += &para(&grade(card, d.name), width, 0, 2);
    }
    s
}

/// Every scenario's outcome per design, a column per design.
fn table(card: &Card) -> String {
    let names = card.design_names();
    let name_w = card
        .scenarios
        .iter()
        .map(|sc| sc.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let col = |d: &str| d.len().max(8);
    let mut s = format!("{:name_w$}", "scenario");
    for d in &names {
        let _ = write!(s, "  {:w$}", d, w = col(d));
    }
    s.push('\n');
    for sc in &card.scenarios {
        let _ = write!(s, "{:name_w$}", sc.name);
        for d in &names {
            let word = match sc.runs.iter().find(|r| r.design == *d) {
                Some(r) if r.outcome != Outcome::Clean => {
                    let upper = r.outcome.name().to_uppercase();
                    let pad = col(d).saturating_sub(upper.len());
                    paint(&upper, outcome_style(r.outcome)) + &" ".repeat(pad)
                }
                Some(r) => format!("{:w$}", r.outcome.name(), w = col(d)),
                None => format!("{:w$}", "-", w = col(d)),
            };
            let _ = write!(s, "  {word}");
        }
        // The last cell's padding (after any colour's end).
        let trimmed = s.trim_end_matches(' ').len();
        s.truncate(trimmed);
        s.push('\n');
    }
    s
}

/// A graded design's runs that were not clean (or broke a lockdep rule):
/// accounts, first finding, lockdep.
fn not_clean(card: &Card, design: &str, width: usize) -> String {
    let mut s = para(&format!("{design} where it was not clean:"), width, 0, 2);
    let mut any = false;
    for sc in &card.scenarios {
        let Some(r) = sc.runs.iter().find(|r| r.graded && r.design == design) else {
            continue;
        };
        if r.outcome == Outcome::Clean && r.lockdep.is_empty() {
            continue;
        }
        any = true;
        let a = &r.accounts;
        let mut line = format!(
            "{}: {}; attempted {}, stored {}, dropped {}, lost {}",
            sc.name,
            r.outcome.name(),
            a.attempted,
            a.stored,
            a.dropped,
            a.lost_in_deadlock
        );
        if let Some(t) = r.findings.first() {
            let _ = write!(line, "; {t}");
        }
        if !r.lockdep.is_empty() {
            let _ = write!(line, "; lockdep: {}", r.lockdep.join(", "));
        }
        s += &para(&line, width, 2, 4);
    }
    if !any {
        s += "  nowhere\n";
    }
    s
}

/// Explore's verdict for every design, and the graded designs' matrices.
fn explore_part(card: &Card, x: &Exploration, width: usize) -> String {
    let mut s = format!(
        "explore {} (an NMI that printks at every point):\n",
        x.scenario
    );
    let name_w = x
        .designs
        .iter()
        .map(|d| d.design.name.len())
        .max()
        .unwrap_or(0)
        + 1;
    for d in &x.designs {
        let head = format!("  {:name_w$}  ", format!("{}:", d.design.name));
        s += &head;
        s += &wrap_from(
            &crate::report::explore::verdict(d),
            head.len(),
            width,
            head.len(),
        );
        s.push('\n');
    }
    let mut graded = x.clone();
    graded
        .designs
        .retain(|d| card.graded.iter().any(|g| g.name == d.design.name));
    for d in &graded.designs {
        s.push('\n');
        s += &crate::report::explore::matrix(&graded, d, width);
    }
    s
}

#[derive(Serialize)]
struct JsonRun<'a> {
    design: &'a str,
    graded: bool,
    outcome: &'static str,
    expected: Option<&'static str>,
    attempted: u64,
    stored: u64,
    dropped: u64,
    lost_in_deadlock: u64,
    findings: &'a [String],
    lockdep: &'a [String],
}

#[derive(Serialize)]
struct JsonScenario<'a> {
    scenario: &'a str,
    runs: Vec<JsonRun<'a>>,
}

#[derive(Serialize)]
struct JsonFailure<'a> {
    design: &'a str,
    scenario: &'a str,
    what: &'a str,
}

#[derive(Serialize)]
struct JsonCard<'a> {
    graded: Vec<&'a str>,
    grades: Vec<String>,
    scenarios: Vec<JsonScenario<'a>>,
    failures: Vec<JsonFailure<'a>>,
    explore: Vec<serde_json::Value>,
}

/// The card as JSON (docs/JSON.md, "The report card").
pub fn json(card: &Card) -> String {
    let v = JsonCard {
        graded: card.graded.iter().map(|d| d.name).collect(),
        grades: card.graded.iter().map(|d| grade(card, d.name)).collect(),
        scenarios: card
            .scenarios
            .iter()
            .map(|sc| JsonScenario {
                scenario: &sc.name,
                runs: sc
                    .runs
                    .iter()
                    .map(|r| JsonRun {
                        design: r.design,
                        graded: r.graded,
                        outcome: r.outcome.name(),
                        expected: r.expected.map(Outcome::name),
                        attempted: r.accounts.attempted,
                        stored: r.accounts.stored,
                        dropped: r.accounts.dropped,
                        lost_in_deadlock: r.accounts.lost_in_deadlock,
                        findings: &r.findings,
                        lockdep: &r.lockdep,
                    })
                    .collect(),
            })
            .collect(),
        failures: card
            .failures
            .iter()
            .map(|f| JsonFailure {
                design: f.design,
                scenario: &f.scenario,
                what: &f.what,
            })
            .collect(),
        explore: card
            .explorations
            .iter()
            .filter_map(|x| serde_json::from_str(&crate::report::explore::json(x)).ok())
            .collect(),
    };
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
