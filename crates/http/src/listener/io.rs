//! The socket as hyper sees it: reads tell the connection's watchdog when a request head
//! starts, and a bodyless error response that hyper writes by itself (400 for a malformed
//! request, 414 and 431 for a request line or head over its limits: hyper answers these while
//! parsing, before any service or layer of ours runs) is replaced by our problem+json body or
//! styled page.
//!
//! Recognizing hyper's own answer is exact: it is the only response written while a head is
//! being read (no request has been dispatched; every response of ours is written after its
//! request was), and ours always carry a `content-type`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Shared;
use super::connection::{ConnState, Phase};

/// An error response hyper writes by itself, without a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FramingError {
    /// 400: the request is not valid HTTP/1.1.
    Malformed,
    /// 414: the request target is over hyper's fixed limit.
    UriTooLong,
    /// 431: the head is over the read buffer (`request_head_bytes_max`) or has too many headers.
    HeadTooLarge,
}

/// The connection's socket, watched (see the module documentation).
pub(super) struct WatchedIo {
    stream: TcpStream,
    state: Arc<ConnState>,
    shared: Arc<Shared>,
    /// Our response written in place of hyper's, and how much of it is written.
    substitute: Option<(Bytes, usize)>,
}

impl WatchedIo {
    /// Wraps the socket of a connection.
    pub(super) fn new(stream: TcpStream, state: Arc<ConnState>, shared: Arc<Shared>) -> Self {
        WatchedIo {
            stream,
            state,
            shared,
            substitute: None,
        }
    }

    /// Writes what is left of the substituted response.
    fn poll_substitute(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some((bytes, written)) = self.substitute.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            if *written >= bytes.len() {
                self.substitute = None;
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.state.on_bytes(read, &this.shared);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_substitute(cx))?;
        if this.state.phase() == Phase::Head
            && let Some(kind) = hyper_error_response(buf)
        {
            let page = this.shared.config.pages && this.state.page_request();
            this.substitute = Some((this.shared.canned.framing(kind, page), 0));
            // What the socket does not take now, the flush that follows writes.
            if let Poll::Ready(Err(e)) = this.poll_substitute(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_substitute(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_substitute(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// Returns which of hyper's own error responses `buf` begins with, if it is one: status 400,
/// 414 or 431 and no `content-type` in a complete head.
pub(super) fn hyper_error_response(buf: &[u8]) -> Option<FramingError> {
    let kind = if buf.starts_with(b"HTTP/1.1 400 ") {
        FramingError::Malformed
    } else if buf.starts_with(b"HTTP/1.1 414 ") {
        FramingError::UriTooLong
    } else if buf.starts_with(b"HTTP/1.1 431 ") {
        FramingError::HeadTooLarge
    } else {
        return None;
    };
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = buf[..head_end].to_ascii_lowercase();
    let typed = head.windows(15).any(|w| w == b"\r\ncontent-type:");
    (!typed).then_some(kind)
}

/// Whether the start of a request head (`GET /path ...`) names a page rather than the API or
/// the cluster endpoints. When too little has arrived to tell, it is not a page: the answer is
/// then problem+json.
pub(super) fn head_is_page(start: &[u8]) -> bool {
    let Some(space) = start.iter().take(16).position(|&b| b == b' ') else {
        return false;
    };
    let path = &start[space + 1..];
    let api = [&b"/api/"[..], &b"/cluster/"[..]];
    if api.iter().any(|prefix| path.starts_with(prefix)) {
        return false;
    }
    // A path that could still turn out to be `/api/...` is undecided.
    let undecided = api
        .iter()
        .any(|prefix| path.len() < prefix.len() && prefix.starts_with(path));
    !undecided && path.first() == Some(&b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks that hyper's bodyless answers are recognized and that a response of ours (with a
    // content type), another status or an incomplete head is left alone.
    #[test]
    fn recognizes_only_hyper_s_own_error_responses() {
        let date = "date: Thu, 01 Jan 2026 00:00:00 GMT";
        let hyper_431 = format!(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n{date}\r\n\r\n"
        );
        assert_eq!(
            hyper_error_response(hyper_431.as_bytes()),
            Some(FramingError::HeadTooLarge)
        );
        let hyper_414 = format!("HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n{date}\r\n\r\n");
        assert_eq!(
            hyper_error_response(hyper_414.as_bytes()),
            Some(FramingError::UriTooLong)
        );
        let hyper_400 = format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n{date}\r\n\r\n");
        assert_eq!(
            hyper_error_response(hyper_400.as_bytes()),
            Some(FramingError::Malformed)
        );
        let ours = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\n\
                    content-length: 2\r\n\r\n{}";
        assert_eq!(hyper_error_response(ours.as_bytes()), None);
        let ok = format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{date}\r\n\r\n");
        assert_eq!(hyper_error_response(ok.as_bytes()), None);
        assert_eq!(hyper_error_response(b"HTTP/1.1 431 Request"), None);
    }

    // Checks the page/API decision on the first bytes of a head, including heads cut short.
    #[test]
    fn tells_pages_from_the_api_by_the_start_of_the_head() {
        assert!(head_is_page(b"GET / HTTP/1.1\r\n"));
        assert!(head_is_page(b"POST /login HTTP/1.1\r\n"));
        assert!(head_is_page(b"GET /events/1"));
        assert!(!head_is_page(b"GET /api/v1/events HTTP/1.1\r\n"));
        assert!(!head_is_page(b"POST /cluster/propose HTTP/1.1\r\n"));
        assert!(!head_is_page(b"GET /ap"), "could still be /api/");
        assert!(!head_is_page(b"GE"));
        assert!(!head_is_page(b"GARBAGE-WITHOUT-SPACES-AT-ALL"));
    }
}
