//! Connection hygiene of a real `tix serve` on 127.0.0.1: 20,000 idle connections do not lock
//! clients out or keep memory, slow heads and idle keep-alive connections are closed on time,
//! and the errors the framework makes (408, 413, 414, 431, 400) carry our bodies.
//!
//! The tests run one at a time (`SERIAL`): they measure latencies and timeouts, and the first
//! holds 20,000 sockets.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use serde_json::{Value, json};
use tix_testkit::client::{ApiClient, http_client, metric_value};
use tix_testkit::spawn::ServerProcess;
use tix_testkit::sys::{raise_open_files, rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_PASSWORD: &str = "connections-test-admin-pw";

/// Idle connections opened by the flood test.
const IDLE_CONNECTIONS: usize = 20_000;

/// The server's default `--connections-max`.
const SERVER_CONNECTIONS_MAX: usize = 10_000;

/// Processes that hold the idle connections, each its share: one process may not hold 20,000
/// sockets here (the hard open-files limit is 20,000, and raising it needs CAP_SYS_RESOURCE,
/// which the test's root lacks).
const HOLDERS: usize = 2;

/// Tells this test binary, run again as a holder, where to connect.
const HOLDER_ADDR: &str = "TIX_TEST_IDLE_HOLDER_ADDR";

/// Tells a holder how many connections to open.
const HOLDER_COUNT: &str = "TIX_TEST_IDLE_HOLDER_COUNT";

/// Connects in flight at once while the flood opens (the listen backlog is 1,024).
const CONNECTS_IN_FLIGHT: usize = 64;

/// Idle connections the kernel may lose before the server sees them: when the accept queue is
/// momentarily full the kernel drops the client's final ACK, the client believes it is connected,
/// and a client that never sends a byte is never accepted (CI lost 16 of 20,000 so). The server
/// cannot count what it never accepted, so eviction is asserted for all but these.
const LOST_IN_BACKLOG_MAX: usize = IDLE_CONNECTIONS / 100;

/// The latency a purchase and `/healthz` must stay under during the flood.
const LATENCY_MAX: Duration = Duration::from_millis(100);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tix"))
}

/// Reads a metric of the server (`/metrics` with the admin's token).
async fn metric(api: &ApiClient, name: &str) -> anyhow::Result<f64> {
    metric_value(&api.metrics_text().await?, name).with_context(|| format!("no metric {name}"))
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await? {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(false)
}

/// A response read off a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks that this is a problem+json answer with `status` and returns its body.
    fn problem(&self, status: u16) -> anyhow::Result<Value> {
        ensure!(self.status == status, "expected {status}, got {self:?}");
        ensure!(
            self.header("content-type") == Some("application/problem+json"),
            "not problem+json: {self:?}"
        );
        let body: Value = serde_json::from_slice(&self.body)?;
        ensure!(body["status"] == status, "body: {body}");
        ensure!(body["type"].as_str().is_some_and(|t| !t.is_empty()));
        Ok(body)
    }

    /// Checks that this is a styled HTML error page with `status`.
    fn page(&self, status: u16) -> anyhow::Result<()> {
        ensure!(self.status == status, "expected {status}, got {self:?}");
        ensure!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "not a page: {self:?}"
        );
        let body = String::from_utf8_lossy(&self.body);
        ensure!(
            body.contains("/static/shop.css") && body.contains("error-page"),
            "not our styled page: {body}"
        );
        Ok(())
    }
}

/// Reads one response (head, then a `content-length` body) from `stream` within `timeout`.
async fn read_response(stream: &mut TcpStream, timeout: Duration) -> anyhow::Result<RawResponse> {
    tokio::time::timeout(timeout, async {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            ensure!(n > 0, "connection closed before a response: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let (status, headers) = parse_head(&buf, head_end)?;
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse())
            .transpose()?
            .context("no content-length")?;
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = vec![0u8; length - body.len()];
            let n = stream.read(&mut chunk).await?;
            ensure!(n > 0, "connection closed inside the body");
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    })
    .await
    .context("no response in time")?
}

/// Sends `request` on a new connection and reads the response.
async fn exchange(addr: &str, request: &[u8]) -> anyhow::Result<RawResponse> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    read_response(&mut stream, Duration::from_secs(10)).await
}

/// Waits until the server closes `stream` (EOF or reset), reading and discarding anything it
/// sends; returns the moment, or an error after `timeout`.
async fn closed_at(stream: &mut TcpStream, timeout: Duration) -> anyhow::Result<Instant> {
    tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .context("the server did not close the connection in time")
}

