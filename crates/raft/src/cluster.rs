//! Cluster operations on the internal listener: forwarded proposals, read indexes for follower
//! reads, initialization, membership changes and per-node metrics.
//!
//! Any node serves any request: a follower forwards a batch of commands to the leader's
//! `/cluster/propose`, which proposes it as one log entry stamped with the leader's clock (the
//! receiving node never forwards again, so a stale view of who leads cannot loop). A follower
//! serving a linearizable read asks the leader for its read index (`/cluster/read-index`, which
//! confirms leadership with a quorum) and waits until it has applied that far.
//!
//! Forwarded proposals are the one hot path here, so their bodies (the commands, and the
//! outcomes with the entry's index) are in the cluster's binary format ([`crate::codec`]); a
//! body that does not decode is answered 400 with the reason. The operator-facing endpoints
//! (init, membership changes, metrics) and the read index stay JSON.
//!
//! These routes are served only behind the cluster-secret check
//! ([`crate::network::internal_router`]); [`ClusterClient`] signs every call.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use tix_core::{Batch, Command, Outcome};

use crate::codec;
use crate::network::{RAFT_CONTENT_TYPE, TARGET_HEADER, binary};
use crate::node::Node;
use crate::peer_auth::Signer;
use crate::proposer::{ProposeError, now_ms};
use crate::types::{NodeId, TixNode};

/// The pause before signing anew a request refused as stamped before the node's replay floor
/// (once per request).
const REPLAY_FLOOR_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// A node to add to the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddNode {
    /// Its id (never reuse the id of a wiped node).
    pub node_id: NodeId,
    /// Its public HTTP address.
    pub api_addr: String,
    /// Its internal Raft address.
    pub raft_addr: String,
}

/// A node to remove from the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveNode {
    /// Its id.
    pub node_id: NodeId,
}

/// The routes of the cluster API on the internal listener (unauthenticated: only
/// [`crate::network::internal_router`] serves them).
pub(crate) fn cluster_router(node: Node) -> Router {
    Router::new()
        .route("/cluster/propose", post(propose))
        .route("/cluster/read-index", post(read_index))
        .route("/cluster/init", post(init))
        .route("/cluster/add-node", post(add_node))
        .route("/cluster/remove-node", post(remove_node))
        .route("/cluster/metrics", get(metrics))
        .with_state(node)
}

fn error_response(status: StatusCode, e: impl ToString) -> Response {
    (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
}

/// Proposes a forwarded batch here; answers `NotLeader` rather than forwarding again.
async fn propose(State(node): State<Node>, body: Bytes) -> Response {
    let commands: Vec<Command> = match codec::decode(&body) {
        Ok(commands) => commands,
        Err(e) => {
            let text = format!("cannot decode the propose request: {e}");
            return (StatusCode::BAD_REQUEST, text).into_response();
        }
    };
    let result: Result<(Vec<Outcome>, u64), ProposeError> = node.write_local(commands).await;
    binary(&result)
}

/// Confirms leadership and returns the index a linearizable read must wait for.
async fn read_index(State(node): State<Node>) -> Response {
    let result: Result<u64, ProposeError> = node.read_index_local().await;
    Json(result).into_response()
}

async fn init(
    State(node): State<Node>,
    Json(members): Json<BTreeMap<NodeId, TixNode>>,
) -> Response {
    match node.raft.initialize(members).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(StatusCode::CONFLICT, e),
    }
}

/// Adds a node as a learner, waits until it has caught up, then makes it a voter.
async fn add_node(State(node): State<Node>, Json(add): Json<AddNode>) -> Response {
    let target = TixNode {
        api_addr: add.api_addr,
        raft_addr: add.raft_addr,
    };
    if let Err(e) = node.raft.add_learner(add.node_id, target, true).await {
        return error_response(StatusCode::CONFLICT, e);
    }
    let change = ChangeMembers::AddVoterIds(BTreeSet::from([add.node_id]));
    match node.raft.change_membership(change, false).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(StatusCode::CONFLICT, e),
    }
}

/// Removes a node from the voters (and from the cluster).
async fn remove_node(State(node): State<Node>, Json(remove): Json<RemoveNode>) -> Response {
    let change = ChangeMembers::RemoveVoters(BTreeSet::from([remove.node_id]));
    match node.raft.change_membership(change, false).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(StatusCode::CONFLICT, e),
    }
}

