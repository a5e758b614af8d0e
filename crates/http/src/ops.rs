//! Operational endpoints: `/healthz`, Prometheus `/metrics`, the OpenAPI document and its
//! browsable docs page (Swagger UI, served from the binary: no internet needed), plus the
//! request-metrics middleware and the 404 fallback.
//!
//! `/metrics` is not public (it counts sales and failed logins): it answers the bearer token of
//! `tix serve --metrics-token-file` (compared in constant time) or an admin's token or session.
//! Its labels take only values the server chooses: the matched route (or `unmatched`), a known
//! HTTP method (or `other`) and the status code.

use std::path::{Path, PathBuf};
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::MaybeCaller;

/// Routes at the root.
pub fn routes() -> Router<AppState> {
    // Generated from the handlers' types (openapi.rs).
    let spec = <crate::openapi::ApiDoc as utoipa::OpenApi>::openapi();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", spec))
}

/// Health of this replica
///
/// 200 while Raft runs and the state machine is trusted; 503 `failed` once the replica has
/// fail-stopped (it is about to exit: a load balancer must stop sending to it). A local read.
/// Who leads and the term are not published here: admins read them from
/// `GET /api/v1/cluster`, operators from `tix cluster status` (signed).
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "health",
    responses(
        (status = 200, description = "Serving.", body = crate::views::Health),
        (status = 503, description = "This replica has stopped.", body = crate::views::Health),
    ))]
async fn healthz(State(state): State<AppState>) -> Response {
    let metrics = state.node.raft.metrics().borrow().clone();
    let failed = state.node.shared.failure().is_some() || metrics.running_state.is_err();
    let body = Json(json!({
        "status": if failed { "failed" } else { "ok" },
        "node_id": state.node.id,
    }));
    let status = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, body).into_response()
}

/// Refuses every request but `/healthz` once this replica has fail-stopped: what it would read
/// or answer comes from a state it no longer trusts.
pub async fn refuse_when_failed(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.node.shared.failure().is_some() && request.uri().path() != "/healthz" {
        return ApiError::Unavailable("this replica has stopped; use another node".into())
            .into_response();
    }
    next.run(request).await
}

/// The shortest `/metrics` token accepted.
pub const METRICS_TOKEN_LEN_MIN: usize = 16;

/// The bearer token that may read `/metrics`, kept only as its SHA-256 and never printed.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

/// Why a `/metrics` token was not accepted at startup.
#[derive(Debug, thiserror::Error)]
pub enum MetricsTokenError {
    /// The file could not be read.
    #[error("cannot read the metrics token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token is shorter than [`METRICS_TOKEN_LEN_MIN`].
    #[error("the metrics token must be at least {METRICS_TOKEN_LEN_MIN} characters (it has {0})")]
    TooShort(usize),
}

impl MetricsToken {
    /// Accepts a token of at least [`METRICS_TOKEN_LEN_MIN`] characters.
    pub fn new(token: &str) -> Result<MetricsToken, MetricsTokenError> {
        let length = token.chars().count();
        if length < METRICS_TOKEN_LEN_MIN {
            return Err(MetricsTokenError::TooShort(length));
        }
        Ok(MetricsToken(Sha256::digest(token.as_bytes()).into()))
    }

    /// Reads the token from a file (surrounding whitespace and the final newline ignored).
    pub fn from_file(path: &Path) -> Result<MetricsToken, MetricsTokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| MetricsTokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        MetricsToken::new(text.trim())
    }

    /// Returns true when `presented` is the token; the comparison takes the same time wherever
    /// the two differ.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

/// Returns the token of an `Authorization: Bearer` header (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Prometheus metrics
///
/// Prometheus text exposition, for the metrics token (`tix serve --metrics-token-file`) or an
/// admin: HTTP requests by route, method and status (`tix_http_requests_total`), latency
/// (`tix_http_request_seconds`), sales (`tix_sales_total`), 503s, Raft batch sizes and fsync
/// latency. 401 without credentials, 403 for a signed-in non-admin, 404 when no recorder is
/// installed.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain; version=0.0.4",
            body = String, example = json!("tix_sales_total 1042\n")),
        (status = 401, response = crate::openapi::Unauthenticated),
        (status = 403, response = crate::openapi::AdminOnly),
        (status = 404, response = crate::openapi::MetricsNotFound),
    ))]
async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let by_token = match (&state.config.metrics_token, bearer(&parts.headers)) {
        (Some(expected), Some(presented)) => expected.matches(presented),
        _ => false,
    };
    if !by_token {
        // An admin's bearer token (a scraper), or an admin's session cookie (a browser: a GET
        // changes nothing, so the cookie alone is enough here).
        let caller = match bearer(&parts.headers) {
            Some(token) => crate::extract::authenticate(&state, token).await,
            None => match MaybeCaller::from_request_parts(&mut parts, &state).await {
                Ok(MaybeCaller(caller)) => caller,
                Err(e) => return e.into_response(),
            },
        };
        match caller {
            Some(caller) if caller.is_admin() => {}
            Some(_) => return ApiError::Forbidden("metrics are for admins").into_response(),
            None => return ApiError::Unauthenticated.into_response(),
        }
    }
    let shared = &state.node.shared;
    let state_bytes = shared.read().estimated_bytes();
    metrics::gauge!("tix_state_memory_bytes").set(state_bytes as f64);
    metrics::gauge!("tix_store_disk_bytes").set(shared.store_bytes() as f64);
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ApiError::NotFound("metrics recorder").into_response(),
    }
}

/// Answers unknown paths with a problem+json 404.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("page")
}

/// Returns the metrics label of a request method: the standard methods by name, anything a
/// client invented as `other` (a label value per invented method would grow `/metrics` without
/// bound).
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Counts requests by route, method and status and records their latency.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status();
    metrics::counter!(
        "tix_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    metrics::histogram!("tix_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        metrics::counter!("tix_http_unavailable_total").increment(1);
    }
    response
}

/// Gives the bare errors produced by the framework (405 from the router, 503 from the request
/// timeout, 413 from a body over the limit, also for forms, 400 from a path id or query that
/// does not parse) our problem+json body, or a styled page on page paths for 413 and 400, so every error a client sees has the same shape. A request whose
/// body missed the listener's body read timeout is answered 408, whatever the handler made of
/// the truncated body.
pub async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let body_deadline = request
        .extensions()
        .get::<crate::listener::BodyReadTimeout>()
        .cloned();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if body_deadline.is_some_and(|d| d.expired()) {
        let mut response = crate::pages::error_for_path(&path, ApiError::RequestTimeout);
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    // axum's own rejections are `text/plain`; everything of ours has another type.
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !bare {
        return response;
    }
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed.into_response(),
        StatusCode::SERVICE_UNAVAILABLE => {
            ApiError::Unavailable("the request took too long".into()).into_response()
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            crate::pages::error_for_path(&path, ApiError::PayloadTooLarge)
        }
        // A path id or query parameter the extractor could not parse (`/events/abc`).
        StatusCode::BAD_REQUEST => crate::pages::error_for_path(&path, ApiError::InvalidUrl),
        _ => response,
    }
}

/// Turns a panic in a handler into a problem+json 500 (the panic itself is logged here).
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}
