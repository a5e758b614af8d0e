//! A first cluster test with real processes: three nodes, sales through every node, the leader
//! killed with SIGKILL, sales continue through the survivors, the old leader rejoins, and all
//! replicas converge to the same state.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::cluster::{ClusterOptions, LocalCluster};

/// Checks forwarding, failover and convergence: buys through each node, kills the leader, buys
/// through the others until it works again, restarts the old leader and compares digests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_keeps_selling_and_converges() -> anyhow::Result<()> {
    let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
    let mut cluster = LocalCluster::start(exe, 3, ClusterOptions::default()).await?;
    let http = http_client(8)?;
    let api = ApiClient::login(
        http.clone(),
        &cluster.url(1),
        "admin",
        &cluster.admin_password,
    )
    .await?;
    let event = api
        .create_event("failover", json!({"kind": "numbered", "seats": 100}))
        .await?;
    let mut sold = 0;
    for id in cluster.ids() {
        let node = ApiClient {
            base_url: cluster.url(id),
            ..api.clone()
        };
        let (status, body) = node
            .purchase(event, "c", &format!("via-{id}"), Some(id as u32))
            .await?;
        assert_eq!(status, 201, "purchase through node {id}: {body}");
        sold += 1;
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    cluster.kill(leader)?;
    let survivor = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let node = ApiClient {
        base_url: cluster.url(survivor),
        ..api.clone()
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, _) = node.purchase(event, "c", "after-kill", Some(50)).await?;
        if status == 201 {
            sold += 1;
            break;
        }
        assert_eq!(
            status, 503,
            "only 'unavailable' is acceptable during the election"
        );
        assert!(attempts < 100, "no new leader after {attempts} attempts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new_leader = cluster.wait_for_leader(Duration::from_secs(20)).await?;
    assert_ne!(new_leader, leader);
    cluster.restart(leader)?;
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let a = node.availability(event).await?;
    assert_eq!(a["sold"].as_u64(), Some(sold));
    Ok(())
}
