//! Waiting rooms at the edge: setting an event's room, joining its queue, the signed admission
//! token, and the one check every sale path makes before it proposes anything.
//!
//! The queue itself lives in the replicated state ([`tix_core::waiting`]): joins are log
//! commands, the draw and every admission time follow from the log. A place, once drawn, has a
//! fixed admission time and buying window, so the edge hands the visitor a token carrying both,
//! signed with HMAC-SHA-256 under the room's secret seed: any node checks a token without a
//! lookup, and a visitor who opens ten tabs or retries a hundred times still has one place.
//! Without a token, a visitor's place is looked up in the state instead (the shop's pages do
//! this: the account is the visitor). Box-office sellers (an event's organizer, admins) pass
//! the room only when they say so explicitly, with `Tix-Waiting-Room: bypass`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tix_core::waiting::{account_visitor, client_visitor};
use tix_core::{
    Command, EventId, Joined, PlaceTimes, QueueRejection, QueueStanding, UserId, WaitingRoomSpec,
};

use crate::AppState;
use crate::defaults;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::openapi as api_doc;
use crate::views;

/// The header a box-office request carries its visitor's admission token in.
pub const ADMISSION_HEADER: &str = "tix-admission";
/// The header with which a seller explicitly sells past an event's waiting room.
pub const BYPASS_HEADER: &str = "tix-waiting-room";
/// The default buying window, in seconds.
pub const WINDOW_S_DEFAULT: u64 = 600;

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/events/{id}/waiting-room",
            get(room_info).put(set_room).delete(remove_room),
        )
        .route("/events/{id}/queue", post(join))
}

/// Why a sale was refused at the waiting room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionRefused {
    /// The sale has not opened.
    NotOpen {
        /// When it opens, Unix ms.
        opens_at_ms: u64,
    },
    /// The visitor has no place in the queue.
    NotInQueue,
    /// The visitor's turn has not come.
    NotYet {
        /// When it comes, Unix ms.
        admit_at_ms: u64,
        /// Seconds from now, rounded up.
        retry_after_s: u64,
    },
    /// The visitor's buying window has closed.
    Expired {
        /// When it closed, Unix ms.
        until_ms: u64,
    },
    /// The token is not one this room signed for this visitor.
    BadToken,
}

impl AdmissionRefused {
    /// The stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionRefused::NotOpen { .. } => "waiting_room_not_open",
            AdmissionRefused::NotInQueue => "not_in_queue",
            AdmissionRefused::NotYet { .. } => "not_admitted_yet",
            AdmissionRefused::Expired { .. } => "admission_expired",
            AdmissionRefused::BadToken => "admission_invalid",
        }
    }

    /// What the visitor should know, in words.
    pub fn detail(&self) -> String {
        match self {
            AdmissionRefused::NotOpen { opens_at_ms } => format!(
                "this sale has a waiting room and opens at {}; join the queue first",
                views::rfc3339(*opens_at_ms as i64)
            ),
            AdmissionRefused::NotInQueue => {
                "this sale has a waiting room; join the queue first".into()
            }
            AdmissionRefused::NotYet { admit_at_ms, .. } => format!(
                "it is not your turn yet: you are admitted at {}",
                views::rfc3339(*admit_at_ms as i64)
            ),
            AdmissionRefused::Expired { until_ms } => format!(
                "your time to buy ended at {}",
                views::rfc3339(*until_ms as i64)
            ),
            AdmissionRefused::BadToken => {
                "the admission token is not valid for this event and buyer".into()
            }
        }
    }

    /// `Retry-After` for a visitor who is early.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            AdmissionRefused::NotYet { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        }
    }
}

