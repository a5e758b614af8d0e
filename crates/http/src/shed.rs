//! Load shedding: a node takes at most `requests_in_flight_max` requests at once and answers
//! the rest `503` + `Retry-After` at once, before their body is read, their JSON parsed or
//! anything is proposed to the log. Without a cap, an on-sale crowd beyond what the node can
//! commit queues in front of the proposer: every request waits longer, clients time out and
//! retry, and the work spent on requests nobody waits for any more makes goodput fall as load
//! grows (congestion collapse). With the cap, admitted requests keep their latency and the
//! excess costs one atomic operation and a small fixed answer.
//!
//! Health checks, metrics, static files and live streams are not counted: the first two must
//! answer under load, static files are cheap, and live streams are long-lived and have their
//! own caps (see [`crate::live`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use crate::{ApiError, AppState};

/// The in-flight request cap of one node.
#[derive(Debug, Clone)]
pub struct InFlight {
    permits: Arc<Semaphore>,
}

impl InFlight {
    /// Returns a cap of `requests_in_flight_max` requests.
    pub fn new(requests_in_flight_max: usize) -> InFlight {
        InFlight {
            permits: Arc::new(Semaphore::new(requests_in_flight_max)),
        }
    }

    /// Requests that could start now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// Whether a request to `path` is outside the cap.
fn exempt(path: &str) -> bool {
    path == "/healthz"
        || path == "/metrics"
        || path == "/favicon.ico"
        || path.starts_with("/static/")
        || (path.starts_with("/events/") && path.ends_with("/live"))
}

/// Admits a request when the node has room for it, else answers `503` with `Retry-After`
/// (problem+json for the API, the styled page elsewhere) without running it.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    match state.in_flight.permits.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            metrics::counter!("tix_http_shed_total").increment(1);
            let error = ApiError::Overloaded;
            let retry_after = error.retry_after_s().unwrap_or(1);
            let mut response = crate::pages::error_for_path(request.uri().path(), error);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_metrics_static_files_and_live_streams_are_not_counted() {
        for path in [
            "/healthz",
            "/metrics",
            "/favicon.ico",
            "/static/shop.css",
            "/events/7/live",
        ] {
            assert!(exempt(path), "{path}");
        }
        for path in [
            "/",
            "/api/v1/events/7/purchases",
            "/events/7",
            "/events/7/order",
            "/api/v1/healthz",
            "/live",
        ] {
            assert!(!exempt(path), "{path}");
        }
    }
}
