//! Events: create (organizers), list with search and date range, detail, edit with an optimistic
//! version check, and the seat map. Listing and detail read the local applied state (they may
//! lag the leader by a moment); edits go through the log.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tix_core::{
    Command, Event, EventDetails, EventId, EventRejection, InventorySpec, Outcome, Venue,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::{text, views};

/// Longest event or venue name, in characters.
pub const NAME_CHARS_MAX: usize = 200;
/// Longest description, in characters.
pub const DESCRIPTION_CHARS_MAX: usize = 10_000;
/// Most events per page of a listing.
pub const PER_PAGE_MAX: u32 = 100;
/// Most blocked seats listed at creation.
pub const BLOCKED_SEATS_MAX: usize = 10_000;

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", get(list).post(create))
        .route("/events/{id}", get(detail).put(update))
        .route("/events/{id}/seats", get(seats))
        .route("/events/{id}/ticket-key", get(ticket_key))
}

/// The venue as sent by clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueBody {
    name: String,
    lat: f64,
    lon: f64,
}

/// The inventory as sent by clients.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InventoryBody {
    /// General admission.
    Unnumbered {
        /// How many tickets.
        capacity: u32,
    },
    /// Numbered seats: `seats`, or `rows` × `seats_per_row`.
    Numbered {
        /// How many seats (optional when rows and seats_per_row are given).
        seats: Option<u32>,
        /// Rows of the seat map.
        rows: Option<u32>,
        /// Seats in each row.
        seats_per_row: Option<u32>,
        /// Seats never sold.
        #[serde(default)]
        blocked: Vec<u32>,
    },
}

/// The editable fields of an event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    name: String,
    #[serde(default)]
    description: String,
    starts_at: String,
    venue: VenueBody,
    price_cents: u64,
    currency: String,
    #[serde(default = "default_true")]
    refundable: bool,
    #[serde(default)]
    per_customer_max: Option<u32>,
    /// Required on create, refused on update (the inventory is fixed once on sale).
    #[serde(default)]
    pub inventory: Option<InventoryBody>,
    /// Required on update: the version the editor read.
    #[serde(default)]
    version: Option<u64>,
}

fn default_true() -> bool {
    true
}

/// Validates the editable fields into domain details, naming the first bad field.
pub fn validate_details(body: &EventBody) -> Result<EventDetails, ApiError> {
    let name = body.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("name", "must not be empty"));
    }
    text::check_text("name", name, false)?;
    text::check_text("description", &body.description, true)?;
    text::check_text("venue.name", &body.venue.name, false)?;
    if name.chars().count() > NAME_CHARS_MAX {
        return Err(ApiError::invalid(
            "name",
            format!("at most {NAME_CHARS_MAX} characters"),
        ));
    }
    if body.description.chars().count() > DESCRIPTION_CHARS_MAX {
        return Err(ApiError::invalid(
            "description",
            format!("at most {DESCRIPTION_CHARS_MAX} characters"),
        ));
    }
    let starts_at_ms = views::parse_rfc3339(&body.starts_at).ok_or_else(|| {
        ApiError::invalid(
            "starts_at",
            "must be an RFC 3339 time like 2027-06-01T20:00:00Z",
        )
    })?;
    let venue = body.venue.name.trim();
    if venue.is_empty() {
        return Err(ApiError::invalid("venue.name", "must not be empty"));
    }
    if venue.chars().count() > NAME_CHARS_MAX {
        return Err(ApiError::invalid(
            "venue.name",
            format!("at most {NAME_CHARS_MAX} characters"),
        ));
    }
    if !(body.venue.lat.is_finite() && (-90.0..=90.0).contains(&body.venue.lat)) {
        return Err(ApiError::invalid(
            "venue.lat",
            "latitude must be between -90 and 90",
        ));
    }
    if !(body.venue.lon.is_finite() && (-180.0..=180.0).contains(&body.venue.lon)) {
        return Err(ApiError::invalid(
            "venue.lon",
            "longitude must be between -180 and 180",
        ));
    }
    let currency = &body.currency;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "currency",
            "must be a three-letter code like EUR",
        ));
    }
    let price_max = tix_core::Limits::default().price_cents_max;
    if body.price_cents > price_max {
        return Err(ApiError::invalid(
            "price_cents",
            format!("at most {price_max}"),
        ));
    }
    if body.per_customer_max == Some(0) {
        return Err(ApiError::invalid(
            "per_customer_max",
            "must be at least 1 (or omitted)",
        ));
    }
    Ok(EventDetails {
        name: name.to_owned(),
        description: body.description.clone(),
        starts_at_ms,
        venue: Venue {
            name: venue.to_owned(),
            lat: body.venue.lat,
            lon: body.venue.lon,
        },
        price_cents: body.price_cents,
        currency: currency.clone(),
        refundable: body.refundable,
        per_customer_max: body.per_customer_max,
    })
}

