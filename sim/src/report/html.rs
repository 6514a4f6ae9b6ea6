//! One self-contained HTML page per report (`run --html`, `explore
//! --html`, the report card's `--html`): tables, the SVG pictures inline,
//! the splats and lockdep's reports, explain's narration. No network
//! access, no external file: the page someone attaches to a bug report.
//!
//! The markup is well-formed XML (XHTML served as HTML), so that a test
//! without a browser can still parse every page; the one script only marks
//! the page as loaded, so a browser test can tell that scripts ran without
//! an error.

use std::fmt::Write as _;

use crate::explore::{CellOutcome, Exploration};
use crate::lab::Card;
use crate::outcome::{Outcome, RunReport, Tally};
use crate::report::splat::{splat, Splat};
use crate::report::table::RatesHead;
use crate::scenario::Plan;

/// `text` with `&`, `<`, `>` and `"` escaped, and any terminal colour
/// escapes dropped.
pub fn escape(text: &str) -> String {
    let plain: String = anstream::adapter::strip_str(text)
        .to_string()
        .chars()
        // XML allows no other control character.
        .map(|c| {
            if c < ' ' && !matches!(c, '\t' | '\n' | '\r') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    plain
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}\
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
h3{font-size:1.05em}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right;font-family:monospace}\
td:first-child,th:first-child{text-align:left}\
pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}\
.deadlock,.timeout{background:#f8d0d0;font-weight:bold}.lockup{background:#fbe0c8;font-weight:bold}\
.loss{background:#fff2c0}.clean{background:#e3f4e3}.notreached{color:#999}\
svg{max-width:100%;height:auto;border:1px solid #eee}pre.explain{white-space:pre-wrap}";

/// A whole page around `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>\
<title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n{body}\n\
<p><small>printk-sim {v}</small></p>\
<script>document.body.setAttribute('data-loaded', 'yes');</script></body></html>\n",
        t = escape(title),
        v = env!("CARGO_PKG_VERSION"),
    )
}

/// An SVG picture made by printk-sim, inline (without its XML prolog),
/// its element ids prefixed with `prefix` so that two pictures on a page
/// never share one.
fn inline_svg(svg: &str, prefix: &str) -> String {
    let svg = match svg.find("<svg") {
        Some(i) => svg.get(i..).unwrap_or(svg),
        None => svg,
    };
    svg.replace(" id=\"", &format!(" id=\"{prefix}-"))
        .replace("url(#", &format!("url(#{prefix}-"))
        .replace("href=\"#", &format!("href=\"#{prefix}-"))
}

/// `text` as an id: letters, digits, `-` and `_` kept, the rest `_`.
fn id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn class(o: Outcome) -> &'static str {
    o.name()
}

fn cell_class(o: CellOutcome) -> &'static str {
    match o {
        CellOutcome::NotReached => "notreached",
        o => o.name(),
    }
}

fn table(head: &[String], rows: &[Vec<(String, &str)>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s += "</tr></thead><tbody>";
    for row in rows {
        s += "<tr>";
        for (text, class) in row {
            if class.is_empty() {
                let _ = write!(s, "<td>{}</td>", escape(text));
            } else {
                let _ = write!(s, "<td class=\"{class}\">{}</td>", escape(text));
            }
        }
        s += "</tr>";
    }
    s + "</tbody></table>\n"
}

/// The page of `run --repeat` (and of `merge` on its shards): the rates
/// table and the distinct findings.
pub fn rates_page(head: &RatesHead, runs: &[Tally]) -> String {
    let body = format!(
        "<pre class=\"rates\">{}</pre>\n",
        escape(&crate::report::table::render_rates(head, runs, 120))
    );
    page(
        &format!("printk-sim: {}, {} runs", head.scenario, runs.len()),
        &body,
    )
}

/// The page of a `run`: verdicts, the table, each design's timeline, the
/// findings with their splats and lockdep's reports, explain's narration
/// of the design that found something.
pub fn run_page(plan: &Plan, runs: &[RunReport]) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p>{} ({} CPUs, {} ms, seed {}). {}</p>",
        escape(&plan.name),
        plan.cpus,
        plan.duration_ms,
        plan.seed,
        escape(&plan.summary)
    );
    let _ = writeln!(
        b,
        "<pre class=\"verdicts\">{}</pre>",
        escape(&crate::report::verdict::render(runs, 100))
    );
    let head: Vec<String> = [
        "design",
        "outcome",
        "attempted",
        "stored",
        "dropped",
        "lost",
        "printed",
        "nmis",
        "findings",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<(String, &str)>> = runs
        .iter()
        .map(|r| {
            let a = &r.accounts;
            vec![
                (r.design.to_string(), ""),
                (r.outcome.name().to_string(), class(r.outcome)),
                (a.attempted.to_string(), ""),
                (a.stored.to_string(), ""),
                (a.dropped.to_string(), ""),
                (a.lost_in_deadlock.to_string(), ""),
                (a.printed.to_string(), ""),
                (r.nmis.iter().sum::<u64>().to_string(), ""),
                (
                    r.findings
                        .iter()
                        .map(|f| f.title())
                        .collect::<Vec<_>>()
                        .join("; "),
                    "",
                ),
            ]
        })
        .collect();
    b += "<h2>Side by side</h2>\n";
    b += &table(&head, &rows);
    b += "<h2>Timelines</h2>\n";
    for r in runs {
        let title = format!("{} on {}, seed {}", r.design, plan.name, r.seed);
        let anchor = id(&format!("timeline-{}-{}", r.design, r.seed));
        let _ = writeln!(
            b,
            "<h3 id=\"{anchor}\">{}, seed {}</h3><div class=\"timeline\">{}</div>",
            escape(r.design),
            r.seed,
            inline_svg(&crate::report::timeline::svg(r, &title), &anchor)
        );
    }
    b += &findings(plan, runs);
    let focus = runs
        .iter()
        .find(|r| !r.findings.is_empty())
        .or(runs.first());
    if let Some(r) = focus {
        let _ = writeln!(
            b,
            "<h2>What happened on {}</h2><pre class=\"explain\">{}</pre>",
            escape(r.design),
            escape(&crate::report::explain::explain(plan, runs, r.design))
        );
    }
    page(&format!("printk-sim: {}", plan.name), &b)
}