/// The signature of a place: HMAC-SHA-256 under the room's seed over the event, the visitor
/// and the two times, first 16 bytes in hex.
fn signature(seed: &[u8; 32], event: EventId, visitor: &str, t: &PlaceTimes) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(seed).expect("any key length");
    mac.update(b"tix-admission-v1\0");
    mac.update(&event.0.to_be_bytes());
    mac.update(visitor.as_bytes());
    mac.update(b"\0");
    mac.update(&t.admit_at_ms.to_be_bytes());
    mac.update(&t.until_ms.to_be_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The admission token of a drawn place: `<admit_at_ms>.<until_ms>.<signature>`.
pub fn token(seed: &[u8; 32], event: EventId, visitor: &str, t: &PlaceTimes) -> String {
    format!(
        "{}.{}.{}",
        t.admit_at_ms,
        t.until_ms,
        signature(seed, event, visitor, t)
    )
}

/// Reads a token back into its times if its signature holds for this room and visitor.
fn verify(seed: &[u8; 32], event: EventId, visitor: &str, token: &str) -> Option<PlaceTimes> {
    let mut parts = token.split('.');
    let admit_at_ms = parts.next()?.parse().ok()?;
    let until_ms = parts.next()?.parse().ok()?;
    let sig = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let times = PlaceTimes {
        slot: 0,
        admit_at_ms,
        until_ms,
    };
    let expected = signature(seed, event, visitor, &times);
    use subtle::ConstantTimeEq;
    bool::from(expected.as_bytes().ct_eq(sig.as_bytes())).then_some(times)
}

/// Whether a drawn place may buy at `now_ms`.
fn may_buy(t: &PlaceTimes, now_ms: u64) -> Result<(), AdmissionRefused> {
    if now_ms < t.admit_at_ms {
        return Err(AdmissionRefused::NotYet {
            admit_at_ms: t.admit_at_ms,
            retry_after_s: (t.admit_at_ms - now_ms).div_ceil(1000),
        });
    }
    if now_ms >= t.until_ms {
        return Err(AdmissionRefused::Expired {
            until_ms: t.until_ms,
        });
    }
    Ok(())
}

/// How a sale path passes the waiting room.
#[derive(Debug, Clone, Copy)]
pub enum Pass<'a> {
    /// A seller said `Tix-Waiting-Room: bypass`: no check.
    Bypass,
    /// This visitor, with this token if they sent one.
    Visitor {
        /// The visitor id.
        visitor: &'a str,
        /// Their admission token, if any.
        token: Option<&'a str>,
    },
}

/// The check every sale path makes for an event before it proposes: Ok when the event has no
/// waiting room, the seller bypasses it, or the visitor is admitted now (by a valid token, or
/// by their place in the state).
pub fn admit(state: &AppState, event_id: EventId, pass: Pass<'_>) -> Result<(), ApiError> {
    let Pass::Visitor { visitor, token } = pass else {
        return Ok(());
    };
    let now_ms = tix_raft::proposer::now_ms();
    let shared = state.node.shared.read();
    let Some(room) = shared.waiting_room(event_id) else {
        return Ok(());
    };
    let refused = |r: AdmissionRefused| Err(ApiError::Admission(r));
    if let Some(token) = token {
        return match verify(&room.seed, event_id, visitor, token) {
            Some(times) => may_buy(&times, now_ms).map_err(ApiError::Admission),
            None => refused(AdmissionRefused::BadToken),
        };
    }
    match room.standing(visitor) {
        Some(QueueStanding::Placed(times)) => may_buy(&times, now_ms).map_err(ApiError::Admission),
        Some(QueueStanding::Early { opens_at_ms }) => {
            refused(AdmissionRefused::NotOpen { opens_at_ms })
        }
        None if now_ms < room.spec.opens_at_ms => refused(AdmissionRefused::NotOpen {
            opens_at_ms: room.spec.opens_at_ms,
        }),
        None => refused(AdmissionRefused::NotInQueue),
    }
}

/// Reads how a box-office request passes the waiting room: `Tix-Waiting-Room: bypass`, or the
/// `Tix-Admission` token of the customer `client_id`. Any other value of the bypass header is
/// a 422 naming it.
pub fn box_office_pass<'a>(headers: &'a HeaderMap, visitor: &'a str) -> Result<Pass<'a>, ApiError> {
    // Checked even when the seller bypasses: a malformed header is a malformed request.
    let token = admission_header(headers)?;
    if let Some(value) = headers.get(BYPASS_HEADER) {
        return match value.to_str() {
            Ok(v) if v.eq_ignore_ascii_case("bypass") => Ok(Pass::Bypass),
            _ => Err(ApiError::invalid(
                "Tix-Waiting-Room",
                "the only value is `bypass` (sell past the waiting room)",
            )),
        };
    }
    Ok(Pass::Visitor { visitor, token })
}

