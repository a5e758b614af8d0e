//! A local cluster of real `tix serve` processes for fault tests and `tix chaos`: each node has
//! its own loopback address, a fault-injecting proxy in front of its Raft listener, and its own
//! data directory. Nodes can be killed (SIGKILL), paused (SIGSTOP/SIGCONT), restarted, added,
//! removed and partitioned.
//!
//! The cluster has one secret (`cluster.secret` in its directory), passed to every node with
//! `--cluster-secret-file`; the harness's own calls to the internal listener (init, membership,
//! metrics) go through `tix_raft`'s signing `ClusterClient`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tix_raft::TixNode;
use tix_raft::cluster::{AddNode, CallError, ClusterClient, NodeMetrics, RemoveNode};
use tix_raft::peer_auth::{ClusterSecret, Signer};

use crate::proxy::{FaultProxy, Partitions, node_ip};

/// Time limit of a membership change (adding a node waits until it has caught up).
const MEMBERSHIP_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Timing options passed to every node.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Leader heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// Election timeout bounds.
    pub election_timeout_min_ms: u64,
    /// Election timeout bounds.
    pub election_timeout_max_ms: u64,
    /// Snapshot (and log compaction) period in log entries.
    pub snapshot_logs_since_last: u64,
    /// Extra `tix serve` arguments.
    pub extra_args: Vec<String>,
    /// Extra `tix serve` arguments of one node (after `extra_args`), by node id: e.g. the
    /// RabbitMQ intake on some nodes only.
    pub node_args: BTreeMap<u64, Vec<String>>,
    /// Put a fault-injecting proxy in front of each Raft listener (fault tests); benchmarks
    /// turn it off so Raft traffic takes no extra hop.
    pub fault_proxy: bool,
    /// Give each node the test-only apply fault hook (`--test-fail-apply-file`), armed by
    /// [`LocalCluster::inject_apply_failure`].
    pub apply_fault_hook: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            snapshot_logs_since_last: 5000,
            extra_args: Vec::new(),
            node_args: BTreeMap::new(),
            fault_proxy: true,
            apply_fault_hook: false,
        }
    }
}

/// One node process and its addresses.
pub struct NodeProcess {
    /// Node id.
    pub id: u64,
    /// `127.0.0.1:port` of its public HTTP listener.
    pub http_addr: String,
    /// Where its Raft listener really is.
    pub raft_listen_addr: SocketAddr,
    /// Its proxy: what the membership stores.
    pub raft_advertised_addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    child: Option<Child>,
    /// Stopped while the node is down, so peers get "connection refused" (and back off) as
    /// they would from a dead machine, rather than a connection that is accepted and dropped.
    proxy: Option<FaultProxy>,
}

impl NodeProcess {
    /// Returns `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Returns the process id while the node runs (for reading its `/proc` entries).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Returns true if the process is running (possibly paused).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

/// A local cluster of `tix` processes.
pub struct LocalCluster {
    exe: PathBuf,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// The admin password of every node.
    pub admin_password: String,
    options: ClusterOptions,
    /// The nodes by id.
    pub nodes: BTreeMap<u64, NodeProcess>,
    /// The partition table shared by all proxies.
    pub partitions: Partitions,
    /// The file holding the cluster secret every node was started with.
    pub secret_file: PathBuf,
    http: reqwest::Client,
    /// Signed calls to the internal listeners (metrics, init).
    internal: ClusterClient,
    /// Signed membership changes (adding a node waits until it has caught up).
    membership: ClusterClient,
}

/// The file that arms node `id`'s apply fault hook.
fn fault_file(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}.fail-apply"))
}

fn free_addr(ip: std::net::IpAddr) -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?)
}

