//! Request ids: every request gets one (`x-request-id`, taken from the client when it is a short
//! token, else made here), it is on the response, on the request's tracing span, and in every
//! problem+json body (`request_id`), so a user's report of an error finds its one log line.
//!
//! The id is set by tower-http's `SetRequestIdLayer` and made available to the error mapping
//! through a task-local scope ([`scope`]): `ApiError`'s conversion reads it with
//! [`current`] without taking the request as an argument.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header carrying the id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest client-chosen id accepted; a longer or odd one is replaced.
const CLIENT_ID_BYTES_MAX: usize = 64;

tokio::task_local! {
    static CURRENT: String;
}

/// Makes ids `<node>-<counter>` (hex), unique per node run, cheap, and never reused while the
/// process runs. A client's own well-formed id is kept (the layer only calls this without one).
#[derive(Clone)]
pub struct NodeRequestIds {
    node_id: u64,
    /// Starts from the process's start time in milliseconds, so a restarted node does not repeat
    /// the ids of its previous run.
    next: std::sync::Arc<AtomicU64>,
}

impl NodeRequestIds {
    /// Ids for node `node_id`, starting at `start` (e.g. the start time in milliseconds).
    pub fn new(node_id: u64, start: u64) -> NodeRequestIds {
        NodeRequestIds {
            node_id,
            next: std::sync::Arc::new(AtomicU64::new(start)),
        }
    }
}

impl MakeRequestId for NodeRequestIds {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:x}-{n:x}", self.node_id);
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Whether a client-sent id is kept: 1 to 64 of `[A-Za-z0-9._-]`.
fn acceptable(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= CLIENT_ID_BYTES_MAX
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops a client's `x-request-id` that is not a short token, so the layer makes one instead
/// (nothing the client sends reaches the logs unchecked).
pub async fn sanitize(mut request: Request, next: Next) -> Response {
    if let Some(id) = request.headers().get(REQUEST_ID_HEADER)
        && !acceptable(id)
    {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

/// Runs the rest of the request inside the task-local scope of its id.
pub async fn scope(request: Request, next: Next) -> Response {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
        .to_owned();
    CURRENT.scope(id, next.run(request)).await
}

/// Returns the current request's id, if called while a request is being handled.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client ids are kept only when short and made of token characters.
    #[test]
    fn client_ids_are_kept_only_when_they_are_short_tokens() {
        let ok = |s: &str| acceptable(&HeaderValue::from_str(s).unwrap());
        assert!(ok("abc-123_x.y"));
        assert!(ok(&"a".repeat(CLIENT_ID_BYTES_MAX)));
        assert!(!ok(&"a".repeat(CLIENT_ID_BYTES_MAX + 1)));
        assert!(!ok(""));
        assert!(!ok("a b"));
        assert!(!ok("<script>"));
    }

    /// Made ids name the node and never repeat.
    #[test]
    fn made_ids_are_unique_and_name_the_node() {
        let mut ids = NodeRequestIds::new(3, 100);
        let request = axum::http::Request::new(());
        let a = ids.make_request_id(&request).unwrap();
        let b = ids.make_request_id(&request).unwrap();
        assert_eq!(a.header_value(), "3-64");
        assert_eq!(b.header_value(), "3-65");
    }

    /// Outside a request there is no current id; inside a scope there is.
    #[tokio::test]
    async fn the_current_id_is_the_scope_s() {
        assert_eq!(current(), None);
        let seen = CURRENT.scope("n-1".into(), async { current() }).await;
        assert_eq!(seen.as_deref(), Some("n-1"));
    }
}
