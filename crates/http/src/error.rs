//! The one place where errors become HTTP responses: `application/problem+json` (RFC 9457) with
//! a stable `type`, a human `title` and `detail`, and the offending `field` where there is one.
//!
//! A 5xx body never reveals internals; its cause is logged here, once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tix_core::Rejection;
use tix_raft::ProposeError;

/// Seconds a client should wait before retrying while the cluster has no leader.
const UNAVAILABLE_RETRY_AFTER_S: u64 = 1;
/// Seconds a live page should wait before subscribing again when the caps are full.
const LIVE_RETRY_AFTER_S: u64 = 10;
/// Seconds a client should wait after a node shed its request.
const OVERLOADED_RETRY_AFTER_S: u64 = 1;

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A field is missing, of the wrong type or out of range.
    #[error("{field}: {detail}")]
    Invalid {
        /// The JSON path of the field (`venue.lat`).
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No or an expired bearer token.
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong username or password.
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many failed logins from this address (or for this account from this address).
    #[error("too many failed logins; try again in {retry_after_s} s")]
    TooManyAttempts {
        /// Seconds until a login from this address will be tried again (rounded up).
        retry_after_s: u64,
    },
    /// Too many sign-ups from this address within the window.
    #[error("too many new accounts from this address; try again in {retry_after_s} s")]
    TooManySignups {
        /// Seconds until a sign-up from this address will be accepted again (rounded up).
        retry_after_s: u64,
    },
    /// Too many messages to the assistant in one conversation.
    #[error("too many messages; try again in {retry_after_s} s")]
    TooManyMessages {
        /// Seconds until the conversation may send again (rounded up).
        retry_after_s: u64,
    },
    /// A state-changing request from another site (`Origin`, `Sec-Fetch-Site`).
    #[error(
        "cross-site requests are refused; send this request from tix's own pages or with a bearer token"
    )]
    CrossOrigin,
    /// The API takes only `Content-Type: application/json` bodies.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// The request body is over the size limit.
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    /// The route exists but not with this method.
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// The request body did not arrive within the body read timeout.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// The URL is longer than this server accepts.
    #[error("the URL is longer than this server accepts")]
    UriTooLong,
    /// The request line and headers are larger than this server accepts.
    #[error("the request headers are larger than this server accepts")]
    HeadersTooLarge,
    /// The request is not valid HTTP/1.1.
    #[error("the request is not valid HTTP/1.1")]
    MalformedRequest,
    /// A part of the URL (a path id, a query parameter) cannot be read.
    #[error("the address has a part this server cannot read; check the link (ids are numbers)")]
    InvalidUrl,
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such resource (or not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The username is taken.
    #[error("the username is already taken")]
    UsernameTaken,
    /// The only admin may not be demoted.
    #[error("this is the only admin account; make another account admin first")]
    LastAdmin,
    /// The event was cancelled before, by another request.
    #[error("the event was already cancelled")]
    AlreadyCancelled,
    /// Someone else edited the event first.
    #[error("the event was changed by someone else (now at version {current_version})")]
    VersionConflict {
        /// The version now stored.
        current_version: u64,
    },
    /// The domain refused a sale, hold, confirmation or refund.
    #[error("rejected: {}", .0.code())]
    Rejected(Rejection),
    /// The payment provider declined the card.
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// A ticket was already admitted or cannot be admitted.
    #[error("{detail}")]
    CheckInRefused {
        /// Stable reason (`already_admitted`, `refunded`).
        reason: &'static str,
        /// Human explanation.
        detail: String,
        /// Extra members (`at`, `by`).
        extra: Map<String, Value>,
    },
    /// The cluster cannot commit right now (no leader, overloaded, shutting down); the text is
    /// written for the public.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The cluster could not commit or confirm a request, for a reason that names internals
    /// (another node's internal address, a library's error text): the cause goes to the log
    /// only, the body says what a client should do.
    #[error(
        "the cluster cannot commit or confirm this request right now; retry shortly (a purchase with the same request id)"
    )]
    ClusterUnavailable {
        /// What went wrong, for the log.
        cause: String,
    },
    /// A live-stream cap (per node or per client) is full.
    #[error("{0}")]
    LiveFull(crate::live::Refused),
    /// This node has as many requests in progress as it takes (`--requests-in-flight-max`):
    /// refused before the request was read, so nothing of it was done.
    #[error("this node is at capacity and did not start on your request; try again in a second")]
    Overloaded,
    /// The waiting room refused a change or a join.
    #[error("{0}")]
    Queue(tix_core::QueueRejection),
    /// A sale was refused at the event's waiting room (no place, not yet, window over).
    #[error("{}", .0.detail())]
    Admission(crate::queue::AdmissionRefused),
    /// An uploaded event image was refused: too large (413), not an image tix takes (415), or
    /// an image it does not store (422).
    #[error("{}", image_detail(.0))]
    Image(tix_core::ImageProblem),
    /// An image upload whose `Content-Type` is not an image type (or octet-stream).
    #[error(
        "send the image's bytes as the body with Content-Type image/png, image/jpeg or image/webp"
    )]
    ImageContentType,
    /// A bug or storage failure; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Returns an `Invalid` error for a field.
    pub fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }

    /// Returns the `Retry-After` this error is answered with, in seconds: the throttles' real
    /// remaining wait, or a second while the cluster has no leader.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ApiError::TooManyAttempts { retry_after_s }
            | ApiError::TooManySignups { retry_after_s }
            | ApiError::TooManyMessages { retry_after_s } => Some(*retry_after_s),
            ApiError::Unavailable(_) | ApiError::ClusterUnavailable { .. } => {
                Some(UNAVAILABLE_RETRY_AFTER_S)
            }
            ApiError::LiveFull(_) => Some(LIVE_RETRY_AFTER_S),
            ApiError::Overloaded => Some(OVERLOADED_RETRY_AFTER_S),
            ApiError::Admission(r) => r.retry_after_s(),
            _ => None,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::TooManyAttempts { .. }
            | ApiError::TooManySignups { .. }
            | ApiError::TooManyMessages { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::CrossOrigin => StatusCode::FORBIDDEN,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::MalformedRequest | ApiError::InvalidUrl => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UsernameTaken
            | ApiError::LastAdmin
            | ApiError::AlreadyCancelled
            | ApiError::VersionConflict { .. } => StatusCode::CONFLICT,
            ApiError::Rejected(r) => rejection_status(r),
            ApiError::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::CheckInRefused { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable(_)
            | ApiError::ClusterUnavailable { .. }
            | ApiError::LiveFull(_)
            | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Queue(q) => queue_status(q),
            ApiError::Admission(_) => StatusCode::FORBIDDEN,
            ApiError::Image(p) => image_status(p),
            ApiError::ImageContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::Invalid { .. } => "invalid_field",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::TooManySignups { .. } => "too_many_signups",
            ApiError::TooManyMessages { .. } => "too_many_messages",
            ApiError::CrossOrigin => "cross_origin",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::UriTooLong => "uri_too_long",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::MalformedRequest => "malformed_request",
            ApiError::InvalidUrl => "invalid_url",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::UsernameTaken => "username_taken",
            ApiError::LastAdmin => "last_admin",
            ApiError::AlreadyCancelled => "already_cancelled",
            ApiError::VersionConflict { .. } => "version_conflict",
            ApiError::Rejected(r) => r.code(),
            ApiError::PaymentDeclined(_) => "payment_declined",
            ApiError::CheckInRefused { reason, .. } => reason,
            ApiError::Unavailable(_) | ApiError::ClusterUnavailable { .. } => "unavailable",
            ApiError::LiveFull(_) => "live_full",
            ApiError::Overloaded => "overloaded",
            ApiError::Queue(q) => queue_kind(q),
            ApiError::Admission(r) => r.code(),
            ApiError::Image(p) => image_kind(p),
            ApiError::ImageContentType => "unsupported_image_type",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "The request body is not valid JSON",
            ApiError::Invalid { .. } => "A field is missing or invalid",
            ApiError::Unauthenticated => "Authentication required",
            ApiError::BadCredentials => "Wrong username or password",
            ApiError::TooManyAttempts { .. } => "Too many attempts",
            ApiError::TooManySignups { .. } => "Too many sign-ups",
            ApiError::TooManyMessages { .. } => "Too many messages",
            ApiError::CrossOrigin => "Cross-site request refused",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::PayloadTooLarge => "Request body too large",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::RequestTimeout => "Request body too slow",
            ApiError::UriTooLong => "URL too long",
            ApiError::HeadersTooLarge => "Request headers too large",
            ApiError::MalformedRequest => "Malformed request",
            ApiError::InvalidUrl => "Invalid address",
            ApiError::Forbidden(_) => "Not allowed",
            ApiError::NotFound(_) => "Not found",
            ApiError::UsernameTaken => "Username taken",
            ApiError::LastAdmin => "Last admin",
            ApiError::AlreadyCancelled => "Already cancelled",
            ApiError::VersionConflict { .. } => "Edited by someone else",
            ApiError::Rejected(_) => "Request rejected",
            ApiError::PaymentDeclined(_) => "Payment declined",
            ApiError::CheckInRefused { .. } => "Not admitted",
            ApiError::Unavailable(_) | ApiError::ClusterUnavailable { .. } => {
                "Temporarily unavailable"
            }
            ApiError::LiveFull(_) => "Too many live subscribers",
            ApiError::Overloaded => "Too busy right now",
            ApiError::Queue(_) => "Waiting room",
            ApiError::Admission(_) => "Not admitted yet",
            ApiError::Image(_) | ApiError::ImageContentType => "Image refused",
            ApiError::Internal(_) => "Internal error",
        }
    }
}