impl LocalCluster {
    /// Starts `n` nodes (ids 1..=n) from `exe` in a temporary directory, initializes the
    /// cluster and waits for a leader.
    pub async fn start(exe: &Path, n: u64, options: ClusterOptions) -> anyhow::Result<Self> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().to_path_buf();
        // TIX_KEEP_CLUSTER_DIR=1 keeps the data directories and node logs for a post-mortem.
        let keep = std::env::var_os("TIX_KEEP_CLUSTER_DIR").is_some();
        let temp = if keep {
            eprintln!("cluster directory kept: {}", dir.display());
            let _ = temp.keep();
            None
        } else {
            Some(temp)
        };
        let secret_file = dir.join("cluster.secret");
        let secret = ClusterSecret::generate();
        secret.write_new(&secret_file)?;
        let signer = Signer::new(&secret);
        let mut cluster = LocalCluster {
            exe: exe.to_path_buf(),
            dir,
            _temp: temp,
            admin_password: "cluster-admin-password".into(),
            options,
            nodes: BTreeMap::new(),
            partitions: Partitions::new(),
            secret_file,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            internal: ClusterClient::new(Duration::from_secs(5), None, signer.clone()),
            membership: ClusterClient::new(MEMBERSHIP_CALL_TIMEOUT, None, signer),
        };
        for id in 1..=n {
            cluster.start_node(id).await?;
        }
        let members: BTreeMap<u64, TixNode> = cluster
            .nodes
            .values()
            .map(|n| {
                let node = TixNode {
                    api_addr: n.http_addr.clone(),
                    raft_addr: n.raft_advertised_addr.to_string(),
                };
                (n.id, node)
            })
            .collect();
        let first = cluster.nodes[&1].raft_listen_addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match cluster.internal.init(1, &first, &members).await {
                Ok(()) => break,
                Err(CallError::NotDelivered(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e).context("cluster init failed"),
            }
        }
        cluster.wait_for_leader(Duration::from_secs(30)).await?;
        cluster.wait_for_admin(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// Starts the process of a new node `id` (pristine, `--no-bootstrap`) with its proxy,
    /// without adding it to the cluster (see [`LocalCluster::add_node`]).
    pub async fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        let ip = node_ip(id);
        let http_addr = format!("127.0.0.1:{}", crate::spawn::free_port()?);
        let raft_listen_addr = free_addr(ip)?;
        let (raft_advertised_addr, proxy) = if self.options.fault_proxy {
            let proxy =
                FaultProxy::start(id, ip, raft_listen_addr, self.partitions.clone()).await?;
            (proxy.listen_addr, Some(proxy))
        } else {
            (raft_listen_addr, None)
        };
        let node = NodeProcess {
            id,
            http_addr,
            raft_listen_addr,
            raft_advertised_addr,
            data_dir: self.dir.join(format!("node-{id}")),
            child: None,
            proxy,
        };
        self.nodes.insert(id, node);
        self.launch(id)
    }