/// The longest `Tix-Admission` header read (a token is about 90 characters); the OpenAPI
/// document says the same (`openapi::AdmissionHeaders`).
pub const ADMISSION_HEADER_CHARS_MAX: usize = 200;

/// Reads the `Tix-Admission` header, if sent: visible ASCII of at most
/// [`ADMISSION_HEADER_CHARS_MAX`] characters, whether or not the event has a waiting room.
pub fn admission_header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get(ADMISSION_HEADER) {
        None => Ok(None),
        Some(v) => checked_token("Tix-Admission", v.to_str().ok()).map(Some),
    }
}

/// Checks an admission token sent in `field` (the header, or a batch item's `admission`;
/// `None`: not text): at most [`ADMISSION_HEADER_CHARS_MAX`] characters, else a 422 naming it.
pub fn checked_token<'a>(field: &str, token: Option<&'a str>) -> Result<&'a str, ApiError> {
    token
        .filter(|t| t.len() <= ADMISSION_HEADER_CHARS_MAX)
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!(
                    "must be the token from joining the queue (at most \
                     {ADMISSION_HEADER_CHARS_MAX} characters)"
                ),
            )
        })
}

/// An event's waiting room, as anyone may see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomInfo {
    /// The event.
    pub event_id: u64,
    /// When the sale opens (RFC 3339). Who joins before is placed by a draw at this moment.
    pub opens_at: String,
    /// Visitors admitted per minute.
    pub admit_per_min: u32,
    /// How long an admitted visitor may buy, in seconds.
    pub window_s: u64,
    /// Whether the sale has opened (the pre-queue is drawn).
    pub open: bool,
    /// How many visitors have joined.
    pub visitors: u64,
    /// How many places have been admitted so far.
    pub admitted: u64,
    /// Tickets not sold or held.
    pub tickets_left: u32,
}

/// A visitor's place, as they see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueStatus {
    /// The event.
    pub event_id: u64,
    /// Who: `user:<id>` for an account, `client:<client_id>` for a box office's customer.
    pub visitor: String,
    /// `pre_queue` (joined before the opening; your place is drawn then), `waiting`,
    /// `admitted` (buy now, until `admit_until`), `expired` (your window closed) or
    /// `sold_out`.
    #[schema(example = "waiting")]
    pub status: &'static str,
    /// When the sale opens (RFC 3339).
    pub opens_at: String,
    /// Your number in the line once drawn: 1 is next.
    pub position: Option<u64>,
    /// When you are admitted (RFC 3339), once drawn.
    pub admit_at: Option<String>,
    /// When your buying window closes (RFC 3339), once drawn.
    pub admit_until: Option<String>,
    /// Estimated seconds until you are admitted (0 when you are in).
    pub wait_s: Option<u64>,
    /// Your admission token, once drawn: send it as `Tix-Admission` with purchases and holds.
    /// It is only valid between `admit_at` and `admit_until`, for you and this event.
    pub token: Option<String>,
    /// Whether this request put you in the queue (false: you already had this place).
    pub joined_now: bool,
    /// How many visitors are in the queue.
    pub visitors: u64,
    /// How many places have been admitted so far.
    pub admitted: u64,
    /// Tickets not sold or held.
    pub tickets_left: u32,
}

