//! `tix failover`: measures how long a local cluster takes to sell again after its leader is
//! killed with SIGKILL (kill → first 201 through a surviving node), over many kills, and counts
//! elections while the cluster is saturated by a sustained load (spurious elections).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use tix_raft::node::defaults;
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::cluster::{ClusterOptions, LocalCluster};

/// Options of the failover measurement.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// How many times to kill the leader.
    #[arg(long, default_value_t = 20)]
    pub kills: u32,
    /// Seconds of saturating load during which elections are counted (0 skips it).
    #[arg(long, default_value_t = 30)]
    pub load_seconds: u64,
    /// Concurrent clients of the saturating load.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Leader heartbeat period.
    #[arg(long, default_value_t = defaults::HEARTBEAT_INTERVAL_MS)]
    pub heartbeat_interval_ms: u64,
    /// Election timeout bounds.
    #[arg(long, default_value_t = defaults::ELECTION_TIMEOUT_MIN_MS)]
    pub election_timeout_min_ms: u64,
    /// Election timeout bounds.
    #[arg(long, default_value_t = defaults::ELECTION_TIMEOUT_MAX_MS)]
    pub election_timeout_max_ms: u64,
}

/// Runs the measurement and prints its report.
pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    anyhow::ensure!((3..=5).contains(&args.nodes), "--nodes must be 3 to 5");
    anyhow::ensure!((1..=200).contains(&args.kills), "--kills must be 1 to 200");
    let exe = std::env::current_exe()?;
    let options = ClusterOptions {
        heartbeat_interval_ms: args.heartbeat_interval_ms,
        election_timeout_min_ms: args.election_timeout_min_ms,
        election_timeout_max_ms: args.election_timeout_max_ms,
        ..ClusterOptions::default()
    };
    let mut cluster = LocalCluster::start(Path::new(&exe), args.nodes, options).await?;
    let http = http_client(args.clients)?;
    let api = ApiClient::login(http, &cluster.url(1), "admin", &cluster.admin_password).await?;
    let event = api
        .create_event(
            "failover",
            json!({"kind": "unnumbered", "capacity": 1_000_000}),
        )
        .await?;

    if args.load_seconds > 0 {
        let (elections, sold) = elections_under_load(&cluster, &api, event, &args).await?;
        println!(
            "sustained load: {} s, {} clients, {sold} purchases ({:.0}/s), elections: {elections}",
            args.load_seconds,
            args.clients,
            sold as f64 / args.load_seconds as f64
        );
    }

    let mut times_ms = Vec::new();
    for kill in 0..args.kills {
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
        let survivor = cluster
            .ids()
            .into_iter()
            .find(|id| *id != leader)
            .context("no survivor")?;
        let via = ApiClient {
            base_url: cluster.url(survivor),
            ..api.clone()
        };
        cluster.kill(leader)?;
        let elapsed = first_sale_after(&via, event, &format!("kill-{kill}")).await?;
        times_ms.push(elapsed.as_secs_f64() * 1000.0);
        println!(
            "kill {:>2}: leader {leader} → sold again via node {survivor} after {:.0} ms",
            kill + 1,
            times_ms[times_ms.len() - 1]
        );
        cluster.restart(leader)?;
        cluster.wait_converged(Duration::from_secs(60)).await?;
    }
    times_ms.sort_by(f64::total_cmp);
    let median = times_ms[times_ms.len() / 2];
    let max = times_ms[times_ms.len() - 1];
    let min = times_ms[0];
    println!(
        "failover over {} kills: median {median:.0} ms, min {min:.0} ms, max {max:.0} ms \
         (election timeout {}–{} ms, heartbeat {} ms)",
        times_ms.len(),
        args.election_timeout_min_ms,
        args.election_timeout_max_ms,
        args.heartbeat_interval_ms
    );
    Ok(())
}

/// Retries one purchase (same request id) every 10 ms until it is sold; returns the time taken.
async fn first_sale_after(
    via: &ApiClient,
    event: u64,
    request_id: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    loop {
        if let Ok((201, _)) = via.purchase(event, "failover", request_id, None).await {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("no sale within 60 s of killing the leader");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs a saturating load through every node and returns (elections, purchases sold); an
/// election is any increase of the term seen at the end versus the start.
async fn elections_under_load(
    cluster: &LocalCluster,
    api: &ApiClient,
    event: u64,
    args: &FailoverArgs,
) -> anyhow::Result<(u64, u64)> {
    let term = |h: Option<serde_json::Value>| h.and_then(|h| h["term"].as_u64()).unwrap_or(0);
    let before = term(cluster.health(1).await);
    let deadline = Instant::now() + Duration::from_secs(args.load_seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..args.clients {
        let ids = cluster.ids();
        let via = ApiClient {
            base_url: cluster.url(ids[client % ids.len()]),
            ..api.clone()
        };
        tasks.spawn(async move {
            let mut sold = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                if let Ok((201, _)) = via
                    .purchase(event, &format!("load-{client}"), &format!("r{i}"), None)
                    .await
                {
                    sold += 1;
                }
            }
            sold
        });
    }
    let mut sold = 0;
    while let Some(n) = tasks.join_next().await {
        sold += n?;
    }
    let after = term(cluster.health(1).await);
    Ok((after.saturating_sub(before), sold))
}
