//! Live streams under load against a real `tix` process: 2,000 subscribers that never read on
//! the 20,000-seat demo arena while seats sell. The node keeps answering purchases and
//! `/healthz` promptly, refuses the subscriber over its cap, and gives the memory back when the
//! subscribers leave.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tix_testkit::client::{ApiClient, http_client, metric_value};
use tix_testkit::spawn::ServerProcess;
use tix_testkit::sys::{raise_open_files, rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_PASSWORD: &str = "sse-load-admin-pw";
/// Subscribers opened (also the node's cap in this test).
const SUBSCRIBERS: usize = 2_000;
/// Probes of a purchase and `/healthz` taken while the subscribers are connected.
const PROBES: usize = 20;
/// How fast a probe must be answered: all but one of them (the 95th percentile of 20)...
const PROBE_LIMIT: Duration = Duration::from_millis(100);
/// ...and the slowest. On a shared two-core machine one probe in twenty sometimes waits for a
/// core or an fsync (103 ms seen once, with a debug build); a node that stalls for its
/// subscribers stalls every probe.
const PROBE_MAX: Duration = Duration::from_millis(300);
/// How far above its RSS before the subscribers came the node may settle after they leave, in
/// percent. The 300 sales made meanwhile grow the node's state too (74 → 81.5 MiB seen once in
/// CI, 64 → 67–69 MiB usually); the leak this guards against kept 1.3 GB.
const RSS_SETTLED_ABOVE_PCT: u64 = 15;
/// Seats sold on the arena before the subscribers come, and again while they are there.
const ARENA_SALES: u32 = 300;
/// How long the test waits for subscriber counts and memory to settle.
const SETTLE: Duration = Duration::from_secs(60);

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tix"))
}

/// Polls the live-subscriber gauge until it reads `want`.
async fn wait_for_subscribers(api: &ApiClient, want: f64) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = metric_value(&api.metrics_text().await?, "tix_sse_subscribers");
        if now == Some(want) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "subscribers stayed at {now:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens a live stream on a raw socket and never reads from it.
async fn slow_subscriber(addr: &str, event: u64) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET /events/{event}/live HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    Ok(stream)
}

/// Returns the status line of a live-stream request.
async fn live_status(addr: &str, event: u64) -> anyhow::Result<String> {
    let mut stream = slow_subscriber(addr, event).await?;
    let mut head = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head)).await??;
    let text = String::from_utf8_lossy(&head[..n]).into_owned();
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// Times one purchase of the probe event and one `/healthz`.
async fn probe(api: &ApiClient, event: u64, i: usize) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let (status, body) = api.purchase(event, "probe", &format!("p{i}"), None).await?;
    let purchase = started.elapsed();
    anyhow::ensure!(status == 201, "probe purchase answered {status}: {body}");
    let started = Instant::now();
    let health = api
        .http
        .get(format!("{}/healthz", api.base_url))
        .send()
        .await?;
    let healthz = started.elapsed();
    anyhow::ensure!(
        health.status() == 200,
        "healthz answered {}",
        health.status()
    );
    Ok((purchase, healthz))
}

