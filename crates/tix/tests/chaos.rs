//! `tix chaos` end to end: a short run of the Jepsen-style verification against a real
//! three-node cluster (kills, pauses, partitions, restarts while clients buy), asserting that
//! every check passes; and the command line refusing a cluster size it does not support.

use std::path::Path;
use std::process::Command;

use tix_bench::chaos::checker::names;
use tix_bench::chaos::history::FaultKind;
use tix_bench::chaos::{ChaosArgs, execute};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tix"))
}

/// Runs 40 s of faults with a fixed seed through the library (nodes from the tix binary) and
/// checks the verdict passes, with sales acknowledged and several kinds of fault injected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_passes_every_check() -> anyhow::Result<()> {
    let args = ChaosArgs {
        nodes: 3,
        duration_s: 40,
        seed: Some(42),
        clients: 12,
        purchases_per_s: 80,
        history_out: None,
    };
    let report = execute(exe(), &args).await?;
    println!("{report}");
    assert!(report.verdict.passed(), "{report}");
    let counts = report.history.counts();
    assert!(
        counts.ok > 100,
        "too few sales to mean anything: {counts:?}"
    );
    let kinds = report.history.fault_counts();
    assert!(
        kinds.len() >= 4,
        "a 40 s run should inject at least four kinds of fault: {kinds:?}"
    );
    assert!(
        kinds.contains_key(&FaultKind::KillLeader) || kinds.contains_key(&FaultKind::FullCrash)
    );
    let lost = report
        .verdict
        .check(names::NO_LOST_SALE)
        .expect("the lost-sale check");
    assert!(lost.passed());
    assert!(report.converged_after_heal.is_some());
    Ok(())
}

/// The subcommand is wired into the binary and rejects a four-node cluster before starting one.
#[test]
fn the_command_line_rejects_an_unsupported_cluster_size() {
    let output = Command::new(exe())
        .args(["chaos", "--nodes", "4", "--duration", "10", "--seed", "1"])
        .output()
        .expect("running tix chaos");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--nodes must be 3 or 5"), "{stderr}");
}
