//! The command line: `tix` (same as `tix serve`) runs a node (with `--amqp-url`, also its
//! RabbitMQ intake); `tix worker` relays purchases from RabbitMQ; `tix cluster` administers;
//! `tix bench`, `tix chaos` and `tix failover` measure and check; `tix assistant` scores the
//! booking assistant.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tix::app::{Config, defaults};

/// tix: a Raft-replicated box office that never oversells.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

// Parsed once at startup: the size of the serve flags' variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a node: the shop and API on --http-addr, Raft RPC on --raft-addr (the default).
    Serve(ServeArgs),
    /// Measures purchases per second through the HTTP API with concurrent keep-alive clients.
    BenchHttp(tix_bench::quick::QuickArgs),
    /// Replays a flash-sale workload file (direct: REST via nginx; indirect: RabbitMQ, consumed
    /// by the nodes or by workers) and verifies the result; `tix bench sweep` runs, plots and
    /// reports the whole comparison.
    Bench(BenchCommand),
    /// Consumes purchase requests from RabbitMQ and commits them to the cluster in batches.
    Worker(crate::worker::WorkerArgs),
    /// Prints an nginx configuration that balances over the given tix nodes.
    NginxConfig(NginxConfigArgs),
    /// Answers every HTTP request at once with a fixed 201 (the direct ceiling's stand-in).
    #[command(hide = true)]
    BenchNoop {
        /// Where to listen.
        #[arg(long)]
        http_addr: String,
    },
    /// Jepsen-style run: a local cluster under faults, then checks the history against the state.
    Chaos(tix_bench::chaos::ChaosArgs),
    /// Measures failover time after kill -9 of the leader, and elections under sustained load.
    Failover(tix_bench::failover::FailoverArgs),
    /// Simulates an on-sale: a local cluster with a waiting room, many visitors arriving on a
    /// spike, a leader kill mid-sale; checks sales, fairness and what visitors saw.
    Onsale(tix_bench::onsale::OnsaleArgs),
    /// Cluster administration: init, add-node, remove-node, status, and a local supervisor (up).
    #[command(subcommand)]
    Cluster(crate::cluster::ClusterCommand),
    /// The booking assistant offline: score it on the labelled set (eval), or try a message.
    #[command(subcommand)]
    Assistant(crate::assistant::AssistantCommand),
}

/// `tix bench [--workload F ...]` or `tix bench sweep ...`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCommand {
    #[command(subcommand)]
    sub: Option<BenchSub>,
    #[command(flatten)]
    run: tix_bench::run::BenchArgs,
}

#[derive(Debug, Subcommand)]
enum BenchSub {
    /// Every workload file, both architectures, 1..N workers, ceilings, results, plots, report.
    Sweep(tix_bench::sweep::SweepArgs),
    /// Offers several times what a node takes and measures goodput, latency and refusals
    /// (load shedding), with and without the in-flight cap.
    Overload(tix_bench::overload::OverloadArgs),
    /// Writes a workload file from a model, a size and a seed (regenerates `benchmarks/`).
    Gen(tix_bench::generate::GenArgs),
}

/// Options of `tix nginx-config`.
#[derive(Debug, Args)]
pub struct NginxConfigArgs {
    /// Where nginx listens.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: std::net::SocketAddr,
    /// A tix node's HTTP address (`host:port`); repeat for each node.
    #[arg(long = "upstream", required = true)]
    upstreams: Vec<String>,
    /// nginx worker processes.
    #[arg(long, default_value_t = 1)]
    worker_processes: usize,
    /// Write an access log.
    #[arg(long)]
    access_log: bool,
    /// Requests nginx lets through to the nodes at once before it answers `503` +
    /// `Retry-After` itself (default: the nodes' default in-flight caps summed; 0: no cap at
    /// nginx, the nodes shed alone). Set it to the sum of the nodes' `--requests-in-flight-max`.
    #[arg(long)]
    in_flight_max: Option<usize>,
}

