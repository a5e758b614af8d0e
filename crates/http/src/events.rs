//! Events: create (organizers), list with search and date range, detail, edit with an optimistic
//! version check, cancellation (the organizer or an admin: every ticket refunded, every hold
//! released, in one log entry), and the seat map. Listing and detail read the local applied
//! state (they may lag the leader by a moment); edits and cancellations go through the log.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tix_core::{
    CANCEL_REASON_CHARS_MAX, CancelRejection, Command, Event, EventCancelled, EventDetails,
    EventId, EventRejection, IdempotencyKey, InventorySpec, Rejection, Replayable, SectionSpec,
    Venue, ZoneRejection,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::openapi as api_doc;
use crate::{text, views, zone};

/// What `CreateEvent` and `UpdateEvent` are answered: the event and its new version.
type EventAnswer = Result<(EventId, u64), EventRejection>;

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
        .route("/events/{id}/cancel", axum::routing::post(cancel))
        .route("/events/{id}/seats", get(seats))
        .route("/events/{id}/ticket-key", get(ticket_key))
}

/// Where the event takes place.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenueBody {
    /// Venue name, 1 to 200 characters after trimming white space; no control or
    /// text-direction characters (the pattern says exactly that).
    #[schema(example = "Old Hall")]
    #[schema(
        pattern = r"^[ \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069](?:[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]{0,198}[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069])?[ \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    name: String,
    /// Latitude in degrees.
    #[schema(minimum = -90, maximum = 90, example = 51.26)]
    lat: f64,
    /// Longitude in degrees.
    #[schema(minimum = -180, maximum = 180, example = 6.73)]
    lon: f64,
}

/// The inventory of a new event, chosen by `kind`. It cannot be changed later.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InventoryBody {
    /// General admission: a number of interchangeable tickets.
    Unnumbered {
        /// How many tickets exist (1 to 1,000,000 with the default limits).
        #[schema(minimum = 1, maximum = 1000000, example = 5000)]
        capacity: u32,
    },
    /// Numbered seats 1 to `seats`. Give `seats`, or `rows` and `seats_per_row` (then `seats` =
    /// rows × seats_per_row); with all three they must agree. `seats_per_row` arranges the seat
    /// map in rows (seat n is in row (n-1) / seats_per_row) and must divide `seats`.
    Numbered {
        /// How many seats (1 to 1,000,000 with the default limits).
        #[schema(minimum = 1, maximum = 1000000, example = 300)]
        seats: Option<u32>,
        /// Rows of the seat map; only used together with `seats_per_row`.
        #[schema(minimum = 1, maximum = 1000000, example = 15)]
        rows: Option<u32>,
        /// Seats in each row.
        #[schema(minimum = 1, maximum = 1000000, example = 20)]
        seats_per_row: Option<u32>,
        /// Seats that are never sold (e.g. for the sound desk), each in 1..=seats; at most
        /// 10,000.
        #[serde(default)]
        #[schema(schema_with = api_doc::blocked_seats)]
        blocked: Vec<u32>,
    },
    /// Numbered seats in named sections (blocks, tiers), each rows × seats per row at its own
    /// price. Seats are numbered on from section to section in the order given, row by row:
    /// the first section's row 1 starts at seat 1. At most 100 sections, 1,000,000 seats.
    Sections {
        /// The sections, best first ("best available anywhere" tries them in this order).
        #[schema(min_items = 1, max_items = 100)]
        sections: Vec<SectionBody>,
        /// Seats that are never sold, by seat number (see above); at most 10,000.
        #[serde(default)]
        #[schema(schema_with = api_doc::blocked_seats)]
        blocked: Vec<u32>,
    },
}