/// Builds a visitor's status from their standing at `now_ms`.
pub fn status_of(
    state: &tix_core::State,
    event_id: EventId,
    visitor: &str,
    standing: QueueStanding,
    joined_now: bool,
    now_ms: u64,
) -> Option<QueueStatus> {
    let room = state.waiting_room(event_id)?;
    let event = state.event(event_id)?;
    let tickets_left = event.inventory.available();
    let sold_out = tickets_left == 0 && event.inventory.held() == 0;
    let admitted = room.spec.admitted_by(now_ms).min(u64::from(room.places()));
    let mut status = QueueStatus {
        event_id: event_id.0,
        visitor: visitor.to_owned(),
        status: "pre_queue",
        opens_at: views::rfc3339(room.spec.opens_at_ms as i64),
        position: None,
        admit_at: None,
        admit_until: None,
        wait_s: None,
        token: None,
        joined_now,
        visitors: room.visitors() as u64,
        admitted,
        tickets_left,
    };
    if let QueueStanding::Placed(t) = standing {
        status.admit_at = Some(views::rfc3339(t.admit_at_ms as i64));
        status.admit_until = Some(views::rfc3339(t.until_ms as i64));
        status.token = Some(token(&room.seed, event_id, visitor, &t));
        status.wait_s = Some(t.admit_at_ms.saturating_sub(now_ms).div_ceil(1000));
        status.position =
            Some((u64::from(t.slot) + 1).saturating_sub(room.spec.admitted_by(now_ms)))
                .filter(|p| *p > 0);
        status.status = match may_buy(&t, now_ms) {
            Ok(()) => "admitted",
            Err(AdmissionRefused::Expired { .. }) => "expired",
            Err(_) => "waiting",
        };
    } else {
        status.wait_s = Some(room.spec.opens_at_ms.saturating_sub(now_ms).div_ceil(1000));
    }
    if sold_out {
        status.status = "sold_out";
    }
    Some(status)
}

/// Finds or makes a visitor's place: their standing from the local state when it is final
/// (drawn, or early and the opening still ahead), else by proposing `JoinQueue` (a new
/// visitor; or the opening has passed and this node has not applied the draw yet: the
/// proposal's log time draws it). Returns the standing and whether this request joined.
pub async fn place_of(
    state: &AppState,
    event_id: EventId,
    visitor: &str,
) -> Result<(QueueStanding, bool), ApiError> {
    let now_ms = tix_raft::proposer::now_ms();
    let local = {
        let shared = state.node.shared.read();
        match shared.waiting_room(event_id) {
            Some(room) => room.standing(visitor),
            None => None,
        }
    };
    match local {
        Some(s @ QueueStanding::Placed(_)) => return Ok((s, false)),
        Some(s @ QueueStanding::Early { opens_at_ms }) if now_ms < opens_at_ms => {
            return Ok((s, false));
        }
        _ => {}
    }
    // A new place (or a draw this node has not applied): wait for a turn at the log, in line.
    let _turn = state.joins.turn().await?;
    let joined: Result<Joined, QueueRejection> = state
        .propose_for(Command::JoinQueue {
            event_id,
            visitor: visitor.to_owned(),
        })
        .await?;
    let joined = joined.map_err(ApiError::Queue)?;
    Ok((joined.standing, joined.new))
}

/// Who joins: nothing for yourself (your account), or a box office's customer.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    /// Sellers only (the event's organizer, admins): join on behalf of this customer, the
    /// same `client_id` its purchases will carry. Omit it to join as yourself.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]+$",
        example = "visitor-17"
    )]
    pub client_id: Option<String>,
}

/// Join an event's waiting room (or see your place)
///
/// Puts you — or, for a seller, the customer `client_id` — in the event's queue, or returns
/// the place you already have: joining again, from another tab or another node, is the same
/// place. Before the opening everyone who joins is in the pre-queue, drawn at random at the
/// opening; after it, first come first served. Once drawn, the answer carries your position,
/// admission time, buying window and a signed `token` to send as `Tix-Admission` with holds
/// and purchases. Poll again around `admit_at` (not more than every few seconds): the answer
/// changes only with time.
#[utoipa::path(post, path = "/api/v1/events/{id}/queue", tag = "waiting room",
    operation_id = "joinQueue",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam),
    request_body(content = JoinBody, example = json!({})),
    responses(
        (status = 200, description = "Your place.", body = QueueStatus),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::SellerOnly),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::QueueRefused),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::QueueInvalid),
    ))]
