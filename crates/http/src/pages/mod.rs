//! The web shop: server-rendered pages (askama templates in `crates/http/templates/pages/`)
//! over the same functions as the JSON API, with a little plain JavaScript (`static/shop.js`)
//! for the seat map, live availability (Server-Sent Events) and the hold countdown. Everything
//! is served by tix itself: no CDN, no build step, no request to another host.
//!
//! A page module exposes `routes()`; every template extends `pages/base.html` and carries a
//! [`Nav`] (who is signed in, which links to show, the session's CSRF token for its forms).
//! Pages sign in with the `tix_session` cookie (HttpOnly, SameSite=Lax, `Secure` over TLS);
//! every form posts a CSRF token that [`crate::csrf::guard`] checks before any handler runs.
//! Failures render [`PageError`] as a friendly HTML page with the right status and no
//! internals.

mod account;
mod admin;
mod assistant;
mod buy;
mod cancel;
mod catalogue;
mod event_image;
mod form;
mod password;
mod profile;
pub mod queue;
mod receipt;
mod seatmap;
mod staff;
mod tickets;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tix_core::Role;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, SESSION_COOKIE};

/// The pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/shop.css", get(css))
        .route("/static/shop.js", get(js))
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .merge(account::routes())
        .merge(assistant::routes())
        .merge(catalogue::routes())
        .merge(buy::routes())
        .merge(tickets::routes())
        .merge(staff::routes())
        .merge(cancel::routes())
        .merge(admin::routes())
        .merge(queue::routes())
        .merge(password::routes())
        .merge(profile::routes())
}

async fn css() -> Response {
    static_asset(
        "text/css; charset=utf-8",
        include_str!("../../static/shop.css"),
    )
}

async fn js() -> Response {
    static_asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/shop.js"),
    )
}

async fn favicon() -> Response {
    static_asset("image/svg+xml", include_str!("../../static/favicon.svg"))
}

pub(crate) fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Who is signed in, for the header of every page.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// The signed-in user's name.
    pub username: Option<String>,
    /// May create events and see the organizer pages.
    pub organizer: bool,
    /// May check tickets in at the door.
    pub door: bool,
    /// May see the cluster page.
    pub admin: bool,
    /// The session's CSRF token, posted by every form of the page (`csrf` field).
    pub csrf: String,
    /// The signed-in user's open hold (id, expiry in Unix ms): a banner on every page but its
    /// own checkout leads back to it.
    pub hold: Option<Box<HoldBanner>>,
}

/// The banner of an open hold.
#[derive(Debug, Clone)]
pub struct HoldBanner {
    /// The hold.
    pub id: u64,
    /// When it lapses, Unix ms (the script counts down to it).
    pub expires_at_ms: u64,
    /// The same, for people: `20:53 UTC`.
    pub until: String,
}

impl Nav {
    /// Builds the header for `caller`.
    pub fn of(caller: Option<&Caller>) -> Nav {
        match caller {
            None => Nav::default(),
            Some(c) => Nav {
                username: Some(c.username.clone()),
                organizer: c.can_organize(),
                door: c.role != Role::Attendee,
                admin: c.is_admin(),
                csrf: c.csrf_token.clone(),
                hold: c.open_hold.map(|(id, expires_at_ms)| {
                    Box::new(HoldBanner {
                        id,
                        expires_at_ms,
                        until: when(expires_at_ms as i64)
                            .get(11..)
                            .unwrap_or_default()
                            .to_owned(),
                    })
                }),
            },
        }
    }
}

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headline.
    pub title: String,
    /// What happened and what to do, without internals.
    pub message: String,
    /// The header.
    pub nav: Nav,
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    nav: &'a Nav,
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl PageError {
    /// A 404 page.
    pub fn not_found(nav: Nav, what: &str) -> PageError {
        PageError {
            status: StatusCode::NOT_FOUND,
            title: "Not found".into(),
            message: format!(
                "There is no such {what}. It may have been removed, or the link is wrong."
            ),
            nav,
        }
    }

    /// A 403 page.
    pub fn forbidden(nav: Nav, message: &str) -> PageError {
        PageError {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed".into(),
            message: message.into(),
            nav,
        }
    }

    /// Shows an API error as a page (internal errors without their details).
    pub fn from_api(nav: Nav, e: ApiError) -> PageError {
        let (status, body) = e.problem();
        let title = body
            .get("title")
            .and_then(|t| t.as_str())
            .unwrap_or("Error")
            .to_owned();
        PageError {
            status,
            title,
            message: message_for(&e),
            nav,
        }
    }
}

