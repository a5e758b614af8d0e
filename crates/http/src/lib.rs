//! The HTTP edge of tix: the JSON API under `/api/v1`, health and metrics, and the OpenAPI
//! document. [`router`] builds the whole application so tests can drive it without a socket.
//!
//! Handlers validate input into domain commands, propose them through the node's batching
//! proposer (anything that sells goes through the Raft log), and map outcomes to responses in
//! [`error`]. Every read states its consistency: availability and sales reads are linearizable
//! (read index on the leader); listings and pages read the local applied state.

pub mod auth;
pub mod cluster;
pub mod error;
pub mod events;
pub mod extract;
pub mod headers;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod payments;
pub mod sales;
pub mod seed;
pub mod shop;
pub mod text;
pub mod ticket_code;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tix_raft::Node;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use payments::{PaymentProvider, TestPayments};

/// Limits and timings of the HTTP edge.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The largest request body accepted.
    pub request_body_bytes_max: usize,
    /// How long one request may take before it is answered 503.
    pub request_timeout_ms: u64,
    /// How long a login session lasts.
    pub session_ttl_ms: u64,
    /// How long a shop hold lasts before it expires.
    pub hold_ttl_ms: u64,
    /// Failed logins allowed per username within `login_window_ms`.
    pub login_failures_max: u32,
    /// The window for counting failed logins.
    pub login_window_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_body_bytes_max: 64 * 1024,
            request_timeout_ms: 10_000,
            session_ttl_ms: 24 * 60 * 60 * 1000,
            hold_ttl_ms: 10 * 60 * 1000,
            login_failures_max: 10,
            login_window_ms: 60_000,
        }
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

/// The contents of [`AppState`].
pub struct AppInner {
    /// The Raft node: propose commands, read applied state.
    pub node: Node,
    /// Limits and timings.
    pub config: HttpConfig,
    /// Takes and refunds payments.
    pub payments: Arc<dyn PaymentProvider>,
    /// Counts failed logins per username.
    pub login_limiter: auth::LoginLimiter,
    /// Renders `/metrics`, when a Prometheus recorder is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Bundles the node, the config and the payment provider.
    pub fn new(
        node: Node,
        config: HttpConfig,
        payments: Arc<dyn PaymentProvider>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> AppState {
        let login_limiter =
            auth::LoginLimiter::new(config.login_failures_max, config.login_window_ms);
        AppState(Arc::new(AppInner {
            node,
            config,
            payments,
            login_limiter,
            metrics,
        }))
    }
}

impl AppState {
    /// Reads the local applied state with `f`. When `f` finds nothing — on a follower, the thing
    /// may have been created a moment ago through another node — waits for a linearizable read
    /// (the leader's read index) and tries once more, so a miss is never just staleness.
    pub async fn read_fresh<T>(&self, f: impl Fn(&tix_core::State) -> Option<T>) -> Option<T> {
        let local = f(&self.node.shared.read());
        if local.is_some() {
            return local;
        }
        self.node.ensure_linearizable().await.ok()?;
        f(&self.node.shared.read())
    }

    /// Like [`AppState::read_fresh`], for history (tickets, orders) read from the store.
    pub async fn read_fresh_history<T>(
        &self,
        f: impl Fn(&tix_raft::HistoryReader) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        let local = f(&self.node.shared.history()?);
        if local.is_some() {
            return Ok(local);
        }
        if self.node.ensure_linearizable().await.is_err() {
            return Ok(None);
        }
        Ok(f(&self.node.shared.history()?))
    }
}

/// Builds the whole application: API, health, metrics and API docs.
pub fn router(state: AppState) -> Router {
    let body_max = state.config.request_body_bytes_max;
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    let api = Router::new()
        .merge(auth::routes())
        .merge(cluster::routes())
        .merge(events::routes())
        .merge(sales::routes())
        .merge(shop::routes());
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::routes())
        .merge(pages::routes())
        .fallback(pages::fallback)
        .layer(DefaultBodyLimit::max(body_max))
        .layer(axum::middleware::from_fn(ops::track_requests))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            ops::panic_response,
        ))
        .layer(axum::middleware::from_fn(ops::problem_for_bare_errors))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}
