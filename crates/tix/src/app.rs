//! One way to start a node. [`Config`] holds every setting of `tix serve`, with its default
//! ([`Config::default`], from [`defaults`]), and checks that they fit together
//! ([`Config::validate`], naming a bad setting by its `tix serve` flag). [`App::build`] raises
//! the open-files limit and clamps the connection caps to it, binds both listeners, starts the
//! Raft node, serves the internal (Raft RPC) listener, and — on a bootstrapping node — seeds the
//! admin account and demo data before anything is served publicly. [`App::run_until`] serves the
//! public listener until a future resolves, then stops accepting, lets the requests in progress
//! finish within the drain timeout, and stops Raft.
//!
//! `tix serve` is `Config` from its flags, `App::build`, then `run_until` SIGINT/SIGTERM; tests
//! build an `App` in-process on port 0 the same way. A node prints what its operator must see
//! to stdout, as `tix serve` always has: the connection caps in force, the address it serves,
//! and the admin password generated on first start (shown once).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tix_http::listener::{
    self, ConnectionCaps, LimitError, ListenerConfig, ListenerConfigError, ListenerSetting,
};
use tix_http::ops::{MetricsToken, MetricsTokenError};
use tix_http::{ApiError, AppState, HttpConfig, TestPayments};
use tix_raft::node::{NodeConfig, NodeError};
use tix_raft::proposer::ProposerConfig;
use tix_raft::{Node, NodeId};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::intake::Intake;

/// The default of every setting, written once: [`Config::default`] and `tix serve`'s flags both
/// use these. The node's timings and batching limits come from `tix_raft::node::defaults`, the
/// HTTP edge's limits from `tix_http::defaults`; the rest are the node's own.
pub mod defaults {
    pub use tix_http::defaults::*;
    pub use tix_raft::node::defaults::*;

    /// This node's id.
    pub const NODE_ID: u64 = 1;
    /// The public HTTP address.
    pub const HTTP_ADDR: &str = "127.0.0.1:8080";
    /// The internal Raft RPC address.
    pub const RAFT_ADDR: &str = "127.0.0.1:8090";
    /// Where the log and snapshots are stored.
    pub const DATA_DIR: &str = "./tix-data";
    /// How long in-flight requests may take to finish after the shutdown future resolves.
    pub const DRAIN_TIMEOUT_MS: u64 = 10_000;
    /// The queue the RabbitMQ intake consumes.
    pub const AMQP_QUEUE: &str = tix_amqp::PURCHASE_QUEUE;
    /// Unacknowledged deliveries the broker may send ahead to one intake consumer. It bounds
    /// the consumer's memory (≤ 4 KiB a message: 4 MiB) and must exceed the requests in flight
    /// so the leader's consumer never fills and overflows to the followers' (which forward):
    /// measured against 64 and 256 (docs/BENCHMARK.md, "In-node intake"), 1024 was as fast or
    /// faster.
    pub const AMQP_PREFETCH: u16 = 1024;
    /// Consumers (channels) of the RabbitMQ intake on one node.
    pub const AMQP_CONSUMERS: u32 = 1;
    /// The account the RabbitMQ intake sells as.
    pub const AMQP_SELLER: &str = "admin";
    /// The sender of tix's mail.
    pub const MAIL_FROM: &str = "tix <tix@localhost>";
    /// How long one SMTP conversation may take.
    pub const SMTP_TIMEOUT_MS: u64 = 10_000;
    /// How long the intake retries purchases the cluster cannot answer (no leader) before it
    /// hands them back to the broker.
    pub const AMQP_RETRY_MS: u64 = 30_000;
}

/// The most consumers of the RabbitMQ intake on one node.
const AMQP_CONSUMERS_MAX: u32 = 16;

/// How long [`App::build`] waits for the first leader of a bootstrapping node (and the
/// background seeding of a joining node waits for any leader).
const LEADER_WAIT: Duration = Duration::from_secs(60);

/// How long the Raft listener may take to close after Raft has stopped.
const RAFT_LISTENER_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The shortest hold a node accepts.
const HOLD_TTL_MS_MIN: u64 = 1000;

/// The longest hold a node accepts.
const HOLD_TTL_MS_MAX: u64 = 30 * 60 * 1000;

/// The highest `--requests-in-flight-max` accepted (beyond it the cap sheds nothing).
const REQUESTS_IN_FLIGHT_MAX_LIMIT: usize = 1_000_000;

/// The most commands one log entry may be asked to carry.
const BATCH_COMMANDS_MAX_LIMIT: usize = 65_536;

