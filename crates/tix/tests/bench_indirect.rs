//! The indirect architecture under faults, with real processes: a 3-node cluster, the RabbitMQ
//! broker on 127.0.0.1, and the intake either in `tix worker` processes or in the nodes
//! themselves (`tix serve --amqp-url`). A worker or a node killed with SIGKILL in the middle of a
//! contended numbered sale (the node restarted), and a broker restart in the middle of another,
//! must all end in PASS: every request answered, every 201 in the final state, no seat sold
//! twice, nothing sold that no client was told about. Malformed messages get a 400 naming what
//! is wrong and do not stop the in-node consumer.
//!
//! Needs RabbitMQ: the URL comes from `TIX_AMQP_URL`; without it the tests say so and skip,
//! unless `TIX_REQUIRE_SERVICES=1`, where that is a failure. Each test uses its own queue.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tix_bench::replay::{Answer, CONCERT_CAPACITY, ReplayReport, Transport, replay};
use tix_bench::setup::{
    WorkerLaunch, addresses_leader_first, delete_queue, intake_node_args, production_options,
    purge_queue, spawn_worker, start_cluster, wait_for_consumers,
};
use tix_bench::workload::{Workload, parse};
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::cluster::{ClusterOptions, LocalCluster};
use tix_testkit::require;
use tokio::sync::Mutex;

/// The broker restart disturbs every broker user: these tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// A contended numbered workload: `lines` attempts, every fourth one at one of 50 hot seats,
/// the rest at distinct seats.
fn contended(lines: usize) -> Workload {
    let mut text = String::from("# generated: hot seats 1..=50, the rest distinct\n");
    for i in 0..lines {
        let seat = if i % 4 == 0 { 1 + i % 50 } else { 100 + i };
        text.push_str(&format!("BUY client{i} {seat} req{i}\n"));
    }
    parse(Path::new("contended.txt"), &text, CONCERT_CAPACITY).expect("a valid workload")
}

/// Everything one test runs: the cluster, the workers and the requester on its own queue.
struct Setup {
    cluster: tix_testkit::cluster::LocalCluster,
    api: ApiClient,
    launch: WorkerLaunch,
    requester: tix_amqp::Requester,
}

async fn setup(amqp_url: &str, queue: &str) -> anyhow::Result<Setup> {
    let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
    let cluster = start_cluster(exe, 3).await?;
    purge_queue(amqp_url, queue).await?;
    with_cluster(cluster, amqp_url, queue, 0).await
}

/// A 3-node cluster whose nodes all run the in-node intake on `queue` (one consumer each), and
/// an API client on a follower (so the leader can be killed without it).
async fn setup_in_node(amqp_url: &str, queue: &str) -> anyhow::Result<Setup> {
    let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
    purge_queue(amqp_url, queue).await?;
    // The test timings (elections in seconds), so a loaded machine does not add elections.
    let options = ClusterOptions {
        node_args: intake_node_args(amqp_url, queue, 1, 3),
        ..ClusterOptions::default()
    };
    let cluster = LocalCluster::start(exe, 3, options).await?;
    wait_for_consumers(amqp_url, queue, 3, Duration::from_secs(30)).await?;
    with_cluster(cluster, amqp_url, queue, 2).await
}

/// Logs in on the `api_node`-th address (the leader first) and starts the requester.
async fn with_cluster(
    cluster: LocalCluster,
    amqp_url: &str,
    queue: &str,
    api_node: usize,
) -> anyhow::Result<Setup> {
    let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
    let addrs = addresses_leader_first(&cluster).await?;
    let api = ApiClient::login(
        http_client(8)?,
        &format!("http://{}", addrs[api_node]),
        "admin",
        &cluster.admin_password,
    )
    .await?;
    let launch = WorkerLaunch {
        exe: exe.to_path_buf(),
        amqp_url: amqp_url.to_owned(),
        queue: queue.to_owned(),
        api_addrs: addrs,
        username: "admin".into(),
        password: cluster.admin_password.clone(),
        echo: false,
        log_path: None,
    };
    let requester = tix_amqp::Requester::start(tix_amqp::RequesterConfig {
        amqp_url: amqp_url.to_owned(),
        queue: queue.to_owned(),
        resend_after_ms: 20_000,
        ..Default::default()
    });
    Ok(Setup {
        cluster,
        api,
        launch,
        requester,
    })
}

/// Starts replaying `workload` through the broker and returns once it is well under way.
async fn start_replay(
    s: &Setup,
    workload: &Workload,
) -> tokio::task::JoinHandle<anyhow::Result<ReplayReport>> {
    let (api, transport, workload) = (
        s.api.clone(),
        Transport::Amqp(s.requester.clone()),
        workload.clone(),
    );
    let run =
        tokio::spawn(async move { replay(&api, &transport, &workload, 64, false, None).await });
    // Under way: some seats sold (on a fast or a slow day alike).
    sales_through_failover(&s.api, 300, Duration::from_secs(60))
        .await
        .expect("the replay makes progress");
    assert!(!run.is_finished(), "the fault must land during the run");
    run
}

