//! `GET /api/v1/cluster`: the cluster as this node can see it — leader, term, and per node its
//! addresses, role, log and applied indexes, replication lag and when it last answered.
//!
//! Each member's own numbers come from its internal `/cluster/metrics` (a short timeout; an
//! unreachable node is reported as such; `response_ms` is how long it took to answer now). Replication lag and the committed index come from the
//! leader's view: `committed` is the highest index a majority of voters has stored.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tix_raft::cluster::{NodeMetrics, node_metrics};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;

/// How long to wait for one node's metrics.
const NODE_METRICS_TIMEOUT: Duration = Duration::from_millis(1000);

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/cluster", get(status))
}

/// Returns the highest index stored on a majority of voters, from the leader's matched map.
fn quorum_index(leader: &NodeMetrics) -> Option<u64> {
    let matched = leader.matched.as_ref()?;
    let mut indexes: Vec<u64> = leader
        .members
        .iter()
        .filter(|(_, (_, voter))| *voter)
        .map(|(id, _)| {
            if *id == leader.node_id {
                leader.last_log_index.unwrap_or(0)
            } else {
                matched.get(id).copied().flatten().unwrap_or(0)
            }
        })
        .collect();
    if indexes.is_empty() {
        return None;
    }
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    Some(indexes[indexes.len() / 2])
}

/// Cluster status
///
/// The cluster as this node sees it: the leader and term, the committed index (the highest
/// index stored on a majority of voters, from the leader's replication view), and per member
/// its addresses, role, log, applied and snapshot indexes and replication lag. Each member's
/// own numbers are fetched from it live with a 1 s timeout; a member that does not answer is
/// listed with `reachable: false`, `role: unreachable` and an `error`. Admin only: the status
/// names internal addresses. `response_ms` is how long the member took to answer this request.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "operations", operation_id = "clusterStatus",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The cluster status.", body = crate::views::ClusterStatus),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::AdminOnly),
    ))]
async fn status(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "only an admin may see the cluster status",
        ));
    }
    Ok(Json(cluster_status(&state).await))
}

/// The cluster as this node sees it, every member asked for its metrics; shared with the
/// admin page.
pub async fn cluster_status(state: &AppState) -> Value {
    let local = node_metrics(&state.node, false);
    let client = state.node.cluster_client().clone();
    let mut fetches = Vec::new();
    for (id, (node, _)) in &local.members {
        let client = client.clone();
        let (id, raft_addr) = (*id, node.raft_addr.clone());
        let local_id = local.node_id;
        let local_copy = local.clone();
        fetches.push(async move {
            let started = Instant::now();
            let result = if id == local_id {
                Ok(local_copy)
            } else {
                match tokio::time::timeout(NODE_METRICS_TIMEOUT, client.metrics(&raft_addr, false))
                    .await
                {
                    Ok(Ok(m)) => Ok(m),
                    Ok(Err(e)) => Err(format!("{e:?}")),
                    Err(_) => Err("no answer within 1 s".to_owned()),
                }
            };
            (id, result, started.elapsed())
        });
    }
    let answers = futures::future::join_all(fetches).await;
    let leader_view = answers
        .iter()
        .filter_map(|(_, r, _)| r.as_ref().ok())
        .find(|m| m.state == "leader")
        .cloned();
    let committed = leader_view.as_ref().and_then(quorum_index);
    let mut nodes = Vec::new();
    for (id, result, elapsed) in answers {
        let (addrs, voter) = local.members[&id].clone();
        let lag = leader_view.as_ref().and_then(|l| {
            let last = l.last_log_index?;
            let matched = if id == l.node_id {
                l.last_log_index
            } else {
                l.matched.as_ref()?.get(&id).copied().flatten()
            };
            Some(last.saturating_sub(matched.unwrap_or(0)))
        });
        let mut node = json!({
            "id": id,
            "api_addr": addrs.api_addr,
            "raft_addr": addrs.raft_addr,
            "voter": voter,
            "replication_lag": lag,
        });
        match result {
            Ok(m) => {
                let role = if !voter {
                    "learner".to_owned()
                } else {
                    m.state.clone()
                };
                node["role"] = json!(role);
                node["reachable"] = json!(true);
                node["term"] = json!(m.term);
                node["last_log_index"] = json!(m.last_log_index);
                node["last_applied"] = json!(m.last_applied);
                node["committed"] = json!(committed);
                node["snapshot_index"] = json!(m.snapshot_index);
                node["response_ms"] = json!(elapsed.as_millis() as u64);
            }
            Err(error) => {
                node["role"] = json!("unreachable");
                node["reachable"] = json!(false);
                node["error"] = json!(error);
            }
        }
        nodes.push(node);
    }
    json!({
        "node_id": local.node_id,
        "leader_id": local.leader_id,
        "term": local.term,
        "committed": committed,
        "millis_since_quorum_ack": leader_view.as_ref().and_then(|l| l.millis_since_quorum_ack),
        "nodes": nodes,
    })
}
