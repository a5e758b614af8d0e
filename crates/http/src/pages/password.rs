//! "Forgot your password?": the form that asks for a reset link (`/password/forgot`: a username
//! or an email address; the answer is the same whether or not the account exists), and the page
//! the link opens (`/password/reset?token=…`), which sets a new password under the sign-up rule,
//! shown and checked the same way, then sends the user to log in. The token works once and for
//! [`crate::notify::RESET_TTL_MS`]; [`crate::notify`] does the work.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::account::{check_password, with_cookie};
use super::form::{FormErrors, Problem};
use super::{Nav, field, form_pairs};
use crate::AppState;
use crate::csrf::presession;
use crate::extract::MaybeCaller;
use crate::peer::Client;
use crate::throttle::seconds_rounded_up;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/password/forgot", get(forgot_form).post(forgot))
        .route("/password/reset", get(reset_form).post(reset))
}

/// The longest username or address the forgot form takes.
const WHO_CHARS_MAX: usize = 254;

#[derive(Template, WebTemplate)]
#[template(path = "pages/forgot.html")]
struct ForgotPage {
    nav: Nav,
    who: String,
    errors: FormErrors,
    csrf: String,
    /// After a request: the same sentence whether or not the account exists.
    sent: bool,
}

async fn forgot_form(caller: MaybeCaller, client: Client, headers: HeaderMap) -> Response {
    let (csrf, set_cookie) = presession(&headers, client.secure);
    let page = ForgotPage {
        nav: Nav::of(caller.0.as_ref()),
        who: String::new(),
        errors: FormErrors::new(),
        csrf,
        sent: false,
    };
    with_cookie(StatusCode::OK, set_cookie, page)
}

async fn forgot(
    State(state): State<AppState>,
    caller: MaybeCaller,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_pairs(&body);
    let who = field(&form, "who").trim().to_owned();
    let mut errors = FormErrors::new();
    if who.is_empty() {
        errors.add("who", Problem::Missing);
    } else if who.chars().count() > WHO_CHARS_MAX {
        errors.add("who", Problem::TooLong { max: WHO_CHARS_MAX });
    } else if who.chars().any(char::is_control) {
        errors.add("who", Problem::ControlCharacters);
    }
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    let mut sent = false;
    if errors.is_empty() {
        match crate::notify::request_reset(&state, client.ip, &who) {
            Ok(()) => {
                sent = true;
                status = StatusCode::OK;
            }
            Err(wait) => {
                status = StatusCode::TOO_MANY_REQUESTS;
                errors.add_form(format!(
                    "Too many reset requests from your address; try again in {} seconds.",
                    seconds_rounded_up(wait)
                ));
            }
        }
    }
    let (csrf, set_cookie) = presession(&headers, client.secure);
    let page = ForgotPage {
        nav: Nav::of(caller.0.as_ref()),
        who: if sent { String::new() } else { who },
        errors,
        csrf,
        sent,
    };
    with_cookie(status, set_cookie, page)
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/reset.html")]
struct ResetPage {
    nav: Nav,
    /// The token from the link, posted back with the form.
    token: String,
    /// The account the token resets, if it is open.
    username: Option<String>,
    errors: FormErrors,
    csrf: String,
    password_rule: &'static str,
    /// The password was changed.
    done: bool,
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// Whether `token` looks like one of ours (64 hex digits): anything else is not looked up.
fn token_shaped(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn reset_form(
    State(state): State<AppState>,
    caller: MaybeCaller,
    client: Client,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let found = token_shaped(&q.token)
        .then(|| crate::notify::reset_account(&state, &q.token))
        .flatten();
    let status = if found.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let (csrf, set_cookie) = presession(&headers, client.secure);
    let page = ResetPage {
        nav: Nav::of(caller.0.as_ref()),
        token: if found.is_some() {
            q.token
        } else {
            String::new()
        },
        username: found.map(|(_, name)| name),
        errors: FormErrors::new(),
        csrf,
        password_rule: crate::auth::PASSWORD_RULE,
        done: false,
    };
    with_cookie(status, set_cookie, page)
}

async fn reset(
    State(state): State<AppState>,
    caller: MaybeCaller,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_pairs(&body);
    let token = field(&form, "token").to_owned();
    let password = field(&form, "password").to_owned();
    let confirm = field(&form, "confirm").to_owned();
    let found = token_shaped(&token)
        .then(|| crate::notify::reset_account(&state, &token))
        .flatten();
    let mut errors = FormErrors::new();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    let mut done = false;
    if let Some((_, username)) = &found {
        errors.check("password", check_password(&password, username));
        if errors.is_empty() && password != confirm {
            errors.add("confirm", Problem::PasswordsDiffer);
        }
        if errors.is_empty() {
            let checked = crate::auth::validate_password(&password, username);
            let changed = match checked {
                Ok(()) => crate::notify::reset_password(&state, &token, &password).await,
                Err(e) => Err(e),
            };
            match changed {
                Ok(true) => {
                    done = true;
                    status = StatusCode::OK;
                }
                Ok(false) => status = StatusCode::NOT_FOUND,
                Err(e) => {
                    status = e.problem().0;
                    errors.api(&e, |f| (f == "password").then_some("password"));
                }
            }
        }
    } else {
        status = StatusCode::NOT_FOUND;
    }
    // A used or expired link shows the "link no longer works" page, never the form again.
    let open = found.is_some() && (done || status != StatusCode::NOT_FOUND);
    let (csrf, set_cookie) = presession(&headers, client.secure);
    let page = ResetPage {
        nav: Nav::of(caller.0.as_ref()),
        token: if open && !done { token } else { String::new() },
        username: found.filter(|_| open).map(|(_, name)| name),
        errors,
        csrf,
        password_rule: crate::auth::PASSWORD_RULE,
        done,
    };
    with_cookie(status, set_cookie, page)
}