/// Validates an inventory into its domain spec.
pub fn validate_inventory(
    inventory: &InventoryBody,
    capacity_max: u32,
) -> Result<InventorySpec, ApiError> {
    let in_range = |n: u32| (1..=capacity_max).contains(&n);
    match inventory {
        InventoryBody::Unnumbered { capacity } => {
            if !in_range(*capacity) {
                return Err(ApiError::invalid(
                    "inventory.capacity",
                    format!("must be between 1 and {capacity_max}"),
                ));
            }
            Ok(InventorySpec::Unnumbered {
                capacity: *capacity,
            })
        }
        InventoryBody::Numbered {
            seats,
            rows,
            seats_per_row,
            blocked,
        } => {
            let seats = match (seats, rows, seats_per_row) {
                (Some(s), _, _) => *s,
                (None, Some(r), Some(p)) => r.checked_mul(*p).unwrap_or(u32::MAX),
                _ => {
                    return Err(ApiError::invalid(
                        "inventory.seats",
                        "give seats, or rows and seats_per_row",
                    ));
                }
            };
            if !in_range(seats) {
                return Err(ApiError::invalid(
                    "inventory.seats",
                    format!("must be between 1 and {capacity_max}"),
                ));
            }
            if *seats_per_row == Some(0) || *rows == Some(0) {
                return Err(ApiError::invalid(
                    "inventory.seats_per_row",
                    "must be at least 1",
                ));
            }
            if let (Some(r), Some(p)) = (rows, seats_per_row)
                && r.checked_mul(*p) != Some(seats)
            {
                return Err(ApiError::invalid(
                    "inventory.rows",
                    "rows × seats_per_row must equal seats",
                ));
            }
            if let Some(p) = seats_per_row
                && seats % p != 0
            {
                return Err(ApiError::invalid(
                    "inventory.seats_per_row",
                    "seats must be a multiple of seats_per_row",
                ));
            }
            if blocked.len() > BLOCKED_SEATS_MAX {
                return Err(ApiError::invalid(
                    "inventory.blocked",
                    format!("at most {BLOCKED_SEATS_MAX} blocked seats"),
                ));
            }
            if let Some(bad) = blocked.iter().find(|s| **s == 0 || **s > seats) {
                return Err(ApiError::invalid(
                    "inventory.blocked",
                    format!("seat {bad} is not in 1..={seats}"),
                ));
            }
            Ok(InventorySpec::Numbered {
                seats,
                seats_per_row: *seats_per_row,
                blocked: blocked.clone(),
            })
        }
    }
}