fn assert_pass(report: &ReplayReport, workload: &Workload) {
    assert!(
        report.violations.is_empty(),
        "verification failed: {:?}",
        &report.violations[..report.violations.len().min(10)]
    );
    let unknown = report
        .answers
        .iter()
        .filter(|a| matches!(a, Answer::Unknown(_)))
        .count();
    assert_eq!(unknown, 0, "every request gets a definite answer");
    assert_eq!(report.sold(), workload.expected_sold(CONCERT_CAPACITY));
    assert_eq!(report.sold_final, report.sold());
    let refused: usize = report.rejections().values().sum();
    assert_eq!(report.sold() + refused, workload.buys.len());
}

/// SIGKILL of one of three workers while a contended numbered sale runs: its unacknowledged
/// requests go to the others, repeats replay the recorded answers, and the run passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_loses_nothing_and_sells_nothing_twice() -> anyhow::Result<()> {
    let Some(url) = require::amqp_url() else {
        return Ok(());
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let s = setup(&url, "tix.test.kill-worker").await?;
    let mut workers = (1..=3)
        .map(|n| spawn_worker(&s.launch, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_for_consumers(&url, &s.launch.queue, 3, Duration::from_secs(30)).await?;
    let workload = contended(6_000);
    let run = start_replay(&s, &workload).await;
    workers[0].kill()?;
    let report = run.await??;
    assert_pass(&report, &workload);
    assert!(workers[1].is_running() && workers[2].is_running());
    // The killed worker's unacknowledged requests came back from the broker, not from the
    // requester's overdue-resend safety net (20 s, longer than the run).
    let (_, resends) = s.requester.counters();
    assert_eq!(resends, 0, "no request needed the requester's resend");
    drop(workers);
    delete_queue(&url, &s.launch.queue).await?;
    drop(s.cluster);
    Ok(())
}

/// `rabbitmqctl stop_app` / `start_app` while a sale runs: connections drop, the durable queue
/// and its persistent requests survive, workers and the requester reconnect, the requester
/// publishes every unanswered request again, and the run passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_restart_mid_run_loses_nothing_and_sells_nothing_twice() -> anyhow::Result<()> {
    let Some(url) = require::amqp_url() else {
        return Ok(());
    };
    let Some(rabbitmqctl) = require::rabbitmqctl() else {
        return Ok(());
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let s = setup(&url, "tix.test.restart-broker").await?;
    let workers = (1..=2)
        .map(|n| spawn_worker(&s.launch, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    wait_for_consumers(&url, &s.launch.queue, 2, Duration::from_secs(30)).await?;
    let workload = contended(6_000);
    let run = start_replay(&s, &workload).await;
    let restart = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for step in ["stop_app", "start_app"] {
            let out = std::process::Command::new(&rabbitmqctl)
                .arg(step)
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "rabbitmqctl {step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    });
    let restarted_at = Instant::now();
    restart.await??;
    eprintln!("broker restarted in {:?}", restarted_at.elapsed());
    let report = run.await??;
    assert_pass(&report, &workload);
    let (reconnects, _) = s.requester.counters();
    assert!(
        reconnects >= 1,
        "the requester reconnected after the restart"
    );
    drop(workers);
    delete_queue(&url, &s.launch.queue).await?;
    drop(s.cluster);
    Ok(())
}

/// SIGKILL of the leader while a contended numbered sale runs through the in-node intake of all
/// three nodes, then a restart on its data: its unacknowledged deliveries go to the other
/// nodes' consumers, the proposals it had forwarded or was committing are retried under the
/// same request ids (replaying what was recorded), the restarted node consumes again, and the
/// run passes with the replicas converged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_and_restarted_loses_nothing_and_sells_nothing_twice()
-> anyhow::Result<()> {
    let Some(url) = require::amqp_url() else {
        return Ok(());
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut s = setup_in_node(&url, "tix.test.kill-node").await?;
    let workload = contended(6_000);
    let run = start_replay(&s, &workload).await;
    let victim = s.cluster.wait_for_leader(Duration::from_secs(10)).await?;
    s.cluster.kill(victim)?;
    sales_through_failover(&s.api, 1_500, Duration::from_secs(60))
        .await
        .expect("the other nodes sell on");
    s.cluster.restart(victim)?;
    let report = run.await??;
    assert_pass(&report, &workload);
    s.cluster.wait_converged(Duration::from_secs(30)).await?;
    wait_for_consumers(&url, &s.launch.queue, 3, Duration::from_secs(30)).await?;
    delete_queue(&url, &s.launch.queue).await?;
    drop(s.cluster);
    Ok(())
}

/// `rabbitmqctl stop_app` / `start_app` while a sale runs through the in-node intake: the nodes
/// keep serving HTTP while their consumers reconnect with backoff, the requester publishes
/// every unanswered request again, and the run passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_restart_under_the_in_node_intake_loses_nothing_and_sells_nothing_twice()
-> anyhow::Result<()> {
    let Some(url) = require::amqp_url() else {
        return Ok(());
    };
    let Some(rabbitmqctl) = require::rabbitmqctl() else {
        return Ok(());
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let s = setup_in_node(&url, "tix.test.restart-broker-in-node").await?;
    let workload = contended(6_000);
    let run = start_replay(&s, &workload).await;
    rabbitmq(&rabbitmqctl, "stop_app").await?;
    // The broker is down: HTTP is still served, by every node.
    for id in s.cluster.ids() {
        let health = s
            .api
            .http
            .get(format!("{}/healthz", s.cluster.url(id)))
            .send()
            .await?;
        assert!(health.status().is_success(), "node {id} serves HTTP");
    }
    rabbitmq(&rabbitmqctl, "start_app").await?;
    let report = run.await??;
    assert_pass(&report, &workload);
    let (reconnects, _) = s.requester.counters();
    assert!(
        reconnects >= 1,
        "the requester reconnected after the restart"
    );
    wait_for_consumers(&url, &s.launch.queue, 3, Duration::from_secs(30)).await?;
    delete_queue(&url, &s.launch.queue).await?;
    drop(s.cluster);
    Ok(())
}

/// Malformed messages to the in-node intake — not JSON, a missing field, an unknown field, an
/// oversized body, a key with a control character, a seat for a general-admission event — are
/// each answered with a clear error naming the problem (the key and seat rules are the HTTP
/// API's, answered 422), acknowledged (the queue is left empty), and the consumer goes on:
/// a valid purchase after them sells.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_get_a_clear_error_and_the_in_node_consumer_goes_on()
-> anyhow::Result<()> {
    let Some(url) = require::amqp_url() else {
        return Ok(());
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let queue = "tix.test.malformed-in-node";
    let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
    purge_queue(&url, queue).await?;
    let options = ClusterOptions {
        node_args: intake_node_args(&url, queue, 1, 1),
        ..production_options()
    };
    let cluster = LocalCluster::start(exe, 1, options).await?;
    wait_for_consumers(&url, queue, 1, Duration::from_secs(30)).await?;
    let s = with_cluster(cluster, &url, queue, 0).await?;
    let event = s
        .api
        .create_event("malformed", json!({"kind": "unnumbered", "capacity": 10}))
        .await?;
    let cases: Vec<(Vec<u8>, u64, &str)> = vec![
        (b"not json".to_vec(), 400, "not a purchase request"),
        (
            json!({"event_id": event, "client_id": "a"})
                .to_string()
                .into(),
            400,
            "request_id",
        ),
        (
            json!({"event_id": event, "client_id": "a", "request_id": "r", "price": 1})
                .to_string()
                .into(),
            400,
            "price",
        ),
        (vec![b' '; 5000], 400, "limit"),
        (
            json!({"event_id": event, "client_id": "a\u{7}", "request_id": "r"})
                .to_string()
                .into(),
            422,
            "client_id",
        ),
        (
            json!({"event_id": event, "client_id": "a", "request_id": "r", "seat": 3})
                .to_string()
                .into(),
            422,
            "seat",
        ),
        (
            json!({"event_id": 999_999, "client_id": "a", "request_id": "r"})
                .to_string()
                .into(),
            404,
            "event",
        ),
    ];
    for (body, status, named) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let reply = s
            .requester
            .request_body(body, Duration::from_secs(20))
            .await?;
        assert_eq!(reply["status"], json!(status), "{shown}: {reply}");
        let text = reply.to_string();
        assert!(
            text.contains(named),
            "{shown}: the reply names {named}: {reply}"
        );
    }
    let sold = s
        .requester
        .request(
            &tix_amqp::PurchaseMessage {
                event_id: event,
                client_id: "a".into(),
                request_id: "good".into(),
                seat: None,
                admission: None,
            },
            Duration::from_secs(20),
        )
        .await?;
    assert_eq!(sold["status"], json!(201), "{sold}");
    assert_eq!(s.api.availability(event).await?["sold"], json!(1));
    assert_eq!(
        purge_queue(&url, queue).await?,
        0,
        "everything was acknowledged"
    );
    delete_queue(&url, queue).await?;
    drop(s.cluster);
    Ok(())
}

/// Runs `rabbitmqctl step` on a blocking thread.
async fn rabbitmq(rabbitmqctl: &Path, step: &'static str) -> anyhow::Result<()> {
    let rabbitmqctl = rabbitmqctl.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(rabbitmqctl).arg(step).output()
    })
    .await??;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {step}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Waits until the replay has sold `sold_at_least`, also while an election makes reads answer
/// 503 for a moment.
async fn sales_through_failover(
    api: &ApiClient,
    sold_at_least: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tix_bench::replay::wait_for_sales(api, sold_at_least, left).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
