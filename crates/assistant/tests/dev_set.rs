//! Runs the labelled sets through the engine and holds it to its targets: the development set
//! (`tests/dev.jsonl`, written with the templates) and the held-out evaluation set
//! (`eval/eval.jsonl`, written independently of them) and the second held-out set
//! (`eval/holdout.jsonl`, written after the templates were final). All must reach 95 % intent accuracy and
//! 90 % exact slot match; a regression fails CI.

use tix_assistant::eval::{Report, evaluate, parse_cases, parse_catalog};

const CATALOG: &str = include_str!("../eval/catalog.json");
const INTENT_ACCURACY_MIN: f64 = 0.95;
const SLOT_MATCH_MIN: f64 = 0.90;

fn run(jsonl: &str) -> Report {
    let eval_catalog = parse_catalog(CATALOG).expect("catalog.json parses");
    let cases = parse_cases(jsonl).expect("the set parses");
    evaluate(
        &cases,
        &eval_catalog.catalog,
        eval_catalog.reference_time_ms,
    )
}

fn assert_targets(name: &str, report: &Report) {
    eprintln!("{name}\n{report}");
    assert!(
        report.intent_accuracy() >= INTENT_ACCURACY_MIN
            && report.slot_match_rate() >= SLOT_MATCH_MIN,
        "{name}: below target (intent ≥ {INTENT_ACCURACY_MIN}, slots ≥ {SLOT_MATCH_MIN})\n{report}"
    );
}

/// The development set reaches the targets.
#[test]
fn dev_set_meets_targets() {
    let report = run(include_str!("dev.jsonl"));
    assert!(
        report.cases >= 150,
        "the development set has {} cases",
        report.cases
    );
    assert_targets("dev.jsonl", &report);
}

/// The held-out evaluation set reaches the targets. It is part of the crate; if it is missing
/// the test fails rather than passing silently.
#[test]
fn eval_set_meets_targets() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/eval.jsonl");
    let jsonl = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let report = run(&jsonl);
    assert!(report.cases > 0, "{path} has no cases");
    assert_targets("eval.jsonl", &report);
}

/// The second held-out set (`eval/holdout.jsonl`), written after the templates were final and
/// never used to tune them: it measures what `eval.jsonl` (whose misses were fixed once) no
/// longer can. Fixing a miss of this set by a pattern that serves only that line is not allowed
/// (eval/README.md); this test guards against regressions.
#[test]
fn holdout_set_meets_targets() {
    let report = run(include_str!("../eval/holdout.jsonl"));
    assert!(
        report.cases >= 300,
        "the holdout set has {} cases",
        report.cases
    );
    assert_targets("holdout.jsonl", &report);
}
