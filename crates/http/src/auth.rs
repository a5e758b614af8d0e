//! Accounts and sessions: sign-up, login, logout, the current user, and role changes.
//!
//! Passwords are hashed with argon2id (its defaults meet OWASP's recommendation) off the async
//! threads. A login creates a 256-bit random bearer token; only its SHA-256 is replicated, with an
//! expiry by log time, so logout and expiry work the same on every node. Failed logins slow
//! down the address that fails (and, for an account under attack, every address that fails for
//! it) with an exponential backoff, never the account's owner elsewhere (see
//! [`crate::throttle`]); sign-ups are limited per address. Usernames are unique ignoring case,
//! decided by the core.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tix_core::{Command, Role, UserId, UserRejection};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller, token_hash};
use crate::openapi as api_doc;
use crate::peer::Client;
use crate::throttle::seconds_rounded_up;
use crate::views;

/// Shortest accepted password.
pub const PASSWORD_CHARS_MIN: usize = 8;
/// Longest accepted password (argon2 cost is per byte; bound it).
pub const PASSWORD_CHARS_MAX: usize = 128;
/// The password rule as people read it, shown wherever a password is chosen (a test checks it
/// names [`PASSWORD_CHARS_MIN`] and [`PASSWORD_CHARS_MAX`]).
pub const PASSWORD_RULE: &str =
    "8 to 128 characters; not only digits, not one character repeated, not your username.";
/// Username length bounds.
pub const USERNAME_CHARS_MIN: usize = 3;
/// Username length bounds.
pub const USERNAME_CHARS_MAX: usize = 32;

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/me/email", put(set_my_email))
        .route("/users/{id}/role", put(set_role))
}

/// A new account. Unknown fields are refused (422).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    /// 3 to 32 characters: letters, digits, `_`, `-` and `.`. Must be unused (ignoring case).
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]{3,32}$")]
    #[schema(example = "alice")]
    username: String,
    /// 8 to 128 characters; not all the same character, not all digits, and not the username
    /// (compared ignoring case).
    #[schema(format = Password, min_length = 8, max_length = 128, example = "correct horse battery")]
    #[schema(pattern = r"^(?![0-9]+$)(?!([\s\S])\1*$)[\s\S]{8,128}$")]
    password: String,
    /// `attendee` (the default) or `organizer`. Staff and admin roles can only be granted by an
    /// admin (`PUT /api/v1/users/{id}/role`).
    #[serde(default)]
    #[schema(schema_with = api_doc::signup_role)]
    role: Option<String>,
    /// An email address for order confirmations with PDF tickets and password resets: printable
    /// ASCII, one `@`, no spaces, at most 254 characters. Optional; never shown to others.
    #[serde(default)]
    #[schema(max_length = 254, pattern = "^(?:[!-?A-~]+@[!-?A-~]+)?$")]
    #[schema(example = "alice@example.org")]
    email: Option<String>,
}

/// A new email address for the caller's account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "alice@example.org"}))]
struct EmailBody {
    /// The address (printable ASCII, one `@`, no spaces, at most 254 characters); `null` or an
    /// empty string removes it (the answer then has no `email`).
    #[schema(max_length = 254, pattern = "^(?:[!-?A-~]+@[!-?A-~]+)?$")]
    email: Option<String>,
}

/// Credentials.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    /// The login name.
    #[schema(example = "alice")]
    username: String,
    /// The password.
    #[schema(format = Password, example = "correct horse battery")]
    password: String,
}

/// A new role.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "staff"}))]
struct RoleBody {
    /// The role to grant.
    #[schema(value_type = views::Role)]
    role: String,
}