/// One section of a venue: rows of equal length at one price.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionBody {
    /// Its name, unique in the venue ignoring case, 1 to 60 characters after trimming white
    /// space (which is dropped); no control or text-direction characters (the pattern says
    /// exactly that).
    #[schema(example = "Block A")]
    #[schema(
        pattern = r"^[ \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069](?:[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]{0,58}[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069])?[ \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub name: String,
    /// Rows, front first.
    #[schema(minimum = 1, maximum = 1000000, example = 20)]
    pub rows: u32,
    /// Seats in each row.
    #[schema(minimum = 1, maximum = 1000000, example = 25)]
    pub seats_per_row: u32,
    /// What one seat of this section costs, in minor units of the event's currency, at most
    /// 10,000,000,000.
    #[schema(maximum = 10000000000_u64, example = 6500)]
    pub price_cents: u64,
}

/// The editable fields of an event: the body of `POST /events` (with `inventory`) and of
/// `PUT /events/{id}` (with `version`); see `openapi::EventCreateRequest` and
/// `openapi::EventUpdateRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// Event name, 1 to 200 characters after trimming white space (which is dropped); no
    /// control or text-direction characters (the pattern says exactly that).
    #[schema(example = "Chamber Concert")]
    #[schema(
        pattern = r"^[\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069](?:[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]{0,198}[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069])?[\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    name: String,
    /// Free text, at most 10,000 characters; line breaks and tabs allowed, other control or
    /// text-direction characters not. Omitted means empty.
    #[serde(default)]
    #[schema(max_length = 10000, default = "", example = "Strings by candlelight.")]
    #[schema(
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]*$"
    )]
    description: String,
    /// Start time: RFC 3339 with an offset (`2030-06-01T20:00:00Z`), or a local date and time
    /// without one (`2030-06-01T20:00`), read in `time_zone` (daylight saving time included; a
    /// local time skipped when the clocks jump forward is refused with 422).
    #[schema(example = "2030-06-01T20:00:00Z")]
    starts_at: String,
    /// The venue's IANA time zone (`Europe/Vienna`): pages show the event's times in it and a
    /// local `starts_at` is read in it. Omitted on create: `UTC`; omitted on update: unchanged.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9/_+-]{1,64}$",
        example = "Europe/Vienna"
    )]
    time_zone: Option<String>,
    /// Where.
    venue: VenueBody,
    /// Price of one ticket in minor units of `currency` (5000 = 50.00 EUR), at most
    /// 10,000,000,000.
    #[schema(maximum = 10000000000_u64, example = 5000)]
    price_cents: u64,
    /// The ISO 4217 code of a currency in circulation.
    #[schema(schema_with = api_doc::currency)]
    currency: String,
    /// Whether ticket holders may refund their own tickets before the event starts. Omitted
    /// means `true`. Organizers and admins can always refund.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    refundable: bool,
    /// The most tickets (sold plus held) one customer may have for this event: per account in
    /// the shop, per `client_id` at the box office. Omitted or `null` means no cap.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64, example = 4)]
    per_customer_max: Option<u32>,
    /// Required on create, refused on update (the inventory is fixed once on sale).
    #[serde(default)]
    pub inventory: Option<InventoryBody>,
    /// Required on update, refused on create: the `version` of the event you read. If someone
    /// changed the event since, the edit is refused with 409 `version_conflict`.
    #[serde(default)]
    #[schema(minimum = 1)]
    version: Option<u64>,
}

fn default_true() -> bool {
    true
}

