//! The short benchmark CI runs: `tix bench sweep --quick` — the smallest shared file through
//! both architectures (nginx in front of a 3-node cluster; RabbitMQ consumed by the nodes' own
//! intake, two consumers each), the
//! ceilings, one alternated round of the echo ceiling against the intake, results, plots and
//! the report — and its correctness verdict.
//!
//! Needs nginx, RabbitMQ (`TIX_AMQP_URL`) and the shared workload files; without them the test
//! says so and skips, unless `TIX_REQUIRE_SERVICES=1`, where that is a failure.

use std::process::Command;

use serde_json::Value;
use tix_testkit::require;

#[test]
fn the_quick_sweep_passes_through_both_architectures_and_draws_its_report() {
    if require::nginx().is_none() {
        return;
    }
    let workloads = require::workloads_dir();
    let Some(amqp_url) = require::amqp_url() else {
        return;
    };
    let out = tempfile::tempdir().expect("temporary directory");
    let report = out.path().join("docs/BENCHMARK.md");
    let output = Command::new(env!("CARGO_BIN_EXE_tix"))
        .args([
            "bench",
            "sweep",
            "--quick",
            "--clients",
            "32",
            "--in-flight",
            "48",
        ])
        .arg("--workloads-dir")
        .arg(&workloads)
        .arg("--out")
        .arg(out.path().join("results"))
        .arg("--report")
        .arg(&report)
        .args(["--amqp-url", &amqp_url])
        .output()
        .expect("tix runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("PASS: all 2 runs verified"), "{text}");

    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("results/results.json")).expect("results.json"),
    )
    .expect("results.json is JSON");
    let runs = results["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "one run per architecture");
    // Each architecture runs at its own concurrency: clients (direct), requests in flight
    // (indirect, the echo ceiling too).
    for (run, architecture, window) in [(&runs[0], "direct", 32), (&runs[1], "indirect", 48)] {
        assert_eq!(run["architecture"], architecture);
        assert_eq!(run["clients"], window, "{run}");
        assert_eq!(run["pass"], true, "{run}");
        assert_eq!(run["sold"], 20_000, "{run}");
        assert_eq!(run["unknown"], 0, "{run}");
        assert!(run["answered_per_s"].as_f64().unwrap_or(0.0) > 0.0);
        assert!(run["fraction_of_ceiling"].as_f64().is_some(), "{run}");
    }
    assert_eq!(
        runs[1]["intake"], "node",
        "the in-node intake is the default"
    );
    assert!(
        runs[0].get("intake").is_none(),
        "direct runs have no intake"
    );
    assert_eq!(results["config"]["clients"], 32);
    assert_eq!(results["config"]["in_flight"], 48);
    let ceilings = results["ceilings"].as_array().expect("ceilings");
    assert_eq!(ceilings.len(), 2, "one ceiling per architecture");
    for (ceiling, window) in ceilings.iter().zip([32, 48]) {
        assert_eq!(ceiling["clients"], window, "{ceiling}");
    }
    assert!(results["machine"]["cpus"].as_u64().unwrap_or(0) >= 1);
    // One alternated round of the echo ceiling against the unnumbered file (the only file of
    // --quick): both measured, and the report's verdict is their ratio.
    let pairs = results["alternated"].as_array().expect("alternated pairs");
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(pairs[0]["architecture"], "indirect");
    assert_eq!(pairs[0]["a"], "echo ceiling");
    assert_eq!(pairs[0]["b"], "benchmark_unnumbered.txt");
    for side in ["a_per_s", "b_per_s"] {
        let per_s = pairs[0][side].as_array().expect("per round");
        assert_eq!(per_s.len(), 1, "{side}");
        assert!(per_s[0].as_f64().unwrap_or(0.0) > 0.0, "{side}");
    }

    let csv = std::fs::read_to_string(out.path().join("results/results.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 3, "a header and two runs:\n{csv}");

    let markdown = std::fs::read_to_string(&report).expect("the report");
    // One row per run: direct through all three nodes, indirect with two workers.
    assert!(markdown.contains("| unnumbered | 3 |"), "{markdown}");
    assert!(markdown.contains("| unnumbered | 2 |"), "{markdown}");
    assert!(markdown.contains("2 of 2 PASS"), "{markdown}");
    assert!(
        markdown.contains("median of 1 alternated round ("),
        "{markdown}"
    );
    let plots: Vec<_> = std::fs::read_dir(out.path().join("docs/bench"))
        .expect("plots beside the report")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    for ext in ["png", "svg"] {
        let found: Vec<_> = plots
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        assert!(!found.is_empty(), "no .{ext} plot in {plots:?}");
        for p in found {
            let name = p.file_name().expect("a name").to_string_lossy();
            assert!(
                markdown.contains(&*name) || ext == "svg",
                "{name} not embedded"
            );
            assert!(
                std::fs::metadata(p).expect("metadata").len() > 1000,
                "{p:?} is empty"
            );
        }
    }
}
