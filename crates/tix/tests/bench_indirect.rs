//! The indirect architecture under faults, with real processes: a 3-node cluster, `tix worker`
//! processes and the RabbitMQ broker on 127.0.0.1. A worker killed with SIGKILL in the middle of
//! a contended numbered sale, and a broker restart in the middle of another, must both end in
//! PASS: every request answered, every 201 in the final state, no seat sold twice, nothing sold
//! that no client was told about.
//!
//! Needs RabbitMQ: the URL comes from `TIX_AMQP_URL`; without it the tests say so and skip,
//! unless `TIX_REQUIRE_SERVICES=1`, where that is a failure. Each test uses its own queue.

use std::path::Path;
use std::time::{Duration, Instant};

use tix_bench::replay::{Answer, CONCERT_CAPACITY, ReplayReport, Transport, replay};
use tix_bench::setup::{
    WorkerLaunch, addresses_leader_first, delete_queue, purge_queue, spawn_worker, start_cluster,
    wait_for_consumers,
};
use tix_bench::workload::{Workload, parse};
use tix_testkit::client::{ApiClient, http_client};
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
    let addrs = addresses_leader_first(&cluster).await?;
    let api = ApiClient::login(
        http_client(8)?,
        &format!("http://{}", addrs[0]),
        "admin",
        &cluster.admin_password,
    )
    .await?;
    purge_queue(amqp_url, queue).await?;
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
    let run = tokio::spawn(async move { replay(&api, &transport, &workload, 64, false).await });
    // Under way: some seats sold (on a fast or a slow day alike).
    tix_bench::replay::wait_for_sales(&s.api, 300, Duration::from_secs(60))
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