/// The most proposer batches in flight accepted.
const BATCHES_IN_FLIGHT_MAX_LIMIT: usize = 64;

/// The longest linger accepted, in microseconds.
const BATCH_LINGER_US_MAX: u64 = 100_000;

/// Every setting of a node (the fields are `tix serve`'s flags, `--no-*` flags inverted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's id (unique in the cluster, never reused for a wiped node).
    pub node_id: NodeId,
    /// Public HTTP address (API and pages); port 0 takes a free port ([`App::http_addr`]).
    pub http_addr: String,
    /// Internal Raft RPC address; port 0 takes a free port ([`App::raft_addr`]).
    pub raft_addr: String,
    /// The Raft address other nodes should use, if not `raft_addr` (e.g. behind a proxy).
    pub raft_advertise_addr: Option<String>,
    /// Send Raft and cluster calls from this local IP address (fault-injection tests).
    pub raft_source_ip: Option<IpAddr>,
    /// Test-only fault injection: while this file exists, apply panics as a broken invariant
    /// does, and the node fail-stops.
    pub test_fail_apply_file: Option<PathBuf>,
    /// Where the log and snapshots are stored.
    pub data_dir: PathBuf,
    /// The cluster secret every member shares; `None`: `data_dir/cluster.secret`, created on
    /// first start if absent.
    pub cluster_secret_file: Option<PathBuf>,
    /// Initialize a one-node cluster on first start (`false`: joining an existing cluster).
    pub bootstrap: bool,
    /// Create the demo organizer and events on first start.
    pub demo_data: bool,
    /// Password for the `admin` account created on first start (generated and printed if
    /// `None`).
    pub admin_password: Option<String>,
    /// Leader heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Time limit for sending one snapshot chunk to a follower.
    pub install_snapshot_timeout_ms: u64,
    /// Build a snapshot and compact the log after this many log entries.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept below the last snapshot.
    pub logs_kept_after_snapshot: u64,
    /// The size after which the log starts a new segment file.
    pub log_segment_bytes: u64,
    /// The most commands batched into one log entry.
    pub batch_commands_max: usize,
    /// The most batches being committed at once.
    pub batches_in_flight_max: usize,
    /// How long a batch may wait to grow to the previous batch's size, in microseconds.
    pub batch_linger_us: u64,
    /// The largest request body accepted.
    pub request_body_bytes_max: usize,
    /// Time limit of one request.
    pub request_timeout_ms: u64,
    /// How long a request head may take.
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout_ms: u64,
    /// How long a request body may take after its head; then the request is answered 408.
    pub body_read_timeout_ms: u64,
    /// The most connections open at once on the HTTP listener (lowered to fit the open-files
    /// limit).
    pub connections_max: usize,
    /// The most connections open at once on the Raft listener (lowered to fit the open-files
    /// limit).
    pub raft_connections_max: usize,
    /// The largest request head (request line and headers).
    pub request_head_bytes_max: usize,
    /// The longest request target (path and query).
    pub uri_bytes_max: usize,
    /// How long in-flight requests may take to finish after the shutdown future resolves.
    pub drain_timeout_ms: u64,
    /// How long a shop hold lasts.
    pub hold_ttl_ms: u64,
    /// Reverse proxies whose `X-Forwarded-For` (last hop) and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Mark the session and CSRF cookies `Secure` (tix is served over TLS by a proxy).
    pub cookie_secure: bool,
    /// The origin browsers use (`https://tickets.example`) when a proxy rewrites `Host`.
    pub public_origin: Option<String>,
    /// Requests this node works on at once; more are answered 503 + `Retry-After` unread.
    pub requests_in_flight_max: usize,
    /// Live-availability streams (SSE) this node serves at once.
    pub sse_subscribers_max: u32,
    /// Live streams one client may hold at once.
    pub sse_subscribers_per_client_max: u32,
    /// A live stream whose connection has not taken a change for this long is dropped.
    pub sse_send_timeout_ms: u64,
    /// The shortest time between two live messages about one event.
    pub sse_update_interval_ms: u64,
    /// A file holding the bearer token that may read `/metrics`.
    pub metrics_token_file: Option<PathBuf>,
    /// The broker of the RabbitMQ intake; `None`: no intake.
    pub amqp_url: Option<String>,
    /// The queue the intake consumes.
    pub amqp_queue: String,
    /// Unacknowledged deliveries the broker may send ahead to each consumer.
    pub amqp_prefetch: u16,
    /// Consumers (channels) of the intake on this node.
    pub amqp_consumers: u32,
    /// The account the intake sells as (its organizer's events, or all for an admin).
    pub amqp_seller: String,
    /// The SMTP server mail goes to (`smtp://host[:port]`); `None`: the outbox folder.
    pub smtp_url: Option<String>,
    /// The outbox folder when there is no SMTP server; `None`: `data_dir/outbox`.
    pub outbox_dir: Option<PathBuf>,
    /// The sender of tix's mail.
    pub mail_from: String,
    /// Whether this node sends mail at all.
    pub mail: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: defaults::NODE_ID,
            http_addr: defaults::HTTP_ADDR.to_owned(),
            raft_addr: defaults::RAFT_ADDR.to_owned(),
            raft_advertise_addr: None,
            raft_source_ip: None,
            test_fail_apply_file: None,
            data_dir: PathBuf::from(defaults::DATA_DIR),
            cluster_secret_file: None,
            bootstrap: true,
            demo_data: true,
            admin_password: None,
            heartbeat_interval_ms: defaults::HEARTBEAT_INTERVAL_MS,
            election_timeout_min_ms: defaults::ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max_ms: defaults::ELECTION_TIMEOUT_MAX_MS,
            install_snapshot_timeout_ms: defaults::INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_logs_since_last: defaults::SNAPSHOT_LOGS_SINCE_LAST,
            logs_kept_after_snapshot: defaults::LOGS_KEPT_AFTER_SNAPSHOT,
            log_segment_bytes: defaults::LOG_SEGMENT_BYTES,
            batch_commands_max: defaults::BATCH_COMMANDS_MAX,
            batches_in_flight_max: defaults::BATCHES_IN_FLIGHT_MAX,
            batch_linger_us: defaults::BATCH_LINGER_US,
            request_body_bytes_max: defaults::REQUEST_BODY_BYTES_MAX,
            request_timeout_ms: defaults::REQUEST_TIMEOUT_MS,
            header_read_timeout_ms: defaults::HEADER_READ_TIMEOUT_MS,
            idle_timeout_ms: defaults::IDLE_TIMEOUT_MS,
            body_read_timeout_ms: defaults::BODY_READ_TIMEOUT_MS,
            connections_max: defaults::CONNECTIONS_MAX,
            raft_connections_max: defaults::RAFT_CONNECTIONS_MAX,
            request_head_bytes_max: defaults::REQUEST_HEAD_BYTES_MAX,
            uri_bytes_max: defaults::URI_BYTES_MAX,
            drain_timeout_ms: defaults::DRAIN_TIMEOUT_MS,
            hold_ttl_ms: defaults::HOLD_TTL_MS,
            trusted_proxies: Vec::new(),
            cookie_secure: false,
            public_origin: None,
            requests_in_flight_max: defaults::REQUESTS_IN_FLIGHT_MAX,
            sse_subscribers_max: defaults::SSE_SUBSCRIBERS_MAX,
            sse_subscribers_per_client_max: defaults::SSE_SUBSCRIBERS_PER_CLIENT_MAX,
            sse_send_timeout_ms: defaults::SSE_SEND_TIMEOUT_MS,
            sse_update_interval_ms: defaults::SSE_UPDATE_INTERVAL_MS,
            metrics_token_file: None,
            amqp_url: None,
            amqp_queue: defaults::AMQP_QUEUE.to_owned(),
            amqp_prefetch: defaults::AMQP_PREFETCH,
            amqp_consumers: defaults::AMQP_CONSUMERS,
            amqp_seller: defaults::AMQP_SELLER.to_owned(),
            smtp_url: None,
            outbox_dir: None,
            mail_from: defaults::MAIL_FROM.to_owned(),
            mail: true,
        }
    }
}

