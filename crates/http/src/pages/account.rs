//! Sign up, log in, log out. The forms post to the same account functions as the API; a
//! session is the API's bearer token, carried in the `tix_session` cookie. The login and
//! sign-up forms carry the pre-session CSRF token (double-submit, [`crate::csrf`]), and are
//! throttled per client address like the API's. Sign-up checks the name (free or taken) and
//! the password together and shows both problems at once, in the user's words
//! ([`super::form`]); the account functions keep the last word.

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

use super::form::{FormErrors, Problem};
use super::{Nav, field, form_pairs, see_other, session_cookie};
use crate::AppState;
use crate::auth::{
    PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN, USERNAME_CHARS_MAX, USERNAME_CHARS_MIN, admit_signup,
    create_user, open_session, validate_password, validate_username,
};
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
    /// The address typed (optional).
    email: String,
    organizer: bool,
    /// Every bad field of the last submission.
    errors: FormErrors,
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
    /// What was wrong with the last submission.
    errors: FormErrors,
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
pub(super) fn with_cookie(
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
        email: String::new(),
        organizer: false,
        errors: FormErrors::new(),
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
    let email = field(&form, "email").trim().to_owned();
    let organizer = field(&form, "organizer") == "on";
    let next = safe_next(field(&form, "next"));
    // Every field first, in the user's words; the name is free if no account has it yet (the
    // log decides a race: `UsernameTaken` below).
    let mut errors = FormErrors::new();
    let taken = errors
        .check("username", check_username(&username))
        .is_some()
        && state.node.shared.read().user_by_name(&username).is_some();
    if taken {
        errors.add("username", Problem::UsernameTaken);
    }
    errors.check("password", check_password(&password, &username));
    errors.check("email", check_email(&email));
    let result = async {
        if !errors.is_empty() {
            return Err(None);
        }
        let created = async {
            validate_username(&username)?;
            validate_password(&password, &username)?;
            let address = crate::notify::validate_email(&email)?;
            let role = if organizer {
                Role::Organizer
            } else {
                Role::Attendee
            };
            admit_signup(&state, client.ip)?;
            let id = create_user(&state, &username, &password, role).await?;
            if address.is_some() {
                crate::notify::set_email(&state, id, address).await?;
            }
            open_session(&state, client.ip, &username, &password).await
        };
        created.await.map_err(Some)
    }
    .await;
    match result {
        Ok((token, _, _)) => signed_in(&state, client, &token, &next),
        Err(e) => {
            // A name taken is a conflict with what exists (409, as the API answers); anything
            // typed wrong makes it 422.
            let status = match &e {
                None if taken && errors.len() == 1 => axum::http::StatusCode::CONFLICT,
                None => axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                Some(e) => e.problem().0,
            };
            match &e {
                None => {}
                Some(ApiError::UsernameTaken) => errors.add("username", Problem::UsernameTaken),
                Some(ApiError::TooManySignups { retry_after_s }) => errors.add_form(format!(
                    "Too many new accounts from your address; try again in {retry_after_s} seconds."
                )),
                Some(other) => errors.api(other, |f| match f {
                    "username" => Some("username"),
                    "password" => Some("password"),
                    "email" => Some("email"),
                    _ => None,
                }),
            }
            let (csrf, set_cookie) = presession(&headers, client.secure);
            let page = SignupPage {
                nav: Nav::default(),
                username,
                email,
                organizer,
                errors,
                csrf,
                password_rule: crate::auth::PASSWORD_RULE,
                next,
            };
            let response = with_cookie(status, set_cookie, page);
            match &e {
                Some(e) => with_retry_after(response, e),
                None => response,
            }
        }
    }
}

/// Checks a username as [`validate_username`] does, in the user's words.
fn check_username(username: &str) -> Result<(), Problem> {
    let n = username.chars().count();
    if n == 0 {
        return Err(Problem::Missing);
    }
    if n < USERNAME_CHARS_MIN {
        return Err(Problem::TooShort {
            min: USERNAME_CHARS_MIN,
        });
    }
    if n > USERNAME_CHARS_MAX {
        return Err(Problem::TooLong {
            max: USERNAME_CHARS_MAX,
        });
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(Problem::UsernameCharacters);
    }
    Ok(())
}