/// Validates the editable fields into domain details and the event's time-zone name, naming
/// the first bad field. `current_zone` is the zone the event has (`UTC` for a new one): it
/// applies when the body names none.
pub fn validate_details(
    body: &EventBody,
    current_zone: &str,
) -> Result<(EventDetails, String), ApiError> {
    let zone_name = match &body.time_zone {
        Some(name) => zone::validate("time_zone", name)?,
        None => current_zone.to_owned(),
    };
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
    let starts_at_ms = match views::parse_rfc3339(&body.starts_at) {
        Some(ms) => ms,
        None => match zone::local_to_ms(&body.starts_at, &zone::of_name(&zone_name)) {
            Ok(ms) => ms,
            Err(zone::LocalTimeError::Malformed) => {
                return Err(ApiError::invalid(
                    "starts_at",
                    "must be an RFC 3339 time like 2030-06-01T20:00:00Z, or a local time like 2030-06-01T20:00 in time_zone",
                ));
            }
            Err(gap) => return Err(ApiError::invalid("starts_at", gap.to_string())),
        },
    };
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
    if !crate::currency::is_known(currency) {
        return Err(ApiError::invalid(
            "currency",
            format!(
                "{currency} is not the ISO 4217 code of a currency in circulation (EUR, USD, GBP, CHF, ...)"
            ),
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
    let details = EventDetails {
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
    };
    Ok((details, zone_name))
}

/// Refuses a start time that is not in the future (by this node's clock): an event in the past
/// would be listed and sold as upcoming.
pub fn check_upcoming(starts_at_ms: i64) -> Result<(), ApiError> {
    let now_ms = tix_raft::proposer::now_ms() as i64;
    if starts_at_ms <= now_ms {
        return Err(ApiError::invalid(
            "starts_at",
            format!(
                "must be in the future; {} has passed",
                views::rfc3339(starts_at_ms)
            ),
        ));
    }
    Ok(())
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
        InventoryBody::Sections { sections, blocked } => {
            let seats = validate_sections(sections, capacity_max)?;
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
            Ok(InventorySpec::Sections {
                sections: sections
                    .iter()
                    .map(|s| SectionSpec {
                        name: s.name.trim().to_owned(),
                        rows: s.rows,
                        seats_per_row: s.seats_per_row,
                        price_cents: s.price_cents,
                    })
                    .collect(),
                blocked: blocked.clone(),
            })
        }
    }
}

/// Checks a venue's sections field by field (the core checks them again) and returns how many
/// seats they hold.
fn validate_sections(sections: &[SectionBody], capacity_max: u32) -> Result<u32, ApiError> {
    if sections.is_empty() || sections.len() > tix_core::layout::SECTIONS_MAX {
        return Err(ApiError::invalid(
            "inventory.sections",
            format!("give 1 to {} sections", tix_core::layout::SECTIONS_MAX),
        ));
    }
    let price_max = tix_core::Limits::default().price_cents_max;
    let mut total: u64 = 0;
    for (i, s) in sections.iter().enumerate() {
        let field = |name: &str| format!("inventory.sections[{i}].{name}");
        let name = s.name.trim();
        let chars_max = tix_core::layout::SECTION_NAME_CHARS_MAX;
        if name.is_empty() || name.chars().count() > chars_max {
            return Err(ApiError::invalid(
                &field("name"),
                format!("must be 1 to {chars_max} characters"),
            ));
        }
        text::check_text(&field("name"), name, false)?;
        if sections[..i]
            .iter()
            .any(|o| o.name.trim().eq_ignore_ascii_case(name))
        {
            return Err(ApiError::invalid(
                &field("name"),
                format!("two sections are named \"{name}\""),
            ));
        }
        if !(1..=capacity_max).contains(&s.rows) {
            return Err(ApiError::invalid(
                &field("rows"),
                format!("must be between 1 and {capacity_max}"),
            ));
        }
        if !(1..=capacity_max).contains(&s.seats_per_row) {
            return Err(ApiError::invalid(
                &field("seats_per_row"),
                format!("must be between 1 and {capacity_max}"),
            ));
        }
        if s.price_cents > price_max {
            return Err(ApiError::invalid(
                &field("price_cents"),
                format!("at most {price_max}"),
            ));
        }
        total += u64::from(s.rows) * u64::from(s.seats_per_row);
    }
    if total > u64::from(capacity_max) {
        return Err(ApiError::invalid(
            "inventory.sections",
            format!("the sections hold {total} seats; at most {capacity_max}"),
        ));
    }
    Ok(total as u32)
}

/// Creates an event through the log for `organizer`; returns its id.
pub async fn create_event(
    state: &AppState,
    organizer: tix_core::UserId,
    details: EventDetails,
    inventory: InventorySpec,
    zone: &str,
) -> Result<EventId, ApiError> {
    check_upcoming(details.starts_at_ms)?;
    let command = Command::CreateEvent {
        organizer,
        details,
        inventory,
        ticket_key_seed: rand::random(),
    };
    match state.propose_for::<EventAnswer>(command).await? {
        Ok((id, _)) => {
            set_zone(state, id, organizer, zone).await?;
            Ok(id)
        }
        Err(EventRejection::BadInventory { detail }) => Err(ApiError::invalid("inventory", detail)),
        Err(EventRejection::BadPrice { max_cents }) => Err(ApiError::invalid(
            "price_cents",
            format!("at most {max_cents}"),
        )),
        Err(other) => Err(ApiError::Internal(format!(
            "create event refused: {other:?}"
        ))),
    }
}

/// Sets an event's time zone through the log after its create or update has committed; does
/// nothing when the zone is already the event's. Two entries, not one: a failure between them
/// leaves the event in its old zone, which a retried edit fixes.
pub async fn set_zone(
    state: &AppState,
    event_id: EventId,
    by: tix_core::UserId,
    zone: &str,
) -> Result<(), ApiError> {
    if state.node.shared.read().event_zone(event_id) == zone {
        return Ok(());
    }
    let command = Command::SetEventZone {
        event_id,
        by,
        zone: zone.to_owned(),
    };
    match state
        .propose_for::<Result<(), ZoneRejection>>(command)
        .await?
    {
        Ok(()) => Ok(()),
        Err(ZoneRejection::BadZone) => Err(ApiError::invalid(
            "time_zone",
            "must be an IANA time zone name like Europe/Vienna",
        )),
        Err(ZoneRejection::Cancelled) => Err(Rejection::EventCancelled.into()),
        Err(ZoneRejection::NotYourEvent) => Err(ApiError::Forbidden(
            "only the event's organizer or an admin may edit it",
        )),
        Err(ZoneRejection::UnknownEvent) => Err(ApiError::NotFound("event")),
    }
}

/// Create an event (organizers, admins)
///
/// Creates an event owned by the caller, on sale at once. The inventory (general admission or
/// numbered seats) is fixed at creation.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", operation_id = "createEvent",
    security(("bearerAuth" = [])),
    request_body(content = api_doc::EventCreateRequest, description = "The new event.",
        example = json!({"name": "Chamber Concert", "description": "Strings by candlelight.",
            "starts_at": "2030-06-01T20:00:00Z",
            "venue": {"name": "Old Hall", "lat": 51.26, "lon": 6.73},
            "price_cents": 5000, "currency": "EUR", "per_customer_max": 4,
            "inventory": {"kind": "numbered", "rows": 15, "seats_per_row": 20, "blocked": [1, 2]}})),
    responses(
        (status = 201, description = "Created, at version 1.", body = views::Event,
            links(
                ("getEvent" = (operation_id = "getEvent",
                    parameters(("id" = "$response.body#/id")))),
                ("updateEvent" = (operation_id = "updateEvent",
                    parameters(("id" = "$response.body#/id")))),
                ("purchase" = (operation_id = "purchase",
                    parameters(("id" = "$response.body#/id")))),
                ("placeHold" = (operation_id = "placeHold",
                    parameters(("id" = "$response.body#/id")))),
            ),
            headers(("Location" = String, description = "The path of the new event, `/api/v1/events/{id}`."))),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::OrganizerOnly),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::EventCreateInvalid),
    ))]
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
    if body.version.is_some() {
        return Err(ApiError::invalid(
            "version",
            "unknown field on create: a new event starts at version 1",
        ));
    }
    let (details, zone) = validate_details(&body, tix_core::ZONE_DEFAULT)?;
    let inventory = body
        .inventory
        .as_ref()
        .ok_or_else(|| ApiError::invalid("inventory", "missing"))?;
    let capacity_max = state.node.shared.read().limits().event_capacity_max;
    let spec = validate_inventory(inventory, capacity_max)?;
    let id = create_event(&state, caller.user_id, details, spec, &zone).await?;
    let s = state.node.shared.read();
    let event = s
        .event(id)
        .ok_or_else(|| ApiError::Internal("created event missing".into()))?;
    let location = format!("/api/v1/events/{id}");
    Ok((
        StatusCode::CREATED,
        [("location", location)],
        Json(views::event(event, &s)),
    )
        .into_response())
}

