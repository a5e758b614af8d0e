//! Security headers on every response, set in one place.
//!
//! - `Content-Security-Policy`: the shop loads nothing from elsewhere and runs no inline script
//!   or style (`default-src 'self'`; SVG images and QR codes are inline markup, not `data:`
//!   URLs), may not be framed (`frame-ancestors 'none'`) and posts forms only to itself. Swagger
//!   UI (`/api/docs`) ships inline bootstrapping, so it gets only `frame-ancestors 'none'`.
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`, `X-Frame-Options: DENY`
//!   (for browsers that predate `frame-ancestors`).
//! - `Cache-Control: no-store` on everything but the static assets, unless a handler chose
//!   otherwise: pages carry ticket codes, sessions and live availability, none of which a shared
//!   or browser cache should keep. Event images (`GET /api/v1/events/{id}/image`, public) set
//!   their own `Cache-Control: public` with an `ETag` (`images.rs`); their refusals keep
//!   `no-store`.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of every page and API response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The policy of the Swagger UI pages, which bootstrap with inline script.
const DOCS_POLICY: &str = "frame-ancestors 'none'";

/// Adds the security headers to a response (see the module documentation).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    add_security_headers(&path, response.headers_mut());
    response
}

/// Sets the security headers for a response to `path`; also used for the responses the
/// listener writes itself (framing errors, refused connections), which never reach the router.
pub fn add_security_headers(path: &str, headers: &mut HeaderMap) {
    let docs = path == "/api/docs" || path.starts_with("/api/docs/");
    let static_asset = path.starts_with("/static/");
    let policy = if docs {
        DOCS_POLICY
    } else {
        CONTENT_SECURITY_POLICY
    };
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !static_asset && !docs && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
