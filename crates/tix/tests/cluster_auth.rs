//! The internal listener of a real cluster is authenticated with the cluster secret: without it
//! (no credential, another secret's, a replay) every route answers 401 and nothing is applied —
//! the attack of issue 10, a forwarded `SetRole` that made an attendee admin, included — while
//! with it the cluster sells, and `tix cluster add-node` / `remove-node` / `status` work.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use tix_core::{Command, Role, UserId};
use tix_raft::peer_auth::{AUTH_HEADER, ClusterSecret, Signer};
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::cluster::{ClusterOptions, LocalCluster};

/// The tests of this file run one at a time: each runs a cluster of debug-build processes, and
/// two at once on two cores starve each other into timeouts that test nothing.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every route of the internal listener with the method it serves, a wrong method and a path
/// that is no route.
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

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tix"))
}

/// Runs `tix cluster ARGS`; returns whether it succeeded and its stdout and stderr.
async fn tix_cluster(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let output = tokio::process::Command::new(exe())
        .arg("cluster")
        .args(args)
        .env_remove("TIX_CLUSTER_SECRET_FILE")
        .env_remove("TIX_DATA_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

/// Signs up `username` through `url`; returns the new user's id.
async fn sign_up(http: &reqwest::Client, url: &str, username: &str) -> anyhow::Result<u64> {
    let body = json!({"username": username, "password": "attendee-password"});
    let response = http
        .post(format!("{url}/api/v1/auth/signup"))
        .json(&body)
        .send()
        .await?;
    ensure!(response.status() == 201, "sign-up: {}", response.status());
    let answer: Value = response.json().await?;
    answer["id"].as_u64().context("sign-up answer has no id")
}

/// Logs in as `username` through `url` and returns its role as `/me` reports it.
async fn role_of(http: &reqwest::Client, url: &str, username: &str) -> anyhow::Result<String> {
    let api = ApiClient::login(http.clone(), url, username, "attendee-password").await?;
    let me: Value = http
        .get(format!("{url}/api/v1/me"))
        .bearer_auth(&api.token)
        .send()
        .await?
        .json()
        .await?;
    me["role"].as_str().map(str::to_owned).context("no role")
}

/// Returns every node's last applied index.
async fn applied(cluster: &LocalCluster) -> anyhow::Result<Vec<Option<u64>>> {
    let mut indexes = Vec::new();
    for id in cluster.ids() {
        indexes.push(cluster.metrics(id).await?["last_applied"].as_u64());
    }
    Ok(indexes)
}

/// Sends `body` to `url` with `credential` and, if given, a target node; returns the status,
/// content type and text.
async fn send(
    http: &reqwest::Client,
    method: &str,
    (url, target): (&str, Option<&str>),
    credential: Option<String>,
    body: Vec<u8>,
) -> anyhow::Result<(u16, String, String)> {
    let mut request = http.request(method.parse()?, url).body(body);
    if let Some(target) = target {
        request = request.header("x-tix-target-node", target);
    }
    if let Some(credential) = credential {
        request = request.header(AUTH_HEADER, credential);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    Ok((status, kind, response.text().await?))
}

// Sends every route of every node's Raft listener a request without a credential, with one
// made with another secret, and with a valid credential over another body — the
// `/cluster/propose` body being the attack's `SetRole` (attendee → admin) in the real binary
// encoding and in JSON — plus a replay of a valid request and a proposal signed for a follower
// sent to the leader; checks each is a 401 (421) problem, that
// no node applied anything (same applied indexes), that the attendee is still an attendee, and
// that `tix cluster status`/`remove-node` with another secret or none say why they failed.
// Then the same binary proposal, signed with the cluster's secret, makes the attendee admin:
// the refused payload was a working one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_cluster_secret_every_route_is_refused_and_nothing_is_applied()
-> anyhow::Result<()> {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = LocalCluster::start(exe(), 3, ClusterOptions::default()).await?;
    let http = http_client(8)?;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let leader_url = cluster.url(leader);
    let user_id = sign_up(&http, &leader_url, "mallory").await?;
    ensure!(role_of(&http, &leader_url, "mallory").await? == "attendee");
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let before = applied(&cluster).await?;

    let attack = vec![Command::SetRole {
        user_id: UserId(user_id),
        role: Role::Admin,
    }];
    let mut binary = vec![1u8];
    binary.extend(postcard::to_allocvec(&attack)?);
    let json_attack = json!([{"SetRole": {"user_id": user_id, "role": "Admin"}}]).to_string();
    let ours = Signer::new(&ClusterSecret::read(&cluster.secret_file)?);
    let forger = Signer::new(&ClusterSecret::generate());
    let raw = reqwest::Client::new();
    let mut refused = 0;
    for id in cluster.ids() {
        let base = format!("http://{}", cluster.nodes[&id].raft_listen_addr);
        for (method, path) in ROUTES {
            let bodies = match path {
                "/cluster/propose" => vec![binary.clone(), json_attack.clone().into_bytes()],
                _ => vec![b"{}".to_vec()],
            };
            for body in bodies {
                let attempts = [
                    (None, "no x-tix-auth header"),
                    (
                        Some(forger.header_value(method, path, None, &body)),
                        "signature does not match",
                    ),
                    (
                        Some(ours.header_value(method, path, None, b"")),
                        "body does not match",
                    ),
                ];
                for (credential, reason) in attempts {
                    let url = format!("{base}{path}");
                    let (status, kind, text) =
                        send(&raw, method, (&url, None), credential, body.clone()).await?;
                    ensure!(
                        status == 401 && kind == "application/problem+json",
                        "node {id} {method} {path}: {status} {kind} {text}"
                    );
                    ensure!(text.contains(reason), "node {id} {method} {path}: {text}");
                    refused += 1;
                }
            }
        }
        let path = "/cluster/metrics?digest=true";
        let valid = ours.header_value("GET", path, None, b"");
        let url = format!("{base}{path}");
        let (status, _, text) =
            send(&raw, "GET", (&url, None), Some(valid.clone()), Vec::new()).await?;
        ensure!(status == 200, "node {id}, signed metrics: {status} {text}");
        let (status, _, text) = send(&raw, "GET", (&url, None), Some(valid), Vec::new()).await?;
        ensure!(
            status == 401 && text.contains("already received"),
            "node {id}, replayed metrics: {status} {text}"
        );
    }
    // A proposal signed for one member (a follower's forward names its leader) and replayed
    // to another is refused there.
    let follower = cluster.ids().into_iter().find(|id| *id != leader);
    let follower = follower.context("a follower")?.to_string();
    let url = format!(
        "http://{}/cluster/propose",
        cluster.nodes[&leader].raft_listen_addr
    );
    let for_follower = ours.header_value("POST", "/cluster/propose", Some(&follower), &binary);
    let sent_to_leader = (url.as_str(), Some(follower.as_str()));
    let (status, _, text) = send(
        &raw,
        "POST",
        sent_to_leader,
        Some(for_follower),
        binary.clone(),
    )
    .await?;
    ensure!(
        status == 421 && text.contains("meant for node"),
        "replayed to another node: {status} {text}"
    );

    // Three nodes, three attempts per body, two bodies for each of the two propose routes.
    ensure!(refused == 3 * 3 * (ROUTES.len() + 2), "{refused} refusals");
    let after = applied(&cluster).await?;
    ensure!(
        after == before,
        "a refused request was applied: {before:?} → {after:?}"
    );
    ensure!(role_of(&http, &leader_url, "mallory").await? == "attendee");

    let wrong = tempfile::tempdir()?;
    let wrong_path = wrong.path().join("cluster.secret");
    ClusterSecret::generate().write_new(&wrong_path)?;
    let wrong_file = wrong_path.to_str().context("utf-8 path")?;
    let via = cluster.nodes[&leader].raft_listen_addr.to_string();
    let status = ["status", "--via", &via, "--cluster-secret-file", wrong_file];
    let (ok, text) = tix_cluster(&status).await?;
    ensure!(
        !ok && text.contains("the node refused our cluster credentials"),
        "{text}"
    );
    let remove = [
        "remove-node",
        "--via",
        &via,
        "--node-id",
        "2",
        "--cluster-secret-file",
        wrong_file,
    ];
    let (ok, text) = tix_cluster(&remove).await?;
    ensure!(
        !ok && text.contains("the node refused our cluster credentials"),
        "{text}"
    );
    let missing = wrong.path().join("no-such-data-dir");
    let missing = missing.to_str().context("utf-8 path")?;
    let (ok, text) = tix_cluster(&["status", "--via", &via, "--data-dir", missing]).await?;
    ensure!(!ok && text.contains("no cluster credentials"), "{text}");
    let members = cluster.metrics(leader).await?["members"]
        .as_object()
        .map(|m| m.len());
    ensure!(members == Some(3), "membership changed: {members:?}");

    let leader_id = leader.to_string();
    let valid = ours.header_value("POST", "/cluster/propose", Some(&leader_id), &binary);
    let to_leader = (url.as_str(), Some(leader_id.as_str()));
    let (status, _, text) = send(&raw, "POST", to_leader, Some(valid), binary).await?;
    ensure!(status == 200, "the signed proposal: {status} {text}");
    ensure!(role_of(&http, &leader_url, "mallory").await? == "admin");
    Ok(())
}

// With the cluster's secret: buys through every node of a 3-node cluster, starts a fourth node
// and adds it with `tix cluster add-node`, sees it in `tix cluster status` and sells through
// it, removes it with `tix cluster remove-node`, and checks that the three remaining replicas
// converge and the sales count is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cluster_secret_the_cluster_sells_and_changes_membership() -> anyhow::Result<()> {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let mut cluster = LocalCluster::start(exe(), 3, ClusterOptions::default()).await?;
    let http = http_client(8)?;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let api = ApiClient::login(
        http.clone(),
        &cluster.url(leader),
        "admin",
        &cluster.admin_password,
    )
    .await?;
    let event = api
        .create_event("membership", json!({"kind": "unnumbered", "capacity": 100}))
        .await?;
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let mut sold = 0;
    for id in cluster.ids() {
        let node = ApiClient {
            base_url: cluster.url(id),
            ..api.clone()
        };
        let (status, body) = node
            .purchase(event, "c", &format!("via-{id}"), None)
            .await?;
        ensure!(status == 201, "purchase through node {id}: {body}");
        sold += 1;
    }

    let secret = cluster
        .secret_file
        .to_str()
        .context("utf-8 path")?
        .to_owned();
    let via = cluster.nodes[&1].raft_listen_addr.to_string();
    cluster.start_node(4).await?;
    let (api_addr, raft_addr) = {
        let node = &cluster.nodes[&4];
        (
            node.http_addr.clone(),
            node.raft_advertised_addr.to_string(),
        )
    };
    let add = [
        "add-node",
        "--via",
        &via,
        "--node-id",
        "4",
        "--api-addr",
        &api_addr,
        "--raft-addr",
        &raft_addr,
        "--cluster-secret-file",
        &secret,
    ];
    let (ok, text) = tix_cluster(&add).await?;
    ensure!(ok && text.contains("node 4 added as a voter"), "{text}");
    let (ok, text) =
        tix_cluster(&["status", "--via", &via, "--cluster-secret-file", &secret]).await?;
    ensure!(ok && text.contains("node 4 (voter)"), "{text}");

    // The new node serves once it has applied the event and the admin's session.
    let node4 = ApiClient {
        base_url: cluster.url(4),
        ..api.clone()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = node4.purchase(event, "c", "via-4", None).await?;
        if status == 201 {
            sold += 1;
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "node 4 never sold: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let remove = [
        "remove-node",
        "--via",
        &via,
        "--node-id",
        "4",
        "--cluster-secret-file",
        &secret,
    ];
    let (ok, text) = tix_cluster(&remove).await?;
    ensure!(ok && text.contains("node 4 removed"), "{text}");
    cluster.kill(4)?;
    cluster.nodes.remove(&4);
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let members = cluster.metrics(leader).await?["members"]
        .as_object()
        .map(|m| m.len());
    ensure!(members == Some(3), "node 4 still a member: {members:?}");
    let at_leader = ApiClient {
        base_url: cluster.url(leader),
        ..api.clone()
    };
    let availability = at_leader.availability(event).await?;
    ensure!(
        availability["sold"].as_u64() == Some(sold),
        "{availability}"
    );
    Ok(())
}
