//! The internal listener speaks the cluster's binary format: Raft RPCs and forwarded proposals
//! round-trip through the real client and server, bad bodies get a 400 with the reason (never a
//! panic), and the entries Raft wrote through the log store read back after a restart. Every
//! request is signed with the node's cluster secret (its data directory's `cluster.secret`).

use std::time::Duration;

use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};
use openraft::{EntryPayload, RaftLogReader, Vote};
use tempfile::TempDir;
use tix_core::{Command, Outcome, Role};
use tix_raft::cluster::ClusterClient;
use tix_raft::network::{HttpNetwork, RAFT_CONTENT_TYPE, TARGET_HEADER, internal_router};
use tix_raft::peer_auth::{AUTH_HEADER, ClusterSecret, SECRET_FILE_NAME, Signer};
use tix_raft::{Node, NodeConfig, TixNode, TypeConfig};
use tokio::task::JoinHandle;

mod common;
use common::reopen;

/// A one-node cluster serving its internal listener on a free loopback port.
struct OneNode {
    node: Node,
    signer: Signer,
    raft_addr: String,
    server: JoinHandle<()>,
    dir: TempDir,
}

impl OneNode {
    async fn start() -> OneNode {
        let dir = TempDir::new().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let raft_addr = listener.local_addr().expect("addr").to_string();
        let config = NodeConfig::new(
            1,
            dir.path().to_path_buf(),
            "127.0.0.1:1".into(),
            raft_addr.clone(),
        );
        let node = Node::start(config).await.expect("node starts");
        let secret = ClusterSecret::read(&dir.path().join(SECRET_FILE_NAME)).expect("secret");
        let app = internal_router(&node);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        node.wait_for_leader(Duration::from_secs(10))
            .await
            .expect("leader");
        OneNode {
            node,
            signer: Signer::new(&secret),
            raft_addr,
            server,
            dir,
        }
    }

    /// Stops serving and stops Raft; returns the data directory, which outlives the node.
    async fn stop(self) -> TempDir {
        self.server.abort();
        self.node.shutdown().await;
        self.dir
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.raft_addr)
    }

    fn tix_node(&self) -> TixNode {
        TixNode {
            api_addr: "127.0.0.1:1".into(),
            raft_addr: self.raft_addr.clone(),
        }
    }

    /// Returns the Raft network of a peer that holds this node's secret.
    fn network(&self) -> HttpNetwork {
        HttpNetwork::new(self.signer.clone())
    }

    /// Posts raw bytes to `path` as a signed RPC meant for `target`; returns status and text.
    async fn post_raw(&self, path: &str, target: u64, body: Vec<u8>) -> (u16, String) {
        let target = target.to_string();
        let credential = self.signer.header_value("POST", path, Some(&target), &body);
        let response = reqwest::Client::new()
            .post(self.url(path))
            .header(TARGET_HEADER, target)
            .header(AUTH_HEADER, credential)
            .body(body)
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        (status, response.text().await.expect("text"))
    }
}

fn option() -> RPCOption {
    RPCOption::new(Duration::from_secs(5))
}

/// Checks vote and append through `HttpNetwork` against the real router: a stale candidate and
/// a stale leader get the node's answer (not granted, higher vote), decoded from binary bodies,
/// and the answer says it is the binary format.
#[tokio::test]
async fn raft_rpcs_round_trip_in_binary() {
    let one = OneNode::start().await;
    let mut peer = one.network().new_client(1, &one.tix_node()).await;

    let answer = peer
        .vote(VoteRequest::new(Vote::new(0, 2), None), option())
        .await
        .expect("vote answered");
    assert!(!answer.vote_granted);
    assert!(answer.vote.leader_id().term >= 1, "{answer:?}");

    let stale = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(0, 2),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    let answer = peer
        .append_entries(stale, option())
        .await
        .expect("append answered");
    assert!(
        matches!(answer, AppendEntriesResponse::HigherVote(_)),
        "{answer:?}"
    );

    let body = vec![1, 0, 2, 0, 0];
    let response = reqwest::Client::new()
        .post(one.url("/raft/vote"))
        .header(TARGET_HEADER, "1")
        .header(
            AUTH_HEADER,
            one.signer
                .header_value("POST", "/raft/vote", Some("1"), &body),
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().expect("ascii"),
        RAFT_CONTENT_TYPE
    );
    one.stop().await;
}

/// Checks the refusals: an RPC for another node (421, through the client too), and bodies that
/// do not decode — garbage, empty, another version, the JSON of an earlier tix — each a 400
/// with the reason; the node still answers afterwards.
#[tokio::test]
async fn bad_rpcs_are_refused_with_reasons() {
    let one = OneNode::start().await;

    let mut misdirected = one.network().new_client(7, &one.tix_node()).await;
    let result = misdirected
        .vote(VoteRequest::new(Vote::new(0, 2), None), option())
        .await;
    match result {
        Err(RPCError::Network(e)) => assert!(e.to_string().contains("421"), "{e}"),
        other => panic!("expected a network error, got {other:?}"),
    }

    let (status, text) = one.post_raw("/raft/append", 1, vec![1, 0xff, 0xff]).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("cannot decode the append request"), "{text}");

    let (status, text) = one.post_raw("/raft/vote", 1, Vec::new()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("empty"), "{text}");

    let (status, text) = one.post_raw("/raft/snapshot", 1, vec![2, 0]).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unknown format version 2"), "{text}");

    let json =
        br#"{"vote":{"leader_id":{"term":0,"node_id":2},"committed":false},"last_log_id":null}"#;
    let (status, text) = one.post_raw("/raft/vote", 1, json.to_vec()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("earlier tix version"), "{text}");

    let mut peer = one.network().new_client(1, &one.tix_node()).await;
    peer.vote(VoteRequest::new(Vote::new(0, 2), None), option())
        .await
        .expect("still answers");
    one.stop().await;
}

