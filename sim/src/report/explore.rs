//! Explore's reports: per design a verdict, the matrix of points × CPUs
//! and the coverage (text); the same as JSON; the matrices as a heat map
//! (SVG).

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::explore::{chance_to_hit, Cell, CellOutcome, DesignExploration, Exploration, Place};
use crate::report::layout::{paint, wrap};

fn style(o: CellOutcome) -> Style {
    let colour = match o {
        CellOutcome::Clean => AnsiColor::Green,
        CellOutcome::Loss => AnsiColor::Yellow,
        CellOutcome::NotReached => return Style::new().dimmed(),
        _ => AnsiColor::Red,
    };
    Style::new().fg_color(Some(colour.into()))
}

/// The points whose worst cell came to `o`.
fn points_with(d: &DesignExploration, o: CellOutcome) -> Vec<&'static str> {
    d.reached
        .iter()
        .filter(|p| d.worst_at(**p) == o)
        .map(|p| p.name)
        .collect()
}

/// The design's verdict in one line: "NMI-safe at all 19 points reached",
/// or "deadlocks at 2 of 19: a, b; loses messages at 1 of 19: c".
pub fn verdict(d: &DesignExploration) -> String {
    let n = d.reached.len();
    let mut parts = Vec::new();
    for (o, verb) in [
        (CellOutcome::Timeout, "times out"),
        (CellOutcome::Deadlock, "deadlocks"),
        (CellOutcome::Lockup, "locks up"),
        (CellOutcome::Loss, "loses messages"),
    ] {
        let at = points_with(d, o);
        if !at.is_empty() {
            parts.push(format!("{verb} at {} of {n}: {}", at.len(), at.join(", ")));
        }
    }
    if parts.is_empty() {
        if n == 0 {
            "no point reached: nothing explored".to_string()
        } else {
            format!("NMI-safe at all {n} points reached")
        }
    } else {
        parts.join("; ")
    }
}

/// The coverage line: "7 of 7 points reached", and which never were.
pub fn coverage(d: &DesignExploration) -> String {
    let never: Vec<&str> = d
        .listed
        .iter()
        .filter(|p| !d.reached.contains(p))
        .map(|p| p.name)
        .collect();
    let mut s = format!(
        "coverage: {} of {} points reached",
        d.reached.len(),
        d.listed.len()
    );
    if !never.is_empty() {
        let _ = write!(
            s,
            "; never reached here: {} (a scenario that never passes a point cannot say what an NMI there does)",
            never.join(", ")
        );
    }
    s
}

/// `text` as an indented paragraph: `first` spaces before its first line,
/// `rest` before the others.
fn para(text: &str, width: usize, first: usize, rest: usize) -> String {
    let mut s = " ".repeat(first);
    s += &crate::report::layout::wrap_from(text, first, width, rest);
    s.push('\n');
    s
}

fn place_words(p: &Place) -> String {
    format!("cpu{} at {} ({})", p.cpu, p.point.name, p.at.name())
}

/// The table on stdout.
pub fn render(x: &Exploration, width: usize) -> String {
    let mut s = String::new();
    let cpus: Vec<String> = x.cpus.iter().map(|c| c.to_string()).collect();
    s += &wrap(
        &format!(
            "explore {} (seed {}): an NMI ({}) at every point each design passes, on CPUs {}{}",
            x.scenario,
            x.seed,
            x.action,
            cpus.join(", "),
            if x.depth >= 2 {
                ", and pairs of NMIs"
            } else {
                ""
            }
        ),
        width,
        2,
    );
    s.push('\n');
    let name_w = x
        .designs
        .iter()
        .map(|d| d.design.name.len())
        .max()
        .unwrap_or(0);
    for d in &x.designs {
        let head = format!("{:w$}  ", format!("{}:", d.design.name), w = name_w + 1);
        s += &head;
        s += &crate::report::layout::wrap_from(&verdict(d), head.len(), width, head.len());
        s.push('\n');
    }
    for d in &x.designs {
        s.push('\n');
        s += &matrix(x, d, width);
        if x.depth >= 2 {
            s += &pairs(x, d, width);
        }
    }
    let _ = writeln!(
        s,
        "\n{} runs in {:.1} s ({:.1} runs/s){}",
        x.runs,
        x.wall_s,
        x.runs as f64 / x.wall_s.max(1e-9),
        if x.interrupted {
            "; interrupted by Ctrl-C, the rest not tried"
        } else {
            ""
        }
    );
    s
}