/// A setting that is out of bounds or does not fit with another.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting of the node's edge; `flag` names it as `tix serve` does.
    #[error("{flag} {problem}")]
    Invalid {
        /// The flag, e.g. `--hold-ttl-ms`.
        flag: &'static str,
        /// What is wrong, e.g. "must be at least 1000".
        problem: String,
    },
    /// The node's timings or batching limits do not fit together (the message names the flag).
    #[error(transparent)]
    Node(NodeError),
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting is out of bounds.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The open-files limit leaves too few descriptors for connections.
    #[error(transparent)]
    OpenFiles(#[from] LimitError),
    /// The `/metrics` token file is unreadable or too short.
    #[error(transparent)]
    MetricsToken(#[from] MetricsTokenError),
    /// A listener could not be bound.
    #[error("cannot listen for {listener} on {addr}")]
    Bind {
        /// `HTTP` or `Raft RPC`.
        listener: &'static str,
        /// The configured address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The node could not open its storage, start Raft or find a leader.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The first-start setup (admin account, demo data) failed.
    #[error("{step}: {error}")]
    Seed {
        /// What was being created.
        step: &'static str,
        /// Why it failed.
        error: ApiError,
    },
}

/// The two listeners of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    /// The public API and pages.
    Http,
    /// Raft RPC and the cluster API.
    Raft,
}

impl Config {
    /// Checks every setting and that they fit together; the error names the first bad one by
    /// its `tix serve` flag.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |flag, problem: &str| {
            Err(ConfigError::Invalid {
                flag,
                problem: problem.to_owned(),
            })
        };
        if self.hold_ttl_ms < HOLD_TTL_MS_MIN {
            return invalid("--hold-ttl-ms", "must be at least 1000");
        }
        if self.hold_ttl_ms > HOLD_TTL_MS_MAX {
            return invalid("--hold-ttl-ms", "must be at most 30 minutes");
        }
        if let Some(origin) = &self.public_origin
            && !is_origin(origin)
        {
            return invalid(
                "--public-origin",
                "must be a scheme and host, like https://tickets.example",
            );
        }
        if !(1..=REQUESTS_IN_FLIGHT_MAX_LIMIT).contains(&self.requests_in_flight_max) {
            return invalid("--requests-in-flight-max", "must be 1 to 1,000,000");
        }
        if !(1..=BATCH_COMMANDS_MAX_LIMIT).contains(&self.batch_commands_max) {
            return invalid("--batch-commands-max", "must be 1 to 65,536");
        }
        if !(1..=BATCHES_IN_FLIGHT_MAX_LIMIT).contains(&self.batches_in_flight_max) {
            return invalid("--batches-in-flight-max", "must be 1 to 64");
        }
        if self.batch_linger_us > BATCH_LINGER_US_MAX {
            return invalid(
                "--batch-linger-us",
                "must be at most 100000 (100 ms; every batch under load may wait this long)",
            );
        }
        if self.body_read_timeout_ms >= self.request_timeout_ms {
            return invalid(
                "--body-read-timeout-ms",
                "must be below --request-timeout-ms (a slow body is answered 408 before the \
                 request times out)",
            );
        }
        if !(1..=AMQP_CONSUMERS_MAX).contains(&self.amqp_consumers) {
            return invalid("--amqp-consumers", "must be 1 to 16");
        }
        if self.amqp_seller.is_empty() {
            return invalid("--amqp-seller", "must name an account");
        }
        if let Some(mail) = self.mail_config() {
            let flag = match &mail.transport {
                tix_mail::Transport::Smtp(_) => "--smtp-url / --mail-from",
                tix_mail::Transport::Outbox(_) => "--mail-from",
            };
            if let Err(e) = tix_mail::Mailer::new(&mail) {
                return invalid(flag, &e.to_string());
            }
        }
        self.intake_config()
            .validate("--amqp-")
            .map_err(|e| ConfigError::Invalid {
                flag: "--amqp-*",
                problem: e.to_string(),
            })?;
        for (listener, connections_max) in [
            (Listener::Http, self.connections_max),
            (Listener::Raft, self.raft_connections_max),
        ] {
            self.listener_config(listener, connections_max)
                .check()
                .map_err(|e| listener_error(listener, e))?;
        }
        self.node_config().validate().map_err(ConfigError::Node)
    }

    /// Returns the node's configuration, at the configured addresses.
    fn node_config(&self) -> NodeConfig {
        let raft_advertised = (self.raft_advertise_addr.clone()).unwrap_or(self.raft_addr.clone());
        let mut node = NodeConfig::new(
            self.node_id,
            self.data_dir.clone(),
            self.http_addr.clone(),
            raft_advertised,
        );
        node.source_ip = self.raft_source_ip;
        node.faults.fail_apply_file = self.test_fail_apply_file.clone();
        node.bootstrap = self.bootstrap;
        node.heartbeat_interval_ms = self.heartbeat_interval_ms;
        node.election_timeout_min_ms = self.election_timeout_min_ms;
        node.election_timeout_max_ms = self.election_timeout_max_ms;
        node.snapshot_logs_since_last = self.snapshot_logs_since_last;
        node.logs_kept_after_snapshot = self.logs_kept_after_snapshot;
        node.log_segment_bytes = self.log_segment_bytes;
        node.install_snapshot_timeout_ms = self.install_snapshot_timeout_ms;
        node.cluster_secret_file = self.cluster_secret_file.clone();
        node.proposer = ProposerConfig {
            batch_commands_max: self.batch_commands_max,
            in_flight_max: self.batches_in_flight_max,
            batch_linger_us: self.batch_linger_us,
            ..ProposerConfig::default()
        };
        node
    }

    /// Returns the limits of one listener with the given connection cap.
    fn listener_config(&self, listener: Listener, connections_max: usize) -> ListenerConfig {
        let (name, body_read_timeout_ms, pages) = match listener {
            Listener::Http => ("http", self.body_read_timeout_ms, true),
            // A snapshot chunk may take as long as its sender allows.
            Listener::Raft => (
                "raft",
                (self.body_read_timeout_ms).max(self.install_snapshot_timeout_ms),
                false,
            ),
        };
        ListenerConfig {
            name,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            body_read_timeout: Duration::from_millis(body_read_timeout_ms),
            connections_max,
            request_head_bytes_max: self.request_head_bytes_max,
            uri_bytes_max: self.uri_bytes_max,
            pages,
        }
    }

    /// Returns the RabbitMQ intake's consumer configuration (the broker URL empty without one).
    fn intake_config(&self) -> tix_amqp::ConsumerConfig {
        tix_amqp::ConsumerConfig {
            amqp_url: self.amqp_url.clone().unwrap_or_default(),
            queue: self.amqp_queue.clone(),
            prefetch: self.amqp_prefetch,
            connection_name: format!("tix-node-{}", self.node_id),
            ..tix_amqp::ConsumerConfig::default()
        }
    }

    /// Returns how mail is sent, or `None` with `--no-mail`.
    fn mail_config(&self) -> Option<tix_mail::MailConfig> {
        if !self.mail {
            return None;
        }
        let transport = match &self.smtp_url {
            Some(url) => tix_mail::Transport::Smtp(url.clone()),
            None => tix_mail::Transport::Outbox(
                (self.outbox_dir.clone()).unwrap_or_else(|| self.data_dir.join("outbox")),
            ),
        };
        Some(tix_mail::MailConfig {
            from: self.mail_from.clone(),
            transport,
            smtp_timeout: Duration::from_millis(defaults::SMTP_TIMEOUT_MS),
        })
    }

    /// Returns the HTTP edge's configuration; links in mail point at the `--public-origin`, else
    /// at `api_addr`, this node's advertised address.
    fn http_config(&self, metrics_token: Option<MetricsToken>, api_addr: &str) -> HttpConfig {
        let mail = self
            .mail_config()
            .map(|mailer| tix_http::notify::MailSettings {
                mailer,
                link_origin: (self.public_origin.clone())
                    .unwrap_or_else(|| format!("http://{api_addr}")),
                reset_ttl_ms: tix_http::notify::RESET_TTL_MS,
            });
        HttpConfig {
            mail,
            request_body_bytes_max: self.request_body_bytes_max,
            request_timeout_ms: self.request_timeout_ms,
            hold_ttl_ms: self.hold_ttl_ms,
            trusted_proxies: self.trusted_proxies.clone(),
            cookie_secure: self.cookie_secure,
            public_origin: self.public_origin.clone(),
            requests_in_flight_max: self.requests_in_flight_max,
            sse_subscribers_max: self.sse_subscribers_max,
            sse_subscribers_per_client_max: self.sse_subscribers_per_client_max,
            sse_send_timeout_ms: self.sse_send_timeout_ms,
            sse_update_interval_ms: self.sse_update_interval_ms,
            metrics_token,
            ..HttpConfig::default()
        }
    }
}

