//! Cluster fault tests with real processes on 127.0.0.1: the leader killed during a contended
//! numbered sale, an isolated leader, a follower that rejoins through a snapshot, membership
//! changes under load, and a full-cluster restart. Each test checks what clients were told
//! against the linearizable sales export, and that every replica ends with the same state.
//!
//! Clients follow the purchase contract: a 503 or a broken connection means "unknown", so they
//! retry the same request id (through the next node) after a short pause, a bounded number of
//! times. Every wait has a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use tix_raft::log_store::LOG_DIR;
use tix_raft::segment_log::segment_numbers;
use tix_testkit::client::ApiClient;
use tix_testkit::cluster::{ClusterOptions, LocalCluster};
use tokio::task::JoinSet;

/// The tests of this file run one at a time: each runs a cluster of three debug-build
/// processes, and five at once on two cores starve each other into timeouts that test nothing.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Pause between two attempts of one request.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The most attempts of one request (the first one and its retries).
const ATTEMPTS_MAX: u32 = 60;
/// Time limit of one HTTP request of a test client (a node waits up to 5 s for a leader).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a test waits for a leader after a fault.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test waits for all replicas to agree.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tix"))
}

/// One purchase request: who asks, under which idempotency key, for which seat.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Request {
    client_id: String,
    request_id: String,
    seat: Option<u64>,
}

impl Request {
    fn key(&self) -> (String, String) {
        (self.client_id.clone(), self.request_id.clone())
    }
}

/// A ticket as a 201 answer or a sales export line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket {
    ticket_id: u64,
    seat: Option<u64>,
}

/// What a client finally heard for one request.
#[derive(Debug, Clone)]
enum Heard {
    /// 201; `replayed` is the `Idempotent-Replayed` header.
    Sold { ticket: Ticket, replayed: bool },
    /// 409 with the rejection's reason.
    Refused { reason: String },
    /// No definite answer within the attempts: it may or may not have been sold.
    Unknown,
}

/// The box office as the test's clients use it: some nodes' base URLs and the admin token.
#[derive(Clone)]
struct Shop {
    http: reqwest::Client,
    urls: Vec<String>,
    token: String,
    event: u64,
}

impl Shop {
    /// Sends one purchase to `url`; returns the status, the body and whether it was a replay.
    async fn purchase_once(
        &self,
        url: &str,
        request: &Request,
        timeout: Duration,
    ) -> reqwest::Result<(u16, Value, bool)> {
        let mut body = json!({"client_id": request.client_id, "request_id": request.request_id});
        if let Some(seat) = request.seat {
            body["seat"] = json!(seat);
        }
        let response = self
            .http
            .post(format!("{url}/api/v1/events/{}/purchases", self.event))
            .bearer_auth(&self.token)
            .timeout(timeout)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let value = response.json().await.unwrap_or(Value::Null);
        Ok((status, value, replayed))
    }

    /// Sends `request` until it gets a definite answer (201 or 409), retrying the same request
    /// id through the next node after a 503 or a connection error; gives up after
    /// `ATTEMPTS_MAX` attempts or at `deadline`. Any other status fails the test.
    async fn buy(
        &self,
        first: usize,
        request: &Request,
        deadline: Instant,
    ) -> anyhow::Result<Heard> {
        for attempt in 0..ATTEMPTS_MAX as usize {
            if Instant::now() > deadline {
                break;
            }
            let url = &self.urls[(first + attempt) % self.urls.len()];
            match self.purchase_once(url, request, REQUEST_TIMEOUT).await {
                Ok((201, body, replayed)) => {
                    let ticket = ticket_of(request, &body)?;
                    return Ok(Heard::Sold { ticket, replayed });
                }
                Ok((409, body, _)) => {
                    let reason = body["reason"].as_str().unwrap_or_default().to_owned();
                    return Ok(Heard::Refused { reason });
                }
                Ok((503, _, _)) | Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
                Ok((status, body, _)) => bail!("{request:?} via {url}: unexpected {status} {body}"),
            }
        }
        Ok(Heard::Unknown)
    }
}

