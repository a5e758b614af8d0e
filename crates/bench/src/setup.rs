//! The local setups `tix bench` starts itself: a cluster of real `tix serve` processes (fsync
//! on, as in production) with nginx in front (direct), or consuming from RabbitMQ themselves
//! (indirect, `--amqp-url`: the in-node intake) or behind `tix worker` processes (indirect, the
//! separate intake); and the ceilings' stand-ins — `tix bench-noop` behind nginx, and
//! `tix worker --echo`. Everything listens on 127.0.0.1 and stops when dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tix_raft::node::defaults;
use tix_testkit::cluster::{ClusterOptions, LocalCluster};
use tix_testkit::nginx::Nginx;
use tix_testkit::spawn::free_port;

use crate::nginx::NginxConfig;

/// Starts a benchmark cluster of `nodes` voters: no fault proxies, the node's default timings.
pub async fn start_cluster(exe: &Path, nodes: u64) -> anyhow::Result<LocalCluster> {
    LocalCluster::start(exe, nodes, production_options()).await
}

/// Cluster options for measurements: no fault proxies, the node's default timings.
pub fn production_options() -> ClusterOptions {
    ClusterOptions {
        heartbeat_interval_ms: defaults::HEARTBEAT_INTERVAL_MS,
        election_timeout_min_ms: defaults::ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max_ms: defaults::ELECTION_TIMEOUT_MAX_MS,
        fault_proxy: false,
        ..ClusterOptions::default()
    }
}

/// Returns the `tix serve` arguments that run the in-node intake with `consumers_per_node`
/// consumers on each of nodes 1..=`nodes`, by node id. (The broker prefers the leader's
/// consumers; the others take the overflow and the time after a failover.)
pub fn intake_node_args(
    amqp_url: &str,
    queue: &str,
    consumers_per_node: usize,
    nodes: u64,
) -> BTreeMap<u64, Vec<String>> {
    (1..=nodes)
        .map(|id| {
            let args = [
                "--amqp-url",
                amqp_url,
                "--amqp-queue",
                queue,
                "--amqp-consumers",
                &consumers_per_node.to_string(),
            ];
            (id, args.map(String::from).to_vec())
        })
        .collect()
}

/// Empties `queue`, starts a benchmark cluster of `nodes` voters each running
/// `consumers_per_node` intake consumers ([`intake_node_args`]), waits until all of them
/// consume, and returns the cluster with a requester publishing to the queue.
pub async fn start_intake_cluster(
    exe: &Path,
    nodes: u64,
    consumers_per_node: usize,
    amqp_url: &str,
    queue: &str,
) -> anyhow::Result<(LocalCluster, tix_amqp::Requester)> {
    purge_queue(amqp_url, queue).await?;
    let options = ClusterOptions {
        node_args: intake_node_args(amqp_url, queue, consumers_per_node, nodes),
        ..production_options()
    };
    let cluster = LocalCluster::start(exe, nodes, options).await?;
    let consumers = (consumers_per_node as u64 * nodes) as u32;
    wait_for_consumers(amqp_url, queue, consumers, Duration::from_secs(30)).await?;
    let requester = tix_amqp::Requester::start(tix_amqp::RequesterConfig {
        amqp_url: amqp_url.to_owned(),
        queue: queue.to_owned(),
        ..Default::default()
    });
    Ok((cluster, requester))
}

/// Returns the nodes' HTTP addresses, the leader's first (so one upstream or one worker
/// target means the leader, the best case).
pub async fn addresses_leader_first(cluster: &LocalCluster) -> anyhow::Result<Vec<String>> {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let mut addrs = vec![cluster.nodes[&leader].http_addr.clone()];
    addrs.extend(
        cluster
            .nodes
            .values()
            .filter(|n| n.id != leader)
            .map(|n| n.http_addr.clone()),
    );
    Ok(addrs)
}

/// Starts nginx on a free 127.0.0.1 port in front of `upstreams`.
pub fn start_nginx(upstreams: Vec<String>) -> anyhow::Result<Nginx> {
    let listen = format!("127.0.0.1:{}", free_port()?).parse()?;
    Nginx::start(listen, &NginxConfig::new(listen, upstreams).render())
}

/// A child process killed when dropped (workers, no-op servers).
pub struct Helper {
    /// What it is, for messages.
    pub name: String,
    child: Child,
}