async fn join(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<JoinBody>,
) -> Result<Json<QueueStatus>, ApiError> {
    let event_id = EventId(id);
    let visitor = match &body.client_id {
        None => account_visitor(caller.user_id),
        Some(client_id) => {
            crate::sales::may_sell(&state, (&caller).into(), event_id).await?;
            let key_max = state.node.shared.read().limits().key_bytes_max as usize;
            if client_id.is_empty() || client_id.len() > key_max {
                return Err(ApiError::invalid(
                    "client_id",
                    format!("must be 1 to {key_max} bytes"),
                ));
            }
            crate::text::check_text("client_id", client_id, false)?;
            client_visitor(client_id)
        }
    };
    let exists = state
        .read_fresh(|s| s.event(event_id).map(|_| ()))
        .await
        .is_some();
    if !exists {
        return Err(ApiError::NotFound("event"));
    }
    let (standing, joined_now) = place_of(&state, event_id, &visitor).await?;
    let now_ms = tix_raft::proposer::now_ms();
    let shared = state.node.shared.read();
    status_of(&shared, event_id, &visitor, standing, joined_now, now_ms)
        .map(Json)
        .ok_or(ApiError::Queue(QueueRejection::NoWaitingRoom))
}

/// An organizer's waiting-room settings.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomBody {
    /// When the sale opens (RFC 3339 with a time zone offset or `Z`); a time already past means
    /// now.
    #[schema(format = DateTime, example = "2030-06-01T10:00:00Z")]
    pub opens_at: String,
    /// Visitors admitted per minute, 1 to 1,000,000. Each admitted visitor usually sends a few
    /// requests within a minute: choose it below what the cluster serves (see
    /// docs/PERFORMANCE.md). Omitted or null: tix derives it from what this cluster has shown
    /// it can commit — half of the busiest second of commands it has applied since the node
    /// answering started, over 3 commands per admitted visitor (a join, a hold, a payment), and
    /// at least 600 (the response says the rate chosen).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000, example = 600)]
    pub admit_per_min: Option<u32>,
    /// How long an admitted visitor may buy, in seconds (60 to 86,400; default 600).
    #[serde(default)]
    #[schema(minimum = 60, maximum = 86400, example = 600)]
    pub window_s: Option<u64>,
}

/// The admission rate tix chooses when the organizer leaves it open, from the most commands
/// the cluster has applied in one second ([`tix_raft::meter::ThroughputMeter::peak_per_s`]):
/// [`defaults::DERIVED_ADMISSION_SHARE_OF_PEAK`] of it, spread over
/// [`defaults::COMMANDS_PER_ADMITTED_VISITOR`], per minute, never below
/// [`defaults::DERIVED_ADMIT_PER_MIN_MIN`] nor above the largest rate a room takes.
pub fn derived_admit_per_min(peak_commands_per_s: u64) -> u32 {
    let per_min = peak_commands_per_s as f64 * defaults::DERIVED_ADMISSION_SHARE_OF_PEAK * 60.0
        / defaults::COMMANDS_PER_ADMITTED_VISITOR as f64;
    (per_min as u64).clamp(
        u64::from(defaults::DERIVED_ADMIT_PER_MIN_MIN),
        u64::from(tix_core::waiting::ADMIT_PER_MIN_MAX),
    ) as u32
}

/// Checks a room body into its domain spec, deriving the admission rate from
/// `peak_commands_per_s` when the body leaves it open; the error names the field.
pub fn validate_room(
    body: &RoomBody,
    peak_commands_per_s: u64,
) -> Result<WaitingRoomSpec, ApiError> {
    let opens_at_ms = views::parse_rfc3339(&body.opens_at).ok_or_else(|| {
        ApiError::invalid(
            "opens_at",
            "must be an RFC 3339 time like 2030-06-01T10:00:00Z",
        )
    })?;
    let window_s = body.window_s.unwrap_or(WINDOW_S_DEFAULT);
    let spec = WaitingRoomSpec {
        opens_at_ms: u64::try_from(opens_at_ms).unwrap_or(0),
        admit_per_min: body
            .admit_per_min
            .unwrap_or_else(|| derived_admit_per_min(peak_commands_per_s)),
        window_ms: window_s.saturating_mul(1000),
    };
    spec.validate().map_err(|e| match e {
        QueueRejection::Invalid(detail) if detail.starts_with("window_ms") => ApiError::invalid(
            "window_s",
            format!(
                "must be {} to {} seconds",
                tix_core::waiting::WINDOW_MS_MIN / 1000,
                tix_core::waiting::WINDOW_MS_MAX / 1000
            ),
        ),
        QueueRejection::Invalid(detail) => ApiError::invalid("admit_per_min", detail),
        other => ApiError::Queue(other),
    })?;
    Ok(spec)
}