/// The status of a refused image: too large 413, not an image tix takes 415, otherwise 422.
fn image_status(p: &tix_core::ImageProblem) -> StatusCode {
    use tix_core::ImageProblem as P;
    match p {
        P::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        P::Svg | P::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        P::Empty | P::Malformed | P::Animated | P::TooManyPixels { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

/// The stable name of a refused image's problem.
fn image_kind(p: &tix_core::ImageProblem) -> &'static str {
    use tix_core::ImageProblem as P;
    match p {
        P::Empty => "image_empty",
        P::TooLarge { .. } => "image_too_large",
        P::Svg => "svg_refused",
        P::UnsupportedType => "unsupported_image_type",
        P::Malformed => "image_malformed",
        P::Animated => "image_animated",
        P::TooManyPixels { .. } => "image_too_many_pixels",
    }
}

/// Says what is wrong with an image and what to do, for the API and the event form.
pub fn image_detail(p: &tix_core::ImageProblem) -> String {
    use tix_core::ImageProblem as P;
    match p {
        P::Empty => "the image is empty; choose a PNG, JPEG or WebP file".into(),
        P::TooLarge { bytes_max } => format!(
            "the image is larger than {} KiB; save it smaller (a poster of 1600 × 900 pixels as \
             JPEG or WebP is usually 150–400 KiB)",
            bytes_max / 1024
        ),
        P::Svg => {
            "SVG images are not accepted (they can carry script); use PNG, JPEG or WebP".into()
        }
        P::UnsupportedType => {
            "not a PNG, JPEG or WebP image (the type is read from the file itself)".into()
        }
        P::Malformed => "the image file is damaged or cut short; export it again".into(),
        P::Animated => "animated images are not accepted (an animation cannot be paused on \
             the page); use a still image"
            .into(),
        P::TooManyPixels { width, height } => format!(
            "the image is {width} × {height} pixels; at most {} pixels a side and {} megapixels",
            tix_core::EVENT_IMAGE_SIDE_PIXELS_MAX,
            tix_core::EVENT_IMAGE_PIXELS_MAX / (1024 * 1024)
        ),
    }
}

/// The status of a waiting-room refusal.
fn queue_status(q: &tix_core::QueueRejection) -> StatusCode {
    use tix_core::QueueRejection as Q;
    match q {
        Q::EventNotFound => StatusCode::NOT_FOUND,
        Q::NotOrganizer => StatusCode::FORBIDDEN,
        Q::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Q::NoWaitingRoom | Q::AlreadyOpen | Q::Full | Q::EventCancelled => StatusCode::CONFLICT,
    }
}

/// The stable name of a waiting-room refusal.
fn queue_kind(q: &tix_core::QueueRejection) -> &'static str {
    use tix_core::QueueRejection as Q;
    match q {
        Q::EventNotFound => "not_found",
        Q::NotOrganizer => "forbidden",
        Q::Invalid(_) => "invalid_field",
        Q::NoWaitingRoom => "no_waiting_room",
        Q::AlreadyOpen => "waiting_room_open",
        Q::Full => "queue_full",
        Q::EventCancelled => "event_cancelled",
    }
}

/// The status of a domain rejection: conflicts with current state are 409, bad requests 422.
fn rejection_status(r: &Rejection) -> StatusCode {
    match r {
        Rejection::UnknownEvent | Rejection::UnknownHold | Rejection::UnknownTicket => {
            StatusCode::NOT_FOUND
        }
        Rejection::NotYours => StatusCode::FORBIDDEN,
        Rejection::SeatOutOfRange { .. }
        | Rejection::SeatNotApplicable
        | Rejection::DuplicateSeat { .. }
        | Rejection::BadQuantity { .. }
        | Rejection::KeyReused
        | Rejection::BadKey
        | Rejection::BadTtl { .. }
        | Rejection::UnknownSection { .. }
        | Rejection::MixedPrices => StatusCode::UNPROCESSABLE_ENTITY,
        Rejection::SoldOut
        | Rejection::SeatTaken { .. }
        | Rejection::SeatBlocked { .. }
        | Rejection::CustomerLimit { .. }
        | Rejection::HoldExpired
        | Rejection::AlreadyRefunded
        | Rejection::AlreadyCheckedIn
        | Rejection::NotRefundable
        | Rejection::EventCancelled
        | Rejection::NoAdjacentSeats { .. } => StatusCode::CONFLICT,
    }
}

/// Returns the human detail of a rejection.
pub fn rejection_detail(r: &Rejection) -> String {
    match r {
        Rejection::UnknownEvent => "no such event".into(),
        Rejection::SoldOut => "no tickets are left".into(),
        Rejection::SeatTaken { seat } => format!("seat {seat} is already sold or held"),
        Rejection::SeatOutOfRange { seat, seats } => {
            format!("seat {seat} does not exist; seats are numbered 1 to {seats}")
        }
        Rejection::SeatBlocked { seat } => format!("seat {seat} is not for sale"),
        Rejection::SeatNotApplicable => "this event has no numbered seats".into(),
        Rejection::DuplicateSeat { seat } => format!("seat {seat} is listed twice"),
        Rejection::BadQuantity { quantity, max } => {
            format!("{quantity} tickets asked for; between 1 and {max} per order")
        }
        Rejection::CustomerLimit { max } => format!("at most {max} per customer"),
        Rejection::KeyReused => {
            "this client_id and request_id were used before with other parameters".into()
        }
        Rejection::BadKey => "client_id and request_id must be 1 to 128 bytes".into(),
        Rejection::BadTtl { max_ms } => format!("hold time must be 1 to {max_ms} ms"),
        Rejection::UnknownHold => "no such hold (expired, released or already paid)".into(),
        Rejection::NotYours => "this belongs to someone else".into(),
        Rejection::HoldExpired => "the hold expired before payment completed".into(),
        Rejection::UnknownTicket => "no such ticket".into(),
        Rejection::AlreadyRefunded => "the ticket was already refunded".into(),
        Rejection::AlreadyCheckedIn => "the ticket was already used at the door".into(),
        Rejection::NotRefundable => {
            "the event's policy does not allow a refund (not refundable or already started)".into()
        }
        Rejection::EventCancelled => {
            "event cancelled: the organizer cancelled this event and refunded every ticket".into()
        }
        Rejection::NoAdjacentSeats { quantity } => format!(
            "no row has {quantity} free seats side by side; ask for fewer together or choose \
             seats one by one"
        ),
        Rejection::UnknownSection { section } => {
            format!("section {section} does not exist on this event")
        }
        Rejection::MixedPrices => "the seats are in sections with different prices; a hold has \
             one price per ticket, so hold each price category separately"
            .into(),
    }
}

/// Builds a problem+json response body with the standard members and any extra ones.
pub fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert(
        "type".into(),
        json!(format!("https://tix.invalid/problems/{kind}")),
    );
    body.insert("title".into(), json!(title));
    body.insert("status".into(), json!(status.as_u16()));
    body.insert("detail".into(), json!(detail));
    body
}

