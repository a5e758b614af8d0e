//! Sign up, log in, log out. The forms post to the same account functions as the API; a
//! session is the API's bearer token, carried in the `tix_session` cookie. The login and
//! sign-up forms carry the pre-session CSRF token (double-submit, [`crate::csrf`]), and are
//! throttled per client address like the API's.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tix_core::Role;

use super::{Nav, field, form_pairs, see_other, session_cookie};
use crate::AppState;
use crate::auth::{admit_signup, create_user, open_session, validate_password, validate_username};
use crate::csrf::presession;
use crate::error::ApiError;
use crate::extract::MaybeCaller;
use crate::peer::Client;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", get(signup_form).post(signup))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/signup.html")]
struct SignupPage {
    nav: Nav,
    username: String,
    organizer: bool,
    error: Option<String>,
    field: String,
    /// The pre-session CSRF token.
    csrf: String,
    /// The password rule, as the server checks it.
    password_rule: &'static str,
    /// Where to go once signed up (a local path).
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/login.html")]
struct LoginPage {
    nav: Nav,
    username: String,
    next: String,
    error: Option<String>,
    /// The pre-session CSRF token.
    csrf: String,
}

#[derive(Deserialize)]
struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// Only local paths are followed after login (no open redirect).
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Answers `page` with `status`, storing a new pre-session cookie when there is one.
fn with_cookie(
    status: axum::http::StatusCode,
    set_cookie: Option<HeaderValue>,
    page: impl IntoResponse,
) -> Response {
    let mut response = (status, page).into_response();
    if let Some(value) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn signup_form(
    caller: MaybeCaller,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let (csrf, set_cookie) = presession(&headers, client.secure);
    let page = SignupPage {
        nav: Nav::of(caller.0.as_ref()),
        username: String::new(),
        organizer: false,
        error: None,
        field: String::new(),
        csrf,
        password_rule: crate::auth::PASSWORD_RULE,
        next: safe_next(q.next.as_deref().unwrap_or("/")),
    };
    with_cookie(axum::http::StatusCode::OK, set_cookie, page)
}

async fn signup(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_pairs(&body);
    let username = field(&form, "username").trim().to_owned();
    let password = field(&form, "password").to_owned();
    let organizer = field(&form, "organizer") == "on";
    let next = safe_next(field(&form, "next"));
    let result = async {
        validate_username(&username)?;
        validate_password(&password, &username)?;
        let role = if organizer {
            Role::Organizer
        } else {
            Role::Attendee
        };
        admit_signup(&state, client.ip)?;
        create_user(&state, &username, &password, role).await?;
        open_session(&state, client.ip, &username, &password).await
    }
    .await;
    match result {
        Ok((token, _, _)) => signed_in(&state, client, &token, &next),
        Err(e) => {
            let field_name = match &e {
                ApiError::Invalid { field, .. } => field.clone(),
                ApiError::UsernameTaken => "username".into(),
                _ => String::new(),
            };
            let message = match &e {
                ApiError::UsernameTaken => "That username is taken; choose another.".to_owned(),
                ApiError::Invalid { field, detail } => format!("{}: {detail}", label(field)),
                ApiError::TooManySignups { retry_after_s } => format!(
                    "Too many new accounts from your address; try again in {retry_after_s} seconds."
                ),
                other => super::message_for(other),
            };
            let status = e.problem().0;
            let (csrf, set_cookie) = presession(&headers, client.secure);
            let page = SignupPage {
                nav: Nav::default(),
                username,
                organizer,
                error: Some(message),
                field: field_name,
                csrf,
                password_rule: crate::auth::PASSWORD_RULE,
                next,
            };
            with_retry_after(with_cookie(status, set_cookie, page), &e)
        }
    }
}

/// Adds the error's `Retry-After` (a throttle's real wait) to a page.
fn with_retry_after(mut response: Response, e: &ApiError) -> Response {
    if let Some(seconds) = e.retry_after_s() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Redirects to `next` with the new session's cookie.
fn signed_in(state: &AppState, client: Client, token: &str, next: &str) -> Response {
    let mut response = see_other(next);
    let max_age_s = state.config.session_ttl_ms / 1000;
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(token, max_age_s, client.secure),
    );
    response
}

fn label(field: &str) -> &str {
    match field {
        "username" => "Username",
        "password" => "Password",
        other => other,
    }
}

async fn login_form(
    caller: MaybeCaller,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let (csrf, set_cookie) = presession(&headers, client.secure);
    let page = LoginPage {
        nav: Nav::of(caller.0.as_ref()),
        username: String::new(),
        next: safe_next(q.next.as_deref().unwrap_or("/")),
        error: None,
        csrf,
    };
    with_cookie(axum::http::StatusCode::OK, set_cookie, page)
}

async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_pairs(&body);
    let username = field(&form, "username").trim().to_owned();
    let password = field(&form, "password").to_owned();
    let next = safe_next(field(&form, "next"));
    match open_session(&state, client.ip, &username, &password).await {
        Ok((token, _, _)) => signed_in(&state, client, &token, &next),
        Err(e) => {
            let message = match &e {
                ApiError::BadCredentials => "Wrong username or password.".to_owned(),
                ApiError::TooManyAttempts { retry_after_s } => format!(
                    "Too many failed attempts from your address; try again in {retry_after_s} \
                     seconds."
                ),
                other => super::message_for(other),
            };
            let (csrf, set_cookie) = presession(&headers, client.secure);
            let page = LoginPage {
                nav: Nav::default(),
                username,
                next,
                error: Some(message),
                csrf,
            };
            with_retry_after(with_cookie(e.problem().0, set_cookie, page), &e)
        }
    }
}

async fn logout(State(state): State<AppState>, caller: MaybeCaller, client: Client) -> Response {
    if let Some(c) = caller.0 {
        let command = tix_core::Command::EndSession {
            token_hash: c.token_hash.clone(),
        };
        if let Err(e) = state.node.propose(command).await {
            tracing::warn!(error = %e, "logout could not end the session");
        }
    }
    let mut response = see_other("/");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, client.secure));
    response
}
