//! A tix node: opens durable storage in its data directory, starts openraft with tix's log store
//! and state machine, and offers the operations the edges need (propose a command, make a read
//! linearizable, wait for a leader).
//!
//! A single-node deployment is a one-voter cluster initialized on first start (`bootstrap`), so
//! one node and five nodes run the same code path.
//!
//! The node's cluster secret ([`crate::peer_auth`]) comes from `cluster_secret_file`, or from
//! `data_dir/cluster.secret`, created (mode 0600) on first start when absent: the internal
//! listener is authenticated without any setup step, and a multi-node cluster shares one file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::{Config, SnapshotPolicy};
use tix_core::{Command, Outcome};

use crate::cluster::ClusterClient;
use crate::log_store::LogStore;
use crate::network::HttpNetwork;
use crate::peer_auth::{
    AUTH_NONCES_MAX_DEFAULT, AUTH_WINDOW_MS_DEFAULT, ClusterSecret, SECRET_FILE_NAME, SecretError,
    Signer, Verifier,
};
use crate::proposer::{ProposeError, Proposer, ProposerConfig};
use crate::state_machine::{SharedState, StateMachineOptions, StateMachineStore};
use crate::types::{NodeId, Raft, TixNode};
use crate::writer::Writer;

/// The defaults of a node's timings and limits, written once: [`NodeConfig::new`], `tix serve`'s
/// flags and `tix failover`'s flags all use these.
pub mod defaults {
    /// Leader heartbeat period; openraft also uses it as the timeout of each AppendEntries RPC.
    pub const HEARTBEAT_INTERVAL_MS: u64 = 40;
    /// Lower bound of the randomized election timeout. openraft 0.9 lets a follower that heard
    /// from its leader stand for election only after the leader's lease (the upper bound) plus
    /// this randomized timeout, so a failover takes 360–480 ms plus a tick (1.5 heartbeats)
    /// and one vote round: 467 ms median, 575 ms max over 20 kills here, with no election
    /// during saturating load (docs/CLUSTER.md, "Timing").
    pub const ELECTION_TIMEOUT_MIN_MS: u64 = 120;
    /// Upper bound of the randomized election timeout (and the leader's lease).
    pub const ELECTION_TIMEOUT_MAX_MS: u64 = 240;
    /// Snapshot (and log compaction) period in log entries.
    pub const SNAPSHOT_LOGS_SINCE_LAST: u64 = 5000;
    /// Log entries kept below the last snapshot.
    pub const LOGS_KEPT_AFTER_SNAPSHOT: u64 = 1000;
    /// The size after which the log starts a new segment file.
    pub const LOG_SEGMENT_BYTES: u64 = crate::segment_log::SEGMENT_BYTES_TARGET;
    /// The smallest and largest `--log-segment-bytes`.
    pub const LOG_SEGMENT_BYTES_RANGE: std::ops::RangeInclusive<u64> = 4096..=(1 << 30);
    /// Time limit for sending one snapshot chunk.
    pub const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;
    /// The most commands in one log entry.
    pub const BATCH_COMMANDS_MAX: usize = 2048;
    /// The most batches being committed at once.
    pub const BATCHES_IN_FLIGHT_MAX: usize = 1;
    /// How long a batch may wait to grow to the previous batch's size, in microseconds.
    pub const BATCH_LINGER_US: u64 = 2000;
}

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id; unique in the cluster and never reused for a wiped node.
    pub node_id: NodeId,
    /// Where the log (`log/`), the state (`state.redb`) and snapshots live.
    pub data_dir: PathBuf,
    /// The public HTTP address other nodes and clients use.
    pub api_addr: String,
    /// The internal Raft RPC address other nodes use (stored in the membership).
    pub raft_addr: String,
    /// The local address outgoing Raft and cluster calls are sent from, if set.
    pub source_ip: Option<std::net::IpAddr>,
    /// Initialize a one-voter cluster of this node if the storage is pristine.
    pub bootstrap: bool,
    /// Leader heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and compact the log) after this many new log entries.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept below the last snapshot, so a briefly absent follower catches up from
    /// the log instead of a snapshot.
    pub logs_kept_after_snapshot: u64,
    /// The size after which the log starts a new segment file (the disk holds the log since
    /// the last purge, rounded up to whole segments).
    pub log_segment_bytes: u64,
    /// Batching limits.
    pub proposer: ProposerConfig,
    /// How long a write waits for a leader during an election before answering `Unavailable`.
    pub leader_wait_ms: u64,
    /// Time limit for sending one snapshot chunk to a follower (a slow follower must still get
    /// a whole chunk through, or it can never catch up once the log was compacted past it).
    pub install_snapshot_timeout_ms: u64,
    /// Timeout of one call to another node's cluster API (forwarded writes, read indexes).
    pub cluster_call_timeout_ms: u64,
    /// What the node does when it can no longer trust its state (see [`crate::FailStop`]), and the
    /// test-only fault injection.
    pub faults: StateMachineOptions,
    /// The file holding the cluster secret (64 hex digits); `None`: `data_dir/cluster.secret`,
    /// created on first start if absent.
    pub cluster_secret_file: Option<PathBuf>,
    /// How far a signed request's timestamp may be from this node's clock, either way.
    pub auth_window_ms: u64,
    /// The most nonces remembered to refuse replays inside the window.
    pub auth_nonces_max: usize,
    /// When this incarnation of the node began (ms since the epoch), taken when the
    /// configuration is made, before the caller binds the listeners: signed requests stamped at
    /// or before it are refused (the nonces an earlier incarnation saw are gone). Taking it at
    /// `Node::start` instead refused a request that reached a listener bound earlier, while the
    /// node was still opening its storage.
    pub started_at_ms: u64,
}