/// Reads the ticket out of a 201 body and checks that it answers `request`.
fn ticket_of(request: &Request, body: &Value) -> anyhow::Result<Ticket> {
    ensure!(
        body["client_id"] == json!(request.client_id)
            && body["request_id"] == json!(request.request_id),
        "201 for {request:?} names another request: {body}"
    );
    let ticket = Ticket {
        ticket_id: body["ticket_id"]
            .as_u64()
            .context("201 without ticket_id")?,
        seat: body["seat"].as_u64(),
    };
    if request.seat.is_some() {
        ensure!(
            ticket.seat == request.seat,
            "201 for {request:?} sold another seat: {body}"
        );
    }
    Ok(ticket)
}

/// A bounded load: `clients` concurrent clients, each sending `per_client` requests made by
/// `request(client, i)` with `pause` between them.
#[derive(Clone)]
struct Load {
    clients: u32,
    per_client: u32,
    pause: Duration,
    request: Arc<dyn Fn(u32, u32) -> Request + Send + Sync>,
}

/// What every client of a load sent and heard.
type Transcript = Vec<(Request, Heard)>;

/// Starts `load` against `shop`; each client stops early when `stop` is set or at `deadline`.
/// `sold` counts the 201s as they arrive.
fn spawn_load(
    shop: &Shop,
    load: &Load,
    sold: &Arc<AtomicU64>,
    stop: &Arc<AtomicBool>,
    deadline: Instant,
) -> JoinSet<anyhow::Result<Transcript>> {
    let mut tasks = JoinSet::new();
    for client in 0..load.clients {
        let (shop, load, sold, stop) = (shop.clone(), load.clone(), sold.clone(), stop.clone());
        tasks.spawn(async move {
            let mut transcript = Vec::new();
            for i in 0..load.per_client {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let request = (load.request)(client, i);
                let heard = shop.buy((client + i) as usize, &request, deadline).await?;
                if matches!(heard, Heard::Sold { .. }) {
                    sold.fetch_add(1, Ordering::Relaxed);
                }
                transcript.push((request, heard));
                tokio::time::sleep(load.pause).await;
            }
            Ok(transcript)
        });
    }
    tasks
}

/// Waits for every client of a load and returns all their transcripts.
async fn join_load(mut tasks: JoinSet<anyhow::Result<Transcript>>) -> anyhow::Result<Transcript> {
    let mut all = Vec::new();
    while let Some(result) = tasks.join_next().await {
        all.extend(result??);
    }
    Ok(all)
}

