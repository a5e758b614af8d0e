//! The HTTP edge of tix: the JSON API under `/api/v1`, health and metrics, and the OpenAPI
//! document. [`router`] builds the whole application so tests can drive it without a socket.
//!
//! Handlers validate input into domain commands, propose them through the node's batching
//! proposer (anything that sells goes through the Raft log), and map outcomes to responses in
//! [`error`]. Every read states its consistency: availability and sales reads are linearizable
//! (read index on the leader); listings and pages read the local applied state.

pub mod assistant;
pub mod auth;
pub mod cluster;
pub mod csrf;
pub mod currency;
pub mod defaults;
pub mod error;
pub mod events;
pub mod extract;
pub mod headers;
pub mod images;
pub mod listener;
pub mod live;
pub mod multipart;
pub mod notify;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod payments;
pub mod peer;
pub mod queue;
pub mod request_id;
pub mod sales;
pub mod seed;
pub mod shed;
pub mod shop;
pub mod text;
pub mod throttle;
pub mod ticket_code;
pub mod views;
pub mod zone;

use std::net::IpAddr;
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
    /// Failed logins from one client address before it must wait between attempts.
    pub login_address_failures_free: u32,
    /// Failed logins for one account (from all addresses) before the addresses that failed
    /// for it must wait; an address that has not failed for the account never waits for it.
    pub login_account_failures_free: u32,
    /// The first wait once the free failures are used; it doubles with every further failure.
    pub login_backoff_base_ms: u64,
    /// The longest wait between login attempts.
    pub login_backoff_max_ms: u64,
    /// Failure counts halve for every this long without a failure.
    pub login_failures_half_life_ms: u64,
    /// Sign-ups accepted from one client address per `signup_window_ms`.
    pub signups_per_address_max: u32,
    /// The window of `signups_per_address_max`.
    pub signup_window_ms: u64,
    /// The most addresses, accounts or pairs each throttle table tracks (oldest evicted).
    pub throttle_entries_max: usize,
    /// Proxies whose `X-Forwarded-For` (last hop) and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Mark cookies `Secure`: tix is served over TLS (a TLS proxy in front).
    pub cookie_secure: bool,
    /// The origin browsers see (`https://tickets.example`), when a proxy changes the `Host`;
    /// form posts and API writes from another origin are refused.
    pub public_origin: Option<String>,
    /// Requests this node works on at once; more are shed with 503 + `Retry-After`.
    pub requests_in_flight_max: usize,
    /// Live-availability streams (`/events/{id}/live`) this node serves at once.
    pub sse_subscribers_max: u32,
    /// Live streams one client may hold at once: a signed-in user, else a peer address (an
    /// IPv6 /64).
    pub sse_subscribers_per_client_max: u32,
    /// How long a change may wait for a live stream's connection to take it; a viewer that
    /// reads slower is dropped (its browser reconnects and starts from the full state).
    pub sse_send_timeout_ms: u64,
    /// The shortest time between two live messages about one event (changes in between are
    /// sent as one).
    pub sse_update_interval_ms: u64,
    /// The bearer token that may read `/metrics` (besides an admin), if one is configured.
    pub metrics_token: Option<ops::MetricsToken>,
    /// The booking assistant's conversation limits.
    pub assistant: assistant::AssistantLimits,
    /// How this node sends mail; `None`: it sends none.
    pub mail: Option<notify::MailSettings>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_body_bytes_max: defaults::REQUEST_BODY_BYTES_MAX,
            request_timeout_ms: defaults::REQUEST_TIMEOUT_MS,
            session_ttl_ms: 24 * 60 * 60 * 1000,
            hold_ttl_ms: defaults::HOLD_TTL_MS,
            login_address_failures_free: 10,
            login_account_failures_free: 20,
            login_backoff_base_ms: 1_000,
            login_backoff_max_ms: 5 * 60 * 1000,
            login_failures_half_life_ms: 10 * 60 * 1000,
            signups_per_address_max: 10,
            signup_window_ms: 10 * 60 * 1000,
            throttle_entries_max: 100_000,
            trusted_proxies: Vec::new(),
            cookie_secure: false,
            public_origin: None,
            requests_in_flight_max: defaults::REQUESTS_IN_FLIGHT_MAX,
            sse_subscribers_max: defaults::SSE_SUBSCRIBERS_MAX,
            sse_subscribers_per_client_max: defaults::SSE_SUBSCRIBERS_PER_CLIENT_MAX,
            sse_send_timeout_ms: defaults::SSE_SEND_TIMEOUT_MS,
            sse_update_interval_ms: defaults::SSE_UPDATE_INTERVAL_MS,
            metrics_token: None,
            assistant: assistant::AssistantLimits::default(),
            mail: None,
        }
    }
}