impl NodeConfig {
    /// Returns a configuration with default timings for a node at the given addresses.
    pub fn new(node_id: NodeId, data_dir: PathBuf, api_addr: String, raft_addr: String) -> Self {
        Self {
            node_id,
            data_dir,
            api_addr,
            raft_addr,
            source_ip: None,
            bootstrap: true,
            heartbeat_interval_ms: defaults::HEARTBEAT_INTERVAL_MS,
            election_timeout_min_ms: defaults::ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max_ms: defaults::ELECTION_TIMEOUT_MAX_MS,
            snapshot_logs_since_last: defaults::SNAPSHOT_LOGS_SINCE_LAST,
            logs_kept_after_snapshot: defaults::LOGS_KEPT_AFTER_SNAPSHOT,
            log_segment_bytes: defaults::LOG_SEGMENT_BYTES,
            proposer: ProposerConfig::default(),
            leader_wait_ms: 5_000,
            install_snapshot_timeout_ms: defaults::INSTALL_SNAPSHOT_TIMEOUT_MS,
            cluster_call_timeout_ms: 5_000,
            faults: StateMachineOptions::default(),
            cluster_secret_file: None,
            auth_window_ms: AUTH_WINDOW_MS_DEFAULT,
            auth_nonces_max: AUTH_NONCES_MAX_DEFAULT,
            started_at_ms: crate::proposer::now_ms(),
        }
    }
}

impl NodeConfig {
    /// Checks that the timings and limits fit together, naming the setting that does not (the
    /// names are `tix serve`'s flags).
    pub fn validate(&self) -> Result<(), NodeError> {
        let fail = |detail: &str| Err(NodeError::Config(detail.to_owned()));
        if self.heartbeat_interval_ms < 10 {
            return fail("--heartbeat-interval-ms must be at least 10");
        }
        if self.election_timeout_min_ms < 3 * self.heartbeat_interval_ms {
            return fail("--election-timeout-min-ms must be at least 3 × --heartbeat-interval-ms");
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return fail("--election-timeout-max-ms must be above --election-timeout-min-ms");
        }
        if self.proposer.batch_commands_max < 1 {
            return fail("--batch-commands-max must be at least 1");
        }
        if self.proposer.in_flight_max < 1 {
            return fail("--batches-in-flight-max must be at least 1");
        }
        if self.snapshot_logs_since_last < 1 {
            return fail("--snapshot-logs-since-last must be at least 1");
        }
        if !defaults::LOG_SEGMENT_BYTES_RANGE.contains(&self.log_segment_bytes) {
            return fail("--log-segment-bytes must be between 4096 and 1073741824 (1 GiB)");
        }
        Ok(())
    }
}

