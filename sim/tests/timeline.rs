//! `--trace` and `--svg`: the Chrome trace-event JSON is well formed (every
//! event's fields, spans nesting per thread) and shows the flagship's
//! deadlock where it happened; the SVG parses as XML with one lane per CPU.

mod common;

use common::{plan, run};
use printk_sim::report::timeline;
use printk_sim::scenario::Overrides;
use serde_json::Value;

/// A complete event: start and end in µs, and its name.
type Span = (f64, f64, String);

fn flagship_runs() -> Vec<printk_sim::runner::RunReport> {
    let mut p = plan(
        "nmi-in-console-unlock",
        Overrides {
            designs: vec!["legacy".into(), "lockless".into()],
            ..Overrides::default()
        },
    );
    p.timeline = true;
    vec![run(&p, "legacy"), run(&p, "lockless")]
}

#[test]
fn the_trace_is_valid_trace_event_json_and_shows_the_deadlock() {
    let runs = flagship_runs();
    let v: Value = serde_json::from_str(&timeline::chrome(&runs)).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    assert!(events.len() > 1000, "{}", events.len());
    let mut spans: std::collections::BTreeMap<(u64, u64), Vec<Span>> = Default::default();
    for e in events {
        let ph = e["ph"].as_str().unwrap();
        assert!(e["name"].is_string(), "{e}");
        let (pid, tid) = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        match ph {
            "M" => assert!(e["args"]["name"].is_string()),
            "X" => {
                let ts = e["ts"].as_f64().unwrap();
                let dur = e["dur"].as_f64().unwrap();
                assert!(ts >= 0.0 && dur >= 0.0, "{e}");
                assert!(["context", "lock", "spin"].contains(&e["cat"].as_str().unwrap()));
                spans.entry((pid, tid)).or_default().push((
                    ts,
                    ts + dur,
                    e["name"].as_str().unwrap().to_string(),
                ));
            }
            "i" => {
                assert_eq!(e["s"], "t");
                assert!(e["ts"].as_f64().unwrap() >= 0.0);
            }
            other => panic!("unexpected phase {other}"),
        }
    }
    // Spans nest on every thread: each one ends before the one it starts
    // in does.
    for ((pid, tid), list) in &mut spans {
        list.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<Span> = Vec::new();
        for s in list.iter() {
            while open.last().is_some_and(|top| s.0 >= top.1) {
                open.pop();
            }
            if let Some(top) = open.last() {
                assert!(
                    s.1 <= top.1 + 1e-3,
                    "pid {pid} tid {tid}: {s:?} overlaps {top:?}"
                );
            }
            open.push(s.clone());
        }
    }
    // legacy (pid 0), CPU 0: an NMI of about the watchdog threshold, inside
    // which printk spun on logbuf_lock, inside the task's hold of it.
    let cpu0 = &spans[&(0, 0)];
    let nmi = cpu0
        .iter()
        .find(|s| s.2 == "nmi" && s.1 - s.0 > 90_000.0)
        .expect("the deadlocked NMI");
    assert!(cpu0
        .iter()
        .any(|s| s.2 == "spins on logbuf_lock" && s.0 >= nmi.0 && s.1 <= nmi.1 + 1e-3));
    assert!(cpu0
        .iter()
        .any(|s| s.2 == "holds logbuf_lock" && s.0 <= nmi.0 && s.1 >= nmi.1));
    assert!(events.iter().any(|e| e["cat"] == "finding"
        && e["pid"] == 0
        && e["tid"] == 0
        && e["name"] == "deadlock cpu0/nmi on logbuf_lock"));
    // lockless (pid 1): the NMI is short and nothing spins inside it.
    // (Outside NMI context a printk caller may spin briefly as the console
    // hand-off's waiter.)
    let l0 = &spans[&(1, 0)];
    let nmis: Vec<_> = l0.iter().filter(|s| s.2 == "nmi").collect();
    assert_eq!(nmis.len(), 1);
    for nmi in nmis {
        assert!(nmi.1 - nmi.0 < 1000.0, "{nmi:?}");
        assert!(l0
            .iter()
            .all(|s| !(s.2.starts_with("spins") && s.0 >= nmi.0 && s.1 <= nmi.1)));
    }
}

#[test]
fn the_svg_parses_and_has_a_lane_per_cpu() {
    let runs = flagship_runs();
    for r in &runs {
        let text = timeline::svg(r, "test");
        let doc = roxmltree::Document::parse(&text).unwrap();
        let lanes: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("lane"))
            .collect();
        assert_eq!(lanes.len(), 2, "{}", r.design);
        assert_eq!(lanes[0].attribute("id"), Some("cpu0"));
        let nmi_bars = lanes[0]
            .children()
            .filter(|n| n.attribute("fill") == Some("#d0021b"))
            .count();
        assert!(nmi_bars >= 1, "{}: the NMI is drawn", r.design);
    }
    let legacy = timeline::svg(&runs[0], "legacy");
    assert!(legacy.contains("deadlock cpu0/nmi on logbuf_lock"));
}