    /// Launches the process of an existing slot (same addresses, same data directory).
    fn launch(&mut self, id: u64) -> anyhow::Result<()> {
        let o = self.options.clone();
        let partitions = self.partitions.clone();
        let node = self.nodes.get_mut(&id).context("no such node")?;
        if node.proxy.is_none() && o.fault_proxy {
            let proxy = FaultProxy::start_on(
                id,
                node.raft_advertised_addr,
                node.raft_listen_addr,
                partitions,
            )?;
            node.proxy = Some(proxy);
        }
        // Each node logs to `node-N.log` beside its data directory (appended across restarts),
        // so the expected noise of injected faults stays out of the caller's output.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))?;
        let child = Command::new(&self.exe)
            .arg("serve")
            .args(["--node-id", &id.to_string(), "--http-addr", &node.http_addr])
            .args(["--raft-addr", &node.raft_listen_addr.to_string()])
            .args([
                "--raft-advertise-addr",
                &node.raft_advertised_addr.to_string(),
            ])
            .args(["--raft-source-ip", &node_ip(id).to_string()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--cluster-secret-file")
            .arg(&self.secret_file)
            .args(["--no-bootstrap", "--no-demo"])
            .args([
                "--heartbeat-interval-ms",
                &o.heartbeat_interval_ms.to_string(),
            ])
            .args([
                "--election-timeout-min-ms",
                &o.election_timeout_min_ms.to_string(),
            ])
            .args([
                "--election-timeout-max-ms",
                &o.election_timeout_max_ms.to_string(),
            ])
            .args([
                "--snapshot-logs-since-last",
                &o.snapshot_logs_since_last.to_string(),
            ])
            .args(&o.extra_args)
            .args(o.node_args.get(&id).into_iter().flatten())
            .args(
                o.apply_fault_hook
                    .then(|| fault_file(&self.dir, id))
                    .map(|file| ["--test-fail-apply-file".into(), file.into_os_string()])
                    .into_iter()
                    .flatten(),
            )
            .env("TIX_ADMIN_PASSWORD", &self.admin_password)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        node.child = Some(child);
        Ok(())
    }

    /// Makes node `id`'s next apply panic as a broken invariant does (needs
    /// [`ClusterOptions::apply_fault_hook`]); the node should fail-stop.
    pub fn inject_apply_failure(&self, id: u64) -> anyhow::Result<()> {
        anyhow::ensure!(self.options.apply_fault_hook, "the apply fault hook is off");
        std::fs::write(fault_file(&self.dir, id), b"armed")?;
        Ok(())
    }

    /// Returns the file that arms node `id`'s apply fault hook.
    pub fn fault_file(&self, id: u64) -> PathBuf {
        fault_file(&self.dir, id)
    }

    /// Returns node `id`'s exit status once its process has ended (not for a paused node).
    pub fn exit_status(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let child = self.nodes.get_mut(&id)?.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    /// Returns the text node `id` logged (its `node-N.log`, across restarts).
    pub fn log_text(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{id}.log"))).unwrap_or_default()
    }

    /// Returns the ids of all nodes.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Returns the base URL of node `id`.
    pub fn url(&self, id: u64) -> String {
        self.nodes[&id].url()
    }

    /// Returns node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.nodes[&id].data_dir.clone()
    }

    /// Returns node `id`'s Raft view (`leader_id`, `term`, `last_applied`) from the signed
    /// metrics of its internal listener, if it answers within 500 ms. (`/healthz` tells the
    /// public only whether a node serves, not who leads.)
    pub async fn health(&self, id: u64) -> Option<Value> {
        let addr = self.nodes.get(&id)?.raft_listen_addr.to_string();
        let metrics = tokio::time::timeout(
            Duration::from_millis(500),
            self.internal.metrics(&addr, false),
        )
        .await
        .ok()?
        .ok()?;
        Some(serde_json::json!({
            "node_id": metrics.node_id,
            "leader_id": metrics.leader_id,
            "term": metrics.term,
            "last_applied": metrics.last_applied,
        }))
    }

    /// Returns the leader that a majority of answering nodes agree on, if any.
    pub async fn leader(&self) -> Option<u64> {
        let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
        for id in self.ids() {
            if let Some(h) = self.health(id).await
                && let Some(leader) = h["leader_id"].as_u64()
            {
                *votes.entry(leader).or_default() += 1;
            }
        }
        let (leader, count) = votes.into_iter().max_by_key(|(_, c)| *c)?;
        let reachable = self.health(leader).await?;
        (count * 2 > self.nodes.len() && reachable["leader_id"].as_u64() == Some(leader))
            .then_some(leader)
    }

    /// Waits until a leader is agreed on.
    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader().await {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                bail!("no leader within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the admin account exists (the first leader creates it). Asks the leader
    /// only, when one is known: every failed login counts against this address on the node
    /// asked, and past ten a node makes it wait (`ApiClient::login` waits that out).
    async fn wait_for_admin(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let ask = match self.leader().await {
                Some(leader) => vec![leader],
                None => self.ids(),
            };
            for id in ask {
                let url = format!("{}/api/v1/auth/login", self.url(id));
                let body = json!({"username": "admin", "password": self.admin_password});
                if let Ok(r) = self.http.post(url).json(&body).send().await
                    && r.status().is_success()
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("the admin account was not created within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, id: u64, signal: &str) -> anyhow::Result<()> {
        let node = &self.nodes[&id];
        let child = node.child.as_ref().context("node is not running")?;
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        Ok(())
    }

    /// Kills node `id` with SIGKILL and reaps it.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(&id).context("no such node")?;
        node.proxy = None;
        if let Some(mut child) = node.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Pauses node `id` (SIGSTOP).
    pub fn pause(&self, id: u64) -> anyhow::Result<()> {
        self.signal(id, "-STOP")
    }

    /// Resumes node `id` (SIGCONT).
    pub fn resume(&self, id: u64) -> anyhow::Result<()> {
        self.signal(id, "-CONT")
    }

    /// Restarts a killed node on its data (same id, same addresses).
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.kill(id)?;
        self.launch(id)
    }

    /// Returns true if node `id`'s process is alive.
    pub fn is_running(&mut self, id: u64) -> bool {
        self.nodes.get_mut(&id).is_some_and(NodeProcess::is_running)
    }

    /// Cuts the cluster into groups that cannot reach each other (Raft and forwarding traffic).
    pub fn partition(&self, groups: &[Vec<u64>]) {
        self.partitions.split(groups, &self.ids());
    }

    /// Removes all partitions.
    pub fn heal(&self) {
        self.partitions.heal();
    }

    /// Starts a new node `id` and adds it through the leader (learner, then voter).
    pub async fn add_node(&mut self, id: u64) -> anyhow::Result<()> {
        anyhow::ensure!(!self.nodes.contains_key(&id), "node {id} exists");
        self.start_node(id).await?;
        let node = &self.nodes[&id];
        let add = AddNode {
            node_id: id,
            api_addr: node.http_addr.clone(),
            raft_addr: node.raft_advertised_addr.to_string(),
        };
        let (leader, addr) = self.leader_raft_addr().await?;
        self.membership
            .add_node(leader, &addr, &add)
            .await
            .with_context(|| format!("adding node {id}"))
    }

    /// Removes node `id` from the voters through the leader and stops its process.
    pub async fn remove_node(&mut self, id: u64) -> anyhow::Result<()> {
        let (leader, addr) = self.leader_raft_addr().await?;
        self.membership
            .remove_node(leader, &addr, &RemoveNode { node_id: id })
            .await
            .with_context(|| format!("removing node {id}"))?;
        self.kill(id)?;
        self.nodes.remove(&id);
        Ok(())
    }

    /// Returns the leader's id and the address of its Raft listener (not its proxy).
    pub async fn leader_raft_addr(&self) -> anyhow::Result<(u64, String)> {
        let leader = self.wait_for_leader(Duration::from_secs(30)).await?;
        Ok((leader, self.nodes[&leader].raft_listen_addr.to_string()))
    }

    /// Returns node `id`'s metrics from its internal listener (with the state digest).
    pub async fn metrics(&self, id: u64) -> anyhow::Result<Value> {
        let addr = self.nodes[&id].raft_listen_addr.to_string();
        let metrics: NodeMetrics = self.internal.metrics(&addr, true).await?;
        Ok(serde_json::to_value(metrics)?)
    }

    /// Waits until every node reports the same last applied index and state digest; returns
    /// the index and digest.
    pub async fn wait_converged(&self, timeout: Duration) -> anyhow::Result<(u64, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut views = Vec::new();
            for id in self.ids() {
                if let Ok(m) = self.metrics(id).await {
                    views.push((
                        m["last_applied"].as_u64(),
                        m["state_digest"].as_str().map(String::from),
                    ));
                }
            }
            if views.len() == self.nodes.len()
                && let Some((Some(index), Some(digest))) = views.first().cloned()
                && views
                    .iter()
                    .all(|v| *v == (Some(index), Some(digest.clone())))
            {
                return Ok((index, digest));
            }
            if Instant::now() > deadline {
                bail!("nodes did not converge within {timeout:?}: {views:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.kill(id);
        }
    }
}