impl HttpConfig {
    /// Returns the login throttle's settings.
    pub fn login_policy(&self) -> throttle::LoginPolicy {
        let backoff = |failures_free| throttle::BackoffPolicy {
            failures_free,
            base: Duration::from_millis(self.login_backoff_base_ms),
            max: Duration::from_millis(self.login_backoff_max_ms),
            half_life: Duration::from_millis(self.login_failures_half_life_ms),
        };
        throttle::LoginPolicy {
            address: backoff(self.login_address_failures_free),
            account: backoff(self.login_account_failures_free),
            entries_max: self.throttle_entries_max,
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
    /// Counts failed logins per client address and account.
    pub login_throttle: throttle::LoginThrottle,
    /// Counts sign-ups per client address.
    pub signup_limiter: throttle::SignupLimiter,
    /// Renders `/metrics`, when a Prometheus recorder is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Live-stream subscribers: caps and the feeds of watched events.
    pub live: live::LiveHub,
    /// The booking assistant's conversations on this node.
    pub assistant: assistant::AssistantHub,
    /// The cap on requests in progress (load shedding).
    pub in_flight: shed::InFlight,
    /// The waiting rooms' front door: joins in line instead of shed.
    pub joins: shed::JoinGate,
    /// The mail queue (order confirmations, cancellation notices, password resets).
    pub notifier: notify::Notifier,
    /// Image uploads being proposed on this node (`images::UPLOADS_AT_ONCE_MAX`), so that one
    /// log entry carries few images.
    pub image_uploads: tokio::sync::Semaphore,
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
        let login_throttle = throttle::LoginThrottle::new(config.login_policy());
        let signup_limiter = throttle::SignupLimiter::new(
            config.signups_per_address_max,
            Duration::from_millis(config.signup_window_ms),
            config.throttle_entries_max,
        );
        let live = live::LiveHub::new(live::LiveLimits {
            subscribers_max: config.sse_subscribers_max,
            per_client_max: config.sse_subscribers_per_client_max,
            send_timeout: Duration::from_millis(config.sse_send_timeout_ms),
            update_interval: Duration::from_millis(config.sse_update_interval_ms),
        });
        let assistant = assistant::AssistantHub::new(config.assistant.clone());
        let in_flight = shed::InFlight::new(config.requests_in_flight_max);
        let joins = shed::JoinGate::new(config.requests_in_flight_max, defaults::JOINS_WAITING_MAX);
        let notifier = notify::Notifier::new(config.mail.as_ref(), config.throttle_entries_max);
        AppState(Arc::new(AppInner {
            image_uploads: tokio::sync::Semaphore::new(images::UPLOADS_AT_ONCE_MAX),
            notifier,
            assistant,
            in_flight,
            joins,
            node,
            config,
            payments,
            login_throttle,
            signup_limiter,
            metrics,
            live,
        }))
    }
}

impl AppState {
    /// Proposes `command` and returns the answer its kind gets ([`tix_core::Answer`]); an
    /// outcome of another kind is a bug, answered 500 (logged once, in `error.rs`).
    pub async fn propose_for<A: tix_core::Answer>(
        &self,
        command: tix_core::Command,
    ) -> Result<A, ApiError> {
        let outcome = self.node.propose(command).await?;
        A::from_outcome(outcome)
            .map_err(|other| ApiError::Internal(format!("unexpected outcome {other:?}")))
    }

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

/// The wall-clock time in milliseconds, where request ids of this run start.
fn started_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Builds the whole application: API, health, metrics and API docs.
pub fn router(state: AppState) -> Router {
    let body_max = state.config.request_body_bytes_max;
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    let request_id_header = axum::http::HeaderName::from_static(request_id::REQUEST_ID_HEADER);
    let request_ids = request_id::NodeRequestIds::new(state.node.id, started_ms());
    let api = Router::new()
        .merge(auth::routes())
        .merge(cluster::routes())
        .merge(events::routes())
        .merge(sales::routes())
        .merge(shop::routes())
        .merge(queue::routes())
        .merge(images::routes())
        .merge(assistant::routes());
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::routes())
        .merge(pages::routes())
        .fallback(pages::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::guard,
        ))
        .layer(DefaultBodyLimit::max(body_max))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::refuse_when_failed,
        ))
        .layer(axum::middleware::from_fn(ops::track_requests))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            shed::admit,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            ops::panic_response,
        ))
        .layer(axum::middleware::from_fn(ops::problem_for_bare_errors))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::middleware::from_fn(request_id::scope))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                // A 503 (shed, no leader) is an answer, not a fault, and under a flood one log
                // line per refusal would cost more than the refusal; faults are logged where they
                // happen (`error.rs`, the panic handler).
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG))
                .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                    let id = request
                        .extensions()
                        .get::<tower_http::request_id::RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::debug_span!(
                        "request",
                        id,
                        method = %request.method(),
                        path = request.uri().path(),
                    )
                }),
        )
        .layer(tower_http::request_id::PropagateRequestIdLayer::new(
            request_id_header.clone(),
        ))
        .layer(tower_http::request_id::SetRequestIdLayer::new(
            request_id_header,
            request_ids,
        ))
        .layer(axum::middleware::from_fn(request_id::sanitize))
        .with_state(state)
}