/// Returns the resident set size once it has stopped falling: the node is idle but answers a
/// few requests between samples (allocators return memory on their own schedule).
async fn settled_rss_kib(api: &ApiClient, pid: u32) -> anyhow::Result<u64> {
    let mut last = rss_kib(pid)?;
    for _ in 0..10 {
        for _ in 0..20 {
            api.http
                .get(format!("{}/healthz", api.base_url))
                .send()
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rss_kib(pid)?;
        if now + now / 100 >= last {
            return Ok(now.min(last));
        }
        last = now;
    }
    Ok(last)
}

// Checks the probe's finding 5 end to end: 2,000 live subscribers that never read, on the
// 20,000-seat arena while its seats sell, leave purchases and /healthz answering within 100 ms
// (19 probes of 20; the slowest within 300 ms), the one over the node's cap is refused with 503, and after they close the node's RSS is back
// within 15 % of what it was before they came. Bounded: 2,000 sockets, a few hundred sales,
// about a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_live_subscribers_cost_little_and_memory_comes_back() -> anyhow::Result<()> {
    // The server inherits the limit: 2,000 sockets on each side need more than the common
    // default of 1,024.
    raise_open_files(2 * SUBSCRIBERS as u64 + 256)?;
    let cap = SUBSCRIBERS.to_string();
    let server = ServerProcess::start(
        exe(),
        ADMIN_PASSWORD,
        &[
            "--sse-subscribers-max",
            &cap,
            "--sse-subscribers-per-client-max",
            &cap,
        ],
    )?;
    let addr = server.http_addr.clone();
    let api = ApiClient::login(http_client(8)?, &server.base_url, "admin", ADMIN_PASSWORD).await?;
    let events: Value = api
        .http
        .get(format!("{}/api/v1/events?q=arena", server.base_url))
        .send()
        .await?
        .json()
        .await?;
    let arena = events["events"][0]["id"].as_u64().expect("the demo arena");
    let probe_event = api
        .create_event("probe", json!({"kind": "unnumbered", "capacity": 1000}))
        .await?;

    // Warm up: as many sales and probes as the measured phase has, without subscribers (the
    // log, history pages and caches grow with sales; that is not what is measured here).
    let mut idle_purchases = Vec::new();
    for seat in 1..=ARENA_SALES {
        api.purchase(arena, "warm", &format!("w{seat}"), Some(seat))
            .await?;
    }
    for i in 0..PROBES {
        idle_purchases.push(probe(&api, probe_event, 1000 + i).await?.0);
    }
    idle_purchases.sort();
    let before = settled_rss_kib(&api, server.pid()).await?;

    let mut subscribers = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        subscribers.push(slow_subscriber(&addr, arena).await?);
    }
    wait_for_subscribers(&api, SUBSCRIBERS as f64).await?;
    let status = live_status(&addr, arena).await?;
    assert!(
        status.starts_with("HTTP/1.1 503"),
        "one over the cap: {status}"
    );
    let opened = rss_kib(server.pid())?;

    // Seats sell on the arena (every sale changes what the 2,000 subscribers would be sent)
    // while the probes run.
    let sales = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut sold = 0u32;
            for seat in ARENA_SALES + 1..=2 * ARENA_SALES {
                match api
                    .purchase(arena, "load", &format!("l{seat}"), Some(seat))
                    .await
                {
                    Ok((201, _)) => sold += 1,
                    other => panic!("arena sale answered {other:?}"),
                }
            }
            sold
        })
    };
    let (mut purchases, mut healthz) = (Vec::new(), Vec::new());
    for i in 0..PROBES {
        let (purchase, health) = probe(&api, probe_event, i).await?;
        purchases.push(purchase);
        healthz.push(health);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sold = sales.await?;
    let loaded = rss_kib(server.pid())?;

    drop(subscribers);
    wait_for_subscribers(&api, 0.0).await?;
    let deadline = Instant::now() + SETTLE;
    let mut after = settled_rss_kib(&api, server.pid()).await?;
    let rss_limit = before + before * RSS_SETTLED_ABOVE_PCT / 100;
    while after > rss_limit && Instant::now() < deadline {
        after = settled_rss_kib(&api, server.pid()).await?;
    }

    purchases.sort();
    healthz.sort();
    eprintln!(
        "sse_load: {SUBSCRIBERS} slow subscribers, {sold} arena sales; RSS before {} MiB, \
         open {} MiB, after sales {} MiB, after close {} MiB; probe purchase p50 {:?} max \
         {:?} (without subscribers p50 {:?} max {:?}), healthz p50 {:?} max {:?}",
        before / 1024,
        opened / 1024,
        loaded / 1024,
        after / 1024,
        purchases[PROBES / 2],
        purchases[PROBES - 1],
        idle_purchases[PROBES / 2],
        idle_purchases[PROBES - 1],
        healthz[PROBES / 2],
        healthz[PROBES - 1],
    );
    for (name, times) in [("purchase", &purchases), ("healthz", &healthz)] {
        assert!(
            times[PROBES - 2] < PROBE_LIMIT && times[PROBES - 1] < PROBE_MAX,
            "{name}s: the second slowest must take less than {PROBE_LIMIT:?}, the slowest \
             less than {PROBE_MAX:?}: {times:?}"
        );
    }
    assert!(
        after <= rss_limit,
        "RSS after the subscribers left is {after} KiB, more than {RSS_SETTLED_ABOVE_PCT} % \
         above {before} KiB"
    );
    Ok(())
}