/// Checks an optional email address as [`crate::notify::validate_email`] does, in the user's
/// words (empty is fine: no address).
pub(super) fn check_email(email: &str) -> Result<(), Problem> {
    let email = email.trim();
    if email.len() > tix_core::EMAIL_BYTES_MAX {
        return Err(Problem::TooLong {
            max: tix_core::EMAIL_BYTES_MAX,
        });
    }
    let printable = email.bytes().all(|b| b.is_ascii_graphic());
    if !email.is_empty() && (!printable || !tix_core::email_is_valid(email)) {
        return Err(Problem::EmailShape);
    }
    Ok(())
}

/// Checks a new password as [`validate_password`] does, in the user's words.
pub(super) fn check_password(password: &str, username: &str) -> Result<(), Problem> {
    let n = password.chars().count();
    if n == 0 {
        return Err(Problem::Missing);
    }
    if n < PASSWORD_CHARS_MIN {
        return Err(Problem::TooShort {
            min: PASSWORD_CHARS_MIN,
        });
    }
    if n > PASSWORD_CHARS_MAX {
        return Err(Problem::TooLong {
            max: PASSWORD_CHARS_MAX,
        });
    }
    let first = password.chars().next().unwrap_or_default();
    if password.chars().all(|c| c == first) || password.chars().all(|c| c.is_ascii_digit()) {
        return Err(Problem::PasswordWeak);
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(Problem::PasswordIsUsername);
    }
    Ok(())
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
        errors: FormErrors::new(),
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
    let mut errors = FormErrors::new();
    if username.is_empty() {
        errors.add("username", Problem::Missing);
    }
    if password.is_empty() {
        errors.add("password", Problem::Missing);
    }
    let result = if errors.is_empty() {
        open_session(&state, client.ip, &username, &password)
            .await
            .map_err(Some)
    } else {
        Err(None)
    };
    match result {
        Ok((token, _, _)) => signed_in(&state, client, &token, &next),
        Err(e) => {
            match &e {
                None => {}
                Some(ApiError::BadCredentials) => errors.add_form(
                    "Wrong username or password. Check both and try again; passwords are \
                     case-sensitive.",
                ),
                Some(ApiError::TooManyAttempts { retry_after_s }) => errors.add_form(format!(
                    "Too many failed attempts from your address; try again in {retry_after_s} \
                     seconds."
                )),
                Some(other) => errors.api(other, |_| None),
            }
            let status = match &e {
                None => axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                Some(e) => e.problem().0,
            };
            let (csrf, set_cookie) = presession(&headers, client.secure);
            let page = LoginPage {
                nav: Nav::default(),
                username,
                next,
                errors,
                csrf,
            };
            let response = with_cookie(status, set_cookie, page);
            match &e {
                Some(e) => with_retry_after(response, e),
                None => response,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    // The page's checks refuse what `auth`'s validators refuse, each limit from both sides.
    #[test]
    fn checks_names_and_passwords_like_the_api() {
        let names = [
            "",
            "ab",
            "abc",
            &"a".repeat(32),
            &"a".repeat(33),
            "bad name",
            "ok.name-1",
        ];
        for name in names {
            assert_eq!(
                check_username(name).is_ok(),
                validate_username(name).is_ok(),
                "{name:?}"
            );
        }
        let passwords = [
            "",
            "short",
            "abcdefgh",
            "1234567890",
            "aaaaaaaaa",
            "carolcarol",
            &"x1".repeat(64),
            &"x1".repeat(65),
        ];
        for password in passwords {
            assert_eq!(
                check_password(password, "carolcarol").is_ok(),
                validate_password(password, "carolcarol").is_ok(),
                "{password:?}"
            );
        }
        assert_eq!(
            check_password("short", "carol"),
            Err(Problem::TooShort { min: 8 })
        );
        assert_eq!(check_username("ab"), Err(Problem::TooShort { min: 3 }));
        let longest = format!("{}@example.org", "a".repeat(tix_core::EMAIL_BYTES_MAX - 12));
        let addresses = [
            "", " ", " a@b ", "a@b", "ab", "a@b@c", "a b@c.d", "a\u{7}@b", "zoë@x.y", &longest,
        ];
        for email in addresses
            .iter()
            .copied()
            .chain([format!("a{longest}").as_str()])
        {
            assert_eq!(
                check_email(email).is_ok(),
                crate::notify::validate_email(email.trim()).is_ok(),
                "{email:?} (the page trims what was typed)"
            );
        }
    }
}
