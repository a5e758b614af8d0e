//! The defence against cross-site request forgery, in one layer ([`guard`]) in front of every
//! route.
//!
//! Every state-changing request (POST, PUT, PATCH, DELETE) is checked:
//!
//! 1. **Where it comes from.** `Sec-Fetch-Site: cross-site` is refused, and so is `same-site`
//!    (a sibling subdomain is another origin). An `Origin` header must name this site: the
//!    configured public origin, or the scheme and `Host` the request came to (`https` only,
//!    when served over TLS). Both headers absent — a non-browser client — passes this step.
//! 2. **The API** (`/api/`) takes bodies only as `Content-Type: application/json` (415
//!    otherwise: a cross-site form can send only form, multipart or text bodies) and
//!    authenticates only with `Authorization: Bearer`, which a browser never attaches by itself
//!    (see [`crate::extract::Caller`]). The session cookie alone authorizes nothing there.
//! 3. **A form** must carry a token in its `csrf` field. With a session cookie the token is
//!    [`session_token`] — SHA-256 over a domain-separation tag and the session's token, so it
//!    is stored nowhere and replicated nowhere, and another site can neither read nor compute
//!    it. The login and sign-up forms have no session yet: they use the double-submit pattern,
//!    a random pre-session cookie (`tix_csrf`, `__Host-tix_csrf` over TLS; HttpOnly,
//!    SameSite=Strict) whose value the form repeats. A form without a session cookie elsewhere
//!    has no authority to abuse and passes to its handler (which asks to log in).
//!
//! A refusal is 403: problem+json for the API, a page for the shop.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::{SESSION_COOKIE, cookie};
use crate::pages::{Nav, PageError, field, form_pairs};
use crate::peer::Client;
use crate::{AppState, HttpConfig};

/// The form field that carries the token.
pub const FIELD: &str = "csrf";
/// The pre-session cookie over plain HTTP.
pub const PRESESSION_COOKIE: &str = "tix_csrf";
/// The pre-session cookie over TLS: the `__Host-` prefix makes the browser refuse it unless it
/// is `Secure`, host-only and for `/`, so a sibling subdomain cannot plant one.
pub const PRESESSION_COOKIE_SECURE: &str = "__Host-tix_csrf";
/// Separates the CSRF token from every other hash of the session token.
const DOMAIN_TAG: &[u8] = b"tix csrf token v1\0";

/// Returns the CSRF token of the session whose bearer token is `session_token`.
pub fn session_token(session_token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(DOMAIN_TAG);
    hash.update(session_token.as_bytes());
    hex::encode(hash.finalize())
}

/// Returns the name of the pre-session cookie for a request over TLS or not.
pub fn presession_cookie_name(secure: bool) -> &'static str {
    if secure {
        PRESESSION_COOKIE_SECURE
    } else {
        PRESESSION_COOKIE
    }
}

/// Returns the pre-session token for a login or sign-up form: the cookie's, or a new random
/// one with the `Set-Cookie` value that stores it.
pub fn presession(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    let name = presession_cookie_name(secure);
    if let Some(existing) = cookie(headers, name).filter(|v| is_token(v)) {
        return (existing.to_owned(), None);
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let token = hex::encode(bytes);
    let secure_attribute = if secure { "; Secure" } else { "" };
    let set = format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict{secure_attribute}");
    (token, HeaderValue::from_str(&set).ok())
}

/// True for 64 hex digits: what [`presession`] and [`session_token`] produce.
fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Compares two tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// From another site.
    CrossOrigin,
    /// A form without the right token.
    MissingToken,
}

/// Checks `Sec-Fetch-Site` and `Origin` against this site.
fn check_origin(
    headers: &HeaderMap,
    uri: &Uri,
    secure: bool,
    config: &HttpConfig,
) -> Result<(), Refusal> {
    let origin = match headers.get(ORIGIN) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| Refusal::CrossOrigin)?),
    };
    let own = |o: &str| is_own_origin(o, headers, uri, secure, config);
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) if site.eq_ignore_ascii_case("cross-site") => return Err(Refusal::CrossOrigin),
        Some(site) if site.eq_ignore_ascii_case("same-site") && !origin.is_some_and(own) => {
            return Err(Refusal::CrossOrigin);
        }
        _ => {}
    }
    match origin {
        Some(o) if !own(o) => Err(Refusal::CrossOrigin),
        _ => Ok(()),
    }
}