/// Opens `count` connections to `addr`, `CONNECTS_IN_FLIGHT` at a time, and returns them.
async fn open_idle(addr: &str, count: usize) -> anyhow::Result<Vec<TcpStream>> {
    futures::stream::iter(0..count)
        .map(|_| TcpStream::connect(addr))
        .buffer_unordered(CONNECTS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .context("opening idle connections")
}

/// This test binary run again as `idle_connection_holder`: it opens its share of the idle
/// connections, says so on stdout, and holds them until its stdin closes. Killed when dropped.
struct IdleHolder {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl IdleHolder {
    fn spawn(addr: &str, count: usize) -> anyhow::Result<IdleHolder> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["idle_connection_holder", "--exact", "--nocapture"])
            .env(HOLDER_ADDR, addr)
            .env(HOLDER_COUNT, count.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("holder stdout")?;
        Ok(IdleHolder {
            child,
            lines: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)),
        })
    }

    /// Waits until the holder has opened all its connections.
    async fn wait_holding(&mut self, timeout: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(timeout, async {
            while let Some(line) = self.lines.next_line().await? {
                if line.starts_with("holding ") {
                    return Ok(());
                }
            }
            bail!("the holder exited before holding its connections")
        })
        .await
        .context("the holder did not open its connections in time")?
    }

    /// Lets the holder close its connections and exit.
    async fn release(mut self, timeout: Duration) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .context("the holder did not exit")??;
        ensure!(status.success(), "the holder failed: {status}");
        Ok(())
    }
}

// Not a check by itself: the flood test runs this binary again with TIX_TEST_IDLE_HOLDER_ADDR
// set, to hold a share of the idle connections in another process (see `HOLDERS`). Without
// the variable it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_holder() -> anyhow::Result<()> {
    let Ok(addr) = std::env::var(HOLDER_ADDR) else {
        return Ok(());
    };
    let count: usize = std::env::var(HOLDER_COUNT)?.parse()?;
    raise_open_files(count as u64 + 256)?;
    let held = open_idle(&addr, count).await?;
    println!("holding {}", held.len());
    // Until the flood test closes our stdin, or at most five minutes.
    let mut byte = [0u8; 1];
    let _ =
        tokio::time::timeout(Duration::from_secs(300), tokio::io::stdin().read(&mut byte)).await;
    drop(held);
    Ok(())
}

/// Times five `/healthz` requests and five purchases, each from a new client (a new
/// connection), and checks their answers.
async fn client_latencies(
    admin: &ApiClient,
    event: u64,
    client_id: &str,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut healthz = Vec::new();
    let mut purchase = Vec::new();
    for i in 0..5 {
        let fresh = ApiClient {
            http: http_client(1)?,
            ..admin.clone()
        };
        let t = Instant::now();
        let status = fresh
            .http
            .get(format!("{}/healthz", fresh.base_url))
            .send()
            .await?
            .status();
        healthz.push(t.elapsed());
        ensure!(status == 200, "/healthz answered {status}");
        let fresh = ApiClient {
            http: http_client(1)?,
            ..admin.clone()
        };
        let t = Instant::now();
        let (status, body) = fresh
            .purchase(event, client_id, &format!("r{i}"), None)
            .await?;
        purchase.push(t.elapsed());
        ensure!(status == 201, "purchase answered {status}: {body}");
    }
    Ok((healthz, purchase))
}