/// Returns whether `origin` is a scheme and a host (with an optional port), nothing more.
fn is_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    rest.is_some_and(|host| !host.is_empty() && !host.trim_end_matches('/').contains('/'))
}

/// Names a listener's bad setting by the `tix serve` flag it came from.
fn listener_error(listener: Listener, error: ListenerConfigError) -> ConfigError {
    let flag = match (error.setting, listener) {
        (ListenerSetting::HeaderReadTimeout, _) => "--header-read-timeout-ms",
        (ListenerSetting::IdleTimeout, _) => "--idle-timeout-ms",
        // The Raft listener's is the larger of this and --install-snapshot-timeout-ms.
        (ListenerSetting::BodyReadTimeout, _) => "--body-read-timeout-ms",
        (ListenerSetting::ConnectionsMax, Listener::Http) => "--connections-max",
        (ListenerSetting::ConnectionsMax, Listener::Raft) => "--raft-connections-max",
        (ListenerSetting::RequestHeadBytesMax, _) => "--request-head-bytes-max",
        (ListenerSetting::UriBytesMax, _) => "--uri-bytes-max",
    };
    ConfigError::Invalid {
        flag,
        problem: format!("is out of bounds: {error}"),
    }
}

/// The address a listener is known by: the configured text (it may be a host name other nodes
/// resolve), unless it asked for any free port, which only the bound address names.
fn advertised(configured: &str, bound: SocketAddr) -> String {
    match configured.rsplit_once(':') {
        Some((_, "0")) => bound.to_string(),
        _ => configured.to_owned(),
    }
}

