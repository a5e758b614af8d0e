//! Our own extractors, so that bad requests get our problem+json format: [`ApiJson`] for bodies
//! (with the JSON path of the offending field) and [`Caller`] / [`MaybeCaller`] for the bearer
//! token or session cookie.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tix_core::{Role, UserId};

use crate::AppState;
use crate::error::ApiError;

/// The name of the cookie that carries the session token for the pages.
pub const SESSION_COOKIE: &str = "tix_session";

/// A JSON body deserialized with the path of any bad field reported.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, telling syntax errors (400) from fields of the wrong shape (422, with the path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => value,
        Err(e) => {
            let inner = e.inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::MalformedJson(inner.to_string()));
            }
            let path = e.path().to_string();
            let message = inner.to_string();
            let field = match (path.as_str(), missing_field(&message)) {
                (".", Some(name)) => name,
                (_, Some(name)) => format!("{path}.{name}"),
                (_, None) => path,
            };
            return Err(ApiError::Invalid {
                field,
                detail: message,
            });
        }
    };
    de.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// Extracts the name from serde's "missing field `name` at ..." message.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Returns the hex SHA-256 of a token: sessions are stored under it, never under the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated user making the request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Their id.
    pub user_id: UserId,
    /// Their login name.
    pub username: String,
    /// Their role.
    pub role: Role,
    /// The hash of the token they presented (to log out).
    pub token_hash: String,
}

impl Caller {
    /// Returns true for an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Returns true for anyone who may create events.
    pub fn can_organize(&self) -> bool {
        matches!(self.role, Role::Organizer | Role::Admin)
    }
}

/// The caller, if a valid token was presented.
pub struct MaybeCaller(pub Option<Caller>);

/// Finds the token in `Authorization: Bearer` (the scheme is case-insensitive, RFC 9110) or
/// the session cookie.
fn token_of(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    let cookies = parts.headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// Looks a token up in the applied state (falling back to a linearizable read when this node
/// has not seen the session yet, e.g. a login through another node a moment ago).
pub async fn authenticate(state: &AppState, token: &str) -> Option<Caller> {
    let hash = token_hash(token);
    let now_ms = tix_raft::proposer::now_ms();
    state
        .read_fresh(|s| {
            let session = s.session(&hash, now_ms)?;
            let user = s.user(session.user_id)?;
            Some(Caller {
                user_id: user.id,
                username: user.username.clone(),
                role: user.role,
                token_hash: hash.clone(),
            })
        })
        .await
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = match token_of(parts) {
            Some(token) => authenticate(state, token).await,
            None => None,
        };
        Ok(MaybeCaller(caller))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = token_of(parts).ok_or(ApiError::Unauthenticated)?;
        authenticate(state, token)
            .await
            .ok_or(ApiError::Unauthenticated)
    }
}

/// A numeric id from the path; anything else is a problem+json 404 (no such resource).
pub struct ApiPath(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<u64>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(ApiPath(id)),
            Err(_) => Err(ApiError::NotFound("resource")),
        }
    }
}