/// Why a node could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory or database could not be opened.
    #[error("cannot open storage in {path}: {detail}")]
    Storage {
        /// The data directory.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The timings do not fit together.
    #[error("invalid Raft configuration: {0}")]
    Config(String),
    /// openraft refused to start or initialize.
    #[error("raft: {0}")]
    Raft(String),
    /// No leader was elected in time.
    #[error("no leader elected within {0:?}")]
    NoLeader(Duration),
    /// The cluster secret file is missing, unreadable or invalid.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A running node.
#[derive(Clone)]
pub struct Node {
    /// This node's id.
    pub id: NodeId,
    /// The openraft handle.
    pub raft: Raft,
    /// The applied state, for reads.
    pub shared: Arc<SharedState>,
    proposer: Proposer,
    writer: Writer,
    client: ClusterClient,
    verifier: Arc<Verifier>,
    leader_wait: Duration,
}

impl Node {
    /// Opens storage, starts Raft and, when `bootstrap` is set and the storage is pristine,
    /// initializes a one-voter cluster.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        let storage_error = |detail: String| NodeError::Storage {
            path: config.data_dir.display().to_string(),
            detail,
        };
        if config.auth_window_ms == 0 || config.auth_nonces_max == 0 {
            return Err(NodeError::Config(
                "auth_window_ms and auth_nonces_max must be above zero".into(),
            ));
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|e| storage_error(e.to_string()))?;
        let log_store = LogStore::open_with(&config.data_dir, config.log_segment_bytes)
            .map_err(|e| storage_error(e.to_string()))?;
        // The state machine has its own database (`state.redb`) and snapshot files: applying and
        // checkpointing never hold the write lock the log writer needs.
        let state_machine = StateMachineStore::open_with(&config.data_dir, config.faults.clone())
            .map_err(|e| storage_error(e.to_string()))?;
        let shared = state_machine.shared();
        let secret = cluster_secret(&config)?;
        let signer = Signer::new(&secret);
        let verifier = Arc::new(Verifier::new(
            &secret,
            config.node_id,
            config.auth_window_ms,
            config.auth_nonces_max,
            config.started_at_ms,
        ));

        let raft_config = Config {
            cluster_name: "tix".into(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: config.logs_kept_after_snapshot,
            install_snapshot_timeout: config.install_snapshot_timeout_ms,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            ..Default::default()
        };
        let raft_config = Arc::new(
            raft_config
                .validate()
                .map_err(|e| NodeError::Config(e.to_string()))?,
        );
        let raft = Raft::new(
            config.node_id,
            raft_config,
            HttpNetwork {
                source_ip: config.source_ip,
                signer: signer.clone(),
            },
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;

        if config.bootstrap
            && !raft
                .is_initialized()
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?
        {
            let me = TixNode {
                api_addr: config.api_addr.clone(),
                raft_addr: config.raft_addr.clone(),
            };
            let members = BTreeMap::from([(config.node_id, me)]);
            raft.initialize(members)
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?;
            tracing::info!(node_id = config.node_id, "initialized a one-voter cluster");
        }
        let client = ClusterClient::new(
            Duration::from_millis(config.cluster_call_timeout_ms),
            config.source_ip,
            signer,
        );
        let leader_wait = Duration::from_millis(config.leader_wait_ms);
        let writer = Writer::new(raft.clone(), config.node_id, client.clone(), leader_wait);
        let proposer = Proposer::start(writer.clone(), config.proposer.clone());
        tokio::spawn(fail_stop_on_fatal(raft.clone(), shared.clone()));
        tokio::spawn(sweep_holds(
            raft.clone(),
            shared.clone(),
            writer.clone(),
            config.node_id,
        ));
        Ok(Node {
            id: config.node_id,
            raft,
            shared,
            proposer,
            writer,
            client,
            verifier,
            leader_wait,
        })
    }

    /// Returns the verifier of this node's internal listener.
    pub(crate) fn verifier(&self) -> Arc<Verifier> {
        self.verifier.clone()
    }

    /// Commits a command through the log and returns its outcome.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        self.proposer.propose(command).await
    }

    /// Proposes a batch on this node without forwarding (the receiving end of a forward).
    pub async fn write_local(
        &self,
        commands: Vec<Command>,
    ) -> Result<(Vec<Outcome>, u64), ProposeError> {
        self.writer.write_local(commands).await
    }

    /// Returns the client for other nodes' cluster APIs.
    pub fn cluster_client(&self) -> &ClusterClient {
        &self.client
    }

    /// Returns the current leader and its addresses, as this node sees it.
    pub fn leader(&self) -> Option<(NodeId, TixNode)> {
        self.writer.leader()
    }

    /// Confirms with a quorum that this node leads and returns the read index: the log index a
    /// linearizable read must have applied.
    pub async fn read_index_local(&self) -> Result<u64, ProposeError> {
        match self.raft.get_read_log_id().await {
            Ok((read, _)) => Ok(read.map(|l| l.index).unwrap_or(0)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id.zip(f.leader_node),
                })
            }
            // A quorum did not answer this round's heartbeats in time (a loaded follower, a
            // slow fsync): a read is always safe to try again, so it is retried like a missing
            // leader, up to `leader_wait`, instead of answering 503 at once.
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                tracing::debug!(error = %e, "read index: no quorum this round");
                Err(ProposeError::NotLeader { leader: None })
            }
            Err(e) => Err(ProposeError::Unavailable(e.to_string())),
        }
    }

    /// Returns once this node has applied everything committed before the call, so a read of
    /// [`Node::shared`] that follows is linearizable. The leader confirms its leadership with a
    /// quorum (read index); a follower asks the leader for the read index and waits to apply it.
    pub async fn ensure_linearizable(&self) -> Result<(), ProposeError> {
        let deadline = std::time::Instant::now() + self.leader_wait;
        let mut backoff = Duration::from_millis(10);
        let index = loop {
            let leader = self.leader();
            let tried = leader.as_ref().map(|(id, _)| *id);
            let attempt = match leader {
                Some((id, _)) if id == self.id => self.read_index_local().await,
                Some((id, node)) => match self.client.read_index(id, &node.raft_addr).await {
                    Ok(result) => result,
                    Err(_) => Err(ProposeError::NotLeader { leader: None }),
                },
                None => Err(ProposeError::NotLeader { leader: None }),
            };
            match attempt {
                Ok(index) => break index,
                Err(ProposeError::NotLeader { .. }) if std::time::Instant::now() < deadline => {
                    self.writer.pause_for_leader(tried, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                Err(ProposeError::NotLeader { .. }) => {
                    return Err(ProposeError::Unavailable(
                        "no leader to confirm the read".into(),
                    ));
                }
                Err(e) => return Err(e),
            }
        };
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        self.raft
            .wait(Some(remaining.max(Duration::from_millis(100))))
            .applied_index_at_least(Some(index), "read index applied")
            .await
            .map_err(|e| {
                ProposeError::Unavailable(format!("catching up to the read index: {e}"))
            })?;
        Ok(())
    }

    /// Waits until some node is the leader, as seen by this node.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, NodeError> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|_| NodeError::NoLeader(timeout))?;
        Ok(metrics.current_leader.expect("waited for it"))
    }

    /// Stops Raft; in-flight proposals fail with `Unavailable`.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// Stops the replica (see [`crate::FailStop`]) when Raft stops for anything but a shutdown: a storage
/// error in the log or the state machine, or a panic inside openraft. Raft's core is gone then,
/// and a node that goes on answering reads from a state nobody advances must not.
async fn fail_stop_on_fatal(raft: Raft, shared: Arc<SharedState>) {
    let mut metrics = raft.metrics();
    loop {
        let fatal = match &metrics.borrow_and_update().running_state {
            Ok(()) => None,
            Err(openraft::error::Fatal::Stopped) => return,
            Err(fatal) => Some(fatal.to_string()),
        };
        if let Some(fatal) = fatal {
            shared.fail(format!("raft stopped: {fatal}"));
            return;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Returns the node's cluster secret: from `cluster_secret_file`, or from (and on first start
/// created in) the data directory. Logs which file, never the secret.
fn cluster_secret(config: &NodeConfig) -> Result<ClusterSecret, NodeError> {
    let (path, secret, created) = match &config.cluster_secret_file {
        Some(path) => (path.clone(), ClusterSecret::read(path)?, false),
        None => {
            let path = config.data_dir.join(SECRET_FILE_NAME);
            let (secret, created) = ClusterSecret::read_or_create(&path)?;
            (path, secret, created)
        }
    };
    if crate::peer_auth::readable_by_others(&path) {
        tracing::warn!(file = %path.display(), "the cluster secret file is readable by others than its owner; chmod 600 it");
    }
    if created && !config.bootstrap {
        tracing::warn!(
            file = %path.display(),
            "created a new cluster secret for a node that joins a cluster: every member needs the \
             same secret (copy one file to all, or start each with --cluster-secret-file)"
        );
    } else if created {
        tracing::info!(file = %path.display(), "created a new cluster secret");
    } else {
        tracing::info!(file = %path.display(), "cluster secret");
    }
    Ok(secret)
}

/// Snapshot bytes per install RPC: chunks travel as raw bytes in the binary codec, read from and
/// written to the snapshot files, so a chunk costs its size in memory once on each side.
const SNAPSHOT_CHUNK_BYTES: u64 = 4 << 20;

/// How often the leader checks for holds that are due to expire.
const HOLD_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Expired holds are released when log time passes their expiry, which happens when the next
/// batch is applied. So that an idle event does not show lapsed holds as held, the leader
/// proposes an empty batch (it only advances log time) when a hold is due. Ends when Raft stops.
async fn sweep_holds(raft: Raft, shared: Arc<SharedState>, writer: Writer, node_id: NodeId) {
    let mut tick = tokio::time::interval(HOLD_SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if raft.is_initialized().await.is_err() {
            return;
        }
        let due = shared
            .read()
            .next_hold_expiry_ms()
            .is_some_and(|at| at <= crate::proposer::now_ms());
        let leading = raft.metrics().borrow().current_leader == Some(node_id);
        if due
            && leading
            && let Err(e) = writer.write_local(Vec::new()).await
        {
            tracing::debug!(error = %e, "hold sweep");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NodeConfig {
        NodeConfig::new(1, PathBuf::from("unused"), "a:1".into(), "b:2".into())
    }

    /// The defaults pass; each timing rule refuses one step past its limit and names the flag.
    #[test]
    fn validation_names_the_setting_that_does_not_fit() {
        config().validate().expect("the defaults fit together");
        let refused = |adjust: fn(&mut NodeConfig), flag: &str| {
            let mut c = config();
            adjust(&mut c);
            let e = c.validate().expect_err(flag).to_string();
            assert!(e.contains(flag), "{e}");
        };
        refused(|c| c.heartbeat_interval_ms = 9, "--heartbeat-interval-ms");
        refused(
            |c| c.election_timeout_min_ms = 3 * c.heartbeat_interval_ms - 1,
            "--election-timeout-min-ms",
        );
        refused(
            |c| c.election_timeout_max_ms = c.election_timeout_min_ms,
            "--election-timeout-max-ms",
        );
        refused(
            |c| c.proposer.batch_commands_max = 0,
            "--batch-commands-max",
        );
        refused(|c| c.proposer.in_flight_max = 0, "--batches-in-flight-max");
        refused(|c| c.log_segment_bytes = 4095, "--log-segment-bytes");
        refused(
            |c| c.log_segment_bytes = (1 << 30) + 1,
            "--log-segment-bytes",
        );
        let mut edge = config();
        edge.log_segment_bytes = 4096;
        edge.heartbeat_interval_ms = 10;
        edge.election_timeout_min_ms = 30;
        edge.election_timeout_max_ms = 31;
        edge.validate().expect("exactly at the limits");
    }
}