/// This node's view, as the cluster status page shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeMetrics {
    /// The node's id.
    pub node_id: NodeId,
    /// Leader, follower, learner or candidate.
    pub state: String,
    /// The current term.
    pub term: u64,
    /// Who it believes leads.
    pub leader_id: Option<NodeId>,
    /// Its last log index.
    pub last_log_index: Option<u64>,
    /// Its last applied index.
    pub last_applied: Option<u64>,
    /// Index of its last snapshot.
    pub snapshot_index: Option<u64>,
    /// Members: id → addresses, voters flagged.
    pub members: BTreeMap<NodeId, (TixNode, bool)>,
    /// On the leader: the highest index replicated to each node.
    pub matched: Option<BTreeMap<NodeId, Option<u64>>>,
    /// On the leader: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// The state digest at `last_applied`, to compare replicas.
    pub state_digest: Option<String>,
}

/// Returns this node's metrics; with `digest` set, also the state digest (costly on big states).
pub fn node_metrics(node: &Node, digest: bool) -> NodeMetrics {
    let m = node.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, n)| (*id, (n.clone(), voters.contains(id))))
        .collect();
    let state_digest = digest.then(|| {
        let state = node.shared.read();
        format!("{:016x}", state.digest())
    });
    NodeMetrics {
        node_id: node.id,
        state: format!("{:?}", m.state).to_lowercase(),
        term: m.current_term,
        leader_id: m.current_leader,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        members,
        matched: m
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect()),
        millis_since_quorum_ack: m.millis_since_quorum_ack,
        state_digest,
    }
}

#[derive(Deserialize)]
struct MetricsQuery {
    #[serde(default)]
    digest: bool,
}

async fn metrics(
    State(node): State<Node>,
    axum::extract::Query(q): axum::extract::Query<MetricsQuery>,
) -> Json<NodeMetrics> {
    Json(node_metrics(&node, q.digest))
}

/// A client for other nodes' cluster APIs; signs every call with the cluster secret. Every call
/// that changes something names its target node, which the signature covers, so a captured
/// call cannot be replayed to another member.
#[derive(Clone)]
pub struct ClusterClient {
    http: reqwest::Client,
    signer: Signer,
}

/// Why a call to another node failed, and whether the request may have been applied.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Not delivered (connection refused): safe to retry.
    #[error("not delivered: {0}")]
    NotDelivered(String),
    /// Delivered or maybe delivered (timeout, broken connection): the outcome is unknown.
    #[error("no answer, the outcome is unknown: {0}")]
    Unknown(String),
    /// The node refused our credentials (401): nothing was executed, and retrying with the
    /// same secret will not help.
    #[error("the node refused our cluster credentials: {0}")]
    Unauthorized(String),
    /// The node answered with another error status (for the operator calls: a conflict, a bad
    /// request); the text is its reason.
    #[error("the node answered {status}: {text}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The body of the answer.
        text: String,
    },
}

impl ClusterClient {
    /// Builds a client with pooled keep-alive connections and a per-call timeout, sending from
    /// `source_ip` when set and signing with `signer`.
    pub fn new(
        timeout: Duration,
        source_ip: Option<std::net::IpAddr>,
        signer: Signer,
    ) -> ClusterClient {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            .local_address(source_ip)
            .timeout(timeout)
            .build()
            .expect("HTTP client builds");
        ClusterClient { http, signer }
    }

