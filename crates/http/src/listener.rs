//! The TCP listener behind both of a node's HTTP servers (the public API and pages, and the
//! internal Raft RPC): HTTP/1.1 on hyper with the connection hygiene `axum::serve` lacks.
//!
//! - **Timeouts**: a request head must arrive within `header_read_timeout` (from the accept
//!   for a connection's first request, from its first byte for later ones); a keep-alive
//!   connection may wait `idle_timeout` for its next request; a request body must arrive
//!   within `body_read_timeout` of its head, or the request is answered 408. hyper's own
//!   `header_read_timeout` is not used: it runs from the moment a connection starts waiting
//!   for a head, so on a keep-alive connection it bounds idle time and header time together and
//!   cannot give a slow client 10 s for its head but a pooled connection minutes between
//!   requests; it also needs a timer, which `axum::serve` never set — hence no timeout at all
//!   before.
//! - **A cap** of `connections_max` per listener (clamped to the open-files limit at startup,
//!   [`clamp_connections`]). At the cap the longest-idle connection is evicted for the new one
//!   (`table.rs`), so idle sockets cannot lock clients out; with every connection in the middle
//!   of a request the new one gets a canned 503 (if the socket takes it) and is closed, without
//!   a task. Refusals and evictions are counted (`tix_connections_refused_total`,
//!   `tix_connections_evicted_total`) and logged at most once per [`LOG_INTERVAL`].
//! - **Accept errors** (out of descriptors) free a descriptor by evicting an idle connection
//!   and back off from 10 ms to 1 s instead of spinning.
//! - **Errors the framework makes** get our bodies: hyper's bodyless 400/414/431 are replaced
//!   on the socket (`io.rs`); a URL over `uri_bytes_max` is answered 414 here; a request body
//!   too slow is flagged for `ops::problem_for_bare_errors`, which answers 408.
//! - **The peer address** is in every request's extensions as
//!   `axum::extract::ConnectInfo<SocketAddr>`.
//! - **Shutdown**: stop accepting, close idle connections at once, let requests in progress
//!   finish (their connections then close); [`serve`] returns when every connection is closed,
//!   and the caller bounds that wait with its drain timeout.
//!
//! Until a client sends its first byte, a connection costs one small task and a socket: hyper
//! and its buffers are set up only once there is something to read.

mod connection;
mod io;
mod limits;
mod table;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Gauge};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use connection::{BodyReadError, BodyReadTimeout};
pub use limits::{
    CONNECTIONS_MIN, ConnectionCaps, LimitError, OPEN_FILES_RESERVE, RAFT_CONNECTIONS_MIN,
    clamp_connections, raise_open_files_limit,
};

use crate::defaults;
use crate::error::ApiError;
use crate::pages::{Nav, PageError};
use connection::ConnState;
use io::FramingError;
use table::{Admission, ConnectionTable};

/// At most one log line per this interval about refused or evicted connections, or accept
/// errors (with the count since the last line).
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Victims of eviction that may be closing at once, beyond the cap.
pub const EVICTIONS_IN_FLIGHT_MAX: usize = 64;

/// How long a new connection may wait for evicted ones to close before it is refused.
const EVICTION_WAIT_MAX: Duration = Duration::from_millis(100);

/// The first pause after an accept error; it doubles up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// The longest pause after repeated accept errors.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The smallest request head buffer hyper accepts.
pub const REQUEST_HEAD_BYTES_MIN: usize = 8 * 1024;

/// Limits and timeouts of one listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Names the listener in metrics and logs (`http`, `raft`).
    pub name: &'static str,
    /// How long a request head may take: from the accept for a connection's first request, from
    /// its first byte for later ones.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long a request body may take after its head; then the request is answered 408.
    pub body_read_timeout: Duration,
    /// The most connections open at once (then the longest-idle one is evicted).
    pub connections_max: usize,
    /// The largest request head (request line and headers); hyper answers a larger one 431,
    /// and a connection never buffers more than this for a head.
    pub request_head_bytes_max: usize,
    /// The longest request target (path and query); a longer one is answered 414.
    pub uri_bytes_max: usize,
    /// Answer errors on page paths (outside `/api/` and `/cluster/`) with a styled page.
    pub pages: bool,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            name: "http",
            header_read_timeout: Duration::from_millis(defaults::HEADER_READ_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(defaults::IDLE_TIMEOUT_MS),
            body_read_timeout: Duration::from_millis(defaults::BODY_READ_TIMEOUT_MS),
            connections_max: defaults::CONNECTIONS_MAX,
            request_head_bytes_max: defaults::REQUEST_HEAD_BYTES_MAX,
            uri_bytes_max: defaults::URI_BYTES_MAX,
            pages: true,
        }
    }
}

