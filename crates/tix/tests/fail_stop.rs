//! Fail-stop with real processes: a follower whose apply panics (the test-only hook injects an
//! invariant violation) exits with code 70 instead of serving, the cluster sells on without it,
//! and once restarted without the fault it recovers from its durable log and converges.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::cluster::{ClusterOptions, LocalCluster};

/// How long the victim may take to notice the fault and exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Arms the hook on a follower, sells through the leader (the sale commits on the other two),
/// waits for the follower's exit status, sells again, restarts it and waits for convergence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_a_broken_invariant_exits_and_the_cluster_goes_on() -> anyhow::Result<()> {
    let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
    let options = ClusterOptions {
        apply_fault_hook: true,
        ..ClusterOptions::default()
    };
    let mut cluster = LocalCluster::start(exe, 3, options).await?;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    let victim = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let api = ApiClient::login(
        http_client(4)?,
        &cluster.url(leader),
        "admin",
        &cluster.admin_password,
    )
    .await?;
    let event = api
        .create_event("fail-stop", json!({"kind": "numbered", "seats": 50}))
        .await?;
    let (status, body) = api.purchase(event, "c", "before", Some(1)).await?;
    anyhow::ensure!(status == 201, "first sale: {status} {body}");

    cluster.inject_apply_failure(victim)?;
    let (status, body) = api.purchase(event, "c", "during", Some(2)).await?;
    anyhow::ensure!(
        status == 201,
        "the majority must still commit: {status} {body}"
    );
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let exit = loop {
        if let Some(exit) = cluster.exit_status(victim) {
            break exit;
        }
        anyhow::ensure!(Instant::now() < deadline, "node {victim} kept running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    anyhow::ensure!(
        exit.code() == Some(tix_raft::FAIL_STOP_EXIT_CODE),
        "node {victim} exited with {exit:?}"
    );
    let log = cluster.log_text(victim);
    anyhow::ensure!(
        log.contains("fail-stop") && log.contains("invariant violated"),
        "node {victim}'s log does not say why it stopped:\n{log}"
    );

    // The cluster goes on without it.
    for i in 0..5u32 {
        let (status, body) = api
            .purchase(event, "c", &format!("after-{i}"), Some(10 + i))
            .await?;
        anyhow::ensure!(
            status == 201,
            "sale {i} without node {victim}: {status} {body}"
        );
    }
    // Restarted without the fault (as a supervisor would after the operator's fix), it replays
    // its durable log and agrees with the others.
    std::fs::remove_file(cluster.fault_file(victim))?;
    cluster.restart(victim)?;
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let availability = api.availability(event).await?;
    anyhow::ensure!(availability["sold"] == 7, "{availability}");
    Ok(())
}