/// One row of a design's matrix: a point, where it was passed, and per
/// explored CPU the outcome of its cell (`None`: no cell).
pub type Row = (String, String, Vec<Option<CellOutcome>>);

/// The rows of one design's matrix: a row per point and context; a CPU that
/// never passed the point shows `not reached` in the point's first row.
pub fn rows(x: &Exploration, d: &DesignExploration) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for c in &d.cells {
        let Some(p) = c.places.first() else {
            continue;
        };
        let point = p.point.name;
        // A CPU the census never saw pass the point has a cell of its own
        // in the point's first row; every run's cell is in its context's.
        let i = if !c.tried {
            rows.iter().position(|r| r.0 == point)
        } else {
            let at = p.at.name();
            let i = rows
                .iter()
                .position(|r| r.0 == point && r.1 == at)
                .or_else(|| rows.iter().position(|r| r.0 == point && r.1 == "-"));
            if let Some(r) = i.and_then(|i| rows.get_mut(i)) {
                r.1 = at.to_string();
            }
            i
        };
        let i = i.unwrap_or_else(|| {
            let at = if c.tried { p.at.name() } else { "-" };
            rows.push((point.to_string(), at.to_string(), vec![None; x.cpus.len()]));
            rows.len() - 1
        });
        let col = x.cpus.iter().position(|&cpu| cpu == p.cpu);
        if let (Some(r), Some(col)) = (rows.get_mut(i), col) {
            if let Some(slot) = r.2.get_mut(col) {
                if c.tried || slot.is_none() {
                    *slot = Some(c.outcome);
                }
            }
        }
    }
    rows
}

