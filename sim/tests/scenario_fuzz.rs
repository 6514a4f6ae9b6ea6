//! No input makes the scenario loader panic, and every rejection names the
//! file, a line and a key. Arbitrary text, and valid scenarios with lines
//! changed, dropped or added. `PROPTEST_CASES` sets the number of inputs
//! per strategy (default 2000); the count is printed.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use printk_sim::scenario::{Overrides, Scenario, BUILTIN};

fn check(text: &str) -> Result<(), TestCaseError> {
    match Scenario::parse("fuzz.toml", text).and_then(|s| s.plan(&Overrides::default())) {
        Ok(plan) => {
            prop_assert!((1..=64).contains(&plan.cpus));
            prop_assert!(plan.buffer_size.is_power_of_two());
            prop_assert!(plan.hard_limit_ms > plan.duration_ms);
            prop_assert!(plan.tasks.len() == plan.cpus);
        }
        Err(e) => {
            prop_assert_eq!(&e.file, "fuzz.toml");
            prop_assert!(e.line >= 1, "no line: {}", e);
            prop_assert!(!e.key.is_empty(), "no key: {}", e);
            prop_assert!(!e.message.is_empty(), "no message: {}", e);
            let shown = e.to_string();
            prop_assert!(
                shown.starts_with(&format!("fuzz.toml:{}:", e.line)),
                "{}",
                shown
            );
        }
    }
    Ok(())
}

fn values() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (-5i64..300).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        "[a-z_:0-9-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("[0, 1]".to_string()),
        Just("[120, 16]".to_string()),
        Just("\"all\"".to_string()),
        Just("\"0-300\"".to_string()),
        Just("{ a = 1 }".to_string()),
        "[^\n]{0,10}",
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Value(usize, String),
    Drop(usize),
    Insert(usize, String),
}

fn edits(lines: usize) -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (0..lines, values()).prop_map(|(l, v)| Edit::Value(l, v)),
        (0..lines).prop_map(Edit::Drop),
        (0..lines, "[a-z_]{1,12}", values())
            .prop_map(|(l, k, v)| Edit::Insert(l, format!("{k} = {v}"))),
        (0..lines, "\\[\\[?[a-z]{1,8}\\]\\]?").prop_map(|(l, h)| Edit::Insert(l, h)),
    ];
    prop::collection::vec(edit, 1..4)
}

fn apply(base: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    for e in edits {
        match e {
            Edit::Value(l, v) if *l < lines.len() => {
                if let Some((k, _)) = lines[*l].split_once('=') {
                    lines[*l] = format!("{}= {v}", k);
                }
            }
            Edit::Drop(l) if *l < lines.len() => {
                lines.remove(*l);
            }
            Edit::Insert(l, text) => {
                let at = (*l).min(lines.len());
                lines.insert(at, text.clone());
            }
            _ => {}
        }
    }
    lines.join("\n")
}

#[test]
fn the_loader_never_panics_and_always_says_where() {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut total = 0u64;

    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&"(?s).{0,300}", |text| check(&text)).unwrap();
    total += u64::from(cases);

    for (name, base) in BUILTIN {
        let n = base.lines().count();
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&edits(n), |e| check(&apply(base, &e)))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        total += u64::from(cases);
    }
    eprintln!("scenario loader: {total} inputs tried, none panicked, every rejection named file, line and key");
}
