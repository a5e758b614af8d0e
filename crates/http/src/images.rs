//! Event images at the edge: upload (`PUT /events/{id}/image`, the raw bytes as the body),
//! removal (`DELETE`) and serving (`GET`, public, cacheable), and [`set_image`], which the
//! event form's upload shares.
//!
//! The type is read from the bytes ([`tix_core::inspect_image`]: PNG, JPEG, WebP by their magic
//! bytes; SVG refused, it can carry script), never from the client's `Content-Type`, which only
//! has to be an image type or `application/octet-stream`. Refusals name the problem:
//! 413 `image_too_large`, 415 `unsupported_image_type`/`svg_refused`, 422 otherwise
//! (`error.rs`). The body is read here with the image limit ([`UPLOAD_BYTES_MAX`]), not the
//! global request body limit, and at most [`UPLOADS_AT_ONCE_MAX`] uploads are proposed at once
//! per node, so one log entry carries few images.
//!
//! Serving: the descriptor comes from the hot state (no disk read for a `304 Not Modified`), the
//! bytes from history (redb), read under the same applied index. The `ETag` is the image's
//! SHA-256; `image_url` carries a version (`?v=`, its first 16 hex digits), so a URL with the
//! current version is cached for a year as immutable and one without (or with an old version)
//! for [`CACHE_MAX_AGE_S`]. Reads are local (this node's applied state); an event or image not
//! found locally is looked up again after a linearizable read.

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tix_core::{
    Command, EVENT_IMAGE_BYTES_MAX, EventId, IMAGE_ALT_CHARS_MAX, ImageProblem, ImageRejection,
    ImageUpload, Rejection, UserId,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, Caller};
use crate::openapi as api_doc;
use crate::{text, views};

/// The largest upload body read, in bytes: the image limit itself.
pub const UPLOAD_BYTES_MAX: usize = EVENT_IMAGE_BYTES_MAX;
/// Image uploads one node proposes at once; more wait for a moment and are answered 503.
pub const UPLOADS_AT_ONCE_MAX: usize = 2;
/// How long a client may cache an image fetched without its current version, in seconds.
pub const CACHE_MAX_AGE_S: u64 = 300;
/// `Cache-Control` of an image fetched with its current version: it never changes.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The content types an upload may declare; the bytes decide the type.
const UPLOAD_TYPES: [&str; 4] = [
    "image/png",
    "image/jpeg",
    "image/webp",
    "application/octet-stream",
];

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/events/{id}/image",
        get(get_image).put(put_image).delete(delete_image),
    )
}

/// The image's bytes as a request body (for the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ImageBytes(Vec<u8>);

/// Query of an upload.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// What the image shows, for people who cannot see it: at most 300 characters, no control
    /// or text-direction characters. Omitted or empty: pages use the event's name.
    #[param(
        max_length = 300,
        example = "The string quartet on the Old Hall's stage"
    )]
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]*$")]
    pub alt: Option<String>,
}

/// Query of an image fetch.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// The version from `image_url`: with the current one the answer may be cached for good;
    /// any other value (or none) still gets the current image, cached briefly.
    #[param(example = "9f86d081884c7d65")]
    pub v: Option<String>,
}

/// Checks an upload's declared `Content-Type`: an image type or `application/octet-stream`
/// (parameters ignored); SVG is named as such.
pub fn check_declared_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match declared.as_deref() {
        Some("image/svg+xml") => Err(ApiError::Image(ImageProblem::Svg)),
        Some(t) if UPLOAD_TYPES.contains(&t) => Ok(()),
        _ => Err(ApiError::ImageContentType),
    }
}

/// Checks the alt text the way the other texts are checked: trimmed, at most
/// [`IMAGE_ALT_CHARS_MAX`] characters, no control or text-direction characters.
pub fn validate_alt(alt: &str) -> Result<String, ApiError> {
    let alt = alt.trim();
    text::check_text("alt", alt, false)?;
    let chars = alt.chars().count();
    if chars > IMAGE_ALT_CHARS_MAX {
        return Err(ApiError::invalid(
            "alt",
            format!("at most {IMAGE_ALT_CHARS_MAX} characters (this one has {chars})"),
        ));
    }
    Ok(alt.to_owned())
}

/// Who may change an event's image: its organizer or an admin. Answers before a body is read
/// (the core decides it again through the log); an event not found locally is looked up again
/// after a linearizable read.
async fn check_owner(state: &AppState, caller: &Caller, event_id: EventId) -> Result<(), ApiError> {
    let organizer = state
        .read_fresh(|s| s.event(event_id).map(|e| e.organizer))
        .await;
    let organizer = organizer.ok_or(ApiError::NotFound("event"))?;
    if !(caller.is_admin() || caller.user_id == organizer) {
        return Err(ApiError::Forbidden(
            "only the event's organizer or an admin may change its image",
        ));
    }
    Ok(())
}