/// Checks a username: 3 to 32 letters, digits, `_`, `-` or `.`.
pub fn validate_username(username: &str) -> Result<(), ApiError> {
    let n = username.chars().count();
    if !(USERNAME_CHARS_MIN..=USERNAME_CHARS_MAX).contains(&n) {
        return Err(ApiError::invalid(
            "username",
            format!("must be {USERNAME_CHARS_MIN} to {USERNAME_CHARS_MAX} characters"),
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ApiError::invalid(
            "username",
            "may contain only letters, digits, _ - .",
        ));
    }
    Ok(())
}

/// Checks a password: 8 to 128 characters, not all the same character, not all digits.
pub fn validate_password(password: &str, username: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < PASSWORD_CHARS_MIN {
        return Err(ApiError::invalid(
            "password",
            format!("too short: at least {PASSWORD_CHARS_MIN} characters"),
        ));
    }
    if n > PASSWORD_CHARS_MAX {
        return Err(ApiError::invalid(
            "password",
            format!("too long: at most {PASSWORD_CHARS_MAX} characters"),
        ));
    }
    let first = password.chars().next().unwrap_or_default();
    if password.chars().all(|c| c == first) || password.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "password",
            "too weak: mix letters and other characters",
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(ApiError::invalid(
            "password",
            "too weak: must differ from the username",
        ));
    }
    Ok(())
}

/// Parses a role name.
pub fn parse_role(name: &str) -> Option<Role> {
    match name {
        "attendee" => Some(Role::Attendee),
        "organizer" => Some(Role::Organizer),
        "staff" => Some(Role::Staff),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

/// Hashes a password with argon2id on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// Verifies a password against a stored hash on a blocking thread. Without a hash (unknown
/// user) it verifies against a dummy hash and fails, spending the same time as a real check so
/// usernames cannot be probed by timing.
async fn verify_password(password: String, hash: Option<String>) -> bool {
    static DUMMY_HASH: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let dummy = DUMMY_HASH.get_or_init(|| {
            let hash = Argon2::default().hash_password(b"not-a-real-password");
            hash.map(|h| h.to_string()).unwrap_or_default()
        });
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_deref().unwrap_or(dummy))
            .is_ok();
        ok && hash.is_some()
    })
    .await
    .unwrap_or(false)
}

/// Creates an account through the log; returns its id.
pub async fn create_user(
    state: &AppState,
    username: &str,
    password: &str,
    role: Role,
) -> Result<UserId, ApiError> {
    let password_hash = hash_password(password.to_owned()).await?;
    let command = Command::CreateUser {
        username: username.to_owned(),
        password_hash,
        role,
    };
    match state
        .propose_for::<Result<UserId, UserRejection>>(command)
        .await?
    {
        Ok(id) => Ok(id),
        Err(UserRejection::UsernameTaken) => Err(ApiError::UsernameTaken),
        Err(other) => Err(ApiError::Internal(format!(
            "create user refused: {other:?}"
        ))),
    }
}

/// Counts a sign-up attempt from `client`, or refuses it with the truthful wait (429).
pub fn admit_signup(state: &AppState, client: IpAddr) -> Result<(), ApiError> {
    state
        .signup_limiter
        .attempt(client, Instant::now())
        .map_err(|wait| ApiError::TooManySignups {
            retry_after_s: seconds_rounded_up(wait),
        })
}

/// Create an account
///
/// Creates an attendee account, or an organizer account with `"role": "organizer"`. Staff and
/// admin roles are granted by an admin afterwards. It does not log in: call `POST
/// /api/v1/auth/login` next. The password is stored as an argon2id hash.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "accounts", operation_id = "signup",
    request_body(content = SignupBody, description = "The new account.",
        example = json!({"username": "alice", "password": "correct horse battery"})),
    responses(
        (status = 201, description = "Created.", body = views::User),
        (status = 400, response = api_doc::MalformedJson),
        (status = 409, response = api_doc::UsernameTaken),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::SignupInvalid),
        (status = 429, response = api_doc::TooManySignups),
    ))]