/// A listener configuration that does not fit together.
#[derive(Debug, thiserror::Error)]
#[error("listener {listener}: {problem}")]
pub struct ListenerConfigError {
    /// The listener's name.
    pub listener: &'static str,
    /// The setting that is out of bounds (a caller names it in its own terms, e.g. a flag).
    pub setting: ListenerSetting,
    /// What is wrong.
    pub problem: String,
}

/// A setting of [`ListenerConfig`], as named by a [`ListenerConfigError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerSetting {
    /// `header_read_timeout`.
    HeaderReadTimeout,
    /// `idle_timeout`.
    IdleTimeout,
    /// `body_read_timeout`.
    BodyReadTimeout,
    /// `connections_max`.
    ConnectionsMax,
    /// `request_head_bytes_max`.
    RequestHeadBytesMax,
    /// `uri_bytes_max`.
    UriBytesMax,
}

impl ListenerConfig {
    /// Checks that the limits fit together.
    pub fn check(&self) -> Result<(), ListenerConfigError> {
        let fail = |setting: ListenerSetting, problem: String| {
            Err(ListenerConfigError {
                listener: self.name,
                setting,
                problem,
            })
        };
        let timeout_min = Duration::from_millis(100);
        for (setting, name, value) in [
            (
                ListenerSetting::HeaderReadTimeout,
                "header read timeout",
                self.header_read_timeout,
            ),
            (
                ListenerSetting::IdleTimeout,
                "idle timeout",
                self.idle_timeout,
            ),
            (
                ListenerSetting::BodyReadTimeout,
                "body read timeout",
                self.body_read_timeout,
            ),
        ] {
            if value < timeout_min {
                return fail(
                    setting,
                    format!("the {name} must be at least {timeout_min:?}"),
                );
            }
        }
        if self.connections_max == 0 {
            return fail(
                ListenerSetting::ConnectionsMax,
                "at least one connection must be allowed".into(),
            );
        }
        if !(REQUEST_HEAD_BYTES_MIN..=1024 * 1024).contains(&self.request_head_bytes_max) {
            return fail(
                ListenerSetting::RequestHeadBytesMax,
                format!("the request head limit must be {REQUEST_HEAD_BYTES_MIN} bytes to 1 MiB"),
            );
        }
        if self.uri_bytes_max < 256 || self.uri_bytes_max >= self.request_head_bytes_max {
            return fail(
                ListenerSetting::UriBytesMax,
                "the URL limit must be at least 256 bytes and below the head limit".into(),
            );
        }
        Ok(())
    }
}

/// Counters and gauges of one listener, labelled with its name.
struct Metrics {
    open: Gauge,
    accepted: Counter,
    evicted: Counter,
    refused: Counter,
    timed_out_header: Counter,
    timed_out_idle: Counter,
    accept_errors: Counter,
}

impl Metrics {
    fn new(name: &'static str) -> Self {
        Metrics {
            open: metrics::gauge!("tix_connections_open", "listener" => name),
            accepted: metrics::counter!("tix_connections_accepted_total", "listener" => name),
            evicted: metrics::counter!("tix_connections_evicted_total", "listener" => name),
            refused: metrics::counter!("tix_connections_refused_total", "listener" => name),
            timed_out_header: metrics::counter!(
                "tix_connections_timed_out_total", "listener" => name, "phase" => "header"
            ),
            timed_out_idle: metrics::counter!(
                "tix_connections_timed_out_total", "listener" => name, "phase" => "idle"
            ),
            accept_errors: metrics::counter!("tix_accept_errors_total", "listener" => name),
        }
    }
}

/// Responses the listener writes as bytes, rendered once at startup through [`ApiError`] and
/// [`PageError`] like every other error.
struct Canned {
    /// The 503 for a connection refused at the cap.
    refused: Bytes,
    /// hyper's framing errors, by [`FramingError`] and then problem+json / page.
    framing: [[Bytes; 2]; 3],
}

impl Canned {
    async fn render() -> Canned {
        let refused = ApiError::Unavailable(
            "this node has too many open connections; try again in a moment".into(),
        );
        let refused = wire_bytes(refused.into_response(), "/api/").await;
        let mut framing: [[Bytes; 2]; 3] = Default::default();
        for kind in [
            FramingError::Malformed,
            FramingError::UriTooLong,
            FramingError::HeadTooLarge,
        ] {
            let error = || match kind {
                FramingError::Malformed => ApiError::MalformedRequest,
                FramingError::UriTooLong => ApiError::UriTooLong,
                FramingError::HeadTooLarge => ApiError::HeadersTooLarge,
            };
            let json = wire_bytes(error().into_response(), "/api/").await;
            let page = PageError::from_api(Nav::default(), error()).into_response();
            framing[kind as usize] = [json, wire_bytes(page, "/").await];
        }
        Canned { refused, framing }
    }