/// Stores (`Some`) or removes (`None`) an event's image through the log; the bytes are checked
/// here first (the core checks them again). Shared with the event form.
pub async fn set_image(
    state: &AppState,
    event_id: EventId,
    by: UserId,
    image: Option<ImageUpload>,
) -> Result<(), ApiError> {
    if let Some(upload) = &image {
        tix_core::inspect_image(&upload.bytes).map_err(ApiError::Image)?;
    }
    let _permit = match image {
        Some(_) => Some(state.image_uploads.try_acquire().map_err(|_| {
            ApiError::Unavailable("too many images are being uploaded at once".into())
        })?),
        None => None,
    };
    let command = Command::SetEventImage {
        event_id,
        by,
        image,
    };
    match state
        .propose_for::<Result<(), ImageRejection>>(command)
        .await?
    {
        Ok(()) => Ok(()),
        Err(ImageRejection::UnknownEvent) => Err(ApiError::NotFound("event")),
        Err(ImageRejection::NotYourEvent) => Err(ApiError::Forbidden(
            "only the event's organizer or an admin may change its image",
        )),
        Err(ImageRejection::Cancelled) => Err(Rejection::EventCancelled.into()),
        Err(ImageRejection::Bad(problem)) => Err(ApiError::Image(problem)),
        Err(ImageRejection::BadAlt) => Err(ApiError::invalid(
            "alt",
            format!("at most {IMAGE_ALT_CHARS_MAX} characters, no control characters"),
        )),
    }
}

/// Reads an upload's body up to the image limit: over it (by `Content-Length`, or while
/// reading) is 413 `image_too_large` before anything else is done with it.
async fn read_upload(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::Image(ImageProblem::TooLarge {
            bytes_max: UPLOAD_BYTES_MAX as u32,
        })
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > UPLOAD_BYTES_MAX as u64) {
        return Err(too_large());
    }
    // A body that stops arriving is answered 408 by `ops::problem_for_bare_errors`, whatever
    // this says; a failure here is otherwise the size limit.
    match axum::body::to_bytes(body, UPLOAD_BYTES_MAX).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(_) => Err(too_large()),
    }
}

/// Set an event's image (its organizer, admins)
///
/// Stores the request body as the event's image, replacing any earlier one. Send the file's
/// bytes as they are (not JSON, not a form) with `Content-Type` `image/png`, `image/jpeg`,
/// `image/webp` or `application/octet-stream`: the format is read from the bytes themselves.
/// PNG, JPEG and WebP are accepted, still images only, at most 512 KiB, 8,192 pixels a side
/// and 16 megapixels; SVG is refused (it can carry script), and so is anything else. The
/// optional `alt` parameter describes the image for people who cannot see it. Answers the
/// image's description with its new `url`.
#[utoipa::path(put, path = "/api/v1/events/{id}/image", tag = "events",
    operation_id = "setEventImage",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam, UploadQuery),
    request_body(description = "The image file's bytes.",
        content((ImageBytes = "image/png"), (ImageBytes = "image/jpeg"),
            (ImageBytes = "image/webp"), (ImageBytes = "application/octet-stream"))),
    responses(
        (status = 200, description = "Stored; the event now reads with this image.",
            body = views::EventImage),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::ImageOwnerOnly),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::ImageEventCancelled),
        (status = 413, response = api_doc::ImageTooLarge),
        (status = 415, response = api_doc::ImageUnsupportedType),
        (status = 422, response = api_doc::ImageInvalid),
    ))]
async fn put_image(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let event_id = EventId(id);
    check_owner(&state, &caller, event_id).await?;
    let alt = validate_alt(query.alt.as_deref().unwrap_or(""))?;
    check_declared_type(&headers)?;
    let bytes = read_upload(&headers, body).await?;
    set_image(
        &state,
        event_id,
        caller.user_id,
        Some(ImageUpload { bytes, alt }),
    )
    .await?;
    let s = state.node.shared.read();
    let image = s
        .event_image(event_id)
        .ok_or_else(|| ApiError::Internal("stored image missing".into()))?;
    Ok(axum::Json(views::event_image(id, image)).into_response())
}

/// Remove an event's image (its organizer, admins)
///
/// Removes the event's image; an event without one is left as it is (also 204).
#[utoipa::path(delete, path = "/api/v1/events/{id}/image", tag = "events",
    operation_id = "removeEventImage",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam),
    responses(
        (status = 204, description = "The event has no image now."),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::ImageOwnerOnly),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::ImageEventCancelled),
    ))]
async fn delete_image(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    let event_id = EventId(id);
    check_owner(&state, &caller, event_id).await?;
    set_image(&state, event_id, caller.user_id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether an `If-None-Match` header names `etag` (or is `*`); weak tags compare by value.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let Some(value) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag == etag
    })
}