/// How to run a node.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// This node's id (unique in the cluster, never reused for a wiped node).
    #[arg(long, env = "TIX_NODE_ID", default_value_t = defaults::NODE_ID)]
    pub node_id: u64,
    /// Public HTTP address (API and pages).
    #[arg(long, env = "TIX_HTTP_ADDR", default_value = defaults::HTTP_ADDR)]
    pub http_addr: String,
    /// Internal Raft RPC address.
    #[arg(long, env = "TIX_RAFT_ADDR", default_value = defaults::RAFT_ADDR)]
    pub raft_addr: String,
    /// The Raft address other nodes should use, if not --raft-addr (e.g. behind a proxy).
    #[arg(long, env = "TIX_RAFT_ADVERTISE_ADDR")]
    pub raft_advertise_addr: Option<String>,
    /// Send Raft and cluster calls from this local IP address (fault-injection tests).
    #[arg(long)]
    pub raft_source_ip: Option<std::net::IpAddr>,
    /// Test-only fault injection: while this file exists, apply panics as a broken invariant
    /// does, and the node fail-stops (exit code 70).
    #[arg(long, env = "TIX_TEST_FAIL_APPLY_FILE", hide = true)]
    pub test_fail_apply_file: Option<PathBuf>,
    /// Where the log and snapshots are stored.
    #[arg(long, env = "TIX_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,
    /// The cluster secret every member shares (64 hex digits, mode 0600; `tix cluster secret`
    /// writes one). Default: DATA_DIR/cluster.secret, created on first start if absent.
    #[arg(long, env = "TIX_CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Do not initialize a one-node cluster on first start (joining an existing cluster).
    #[arg(long)]
    pub no_bootstrap: bool,
    /// Do not create the demo organizer and events on first start.
    #[arg(long, env = "TIX_NO_DEMO")]
    pub no_demo: bool,
    /// Password for the `admin` account created on first start (generated and printed if unset).
    #[arg(long, env = "TIX_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Leader heartbeat period.
    #[arg(long, default_value_t = defaults::HEARTBEAT_INTERVAL_MS)]
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    #[arg(long, default_value_t = defaults::ELECTION_TIMEOUT_MIN_MS)]
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    #[arg(long, default_value_t = defaults::ELECTION_TIMEOUT_MAX_MS)]
    pub election_timeout_max_ms: u64,
    /// Time limit for sending one snapshot chunk to a follower.
    #[arg(long, default_value_t = defaults::INSTALL_SNAPSHOT_TIMEOUT_MS)]
    pub install_snapshot_timeout_ms: u64,
    /// Build a snapshot and compact the log after this many log entries.
    #[arg(long, default_value_t = defaults::SNAPSHOT_LOGS_SINCE_LAST)]
    pub snapshot_logs_since_last: u64,
    /// Log entries kept below the last snapshot, so a briefly absent follower catches up from
    /// the log rather than from a snapshot.
    #[arg(long, default_value_t = defaults::LOGS_KEPT_AFTER_SNAPSHOT)]
    pub logs_kept_after_snapshot: u64,
    /// The size in bytes after which the Raft log starts a new segment file (`log/` in the
    /// data directory); segments holding only compacted entries are deleted.
    #[arg(long, default_value_t = defaults::LOG_SEGMENT_BYTES)]
    pub log_segment_bytes: u64,
    /// The most commands batched into one log entry.
    #[arg(long, default_value_t = defaults::BATCH_COMMANDS_MAX)]
    pub batch_commands_max: usize,
    /// The most batches being committed at once (also read from the environment, so that
    /// `tix bench` A/B runs can set it for the nodes they start).
    #[arg(long, env = "TIX_BATCHES_IN_FLIGHT_MAX", default_value_t = defaults::BATCHES_IN_FLIGHT_MAX)]
    pub batches_in_flight_max: usize,
    /// How long a batch of commands may wait to grow to the previous batch's size before it is
    /// proposed, in microseconds (0: never wait). Only batches that follow a batch of several
    /// commands wait: a lone buyer is never kept waiting.
    #[arg(long, env = "TIX_BATCH_LINGER_US", default_value_t = defaults::BATCH_LINGER_US)]
    pub batch_linger_us: u64,
    /// The largest request body accepted.
    #[arg(long, default_value_t = defaults::REQUEST_BODY_BYTES_MAX)]
    pub request_body_bytes_max: usize,
    /// Time limit of one request.
    #[arg(long, default_value_t = defaults::REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// How long a request head may take (from the accept for a connection's first request, from
    /// its first byte for later ones); then the connection is closed.
    #[arg(long, default_value_t = defaults::HEADER_READ_TIMEOUT_MS)]
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection may wait for its next request.
    #[arg(long, default_value_t = defaults::IDLE_TIMEOUT_MS)]
    pub idle_timeout_ms: u64,
    /// How long a request body may take after its head; then the request is answered 408.
    #[arg(long, default_value_t = defaults::BODY_READ_TIMEOUT_MS)]
    pub body_read_timeout_ms: u64,
    /// The most connections open at once on the HTTP listener (at the cap the longest-idle one
    /// is closed for a new one); lowered to fit the open-files limit.
    #[arg(long, default_value_t = defaults::CONNECTIONS_MAX)]
    pub connections_max: usize,
    /// The most connections open at once on the Raft listener; lowered to fit the open-files
    /// limit.
    #[arg(long, default_value_t = defaults::RAFT_CONNECTIONS_MAX)]
    pub raft_connections_max: usize,
    /// The largest request head (request line and headers); a larger one is answered 431.
    #[arg(long, default_value_t = defaults::REQUEST_HEAD_BYTES_MAX)]
    pub request_head_bytes_max: usize,
    /// The longest request target (path and query); a longer one is answered 414.
    #[arg(long, default_value_t = defaults::URI_BYTES_MAX)]
    pub uri_bytes_max: usize,
    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = defaults::DRAIN_TIMEOUT_MS)]
    pub drain_timeout_ms: u64,
    /// How long a shop hold lasts.
    #[arg(long, default_value_t = defaults::HOLD_TTL_MS)]
    pub hold_ttl_ms: u64,
    /// A reverse proxy whose `X-Forwarded-For` (last hop) and `X-Forwarded-Proto` are believed
    /// (repeatable): the client address the login and sign-up limits count, and TLS.
    #[arg(long = "trusted-proxy", value_name = "IP")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Mark the session and CSRF cookies `Secure` (tix is served over TLS by a proxy).
    #[arg(long, env = "TIX_COOKIE_SECURE")]
    pub cookie_secure: bool,
    /// The origin browsers use (`https://tickets.example`) when a proxy rewrites `Host`; form
    /// posts and API writes from any other origin are refused.
    #[arg(long, env = "TIX_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,
    /// Requests this node works on at once (live streams, health checks, metrics and static
    /// files not counted); more are answered 503 with Retry-After before they are read.
    #[arg(long, default_value_t = defaults::REQUESTS_IN_FLIGHT_MAX)]
    pub requests_in_flight_max: usize,
    /// Live-availability streams (SSE) this node serves at once; more are refused with 503.
    #[arg(long, default_value_t = defaults::SSE_SUBSCRIBERS_MAX)]
    pub sse_subscribers_max: u32,
    /// Live streams one client may hold at once (a signed-in user, else an IP address or IPv6
    /// /64).
    #[arg(long, default_value_t = defaults::SSE_SUBSCRIBERS_PER_CLIENT_MAX)]
    pub sse_subscribers_per_client_max: u32,
    /// A live stream whose connection has not taken a change for this long is dropped.
    #[arg(long, default_value_t = defaults::SSE_SEND_TIMEOUT_MS)]
    pub sse_send_timeout_ms: u64,
    /// The shortest time between two live messages about one event.
    #[arg(long, default_value_t = defaults::SSE_UPDATE_INTERVAL_MS)]
    pub sse_update_interval_ms: u64,
    /// A file holding the bearer token that may read /metrics (at least 16 characters); admins
    /// may read it with their own token either way.
    #[arg(long, env = "TIX_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Run the RabbitMQ intake in this node: consume purchase requests from this broker and
    /// propose them to the log directly (instead of `tix worker` processes).
    #[arg(long, env = "TIX_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// The queue the intake consumes.
    #[arg(long, default_value = defaults::AMQP_QUEUE)]
    pub amqp_queue: String,
    /// Unacknowledged requests the broker may send ahead to each intake consumer.
    #[arg(long, env = "TIX_AMQP_PREFETCH", default_value_t = defaults::AMQP_PREFETCH)]
    pub amqp_prefetch: u16,
    /// Intake consumers (broker channels) on this node.
    #[arg(long, default_value_t = defaults::AMQP_CONSUMERS)]
    pub amqp_consumers: u32,
    /// The account the intake sells as (the events' organizer, or an admin for all events).
    #[arg(long, default_value = defaults::AMQP_SELLER)]
    pub amqp_seller: String,
    /// The SMTP server order confirmations, cancellation notices and password resets are sent
    /// to: `smtp://host[:port]` (unauthenticated, no TLS: a relay on this host or a private
    /// network). Without it, mail is written as `.eml` files to the outbox folder.
    #[arg(long, env = "TIX_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The folder mail is written to when no `--smtp-url` is given (default: DATA_DIR/outbox).
    #[arg(long, env = "TIX_OUTBOX_DIR")]
    pub outbox_dir: Option<PathBuf>,
    /// The sender of tix's mail (`From:`).
    #[arg(long, env = "TIX_MAIL_FROM", default_value = defaults::MAIL_FROM)]
    pub mail_from: String,
    /// Send no mail at all (no SMTP, no outbox).
    #[arg(long)]
    pub no_mail: bool,
}

