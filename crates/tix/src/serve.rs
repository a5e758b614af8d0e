//! `tix serve`: starts a node, its Raft RPC listener and its public HTTP listener, seeds the
//! admin account and demo data on first start, and shuts down gracefully on SIGINT/SIGTERM
//! (stop accepting, let in-flight requests finish within the drain timeout, then stop Raft).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tix_http::listener::{self, ListenerConfig};
use tix_http::{AppState, HttpConfig, TestPayments};
use tix_raft::Node;
use tix_raft::node::NodeConfig;
use tix_raft::proposer::ProposerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::ServeArgs;

/// How long to wait for the first leader at startup.
const LEADER_WAIT: Duration = Duration::from_secs(60);

/// Checks the settings that are the edge's own (the node checks its timings itself, in
/// `NodeConfig::validate`).
fn validate(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.hold_ttl_ms >= 1000,
        "--hold-ttl-ms must be at least 1000"
    );
    anyhow::ensure!(
        args.hold_ttl_ms <= 30 * 60 * 1000,
        "--hold-ttl-ms must be at most 30 minutes"
    );
    if let Some(origin) = &args.public_origin {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        anyhow::ensure!(
            rest.is_some_and(|host| !host.is_empty() && !host.trim_end_matches('/').contains('/')),
            "--public-origin must be a scheme and host, like https://tickets.example"
        );
    }
    anyhow::ensure!(
        args.body_read_timeout_ms < args.request_timeout_ms,
        "--body-read-timeout-ms must be below --request-timeout-ms (a slow body is answered 408 \
         before the request times out)"
    );
    listener_config(args, "http", args.connections_max, true).check()?;
    listener_config(args, "raft", args.raft_connections_max, false).check()?;
    Ok(())
}

/// The limits of one listener from the flags.
fn listener_config(
    args: &ServeArgs,
    name: &'static str,
    connections_max: usize,
    pages: bool,
) -> ListenerConfig {
    // A snapshot chunk may take as long as its sender allows.
    let body_read_timeout_ms = match name {
        "raft" => args
            .body_read_timeout_ms
            .max(args.install_snapshot_timeout_ms),
        _ => args.body_read_timeout_ms,
    };
    ListenerConfig {
        name,
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(args.idle_timeout_ms),
        body_read_timeout: Duration::from_millis(body_read_timeout_ms),
        connections_max,
        request_head_bytes_max: args.request_head_bytes_max,
        uri_bytes_max: args.uri_bytes_max,
        pages,
    }
}

/// Raises the open-files limit and clamps the connection caps to it, printing what is in force.
fn connection_caps(args: &ServeArgs) -> anyhow::Result<listener::ConnectionCaps> {
    let open_files_max = listener::raise_open_files_limit()?;
    let caps = listener::clamp_connections(
        open_files_max,
        args.connections_max,
        args.raft_connections_max,
    )?;
    println!(
        "connections: at most {} on HTTP, {} on Raft RPC (open-files limit {})",
        caps.http_connections_max, caps.raft_connections_max, caps.open_files_max
    );
    Ok(caps)
}

