//! Timelines of runs: spans and marks rebuilt from the CPUs' events, then
//! written as Chrome trace-event JSON (`--trace`, for Perfetto and
//! chrome://tracing) or as a self-contained SVG picture (`--svg`).

use std::collections::HashMap;
use std::fmt::Write as _;

use klog::Context;

use crate::machine::trace::{Event, Kind};
use crate::outcome::RunReport;

/// What a span shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A hardirq or NMI handler ran.
    Context(Context),
    /// A spinlock was held.
    Hold,
    /// A CPU spun waiting for a lock.
    Spin,
}

/// An interval on one CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// What it is.
    pub kind: SpanKind,
    /// Its label (the context, or the lock).
    pub name: String,
    /// Start, ns since the run started.
    pub start: u64,
    /// End, ns.
    pub end: u64,
}

/// A moment on one CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    /// Its label.
    pub name: String,
    /// When, ns.
    pub ts: u64,
    /// A finding (drawn large) rather than a printk call.
    pub finding: bool,
}

/// One CPU's spans and marks.
#[derive(Clone, Debug, Default)]
pub struct Lane {
    /// Spans, in start order.
    pub spans: Vec<Span>,
    /// Marks, in time order.
    pub marks: Vec<Mark>,
}

impl Span {
    fn new(kind: SpanKind, name: &str, start: u64, end: u64) -> Span {
        Span {
            kind,
            name: name.to_string(),
            start,
            end,
        }
    }
}

/// Rebuild spans from events: enters pair with exits, takes with
/// releases, spin starts with spin ends; whatever is still open at `end`
/// closes there.
pub fn lane(events: &[Event], end: u64) -> Lane {
    let mut lane = Lane::default();
    let mut contexts: Vec<(Context, u64)> = Vec::new();
    let mut holds: HashMap<&'static str, Vec<u64>> = HashMap::new();
    let mut spins: HashMap<&'static str, Vec<u64>> = HashMap::new();
    for e in events {
        match e.kind {
            Kind::Enter(c) => contexts.push((c, e.ts_ns)),
            Kind::Exit(c) => {
                if let Some(i) = contexts.iter().rposition(|(x, _)| *x == c) {
                    let (_, start) = contexts.remove(i);
                    lane.spans
                        .push(Span::new(SpanKind::Context(c), c.name(), start, e.ts_ns));
                }
            }
            Kind::Held(l) => holds.entry(l).or_default().push(e.ts_ns),
            Kind::Released(l) => {
                if let Some(start) = holds.get_mut(l).and_then(Vec::pop) {
                    lane.spans
                        .push(Span::new(SpanKind::Hold, l, start, e.ts_ns));
                }
            }
            Kind::SpinBegin(l) => spins.entry(l).or_default().push(e.ts_ns),
            Kind::SpinEnd(l) => {
                if let Some(start) = spins.get_mut(l).and_then(Vec::pop) {
                    lane.spans
                        .push(Span::new(SpanKind::Spin, l, start, e.ts_ns));
                }
            }
            Kind::Printk(c) => lane.marks.push(Mark {
                name: format!("printk ({c})"),
                ts: e.ts_ns,
                finding: false,
            }),
        }
    }
    for (c, start) in contexts {
        let span = Span::new(SpanKind::Context(c), c.name(), start, end.max(start));
        lane.spans.push(span);
    }
    for (kind, open) in [(SpanKind::Hold, holds), (SpanKind::Spin, spins)] {
        for (l, starts) in open {
            for start in starts {
                lane.spans.push(Span::new(kind, l, start, end.max(start)));
            }
        }
    }
    lane.spans
        .sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    lane
}

/// Every CPU's lane of a run, findings included as marks.
pub fn lanes(r: &RunReport) -> Vec<Lane> {
    let Some(t) = &r.timeline else {
        return Vec::new();
    };
    let mut lanes: Vec<Lane> = t.cpus.iter().map(|ev| lane(ev, t.end_ns)).collect();
    for f in &r.findings {
        if let Some(l) = lanes.get_mut(f.cpu) {
            let lock = f.lock.map(|l| format!(" on {l}")).unwrap_or_default();
            l.marks.push(Mark {
                name: format!("{} cpu{}/{}{lock}", f.kind.name(), f.cpu, f.context),
                ts: (f.at_ms * 1e6) as u64,
                finding: true,
            });
        }
    }
    for l in &mut lanes {
        l.marks.sort_by_key(|m| m.ts);
    }
    lanes
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// Chrome trace-event JSON: a process per design, a thread per CPU;
/// complete events (`X`) for contexts, lock holds and spins; instants for
/// printk calls and findings.
pub fn chrome(runs: &[RunReport]) -> String {
    use serde_json::{json, Value};
    let mut events: Vec<Value> = Vec::new();
    for (pid, r) in runs.iter().enumerate() {
        events.push(
            json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": {"name": format!("{} (seed {})", r.design, r.seed)}}),
        );
        for (cpu, l) in lanes(r).iter().enumerate() {
            events.push(
                json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": cpu,
                "args": {"name": format!("cpu{cpu}")}}),
            );
            for s in &l.spans {
                let cat = match s.kind {
                    SpanKind::Context(_) => "context",
                    SpanKind::Hold => "lock",
                    SpanKind::Spin => "spin",
                };
                let name = match s.kind {
                    SpanKind::Context(_) => s.name.clone(),
                    SpanKind::Hold => format!("holds {}", s.name),
                    SpanKind::Spin => format!("spins on {}", s.name),
                };
                events.push(
                    json!({"name": name, "cat": cat, "ph": "X", "pid": pid, "tid": cpu,
                    "ts": us(s.start), "dur": us(s.end.saturating_sub(s.start))}),
                );
            }
            for m in &l.marks {
                let cat = if m.finding { "finding" } else { "printk" };
                events.push(json!({"name": m.name, "cat": cat, "ph": "i", "s": "t",
                    "pid": pid, "tid": cpu, "ts": us(m.ts)}));
            }
        }
    }
    serde_json::to_string(&json!({"traceEvents": events, "displayTimeUnit": "ms"}))
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A self-contained SVG of one run: one lane per CPU, task context as the
/// lane, hardirq and NMI handlers in their own colours, lock holds and
/// spins as bars, findings marked and labelled, a time axis in ms.
pub fn svg(r: &RunReport, title: &str) -> String {
    let lanes = lanes(r);
    let end = r.timeline.as_ref().map_or(1, |t| t.end_ns.max(1));
    let c = Canvas::new(end);
    let height = TOP + LANE * lanes.len() as f64 + 70.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (i, (colour, label)) in LEGEND.iter().enumerate() {
        let lx = LEFT + 110.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="28" width="12" height="10" fill="{colour}"/><text x="{}" y="37">{label}</text>"#,
            lx + 16.0
        );
    }
    for (cpu, l) in lanes.iter().enumerate() {
        c.lane(&mut s, cpu, l);
    }
    c.axis(&mut s, TOP + LANE * lanes.len() as f64 + 10.0);
    s.push_str("</svg>\n");
    s
}

