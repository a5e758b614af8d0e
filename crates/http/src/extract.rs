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
///
/// Integers may be written as whole-number floats (`3.0`, `3e0`): JSON Schema, and so the
/// OpenAPI document, counts them integers. A body that fails only for that is parsed again with
/// them written as integers (the common body never pays for the second pass).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match parse_json_exact(bytes) {
        Err(ApiError::Invalid { field, detail }) => match whole_floats_as_integers(bytes) {
            Some(rewritten) => parse_json_exact(&rewritten),
            None => Err(ApiError::Invalid { field, detail }),
        },
        parsed => parsed,
    }
}

/// The largest magnitude up to which every whole number is exactly a float (2^53).
const WHOLE_FLOAT_MAX: f64 = 9_007_199_254_740_992.0;

/// Returns `bytes` with every number written with a fraction or an exponent whose value is a
/// whole number of at most 2^53 in magnitude rewritten as an integer, or `None` when there is
/// none. Strings are copied untouched.
fn whole_floats_as_integers(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if b == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 1;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            let token = &bytes[start..i];
            match whole_number(token) {
                Some(n) => {
                    out.extend_from_slice(n.to_string().as_bytes());
                    changed = true;
                }
                None => out.extend_from_slice(token),
            }
        } else {
            in_string = b == b'"';
            out.push(b);
            i += 1;
        }
    }
    changed.then_some(out)
}

/// The integer a JSON number token with a fraction or exponent stands for, if it is whole.
fn whole_number(token: &[u8]) -> Option<i64> {
    if !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return None;
    }
    let x: f64 = std::str::from_utf8(token).ok()?.parse().ok()?;
    (x.is_finite() && x.fract() == 0.0 && x.abs() <= WHOLE_FLOAT_MAX).then_some(x as i64)
}

/// Parses JSON as written (see [`parse_json`]).
fn parse_json_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
    /// The caller's newest unexpired hold (its id and expiry, Unix ms), looked up for the
    /// pages only (their "your hold" banner); `None` on the API.
    pub open_hold: Option<(u64, u64)>,
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
                open_hold: None,
            })
        })
        .await
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mut caller = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => authenticate(state, token).await,
            None => None,
        };
        if let Some(c) = caller.as_mut() {
            let now_ms = tix_raft::proposer::now_ms();
            c.open_hold = state
                .node
                .shared
                .read()
                .open_hold_of(c.user_id, now_ms)
                .map(|h| (h.id.0, h.expires_at_ms));
        }
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

/// The API's optional caller: `None` without an `Authorization` header; a bearer token that is
/// not valid (expired, logged out) is 401, never silently anonymous.
pub struct MaybeBearer(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(MaybeBearer(None));
        }
        let token = bearer_token(parts).ok_or(ApiError::Unauthenticated)?;
        let caller = authenticate(state, token)
            .await
            .ok_or(ApiError::Unauthenticated)?;
        Ok(MaybeBearer(Some(caller)))
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

#[cfg(test)]
mod tests {
    use super::{parse_json, whole_floats_as_integers};
    use crate::error::ApiError;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        seat: Option<u32>,
        lat: f64,
        name: String,
    }

    // Whole-number floats parse as integers (JSON Schema's integers); fractions, strings and
    // numbers past 2^53 are left alone, and the first error is kept when nothing changed.
    #[test]
    fn whole_floats_are_integers_and_nothing_else_changes() {
        let body: Body = parse_json(br#"{"seat": 4612.0, "lat": 51.0, "name": "a 1.0 \" 2e0"}"#)
            .expect("whole floats are integers");
        assert_eq!(
            body,
            Body {
                seat: Some(4612),
                lat: 51.0,
                name: "a 1.0 \" 2e0".into()
            }
        );
        let body: Body = parse_json(br#"{"seat": 2.5e1, "lat": -0.5, "name": ""}"#).expect("25");
        assert_eq!(body.seat, Some(25));
        for bad in [
            &br#"{"seat": 4.5, "lat": 0, "name": ""}"#[..],
            br#"{"seat": -1.0, "lat": 0, "name": ""}"#,
            br#"{"seat": 1e300, "lat": 0, "name": ""}"#,
        ] {
            let error = parse_json::<Body>(bad).expect_err("not a u32");
            assert!(
                matches!(&error, ApiError::Invalid { field, .. } if field == "seat"),
                "{error:?}"
            );
        }
        assert_eq!(whole_floats_as_integers(br#"{"a": 3, "b": "3.0"}"#), None);
        assert_eq!(
            whole_floats_as_integers(br#"[3.0, -0.0, 1E2, 0.25]"#).as_deref(),
            Some(&br#"[3, 0, 100, 0.25]"#[..])
        );
    }
}
