//! Operational endpoints: `/healthz`, Prometheus `/metrics`, the OpenAPI document and its
//! browsable docs page (Swagger UI, served from the binary: no internet needed), plus the
//! request-metrics middleware and the 404 fallback.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::error::ApiError;

/// Routes at the root.
pub fn routes() -> Router<AppState> {
    // Generated from the handlers' types (openapi.rs).
    let spec = <crate::openapi::ApiDoc as utoipa::OpenApi>::openapi();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", spec))
}

/// Liveness and Raft status
///
/// Answers 200 while the process serves HTTP, with this node's view of the cluster (a local
/// read; it does not prove a leader is reachable).
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "health",
    responses((status = 200, description = "Alive.", body = crate::views::Health)))]
async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    let metrics = state.node.raft.metrics().borrow().clone();
    Json(json!({
        "status": "ok",
        "node_id": state.node.id,
        "leader_id": metrics.current_leader,
        "term": metrics.current_term,
        "last_applied": metrics.last_applied.map(|l| l.index),
    }))
}

/// Prometheus metrics
///
/// Prometheus text exposition: HTTP requests by route, method and status
/// (`tix_http_requests_total`), latency (`tix_http_request_seconds`), sales
/// (`tix_sales_total`), 503s (`tix_http_unavailable_total`), Raft batch sizes and fsync latency.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain; version=0.0.4",
            body = String, example = json!("tix_sales_total 1042\n")),
        (status = 404, response = crate::openapi::MetricsNotFound),
    ))]
async fn metrics(State(state): State<AppState>) -> Response {
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

/// Counts requests by route and status and records their latency.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
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
/// timeout) our problem+json body, so every error a client sees has the same shape.
pub async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed.into_response(),
        StatusCode::SERVICE_UNAVAILABLE => {
            ApiError::Unavailable("the request took too long".into()).into_response()
        }
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