/// Edit an event (its organizer, admins)
///
/// Replaces the event's details (name, description, time, venue, price, currency, refund
/// policy, per-customer cap) with an optimistic version check: send the `version` you read; if
/// someone edited the event since, you get 409 `version_conflict` with `current_version`, and
/// should re-read, re-apply your change and retry. The inventory cannot be changed. Price
/// changes apply to holds placed from then on.
#[utoipa::path(put, path = "/api/v1/events/{id}", tag = "events", operation_id = "updateEvent",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam),
    request_body(content = api_doc::EventUpdateRequest,
        description = "The new details and the version they are based on.",
        example = json!({"name": "Chamber Concert (moved)", "description": "Strings by candlelight.",
            "starts_at": "2030-06-02T20:00:00Z",
            "venue": {"name": "Old Hall", "lat": 51.26, "lon": 6.73},
            "price_cents": 5000, "currency": "EUR", "refundable": true, "per_customer_max": 4,
            "version": 1})),
    responses(
        (status = 200, description = "Updated; `version` went up by one.", body = views::Event),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::EventOwnerOnly),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::VersionConflict),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::EventUpdateInvalid),
    ))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<Json<views::Event>, ApiError> {
    let id = EventId(id);
    update_event(&state, &caller, id, &body).await?;
    let s = state.node.shared.read();
    Ok(Json(views::event(
        s.event(id).ok_or(ApiError::NotFound("event"))?,
        &s,
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
    let current_zone = state.node.shared.read().event_zone(id).to_owned();
    let (details, zone) = validate_details(body, &current_zone)?;
    // Moving an event into the past is refused; an event that has started keeps its time
    // while its other details are edited.
    let current_start = state
        .node
        .shared
        .read()
        .event(id)
        .map(|e| e.details.starts_at_ms);
    if current_start != Some(details.starts_at_ms) {
        check_upcoming(details.starts_at_ms)?;
    }
    let command = Command::UpdateEvent {
        event_id: id,
        expected_version,
        details,
    };
    match state.propose_for::<EventAnswer>(command).await? {
        Ok(_) => set_zone(state, id, caller.user_id, &zone).await,
        Err(EventRejection::VersionConflict { current_version }) => {
            Err(ApiError::VersionConflict { current_version })
        }
        Err(EventRejection::BadPrice { max_cents }) => Err(ApiError::invalid(
            "price_cents",
            format!("at most {max_cents}"),
        )),
        Err(EventRejection::Cancelled) => Err(Rejection::EventCancelled.into()),
        Err(_) => Err(ApiError::NotFound("event")),
    }
}

/// Why an event is cancelled.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Shown to buyers on the event page: 1 to 500 characters after trimming white space
    /// (which is dropped); no control or text-direction characters (the pattern says exactly
    /// that).
    #[schema(example = "The hall is flooded; every ticket is refunded.")]
    #[schema(
        pattern = r"^[ \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069](?:[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]{0,498}[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069])?[ \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub reason: String,
    /// Your id for this request, 1 to 128 bytes. Repeat it only to retry the same
    /// cancellation: the retry gets the first answer again (with `Idempotent-Replayed: true`)
    /// instead of 409. Omitted: a fresh id.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, example = "cancel-1")]
    pub request_id: Option<String>,
}

/// Returns the trimmed reason, or which rule it breaks.
pub fn validate_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("reason", "must not be empty"));
    }
    text::check_text("reason", reason, false)?;
    let chars = reason.chars().count();
    if chars > CANCEL_REASON_CHARS_MAX {
        return Err(ApiError::invalid(
            "reason",
            format!("at most {CANCEL_REASON_CHARS_MAX} characters (this one has {chars})"),
        ));
    }
    Ok(reason.to_owned())
}

