//! The HTML pages (`run --html`, `explore --html`, the report card's) in a
//! real browser: headless Chromium loads each from a file, the test reads
//! the DOM it rendered (tables, one timeline per design, the heat map, the
//! script that marks the page loaded) and keeps a screenshot under
//! `target/html/` for a person to look at. Every page is also parsed as
//! XML here, browser or not. Where there is no Chromium the browser half
//! is said to be skipped, except in CI (`CI` set), where `.ci/run`
//! installs it and its absence fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use printk_sim::lab::Lab;

mod common;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `target/html/`, next to the build's other outputs.
fn out_dir() -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.pop();
    let dir = p.join("html");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sim(args: &[&str]) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_printk-sim"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Elements named `tag` with attribute `class` = `class` (any, if empty).
fn count(doc: &roxmltree::Document<'_>, tag: &str, class: &str) -> usize {
    doc.descendants()
        .filter(|n| n.tag_name().name() == tag)
        .filter(|n| class.is_empty() || n.attribute("class") == Some(class))
        .count()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// The page as Chromium rendered it (its DOM), and a screenshot beside it.
fn in_browser(page: &Path) -> Option<String> {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Chromium (.ci/run installs Debian's chromium)"
        );
        eprintln!("no Chromium here: {} checked as XML only", page.display());
        return None;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let url = format!("file://{}", page.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
    ];
    let dom = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args(common)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shot = page.with_extension("png");
    let _ = std::fs::remove_file(&shot);
    let status = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args(common)
        .arg("--window-size=1400,2400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    Some(String::from_utf8_lossy(&dom.stdout).into_owned())
}

/// Check `page` (XML, then the browser's DOM): `tables` tables, `svgs`
/// SVG pictures, and the script ran.
fn check(page: &Path, tables: usize, svgs: usize, must: &[&str]) {
    let text = std::fs::read_to_string(page).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        text.trim_start_matches("<!DOCTYPE html>\n"),
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    assert_eq!(count(&doc, "table", ""), tables, "{}", page.display());
    assert_eq!(count(&doc, "svg", ""), svgs, "{}", page.display());
    let mut ids: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("id"))
        .collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "{}: every id once", page.display());
    // Self-contained: nothing fetched from anywhere.
    for attr in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!text.contains(attr), "{}: {attr}", page.display());
    }
    for m in must {
        assert!(text.contains(m), "{}: {m}", page.display());
    }
    if let Some(dom) = in_browser(page) {
        assert!(dom.contains("data-loaded=\"yes\""), "the script ran: {dom}");
        assert_eq!(dom.matches("<table").count(), tables, "{dom}");
        assert_eq!(dom.matches("<svg").count(), svgs, "{dom}");
        for m in must {
            assert!(dom.contains(m), "{m} in the rendered DOM");
        }
    }
}

#[test]
fn the_run_page_has_the_table_a_timeline_per_design_and_the_story() {
    let page = out_dir().join("run.html");
    sim(&[
        "run",
        "nmi-in-console-unlock",
        "--design",
        "legacy",
        "--design",
        "lockless",
        "-q",
        "--html",
        page.to_str().unwrap(),
    ]);
    check(
        &page,
        1,
        2,
        &[
            "<td class=\"deadlock\">deadlock</td>",
            "id=\"timeline-legacy-1\"",
            "id=\"timeline-lockless-1\"",
            "possible deadlock detected",
            "inconsistent {INITIAL USE} -&gt; {IN-NMI} usage.",
            "That wait could never end",
        ],
    );
}

#[test]
fn the_explore_page_has_the_heat_map_and_a_matrix_per_design() {
    let page = out_dir().join("explore.html");
    sim(&[
        "explore",
        "nmi-in-console-unlock",
        "--design",
        "legacy",
        "--design",
        "lockless",
        "--html",
        page.to_str().unwrap(),
    ]);
    check(
        &page,
        2,
        1,
        &[
            "id=\"explore-nmi-in-console-unlock-legacy\"",
            "<td class=\"deadlock\">deadlock</td>",
            "NMI-safe at all 11 points reached",
        ],
    );
}

#[test]
fn the_report_card_page() {
    let card = Lab::new()
        .design(klog::printk::design("lockless").unwrap())
        .without_history()
        .scenarios(&["nmi-in-console-unlock", "lockdep-only"])
        .run(&mut |_| {})
        .unwrap();
    assert_eq!(
        common::IN_INTERRUPT.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let page = out_dir().join("card.html");
    std::fs::write(&page, printk_sim::report::html::card_page(&card)).unwrap();
    check(
        &page,
        2,
        1,
        &[
            "No broken accounts",
            "id=\"explore-nmi-in-console-unlock-lockless\"",
        ],
    );
}

#[test]
fn the_page_merge_writes_for_a_sweeps_shards_has_the_rates() {
    let dir = out_dir();
    let shard = |k: &str| dir.join(format!("rates-{}.jsonl", k.replace('/', "of")));
    for k in ["1/2", "2/2"] {
        sim(&[
            "run",
            "nmi-in-console-unlock",
            "--design",
            "legacy",
            "--repeat",
            "4",
            "-q",
            "--shard",
            k,
            "--jsonl",
            shard(k).to_str().unwrap(),
        ]);
    }
    let page = dir.join("rates.html");
    sim(&[
        "merge",
        "--html",
        page.to_str().unwrap(),
        shard("1/2").to_str().unwrap(),
        shard("2/2").to_str().unwrap(),
    ]);
    check(
        &page,
        0,
        0,
        &[
            "nmi-in-console-unlock: 4 runs per design (seeds 1..=4)",
            "legacy  4/4  deadlock: logbuf_lock in NMI",
        ],
    );
}