/// What to tell a person about an API error: its detail, or, for a fault on our side, that
/// it was logged — never the internals.
pub fn message_for(e: &ApiError) -> String {
    let (status, body) = e.problem();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        match body.get("request_id").and_then(|id| id.as_str()) {
            Some(id) => format!(
                "Something went wrong on our side. It was logged (reference {id}); please try \
                 again."
            ),
            None => "Something went wrong on our side. It was logged; please try again.".into(),
        }
    } else {
        body.get("detail")
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .to_owned()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            nav: &self.nav,
            status: self.status.as_u16(),
            title: &self.title,
            message: &self.message,
        };
        match page.render() {
            Ok(html) => (self.status, html_headers(), html).into_response(),
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

fn html_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    )]
}

/// Sends a visitor who is not signed in to the login page, coming back to `back` after.
pub fn login_first(back: &str) -> Response {
    let next: String = url_encode(back);
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// Percent-encodes a path for a query string.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A redirect after a successful form post (303: the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Sets the session cookie (`Secure` when served over TLS); an empty token with `max_age_s`
/// 0 clears it.
pub fn session_cookie(token: &str, max_age_s: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("tix_session=; Path=/; Max-Age=0"))
}

/// Formats minor units as money: `12.50 EUR`.
/// A ticket price for people: "Free" for a free event, else [`money`].
pub fn ticket_price(cents: u64, currency: &str) -> String {
    if cents == 0 {
        "Free".to_owned()
    } else {
        money(cents, currency)
    }
}

pub fn money(cents: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

/// Formats a log-time instant for people: `2026-12-31 20:00 UTC`.
pub fn when(ms: i64) -> String {
    let t = crate::views::rfc3339(ms);
    // 2026-12-31T20:00:00Z → 2026-12-31 20:00 UTC
    match (t.get(0..10), t.get(11..16)) {
        (Some(day), Some(hm)) => format!("{day} {hm} UTC"),
        _ => t,
    }
}

/// Formats an event's start for people, in the venue's time zone with the weekday and the
/// zone's abbreviation: `Tue 12 Jan 2027, 19:30 CET` (see [`crate::zone::when_local`]).
pub fn when_local(ms: i64, zone: &str) -> String {
    crate::zone::when_local(ms, zone)
}

/// The largest event form, in bytes: it may carry an image of up to
/// `tix_core::EVENT_IMAGE_BYTES_MAX` and a little over it, so that a slightly too large file is
/// answered beside its field rather than with a page of its own.
pub const EVENT_FORM_BYTES_MAX: usize = 1024 * 1024;

/// Whether `path` is the event form's (create or edit), which posts an image.
pub fn takes_image(path: &str) -> bool {
    path == "/events/new"
        || path
            .strip_prefix("/events/")
            .and_then(|rest| rest.strip_suffix("/edit"))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// The site's origin for absolute links (link previews, calendar files): `--public-origin`, or
/// `http://` and the request's `Host` when it is printable, else `http://localhost`.
pub fn site_origin(config: &crate::HttpConfig, headers: &axum::http::HeaderMap) -> String {
    if let Some(origin) = &config.public_origin {
        return origin.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Whether `path` belongs to the pages (HTML) rather than the JSON API or the cluster endpoints.
pub fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/api/") || path.starts_with("/cluster/"))
}

/// Answers an error the framework or the listener produced (not a handler): a styled page on
/// page paths, problem+json elsewhere. The page shows the signed-out header: the caller is not
/// looked up for a request that failed before any handler ran.
pub fn error_for_path(path: &str, e: ApiError) -> Response {
    if is_page_path(path) {
        PageError::from_api(Nav::default(), e).into_response()
    } else {
        e.into_response()
    }
}

/// The HTML 404 for unknown paths outside the API; the API keeps its problem+json 404.
pub async fn fallback(uri: Uri, caller: crate::extract::MaybeCaller) -> Response {
    if uri.path().starts_with("/api/") || uri.path().starts_with("/cluster/") {
        return crate::ops::not_found().await.into_response();
    }
    PageError::not_found(Nav::of(caller.0.as_ref()), "page").into_response()
}

/// Parses an `application/x-www-form-urlencoded` body into (name, value) pairs, keeping
/// repeated names (a seat map posts one `seat` per chosen seat).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `name` in a parsed form.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}