// Checks the outage scenario: 20,000 idle sockets (header timeout set long, so only the
// cap and eviction protect the node) — a purchase on a new connection and /healthz still answer
// within 100 ms, the server holds at most its cap, and its RSS returns to within 10 % of the
// level before once the sockets are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_idle_connections_do_not_lock_clients_out() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let server = ServerProcess::start(
        exe(),
        ADMIN_PASSWORD,
        &["--no-demo", "--header-read-timeout-ms", "120000"],
    )?;
    let addr = server.http_addr.clone();
    let admin =
        ApiClient::login(http_client(4)?, &server.base_url, "admin", ADMIN_PASSWORD).await?;
    let event = admin
        .create_event("flood", json!({"kind": "unnumbered", "capacity": 1000}))
        .await?;
    // The baseline is taken after the node has done what the test asks of it besides the
    // flood: purchases and /healthz from new clients, metrics.
    for i in 0..20 {
        let (status, _) = admin
            .purchase(event, "warm", &format!("w{i}"), None)
            .await?;
        ensure!(status == 201, "warm-up purchase answered {status}");
    }
    let (healthz_ms, purchase_ms) = client_latencies(&admin, event, "warm-fresh").await?;
    println!("before the flood: healthz {healthz_ms:?}, purchase {purchase_ms:?}");
    let open = metric(&admin, "tix_connections_open{listener=\"http\"}").await?;
    ensure!(open >= 1.0, "the admin's connection is open");
    let rss_before = rss_kib(server.pid())?;

    let started = Instant::now();
    let mut holders = Vec::new();
    for _ in 0..HOLDERS {
        holders.push(IdleHolder::spawn(&addr, IDLE_CONNECTIONS / HOLDERS)?);
    }
    for holder in &mut holders {
        holder.wait_holding(Duration::from_secs(120)).await?;
    }
    let opening = started.elapsed();
    // The last connections may still wait in the listen backlog.
    let evicted_name = "tix_connections_evicted_total{listener=\"http\"}";
    let evicted_min = IDLE_CONNECTIONS - SERVER_CONNECTIONS_MAX - LOST_IN_BACKLOG_MAX;
    let all_in = wait_until(Duration::from_secs(30), || async {
        Ok(metric(&admin, evicted_name).await? >= evicted_min as f64)
    })
    .await?;

    let (healthz_ms, purchase_ms) = client_latencies(&admin, event, "flood").await?;
    println!(
        "opened {IDLE_CONNECTIONS} idle connections in {opening:?}; healthz {healthz_ms:?}, \
         purchase {purchase_ms:?}"
    );
    let slowest = healthz_ms.iter().chain(&purchase_ms).max().copied();
    ensure!(
        slowest.is_some_and(|s| s < LATENCY_MAX),
        "slowest answer {slowest:?} (healthz {healthz_ms:?}, purchase {purchase_ms:?})"
    );

    let open = metric(&admin, "tix_connections_open{listener=\"http\"}").await?;
    let evicted = metric(&admin, evicted_name).await?;
    let refused = metric(&admin, "tix_connections_refused_total{listener=\"http\"}")
        .await
        .unwrap_or(0.0);
    println!("server: {open} connections open, {evicted} evicted, {refused} refused");
    ensure!(
        open <= (SERVER_CONNECTIONS_MAX + 64) as f64,
        "{open} connections open over the cap"
    );
    ensure!(
        all_in,
        "only {evicted} evicted (at least {evicted_min} expected)"
    );
    let rss_flood = rss_kib(server.pid())?;

    for holder in holders {
        holder.release(Duration::from_secs(30)).await?;
    }
    let drained = wait_until(Duration::from_secs(30), || async {
        Ok(metric(&admin, "tix_connections_open{listener=\"http\"}").await? <= 5.0)
    })
    .await?;
    ensure!(drained, "the server still holds the closed connections");
    // With ordinary traffic going on: the allocator gives freed memory back as it runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rss_after = rss_kib(server.pid())?;
    while rss_after as f64 > rss_before as f64 * 1.10 && Instant::now() < deadline {
        let healthz = format!("{}/healthz", admin.base_url);
        admin.http.get(healthz).send().await?.error_for_status()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        rss_after = rss_kib(server.pid())?;
    }
    println!(
        "RSS: {rss_before} KiB before, {rss_flood} KiB under the flood, {rss_after} KiB after"
    );
    ensure!(
        rss_after as f64 <= rss_before as f64 * 1.10,
        "RSS {rss_after} KiB after the flood, {rss_before} KiB before (over 10 %)"
    );
    let (status, _) = admin.purchase(event, "after", "a0", None).await?;
    ensure!(status == 201, "purchase after the flood answered {status}");
    Ok(())
}