async fn signup(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<Response, ApiError> {
    validate_username(&body.username)?;
    validate_password(&body.password, &body.username)?;
    // Self-service accounts are attendees or organizers; staff and admin are granted by an admin.
    let role = match body.role.as_deref() {
        None | Some("attendee") => Role::Attendee,
        Some("organizer") => Role::Organizer,
        Some(_) => {
            return Err(ApiError::invalid(
                "role",
                "must be \"attendee\" or \"organizer\"",
            ));
        }
    };
    let email = crate::notify::validate_email(body.email.as_deref().unwrap_or(""))?;
    admit_signup(&state, client.ip)?;
    let id = create_user(&state, &body.username, &body.password, role).await?;
    if email.is_some() {
        crate::notify::set_email(&state, id, email.clone()).await?;
    }
    let body = account_json(id, &body.username, role, email);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Returns the key failed logins for `username` are counted under: the core's case-folded
/// name, cut to the longest valid username so that invented names cannot grow the table's keys.
fn account_key(username: &str) -> String {
    let cut: String = username.chars().take(USERNAME_CHARS_MAX).collect();
    tix_core::username_key(&cut)
}

/// Verifies credentials from `client` and opens a session; returns the token and its expiry.
/// Refused with 429 (and the real wait) while the throttle makes `client` wait.
pub async fn open_session(
    state: &AppState,
    client: IpAddr,
    username: &str,
    password: &str,
) -> Result<(String, u64, serde_json::Value), ApiError> {
    let account = account_key(username);
    if let Err(wait) = state.login_throttle.check(client, &account, Instant::now()) {
        return Err(ApiError::TooManyAttempts {
            retry_after_s: seconds_rounded_up(wait),
        });
    }
    let found = {
        let s = state.node.shared.read();
        s.user_by_name(username)
            .map(|u| (u.id, u.password_hash.clone(), views::user(u)))
    };
    let hash = found.as_ref().map(|(_, hash, _)| hash.clone());
    let verified = verify_password(password.to_owned(), hash).await;
    let Some((user_id, _, user)) = found.filter(|_| verified) else {
        state
            .login_throttle
            .failed(client, &account, Instant::now());
        return Err(ApiError::BadCredentials);
    };
    state.login_throttle.succeeded(client, &account);
    let token = new_token();
    let expires_at_ms = tix_raft::proposer::now_ms() + state.config.session_ttl_ms;
    let command = Command::CreateSession {
        token_hash: token_hash(&token),
        user_id,
        expires_at_ms,
    };
    state.node.propose(command).await?;
    Ok((token, expires_at_ms, user))
}

/// Returns a new 256-bit random token, hex encoded.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// Log in
///
/// Checks the username and password and opens a session; the answer carries the bearer token
/// for `Authorization: Bearer <token>`. Sessions last 24 hours by default. Repeated failed
/// logins are answered 429 for a while (`Retry-After` says how long).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", operation_id = "login",
    request_body(content = LoginBody, description = "The credentials.",
        example = json!({"username": "alice", "password": "correct horse battery"})),
    responses(
        (status = 200, description = "Logged in.", body = views::Session),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::BadCredentials),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::LoginInvalid),
        (status = 429, response = api_doc::TooManyAttempts),
    ))]
async fn login(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (token, expires_at_ms, user) =
        open_session(&state, client.ip, &body.username, &body.password).await?;
    Ok(Json(json!({
        "token": token,
        "expires_at": views::rfc3339(expires_at_ms as i64),
        "user": user,
    })))
}

/// Log out
///
/// Ends the session of the token presented, on every node. No request body.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", operation_id = "logout",
    security(("bearerAuth" = [])),
    responses(
        (status = 204, description = "Logged out; the token no longer works."),
        (status = 401, response = api_doc::Unauthenticated),
    ))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    state
        .node
        .propose(Command::EndSession {
            token_hash: caller.token_hash,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The current account
///
/// Returns the account the token belongs to. **Consistency:** a local read of this node's
/// applied state; it may lag the leader by an entry or two.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", operation_id = "me",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The account.", body = views::User),
        (status = 401, response = api_doc::Unauthenticated),
    ))]
async fn me(State(state): State<AppState>, caller: Caller) -> Json<serde_json::Value> {
    let email = state
        .node
        .shared
        .read()
        .account_mail()
        .email(caller.user_id)
        .map(str::to_owned);
    Json(account_json(
        caller.user_id,
        &caller.username,
        caller.role,
        email,
    ))
}