/// Binds a listener, naming it and the address when that fails.
async fn bind(listener: &'static str, addr: &str) -> Result<(TcpListener, SocketAddr), AppError> {
    let bind_error = |source| AppError::Bind {
        listener,
        addr: addr.to_owned(),
        source,
    };
    let socket = listen(addr).await.map_err(bind_error)?;
    let bound = socket.local_addr().map_err(bind_error)?;
    Ok((socket, bound))
}

/// The listen backlog asked for: room for an on-sale's burst of new connections (the kernel
/// clamps it to `net.core.somaxconn`). With the default of 1,024 a burst overflowed the accept
/// queue and the dropped handshakes came back a second later (the SYN retransmission timeout).
pub const LISTEN_BACKLOG: u32 = 8_192;

/// Binds `addr` (a host name or an address, with a port) and listens with [`LISTEN_BACKLOG`].
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

/// Raises the open-files limit and clamps the connection caps to it, printing what is in force.
fn connection_caps(config: &Config) -> Result<ConnectionCaps, LimitError> {
    let open_files_max = listener::raise_open_files_limit()?;
    let caps = listener::clamp_connections(
        open_files_max,
        config.connections_max,
        config.raft_connections_max,
    )?;
    println!(
        "connections: at most {} on HTTP, {} on Raft RPC (open-files limit {})",
        caps.http_connections_max, caps.raft_connections_max, caps.open_files_max
    );
    Ok(caps)
}