// Checks the connection timeouts on a real socket: a slow head is closed at the header-read
// timeout (0.5 s) without an answer, a silent new connection likewise, a keep-alive connection
// lives until the idle timeout (1.5 s, not the header timeout) after its response, and a head
// started late on a keep-alive connection gets the header-read timeout from its first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_are_closed_on_time() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let header = Duration::from_millis(500);
    let idle = Duration::from_millis(1_500);
    let slack = Duration::from_millis(700);
    // The server counts in whole milliseconds from its own accept.
    let early = Duration::from_millis(20);
    let server = ServerProcess::start(
        exe(),
        ADMIN_PASSWORD,
        &[
            "--no-demo",
            "--header-read-timeout-ms",
            "500",
            "--idle-timeout-ms",
            "1500",
        ],
    )?;
    let addr = server.http_addr.clone();

    // A slowloris head: one byte every 100 ms, never finished.
    let mut slow = TcpStream::connect(&addr).await?;
    let opened = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let writer = {
        let (mut read, mut write) = slow.into_split();
        let writer = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if write.write_all(b"X").await.is_err() {
                    break;
                }
            }
        });
        let mut answer = Vec::new();
        let read_all = tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut answer));
        let closed = read_all.await.context("slow head still open after 5 s")?;
        let lived = opened.elapsed();
        ensure!(
            closed.is_ok_and(|_| answer.is_empty()),
            "expected a close without an answer, got {:?}",
            String::from_utf8_lossy(&answer)
        );
        ensure!(
            lived >= header - early && lived < header + slack,
            "slow head closed after {lived:?}"
        );
        writer
    };
    writer.abort();

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(&addr).await?;
    let opened = Instant::now();
    let lived = closed_at(&mut silent, Duration::from_secs(5)).await? - opened;
    ensure!(
        lived >= header - early && lived < header + slack,
        "silent connection closed after {lived:?}"
    );

    // A keep-alive connection after one request.
    let mut keep = TcpStream::connect(&addr).await?;
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let response = read_response(&mut keep, Duration::from_secs(5)).await?;
    ensure!(response.status == 200);
    let answered = Instant::now();
    let lived = closed_at(&mut keep, Duration::from_secs(5)).await? - answered;
    ensure!(
        lived >= idle - early && lived < idle + slack,
        "idle keep-alive connection closed after {lived:?}"
    );

    // A keep-alive connection whose next head starts after 1 s and never ends: closed 0.5 s
    // after its first byte, i.e. before the idle timeout would have struck had it stayed idle,
    // but later than the header timeout counted from the response.
    let mut late = TcpStream::connect(&addr).await?;
    late.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    ensure!(
        read_response(&mut late, Duration::from_secs(5))
            .await?
            .status
            == 200
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    late.write_all(b"GET /healthz HTTP/1.1\r\n").await?;
    let first_byte = Instant::now();
    let lived = closed_at(&mut late, Duration::from_secs(5)).await? - first_byte;
    ensure!(
        lived >= header - early && lived < header + slack,
        "late head closed {lived:?} after its first byte"
    );
    Ok(())
}