/// Reads a room's public view.
pub fn room_view(state: &tix_core::State, event_id: EventId, now_ms: u64) -> Option<RoomInfo> {
    let room = state.waiting_room(event_id)?;
    let event = state.event(event_id)?;
    Some(RoomInfo {
        event_id: event_id.0,
        opens_at: views::rfc3339(room.spec.opens_at_ms as i64),
        admit_per_min: room.spec.admit_per_min,
        window_s: room.spec.window_ms / 1000,
        open: room.drawn(),
        visitors: room.visitors() as u64,
        admitted: room.spec.admitted_by(now_ms).min(u64::from(room.places())),
        tickets_left: event.inventory.available(),
    })
}

/// Read an event's waiting room
///
/// Public: when the sale opens, the admission rate and window, how many wait and how many
/// have been admitted. 404 `not_found` when the event has no waiting room.
#[utoipa::path(get, path = "/api/v1/events/{id}/waiting-room", tag = "waiting room",
    operation_id = "getWaitingRoom",
    params(api_doc::EventIdParam),
    responses(
        (status = 200, description = "The room.", body = RoomInfo),
        (status = 404, response = api_doc::WaitingRoomNotFound),
    ))]
async fn room_info(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<RoomInfo>, ApiError> {
    let now_ms = tix_raft::proposer::now_ms();
    state
        .read_fresh(|s| room_view(s, EventId(id), now_ms))
        .await
        .map(Json)
        .ok_or(ApiError::NotFound("waiting room"))
}

/// Proposes a room change as `by`.
pub async fn propose_room(
    state: &AppState,
    event_id: EventId,
    by: UserId,
    spec: Option<WaitingRoomSpec>,
) -> Result<(), ApiError> {
    let answer: Result<(), QueueRejection> = state
        .propose_for(Command::SetWaitingRoom {
            event_id,
            by,
            spec,
            seed: rand::random(),
        })
        .await?;
    answer.map_err(ApiError::Queue)
}

/// Give an event a waiting room, or change it (its organizer, admins)
///
/// Sets when the sale opens, how many visitors are admitted per minute and how long each may
/// buy. From then on holds and box-office purchases for the event need an admission (a
/// token from `POST /events/{id}/queue`, or the buyer's own place in the queue); sellers may
/// pass with `Tix-Waiting-Room: bypass`. The settings may change until the sale opens (visitors
/// keep their places); after that the order is fixed and only removing the room is possible.
#[utoipa::path(put, path = "/api/v1/events/{id}/waiting-room", tag = "waiting room",
    operation_id = "setWaitingRoom",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam),
    request_body(content = RoomBody),
    responses(
        (status = 200, description = "The room as it now is.", body = RoomInfo),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::EventOwnerOnly),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::QueueRefused),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::RoomInvalid),
    ))]
async fn set_room(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<RoomBody>,
) -> Result<Json<RoomInfo>, ApiError> {
    let event_id = EventId(id);
    let peak = state.node.shared.throughput.peak_per_s();
    let spec = validate_room(&body, peak)?;
    if body.admit_per_min.is_none() {
        tracing::info!(
            event = id,
            peak_commands_per_s = peak,
            admit_per_min = spec.admit_per_min,
            "waiting room: admission rate derived from the busiest second applied"
        );
    }
    propose_room(&state, event_id, caller.user_id, Some(spec)).await?;
    let now_ms = tix_raft::proposer::now_ms();
    let shared = state.node.shared.read();
    room_view(&shared, event_id, now_ms)
        .map(Json)
        .ok_or(ApiError::NotFound("waiting room"))
}

/// Remove an event's waiting room (its organizer, admins)
///
/// Everyone may buy directly from then on. Removing a room that does not exist succeeds.
#[utoipa::path(delete, path = "/api/v1/events/{id}/waiting-room", tag = "waiting room",
    operation_id = "removeWaitingRoom",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::EventOwnerOnly),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::QueueRefused),
    ))]