/// An event's image
///
/// Returns the image's bytes with its `Content-Type` (read from the bytes when it was
/// uploaded), a strong `ETag` (the SHA-256 in quotes: send it back as `If-None-Match` for a
/// `304 Not Modified`) and `Cache-Control: public`: for a year (`immutable`) when `v` is the
/// image's current version, as in the event's `image_url`, else for 5 minutes. Public.
/// **Consistency:** a local read of this node's applied state.
#[utoipa::path(get, path = "/api/v1/events/{id}/image", tag = "events",
    operation_id = "getEventImage",
    params(api_doc::EventIdParam, ImageQuery,
        ("If-None-Match" = Option<String>, Header,
            description = "An `ETag` you have: answered 304 while it is still the image's.")),
    responses(
        (status = 200, description = "The image.",
            content(("image/png"), ("image/jpeg"), ("image/webp")),
            headers(
                ("ETag" = String, description = "The SHA-256 of the image, hex, in quotes."),
                ("Cache-Control" = String,
                    description = "`public, max-age=31536000, immutable` with the current `v`; `public, max-age=300` otherwise."),
            )),
        (status = 304, description = "Not modified: your copy (`If-None-Match`) is current.",
            headers(
                ("ETag" = String, description = "The SHA-256 of the image, hex, in quotes."),
                ("Cache-Control" = String, description = "As for 200."),
            )),
        (status = 404, response = api_doc::ImageNotFound),
    ))]
async fn get_image(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    query: Result<Query<ImageQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The version only chooses how long the answer is cached: a query that does not parse
    // still gets the image.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let event_id = EventId(id);
    let found = state
        .read_fresh(|s| s.event(event_id).map(|_| s.event_image(event_id).cloned()))
        .await;
    let image = found
        .ok_or(ApiError::NotFound("event"))?
        .ok_or(ApiError::NotFound("image"))?;
    let etag = format!("\"{}\"", hex::encode(image.sha256));
    let current = query.v.as_deref() == Some(&hex::encode(&image.sha256[..8]));
    let cache = if current {
        CACHE_IMMUTABLE.to_owned()
    } else {
        format!("public, max-age={CACHE_MAX_AGE_S}")
    };
    let mut cache_headers = HeaderMap::new();
    cache_headers.insert(
        ETAG,
        HeaderValue::from_str(&etag).expect("hex is a header value"),
    );
    cache_headers.insert(CACHE_CONTROL, HeaderValue::from_str(&cache).expect("ASCII"));
    if none_match(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let bytes = {
        // The state first, then history: both at the same applied index.
        let s = state.node.shared.read();
        let history = state.node.shared.history()?;
        let same = s.event_image(event_id).map(|i| i.sha256) == Some(image.sha256);
        drop(s);
        match history.event_image(event_id) {
            Some(bytes) if same => bytes,
            // Replaced or removed meanwhile: the caller asks again and gets the new one.
            _ => {
                return Err(ApiError::Unavailable(
                    "the image changed while it was read; ask again".into(),
                ));
            }
        }
    };
    cache_headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(image.format.content_type()),
    );
    Ok((StatusCode::OK, cache_headers, bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    // If-None-Match: the tag itself, one of a list, weak or `*` match; another tag does not.
    #[test]
    fn if_none_match_compares_tags() {
        let etag = "\"abc\"";
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(IF_NONE_MATCH, HeaderValue::from_static(v));
            h
        };
        assert!(none_match(&with("\"abc\""), etag));
        assert!(none_match(&with("\"x\", W/\"abc\""), etag));
        assert!(none_match(&with("*"), etag));
        assert!(!none_match(&with("\"abd\""), etag));
        assert!(!none_match(&HeaderMap::new(), etag));
    }

    // The declared type may be an image type or octet-stream (parameters ignored); SVG is
    // named, JSON, text and no type at all are not an image upload.
    #[test]
    fn declared_types() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            h
        };
        assert!(check_declared_type(&with("image/png")).is_ok());
        assert!(check_declared_type(&with("IMAGE/JPEG; q=1")).is_ok());
        assert!(check_declared_type(&with("application/octet-stream")).is_ok());
        assert!(matches!(
            check_declared_type(&with("image/svg+xml")),
            Err(ApiError::Image(ImageProblem::Svg))
        ));
        assert!(matches!(
            check_declared_type(&with("application/json")),
            Err(ApiError::ImageContentType)
        ));
        assert!(matches!(
            check_declared_type(&HeaderMap::new()),
            Err(ApiError::ImageContentType)
        ));
    }

    // Alt text: trimmed; 300 characters pass, 301 do not; control characters do not.
    #[test]
    fn alt_text_limits() {
        assert_eq!(validate_alt("  A poster ").unwrap(), "A poster");
        assert!(validate_alt(&"é".repeat(IMAGE_ALT_CHARS_MAX)).is_ok());
        assert!(validate_alt(&"é".repeat(IMAGE_ALT_CHARS_MAX + 1)).is_err());
        assert!(validate_alt("a\u{202E}b").is_err());
    }
}
