//! Our own extractors, so that bad requests get our problem+json format: [`ApiJson`] for bodies
//! (`application/json` only, with the JSON path of the offending field), [`Caller`] for the
//! API's bearer token and [`MaybeCaller`] for the pages' session cookie.
//!
//! The API never accepts the cookie and the pages never accept a bearer header: a browser
//! attaches the cookie to any request, also one another site makes it send, so the cookie
//! authorizes only forms, which carry a CSRF token (see [`crate::csrf`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
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
        if !req.headers().get(header::CONTENT_TYPE).is_some_and(is_json) {
            return Err(ApiError::UnsupportedMediaType);
        }
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

/// True when a `Content-Type` is `application/json` (any parameters, any case).
pub fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(value) = content_type.to_str() else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/json")
}

/// Returns the value of the cookie `name`, from any `Cookie` header (HTTP/2 may send several).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
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
    /// The CSRF token of this session, for the pages' forms ([`crate::csrf::session_token`]).
    pub csrf_token: String,
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

/// The pages' caller: the session in the `tix_session` cookie, if it is valid.
pub struct MaybeCaller(pub Option<Caller>);

/// Finds the token in `Authorization: Bearer` (the scheme is case-insensitive, RFC 9110).
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
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
                csrf_token: crate::csrf::session_token(token),
            })
        })
        .await
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => authenticate(state, token).await,
            None => None,
        };
        Ok(MaybeCaller(caller))
    }
}

/// The API's caller: `Authorization: Bearer <token>` only (a cookie is ignored: 401).
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthenticated)?;
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