impl From<ServeArgs> for Config {
    /// Every flag to its setting; destructured whole, so a new flag cannot be forgotten here.
    fn from(args: ServeArgs) -> Config {
        let ServeArgs {
            node_id,
            http_addr,
            raft_addr,
            raft_advertise_addr,
            raft_source_ip,
            test_fail_apply_file,
            data_dir,
            cluster_secret_file,
            no_bootstrap,
            no_demo,
            admin_password,
            heartbeat_interval_ms,
            election_timeout_min_ms,
            election_timeout_max_ms,
            install_snapshot_timeout_ms,
            snapshot_logs_since_last,
            logs_kept_after_snapshot,
            log_segment_bytes,
            batch_commands_max,
            batches_in_flight_max,
            batch_linger_us,
            request_body_bytes_max,
            request_timeout_ms,
            header_read_timeout_ms,
            idle_timeout_ms,
            body_read_timeout_ms,
            connections_max,
            raft_connections_max,
            request_head_bytes_max,
            uri_bytes_max,
            drain_timeout_ms,
            hold_ttl_ms,
            trusted_proxies,
            cookie_secure,
            public_origin,
            requests_in_flight_max,
            sse_subscribers_max,
            sse_subscribers_per_client_max,
            sse_send_timeout_ms,
            sse_update_interval_ms,
            metrics_token_file,
            amqp_url,
            amqp_queue,
            amqp_prefetch,
            amqp_consumers,
            amqp_seller,
            smtp_url,
            outbox_dir,
            mail_from,
            no_mail,
        } = args;
        Config {
            node_id,
            http_addr,
            raft_addr,
            raft_advertise_addr,
            raft_source_ip,
            test_fail_apply_file,
            data_dir,
            cluster_secret_file,
            bootstrap: !no_bootstrap,
            demo_data: !no_demo,
            admin_password,
            heartbeat_interval_ms,
            election_timeout_min_ms,
            election_timeout_max_ms,
            install_snapshot_timeout_ms,
            snapshot_logs_since_last,
            logs_kept_after_snapshot,
            log_segment_bytes,
            batch_commands_max,
            batches_in_flight_max,
            batch_linger_us,
            request_body_bytes_max,
            request_timeout_ms,
            header_read_timeout_ms,
            idle_timeout_ms,
            body_read_timeout_ms,
            connections_max,
            raft_connections_max,
            request_head_bytes_max,
            uri_bytes_max,
            drain_timeout_ms,
            hold_ttl_ms,
            trusted_proxies,
            cookie_secure,
            public_origin,
            requests_in_flight_max,
            sse_subscribers_max,
            sse_subscribers_per_client_max,
            sse_send_timeout_ms,
            sse_update_interval_ms,
            metrics_token_file,
            amqp_url,
            amqp_queue,
            amqp_prefetch,
            amqp_consumers,
            amqp_seller,
            smtp_url,
            outbox_dir,
            mail_from,
            mail: !no_mail,
        }
    }
}