/// Returns a fresh request id for a cancellation sent without one (so a second cancellation is
/// "already cancelled", not a replay).
pub fn fresh_request_id() -> String {
    format!("cancel-{:032x}", rand::random::<u128>())
}

/// Returns whether the caller may cancel (or sees the cancel button of) an event.
pub fn may_cancel(caller: &Caller, event: &Event) -> bool {
    caller.is_admin() || caller.user_id == event.organizer
}

/// Cancels an event for its organizer or an admin and pays the card payments back; shared with
/// the pages. The flag is true when this is the recorded answer to an earlier request with the
/// same request id (nothing was paid back again).
pub async fn cancel_event(
    state: &AppState,
    caller: &Caller,
    id: EventId,
    reason: &str,
    request_id: String,
) -> Result<(EventCancelled, bool), ApiError> {
    let reason = validate_reason(reason)?;
    if request_id.is_empty() || request_id.len() > 128 {
        return Err(ApiError::invalid("request_id", "must be 1 to 128 bytes"));
    }
    let allowed = state
        .read_fresh(|s| s.event(id).map(|e| may_cancel(caller, e)))
        .await;
    match allowed {
        None => return Err(ApiError::NotFound("event")),
        Some(false) => return Err(ApiError::Forbidden(CANCEL_OWNER_ONLY)),
        Some(true) => {}
    }
    // Read before: once cancelled, the event has no active tickets to find its buyers by.
    let buyers = crate::notify::buyers_of(state, id);
    let command = Command::CancelEvent {
        event_id: id,
        key: IdempotencyKey::new(format!("user:{}", caller.user_id), request_id),
        by: caller.user_id,
        reason,
    };
    let answer: Replayable<Result<EventCancelled, CancelRejection>> =
        state.propose_for(command).await?;
    let cancelled = match answer.result {
        Ok(cancelled) => cancelled,
        Err(CancelRejection::UnknownEvent) => return Err(ApiError::NotFound("event")),
        Err(CancelRejection::NotYourEvent) => return Err(ApiError::Forbidden(CANCEL_OWNER_ONLY)),
        Err(CancelRejection::AlreadyCancelled) => return Err(ApiError::AlreadyCancelled),
        Err(CancelRejection::BadReason) => {
            return Err(ApiError::invalid(
                "reason",
                "1 to 500 characters, no control characters",
            ));
        }
        Err(CancelRejection::BadKey) => {
            return Err(ApiError::invalid("request_id", "must be 1 to 128 bytes"));
        }
    };
    // The cancellation is committed: paying back runs in a task of its own, which this request
    // waits for but which a timed-out or abandoned request does not stop half-way.
    let payments = state.payments.clone();
    let refunds = cancelled.payments.clone();
    let paying_back = tokio::spawn(async move {
        for payment in refunds {
            let payment_ref = &payment.payment_ref;
            if let Err(e) = payments.refund(payment_ref, payment.amount_cents).await {
                tracing::error!(%payment_ref, error = %e, "payment refund failed; settle by hand");
            }
        }
    });
    if let Err(e) = paying_back.await {
        tracing::error!(error = %e, "paying back a cancelled event's orders stopped; settle by hand");
    }
    if !answer.replayed {
        let reason = state
            .node
            .shared
            .read()
            .cancellation(id)
            .map(|c| c.reason.clone())
            .unwrap_or_default();
        crate::notify::event_cancelled(state, id, &reason, &buyers);
    }
    Ok((cancelled, answer.replayed))
}