impl Helper {
    /// Kills it with SIGKILL (a crash, not a shutdown).
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Returns its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns true while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start `tix worker` processes.
#[derive(Debug, Clone)]
pub struct WorkerLaunch {
    /// The `tix` binary.
    pub exe: PathBuf,
    /// The broker.
    pub amqp_url: String,
    /// The request queue.
    pub queue: String,
    /// The nodes' HTTP addresses (`host:port`).
    pub api_addrs: Vec<String>,
    /// An account that may sell (the admin).
    pub username: String,
    /// Its password.
    pub password: String,
    /// Echo instead of committing (the ceiling).
    pub echo: bool,
    /// Where workers write their logs (appended).
    pub log_path: Option<PathBuf>,
}

/// Starts worker number `n` (for its connection name and log).
pub fn spawn_worker(launch: &WorkerLaunch, n: usize) -> anyhow::Result<Helper> {
    let mut command = Command::new(&launch.exe);
    command
        .arg("worker")
        .args(["--amqp-url", &launch.amqp_url, "--queue", &launch.queue]);
    for addr in &launch.api_addrs {
        command.args(["--api", &format!("http://{addr}")]);
    }
    command
        .args(["--username", &launch.username])
        .env("TIX_WORKER_PASSWORD", &launch.password)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if launch.echo {
        command.arg("--echo");
    }
    match &launch.log_path {
        Some(path) => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            command.stderr(log);
        }
        None => {
            command.stderr(Stdio::null());
        }
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting worker {n}"))?;
    Ok(Helper {
        name: format!("worker {n}"),
        child,
    })
}

/// Empties the launch's queue, starts `n` workers, waits until all of them consume, and
/// returns them with a requester publishing to the same queue.
pub async fn start_workers(
    launch: &WorkerLaunch,
    n: usize,
) -> anyhow::Result<(Vec<Helper>, tix_amqp::Requester)> {
    purge_queue(&launch.amqp_url, &launch.queue).await?;
    let workers = (1..=n)
        .map(|i| spawn_worker(launch, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_for_consumers(
        &launch.amqp_url,
        &launch.queue,
        n as u32,
        Duration::from_secs(30),
    )
    .await?;
    let requester = tix_amqp::Requester::start(tix_amqp::RequesterConfig {
        amqp_url: launch.amqp_url.clone(),
        queue: launch.queue.clone(),
        ..Default::default()
    });
    Ok((workers, requester))
}

/// Starts `tix bench-noop` on a free port and waits until it accepts connections; returns the
/// process and its `host:port`.
pub fn spawn_noop(exe: &Path) -> anyhow::Result<(Helper, String)> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let child = Command::new(exe)
        .args(["bench-noop", "--http-addr", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tix bench-noop")?;
    let mut helper = Helper {
        name: format!("no-op server {addr}"),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        if !helper.is_running() {
            bail!("tix bench-noop exited before listening on {addr}");
        }
        if Instant::now() > deadline {
            bail!("tix bench-noop did not listen on {addr} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((helper, addr))
}

/// Empties the request queue (requests left by an earlier, interrupted run) and returns how
/// many messages it held.
pub async fn purge_queue(amqp_url: &str, queue: &str) -> anyhow::Result<u32> {
    let connection = tokio::time::timeout(
        Duration::from_secs(10),
        lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()),
    )
    .await
    .with_context(|| {
        format!(
            "RabbitMQ at {} did not answer within 10 s",
            tix_amqp::worker::redact(amqp_url)
        )
    })?
    .with_context(|| {
        format!(
            "cannot connect to RabbitMQ at {} (is it running? `rabbitmq-server -detached`)",
            tix_amqp::worker::redact(amqp_url)
        )
    })?;
    let channel = connection.create_channel().await?;
    tix_amqp::worker::declare_queue(&channel, queue).await?;
    let purged = channel
        .queue_purge(queue.into(), lapin::options::QueuePurgeOptions::default())
        .await?;
    let _ = connection.close(200, "purged".into()).await;
    Ok(purged)
}

/// Waits until `n` consumers are attached to `queue` (the workers are connected).
pub async fn wait_for_consumers(
    amqp_url: &str,
    queue: &str,
    n: u32,
    timeout: Duration,
) -> anyhow::Result<()> {
    let connection =
        lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let deadline = Instant::now() + timeout;
    loop {
        let q = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await?;
        if q.consumer_count() >= n {
            let _ = connection.close(200, "ready".into()).await;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} consumers consume {queue} after {} s",
                q.consumer_count(),
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes `queue` (tests clean up the queues they made).
pub async fn delete_queue(amqp_url: &str, queue: &str) -> anyhow::Result<()> {
    let connection =
        lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
        .await?;
    let _ = connection.close(200, "deleted".into()).await;
    Ok(())
}
