//! Raft RPC over HTTP: a client per peer (reqwest, pooled keep-alive connections) and an axum
//! router for the internal listener (`/raft/append`, `/raft/vote`, `/raft/snapshot`).
//!
//! Every RPC names its target node id in the `x-tix-target-node` header and the receiver refuses
//! one meant for another node (a stale address after a node was replaced must not deliver votes
//! to the wrong server). Connection failures map to `Unreachable` so openraft backs off, and each
//! RPC honours openraft's timeout for it.
//!
//! Request and response bodies are in the cluster's versioned binary format ([`crate::codec`],
//! content type [`RAFT_CONTENT_TYPE`]): an append carries whole batches of commands without
//! field names, and a snapshot chunk travels as raw bytes rather than a JSON array of decimal
//! numbers. A body that does not decode (truncated, another format version, the JSON of an
//! earlier tix version) is answered 400 with a text that says why; the sender sees it as a
//! network error and openraft retries.
//!
//! Every request is signed with the cluster secret ([`crate::peer_auth`]), and
//! [`internal_router`], the whole internal listener, refuses unsigned ones with 401 before any
//! body is read.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::node::Node;
use crate::peer_auth::{BODY_BYTES_MAX, Signer};
use crate::types::{NodeId, Raft, TixNode, TypeConfig};

/// The header that names the node an RPC is meant for.
pub const TARGET_HEADER: &str = "x-tix-target-node";
/// The content type of bodies in the cluster's binary format (Raft RPCs, forwarded proposals).
pub const RAFT_CONTENT_TYPE: &str = "application/x-tix-raft";
/// Creates one HTTP client per peer; every RPC is signed with the cluster secret.
#[derive(Clone, Debug)]
pub struct HttpNetwork {
    /// The local address outgoing RPCs are sent from, when set (fault-injection tests give each
    /// node its own loopback address so a proxy can tell senders apart).
    pub source_ip: Option<std::net::IpAddr>,
    /// Signs every RPC.
    pub signer: Signer,
}

impl HttpNetwork {
    /// Returns a network that signs with `signer` and sends from the default address.
    pub fn new(signer: Signer) -> HttpNetwork {
        HttpNetwork {
            source_ip: None,
            signer,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &TixNode) -> Peer {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true)
            .local_address(self.source_ip)
            .build()
            .expect("HTTP client builds");
        Peer {
            client,
            signer: self.signer.clone(),
            target,
            base: format!("http://{}/raft", node.raft_addr),
        }
    }
}

/// The connection to one peer.
pub struct Peer {
    client: reqwest::Client,
    signer: Signer,
    target: NodeId,
    base: String,
}

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, TixNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let mut request = self
            .client
            .post(format!("{}/{path}", self.base))
            .header(TARGET_HEADER, self.target.to_string())
            .header(CONTENT_TYPE, RAFT_CONTENT_TYPE)
            .timeout(option.hard_ttl())
            .body(codec::encode(req))
            .build()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.signer.sign(&mut request);
        let response = self.client.execute(request).await.map_err(|e| {
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let e = std::io::Error::other(format!("peer answered {status}: {text}"));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let result: Result<Resp, E> =
            codec::decode(&body).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, TixNode, RaftError<NodeId>>> {
        self.call("append", &req, &option).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, TixNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &req, &option).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, TixNode, RaftError<NodeId>>> {
        self.call("vote", &req, &option).await
    }
}

#[derive(Clone)]
struct RpcState {
    raft: Raft,
    node_id: NodeId,
}

/// Builds the whole internal listener of `node`: the Raft RPCs and the cluster API, every
/// route (and the 404/405 answers) behind the cluster-secret check of [`crate::peer_auth`].
pub fn internal_router(node: &Node) -> Router {
    raft_router(node.raft.clone(), node.id)
        .merge(crate::cluster::cluster_router(node.clone()))
        .layer(axum::middleware::from_fn_with_state(
            node.verifier(),
            crate::peer_auth::authenticate,
        ))
}

/// Builds the routes of the Raft RPCs for node `node_id` (unauthenticated: only
/// [`internal_router`] serves them).
fn raft_router(raft: Raft, node_id: NodeId) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(RpcState { raft, node_id })
}

/// Returns the refusal of an RPC meant for another node, or `None` when it is for this one.
fn misdirected(headers: &HeaderMap, node_id: NodeId) -> Option<Response> {
    let target = headers.get(TARGET_HEADER).and_then(|v| v.to_str().ok());
    match target.and_then(|t| t.parse::<NodeId>().ok()) {
        Some(t) if t == node_id => None,
        other => Some(
            (
                StatusCode::MISDIRECTED_REQUEST,
                format!("this is node {node_id}, the RPC was meant for {other:?}"),
            )
                .into_response(),
        ),
    }
}

/// Returns the request in `body` when it is meant for this node and decodes, or the refusal:
/// 421 for another node's RPC, 400 with the reason for a body that does not decode.
fn accept<T: DeserializeOwned>(
    headers: &HeaderMap,
    node_id: NodeId,
    what: &str,
    body: &[u8],
) -> Result<T, Response> {
    if let Some(r) = misdirected(headers, node_id) {
        return Err(r);
    }
    codec::decode(body).map_err(|e| {
        let text = format!("cannot decode the {what} request: {e}");
        (StatusCode::BAD_REQUEST, text).into_response()
    })
}

/// Returns `value` as a 200 response in the binary format.
pub(crate) fn binary<T: Serialize>(value: &T) -> Response {
    ([(CONTENT_TYPE, RAFT_CONTENT_TYPE)], codec::encode(value)).into_response()
}

async fn append(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match accept::<AppendEntriesRequest<TypeConfig>>(&headers, s.node_id, "append", &body) {
        Ok(req) => binary(&s.raft.append_entries(req).await),
        Err(refusal) => refusal,
    }
}

async fn vote(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match accept::<VoteRequest<NodeId>>(&headers, s.node_id, "vote", &body) {
        Ok(req) => binary(&s.raft.vote(req).await),
        Err(refusal) => refusal,
    }
}

async fn snapshot(State(s): State<RpcState>, headers: HeaderMap, body: Bytes) -> Response {
    match accept::<InstallSnapshotRequest<TypeConfig>>(&headers, s.node_id, "snapshot", &body) {
        Ok(req) => binary(&s.raft.install_snapshot(req).await),
        Err(refusal) => refusal,
    }
}