/// Waits until `condition` holds, polling every 10 ms, for at most `timeout`.
async fn wait_until(
    what: &str,
    timeout: Duration,
    condition: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !condition() {
        ensure!(
            Instant::now() < deadline,
            "{what} did not happen within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Logs in as admin through the leader and returns the admin client bound to the leader, and a
/// shop over every node for a new event with `inventory`.
async fn open_shop(cluster: &LocalCluster, inventory: Value) -> anyhow::Result<(ApiClient, Shop)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
    let url = cluster.url(leader);
    let api = ApiClient::login(http.clone(), &url, "admin", &cluster.admin_password).await?;
    let event = api.create_event("cluster faults", inventory).await?;
    // A follower checks the event and the caller's session in its local state before it
    // forwards a purchase, so it answers 404 (or 401) until it has applied them.
    cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    let shop = Shop {
        http,
        urls: cluster.ids().iter().map(|id| cluster.url(*id)).collect(),
        token: api.token.clone(),
        event,
    };
    Ok((api, shop))
}

/// Returns `api` bound to the current leader.
async fn at_leader(cluster: &LocalCluster, api: &ApiClient) -> anyhow::Result<ApiClient> {
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
    Ok(ApiClient {
        base_url: cluster.url(leader),
        ..api.clone()
    })
}

/// Reads the sales export (through `api`) and checks it against what the clients heard: every
/// 201 is there with its ticket id and seat; no seat, key or ticket id is there twice; every line
/// is a request that was sent, for the seat it asked for; no request refused with 409 was sold;
/// and availability counts exactly these tickets. Returns the lines by key.
async fn check_sales(
    api: &ApiClient,
    event: u64,
    transcript: &[(Request, Heard)],
) -> anyhow::Result<BTreeMap<(String, String), Ticket>> {
    let sent: BTreeMap<(String, String), &Request> =
        transcript.iter().map(|(r, _)| (r.key(), r)).collect();
    let lines = api.sales(event).await?;
    let mut by_key = BTreeMap::new();
    let (mut seats, mut ticket_ids) = (BTreeSet::new(), BTreeSet::new());
    for line in &lines {
        let key = (
            line["client_id"]
                .as_str()
                .context("line without client_id")?
                .to_owned(),
            line["request_id"]
                .as_str()
                .context("line without request_id")?
                .to_owned(),
        );
        let ticket = Ticket {
            ticket_id: line["ticket_id"]
                .as_u64()
                .context("line without ticket_id")?,
            seat: line["seat"].as_u64(),
        };
        let request = sent
            .get(&key)
            .with_context(|| format!("sold but never sent: {line}"))?;
        ensure!(ticket.seat == request.seat, "{request:?} sold as {line}");
        ensure!(
            by_key.insert(key, ticket).is_none(),
            "key sold twice: {line}"
        );
        ensure!(
            ticket_ids.insert(ticket.ticket_id),
            "ticket id twice: {line}"
        );
        if let Some(seat) = ticket.seat {
            ensure!(seats.insert(seat), "seat {seat} sold twice");
        }
    }
    for (request, heard) in transcript {
        match heard {
            Heard::Sold { ticket, .. } => ensure!(
                by_key.get(&request.key()) == Some(ticket),
                "{request:?} was acknowledged as {ticket:?} but the export has {:?}",
                by_key.get(&request.key())
            ),
            Heard::Refused { reason } => ensure!(
                !by_key.contains_key(&request.key()),
                "{request:?} was refused ({reason}) but sold"
            ),
            Heard::Unknown => {}
        }
    }
    let availability = api.availability(event).await?;
    ensure!(
        availability["sold"].as_u64() == Some(lines.len() as u64),
        "availability {availability} but {} lines in the export",
        lines.len()
    );
    Ok(by_key)
}

/// Counts what the clients heard: (sold, refused, unknown).
fn tally(transcript: &[(Request, Heard)]) -> (usize, usize, usize) {
    let count = |f: fn(&Heard) -> bool| transcript.iter().filter(|(_, h)| f(h)).count();
    (
        count(|h| matches!(h, Heard::Sold { .. })),
        count(|h| matches!(h, Heard::Refused { .. })),
        count(|h| matches!(h, Heard::Unknown)),
    )
}

const CONTENDED_SEATS: u64 = 200;

/// Leader kill -9 mid-sale: 32 clients race for 200 seats and retry 503s; every 201 is kept once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_during_contended_sale_keeps_every_acknowledged_ticket() -> anyhow::Result<()>
{
    let _one_at_a_time = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = LocalCluster::start(exe(), 3, ClusterOptions::default()).await?;
    let (api, shop) = open_shop(
        &cluster,
        json!({"kind": "numbered", "seats": CONTENDED_SEATS}),
    )
    .await?;
    // Four clients ask for the same seat at the same step; the steps walk over all the seats.
    let load = Load {
        clients: 32,
        per_client: 30,
        pause: Duration::ZERO,
        request: Arc::new(|client, i| Request {
            client_id: format!("c{client}"),
            request_id: format!("r{i}"),
            seat: Some((u64::from(i) * 7 + u64::from(client / 4)) % CONTENDED_SEATS + 1),
        }),
    };
    let sold = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(45);
    let tasks = spawn_load(&shop, &load, &sold, &stop, deadline);
    wait_until("60 sales", Duration::from_secs(30), || {
        sold.load(Ordering::Relaxed) >= 60
    })
    .await?;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
    cluster.kill(leader)?;
    let sold_at_kill = sold.load(Ordering::Relaxed);
    let transcript = join_load(tasks).await?;
    let (acknowledged, refused, unknown) = tally(&transcript);
    ensure!(
        acknowledged as u64 > sold_at_kill,
        "nothing was sold after the leader died ({acknowledged} sold, {sold_at_kill} at the kill)"
    );

    cluster.restart(leader)?;
    let api = at_leader(&cluster, &api).await?;
    let sales = check_sales(&api, shop.event, &transcript).await?;
    cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    eprintln!(
        "contended sale: {acknowledged} sold ({sold_at_kill} before the kill of node {leader}), \
         {refused} refused, {unknown} unknown, {} in the export, {:?}",
        sales.len(),
        started.elapsed()
    );
    Ok(())
}

/// Partitioned leader: a sale sent to it is never acknowledged, the majority sells, none doubles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_leader_cannot_acknowledge_while_the_majority_sells() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let cluster = LocalCluster::start(exe(), 3, ClusterOptions::default()).await?;
    let (api, shop) = open_shop(&cluster, json!({"kind": "numbered", "seats": 100})).await?;
    let mut transcript = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..shop.urls.len() {
        let request = Request {
            client_id: "warm".into(),
            request_id: format!("w{i}"),
            seat: Some(10 + i as u64),
        };
        let heard = shop.buy(i, &request, deadline).await?;
        ensure!(
            matches!(heard, Heard::Sold { .. }),
            "{request:?}: {heard:?}"
        );
        transcript.push((request, heard));
    }

    let isolated = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
    let majority: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != isolated)
        .collect();
    cluster.partition(&[vec![isolated], majority.clone()]);
    // Seat 1 is only ever asked for under this key.
    let orphan = Request {
        client_id: "isolated".into(),
        request_id: "r1".into(),
        seat: Some(1),
    };
    let isolated_url = cluster.url(isolated);
    let short = Duration::from_secs(3);
    let isolated_answer = match shop.purchase_once(&isolated_url, &orphan, short).await {
        Ok((201, body, _)) => bail!("the isolated leader acknowledged a sale: {body}"),
        Ok((status, body, _)) => {
            ensure!(status == 503, "isolated leader said {status} {body}");
            "503".to_owned()
        }
        // No answer within the time limit is not an acknowledgement.
        Err(e) if e.is_timeout() => format!("no answer within {short:?}"),
        Err(e) => format!("no answer ({e:?})"),
    };

    let majority_shop = Shop {
        urls: majority.iter().map(|id| cluster.url(*id)).collect(),
        ..shop.clone()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..10u32 {
        let request = Request {
            client_id: "majority".into(),
            request_id: format!("m{i}"),
            seat: Some(20 + u64::from(i)),
        };
        let heard = majority_shop.buy(i as usize, &request, deadline).await?;
        ensure!(
            matches!(heard, Heard::Sold { .. }),
            "majority sale {request:?}: {heard:?}"
        );
        transcript.push((request, heard));
    }
    // A linearizable read on the isolated leader must not return its stale view.
    let url = format!("{isolated_url}/api/v1/events/{}/availability", shop.event);
    if let Ok(response) = shop.http.get(url).timeout(short).send().await
        && response.status().is_success()
    {
        let availability: Value = response.json().await?;
        ensure!(
            availability["sold"].as_u64() >= Some(transcript.len() as u64),
            "the isolated leader served a stale linearizable read: {availability}"
        );
    }

    cluster.heal();
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
    cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    let api = at_leader(&cluster, &api).await?;
    let mut with_orphan = transcript.clone();
    with_orphan.push((orphan.clone(), Heard::Unknown));
    let before = check_sales(&api, shop.event, &with_orphan).await?;
    let orphan_sold = before.get(&orphan.key()).copied();

    let deadline = Instant::now() + Duration::from_secs(20);
    let heard = shop.buy(0, &orphan, deadline).await?;
    let Heard::Sold { ticket, replayed } = heard else {
        bail!("the retry of the orphaned request did not sell: {heard:?}");
    };
    if let Some(earlier) = orphan_sold {
        ensure!(
            replayed && ticket == earlier,
            "retry of a committed request sold anew: {ticket:?} (replayed: {replayed}), \
             earlier {earlier:?}"
        );
    }
    transcript.push((orphan.clone(), Heard::Sold { ticket, replayed }));
    let after = check_sales(&api, shop.event, &transcript).await?;
    ensure!(after.len() == before.len() + usize::from(orphan_sold.is_none()));
    cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    eprintln!(
        "isolated leader {isolated} answered {isolated_answer}; new leader {leader}; orphan \
         sold before the retry: {}, retry replayed: {replayed}; {:?}",
        orphan_sold.is_some(),
        started.elapsed()
    );
    Ok(())
}

/// Log entries the leader keeps below a snapshot in the snapshot test.
const LOGS_KEPT_AFTER_SNAPSHOT: u64 = 10;

/// Follower down for thousands of sales: the leader purges its log, so it rejoins by a snapshot.
/// The log runs in 4 KiB segments here, so the leader rolls and deletes segment files all along
/// (and the rejoined follower drops its old log for the snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_down_for_thousands_of_sales_rejoins_by_snapshot() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let options = ClusterOptions {
        snapshot_logs_since_last: 50,
        extra_args: vec![
            "--logs-kept-after-snapshot".into(),
            LOGS_KEPT_AFTER_SNAPSHOT.to_string(),
            "--log-segment-bytes".into(),
            "4096".into(),
        ],
        ..Default::default()
    };
    let mut cluster = LocalCluster::start(exe(), 3, options).await?;
    let (api, shop) =
        open_shop(&cluster, json!({"kind": "unnumbered", "capacity": 20_000})).await?;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
    let down = cluster
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .context("a follower")?;
    // Wait until the follower has the event, so the purge is what makes a snapshot necessary.
    let leader_index = cluster.metrics(leader).await?["last_applied"].as_u64();
    let deadline = Instant::now() + Duration::from_secs(10);
    let down_index = loop {
        let index = cluster.metrics(down).await?["last_applied"].as_u64();
        if index >= leader_index || Instant::now() > deadline {
            break index.context("the follower applied nothing")?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cluster.kill(down)?;

    let shop = Shop {
        urls: cluster
            .ids()
            .into_iter()
            .filter(|id| *id != down)
            .map(|id| cluster.url(id))
            .collect(),
        ..shop
    };
    let sold = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut transcript = Vec::new();
    // Rounds of 600 sales until the leader's snapshot is well past the follower's log.
    let mut leader_snapshot = 0;
    for round in 0..10u32 {
        let load = Load {
            clients: 24,
            per_client: 25,
            pause: Duration::ZERO,
            request: Arc::new(move |client, i| Request {
                client_id: format!("c{client}"),
                request_id: format!("r{round}-{i}"),
                seat: None,
            }),
        };
        transcript.extend(join_load(spawn_load(&shop, &load, &sold, &stop, deadline)).await?);
        leader_snapshot = cluster.metrics(leader).await?["snapshot_index"]
            .as_u64()
            .unwrap_or(0);
        if round >= 3 && leader_snapshot > down_index + LOGS_KEPT_AFTER_SNAPSHOT + 100 {
            break;
        }
    }
    let (acknowledged, _, _) = tally(&transcript);
    ensure!(
        acknowledged == transcript.len(),
        "a sale failed with only a follower down"
    );
    ensure!(
        leader_snapshot > down_index + LOGS_KEPT_AFTER_SNAPSHOT + 100,
        "the leader's snapshot {leader_snapshot} is not past the follower's log {down_index}"
    );

    cluster.restart(down)?;
    cluster
        .wait_converged(CONVERGE_TIMEOUT)
        .await
        .with_context(|| format!("node {down} did not catch up from the leader's snapshot"))?;
    let metrics = cluster.metrics(down).await?;
    let down_snapshot = metrics["snapshot_index"].as_u64().unwrap_or(0);
    ensure!(
        down_snapshot > down_index,
        "the follower rejoined without a snapshot past its old log ({down_index}): {metrics}"
    );
    let api = at_leader(&cluster, &api).await?;
    let sales = check_sales(&api, shop.event, &transcript).await?;
    ensure!(sales.len() == acknowledged);
    // The leader wrote thousands of entries and purged them: the segments that held them are
    // gone. (The rejoined follower's old entries sit in its current segment, which goes once
    // it rolls over and a later purge passes it.)
    let segments = segment_numbers(&cluster.data_dir(leader).join(LOG_DIR))?;
    ensure!(
        segments.first().is_some_and(|&first| first > 1) && segments.len() < 40,
        "the leader keeps segments {segments:?}: a purge deletes those it frees"
    );
    eprintln!(
        "snapshot rejoin: {acknowledged} sold while node {down} was down (its log ended at \
         {down_index}); leader snapshot {leader_snapshot}, node {down} snapshot {down_snapshot}; \
         {:?}",
        started.elapsed()
    );
    Ok(())
}

/// Membership under load: add nodes 4 and 5, remove a follower; every acknowledged sale stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_under_load_lose_no_sale() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = LocalCluster::start(exe(), 3, ClusterOptions::default()).await?;
    let (api, shop) =
        open_shop(&cluster, json!({"kind": "unnumbered", "capacity": 20_000})).await?;
    let load = Load {
        clients: 8,
        per_client: 400,
        pause: Duration::from_millis(20),
        request: Arc::new(|client, i| Request {
            client_id: format!("c{client}"),
            request_id: format!("r{i}"),
            seat: None,
        }),
    };
    let sold = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(50);
    let tasks = spawn_load(&shop, &load, &sold, &stop, deadline);
    wait_until("20 sales", Duration::from_secs(20), || {
        sold.load(Ordering::Relaxed) >= 20
    })
    .await?;

    let mut during = Vec::new();
    for id in [4, 5] {
        let before = sold.load(Ordering::Relaxed);
        cluster.add_node(id).await?;
        during.push(sold.load(Ordering::Relaxed) - before);
    }
    let status = cluster_status(&cluster, &api).await?;
    let voters: BTreeSet<u64> = status["nodes"]
        .as_array()
        .context("cluster status without nodes")?
        .iter()
        .filter(|n| n["voter"] == json!(true))
        .filter_map(|n| n["id"].as_u64())
        .collect();
    ensure!(
        voters == BTreeSet::from([1, 2, 3, 4, 5]),
        "voters {voters:?}: {status}"
    );

    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
    let removed = if leader == 2 { 3 } else { 2 };
    let before = sold.load(Ordering::Relaxed);
    cluster.remove_node(removed).await?;
    let after_removal = sold.load(Ordering::Relaxed);
    during.push(after_removal - before);
    wait_until(
        "20 sales after the removal",
        Duration::from_secs(20),
        || sold.load(Ordering::Relaxed) >= after_removal + 20,
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    let transcript = join_load(tasks).await?;
    let (acknowledged, refused, unknown) = tally(&transcript);
    ensure!(
        refused == 0,
        "an unnumbered sale with room left was refused"
    );

    let api = at_leader(&cluster, &api).await?;
    let sales = check_sales(&api, shop.event, &transcript).await?;
    cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    let status = cluster_status(&cluster, &api).await?;
    let members: BTreeSet<u64> = status["nodes"]
        .as_array()
        .context("cluster status without nodes")?
        .iter()
        .filter_map(|n| n["id"].as_u64())
        .collect();
    ensure!(
        !members.contains(&removed),
        "node {removed} is still a member: {status}"
    );
    eprintln!(
        "membership: {acknowledged} sold ({during:?} during add 4, add 5, remove {removed}), \
         {unknown} unknown, {} in the export; {:?}",
        sales.len(),
        started.elapsed()
    );
    Ok(())
}

/// Returns `GET /api/v1/cluster` as the admin sees it through the leader.
async fn cluster_status(cluster: &LocalCluster, api: &ApiClient) -> anyhow::Result<Value> {
    let api = at_leader(cluster, api).await?;
    let response = api
        .http
        .get(format!("{}/api/v1/cluster", api.base_url))
        .bearer_auth(&api.token)
        .send()
        .await?
        .error_for_status()?;
    Ok(response.json().await?)
}

/// Full restart: kill -9 all three nodes, restart; sales, availability and replays are the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cluster_restart_keeps_every_sale_and_replays_retries() -> anyhow::Result<()> {
    let _one_at_a_time = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = LocalCluster::start(exe(), 3, ClusterOptions::default()).await?;
    let (api, shop) = open_shop(&cluster, json!({"kind": "numbered", "seats": 100})).await?;
    let load = Load {
        clients: 8,
        per_client: 8,
        pause: Duration::ZERO,
        request: Arc::new(|client, i| Request {
            client_id: format!("c{client}"),
            request_id: format!("r{i}"),
            seat: Some(u64::from(client * 8 + i) % 80 + 1),
        }),
    };
    let sold = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(30);
    let transcript = join_load(spawn_load(&shop, &load, &sold, &stop, deadline)).await?;
    let (acknowledged, _, _) = tally(&transcript);
    ensure!(
        acknowledged == transcript.len(),
        "a sale failed in a healthy cluster"
    );
    let leader_api = at_leader(&cluster, &api).await?;
    let sales_before = leader_api.sales(shop.event).await?;
    let availability_before = leader_api.availability(shop.event).await?;
    check_sales(&leader_api, shop.event, &transcript).await?;

    for id in cluster.ids() {
        cluster.kill(id)?;
    }
    for id in cluster.ids() {
        cluster.restart(id)?;
    }
    let leader_api = at_leader(&cluster, &api).await?;
    let sales_after = leader_api.sales(shop.event).await?;
    ensure!(
        sales_after == sales_before,
        "the sales export changed across the restart"
    );
    let availability_after = leader_api.availability(shop.event).await?;
    ensure!(
        availability_after == availability_before,
        "availability {availability_before} became {availability_after}"
    );

    // A restarted follower knows neither the event nor the session until it has applied the
    // log again (see `open_shop`).
    cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    // Every acknowledged request, retried through each node in turn, replays its ticket.
    for (i, (request, heard)) in transcript.iter().enumerate() {
        let Heard::Sold { ticket, .. } = heard else {
            continue;
        };
        let url = &shop.urls[i % shop.urls.len()];
        let (status, body, replayed) = shop.purchase_once(url, request, REQUEST_TIMEOUT).await?;
        ensure!(
            status == 201 && replayed,
            "retry of {request:?} via {url}: {status} {body}"
        );
        ensure!(
            ticket_of(request, &body)? == *ticket,
            "retry of {request:?} changed: {body}"
        );
    }
    ensure!(
        leader_api.availability(shop.event).await? == availability_before,
        "replays changed availability"
    );
    cluster.wait_converged(CONVERGE_TIMEOUT).await?;
    eprintln!(
        "full restart: {acknowledged} sales kept and replayed; {:?}",
        started.elapsed()
    );
    Ok(())
}