/// Returns a response with a problem+json body.
pub fn problem_response(status: StatusCode, body: Map<String, Value>) -> Response {
    let mut response = (status, axum::Json(Value::Object(body))).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

impl ApiError {
    /// Returns the status and the problem+json body this error is answered with; the batch
    /// endpoint embeds these per item.
    pub fn problem(&self) -> (StatusCode, Map<String, Value>) {
        let status = self.status();
        let request_id = crate::request_id::current();
        let detail = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, request_id, "internal error");
                "something went wrong on our side; it was logged".to_owned()
            }
            ApiError::ClusterUnavailable { cause } => {
                // Expected during elections and restarts: not an error, and not per request at
                // info level.
                tracing::debug!(%cause, request_id, "cluster unavailable");
                self.to_string()
            }
            ApiError::Rejected(r) => rejection_detail(r),
            other => other.to_string(),
        };
        let mut body = problem(status, self.kind(), self.title(), &detail);
        if let Some(id) = request_id {
            body.insert("request_id".into(), json!(id));
        }
        match self {
            ApiError::Invalid { field, .. } => {
                body.insert("field".into(), json!(field));
            }
            ApiError::VersionConflict { current_version } => {
                body.insert("current_version".into(), json!(current_version));
            }
            ApiError::TooManyAttempts { retry_after_s }
            | ApiError::TooManySignups { retry_after_s }
            | ApiError::TooManyMessages { retry_after_s } => {
                body.insert("retry_after_s".into(), json!(retry_after_s));
            }
            ApiError::Rejected(r) => {
                body.insert("outcome".into(), json!("rejected"));
                body.insert("reason".into(), json!(r.code()));
                // Externally tagged: a variant with fields is `{"seat_taken": {"seat": 5}}`.
                if let Ok(Value::Object(tagged)) = serde_json::to_value(r) {
                    for (_, fields) in tagged {
                        if let Value::Object(fields) = fields {
                            body.extend(fields);
                        }
                    }
                }
            }
            ApiError::CheckInRefused { reason, extra, .. } => {
                body.insert("reason".into(), json!(reason));
                body.extend(extra.clone());
            }
            ApiError::Image(tix_core::ImageProblem::TooLarge { bytes_max }) => {
                body.insert("bytes_max".into(), json!(bytes_max));
            }
            ApiError::Queue(tix_core::QueueRejection::Invalid(_)) => {
                body.insert("field".into(), json!("waiting_room"));
            }
            ApiError::Admission(r) => {
                body.insert("reason".into(), json!(r.code()));
                body.insert(
                    "join".into(),
                    json!("join the event's queue with POST /api/v1/events/<event id>/queue, then send its token as Tix-Admission"),
                );
                if let Some(s) = r.retry_after_s() {
                    body.insert("retry_after_s".into(), json!(s));
                }
            }
            _ => {}
        }
        (status, body)
    }
}