/// One design's matrix, coverage, losses and findings.
pub fn matrix(x: &Exploration, d: &DesignExploration, width: usize) -> String {
    let mut s = format!("{} (messages of {}):\n", d.design.name, d.design.kernel);
    let rows = rows(x, d);
    let point_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(5).max(5);
    let where_w = rows.iter().map(|r| r.1.len()).max().unwrap_or(7).max(7);
    let col_w = 11;
    let _ = write!(s, "  {:point_w$}  {:where_w$}", "point", "context");
    for c in &x.cpus {
        let _ = write!(s, "  {:col_w$}", format!("cpu{c}"));
    }
    s.truncate(s.trim_end().len());
    s.push('\n');
    for (point, at, cells) in &rows {
        let _ = write!(s, "  {point:point_w$}  {at:where_w$}");
        for c in cells {
            let (word, st) = match c {
                Some(o) => (o.name(), style(*o)),
                None => ("-", Style::new().dimmed()),
            };
            let _ = write!(s, "  {}{}", paint(word, st), " ".repeat(col_w - word.len()));
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
    }
    s += &para(&coverage(d), width, 2, 4);
    if d.baseline != CellOutcome::Clean {
        s += &para(
            &format!(
                "without any NMI this scenario already ends {} on {}: cells share that",
                d.baseline.name(),
                d.design.name
            ),
            width,
            2,
            4,
        );
    }
    let mut losses: Vec<String> = Vec::new();
    for c in d.cells.iter().filter(|c| c.loss.is_some()) {
        if let (Some(p), Some(l)) = (c.places.first(), &c.loss) {
            let w = format!("{} ({})", p.point.name, l);
            if !losses.contains(&w) {
                losses.push(w);
            }
        }
    }
    if !losses.is_empty() {
        s += &para(&format!("losses: {}", losses.join("; ")), width, 2, 4);
    }
    let mut titles: Vec<String> = Vec::new();
    for c in &d.cells {
        if let Some(t) = &c.finding {
            if !titles.contains(t) {
                titles.push(t.clone());
            }
        }
    }
    for t in titles {
        s += &para(&format!("finding: {t}"), width, 2, 4);
    }
    s
}

fn pairs(x: &Exploration, d: &DesignExploration, width: usize) -> String {
    let tried = d.pairs.len();
    let total = d.pairs_total;
    let reached = d
        .pairs
        .iter()
        .filter(|c| c.outcome != CellOutcome::NotReached)
        .count();
    let mut s = if tried >= total {
        format!("  pairs: all {total} tried, {reached} reached")
    } else if !d.pairs_sampled {
        format!("  pairs: interrupted after {tried} of {total}, {reached} reached")
    } else {
        let p = |k| 100.0 * chance_to_hit(total, tried, k);
        format!(
            "  pairs: {tried} of {total} tried (a sample seeded with {}), {reached} reached; a failure that k of the {total} pairs show is in the sample with probability 1 - C({total}-k, {tried})/C({total}, {tried}): {:.0}% for k = 1, {:.0}% for k = 5, {:.0}% for k = 20",
            x.seed,
            p(1),
            p(5),
            p(20)
        )
    };
    let worse = d.pairs_worse_than_singles();
    if worse.is_empty() {
        s += "; none fails worse than its NMIs alone";
        return para(s.trim_start(), width, 2, 4);
    }
    let _ = write!(
        s,
        "; {} fail worse than their NMIs alone (or with another finding):",
        worse.len()
    );
    let mut out = para(s.trim_start(), width, 2, 4);
    let mut groups: Vec<(String, Vec<&Cell>)> = Vec::new();
    for c in worse {
        let key = c
            .finding
            .clone()
            .unwrap_or_else(|| c.outcome.name().to_string());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some(g) => g.1.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    for (title, cells) in groups {
        let first = cells.first().map_or(String::new(), |c| {
            c.places
                .iter()
                .map(place_words)
                .collect::<Vec<_>>()
                .join(" + ")
        });
        out += &para(
            &format!(
                "{title}: {} pair{}, e.g. {first}",
                cells.len(),
                if cells.len() == 1 { "" } else { "s" }
            ),
            width,
            4,
            6,
        );
    }
    out
}

#[derive(Serialize)]
struct JsonPlace {
    point: &'static str,
    cpu: usize,
    context: &'static str,
}

#[derive(Serialize)]
struct JsonCell {
    point: &'static str,
    cpu: usize,
    context: Option<&'static str>,
    outcome: &'static str,
    finding: Option<String>,
    loss: Option<String>,
}

#[derive(Serialize)]
struct JsonPair {
    first: JsonPlace,
    second: JsonPlace,
    outcome: &'static str,
    finding: Option<String>,
    worse_than_alone: bool,
}

#[derive(Serialize)]
struct JsonDesign {
    design: &'static str,
    verdict: String,
    listed: usize,
    reached: usize,
    never_reached: Vec<&'static str>,
    baseline: &'static str,
    cells: Vec<JsonCell>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs_total: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs_tried: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs: Option<Vec<JsonPair>>,
}

#[derive(Serialize)]
struct JsonExploration<'a> {
    scenario: &'a str,
    seed: u64,
    action: &'static str,
    depth: u8,
    cpus: &'a [usize],
    runs: usize,
    wall_s: f64,
    interrupted: bool,
    designs: Vec<JsonDesign>,
}

fn json_place(p: &Place) -> JsonPlace {
    JsonPlace {
        point: p.point.name,
        cpu: p.cpu,
        context: p.at.name(),
    }
}

/// The JSON report (docs/JSON.md, "explore").
pub fn json(x: &Exploration) -> String {
    let designs = x
        .designs
        .iter()
        .map(|d| {
            let worse = d.pairs_worse_than_singles();
            JsonDesign {
                design: d.design.name,
                verdict: verdict(d),
                listed: d.listed.len(),
                reached: d.reached.len(),
                never_reached: d
                    .listed
                    .iter()
                    .filter(|p| !d.reached.contains(p))
                    .map(|p| p.name)
                    .collect(),
                baseline: d.baseline.name(),
                cells: d
                    .cells
                    .iter()
                    .filter_map(|c| {
                        let p = c.places.first()?;
                        Some(JsonCell {
                            point: p.point.name,
                            cpu: p.cpu,
                            context: c.tried.then(|| p.at.name()),
                            outcome: c.outcome.name(),
                            finding: c.finding.clone(),
                            loss: c.loss.clone(),
                        })
                    })
                    .collect(),
                pairs_total: (x.depth >= 2).then_some(d.pairs_total),
                pairs_tried: (x.depth >= 2).then_some(d.pairs.len()),
                pairs: (x.depth >= 2).then(|| {
                    d.pairs
                        .iter()
                        .filter_map(|c| {
                            let (a, b) = (c.places.first()?, c.places.get(1)?);
                            Some(JsonPair {
                                first: json_place(a),
                                second: json_place(b),
                                outcome: c.outcome.name(),
                                finding: c.finding.clone(),
                                worse_than_alone: worse.iter().any(|w| std::ptr::eq(*w, c)),
                            })
                        })
                        .collect()
                }),
            }
        })
        .collect();
    serde_json::to_string_pretty(&JsonExploration {
        scenario: &x.scenario,
        seed: x.seed,
        action: x.action,
        depth: x.depth,
        cpus: &x.cpus,
        runs: x.runs,
        wall_s: (x.wall_s * 1000.0).round() / 1000.0,
        interrupted: x.interrupted,
        designs,
    })
    .unwrap_or_default()
}

fn fill(o: Option<CellOutcome>) -> &'static str {
    match o {
        Some(CellOutcome::Clean) => "#4caf50",
        Some(CellOutcome::Loss) => "#ffc107",
        Some(CellOutcome::Lockup) => "#ff7043",
        Some(CellOutcome::Deadlock) | Some(CellOutcome::Timeout) => "#d32f2f",
        Some(CellOutcome::NotReached) => "#e0e0e0",
        None => "#ffffff",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// As much of `text` as fits `width` pixels of 10 px monospace (about 6 px
/// a character), escaped.
fn fitted(text: &str, width: f64) -> String {
    let fits = (width / 6.2) as usize;
    if text.chars().count() <= fits {
        return escape(text);
    }
    escape(
        &(text
            .chars()
            .take(fits.saturating_sub(1))
            .collect::<String>()
            + "…"),
    )
}

/// The matrices side by side as a heat map: a column per CPU, a row per
/// point (and context), the worst outcome's colour in each square.
pub fn svg(x: &Exploration) -> String {
    let (cell, label_w, top, gap) = (36.0, 250.0, 60.0, 30.0);
    let mut body = String::new();
    let mut left = 10.0;
    let mut height: f64 = 0.0;
    for d in &x.designs {
        let rows = rows(x, d);
        let _ = write!(
            body,
            r#"<text x="{left}" y="20" font-weight="bold">{}</text><text x="{left}" y="36" font-size="10">{}</text>"#,
            escape(d.design.name),
            fitted(&verdict(d), label_w + x.cpus.len() as f64 * cell)
        );
        for (i, c) in x.cpus.iter().enumerate() {
            let cx = left + label_w + i as f64 * cell + cell / 2.0;
            let _ = write!(
                body,
                r#"<text x="{cx}" y="{}" font-size="10" text-anchor="middle">cpu{c}</text>"#,
                top - 6.0
            );
        }
        for (r, (point, at, cells)) in rows.iter().enumerate() {
            let y = top + r as f64 * cell;
            let _ = write!(
                body,
                r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{} ({})</text>"#,
                left + label_w - 6.0,
                y + cell * 0.7,
                escape(point),
                escape(at)
            );
            for (i, o) in cells.iter().enumerate() {
                let _ = write!(
                    body,
                    r##"<rect x="{}" y="{y}" width="{}" height="{}" fill="{}" stroke="#fff"><title>{}: {} at {} ({}) on cpu{}</title></rect>"##,
                    left + label_w + i as f64 * cell,
                    cell,
                    cell,
                    fill(*o),
                    escape(d.design.name),
                    o.map_or("-", CellOutcome::name),
                    escape(point),
                    escape(at),
                    x.cpus.get(i).copied().unwrap_or(0)
                );
            }
            height = height.max(y + cell);
        }
        left += label_w + x.cpus.len() as f64 * cell + gap;
    }
    let legend_y = height + 24.0;
    let mut legend = String::new();
    for (i, o) in [
        CellOutcome::Deadlock,
        CellOutcome::Lockup,
        CellOutcome::Loss,
        CellOutcome::Clean,
        CellOutcome::NotReached,
    ]
    .into_iter()
    .enumerate()
    {
        let lx = 10.0 + i as f64 * 110.0;
        let _ = write!(
            legend,
            r#"<rect x="{lx}" y="{}" width="14" height="14" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            legend_y - 11.0,
            fill(Some(o)),
            lx + 18.0,
            legend_y,
            o.name()
        );
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="monospace"><rect width="100%" height="100%" fill="#fff"/>{body}{legend}</svg>
"##,
        left.max(560.0),
        legend_y + 12.0
    )
}