/// The refusal of a cancellation by someone else.
pub const CANCEL_OWNER_ONLY: &str = "only the event's organizer or an admin may cancel it";

/// Cancel an event
///
/// Cancels an event for good, in one log entry: every active ticket is refunded (whatever the
/// refund policy says, admitted tickets included; shop payments are paid back to the card),
/// every open hold is released, and from then on holds, purchases, check-ins and edits of the
/// event are refused with `event_cancelled` (409). The event stays readable, with `cancelled`
/// set. Only the event's organizer or an admin may cancel.
///
/// **Idempotency:** with a `request_id`, repeating the request returns the first answer again
/// (with `Idempotent-Replayed: true`); any other cancellation of a cancelled event is 409
/// `already_cancelled`.
#[utoipa::path(post, path = "/api/v1/events/{id}/cancel", tag = "events",
    operation_id = "cancelEvent",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam),
    request_body(content = CancelBody, description = "Why.",
        example = json!({"reason": "The hall is flooded; every ticket is refunded."})),
    responses(
        (status = 200, description = "Cancelled (or the answer to an earlier request with the \
            same request_id).", body = views::Cancellation,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the \
                recorded answer to an earlier request with the same request_id."))),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::CancelOwnerOnly),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::AlreadyCancelled),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::CancelInvalid),
    ))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<CancelBody>,
) -> Result<Response, ApiError> {
    let request_id = body.request_id.unwrap_or_else(fresh_request_id);
    let id = EventId(id);
    let (cancelled, replayed) = cancel_event(&state, &caller, id, &body.reason, request_id).await?;
    let view = {
        let s = state.node.shared.read();
        let cancellation = s.cancellation(id).ok_or(ApiError::NotFound("event"))?;
        views::cancellation(&cancelled, cancellation)
    };
    let mut response = (StatusCode::OK, Json(view)).into_response();
    if replayed {
        let replayed = axum::http::HeaderValue::from_static("true");
        response
            .headers_mut()
            .insert("idempotent-replayed", replayed);
    }
    Ok(response)
}