/// Creates an event through the log for `organizer`; returns its id.
pub async fn create_event(
    state: &AppState,
    organizer: tix_core::UserId,
    details: EventDetails,
    inventory: InventorySpec,
) -> Result<EventId, ApiError> {
    let command = Command::CreateEvent {
        organizer,
        details,
        inventory,
        ticket_key_seed: rand::random(),
    };
    match state.node.propose(command).await? {
        Outcome::Event(Ok((id, _))) => Ok(id),
        Outcome::Event(Err(EventRejection::BadInventory { detail })) => {
            Err(ApiError::invalid("inventory", detail))
        }
        Outcome::Event(Err(EventRejection::BadPrice { max_cents })) => Err(ApiError::invalid(
            "price_cents",
            format!("at most {max_cents}"),
        )),
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<Response, ApiError> {
    if !caller.can_organize() {
        return Err(ApiError::Forbidden(
            "only organizers and admins may create events",
        ));
    }
    let details = validate_details(&body)?;
    let inventory = body
        .inventory
        .as_ref()
        .ok_or_else(|| ApiError::invalid("inventory", "missing"))?;
    let capacity_max = state.node.shared.read().limits().event_capacity_max;
    let spec = validate_inventory(inventory, capacity_max)?;
    let id = create_event(&state, caller.user_id, details, spec).await?;
    let s = state.node.shared.read();
    let event = s
        .event(id)
        .ok_or_else(|| ApiError::Internal("created event missing".into()))?;
    let location = format!("/api/v1/events/{id}");
    Ok((
        StatusCode::CREATED,
        [("location", location)],
        Json(views::event(event)),
    )
        .into_response())
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<Json<Value>, ApiError> {
    let id = EventId(id);
    update_event(&state, &caller, id, &body).await?;
    let s = state.node.shared.read();
    Ok(Json(views::event(
        s.event(id).ok_or(ApiError::NotFound("event"))?,
    )))
}

/// Replaces an event's details if `body.version` is still current; shared with the pages.
pub async fn update_event(
    state: &AppState,
    caller: &Caller,
    id: EventId,
    body: &EventBody,
) -> Result<(), ApiError> {
    let organizer = state.node.shared.read().event(id).map(|e| e.organizer);
    let organizer = organizer.ok_or(ApiError::NotFound("event"))?;
    if !(caller.is_admin() || caller.user_id == organizer) {
        return Err(ApiError::Forbidden(
            "only the event's organizer or an admin may edit it",
        ));
    }
    if body.inventory.is_some() {
        return Err(ApiError::invalid(
            "inventory",
            "cannot be changed after creation",
        ));
    }
    let expected_version = body
        .version
        .ok_or_else(|| ApiError::invalid("version", "missing: send the version you read"))?;
    let details = validate_details(body)?;
    let command = Command::UpdateEvent {
        event_id: id,
        expected_version,
        details,
    };
    match state.node.propose(command).await? {
        Outcome::Event(Ok(_)) => Ok(()),
        Outcome::Event(Err(EventRejection::VersionConflict { current_version })) => {
            Err(ApiError::VersionConflict { current_version })
        }
        Outcome::Event(Err(EventRejection::BadPrice { max_cents })) => Err(ApiError::invalid(
            "price_cents",
            format!("at most {max_cents}"),
        )),
        Outcome::Event(Err(_)) => Err(ApiError::NotFound("event")),
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

async fn detail(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let event = state
        .read_fresh(|s| s.event(EventId(id)).map(views::event))
        .await;
    Ok(Json(event.ok_or(ApiError::NotFound("event"))?))
}

/// Query of the event listing.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Words that must all appear in the name or description (case-insensitive).
    pub q: Option<String>,
    /// Earliest start (RFC 3339 or YYYY-MM-DD).
    pub from: Option<String>,
    /// Latest start (RFC 3339 or YYYY-MM-DD, inclusive of that day).
    pub to: Option<String>,
    /// Page number, from 1.
    pub page: Option<u32>,
    /// Events per page.
    pub per_page: Option<u32>,
}

/// A page of matching events.
pub struct EventPage<'a> {
    /// The events on this page, by start time.
    pub events: Vec<&'a Event>,
    /// Matches on all pages.
    pub total: usize,
    /// This page, from 1.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
}

/// Parses a date bound: RFC 3339, or a plain date (start of day, or end of day for `to`).
fn parse_bound(field: &str, value: &str, end_of_day: bool) -> Result<i64, ApiError> {
    if let Some(ms) = views::parse_rfc3339(value) {
        return Ok(ms);
    }
    let day = format!("{value}T00:00:00Z");
    let ms = views::parse_rfc3339(&day)
        .ok_or_else(|| ApiError::invalid(field, "must be a date (YYYY-MM-DD) or RFC 3339 time"))?;
    Ok(if end_of_day { ms + 86_400_000 - 1 } else { ms })
}

/// Filters, sorts and pages events; shared by the API and the pages.
pub fn search<'a>(
    events: impl Iterator<Item = &'a Event>,
    query: &ListQuery,
) -> Result<EventPage<'a>, ApiError> {
    let from = query.from.as_deref().filter(|s| !s.is_empty());
    let to = query.to.as_deref().filter(|s| !s.is_empty());
    let from = from.map(|v| parse_bound("from", v, false)).transpose()?;
    let to = to.map(|v| parse_bound("to", v, true)).transpose()?;
    let per_page = query.per_page.unwrap_or(20);
    if !(1..=PER_PAGE_MAX).contains(&per_page) {
        return Err(ApiError::invalid(
            "per_page",
            format!("must be 1 to {PER_PAGE_MAX}"),
        ));
    }
    let page = query.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::invalid("page", "pages start at 1"));
    }
    let words: Vec<String> = query
        .q
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let mut matches: Vec<&Event> = events
        .filter(|e| from.is_none_or(|f| e.details.starts_at_ms >= f))
        .filter(|e| to.is_none_or(|t| e.details.starts_at_ms <= t))
        .filter(|e| {
            if words.is_empty() {
                return true;
            }
            let text = format!("{} {}", e.details.name, e.details.description).to_lowercase();
            words.iter().all(|w| text.contains(w.as_str()))
        })
        .collect();
    matches.sort_by_key(|e| (e.details.starts_at_ms, e.id));
    let total = matches.len();
    let skip = (page as usize - 1) * per_page as usize;
    let events = matches
        .into_iter()
        .skip(skip)
        .take(per_page as usize)
        .collect();
    Ok(EventPage {
        events,
        total,
        page,
        per_page,
    })
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let s = state.node.shared.read();
    let page = search(s.events(), &query)?;
    let events: Vec<Value> = page.events.iter().map(|e| views::event(e)).collect();
    Ok(Json(json!({
        "events": events,
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
    })))
}

