//! `tix cluster ...`: initialize a cluster, add or remove nodes at runtime, show its status,
//! generate a cluster secret, and `tix cluster up`, a local supervisor that runs N node
//! processes, initializes them, restarts a node that dies or stops answering its health check
//! (with backoff), and stops them all on Ctrl-C.
//!
//! Every call to a node's internal listener is signed with the cluster secret (read from
//! `--cluster-secret-file`, or from a node's `--data-dir`); `up` creates one secret for its
//! cluster and hands it to every node it starts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use tix_raft::TixNode;
use tix_raft::cluster::{AddNode, ClusterClient, NodeMetrics, RemoveNode};
use tix_raft::peer_auth::{ClusterSecret, SECRET_FILE_NAME, Signer};
use tokio::process::{Child, Command};

/// Cluster administration.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Initializes a new cluster with these voters (run once, against pristine nodes started
    /// with --no-bootstrap).
    Init {
        /// A member as `ID=HTTP_ADDR,RAFT_ADDR`, e.g. `1=127.0.0.1:8081,127.0.0.1:9081`.
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Adds a running, pristine node: first as a learner until it has caught up, then as a voter.
    AddNode {
        /// The Raft address of any member (the request is sent to the leader).
        #[arg(long)]
        via: String,
        /// The new node's id (never reuse the id of a wiped node).
        #[arg(long)]
        node_id: u64,
        /// The new node's public HTTP address.
        #[arg(long)]
        api_addr: String,
        /// The new node's Raft address.
        #[arg(long)]
        raft_addr: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Removes a node from the voters.
    RemoveNode {
        /// The Raft address of any member (the request is sent to the leader).
        #[arg(long)]
        via: String,
        /// The node to remove.
        #[arg(long)]
        node_id: u64,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Prints every member's role, term and indexes, asking each over its Raft address.
    Status {
        /// The Raft address of any member.
        #[arg(long, default_value = "127.0.0.1:9081")]
        via: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Generates a new cluster secret (32 random bytes as hex) for a deployment: copy the file
    /// to every node (mode 0600) and start each with --cluster-secret-file.
    Secret {
        /// Write it to this new file (mode 0600; never overwritten) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs a local cluster of N nodes under a supervisor until Ctrl-C.
    Up(UpArgs),
}

/// Where an operator command finds the cluster secret.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// The cluster secret file the nodes were started with.
    #[arg(long, env = "TIX_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Otherwise, a node's data directory: its `cluster.secret` is used.
    #[arg(long, env = "TIX_DATA_DIR", default_value = "./tix-data")]
    pub data_dir: PathBuf,
}

impl SecretArgs {
    /// Returns a client that signs with the secret, with `timeout` per call.
    fn client(&self, timeout: Duration) -> anyhow::Result<ClusterClient> {
        let path = self
            .cluster_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(SECRET_FILE_NAME));
        let secret = ClusterSecret::read(&path).context(
            "no cluster credentials: give --cluster-secret-file FILE, or --data-dir of a node",
        )?;
        Ok(ClusterClient::new(timeout, None, Signer::new(&secret)))
    }
}

/// Options of `tix cluster up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// How many nodes (3 or 5 for fault tolerance; 1 works too).
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Node i listens for HTTP on 127.0.0.1:(base + i).
    #[arg(long, default_value_t = 8080)]
    pub http_port_base: u16,
    /// Node i listens for Raft RPC on 127.0.0.1:(base + i).
    #[arg(long, default_value_t = 9080)]
    pub raft_port_base: u16,
    /// Node i keeps its data in DIR/node-i.
    #[arg(long, default_value = "./tix-cluster")]
    pub data_dir: PathBuf,
    /// Password of the `admin` account (generated and printed if unset).
    #[arg(long, env = "TIX_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Extra arguments passed to every `tix serve` (e.g. timings), after `--`.
    #[arg(last = true)]
    pub serve_args: Vec<String>,
}

/// Time limit of one operator call (adding a node waits until it has caught up).
const OPERATOR_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a cluster subcommand.
pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Init { members, secret } => {
            let client = secret.client(OPERATOR_CALL_TIMEOUT)?;
            let members = parse_members(&members)?;
            let (first, node) = members.iter().next().context("no members")?;
            client.init(*first, &node.raft_addr, &members).await?;
            println!("initialized a cluster of {} voters", members.len());
            Ok(())
        }
        ClusterCommand::AddNode {
            via,
            node_id,
            api_addr,
            raft_addr,
            secret,
        } => {
            let client = secret.client(OPERATOR_CALL_TIMEOUT)?;
            let (leader_id, leader) = leader_raft_addr(&client, &via).await?;
            let add = AddNode {
                node_id,
                api_addr,
                raft_addr,
            };
            client
                .add_node(leader_id, &leader, &add)
                .await
                .with_context(|| format!("adding node {node_id} through {leader}"))?;
            println!("node {node_id} added as a voter");
            Ok(())
        }
        ClusterCommand::RemoveNode {
            via,
            node_id,
            secret,
        } => {
            let client = secret.client(OPERATOR_CALL_TIMEOUT)?;
            let (leader_id, leader) = leader_raft_addr(&client, &via).await?;
            client
                .remove_node(leader_id, &leader, &RemoveNode { node_id })
                .await
                .with_context(|| format!("removing node {node_id} through {leader}"))?;
            println!("node {node_id} removed");
            Ok(())
        }
        ClusterCommand::Status { via, secret } => {
            let client = secret.client(Duration::from_secs(10))?;
            let view = metrics(&client, &via).await?;
            println!("leader: {:?}  term: {}", view.leader_id, view.term);
            for (id, (node, voter)) in &view.members {
                let kind = if *voter { "voter" } else { "learner" };
                match metrics(&client, &node.raft_addr).await {
                    Ok(m) => println!(
                        "  node {id} ({kind}) {:<9} term {} last_log {:?} applied {:?} \
                         snapshot {:?}  http://{}",
                        m.state,
                        m.term,
                        m.last_log_index,
                        m.last_applied,
                        m.snapshot_index,
                        node.api_addr
                    ),
                    Err(e) => println!("  node {id} ({kind}) unreachable: {e:#}"),
                }
            }
            Ok(())
        }
        ClusterCommand::Secret { out: None } => {
            println!("{}", ClusterSecret::generate().to_hex());
            Ok(())
        }
        ClusterCommand::Secret { out: Some(path) } => {
            ClusterSecret::generate().write_new(&path)?;
            println!(
                "wrote a new cluster secret to {} (mode 0600); copy it to every node and start \
                 each with --cluster-secret-file",
                path.display()
            );
            Ok(())
        }
        ClusterCommand::Up(args) => up(args).await,
    }
}

