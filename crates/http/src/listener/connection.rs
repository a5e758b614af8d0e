//! One connection's task: wait (cheaply, without hyper's buffers) for the first bytes, then
//! serve HTTP/1.1 with hyper under a watchdog that enforces the header-read and idle timeouts
//! and obeys eviction and shutdown.
//!
//! A connection is in one [`Phase`] at a time. `Fresh` (accepted, nothing read) and `Head`
//! (bytes of a request head have arrived) must complete a head within the header-read
//! timeout — counted from the accept for the first request, from the first byte for the later
//! ones on a keep-alive connection; `Idle` (between requests) may last the idle timeout; `Busy`
//! (a request dispatched and not yet answered) has no connection deadline: the request timeout
//! and the body read timeout bound it. Every phase but `Busy` may be evicted.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::Shared;
use super::io::WatchedIo;
use crate::error::ApiError;

/// Where a connection is in its life (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    /// Accepted; nothing read yet.
    Fresh = 0,
    /// Bytes of a request head have arrived; no request dispatched.
    Head = 1,
    /// A request is dispatched and its response not yet fully handed to hyper.
    Busy = 2,
    /// Between requests on a keep-alive connection.
    Idle = 3,
}

/// What the listener, the socket wrapper and the service share about one connection.
///
/// The phase and its start time are only written from the connection's own task (hyper polls
/// the socket, the service and the bodies from it), so relaxed atomics suffice; the listener
/// touches only `evicted` and `wake`.
pub(super) struct ConnState {
    /// The id in the listener's table.
    pub(super) id: u64,
    phase: AtomicU8,
    /// When the current deadline started counting, in ms since the listener's epoch.
    since_ms: AtomicU64,
    /// Whether the current head looks like a page request (for hyper's own error answers).
    page: AtomicBool,
    /// Whether the current request's body missed the body read timeout.
    body_timed_out: AtomicBool,
    /// Set by the listener to make room for a new connection.
    pub(super) evicted: AtomicBool,
    /// Wakes the task for an eviction or shutdown.
    pub(super) wake: Notify,
}

impl ConnState {
    /// Returns the state of a connection accepted now.
    pub(super) fn new(id: u64, shared: &Shared) -> Self {
        ConnState {
            id,
            phase: AtomicU8::new(Phase::Fresh as u8),
            since_ms: AtomicU64::new(shared.now_ms()),
            page: AtomicBool::new(false),
            body_timed_out: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Returns the current phase.
    pub(super) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Fresh,
            1 => Phase::Head,
            2 => Phase::Busy,
            _ => Phase::Idle,
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Whether the head being read looks like a page request.
    pub(super) fn page_request(&self) -> bool {
        self.page.load(Ordering::Relaxed)
    }

    /// Bytes arrived: a head starts if none was under way.
    pub(super) fn on_bytes(&self, bytes: &[u8], shared: &Shared) {
        match self.phase() {
            // The first head's deadline counts from the accept.
            Phase::Fresh => {}
            Phase::Idle => self.since_ms.store(shared.now_ms(), Ordering::Relaxed),
            Phase::Head | Phase::Busy => return,
        }
        self.page
            .store(super::io::head_is_page(bytes), Ordering::Relaxed);
        self.set_phase(Phase::Head);
    }

    /// Returns when the connection must be closed unless its phase changes first.
    fn deadline(&self, shared: &Shared) -> Option<Instant> {
        let since = shared.epoch + Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        match self.phase() {
            Phase::Fresh | Phase::Head => Some(since + shared.config.header_read_timeout),
            Phase::Idle => Some(since + shared.config.idle_timeout),
            Phase::Busy => None,
        }
    }
}

/// Marks the connection's request answered when dropped (with the response body, or with the
/// response future if the client went away first).
struct RequestGuard {
    state: Arc<ConnState>,
    shared: Arc<Shared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.state
            .since_ms
            .store(self.shared.now_ms(), Ordering::Relaxed);
        self.state.set_phase(Phase::Idle);
        self.shared.table().idle(self.state.id);
    }
}

/// Tells a handler (through the request's extensions) whether the body it read missed the body
/// read timeout; `ops::problem_for_bare_errors` then answers 408 whatever the handler made of
/// the truncated body.
#[derive(Clone)]
pub struct BodyReadTimeout(Arc<ConnState>);

impl BodyReadTimeout {
    /// Returns whether the request's body missed its deadline.
    pub fn expired(&self) -> bool {
        self.0.body_timed_out.load(Ordering::Relaxed)
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// The body did not arrive within the body read timeout.
    #[error("the request body did not arrive within the body read timeout")]
    TimedOut,
    /// The connection failed while the body was read.
    #[error(transparent)]
    Connection(#[from] hyper::Error),
}

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Armed only when the body has to be waited for: a body already here costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    state: Arc<ConnState>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BodyReadError::from)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.state.body_timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyReadError::TimedOut)));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that carries the [`RequestGuard`] until hyper has taken all of it.
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The hyper service of one connection: marks the connection busy, checks the URL length, adds
/// the peer address and the body deadline to the request and hands it to the router.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    state: Arc<ConnState>,
    shared: Arc<Shared>,
    peer: SocketAddr,
}