/// Returns the seat map: one letter per seat (`F` free, `H` held, `S` sold, `B` blocked).
async fn seats(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let s = state.node.shared.read();
    let event = s.event(EventId(id)).ok_or(ApiError::NotFound("event"))?;
    let tix_core::Inventory::Numbered { seats, layout, .. } = &event.inventory else {
        return Err(ApiError::Rejected(tix_core::Rejection::SeatNotApplicable));
    };
    let map = views::seat_letters(seats);
    Ok(Json(json!({
        "event_id": id,
        "seats": seats.len(),
        "rows": layout.map(|l| l.rows),
        "seats_per_row": layout.map(|l| l.seats_per_row),
        "map": map,
        "applied_index": state.node.shared.last_applied().map(|l| l.index),
    })))
}

/// The public half of the event's ticket-signing key: scanners verify codes offline with it.
async fn ticket_key(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let seed = state
        .read_fresh(|s| s.event(EventId(id)).map(|e| e.ticket_key_seed))
        .await
        .ok_or(ApiError::NotFound("event"))?;
    Ok(Json(json!({
        "event_id": id,
        "algorithm": "Ed25519",
        "public_key_hex": crate::ticket_code::public_key_hex(&seed),
        "code_format": "TIX1-<event_id>-<ticket_id>-<hex signature over \"tix ticket v1\\0\" || event_id (u64 BE) || ticket_id (u64 BE)>",
    })))
}