/// Parses `ID=HTTP_ADDR,RAFT_ADDR` members.
fn parse_members(members: &[String]) -> anyhow::Result<BTreeMap<u64, TixNode>> {
    let mut parsed = BTreeMap::new();
    for m in members {
        let parse = || -> Option<(u64, TixNode)> {
            let (id, addrs) = m.split_once('=')?;
            let (api, raft) = addrs.split_once(',')?;
            let node = TixNode {
                api_addr: api.trim().into(),
                raft_addr: raft.trim().into(),
            };
            Some((id.trim().parse().ok()?, node))
        };
        let (id, node) =
            parse().with_context(|| format!("--member {m:?} is not ID=HTTP_ADDR,RAFT_ADDR"))?;
        anyhow::ensure!(
            parsed.insert(id, node).is_none(),
            "node id {id} given twice"
        );
    }
    Ok(parsed)
}

/// Returns the metrics of the node at `raft_addr`.
async fn metrics(client: &ClusterClient, raft_addr: &str) -> anyhow::Result<NodeMetrics> {
    client
        .metrics(raft_addr, false)
        .await
        .with_context(|| format!("asking {raft_addr} for its metrics"))
}

/// Finds the leader's id and Raft address by asking `via`.
async fn leader_raft_addr(client: &ClusterClient, via: &str) -> anyhow::Result<(u64, String)> {
    let m = metrics(client, via).await?;
    let leader = m
        .leader_id
        .context("the node knows no leader right now; retry shortly")?;
    let (node, _) = m
        .members
        .get(&leader)
        .context("the leader is not in the membership")?;
    Ok((leader, node.raft_addr.clone()))
}

/// One supervised node.
struct Slot {
    id: u64,
    http_addr: String,
    raft_addr: String,
    data_dir: PathBuf,
    secret_file: PathBuf,
    child: Option<Child>,
    restart_at: Option<Instant>,
    backoff: Duration,
    started_at: Instant,
    health_failures: u32,
}

/// Consecutive failed health checks before a live but unresponsive node is restarted.
const HEALTH_FAILURES_MAX: u32 = 5;
/// First pause before restarting a node that died: longer than two election timeouts, so the
/// survivors elect a new leader first instead of a restarted leader simply resuming.
const RESTART_BACKOFF_FIRST: Duration = Duration::from_secs(3);
/// Longest pause before restarting a node that keeps dying.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

fn spawn_node(slot: &Slot, password: &str, extra: &[String]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .arg("serve")
        .args(["--node-id", &slot.id.to_string()])
        .args([
            "--http-addr",
            &slot.http_addr,
            "--raft-addr",
            &slot.raft_addr,
        ])
        .arg("--data-dir")
        .arg(&slot.data_dir)
        .arg("--cluster-secret-file")
        .arg(&slot.secret_file)
        .arg("--no-bootstrap")
        .args(extra)
        .env("TIX_ADMIN_PASSWORD", password)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,openraft=error".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    Ok(child)
}