    fn framing(&self, kind: FramingError, page: bool) -> Bytes {
        self.framing[kind as usize][usize::from(page)].clone()
    }
}

/// Serializes a response as HTTP/1.1 with the security headers and `connection: close`.
async fn wire_bytes(response: Response, path: &str) -> Bytes {
    let (mut parts, body) = response.into_parts();
    crate::headers::add_security_headers(path, &mut parts.headers);
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let status = parts.status;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// What every connection of one listener shares.
struct Shared {
    config: ListenerConfig,
    /// The zero of the connections' millisecond clocks.
    epoch: Instant,
    table: Mutex<ConnectionTable<Arc<ConnState>>>,
    http1: hyper::server::conn::http1::Builder,
    canned: Canned,
    metrics: Metrics,
    /// Signalled when an evicted connection has closed (a waiting admission may go ahead).
    evicted_closed: tokio::sync::Notify,
}

impl Shared {
    async fn new(config: ListenerConfig) -> Shared {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .keep_alive(true)
            .header_read_timeout(None)
            // The head limit is exact; the read buffer's is approximate (a read may fill what
            // the buffer reserved beyond it) and bounds a connection's memory.
            .max_header_size(config.request_head_bytes_max)
            .max_buf_size(config.request_head_bytes_max)
            .writev(false);
        Shared {
            table: Mutex::new(ConnectionTable::new(
                config.connections_max,
                EVICTIONS_IN_FLIGHT_MAX,
            )),
            metrics: Metrics::new(config.name),
            canned: Canned::render().await,
            epoch: Instant::now(),
            http1,
            config,
            evicted_closed: tokio::sync::Notify::new(),
        }
    }

    /// Returns the table; it is never held across an `.await` and no operation on it panics
    /// halfway, so a poisoned lock is still consistent.
    fn table(&self) -> MutexGuard<'_, ConnectionTable<Arc<ConnState>>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the milliseconds since the listener started.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Tells a connection to close (for eviction) and counts it.
    fn evict(&self, victim: &ConnState) {
        victim
            .evicted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        victim.wake.notify_one();
        self.metrics.evicted.increment(1);
    }
}

/// Counts occurrences and says when a log line about them is due (at most one per
/// [`LOG_INTERVAL`]).
#[derive(Debug, Default)]
struct Throttled {
    last: Option<Instant>,
    since_last: u64,
}

impl Throttled {
    /// Counts one occurrence; returns how many there were since the last line when one is due.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        self.since_last += 1;
        if self.last.is_some_and(|last| now < last + LOG_INTERVAL) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

/// The accept loop's log throttles.
#[derive(Debug, Default)]
struct Logs {
    refused: Throttled,
    evicted: Throttled,
    accept_errors: Throttled,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections, and returns when the requests in progress have been answered and every
/// connection is closed (see the module documentation).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ListenerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ListenerConfigError> {
    config.check()?;
    let shared = Arc::new(Shared::new(config).await);
    let mut tasks = JoinSet::new();
    let mut logs = Logs::default();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut next_id = 0u64;
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = joined
                    && e.is_panic()
                {
                    tracing::error!(listener = shared.config.name, error = %e, "connection task panicked");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    next_id += 1;
                    admit(&shared, &mut tasks, &mut logs, next_id, stream, peer, &router).await;
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    shared.metrics.accept_errors.increment(1);
                    // Out of descriptors (or memory): free one by closing the longest-idle
                    // connection, and give the node a moment instead of spinning.
                    let victim = shared.table().evict_oldest_idle();
                    if let Some(victim) = victim {
                        shared.evict(&victim);
                    }
                    if let Some(errors) = logs.accept_errors.hit(Instant::now()) {
                        tracing::warn!(
                            listener = shared.config.name, error = %e, errors,
                            "accept failed; evicting an idle connection and backing off"
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
    drop(listener);
    let open = shared.table().handles();
    for connection in open {
        connection.wake.notify_one();
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Admits, admits after evicting, or refuses a new connection. While the victims of earlier
/// evictions are still closing, waits for them (up to [`EVICTION_WAIT_MAX`]): accepting pauses,
/// and a flood that opens faster than its victims close queues in the listen backlog instead of
/// getting real clients refused.
async fn admit(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<()>,
    logs: &mut Logs,
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    router: &Router,
) {
    let state = Arc::new(ConnState::new(id, shared));
    let waited_until = Instant::now() + EVICTION_WAIT_MAX;
    let admission = loop {
        let admission = shared.table().admit(id, state.clone());
        if !matches!(admission, Admission::Wait) || Instant::now() >= waited_until {
            break admission;
        }
        let _ = tokio::time::timeout_at(waited_until, shared.evicted_closed.notified()).await;
    };
    match admission {
        Admission::Admit => {}
        Admission::AdmitEvicting { victim } => {
            shared.evict(&victim);
            if let Some(evicted) = logs.evicted.hit(Instant::now()) {
                tracing::info!(
                    listener = shared.config.name,
                    evicted,
                    connections_max = shared.config.connections_max,
                    "connection cap reached: evicting the longest-idle connections"
                );
            }
        }
        Admission::Wait | Admission::Refuse => {
            // Best effort and without a task: if the socket does not take the answer at once,
            // the client sees the connection closed.
            let _ = stream.try_write(&shared.canned.refused);
            drop(stream);
            shared.metrics.refused.increment(1);
            if let Some(refused) = logs.refused.hit(Instant::now()) {
                tracing::warn!(
                    listener = shared.config.name,
                    refused,
                    connections_max = shared.config.connections_max,
                    "connection cap reached with every connection in a request: refusing"
                );
            }
            return;
        }
    }
    shared.metrics.accepted.increment(1);
    shared.metrics.open.increment(1.0);
    tasks.spawn(connection::run(
        shared.clone(),
        state,
        stream,
        peer,
        router.clone(),
    ));
}

/// Whether an accept error concerns only the one connection (it went away before we took it),
/// so the next accept may follow at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks that a burst of occurrences yields one log line per interval, carrying the count
    // since the previous line.
    #[test]
    fn throttled_logs_once_per_interval_with_the_count() {
        let start = Instant::now();
        let mut throttled = Throttled::default();
        assert_eq!(throttled.hit(start), Some(1));
        for i in 1..1_000u64 {
            assert_eq!(throttled.hit(start + Duration::from_millis(i)), None);
        }
        assert_eq!(throttled.hit(start + LOG_INTERVAL), Some(1_000));
        assert_eq!(throttled.hit(start + LOG_INTERVAL), None);
    }

    // Checks the limits from both sides: the defaults pass, and a head buffer below hyper's
    // minimum, a URL limit not below the head limit or a short timeout is refused, naming the
    // setting.
    #[test]
    fn config_checks_its_limits() {
        let config = ListenerConfig::default();
        config.check().unwrap();
        let at_min = ListenerConfig {
            request_head_bytes_max: REQUEST_HEAD_BYTES_MIN,
            uri_bytes_max: REQUEST_HEAD_BYTES_MIN - 1,
            ..config.clone()
        };
        at_min.check().unwrap();
        let below = ListenerConfig {
            request_head_bytes_max: REQUEST_HEAD_BYTES_MIN - 1,
            uri_bytes_max: 256,
            ..config.clone()
        };
        assert_eq!(
            below.check().unwrap_err().setting,
            ListenerSetting::RequestHeadBytesMax
        );
        let uri_too_big = ListenerConfig {
            uri_bytes_max: config.request_head_bytes_max,
            ..config.clone()
        };
        assert_eq!(
            uri_too_big.check().unwrap_err().setting,
            ListenerSetting::UriBytesMax
        );
        let no_timeout = ListenerConfig {
            idle_timeout: Duration::from_millis(99),
            ..config
        };
        assert_eq!(
            no_timeout.check().unwrap_err().setting,
            ListenerSetting::IdleTimeout
        );
    }

    // Checks that the canned answers are complete HTTP/1.1 responses with our bodies: the 503
    // with Retry-After and problem+json, framing errors as problem+json or a styled page.
    #[tokio::test]
    async fn canned_responses_carry_our_bodies() {
        let canned = Canned::render().await;
        let refused = String::from_utf8(canned.refused.to_vec()).unwrap();
        assert!(refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(refused.contains("retry-after: 1\r\n"));
        assert!(refused.contains("content-type: application/problem+json\r\n"));
        assert!(refused.contains("connection: close\r\n"));
        let (head, body) = refused.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 503);

        let json = canned.framing(FramingError::HeadTooLarge, false);
        let json = String::from_utf8(json.to_vec()).unwrap();
        assert!(json.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(json.contains("application/problem+json"));
        let page = canned.framing(FramingError::UriTooLong, true);
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(page.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(page.contains("text/html"));
        assert!(page.contains("content-security-policy: default-src 'self'"));
    }
}