/// An account as its owner sees it: `views::User`, with the address only when there is one.
fn account_json(
    id: UserId,
    username: &str,
    role: Role,
    email: Option<String>,
) -> serde_json::Value {
    let mut account = json!({"id": id, "username": username, "role": views::role_name(role)});
    if let Some(email) = email {
        account["email"] = json!(email);
    }
    account
}

/// Set the current account's email address
///
/// Sets (or, with `null` or `""`, removes) the address order confirmations with PDF tickets,
/// cancellation notices and password reset links are sent to.
#[utoipa::path(put, path = "/api/v1/me/email", tag = "accounts", operation_id = "setMyEmail",
    security(("bearerAuth" = [])),
    request_body(content = EmailBody, description = "The new address."),
    responses(
        (status = 200, description = "The account with its address.", body = views::User,
            example = json!({"id": 5, "username": "alice", "role": "attendee",
                "email": "alice@example.org"})),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::EmailInvalid),
    ))]
async fn set_my_email(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let email = crate::notify::validate_email(body.email.as_deref().unwrap_or(""))?;
    crate::notify::set_email(&state, caller.user_id, email.clone()).await?;
    Ok(Json(account_json(
        caller.user_id,
        &caller.username,
        caller.role,
        email,
    )))
}

/// Changes an account's role for an admin; shared with the admin's users page. The only admin
/// cannot be demoted (the core decides: `LastAdmin`).
pub async fn change_role(
    state: &AppState,
    caller: &Caller,
    user_id: UserId,
    role: &str,
) -> Result<(), ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::Forbidden("only an admin may change roles"));
    }
    let role = parse_role(role)
        .ok_or_else(|| ApiError::invalid("role", "must be attendee, organizer, staff or admin"))?;
    let command = Command::SetRole { user_id, role };
    match state
        .propose_for::<Result<UserId, UserRejection>>(command)
        .await?
    {
        Ok(_) => Ok(()),
        Err(UserRejection::LastAdmin) => Err(ApiError::LastAdmin),
        Err(_) => Err(ApiError::NotFound("user")),
    }
}

/// Change an account's role (admins)
///
/// Grants any role to any account, including `staff` and `admin`. Admins only. The only admin
/// account cannot be demoted (409 `last_admin`).
#[utoipa::path(put, path = "/api/v1/users/{id}/role", tag = "accounts", operation_id = "setRole",
    security(("bearerAuth" = [])),
    params(api_doc::UserIdParam),
    request_body(content = RoleBody, description = "The new role."),
    responses(
        (status = 200, description = "The account with its new role.", body = views::User,
            example = json!({"id": 5, "username": "alice", "role": "staff"})),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::AdminOnly),
        (status = 404, response = api_doc::UserNotFound),
        (status = 409, response = api_doc::LastAdmin),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::RoleInvalid),
    ))]
async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    change_role(&state, &caller, UserId(id), &body.role).await?;
    let s = state.node.shared.read();
    let user = s.user(UserId(id)).ok_or(ApiError::NotFound("user"))?;
    Ok(Json(views::user(user)))
}

#[cfg(test)]
mod password_rule_tests {
    use super::*;

    /// The documented address pattern is the one the handlers use.
    #[test]
    fn the_documented_email_pattern_is_the_checked_one() {
        let doc: serde_json::Value =
            serde_json::from_str(&crate::openapi::document_json()).expect("JSON");
        let pattern = &doc["components"]["schemas"]["EmailBody"]["properties"]["email"]["pattern"];
        assert_eq!(pattern, crate::notify::EMAIL_PATTERN);
    }

    #[test]
    fn the_shown_rule_is_the_checked_one() {
        let bounds = format!("{PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters");
        assert!(PASSWORD_RULE.starts_with(&bounds), "{PASSWORD_RULE}");
        assert!(
            validate_password("1234567", "someone").is_err(),
            "below the minimum"
        );
        assert!(
            validate_password("12345678", "someone").is_err(),
            "only digits"
        );
        assert!(
            validate_password("aaaaaaaa", "someone").is_err(),
            "one character"
        );
        assert!(
            validate_password("someone1", "someone1").is_err(),
            "the username"
        );
        assert!(validate_password("tickets-4-all", "someone").is_ok());
    }
}