async fn healthy(http: &reqwest::Client, http_addr: &str) -> Option<Value> {
    let response = http
        .get(format!("http://{http_addr}/healthz"))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// `tix cluster up`: starts, initializes, watches and restarts the nodes until Ctrl-C.
async fn up(args: UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=9).contains(&args.nodes), "--nodes must be 1 to 9");
    let password = args
        .admin_password
        .clone()
        .unwrap_or_else(tix_http::seed::generate_password);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    // One secret for the whole local cluster, beside the nodes' data directories.
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let secret_file = args.data_dir.join(SECRET_FILE_NAME);
    let (secret, _) = ClusterSecret::read_or_create(&secret_file)?;
    let client = ClusterClient::new(Duration::from_secs(5), None, Signer::new(&secret));
    let mut slots: Vec<Slot> = (1..=args.nodes)
        .map(|i| Slot {
            id: i,
            http_addr: format!("127.0.0.1:{}", args.http_port_base + i as u16),
            raft_addr: format!("127.0.0.1:{}", args.raft_port_base + i as u16),
            data_dir: args.data_dir.join(format!("node-{i}")),
            secret_file: secret_file.clone(),
            child: None,
            restart_at: None,
            backoff: RESTART_BACKOFF_FIRST,
            started_at: Instant::now(),
            health_failures: 0,
        })
        .collect();
    for slot in &mut slots {
        slot.child = Some(spawn_node(slot, &password, &args.serve_args)?);
    }
    let members: BTreeMap<u64, TixNode> = slots
        .iter()
        .map(|s| {
            (
                s.id,
                TixNode {
                    api_addr: s.http_addr.clone(),
                    raft_addr: s.raft_addr.clone(),
                },
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        match metrics(&client, &slots[0].raft_addr).await {
            Ok(m) => break m,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => bail!("node 1 did not start: {e:#}"),
        }
    };
    if first.members.is_empty() {
        client
            .init(slots[0].id, &slots[0].raft_addr, &members)
            .await?;
    }
    let leader = loop {
        let mut found = None;
        for slot in &slots {
            if let Ok(m) = client.metrics(&slot.raft_addr, false).await {
                found = found.or(m.leader_id);
            }
        }
        match found {
            Some(leader) => break leader,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            None => bail!("no leader was elected within 60 s"),
        }
    };
    println!(
        "tix cluster of {} nodes is up; leader: node {leader}",
        args.nodes
    );
    for slot in &slots {
        println!(
            "  node {}: http://{}  (Raft {}, data {})",
            slot.id,
            slot.http_addr,
            slot.raft_addr,
            slot.data_dir.display()
        );
    }
    match &args.admin_password {
        Some(_) => println!("admin login: username `admin`, password from TIX_ADMIN_PASSWORD"),
        None => println!("admin login: username `admin`, password `{password}` (on first start)"),
    }
    println!("cluster secret: {}", secret_file.display());
    println!(
        "status: tix cluster status --via {} --cluster-secret-file {}   stop: Ctrl-C",
        slots[0].raft_addr,
        secret_file.display()
    );

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tick.tick() => {}
        }
        for slot in &mut slots {
            supervise(slot, &http, &password, &args.serve_args).await;
        }
    }
    println!("stopping {} nodes", slots.len());
    for slot in &mut slots {
        if let Some(pid) = slot.child.as_ref().and_then(Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for slot in &mut slots {
        if let Some(child) = slot.child.as_mut()
            && tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
        {
            let _ = child.kill().await;
        }
    }
    Ok(())
}

/// One supervision step for a node: notice a death, restart when due, health-check the living.
async fn supervise(slot: &mut Slot, http: &reqwest::Client, password: &str, extra: &[String]) {
    if let Some(child) = slot.child.as_mut()
        && let Ok(Some(status)) = child.try_wait()
    {
        println!(
            "node {} exited ({status}); restarting in {:?}",
            slot.id, slot.backoff
        );
        slot.child = None;
        slot.restart_at = Some(Instant::now() + slot.backoff);
        slot.backoff = (slot.backoff * 2).min(RESTART_BACKOFF_MAX);
    }
    if slot.child.is_none() {
        if slot.restart_at.is_some_and(|at| Instant::now() >= at) {
            match spawn_node(slot, password, extra) {
                Ok(child) => {
                    println!("node {} restarted", slot.id);
                    slot.child = Some(child);
                    slot.started_at = Instant::now();
                    slot.restart_at = None;
                    slot.health_failures = 0;
                }
                Err(e) => println!("node {} could not be restarted: {e}", slot.id),
            }
        }
        return;
    }
    if healthy(http, &slot.http_addr).await.is_some() {
        slot.health_failures = 0;
        if slot.started_at.elapsed() > Duration::from_secs(60) {
            slot.backoff = RESTART_BACKOFF_FIRST;
        }
        return;
    }
    slot.health_failures += 1;
    let starting = slot.started_at.elapsed() < Duration::from_secs(10);
    if slot.health_failures >= HEALTH_FAILURES_MAX && !starting {
        println!(
            "node {} failed {HEALTH_FAILURES_MAX} health checks; killing it",
            slot.id
        );
        if let Some(child) = slot.child.as_mut() {
            let _ = child.kill().await;
        }
    }
}