/// Installs the process's Prometheus recorder and returns the handle that renders `/metrics`;
/// `None` when one is installed already (a second node in one test process).
fn metrics_recorder() -> Option<PrometheusHandle> {
    PrometheusBuilder::new().install_recorder().ok()
}

/// Resolves when `stop` says so, or when its sender is gone (the [`App`] was dropped).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A started node: storage open, Raft running, the Raft listener serving, the public listener
/// bound; [`App::run_until`] serves it. Dropping an `App` without running it closes both
/// listeners.
pub struct App {
    config: Config,
    node: Node,
    state: AppState,
    caps: ConnectionCaps,
    http_listener: TcpListener,
    http_addr: SocketAddr,
    raft_addr: SocketAddr,
    stop: watch::Sender<bool>,
    raft_server: JoinHandle<Result<(), ListenerConfigError>>,
}

impl App {
    /// Validates `config`, raises the open-files limit, binds both listeners, starts the node
    /// and serves its Raft listener. A bootstrapping node then waits for its leader and, if it
    /// is the leader, creates the admin account and the demo data before returning, so the
    /// admin login works as soon as the node answers. (A node joining a cluster must answer
    /// health checks while it waits to be added: it seeds in the background once served.)
    pub async fn build(config: Config) -> Result<App, AppError> {
        config.validate()?;
        let caps = connection_caps(&config)?;
        let metrics = metrics_recorder();
        let metrics_token = (config.metrics_token_file.as_deref())
            .map(MetricsToken::from_file)
            .transpose()?;
        // Made before the listeners are bound: it stamps when this incarnation began.
        let mut node_config = config.node_config();
        let (raft_listener, raft_addr) = bind("Raft RPC", &config.raft_addr).await?;
        let (http_listener, http_addr) = bind("HTTP", &config.http_addr).await?;
        node_config.api_addr = advertised(&config.http_addr, http_addr);
        let api_addr = node_config.api_addr.clone();
        if config.raft_advertise_addr.is_none() {
            node_config.raft_addr = advertised(&config.raft_addr, raft_addr);
        }
        let node = Node::start(node_config).await?;

        let (stop, _) = watch::channel(false);
        let raft_server = tokio::spawn(listener::serve(
            raft_listener,
            tix_raft::network::internal_router(&node),
            config.listener_config(Listener::Raft, caps.raft_connections_max),
            stopped(stop.subscribe()),
        ));
        let state = AppState::new(
            node.clone(),
            config.http_config(metrics_token, &api_addr),
            Arc::new(TestPayments::default()),
            metrics,
        );
        if config.bootstrap && node.wait_for_leader(LEADER_WAIT).await? == node.id {
            seed(&state, &config).await?;
        }
        Ok(App {
            config,
            node,
            state,
            caps,
            http_listener,
            http_addr,
            raft_addr,
            stop,
            raft_server,
        })
    }