/// Resolves when SIGINT or SIGTERM arrives.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs a node until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    validate(&args)?;
    let caps = connection_caps(&args)?;
    let metrics = crate::telemetry::metrics().ok();
    let mut config = NodeConfig::new(
        args.node_id,
        args.data_dir.clone(),
        args.http_addr.clone(),
        args.raft_advertise_addr
            .clone()
            .unwrap_or_else(|| args.raft_addr.clone()),
    );
    config.source_ip = args.raft_source_ip;
    config.faults.fail_apply_file = args.test_fail_apply_file.clone();
    config.bootstrap = !args.no_bootstrap;
    config.heartbeat_interval_ms = args.heartbeat_interval_ms;
    config.election_timeout_min_ms = args.election_timeout_min_ms;
    config.election_timeout_max_ms = args.election_timeout_max_ms;
    config.snapshot_logs_since_last = args.snapshot_logs_since_last;
    config.logs_kept_after_snapshot = args.logs_kept_after_snapshot;
    config.install_snapshot_timeout_ms = args.install_snapshot_timeout_ms;
    config.cluster_secret_file = args.cluster_secret_file.clone();
    config.proposer = ProposerConfig {
        batch_commands_max: args.batch_commands_max,
        in_flight_max: args.batches_in_flight_max,
        ..ProposerConfig::default()
    };

    config.validate()?;
    let raft_listener = TcpListener::bind(&args.raft_addr)
        .await
        .with_context(|| format!("cannot listen for Raft RPC on {}", args.raft_addr))?;
    let http_listener = TcpListener::bind(&args.http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", args.http_addr))?;
    let node = Node::start(config).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let raft_app = tix_raft::network::internal_router(&node);
    let mut raft_stop = stop_rx.clone();
    let raft_limits = listener_config(&args, "raft", caps.raft_connections_max, false);
    let raft_server = tokio::spawn(listener::serve(
        raft_listener,
        raft_app,
        raft_limits,
        async move {
            let _ = raft_stop.wait_for(|s| *s).await;
        },
    ));

    let http_config = HttpConfig {
        request_body_bytes_max: args.request_body_bytes_max,
        request_timeout_ms: args.request_timeout_ms,
        hold_ttl_ms: args.hold_ttl_ms,
        trusted_proxies: args.trusted_proxies.clone(),
        cookie_secure: args.cookie_secure,
        public_origin: args.public_origin.clone(),
        sse_subscribers_max: args.sse_subscribers_max,
        sse_subscribers_per_client_max: args.sse_subscribers_per_client_max,
        sse_send_timeout_ms: args.sse_send_timeout_ms,
        sse_update_interval_ms: args.sse_update_interval_ms,
        metrics_token: (args.metrics_token_file.as_deref())
            .map(tix_http::ops::MetricsToken::from_file)
            .transpose()?,
        ..HttpConfig::default()
    };
    let state = AppState::new(
        node.clone(),
        http_config,
        Arc::new(TestPayments::default()),
        metrics,
    );

    // A bootstrapping node seeds before it serves, so the admin login works as soon as it
    // answers. A node of a multi-node cluster serves at once (it must answer health checks while
    // it waits to be initialized or added) and seeds in the background once a leader exists,
    // if the leader is this node.
    if !args.no_bootstrap && node.wait_for_leader(LEADER_WAIT).await? == node.id {
        seed(&state, &args).await?;
    }
    let seeding = args.no_bootstrap.then(|| {
        let (state, args, node) = (state.clone(), args.clone(), node.clone());
        tokio::spawn(async move {
            match node.wait_for_leader(LEADER_WAIT).await {
                Ok(leader) if leader == node.id => {
                    if let Err(e) = seed(&state, &args).await {
                        tracing::error!(error = %e, "first-start setup failed");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "no leader yet; skipping first-start setup"),
            }
        })
    });

    let app = tix_http::router(state);
    println!(
        "tix node {} serving http://{} (Raft RPC on {})",
        node.id, args.http_addr, args.raft_addr
    );
    let mut http_stop = stop_rx.clone();
    let http_limits = listener_config(&args, "http", caps.http_connections_max, true);
    let http_server = tokio::spawn(listener::serve(
        http_listener,
        app,
        http_limits,
        async move {
            let _ = http_stop.wait_for(|s| *s).await;
        },
    ));

    shutdown_signal().await;
    if let Some(seeding) = seeding {
        seeding.abort();
    }
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    let drain = Duration::from_millis(args.drain_timeout_ms);
    if tokio::time::timeout(drain, http_server).await.is_err() {
        tracing::warn!(?drain, "requests still running after the drain timeout");
    }
    node.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), raft_server).await;
    tracing::info!("stopped");
    Ok(())
}

/// Creates the admin account and the demo data on first start, printing the admin login.
async fn seed(state: &AppState, args: &ServeArgs) -> anyhow::Result<()> {
    let generated = tix_http::seed::ensure_admin(state, args.admin_password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("creating the admin account: {e}"))?;
    match generated {
        Some(password) => println!(
            "created the admin account: username `admin`, password `{password}` (shown once; set TIX_ADMIN_PASSWORD to choose it)"
        ),
        None if args.admin_password.is_some() => {
            println!("admin account: username `admin`, password from TIX_ADMIN_PASSWORD")
        }
        None => {}
    }
    if !args.no_demo {
        let now_ms = tix_raft::proposer::now_ms();
        let created = tix_http::seed::ensure_demo_data(state, now_ms)
            .await
            .map_err(|e| anyhow::anyhow!("creating demo data: {e}"))?;
        if created > 0 {
            println!("created {created} demo events");
        }
    }
    Ok(())
}