async fn remove_room(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    propose_room(&state, EventId(id), caller.user_id, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_admission_reason_is_in_the_documented_enum() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap();
        let reasons = &doc["components"]["schemas"]["RefusalReason"]["enum"];
        for refused in [
            AdmissionRefused::NotOpen { opens_at_ms: 1 },
            AdmissionRefused::NotInQueue,
            AdmissionRefused::NotYet {
                admit_at_ms: 1,
                retry_after_s: 1,
            },
            AdmissionRefused::Expired { until_ms: 1 },
            AdmissionRefused::BadToken,
        ] {
            let code = refused.code();
            assert!(
                reasons.as_array().unwrap().iter().any(|r| r == code),
                "{code} missing from {reasons}"
            );
        }
    }

    #[test]
    fn a_malformed_admission_header_is_refused_even_when_bypassing() {
        let mut headers = HeaderMap::new();
        headers.insert(BYPASS_HEADER, "bypass".parse().unwrap());
        assert!(matches!(box_office_pass(&headers, "v"), Ok(Pass::Bypass)));
        let long = "0".repeat(ADMISSION_HEADER_CHARS_MAX + 1);
        headers.insert(ADMISSION_HEADER, long.parse().unwrap());
        assert!(box_office_pass(&headers, "v").is_err());
        headers.remove(BYPASS_HEADER);
        assert!(box_office_pass(&headers, "v").is_err());
        let fine = "0".repeat(ADMISSION_HEADER_CHARS_MAX);
        headers.insert(ADMISSION_HEADER, fine.parse().unwrap());
        assert!(matches!(
            box_office_pass(&headers, "v"),
            Ok(Pass::Visitor { token: Some(_), .. })
        ));
    }

    #[test]
    fn a_derived_rate_is_half_the_busiest_second_over_three_commands_a_visitor() {
        // Nothing measured yet (or a quiet cluster): the floor.
        assert_eq!(
            derived_admit_per_min(0),
            defaults::DERIVED_ADMIT_PER_MIN_MIN
        );
        assert_eq!(
            derived_admit_per_min(50),
            defaults::DERIVED_ADMIT_PER_MIN_MIN
        );
        // 6,000 commands/s shown: 3,000/s for admitted visitors, 1,000 visitors/s.
        assert_eq!(derived_admit_per_min(6_000), 60_000);
        assert_eq!(
            derived_admit_per_min(u64::MAX),
            tix_core::waiting::ADMIT_PER_MIN_MAX
        );
        // An explicit rate is kept; an absent one is derived.
        let body = |admit_per_min| RoomBody {
            opens_at: "2030-06-01T10:00:00Z".into(),
            admit_per_min,
            window_s: None,
        };
        assert_eq!(
            validate_room(&body(Some(42)), 6_000).unwrap().admit_per_min,
            42
        );
        assert_eq!(
            validate_room(&body(None), 6_000).unwrap().admit_per_min,
            60_000
        );
    }

    #[test]
    fn a_token_holds_only_for_its_room_event_and_visitor() {
        let seed = [7u8; 32];
        let t = PlaceTimes {
            slot: 3,
            admit_at_ms: 1_000,
            until_ms: 2_000,
        };
        let tok = token(&seed, EventId(1), "client:a", &t);
        let back = verify(&seed, EventId(1), "client:a", &tok).expect("valid");
        assert_eq!((back.admit_at_ms, back.until_ms), (1_000, 2_000));
        assert!(verify(&[8; 32], EventId(1), "client:a", &tok).is_none());
        assert!(verify(&seed, EventId(2), "client:a", &tok).is_none());
        assert!(verify(&seed, EventId(1), "client:b", &tok).is_none());
        // Moving the window is detected.
        let forged = tok.replacen("2000", "9000", 1);
        assert!(verify(&seed, EventId(1), "client:a", &forged).is_none());
        assert!(verify(&seed, EventId(1), "client:a", "1.2").is_none());
        assert!(verify(&seed, EventId(1), "client:a", &format!("{tok}.x")).is_none());
        assert_eq!(may_buy(&back, 999).unwrap_err().code(), "not_admitted_yet");
        assert!(may_buy(&back, 1_000).is_ok());
        assert_eq!(
            may_buy(&back, 2_000).unwrap_err().code(),
            "admission_expired"
        );
    }
}
