//! An NMI at every point of the lockless design's writer and reader paths
//! (and of nbcon's writer path, the same ring; its console is read by the
//! printer thread, which takes no NMI):
//! the NMI writes a burst of records big enough to wrap a small ring while
//! the interrupted writer (or reader) holds its place. Nothing deadlocks,
//! every record in the buffer and on the console is whole, what could not
//! be stored is counted with its reason, and the interrupted writer's own
//! records are all there.

mod common;

use common::{assert_balanced, plan_text, run};
use klog::printk;
use klog::Context;
use printk_sim::runner::Outcome;
use printk_sim::workload::parse_msg;

#[test]
fn an_nmi_at_every_point_of_the_lockless_design() {
    nmi_at_every_point("lockless", &|_| true);
}

#[test]
fn an_nmi_at_every_writer_point_of_nbcon() {
    nmi_at_every_point("nbcon", &|p| {
        p.starts_with("prb:") && p != "prb:read_copied" || p == "vprintk:logbuf_locked"
    });
}

fn nmi_at_every_point(design: &str, which: &dyn Fn(&str) -> bool) {
    let info = printk::design(design).unwrap();
    let mut tried = 0;
    for use_ in info.points().filter(|u| which(u.point.name)) {
        tried += 1;
        let name = use_.point.name;
        let p = plan_text(&format!(
            r#"
name = "nmi-at-{name}"
cpus = 2
duration_ms = 120
designs = ["{design}"]
[console]
baud = 0
[buffer]
size = 4096
[watchdog]
threshold_ms = 50
[[task]]
cpus = "all"
printk_hz = 4000
len = [40, 100]
pieces = 2
[[nmi]]
kind = "at_point"
point = "{name}"
cpu = 0
nth = 5
times = 3
lines = 40
len = [40, 100]
"#
        ));
        let r = run(&p, design);
        assert!(
            matches!(r.outcome, Outcome::Clean | Outcome::Loss),
            "{name}: {:?} {:#?}",
            r.outcome,
            r.findings
        );
        assert!(r.findings.is_empty(), "{name}: {:#?}", r.findings);
        assert_balanced(&r);
        // The point was reached and the NMIs ran there.
        assert_eq!(r.fired, vec![3], "{name}");
        // An NMI fired from inside the NMI handler merges into the pending
        // one, as hardware latches a single NMI.
        assert_eq!(r.nmis[0] + r.nmis_latched[0], 3, "{name}");
        assert_eq!(
            r.latency[3].count,
            40 * r.nmis[0],
            "{name}: every NMI line was attempted"
        );
        // Every drop has its reason.
        let reasons: u64 = r.dropped_by.iter().map(|(_, n)| n).sum();
        assert_eq!(reasons, r.accounts.dropped, "{name}: {:?}", r.dropped_by);
        // Nothing torn, in the buffer or on the console. A task message is
        // printed in two pieces; when something else finalized the first
        // piece in between (an NMI's record, another CPU's), the second is
        // a record of its own, flagged as a continuation, and must complete
        // the first.
        let mut first_piece = std::collections::HashMap::new();
        for rec in &r.records {
            let text = if rec.cont {
                let Some(head) = first_piece.get(&(rec.cpu, rec.context)) else {
                    // The oldest record this CPU and context still has in
                    // the ring: its first piece was overwritten.
                    first_piece.insert((rec.cpu, rec.context), String::new());
                    continue;
                };
                assert!(!head.is_empty(), "{name}: orphan continuation {rec:?}");
                format!("{head}{}", rec.text)
            } else {
                first_piece.insert((rec.cpu, rec.context), rec.text.clone());
                rec.text.clone()
            };
            let (cpu, ctx, _) =
                parse_msg(&text).unwrap_or_else(|| panic!("{name}: torn record {rec:?}"));
            assert_eq!((cpu, ctx), (rec.cpu, rec.context), "{name}: {rec:?}");
        }
        let console = r.console_text();
        // Each line, and whether the console had skipped records before it
        // ("** N printk messages dropped **"): after a skip, a continuation
        // whose first piece was overwritten unread comes out on its own.
        let mut skipped = false;
        let mut after_skip = Vec::new();
        let lines: Vec<&str> = console
            .lines()
            .filter(|l| {
                skipped |= l.ends_with(" printk messages dropped **");
                let keep = !l.starts_with("** ");
                if keep {
                    after_skip.push(skipped);
                }
                keep
            })
            .map(|l| l.split_once("] ").map_or("", |x| x.1))
            .collect();
        let mut last = std::collections::HashMap::new();
        for (i, text) in lines.iter().enumerate() {
            let whole = parse_msg(text).or_else(|| {
                // A continuation: it completes one of the lines before it.
                lines[i.saturating_sub(256)..i]
                    .iter()
                    .rev()
                    .find_map(|head| parse_msg(&format!("{head}{text}")))
                    .map(|(c, x, n)| (c, x, n + (1 << 40)))
            });
            let Some((cpu, ctx, n)) = whole else {
                // Only an orphaned continuation may stand alone, and only
                // once records were skipped: the rest of a message, filler.
                let orphan = after_skip[i]
                    && text.bytes().all(|b| b.is_ascii_lowercase())
                    && !text.is_empty();
                assert!(orphan, "{name}: torn console line {text:?}");
                continue;
            };
            if n >= 1 << 40 {
                continue;
            }
            // Per CPU and context, records come out in the order written.
            if let Some(prev) = last.insert((cpu, ctx), n) {
                assert!(n > prev, "{name}: {text:?} after #{prev}");
            }
        }
        // The interrupted writer on CPU 0 lost none of its own records: the
        // task messages it stored are numbered without a gap, as far as
        // the ring still holds them.
        let mine: Vec<u64> = r
            .records
            .iter()
            .filter(|rec| rec.cpu == 0 && rec.context == Context::Task && !rec.cont)
            .map(|rec| parse_msg(&rec.text).unwrap().2)
            .collect();
        if r.accounts.dropped == 0 {
            assert!(
                mine.windows(2).all(|w| w[1] == w[0] + 1),
                "{name}: {mine:?}"
            );
        }
    }
    assert!(tried >= 6, "{design}: {tried} points");
}
