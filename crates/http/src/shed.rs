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
//! own caps (see [`crate::live`]). Joining a waiting room is not counted either: its order *is*
//! the product, and a join shed in an on-sale's spike would come back a second later behind
//! visitors who arrived after it. Joins wait their turn in [`JoinGate`] instead (first in,
//! first out; a place already held is a local read and does not wait at all), which has its
//! own bound.

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
        || (path.starts_with("/api/v1/events/") && path.ends_with("/queue"))
}

/// The front door of the waiting rooms: at most `in_flight_max` joins are proposed at once and
/// up to `waiting_max` more wait for their turn in arrival order (tokio's semaphore is fair);
/// past that a join is refused like any request over the cap (503 + `Retry-After`).
#[derive(Debug, Clone)]
pub struct JoinGate {
    permits: Arc<Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    waiting_max: usize,
}

/// A join's turn at the log; dropping it lets the next one go.
pub struct JoinTurn(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl JoinGate {
    /// A gate proposing `in_flight_max` joins at once, with `waiting_max` more in line.
    pub fn new(in_flight_max: usize, waiting_max: usize) -> JoinGate {
        JoinGate {
            permits: Arc::new(Semaphore::new(in_flight_max.max(1))),
            waiting: Arc::default(),
            waiting_max,
        }
    }

    /// Waits for a join's turn, in arrival order; `Overloaded` when the line is full.
    pub async fn turn(&self) -> Result<JoinTurn, ApiError> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(JoinTurn(permit));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.waiting_max {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("tix_http_shed_total").increment(1);
            return Err(ApiError::Overloaded);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit
            .map(JoinTurn)
            .map_err(|_| ApiError::Unavailable("shutting down".into()))
    }
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
            "/api/v1/events/7/queue",
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
            "/api/v1/events/7/waiting-room",
        ] {
            assert!(!exempt(path), "{path}");
        }
    }

    #[tokio::test]
    async fn joins_wait_in_order_and_past_the_line_are_refused() {
        let gate = JoinGate::new(1, 2);
        let first = gate.turn().await.expect("a free turn");
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..2 {
            let (gate, order) = (gate.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _turn = gate.turn().await.expect("in line");
                order.lock().unwrap().push(i);
            }));
            // Let each waiter queue before the next.
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            matches!(gate.turn().await, Err(ApiError::Overloaded)),
            "the line is full"
        );
        drop(first);
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1], "first in, first out");
        assert!(gate.turn().await.is_ok(), "free again");
    }
}