/// The picture's width, left margin, lane height and top margin.
const W: f64 = 1200.0;
const LEFT: f64 = 70.0;
const LANE: f64 = 56.0;
const TOP: f64 = 48.0;

/// The colours: task, hardirq, NMI, lock held, spinning.
const LEGEND: [(&str, &str); 5] = [
    ("#e8e8e8", "task"),
    ("#f5a623", "hardirq"),
    ("#d0021b", "nmi"),
    ("#4a90e2", "lock held"),
    ("#000000", "spinning"),
];

/// Run time mapped onto the picture's width.
struct Canvas {
    end: u64,
    plot: f64,
    /// Spans closer than a pixel merge, so a long run stays a small file.
    px_ns: u64,
}

impl Canvas {
    fn new(end: u64) -> Canvas {
        let plot = W - LEFT - 20.0;
        Canvas {
            end,
            plot,
            px_ns: (end as f64 / plot).max(1.0) as u64,
        }
    }

    fn x(&self, ns: u64) -> f64 {
        LEFT + self.plot * (ns as f64 / self.end as f64)
    }

    /// The spans of `l` of one kind as bars at height `y`, `h` high.
    fn bars(&self, l: &Lane, kind: SpanKind, y: f64, h: f64, colour: &str) -> String {
        let mut out = String::new();
        let mut flush = |a: u64, b: u64| {
            let w = (self.x(b) - self.x(a)).max(1.0);
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"/>"#,
                self.x(a)
            );
        };
        let mut run: Option<(u64, u64)> = None;
        for sp in l.spans.iter().filter(|sp| sp.kind == kind) {
            run = match run {
                Some((a, b)) if sp.start <= b + self.px_ns => Some((a, b.max(sp.end))),
                Some((a, b)) => {
                    flush(a, b);
                    Some((sp.start, sp.end))
                }
                None => Some((sp.start, sp.end)),
            };
        }
        if let Some((a, b)) = run {
            flush(a, b);
        }
        out
    }

    /// CPU `cpu`'s lane: its interrupts, lock holds, spins and findings.
    fn lane(&self, s: &mut String, cpu: usize, l: &Lane) {
        let y0 = TOP + LANE * cpu as f64;
        let _ = writeln!(
            s,
            r#"<g class="lane" id="cpu{cpu}"><text x="8" y="{}">cpu{cpu}</text><rect x="{LEFT}" y="{}" width="{}" height="{}" fill="{}"/>"#,
            y0 + LANE / 2.0,
            y0 + 6.0,
            self.plot,
            LANE - 16.0,
            LEGEND[0].0
        );
        let (top, full) = (y0 + 6.0, LANE - 16.0);
        s.push_str(&self.bars(
            l,
            SpanKind::Context(Context::Hardirq),
            top,
            full,
            LEGEND[1].0,
        ));
        s.push_str(&self.bars(l, SpanKind::Context(Context::Nmi), top, full, LEGEND[2].0));
        s.push_str(&self.bars(l, SpanKind::Hold, y0 + LANE - 18.0, 6.0, LEGEND[3].0));
        s.push_str(&self.bars(l, SpanKind::Spin, y0 + LANE / 2.0 - 3.0, 6.0, LEGEND[4].0));
        for m in l.marks.iter().filter(|m| m.finding) {
            let mx = self.x(m.ts);
            let _ = write!(
                s,
                r#"<path d="M{mx:.1},{} l-6,-10 l12,0 z" fill="black"/><text x="{:.1}" y="{}" font-weight="bold">{}</text>"#,
                y0 + 6.0,
                mx + 8.0,
                y0 + 16.0,
                esc(&m.name)
            );
        }
        s.push_str("</g>\n");
    }

    /// The time axis at height `ay`, ten ticks in ms.
    fn axis(&self, s: &mut String, ay: f64) {
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{ay}" x2="{}" y2="{ay}" stroke="black"/>"#,
            LEFT + self.plot
        );
        for i in 0..=10 {
            let ns = self.end / 10 * i;
            let tx = self.x(ns);
            let _ = writeln!(
                s,
                r#"<line x1="{tx:.1}" y1="{ay}" x2="{tx:.1}" y2="{}" stroke="black"/><text x="{tx:.1}" y="{}" text-anchor="middle">{:.0} ms</text>"#,
                ay + 5.0,
                ay + 18.0,
                ns as f64 / 1e6
            );
        }
    }
}