/// Checks a forwarded proposal through `ClusterClient` (binary both ways) and the refusal of
/// bad `/cluster/propose` bodies; then, after a shutdown, that every entry Raft appended
/// (membership, blank, the proposal) reads back from the log store.
#[tokio::test]
async fn forwarded_proposal_round_trips_and_the_log_reads_back() {
    let one = OneNode::start().await;
    let client = ClusterClient::new(Duration::from_secs(5), None, one.signer.clone());
    let commands = vec![Command::CreateUser {
        username: "ada".into(),
        password_hash: "hash".into(),
        role: Role::Attendee,
    }];
    let (outcomes, index) = client
        .propose(1, &one.raft_addr, &commands)
        .await
        .expect("delivered")
        .expect("committed");
    assert!(
        matches!(outcomes.as_slice(), [Outcome::User(Ok(_))]),
        "{outcomes:?}"
    );

    let (status, text) = one.post_raw("/cluster/propose", 1, vec![1, 0xff]).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("cannot decode the propose request"), "{text}");
    let json = serde_json::to_vec(&commands).expect("json");
    let (status, text) = one.post_raw("/cluster/propose", 1, json).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("earlier tix version"), "{text}");

    let dir = one.stop().await;
    let mut log = reopen(dir.path());
    let entries = log.try_get_log_entries(..).await.expect("entries");
    assert_eq!(entries.last().map(|e| e.log_id.index), Some(index));
    assert!(
        entries
            .iter()
            .any(|e| matches!(e.payload, EntryPayload::Membership(_)))
    );
    match &entries.last().expect("last").payload {
        EntryPayload::Normal(batch) => assert_eq!(batch.commands, commands),
        other => panic!("the proposal's entry is {other:?}"),
    }
}

/// Every route of the internal listener, with the method it serves (and one that is not a
/// route), for the refusal checks.
const ROUTES: [(&str, &str); 11] = [
    ("POST", "/raft/append"),
    ("POST", "/raft/vote"),
    ("POST", "/raft/snapshot"),
    ("POST", "/cluster/propose"),
    ("POST", "/cluster/read-index"),
    ("POST", "/cluster/init"),
    ("POST", "/cluster/add-node"),
    ("POST", "/cluster/remove-node"),
    ("GET", "/cluster/metrics?digest=true"),
    ("GET", "/cluster/propose"),
    ("GET", "/no/such/route"),
];

/// Checks the cluster-secret check in front of the whole internal listener: every route (a
/// wrong method and an unknown path too) answers 401 problem+json without a credential, with
/// another secret's, with a replayed one, and with a signed header over another body; a
/// `SetRole` proposal in the real binary encoding is among them and is never applied (the
/// applied index does not move), while the same bytes, signed, are applied.
#[tokio::test]
async fn unsigned_forged_and_replayed_requests_are_refused_and_run_nothing() {
    let one = OneNode::start().await;
    let http = reqwest::Client::new();
    let set_role = vec![Command::SetRole {
        user_id: tix_core::UserId(1),
        role: Role::Admin,
    }];
    let mut encoded = vec![1u8];
    encoded.extend(postcard::to_allocvec(&set_role).expect("postcard"));
    let applied = || {
        one.node
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map(|l| l.index)
    };
    let before = applied();
    let forger = Signer::new(&ClusterSecret::generate());

    for (method, path) in ROUTES {
        let body = if path == "/cluster/propose" {
            encoded.clone()
        } else {
            b"{}".to_vec()
        };
        let send = |credential: Option<String>, body: Vec<u8>| {
            let mut request = http
                .request(method.parse().expect("method"), one.url(path))
                .header(TARGET_HEADER, "1")
                .body(body);
            if let Some(credential) = credential {
                request = request.header(AUTH_HEADER, credential);
            }
            request.send()
        };
        let target = Some("1");
        let signed = one.signer.header_value(method, path, target, &body);
        let attempts = [
            (None, body.clone(), "no x-tix-auth header"),
            (
                Some(forger.header_value(method, path, target, &body)),
                body.clone(),
                "signature does not match",
            ),
            (
                Some(one.signer.header_value(method, path, target, b"")),
                body.clone(),
                "body does not match",
            ),
            (
                Some(signed.clone()),
                b"{}{}".to_vec(),
                "body does not match",
            ),
            (Some(signed), body.clone(), "already received"),
        ];
        for (credential, body, reason) in attempts {
            let response = send(credential, body).await.expect("sent");
            assert_eq!(response.status().as_u16(), 401, "{method} {path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            let text = response.text().await.expect("text");
            assert!(text.contains(reason), "{method} {path}: {text}");
        }
    }
    assert_eq!(applied(), before, "a refused request changed the state");

    let (status, text) = one.post_raw("/cluster/propose", 1, encoded).await;
    assert_eq!(status, 200, "{text}");
    one.node
        .raft
        .wait(Some(Duration::from_secs(5)))
        .applied_index_at_least(before.map(|i| i + 1), "the signed proposal")
        .await
        .expect("applied");
    one.stop().await;
}
