//! Commits a batch of commands wherever the leader is: through openraft when this node leads,
//! forwarded to the leader's `/cluster/propose` otherwise. During an election it retries with
//! backoff, but only while retrying is safe — when the batch certainly was not applied (the
//! leader refused it, or the connection was refused) — and only up to a deadline; after that,
//! or when the outcome is unknown, the caller gets `Unavailable` and the client retries with the
//! same request id (idempotency makes that safe).

use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tix_core::{Command, Outcome};

use crate::cluster::{CallError, ClusterClient, stamp};
use crate::proposer::ProposeError;
use crate::types::{NodeId, Raft, TixNode};

/// First pause between attempts while no leader is known.
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
/// Longest pause between attempts. A pause also ends as soon as this node learns of a new
/// leader ([`Writer::pause_for_leader`]), so after a failover the write goes out the moment the
/// new leader's first heartbeat arrives, not at the end of a long backoff.
const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// Commits batches here or at the leader. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    raft: Raft,
    node_id: NodeId,
    client: ClusterClient,
    leader_wait: Duration,
}

impl Writer {
    /// Returns a writer for this node that retries for at most `leader_wait`.
    pub fn new(raft: Raft, node_id: NodeId, client: ClusterClient, leader_wait: Duration) -> Self {
        Writer {
            raft,
            node_id,
            client,
            leader_wait,
        }
    }

    /// Returns the current leader and its address, as this node sees it.
    pub fn leader(&self) -> Option<(NodeId, TixNode)> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader?;
        let node = m.membership_config.membership().get_node(&leader)?.clone();
        Some((leader, node))
    }

    /// Commits `commands` as one log entry and returns their outcomes.
    pub async fn write(&self, commands: Vec<Command>) -> Result<Vec<Outcome>, ProposeError> {
        let deadline = Instant::now() + self.leader_wait;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let leader = self.leader();
            let tried = leader.as_ref().map(|(id, _)| *id);
            let attempt = match leader {
                Some((id, _)) if id == self.node_id => self
                    .write_local(commands.clone())
                    .await
                    .map(|(outcomes, _)| outcomes),
                Some((leader, node)) => match self.forward(leader, &node, &commands).await {
                    Ok(Ok((outcomes, index))) => {
                        self.wait_applied(index, deadline).await;
                        Ok(outcomes)
                    }
                    Ok(Err(e)) => Err(e),
                    Err(CallError::NotDelivered(e)) => {
                        Err(ProposeError::NotLeader { leader: None })
                            .inspect_err(|_| tracing::debug!(error = %e, "leader unreachable"))
                    }
                    Err(CallError::Unknown(e)) => {
                        return Err(ProposeError::Unavailable(format!(
                            "lost contact with the leader; the outcome is unknown ({e})"
                        )));
                    }
                    // Nothing was executed, but retrying with the same secret cannot succeed.
                    Err(e @ (CallError::Unauthorized(_) | CallError::Refused { .. })) => {
                        tracing::warn!(leader, error = %e, "the leader refused a forwarded batch");
                        return Err(ProposeError::Unavailable(format!(
                            "the leader refused this node's forwarded batch: {e}"
                        )));
                    }
                },
                None => Err(ProposeError::NotLeader { leader: None }),
            };
            match attempt {
                Err(ProposeError::NotLeader { .. }) if Instant::now() < deadline => {
                    self.pause_for_leader(tried, backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(ProposeError::NotLeader { .. }) => {
                    return Err(ProposeError::Unavailable(format!(
                        "no leader could take the write within {:?}",
                        self.leader_wait
                    )));
                }
                other => return other,
            }
        }
    }

    /// Waits `pause`, or less: returns as soon as this node knows a leader other than `tried`
    /// (the leader the last attempt went to, `None` when none was known).
    pub async fn pause_for_leader(&self, tried: Option<NodeId>, pause: Duration) {
        let new_leader = self.leader_becomes(move |leader| leader.is_some() && leader != tried);
        let _ = tokio::time::timeout(pause, new_leader).await;
    }

    /// Returns once this node's view of the leader satisfies `wanted` (never, if Raft stops).
    async fn leader_becomes(&self, wanted: impl Fn(Option<NodeId>) -> bool) {
        let mut metrics = self.raft.metrics();
        loop {
            if wanted(metrics.borrow_and_update().current_leader) {
                return;
            }
            if metrics.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Forwards a batch to `leader`, giving up as soon as this node sees another leader (or
    /// none): a paused or cut-off leader may accept the connection and never answer, and the
    /// batch must not hold the proposer's slot while a new leader could take the writes. Giving
    /// up leaves the outcome unknown, so the caller answers 503 and the client retries.
    async fn forward(
        &self,
        leader: NodeId,
        node: &TixNode,
        commands: &[Command],
    ) -> Result<Result<(Vec<Outcome>, u64), ProposeError>, CallError> {
        let leader_changed = self.leader_becomes(|current| current != Some(leader));
        tokio::select! {
            result = self.client.propose(leader, &node.raft_addr, commands) => result,
            () = leader_changed => Err(CallError::Unknown(format!(
                "node {leader} stopped being the leader while the batch was forwarded to it"
            ))),
        }
    }

    /// Waits (up to the deadline) until this node has applied `index`, so that a handler
    /// reading local state right after a forwarded write sees it (read-your-writes).
    async fn wait_applied(&self, index: u64, deadline: Instant) {
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(BACKOFF_MAX);
        let waited = self
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "forwarded write")
            .await;
        if let Err(e) = waited {
            tracing::warn!(index, error = %e, "forwarded write committed but not yet applied here");
        }
    }

    /// Proposes `commands` on this node, stamped with this node's clock; never forwards.
    /// Returns the outcomes and the log index of the entry that carried them.
    pub async fn write_local(
        &self,
        commands: Vec<Command>,
    ) -> Result<(Vec<Outcome>, u64), ProposeError> {
        match self.raft.client_write(stamp(commands)).await {
            Ok(response) => Ok((response.data, response.log_id.index)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id.zip(f.leader_node),
                })
            }
            Err(other) => Err(ProposeError::Unavailable(other.to_string())),
        }
    }
}