// Checks that the errors the framework makes carry our bodies, on the API as problem+json and
// on pages as the styled page: a body slower than the body read timeout (0.5 s) is 408, a
// 10 MB body (JSON or form) 413, a URL over 8 KiB 414, headers over 64 KiB 431, and a request
// that is not HTTP 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_errors_carry_our_bodies() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let server = ServerProcess::start(
        exe(),
        ADMIN_PASSWORD,
        &["--no-demo", "--body-read-timeout-ms", "500"],
    )?;
    let addr = server.http_addr.clone();

    // 408: a body announced as 100 bytes, 1 sent.
    let started = Instant::now();
    let api = exchange(
        &addr,
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{",
    )
    .await?;
    let waited = started.elapsed();
    let body = api.problem(408)?;
    ensure!(body["type"].as_str().unwrap().ends_with("/request_timeout"));
    ensure!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "408 after {waited:?}"
    );
    let page = exchange(
        &addr,
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100\r\n\r\nu",
    )
    .await?;
    page.page(408)?;

    // 413: 10 MB bodies, sent while the answer is read.
    for (path, content_type) in [
        ("/api/v1/auth/login", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
    ] {
        let response = big_body(&addr, path, content_type, 10 * 1024 * 1024).await?;
        if path.starts_with("/api/") {
            response.problem(413)?;
        } else {
            response.page(413)?;
        }
    }

    // 414: a 9 KiB query string.
    let long = "a".repeat(9 * 1024);
    let api = exchange(
        &addr,
        format!("GET /api/v1/events?q={long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await?;
    api.problem(414)?;
    let page = exchange(
        &addr,
        format!("GET /?q={long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await?;
    page.page(414)?;
    // Just under the limit is served.
    let under = "a".repeat(8 * 1024 - "/api/v1/events?q=".len());
    let ok = exchange(
        &addr,
        format!("GET /api/v1/events?q={under} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await?;
    ensure!(
        ok.status == 200,
        "a URL at the limit answered {}",
        ok.status
    );

    // 431: 70 KB of headers (hyper's own answer, given our body on the socket).
    let header = "a".repeat(70_000);
    let api = exchange(
        &addr,
        format!("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nX-Big: {header}\r\n\r\n").as_bytes(),
    )
    .await?;
    let body = api.problem(431)?;
    ensure!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("/headers_too_large")
    );
    let page = exchange(
        &addr,
        format!("GET /events HTTP/1.1\r\nHost: x\r\nX-Big: {header}\r\n\r\n").as_bytes(),
    )
    .await?;
    page.page(431)?;

    // 400: not HTTP at all.
    exchange(&addr, b"NOT HTTP AT ALL\r\n\r\n")
        .await?
        .problem(400)?;
    Ok(())
}

/// Posts a body of `bytes` to `path`, writing it while the answer is read, and returns the
/// answer (the server answers before the body is complete and closes).
async fn big_body(
    addr: &str,
    path: &str,
    content_type: &str,
    bytes: usize,
) -> anyhow::Result<RawResponse> {
    let stream = TcpStream::connect(addr).await?;
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
         Content-Length: {bytes}\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..bytes / chunk.len() {
            write.write_all(&chunk).await?;
        }
        anyhow::Ok(write)
    });
    let mut buf = Vec::new();
    let read_all = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 8192];
        loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    read_all.await.context("no answer to the big body")?;
    writer.abort();
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no response head in {:?}", String::from_utf8_lossy(&buf)))?;
    let (status, headers) = parse_head(&buf, head_end)?;
    Ok(RawResponse {
        status,
        headers,
        body: buf[head_end + 4..].to_vec(),
    })
}

/// Parses a response head that ends at `head_end` (the position of the blank line).
fn parse_head(buf: &[u8], head_end: usize) -> anyhow::Result<(u16, Vec<(String, String)>)> {
    let head = String::from_utf8(buf[..head_end].to_vec())?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .context("no status")?
        .parse()?;
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Ok((status, headers))
}

// Checks load shedding on real sockets: with `--requests-in-flight-max 2`, two requests whose
// bodies are still coming hold both places; a purchase then gets 503 + `Retry-After` and an
// `overloaded` problem at once (nothing proposed: the event stays unsold), a page gets the styled
// 503 page, while `/healthz` and static files still answer. Once the slow requests finish, the
// same purchase (same request id) is sold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_cap_are_shed_at_once() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let server = ServerProcess::start(
        exe(),
        ADMIN_PASSWORD,
        &[
            "--no-demo",
            "--requests-in-flight-max",
            "2",
            "--body-read-timeout-ms",
            "3000",
        ],
    )?;
    let addr = server.http_addr.clone();
    let admin =
        ApiClient::login(http_client(1)?, &server.base_url, "admin", ADMIN_PASSWORD).await?;
    let event = admin
        .create_event("shed", json!({"kind": "unnumbered", "capacity": 10}))
        .await?;

    // Two requests that hold their place: heads sent, bodies not yet.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&addr).await?;
        stream
            .write_all(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            )
            .await?;
        holders.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let (status, body) = admin.purchase(event, "crowd", "shed-1", None).await?;
    let answered = started.elapsed();
    ensure!(
        status == 503,
        "purchase beyond the cap answered {status}: {body}"
    );
    ensure!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/overloaded")),
        "{body}"
    );
    ensure!(
        answered < Duration::from_millis(500),
        "the shed answer took {answered:?}"
    );
    let raw = exchange(
        &addr,
        format!(
            "POST /api/v1/events/{event}/purchases HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .as_bytes(),
    )
    .await?;
    raw.problem(503)?;
    ensure!(raw.header("retry-after") == Some("1"), "{raw:?}");
    // A refused request's small body is read, so its keep-alive connection carries the next
    // request (nginx would otherwise open a new connection per refusal).
    let mut kept = TcpStream::connect(&addr).await?;
    let purchase = format!(
        "POST /api/v1/events/{event}/purchases HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    kept.write_all(purchase.as_bytes()).await?;
    read_response(&mut kept, Duration::from_secs(5))
        .await?
        .problem(503)?;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let again = read_response(&mut kept, Duration::from_secs(5)).await?;
    ensure!(
        again.status == 200,
        "the connection did not carry a request after a refusal: {again:?}"
    );
    let page = exchange(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    page.page(503)?;
    ensure!(page.header("retry-after") == Some("1"), "{page:?}");
    for path in ["/healthz", "/static/shop.css"] {
        let free = exchange(
            &addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await?;
        ensure!(free.status == 200, "{path} under a full cap: {free:?}");
    }

    // The holders finish (their bodies are cut short: 408), freeing their places.
    drop(holders);
    let sold = wait_until(Duration::from_secs(10), || async {
        Ok(admin.purchase(event, "crowd", "shed-1", None).await?.0 == 201)
    })
    .await?;
    ensure!(
        sold,
        "the retried purchase was not sold once the cap had room"
    );
    let shed = metric(&admin, "tix_http_shed_total").await?;
    ensure!(shed >= 4.0, "tix_http_shed_total = {shed}");
    let availability = admin.availability(event).await?;
    ensure!(
        availability["available"] == 9,
        "one ticket sold in all: {availability}"
    );
    Ok(())
}