/// Runs the chosen subcommand.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => crate::serve::run(cli.serve).await,
        Some(Command::Serve(args)) => crate::serve::run(args).await,
        Some(Command::BenchHttp(args)) => tix_bench::quick::run(args).await,
        Some(Command::Bench(BenchCommand { sub: None, run })) => tix_bench::run::run(run).await,
        Some(Command::Bench(BenchCommand {
            sub: Some(BenchSub::Sweep(args)),
            ..
        })) => tix_bench::sweep::run(args).await,
        Some(Command::Bench(BenchCommand {
            sub: Some(BenchSub::Overload(args)),
            ..
        })) => tix_bench::overload::run(args).await,
        Some(Command::Bench(BenchCommand {
            sub: Some(BenchSub::Gen(args)),
            ..
        })) => tix_bench::generate::run(args),
        Some(Command::Worker(args)) => crate::worker::run(args).await,
        Some(Command::BenchNoop { http_addr }) => tix_bench::noop::serve(&http_addr).await,
        Some(Command::NginxConfig(args)) => {
            let mut config = tix_bench::nginx::NginxConfig::new(args.listen, args.upstreams);
            config.worker_processes = args.worker_processes;
            config.access_log = args.access_log;
            if let Some(n) = args.in_flight_max {
                config.in_flight_max = (n > 0).then_some(n);
            }
            print!("{}", config.render());
            Ok(())
        }
        Some(Command::Chaos(args)) => tix_bench::chaos::run(args).await,
        Some(Command::Cluster(command)) => crate::cluster::run(command).await,
        Some(Command::Failover(args)) => tix_bench::failover::run(args).await,
        Some(Command::Onsale(args)) => tix_bench::onsale::run(args).await,
        Some(Command::Assistant(command)) => crate::assistant::run(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks that `tix serve` without flags gives `Config::default()`: the flags' defaults and
    // the library's cannot disagree. (An environment variable a flag reads would change it, so
    // the test says so and skips then.)
    #[test]
    fn serve_without_flags_is_the_default_config() {
        let command = <Cli as clap::CommandFactory>::command();
        let serve = command.find_subcommand("serve").expect("a serve command");
        let set: Vec<_> = (serve.get_arguments())
            .filter_map(|arg| arg.get_env())
            .filter(|name| std::env::var_os(name).is_some())
            .collect();
        if !set.is_empty() {
            eprintln!("SKIPPED: {set:?} set in the environment would change the flags");
            return;
        }
        let cli = Cli::try_parse_from(["tix", "serve"]).unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("not the serve command");
        };
        assert_eq!(Config::from(args), Config::default());
        let bare = Cli::try_parse_from(["tix"]).unwrap();
        assert_eq!(Config::from(bare.serve), Config::default());
    }
}