impl From<tix_raft::StoreError> for ApiError {
    fn from(e: tix_raft::StoreError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.problem();
        let mut response = problem_response(status, body);
        if let Some(seconds) = self.retry_after_s() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ProposeError> for ApiError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::NotLeader { leader } => ApiError::Unavailable(match leader {
                Some((id, node)) => format!("node {id} at {} is the leader", node.api_addr),
                None => "no leader is elected right now".into(),
            }),
            ProposeError::Overloaded => ApiError::Unavailable("too many requests queued".into()),
            ProposeError::Unavailable(cause) => ApiError::ClusterUnavailable { cause },
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that failed for an internal reason answers 503 without the reason: no internal
    /// address, no library text; the cause stays in the value for the log.
    #[test]
    fn an_internal_unavailability_reveals_nothing() {
        let cause = "forwarding to the leader: error sending request for url \
                     (http://127.0.0.12:40123/cluster/propose): connection refused";
        let error = ApiError::from(ProposeError::Unavailable(cause.into()));
        let (status, body) = error.problem();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let text = Value::Object(body).to_string();
        for leak in ["127.0.0.12", "cluster/propose", "error sending", "refused"] {
            assert!(!text.contains(leak), "the body leaks {leak:?}: {text}");
        }
        assert!(text.contains("retry"), "{text}");
    }

    /// Inside a request the body carries the request id; outside, no id member at all.
    #[tokio::test]
    async fn problem_bodies_carry_the_request_id() {
        let (_, outside) = ApiError::NotFound("event").problem();
        assert!(!outside.contains_key("request_id"));
        let request = axum::http::Request::builder()
            .extension(tower_http::request_id::RequestId::new(
                HeaderValue::from_static("7-2a"),
            ))
            .body(axum::body::Body::empty())
            .unwrap();
        let app = axum::Router::new()
            .fallback(|| async { ApiError::Internal("boom".into()) })
            .layer(axum::middleware::from_fn(crate::request_id::scope));
        let response = tower::ServiceExt::oneshot(app, request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["request_id"], "7-2a", "{body}");
        assert!(!body.to_string().contains("boom"), "{body}");
    }
}
