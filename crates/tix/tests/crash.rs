//! Crash tests against a real `tix` process: kill -9 in the middle of a burst of concurrent
//! purchases, restart on the same data directory, and check that nothing acknowledged was lost,
//! nothing was sold twice, and availability adds up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tix_raft::log_store::LOG_DIR;
use tix_raft::segment_log::segment_numbers;
use tix_testkit::client::{ApiClient, http_client, metric_value};
use tix_testkit::spawn::ServerProcess;

const ADMIN_PASSWORD: &str = "crash-test-admin-pw";
const SEATS: u32 = 3000;
const CAPACITY: u32 = 400;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tix"))
}

/// One acknowledged sale: which event, which key, which ticket and seat.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ack {
    event_id: u64,
    client_id: String,
    request_id: String,
    ticket_id: u64,
    seat: Option<u64>,
}

/// Checks that every acknowledged purchase survives kill -9 and restart, that no seat or key
/// was sold twice, and that sold + held + available = capacity: 48 clients buy seats (with
/// deliberate collisions) and general-admission tickets until the server is killed after 600
/// acknowledgements; then the server restarts on the same data and the sales export is compared
/// with what the clients were told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_burst_loses_no_acknowledged_purchase() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    kill_during_burst(&temp.path().join("data"), &[]).await
}

/// The same with a log that keeps rolling over and deleting segment files while the burst runs
/// (4 KiB segments, a snapshot and compaction every 5 entries): the kill lands among rolls and
/// deletions, and after the restart the oldest segments are gone yet nothing acknowledged is.
/// (The burst's 600 sales fill few entries: with a compaction every 20, one run in six here
/// ended before any purge passed the first segment.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_while_segments_roll_and_are_deleted_loses_nothing() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let data_dir = temp.path().join("data");
    kill_during_burst(
        &data_dir,
        &[
            "--log-segment-bytes",
            "4096",
            "--snapshot-logs-since-last",
            "5",
            "--logs-kept-after-snapshot",
            "1",
        ],
    )
    .await?;
    let segments = segment_numbers(&data_dir.join(LOG_DIR))?;
    assert!(
        segments.first().is_some_and(|&first| first > 1),
        "segments were rolled and the oldest deleted: {segments:?}"
    );
    assert!(
        segments.len() < 20,
        "a purge keeps few segments: {segments:?}"
    );
    Ok(())
}

/// Runs the burst, kill -9, restart and checks of [`kill_during_burst_loses_no_acknowledged_purchase`]
/// in `data_dir`, with `extra_args` for both starts.
async fn kill_during_burst(data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<()> {
    let args: Vec<&str> = ["--no-demo"].iter().chain(extra_args).copied().collect();
    let mut server = ServerProcess::start_in(exe(), data_dir, ADMIN_PASSWORD, &args)?;
    let http = http_client(64)?;
    let api = ApiClient::login(http.clone(), &server.base_url, "admin", ADMIN_PASSWORD).await?;
    let numbered = api
        .create_event(
            "crash-numbered",
            json!({"kind": "numbered", "seats": SEATS}),
        )
        .await?;
    let unnumbered = api
        .create_event(
            "crash-ga",
            json!({"kind": "unnumbered", "capacity": CAPACITY}),
        )
        .await?;

    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for client in 0..48u32 {
        let api = api.clone();
        let acks = acks.clone();
        tasks.spawn(async move {
            for i in 0..10_000u32 {
                if Instant::now() > deadline {
                    break;
                }
                let client_id = format!("c{client}");
                let request_id = format!("r{i}");
                let (event_id, seat) = if i % 3 == 0 {
                    (unnumbered, None)
                } else {
                    // Seats collide across clients on purpose.
                    (numbered, Some((client * 7 + i * 13) % SEATS + 1))
                };
                match api.purchase(event_id, &client_id, &request_id, seat).await {
                    Ok((201, body)) => acks.lock().unwrap().push(Ack {
                        event_id,
                        client_id,
                        request_id,
                        ticket_id: body["ticket_id"].as_u64().expect("ticket id"),
                        seat: body["seat"].as_u64(),
                    }),
                    Ok(_) => {}
                    Err(_) => break, // the server is gone
                }
            }
        });
    }
    while acks.lock().unwrap().len() < 600 {
        assert!(
            Instant::now() < deadline,
            "the burst did not reach 600 sales in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill()?;
    while tasks.join_next().await.is_some() {}
    let acks = acks.lock().unwrap().clone();

    let server = ServerProcess::start_in(exe(), data_dir, ADMIN_PASSWORD, &args)?;
    let api = ApiClient::login(http, &server.base_url, "admin", ADMIN_PASSWORD).await?;
    let mut sold: BTreeMap<(u64, String, String), (u64, Option<u64>)> = BTreeMap::new();
    for event_id in [numbered, unnumbered] {
        let sales = api.sales(event_id).await?;
        let mut seats = BTreeSet::new();
        for line in &sales {
            let key = (
                event_id,
                line["client_id"].as_str().unwrap().to_owned(),
                line["request_id"].as_str().unwrap().to_owned(),
            );
            let value = (line["ticket_id"].as_u64().unwrap(), line["seat"].as_u64());
            assert!(
                sold.insert(key.clone(), value).is_none(),
                "key sold twice: {key:?}"
            );
            if let Some(seat) = line["seat"].as_u64() {
                assert!(seats.insert(seat), "seat {seat} sold twice");
            }
        }
        let a = api.availability(event_id).await?;
        let (cap, s, h, av) = (
            a["capacity"].as_u64(),
            a["sold"].as_u64(),
            a["held"].as_u64(),
            a["available"].as_u64(),
        );
        assert_eq!(
            s,
            Some(sales.len() as u64),
            "availability disagrees with /sales"
        );
        assert_eq!(
            Some(s.unwrap() + h.unwrap() + av.unwrap()),
            cap,
            "counts do not add up"
        );
    }
    for ack in &acks {
        let key = (ack.event_id, ack.client_id.clone(), ack.request_id.clone());
        assert_eq!(
            sold.get(&key),
            Some(&(ack.ticket_id, ack.seat)),
            "acknowledged sale lost: {ack:?}"
        );
    }
    // A retry of an acknowledged request after the restart replays it: no second ticket.
    let first = &acks[0];
    let seat = first.seat.map(|s| s as u32);
    let (status, body) = api
        .purchase(first.event_id, &first.client_id, &first.request_id, seat)
        .await?;
    assert_eq!(status, 201);
    assert_eq!(body["ticket_id"].as_u64(), Some(first.ticket_id));

    // Operators see what the state costs: the hot set in memory and the store on disk.
    let metrics = api.metrics_text().await?;
    for gauge in [
        "tix_state_memory_bytes",
        "tix_store_disk_bytes",
        "tix_log_segment_files",
    ] {
        let value = metric_value(&metrics, gauge);
        assert!(value.is_some_and(|v| v > 0.0), "{gauge}: {value:?}");
    }
    Ok(())
}