/// An event
///
/// Returns one event with its inventory shape and availability. Public. **Consistency:** a
/// local read of this node's applied state (it may lag the leader by an entry or two; an event
/// not found locally is looked up again after a linearizable read).
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events", operation_id = "getEvent",
    params(api_doc::EventIdParam),
    responses(
        (status = 200, description = "The event.", body = views::Event),
        (status = 404, response = api_doc::EventNotFound),
    ))]
async fn detail(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<views::Event>, ApiError> {
    let event = state
        .read_fresh(|s| {
            let id = EventId(id);
            s.event(id).map(|e| views::event(e, s))
        })
        .await;
    Ok(Json(event.ok_or(ApiError::NotFound("event"))?))
}

/// Query of the event listing.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Words that must all appear in the name or description (case-insensitive, substring
    /// match).
    #[param(example = "concert")]
    pub q: Option<String>,
    /// Earliest start: an RFC 3339 time, or a date `YYYY-MM-DD` meaning its first millisecond
    /// (UTC). Empty means no bound.
    #[param(schema_with = api_doc::from_bound)]
    pub from: Option<String>,
    /// Latest start, inclusive: an RFC 3339 time, or a date `YYYY-MM-DD` meaning the whole of
    /// that day (UTC). Empty means no bound.
    #[param(schema_with = api_doc::to_bound)]
    pub to: Option<String>,
    /// The page, from 1.
    #[param(minimum = 1, maximum = 4294967295_u64, format = Int64, default = 1)]
    pub page: Option<u32>,
    /// Events per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
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

/// List and search events
///
/// Lists events by start time (then id), a page at a time, optionally filtered by words and a
/// date range. Public. Unknown query parameters are refused (422). **Consistency:** a local
/// read of this node's applied state; it may lag the leader by an entry or two.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", operation_id = "listEvents",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of events (empty past the last page).",
            body = views::EventPage),
        (status = 422, response = api_doc::ListQueryInvalid),
    ))]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<views::EventPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let s = state.node.shared.read();
    let page = search(s.events(), &query)?;
    Ok(Json(views::EventPage {
        events: page.events.iter().map(|e| views::event(e, &s)).collect(),
        total: page.total as u64,
        page: page.page,
        per_page: page.per_page,
    }))
}