/// The findings of every run: each watchdog finding's splat and each
/// lockdep report, as the kernel's words.
fn findings(plan: &Plan, runs: &[RunReport]) -> String {
    let mut b = String::new();
    b += "<h2>Findings</h2>\n";
    let mut any = false;
    for r in runs {
        let how = Splat {
            label: format!("{} on {}, seed {}", r.design, plan.name, r.seed),
            kernel: r_kernel(r),
            time_scale: plan.time_scale,
        };
        for f in &r.findings {
            any = true;
            let _ = writeln!(
                b,
                "<h3>{}: {}</h3><pre class=\"splat\">{}</pre>",
                escape(r.design),
                escape(&f.title()),
                escape(&splat(f, &how))
            );
        }
        for l in &r.lockdep {
            any = true;
            let _ = writeln!(
                b,
                "<h3>{}: lockdep {} on {}</h3><pre class=\"lockdep\">{}</pre>",
                escape(r.design),
                escape(l.rule.name()),
                escape(l.lock),
                escape(&l.report)
            );
        }
    }
    if !any {
        b += "<p>None: no deadlock, no lockup, no lockdep rule broken.</p>\n";
    }
    b
}

fn r_kernel(r: &RunReport) -> klog::Kernel {
    klog::printk::design(r.design).map_or(klog::Kernel::new(6, 12), |d| d.kernel)
}

/// An exploration's matrices as HTML tables, one per design.
fn explore_tables(x: &Exploration) -> String {
    let mut b = String::new();
    for d in &x.designs {
        let _ = writeln!(
            b,
            "<h3 id=\"{}\">{}: {}</h3>",
            id(&format!("explore-{}-{}", x.scenario, d.design.name)),
            escape(d.design.name),
            escape(&crate::report::explore::verdict(d)),
        );
        let mut head = vec!["point".to_string(), "context".to_string()];
        head.extend(x.cpus.iter().map(|c| format!("cpu{c}")));
        let rows: Vec<Vec<(String, &str)>> = crate::report::explore::rows(x, d)
            .into_iter()
            .map(|(point, at, cells)| {
                let mut row = vec![(point, ""), (at, "")];
                row.extend(cells.into_iter().map(|c| match c {
                    Some(o) => (o.name().to_string(), cell_class(o)),
                    None => ("-".to_string(), ""),
                }));
                row
            })
            .collect();
        b += &table(&head, &rows);
        let _ = writeln!(b, "<p>{}</p>", escape(&crate::report::explore::coverage(d)));
    }
    b
}

/// The page of an `explore`: verdicts, the matrices, the heat map.
pub fn explore_page(x: &Exploration) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p>An NMI ({}) at every point each design passes, on CPUs {:?}, seed {}; {} runs in {:.1} s.</p>",
        x.action, x.cpus, x.seed, x.runs, x.wall_s
    );
    b += "<h2>Heat map</h2>\n";
    let _ = writeln!(
        b,
        "<div class=\"heatmap\">{}</div>",
        inline_svg(&crate::report::explore::svg(x), "heatmap")
    );
    b += "<h2>Matrices</h2>\n";
    b += &explore_tables(x);
    page(&format!("printk-sim explore: {}", x.scenario), &b)
}

/// The report card's page.
pub fn card_page(card: &Card) -> String {
    let mut b = String::new();
    for d in &card.graded {
        let _ = writeln!(
            b,
            "<p><b>{}</b>: {}</p><p>{}</p>",
            escape(d.name),
            escape(d.summary),
            escape(&crate::report::card::grade(card, d.name))
        );
    }
    let names = card.design_names();
    let mut head = vec!["scenario".to_string()];
    head.extend(names.iter().map(|n| n.to_string()));
    let rows: Vec<Vec<(String, &str)>> = card
        .scenarios
        .iter()
        .map(|sc| {
            let mut row = vec![(sc.name.clone(), "")];
            row.extend(
                names
                    .iter()
                    .map(|n| match sc.runs.iter().find(|r| r.design == *n) {
                        Some(r) => (r.outcome.name().to_string(), class(r.outcome)),
                        None => ("-".to_string(), ""),
                    }),
            );
            row
        })
        .collect();
    b += "<h2>Scenarios</h2>\n";
    b += &table(&head, &rows);
    if card.failures.is_empty() {
        b += "<p>No broken accounts, no broken buffer invariant, no allocation inside an interrupt.</p>\n";
    } else {
        b += "<h2>Failures</h2><ul>";
        for f in &card.failures {
            let _ = write!(
                b,
                "<li>{} on {}: {}</li>",
                escape(f.design),
                escape(&f.scenario),
                escape(&f.what)
            );
        }
        b += "</ul>\n";
    }
    for x in &card.explorations {
        let _ = writeln!(b, "<h2>Explore {}</h2>", escape(&x.scenario));
        let _ = writeln!(
            b,
            "<div class=\"heatmap\">{}</div>",
            inline_svg(
                &crate::report::explore::svg(x),
                &id(&format!("heatmap-{}", x.scenario))
            )
        );
        b += &explore_tables(x);
    }
    let names: Vec<&str> = card.graded.iter().map(|d| d.name).collect();
    page(&format!("printk-sim report card: {}", names.join(", ")), &b)
}