/// The response future of [`ConnectionService`].
struct ResponseFuture {
    inner: Option<axum::routing::future::RouteFuture<Infallible>>,
    early: Option<Response<Body>>,
    guard: Option<RequestGuard>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<GuardedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let response = match (this.early.take(), this.inner.as_mut()) {
            (Some(response), _) => response,
            (None, Some(inner)) => match Pin::new(inner).poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => return Poll::Pending,
            },
            (None, None) => unreachable!("ResponseFuture polled after completion"),
        };
        let guard = this.guard.take().expect("the guard is taken once");
        Poll::Ready(Ok(response.map(|inner| GuardedBody {
            inner,
            _guard: guard,
        })))
    }
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<GuardedBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> ResponseFuture {
        let state = &self.state;
        state.set_phase(Phase::Busy);
        state.body_timed_out.store(false, Ordering::Relaxed);
        self.shared.table().busy(state.id);
        let guard = Some(RequestGuard {
            state: state.clone(),
            shared: self.shared.clone(),
        });
        let uri_bytes = request
            .uri()
            .path_and_query()
            .map_or(0, |p| p.as_str().len());
        if uri_bytes > self.shared.config.uri_bytes_max {
            let path = request.uri().path();
            let page = self.shared.config.pages && crate::pages::is_page_path(path);
            let mut response = if page {
                crate::pages::error_for_path(path, ApiError::UriTooLong)
            } else {
                ApiError::UriTooLong.into_response()
            };
            crate::headers::add_security_headers(path, response.headers_mut());
            return ResponseFuture {
                inner: None,
                early: Some(response),
                guard,
            };
        }
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        parts.extensions.insert(BodyReadTimeout(state.clone()));
        let body = DeadlineBody {
            inner: body,
            deadline: Instant::now() + self.shared.config.body_read_timeout,
            sleep: None,
            state: state.clone(),
        };
        let mut router = self.router.clone();
        ResponseFuture {
            inner: Some(router.call(Request::from_parts(parts, Body::new(body)))),
            early: None,
            guard,
        }
    }
}

/// What ended the wait of a connection's watchdog.
enum Event {
    /// Hyper is done with the connection.
    Done(Result<(), hyper::Error>),
    /// A deadline passed.
    Deadline(Phase),
    /// The listener asked the connection to close (eviction or shutdown).
    Wake,
}

/// Serves one accepted connection until it closes, times out, is evicted or shut down.
pub(super) async fn run(
    shared: Arc<Shared>,
    state: Arc<ConnState>,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
) {
    let _closed = CloseGuard {
        shared: shared.clone(),
        id: state.id,
    };
    // Until the client sends something, the connection costs this task and a socket: no
    // hyper buffers. A connection evicted, shut down or closed by its client here is simply
    // dropped. (`peek`, not `readable`: tokio reports a new socket readable before any data.)
    if let Some(deadline) = state.deadline(&shared) {
        let mut first = [0u8; 1];
        tokio::select! {
            biased;
            () = state.wake.notified() => return,
            () = tokio::time::sleep_until(deadline) => {
                shared.metrics.timed_out_header.increment(1);
                return;
            }
            peeked = stream.peek(&mut first) => {
                if !matches!(peeked, Ok(1..)) {
                    return;
                }
            }
        }
    }
    let io = TokioIo::new(WatchedIo::new(stream, state.clone(), shared.clone()));
    let service = ConnectionService {
        router,
        state: state.clone(),
        shared: shared.clone(),
        peer,
    };
    let mut conn = pin!(shared.http1.serve_connection(io, service));
    let mut sleep = pin!(tokio::time::sleep_until(Instant::now()));
    let mut armed: Option<Instant> = None;
    let mut draining = false;
    loop {
        let mut notified = pin!(state.wake.notified());
        let event = poll_fn(|cx| {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(Event::Done(result));
            }
            if !draining && let Some(deadline) = state.deadline(&shared) {
                if armed != Some(deadline) {
                    sleep.as_mut().reset(deadline);
                    armed = Some(deadline);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Deadline(state.phase()));
                }
            }
            if notified.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Wake);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Done(Ok(())) => return,
            Event::Done(Err(e)) => {
                tracing::debug!(listener = shared.config.name, %peer, error = %e, "connection ended");
                return;
            }
            Event::Deadline(Phase::Idle) => {
                shared.metrics.timed_out_idle.increment(1);
                return;
            }
            Event::Deadline(_) => {
                shared.metrics.timed_out_header.increment(1);
                return;
            }
            // Nothing dispatched: close now. A request in progress is answered first (hyper
            // then closes instead of keeping the connection alive).
            Event::Wake if state.phase() != Phase::Busy => return,
            Event::Wake => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// Takes the connection out of the table when its task ends, however it ends.
struct CloseGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        let evicted = self.shared.table().close(self.id);
        if evicted {
            self.shared.evicted_closed.notify_one();
        }
        self.shared.metrics.open.decrement(1.0);
    }
}