/// Seat map of a numbered event
///
/// Returns the state of every seat, one letter per seat (`F` free, `H` held, `S` sold, `B`
/// blocked). Public. A general-admission event has no seat map (422). **Consistency:** a local
/// read of this node's applied state; it may lag the leader by an entry or two.
#[utoipa::path(get, path = "/api/v1/events/{id}/seats", tag = "events",
    operation_id = "getSeatMap",
    params(api_doc::EventIdParam),
    responses(
        (status = 200, description = "The seat map.", body = views::SeatMap),
        (status = 404, response = api_doc::EventNotFound),
        (status = 422, response = api_doc::NoSeatMap),
    ))]
async fn seats(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<views::SeatMap>, ApiError> {
    let s = state.node.shared.read();
    let event = s.event(EventId(id)).ok_or(ApiError::NotFound("event"))?;
    let tix_core::Inventory::Numbered { seats, layout, .. } = &event.inventory else {
        return Err(ApiError::Rejected(tix_core::Rejection::SeatNotApplicable));
    };
    let map = s.seat_map(event).expect("numbered");
    Ok(Json(views::SeatMap {
        event_id: id,
        seats: seats.len() as u32,
        rows: layout.map(|l| l.rows),
        seats_per_row: layout.map(|l| l.seats_per_row),
        sections: views::sections(&map),
        map: views::seat_letters(seats),
        applied_index: state.node.shared.last_applied().map(|l| l.index),
    }))
}

/// The public key that verifies this event's ticket codes
///
/// Ticket codes (what a ticket's QR code carries) have the form `TIX2-<base32>`: RFC 4648
/// base32 (no padding) of the event id and the ticket id as LEB128 varints followed by a 64-byte
/// Ed25519 signature by the event's key over the bytes `tix ticket v1\0` followed by the event
/// id and the ticket id as big-endian u64. Codes issued earlier,
/// `TIX1-<event_id>-<ticket_id>-<hex signature>`, carry the same signature. A door scanner can verify a code offline with this public key; whether the
/// ticket is still valid (not refunded, not yet admitted) is checked at the door.
#[utoipa::path(get, path = "/api/v1/events/{id}/ticket-key", tag = "events",
    operation_id = "ticketKey",
    params(api_doc::EventIdParam),
    responses(
        (status = 200, description = "The key.", body = views::TicketKey),
        (status = 404, response = api_doc::EventNotFound),
    ))]
async fn ticket_key(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<views::TicketKey>, ApiError> {
    let seed = state
        .read_fresh(|s| s.event(EventId(id)).map(|e| e.ticket_key_seed))
        .await
        .ok_or(ApiError::NotFound("event"))?;
    Ok(Json(views::TicketKey {
        event_id: id,
        algorithm: "Ed25519".into(),
        public_key_hex: crate::ticket_code::public_key_hex(&seed),
        code_format: "TIX2-<base32 (RFC 4648, no padding) of LEB128 event_id || LEB128 ticket_id || Ed25519 signature over \"tix ticket v1\\0\" || event_id (u64 BE) || ticket_id (u64 BE)>; earlier codes: TIX1-<event_id>-<ticket_id>-<hex signature>".into(),
    }))
}