    /// Returns the address the public listener is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Returns the address the Raft listener is bound to.
    pub fn raft_addr(&self) -> SocketAddr {
        self.raft_addr
    }

    /// Returns the running node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Serves the public listener until `shutdown` resolves; then stops accepting on both
    /// listeners, lets the requests in progress finish within the drain timeout, and stops
    /// Raft. A node that joins a cluster (no bootstrap) seeds in the background meanwhile,
    /// once a leader exists, if the leader is this node.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let App {
            config,
            node,
            state,
            caps,
            http_listener,
            http_addr,
            raft_addr,
            stop,
            raft_server,
        } = self;
        let seeding = (!config.bootstrap).then(|| {
            let (state, config, node) = (state.clone(), config.clone(), node.clone());
            tokio::spawn(async move {
                match node.wait_for_leader(LEADER_WAIT).await {
                    Ok(leader) if leader == node.id => {
                        if let Err(e) = seed(&state, &config).await {
                            tracing::error!(error = %e, "first-start setup failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "no leader yet; skipping first-start setup")
                    }
                }
            })
        });
        // The intake starts once the node serves; it only proposes, like a request would.
        let intakes: Vec<Intake> = match &config.amqp_url {
            Some(_) => (0..config.amqp_consumers)
                .map(|_| {
                    Intake::start(
                        config.intake_config(),
                        state.clone(),
                        config.amqp_seller.clone(),
                        defaults::AMQP_RETRY_MS,
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let router = tix_http::router(state);
        println!(
            "tix node {} serving http://{http_addr} (Raft RPC on {raft_addr})",
            node.id
        );
        let http_server = tokio::spawn(listener::serve(
            http_listener,
            router,
            config.listener_config(Listener::Http, caps.http_connections_max),
            stopped(stop.subscribe()),
        ));

        shutdown.await;
        if let Some(seeding) = seeding {
            seeding.abort();
        }
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stop.send(true);
        // Batches in flight finish (committed, replied, acknowledged) while Raft still runs.
        futures::future::join_all(intakes.into_iter().map(Intake::stop)).await;
        let drain = Duration::from_millis(config.drain_timeout_ms);
        if tokio::time::timeout(drain, http_server).await.is_err() {
            tracing::warn!(?drain, "requests still running after the drain timeout");
        }
        node.shutdown().await;
        let _ = tokio::time::timeout(RAFT_LISTENER_CLOSE_WAIT, raft_server).await;
        tracing::info!("stopped");
    }
}

/// Creates the admin account and the demo data on first start, printing the admin login.
async fn seed(state: &AppState, config: &Config) -> Result<(), AppError> {
    let generated = tix_http::seed::ensure_admin(state, config.admin_password.clone())
        .await
        .map_err(|error| AppError::Seed {
            step: "creating the admin account",
            error,
        })?;
    match generated {
        Some(password) => println!(
            "created the admin account: username `admin`, password `{password}` (shown once; set TIX_ADMIN_PASSWORD to choose it)"
        ),
        None if config.admin_password.is_some() => {
            println!("admin account: username `admin`, password from TIX_ADMIN_PASSWORD")
        }
        None => {}
    }
    if config.demo_data {
        let now_ms = tix_raft::proposer::now_ms();
        let created = tix_http::seed::ensure_demo_data(state, now_ms)
            .await
            .map_err(|error| AppError::Seed {
                step: "creating demo data",
                error,
            })?;
        if created > 0 {
            println!("created {created} demo events");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks that the defaults pass validation, and that each kind of bad setting is named by
    // its flag: an edge limit, a listener limit (per listener), a Raft timing.
    #[test]
    fn validation_names_the_bad_setting_by_its_flag() {
        Config::default().validate().unwrap();
        let error = |change: fn(&mut Config)| {
            let mut config = Config::default();
            change(&mut config);
            config.validate().unwrap_err().to_string()
        };
        assert_eq!(
            error(|c| c.hold_ttl_ms = 999),
            "--hold-ttl-ms must be at least 1000"
        );
        let e = error(|c| c.header_read_timeout_ms = 99);
        assert!(
            e.starts_with("--header-read-timeout-ms is out of bounds"),
            "{e}"
        );
        let e = error(|c| c.raft_connections_max = 0);
        assert!(
            e.starts_with("--raft-connections-max is out of bounds"),
            "{e}"
        );
        let e = error(|c| c.connections_max = 0);
        assert!(e.starts_with("--connections-max is out of bounds"), "{e}");
        let e = error(|c| c.election_timeout_max_ms = c.election_timeout_min_ms);
        assert!(e.contains("--election-timeout-max-ms"), "{e}");
        let e = error(|c| c.public_origin = Some("https://shop.example/path".into()));
        assert!(e.starts_with("--public-origin must be"), "{e}");
        assert_eq!(
            error(|c| c.batches_in_flight_max = 0),
            "--batches-in-flight-max must be 1 to 64"
        );
        assert_eq!(
            error(|c| c.batch_commands_max = 0),
            "--batch-commands-max must be 1 to 65,536"
        );
        let e = error(|c| c.batch_linger_us = 100_001);
        assert!(
            e.starts_with("--batch-linger-us must be at most 100000"),
            "{e}"
        );
    }

    // Checks the RabbitMQ intake's limits from both sides, each named by its flag.
    #[test]
    fn intake_limits_are_named_by_their_flags() {
        let check = |change: fn(&mut Config)| {
            let mut config = Config::default();
            change(&mut config);
            config.validate().map_err(|e| e.to_string())
        };
        assert!(check(|c| c.amqp_consumers = AMQP_CONSUMERS_MAX).is_ok());
        let e = check(|c| c.amqp_consumers = AMQP_CONSUMERS_MAX + 1).unwrap_err();
        assert!(e.starts_with("--amqp-consumers"), "{e}");
        let e = check(|c| c.amqp_consumers = 0).unwrap_err();
        assert!(e.starts_with("--amqp-consumers"), "{e}");
        assert!(check(|c| c.amqp_prefetch = 1).is_ok());
        let e = check(|c| c.amqp_prefetch = 0).unwrap_err();
        assert!(e.contains("--amqp-prefetch"), "{e}");
        let e = check(|c| c.amqp_queue.clear()).unwrap_err();
        assert!(e.contains("--amqp-queue"), "{e}");
        let e = check(|c| c.amqp_seller.clear()).unwrap_err();
        assert!(e.starts_with("--amqp-seller"), "{e}");
    }

    // Checks the hold limits from both sides.
    // Mail settings are checked at startup, named by their flags; without --smtp-url the outbox
    // is DATA_DIR/outbox, and --no-mail sends nothing.
    #[test]
    fn mail_settings_are_checked_and_default_to_the_outbox() {
        let check = |change: fn(&mut Config)| {
            let mut config = Config::default();
            change(&mut config);
            config.validate().map_err(|e| e.to_string())
        };
        assert!(check(|c| c.smtp_url = Some("smtp://127.0.0.1:2525".into())).is_ok());
        let e = check(|c| c.smtp_url = Some("smtps://mail.example".into())).unwrap_err();
        assert!(e.contains("--smtp-url"), "{e}");
        let e = check(|c| c.mail_from = "not an address".into()).unwrap_err();
        assert!(e.contains("--mail-from"), "{e}");
        assert!(
            check(|c| {
                c.mail = false;
                c.mail_from = "not an address".into();
            })
            .is_ok()
        );
        let config = Config::default();
        let outbox = tix_mail::Transport::Outbox(config.data_dir.join("outbox"));
        assert_eq!(config.mail_config().map(|m| m.transport), Some(outbox));
        let off = Config {
            mail: false,
            ..Config::default()
        };
        assert!(off.mail_config().is_none());
    }

    #[test]
    fn hold_ttl_is_checked_at_both_ends() {
        for (hold_ttl_ms, ok) in [
            (HOLD_TTL_MS_MIN - 1, false),
            (HOLD_TTL_MS_MIN, true),
            (HOLD_TTL_MS_MAX, true),
            (HOLD_TTL_MS_MAX + 1, false),
        ] {
            let config = Config {
                hold_ttl_ms,
                ..Config::default()
            };
            assert_eq!(config.validate().is_ok(), ok, "{hold_ttl_ms}");
        }
    }

    // Checks that only a port-0 address is replaced by the bound one.
    #[test]
    fn only_port_zero_is_advertised_as_bound() {
        let bound: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        assert_eq!(advertised("127.0.0.1:0", bound), "127.0.0.1:40123");
        assert_eq!(
            advertised("node1.internal:8080", bound),
            "node1.internal:8080"
        );
    }
}