    /// Signs and sends `request`; a 401 becomes [`CallError::Unauthorized`] with the node's
    /// reason, every other answer is returned as it is.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        let request = request
            .build()
            .map_err(|e| CallError::NotDelivered(e.to_string()))?;
        // Kept to sign anew: a request stamped before the node began (it was signed while the
        // node was starting) or below its evicted nonces is refused having executed nothing.
        let mut again = request.try_clone();
        let mut request = request;
        loop {
            self.signer.sign(&mut request);
            let response = self.http.execute(request).await.map_err(send_error)?;
            if response.status() != reqwest::StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let text = response.text().await.unwrap_or_default();
            let problem = serde_json::from_str::<serde_json::Value>(&text).ok();
            let reason = problem.as_ref().and_then(|v| v["reason"].as_str());
            if let (Some("beyond_replay_cache"), Some(retry)) = (reason, again.take()) {
                tokio::time::sleep(REPLAY_FLOOR_RETRY_PAUSE).await;
                request = retry;
                continue;
            }
            let detail = problem
                .as_ref()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(CallError::Unauthorized(detail));
        }
    }

    /// Sends a JSON request and decodes a JSON answer; an error status is `Refused`.
    async fn call_json<Resp: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Resp, CallError> {
        let response = self.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(CallError::Refused {
                status: status.as_u16(),
                text,
            });
        }
        response
            .json()
            .await
            .map_err(|e| CallError::Unknown(e.to_string()))
    }

    /// Sends a JSON request whose success has no body (204).
    async fn call_no_content(&self, request: reqwest::RequestBuilder) -> Result<(), CallError> {
        let response = self.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(CallError::Refused {
                status: status.as_u16(),
                text,
            });
        }
        Ok(())
    }

    /// Returns a POST to node `target` at `raft_addr`.
    fn post_to(&self, target: NodeId, raft_addr: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("http://{raft_addr}{path}"))
            .header(TARGET_HEADER, target.to_string())
    }

    /// Forwards a batch to the leader `target`, in the binary format both ways. An answer that
    /// is not a decodable success (another version, an error status) leaves the outcome
    /// unknown; a 401 is `Unauthorized` (the leader executed nothing).
    pub async fn propose(
        &self,
        target: NodeId,
        raft_addr: &str,
        commands: &[Command],
    ) -> Result<Result<(Vec<Outcome>, u64), ProposeError>, CallError> {
        let request = self
            .post_to(target, raft_addr, "/cluster/propose")
            .header(CONTENT_TYPE, RAFT_CONTENT_TYPE)
            .body(codec::encode(commands));
        let response = self.send(request).await?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| CallError::Unknown(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(CallError::Unknown(format!(
                "leader answered {status}: {text}"
            )));
        }
        codec::decode(&body).map_err(|e| CallError::Unknown(format!("leader's answer: {e}")))
    }

    /// Asks the leader `target` for a read index.
    pub async fn read_index(
        &self,
        target: NodeId,
        raft_addr: &str,
    ) -> Result<Result<u64, ProposeError>, CallError> {
        let request = self.post_to(target, raft_addr, "/cluster/read-index");
        self.call_json(request.json(&())).await
    }

    /// Reads a node's metrics; with `digest`, also its state digest.
    pub async fn metrics(&self, raft_addr: &str, digest: bool) -> Result<NodeMetrics, CallError> {
        let url = format!("http://{raft_addr}/cluster/metrics?digest={digest}");
        self.call_json(self.http.get(url)).await
    }

    /// Initializes a pristine cluster with `members` as its voters, through the member `target`
    /// listening at `raft_addr`.
    pub async fn init(
        &self,
        target: NodeId,
        raft_addr: &str,
        members: &BTreeMap<NodeId, TixNode>,
    ) -> Result<(), CallError> {
        let request = self.post_to(target, raft_addr, "/cluster/init");
        self.call_no_content(request.json(members)).await
    }

    /// Adds a node through the leader `target` at `raft_addr` (learner, caught up, then
    /// voter); takes as long as the new node needs to catch up, within this client's timeout.
    pub async fn add_node(
        &self,
        target: NodeId,
        raft_addr: &str,
        add: &AddNode,
    ) -> Result<(), CallError> {
        let request = self.post_to(target, raft_addr, "/cluster/add-node");
        self.call_no_content(request.json(add)).await
    }

    /// Removes a node from the voters through the leader `target` at `raft_addr`.
    pub async fn remove_node(
        &self,
        target: NodeId,
        raft_addr: &str,
        remove: &RemoveNode,
    ) -> Result<(), CallError> {
        let request = self.post_to(target, raft_addr, "/cluster/remove-node");
        self.call_no_content(request.json(remove)).await
    }
}

/// Classifies a failed send: a refused connection certainly delivered nothing.
fn send_error(e: reqwest::Error) -> CallError {
    if e.is_connect() {
        CallError::NotDelivered(e.to_string())
    } else {
        CallError::Unknown(e.to_string())
    }
}

/// Stamps a forwarded batch with this (the leader's) clock.
pub fn stamp(commands: Vec<Command>) -> Batch {
    Batch {
        time_ms: now_ms(),
        commands,
    }
}