/// True when `origin` is this site: the configured public origin, or the request's own scheme
/// and host (`http` is accepted only when the request did not come over TLS).
fn is_own_origin(
    origin: &str,
    headers: &HeaderMap,
    uri: &Uri,
    secure: bool,
    config: &HttpConfig,
) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    if let Some(public) = &config.public_origin
        && origin.eq_ignore_ascii_case(public.trim().trim_end_matches('/'))
    {
        return true;
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let (Some(host), Some((scheme, authority))) = (host, origin.split_once("://")) else {
        return false;
    };
    let scheme_ok =
        scheme.eq_ignore_ascii_case("https") || (!secure && scheme.eq_ignore_ascii_case("http"));
    scheme_ok && authority.eq_ignore_ascii_case(host.trim())
}

/// `/api/v1/events/{id}/image`: the one API route whose body is not JSON.
fn images_path(path: &str) -> bool {
    path.strip_prefix("/api/v1/events/")
        .and_then(|rest| rest.strip_suffix("/image"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// True when the request has a body or a `Content-Type` that is not JSON.
fn body_not_json(headers: &HeaderMap) -> bool {
    match headers.get(CONTENT_TYPE) {
        Some(value) => !crate::extract::is_json(value),
        None => {
            let length = headers
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let chunked = headers.contains_key(axum::http::header::TRANSFER_ENCODING);
            chunked || length.is_some_and(|n| n > 0)
        }
    }
}

/// The forms posted without a session (log in, sign up, forgotten password, new password): they
/// carry the double-submit pre-session token.
const PRESESSION_FORMS: [&str; 4] = ["/login", "/signup", "/password/forgot", "/password/reset"];

/// Checks a form's token: the double-submit cookie on the pre-session forms, the
/// session's token wherever a session cookie is sent.
fn check_form_token(
    path: &str,
    headers: &HeaderMap,
    form: &[(String, String)],
    secure: bool,
) -> Result<(), Refusal> {
    let sent = field(form, FIELD);
    let expected = if PRESESSION_FORMS.contains(&path) {
        cookie(headers, presession_cookie_name(secure))
            .filter(|v| is_token(v))
            .map(str::to_owned)
    } else {
        match cookie(headers, SESSION_COOKIE) {
            Some(session) => Some(session_token(session)),
            None => return Ok(()),
        }
    };
    match expected {
        Some(expected) if same_token(sent, &expected) => Ok(()),
        _ => Err(Refusal::MissingToken),
    }
}

/// The refusal as the API's problem+json or the shop's page.
fn refuse(api: bool, why: Refusal) -> Response {
    if api {
        return ApiError::CrossOrigin.into_response();
    }
    let message = match why {
        Refusal::CrossOrigin => {
            "This form was sent from another site, so it was not carried out. Open tix itself \
             and try again."
        }
        Refusal::MissingToken => {
            "This form has expired or did not come from this site, so it was not carried out. \
             Go back, reload the page and try again."
        }
    };
    PageError::forbidden(Nav::default(), message).into_response()
}

/// The layer: lets safe methods through and checks every state-changing request as the module
/// describes. A form's body is read (within the body limit) to find its token, then handed on.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method();
    let changes_state = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method);
    if !changes_state {
        return next.run(request).await;
    }
    let api = request.uri().path().starts_with("/api/");
    let secure = Client::of(request.headers(), request.extensions(), &state.config).secure;
    if let Err(why) = check_origin(request.headers(), request.uri(), secure, &state.config) {
        return refuse(api, why);
    }
    if api {
        // An event image is uploaded as its raw bytes, not JSON; an image type is not one a
        // cross-site form or simple request can send, and the API still wants a bearer token.
        // (Other methods on the path pass too, to be answered 405 by the router.)
        let raw_upload = images_path(request.uri().path());
        if !raw_upload && body_not_json(request.headers()) {
            return ApiError::UnsupportedMediaType.into_response();
        }
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    // The event form carries an image: a larger body, for signed-in users only.
    let image_form =
        crate::pages::takes_image(path) && cookie(&parts.headers, SESSION_COOKIE).is_some();
    let body_max = if image_form {
        crate::pages::EVENT_FORM_BYTES_MAX.max(state.config.request_body_bytes_max)
    } else {
        state.config.request_body_bytes_max
    };
    let bytes: Bytes = match axum::body::to_bytes(body, body_max).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let message = if image_form {
                format!(
                    "The form is larger than this server accepts. An event's image may be at \
                     most {} KiB: go back and choose a smaller one.",
                    tix_core::EVENT_IMAGE_BYTES_MAX / 1024
                )
            } else {
                "The form is larger than this server accepts.".to_owned()
            };
            return PageError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                title: "Form too large".into(),
                message,
                nav: Nav::default(),
            }
            .into_response();
        }
    };
    // A multipart form (with a file) carries its token as a text part.
    let form = match crate::multipart::boundary(&parts.headers) {
        Some(Ok(boundary)) => crate::multipart::parse(&bytes, &boundary)
            .map(|form| crate::multipart::text_pairs(&form))
            .unwrap_or_default(),
        Some(Err(_)) => Vec::new(),
        None => form_pairs(&bytes),
    };
    if let Err(why) = check_form_token(parts.uri.path(), &parts.headers, &form, secure) {
        return refuse(false, why);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn origin_ok(pairs: &[(&'static str, &'static str)], secure: bool) -> bool {
        let uri: Uri = "/events/1/order".parse().unwrap();
        check_origin(&headers(pairs), &uri, secure, &HttpConfig::default()).is_ok()
    }

    // Same-origin and header-less requests pass; another site by Sec-Fetch-Site or Origin,
    // `null`, and plain http over TLS are refused; the configured public origin is accepted.
    #[test]
    fn origin_checks_from_both_sides() {
        let host = ("host", "tix.test:8080");
        assert!(origin_ok(&[host], false));
        assert!(origin_ok(
            &[host, ("origin", "http://tix.test:8080")],
            false
        ));
        assert!(origin_ok(
            &[
                host,
                ("origin", "http://TIX.test:8080"),
                ("sec-fetch-site", "same-origin")
            ],
            false
        ));
        assert!(origin_ok(&[host, ("sec-fetch-site", "none")], false));
        assert!(!origin_ok(&[host, ("sec-fetch-site", "cross-site")], false));
        assert!(!origin_ok(&[host, ("sec-fetch-site", "same-site")], false));
        assert!(!origin_ok(&[host, ("origin", "http://evil.test")], false));
        assert!(!origin_ok(
            &[host, ("origin", "http://tix.test:8081")],
            false
        ));
        assert!(!origin_ok(&[host, ("origin", "null")], false));
        assert!(
            !origin_ok(&[("origin", "http://tix.test:8080")], false),
            "no host"
        );
        assert!(!origin_ok(
            &[host, ("origin", "http://tix.test:8080")],
            true
        ));
        assert!(origin_ok(
            &[host, ("origin", "https://tix.test:8080")],
            true
        ));
        let config = HttpConfig {
            public_origin: Some("https://tickets.example".into()),
            ..HttpConfig::default()
        };
        let uri: Uri = "/".parse().unwrap();
        let proxied = headers(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://tickets.example"),
        ]);
        assert!(check_origin(&proxied, &uri, true, &config).is_ok());
    }

    // The session's token is stable, 64 hex digits, and differs from the token's own hash.
    #[test]
    fn session_tokens_are_derived_and_domain_separated() {
        let t = session_token("abc");
        assert_eq!(t, session_token("abc"));
        assert!(is_token(&t));
        assert_ne!(t, session_token("abd"));
        assert_ne!(t, crate::extract::token_hash("abc"));
    }

    // A form's token: the session's where a session cookie is sent, the double-submit cookie's
    // on login and sign-up, nothing needed without any cookie.
    #[test]
    fn form_tokens_from_both_sides() {
        let good = session_token("s3cret");
        let cookie_headers = headers(&[("cookie", "a=b; tix_session=s3cret")]);
        let form = |t: &str| vec![(FIELD.to_owned(), t.to_owned())];
        assert_eq!(
            check_form_token("/logout", &cookie_headers, &form(&good), false),
            Ok(())
        );
        assert!(check_form_token("/logout", &cookie_headers, &form("x"), false).is_err());
        assert!(check_form_token("/logout", &cookie_headers, &[], false).is_err());
        assert_eq!(
            check_form_token("/logout", &HeaderMap::new(), &[], false),
            Ok(())
        );
        let pre = "ab".repeat(32);
        let mut with_pre = HeaderMap::new();
        with_pre.insert(
            "cookie",
            HeaderValue::from_str(&format!("tix_csrf={pre}")).unwrap(),
        );
        assert_eq!(
            check_form_token("/login", &with_pre, &form(&pre), false),
            Ok(())
        );
        assert!(check_form_token("/login", &with_pre, &form(&"cd".repeat(32)), false).is_err());
        assert!(check_form_token("/login", &HeaderMap::new(), &form(&pre), false).is_err());
        assert!(
            check_form_token("/login", &with_pre, &form(&pre), true).is_err(),
            "over TLS only the __Host- cookie counts"
        );
    }
}
