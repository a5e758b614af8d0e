//! JSON shapes of the API's responses, built from domain types, and time conversions
//! (RFC 3339 on the wire, milliseconds since the epoch inside).
//!
//! Every shape derives `utoipa::ToSchema`, so the OpenAPI document (`openapi.rs`) describes
//! exactly what the handlers serialize; the doc comments are the schemas' descriptions.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tix_core::{Inventory as DomainInventory, SeatState, TicketStatus};
use utoipa::ToSchema;

/// Formats milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses RFC 3339 into milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Returns the wire name of a role.
pub fn role_name(role: tix_core::Role) -> &'static str {
    Role::from(role).name()
}

/// What an account may do. `attendee`: buy in the shop. `organizer`: also create events and
/// manage their own (edit, box-office sales, sales export, refunds, check-in). `staff`: also
/// check tickets in at the door of any event. `admin`: everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Buys in the shop.
    Attendee,
    /// Creates and manages their own events.
    Organizer,
    /// Checks tickets in at the door.
    Staff,
    /// Everything.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Attendee => "attendee",
            Role::Organizer => "organizer",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }
}

impl From<tix_core::Role> for Role {
    fn from(role: tix_core::Role) -> Role {
        match role {
            tix_core::Role::Attendee => Role::Attendee,
            tix_core::Role::Organizer => Role::Organizer,
            tix_core::Role::Staff => Role::Staff,
            tix_core::Role::Admin => Role::Admin,
        }
    }
}

/// An account as the API shows it (never the password or its hash).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 5, "username": "alice", "role": "attendee"}))]
pub struct User {
    /// The account id.
    #[schema(minimum = 1)]
    pub id: u64,
    /// The login name.
    #[schema(example = "alice")]
    pub username: String,
    /// What the account may do.
    pub role: Role,
    /// The account's email address (only its owner sees it; absent elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "alice@example.org")]
    pub email: Option<String>,
}

/// An account as JSON (what `auth::open_session` hands the API and the pages).
pub fn user(u: &tix_core::User) -> Value {
    serde_json::json!(User {
        id: u.id.0,
        username: u.username.clone(),
        role: u.role.into(),
        email: None,
    })
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// The bearer token: 256 random bits, hex encoded. Send it as `Authorization: Bearer
    /// <token>`. Only its SHA-256 is stored; it cannot be shown again.
    #[schema(
        pattern = "^[0-9a-f]{64}$",
        example = "3f9a2c0d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19"
    )]
    pub token: String,
    /// When the session ends (24 hours after login by default), unless logged out first.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The account logged in.
    pub user: User,
}

/// Counters of an event. Always `capacity = sold + held + available`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"event_id": 2, "capacity": 298, "sold": 10, "held": 2, "available": 286}))]
pub struct Availability {
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// Tickets that can ever be sold (blocked seats excluded).
    pub capacity: u32,
    /// Sold and not refunded.
    pub sold: u32,
    /// In active shop holds.
    pub held: u32,
    /// On sale right now.
    pub available: u32,
}

/// Returns an event's availability.
pub fn availability(e: &tix_core::Event) -> Availability {
    let inv = &e.inventory;
    Availability {
        event_id: e.id.0,
        capacity: inv.capacity(),
        sold: inv.sold(),
        held: inv.held(),
        available: inv.available(),
    }
}

/// Where an event takes place.
#[derive(Debug, Serialize, ToSchema)]
pub struct Venue {
    /// Venue name.
    #[schema(example = "Old Hall")]
    pub name: String,
    /// Latitude in degrees.
    #[schema(minimum = -90, maximum = 90, example = 51.26)]
    pub lat: f64,
    /// Longitude in degrees.
    #[schema(minimum = -180, maximum = 180, example = 6.73)]
    pub lon: f64,
}

/// An event's inventory shape, chosen by `kind`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inventory {
    /// General admission: a number of interchangeable tickets.
    Unnumbered {
        /// How many tickets exist.
        capacity: u32,
    },
    /// Numbered seats 1 to `seats`.
    Numbered {
        /// How many seats, blocked ones included.
        seats: u32,
        /// Rows of the seat map, or `null` when the seats are not arranged in rows.
        rows: Option<u32>,
        /// Seats in each row, or `null`.
        seats_per_row: Option<u32>,
        /// Seats never sold, ascending.
        blocked: Vec<u32>,
    },
    /// Numbered seats 1 to `seats` in named sections, numbered on from section to section.
    Sections {
        /// How many seats, blocked ones included.
        seats: u32,
        /// The sections, in the organizer's order.
        sections: Vec<Section>,
        /// Seats never sold, ascending.
        blocked: Vec<u32>,
    },
}

/// One section of a venue, and where its seats are in the event's numbering.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "Block A", "rows": 20, "seats_per_row": 25,
    "price_cents": 6500, "first_seat": 1, "last_seat": 500}))]
pub struct Section {
    /// Its name; empty for the one section of an event without named sections.
    pub name: String,
    /// Rows, front first.
    pub rows: u32,
    /// Seats in each row.
    pub seats_per_row: u32,
    /// What one of its seats costs, in minor units of the event's currency.
    pub price_cents: u64,
    /// The number of its first seat (row 1, seat 1); row r, seat p is
    /// `first_seat + (r-1) × seats_per_row + (p-1)`.
    pub first_seat: u32,
    /// The number of its last seat.
    pub last_seat: u32,
}

/// Returns the sections of a seat map as the API shows them.
pub fn sections(map: &tix_core::SeatMap) -> Vec<Section> {
    map.sections
        .iter()
        .map(|s| Section {
            name: s.name.to_owned(),
            rows: s.rows,
            seats_per_row: s.seats_per_row,
            price_cents: s.price_cents,
            first_seat: s.first_seat,
            last_seat: s.first_seat + s.seats() - 1,
        })
        .collect()
}

/// Returns the numbers of the blocked seats, ascending.
fn blocked_seats(seats: &[SeatState]) -> Vec<u32> {
    seats
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == SeatState::Blocked)
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

/// An event with its inventory shape and current availability.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 2, "name": "Chamber Concert", "description": "Strings by candlelight.",
    "starts_at": "2030-06-01T20:00:00Z", "time_zone": "Europe/Vienna",
    "starts_at_local": "2030-06-01T22:00:00+02:00",
    "venue": {"name": "Old Hall", "lat": 51.26, "lon": 6.73},
    "price_cents": 5000, "currency": "EUR", "refundable": true, "per_customer_max": 4,
    "organizer_id": 2, "version": 1,
    "inventory": {"kind": "numbered", "seats": 300, "rows": 15, "seats_per_row": 20,
                  "blocked": [1, 2]},
    "availability": {"event_id": 2, "capacity": 298, "sold": 10, "held": 2, "available": 286},
    "cancelled": null,
    "image_url": "/api/v1/events/2/image?v=9f86d081884c7d65",
    "image": {"url": "/api/v1/events/2/image?v=9f86d081884c7d65", "content_type": "image/jpeg",
              "bytes": 182731, "width": 1600, "height": 900,
              "alt": "The string quartet on the Old Hall's stage",
              "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
}))]
pub struct Event {
    /// The event id.
    #[schema(minimum = 1)]
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Start time, UTC.
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// The venue's IANA time zone; `UTC` unless the organizer set one.
    #[schema(example = "Europe/Vienna")]
    pub time_zone: String,
    /// The start in `time_zone`, with that zone's offset then.
    #[schema(format = DateTime, example = "2030-06-01T22:00:00+02:00")]
    pub starts_at_local: String,
    /// Where.
    pub venue: Venue,
    /// Price of one ticket in minor units of `currency`.
    pub price_cents: u64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Whether ticket holders may refund their own tickets before the start.
    pub refundable: bool,
    /// The most tickets one customer may have, or `null` for no cap.
    pub per_customer_max: Option<u32>,
    /// The account that owns the event.
    #[schema(minimum = 1)]
    pub organizer_id: u64,
    /// Starts at 1; every accepted edit adds one. Send it back when editing.
    #[schema(minimum = 1)]
    pub version: u64,
    /// Its inventory shape.
    pub inventory: Inventory,
    /// Its counters now.
    pub availability: Availability,
    /// When and why it was cancelled, or `null` while it is on.
    pub cancelled: Option<EventCancellation>,
    /// Where its image is (`GET`, public, cacheable; the `v` parameter changes with the
    /// image), or `null` when it has none.
    #[schema(example = "/api/v1/events/2/image?v=9f86d081884c7d65")]
    pub image_url: Option<String>,
    /// Its image's description, or `null` when it has none.
    pub image: Option<EventImage>,
}

/// An event's image: what it is; the bytes are at `url`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"url": "/api/v1/events/2/image?v=9f86d081884c7d65",
    "content_type": "image/jpeg", "bytes": 182731, "width": 1600, "height": 900,
    "alt": "The string quartet on the Old Hall's stage",
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}))]
pub struct EventImage {
    /// Where the image is: its `v` parameter changes with the image, so this URL may be cached
    /// for good.
    pub url: String,
    /// Its media type, read from its bytes.
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    /// Its size in bytes.
    pub bytes: u32,
    /// Width in pixels.
    #[schema(minimum = 1)]
    pub width: u32,
    /// Height in pixels.
    #[schema(minimum = 1)]
    pub height: u32,
    /// What it shows, as the organizer described it; empty when they did not (pages then use
    /// the event's name).
    pub alt: String,
    /// SHA-256 of its bytes, hex; its `ETag` is this in quotes.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
}

/// Returns the URL of an event's image: versioned by the first 16 hex digits of its SHA-256.
pub fn image_url(event_id: u64, image: &tix_core::EventImage) -> String {
    let version = hex::encode(&image.sha256[..8]);
    format!("/api/v1/events/{event_id}/image?v={version}")
}

/// Returns an event's image as the API shows it.
pub fn event_image(event_id: u64, image: &tix_core::EventImage) -> EventImage {
    EventImage {
        url: image_url(event_id, image),
        content_type: image.format.content_type().to_owned(),
        bytes: image.bytes,
        width: image.width,
        height: image.height,
        alt: image.alt.clone(),
        sha256: hex::encode(image.sha256),
    }
}

/// When and why an event was cancelled.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventCancellation {
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Why, as the organizer wrote it.
    pub reason: String,
}

/// A cancelled event: what the cancellation undid.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"event_id": 2, "tickets_refunded": 120, "holds_released": 3,
    "amount_cents": 600000, "cancelled_at": "2030-05-01T09:30:00Z",
    "reason": "The hall is flooded; every ticket is refunded."}))]
pub struct Cancellation {
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// How many active tickets were refunded.
    pub tickets_refunded: u32,
    /// How many open holds were released.
    pub holds_released: u32,
    /// The refunded tickets' prices together, in minor units of the event's currency.
    pub amount_cents: u64,
    /// When it was cancelled.
    #[schema(format = DateTime)]
    pub cancelled_at: String,
    /// Why.
    pub reason: String,
}

/// Returns a cancellation as the API shows it.
pub fn cancellation(
    answer: &tix_core::EventCancelled,
    kept: &tix_core::Cancellation,
) -> Cancellation {
    Cancellation {
        event_id: answer.event_id.0,
        tickets_refunded: answer.tickets_refunded,
        holds_released: answer.holds_released,
        amount_cents: answer.amount_cents,
        cancelled_at: rfc3339(kept.at_ms as i64),
        reason: kept.reason.clone(),
    }
}

/// Returns an event as the API shows it, with what the state keeps beside it: its
/// cancellation, venue layout, time zone and image.
pub fn event(e: &tix_core::Event, s: &tix_core::State) -> Event {
    let cancelled = s.cancellation(e.id);
    let venue_layout = s.layout(e.id);
    let time_zone = s.event_zone(e.id);
    let image = s.event_image(e.id);
    let d = &e.details;
    let inventory = match (&e.inventory, venue_layout) {
        (DomainInventory::Unnumbered { capacity, .. }, _) => Inventory::Unnumbered {
            capacity: *capacity,
        },
        (DomainInventory::Numbered { seats, .. }, Some(venue_layout)) => {
            let map = tix_core::SeatMap::of(&e.inventory, Some(venue_layout), d.price_cents)
                .expect("numbered");
            Inventory::Sections {
                seats: seats.len() as u32,
                sections: sections(&map),
                blocked: blocked_seats(seats),
            }
        }
        (DomainInventory::Numbered { seats, layout, .. }, None) => Inventory::Numbered {
            seats: seats.len() as u32,
            rows: layout.map(|l| l.rows),
            seats_per_row: layout.map(|l| l.seats_per_row),
            blocked: blocked_seats(seats),
        },
    };
    Event {
        id: e.id.0,
        name: d.name.clone(),
        description: d.description.clone(),
        starts_at: rfc3339(d.starts_at_ms),
        time_zone: time_zone.to_owned(),
        starts_at_local: crate::zone::rfc3339_local(
            d.starts_at_ms,
            &crate::zone::of_name(time_zone),
        ),
        venue: Venue {
            name: d.venue.name.clone(),
            lat: d.venue.lat,
            lon: d.venue.lon,
        },
        price_cents: d.price_cents,
        currency: d.currency.clone(),
        refundable: d.refundable,
        per_customer_max: d.per_customer_max,
        organizer_id: e.organizer.0,
        version: e.version,
        inventory,
        availability: availability(e),
        cancelled: cancelled.map(|c| EventCancellation {
            at: rfc3339(c.at_ms as i64),
            reason: c.reason.clone(),
        }),
        image_url: image.map(|i| image_url(e.id.0, i)),
        image: image.map(|i| event_image(e.id.0, i)),
    }
}

/// One page of matching events, by start time.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events on this page.
    pub events: Vec<Event>,
    /// Matching events on all pages.
    pub total: u64,
    /// This page, from 1.
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    pub page: u32,
    /// Page size.
    #[schema(minimum = 1, maximum = 100)]
    pub per_page: u32,
}

/// The state of every seat of a numbered event.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatMap {
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// How many seats.
    pub seats: u32,
    /// Rows, or `null`.
    pub rows: Option<u32>,
    /// Seats per row, or `null`.
    pub seats_per_row: Option<u32>,
    /// The sections, in order: the named sections of a venue, or one unnamed section (its
    /// rows, or one row of every seat) for an event without them.
    pub sections: Vec<Section>,
    /// One letter per seat, seat 1 first: `F` free, `H` held in a shop hold, `S` sold, `B`
    /// blocked. Split it into rows of `seats_per_row` to draw the hall.
    #[schema(pattern = "^[FHSB]*$", example = "BBFFFFSSHHFF")]
    pub map: String,
    /// The Raft log index this node had applied when it answered; the map reflects every sale
    /// up to it.
    pub applied_index: Option<u64>,
}

/// The public half of an event's ticket-signing key: door scanners verify ticket codes offline
/// with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketKey {
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// Always `Ed25519`.
    #[schema(pattern = "^Ed25519$")]
    pub algorithm: String,
    /// The 32-byte public key, hex encoded.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub public_key_hex: String,
    /// How a ticket code is built and what the signature covers.
    pub code_format: String,
}

/// A box-office ticket was sold (now, or by the earlier request this one repeats).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"outcome": "sold", "event_id": 2, "ticket_id": 118, "seat": 17,
                          "client_id": "alice", "request_id": "r1"}))]
pub struct PurchaseSold {
    /// Always `sold`.
    pub outcome: PurchaseOutcome,
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// The new ticket; unique across all events.
    #[schema(minimum = 1)]
    pub ticket_id: u64,
    /// The seat sold, or `null` for general admission.
    pub seat: Option<u32>,
    /// As sent.
    pub client_id: String,
    /// As sent.
    pub request_id: String,
}

/// What a purchase did: `sold` (a refusal is a `Problem` with `outcome: rejected`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseOutcome {
    /// A ticket was sold.
    Sold,
}

/// One line of the NDJSON sales export: an active (sold, not refunded) ticket. Box-office sales
/// carry the purchase's `client_id` and `request_id`; shop sales carry `user:<account id>` and
/// `order:<order id>`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SaleLine {
    /// The ticket.
    #[schema(minimum = 1)]
    pub ticket_id: u64,
    /// Who bought.
    #[schema(example = "alice")]
    pub client_id: String,
    /// The request that bought it.
    #[schema(example = "r1")]
    pub request_id: String,
    /// The seat, or `null`.
    pub seat: Option<u32>,
}

/// The answers to a batch of purchases, in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    /// One answer per purchase.
    pub results: Vec<BatchResult>,
}

/// The answer to one purchase of a batch: `status` plus the body `POST
/// /api/v1/events/{id}/purchases` would have answered — a `PurchaseSold` (201) or a `Problem`
/// (anything else) — and `replayed: true` when it came from the idempotency record.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// The status the single purchase would have answered (201, 403, 404, 409, 422, 503).
    #[schema(minimum = 200, maximum = 599)]
    pub status: u16,
    /// Present (and true) when the answer is the recorded one of an earlier request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
}

/// Inventory reserved for you while you pay. It lapses at `expires_at` and the tickets go back
/// on sale.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"hold_id": 7, "event_id": 2, "quantity": 2, "seats": [17, 18],
                          "expires_at": "2027-05-01T12:10:00Z", "expires_at_ms": 1808741400000_u64}))]
pub struct Hold {
    /// The hold.
    #[schema(minimum = 1)]
    pub hold_id: u64,
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// How many tickets.
    #[schema(minimum = 1)]
    pub quantity: u32,
    /// The seats held, for a numbered event; empty for general admission.
    pub seats: Vec<u32>,
    /// When the hold lapses, UTC.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The same instant in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

/// Returns a hold as the API shows it.
pub fn hold(h: &tix_core::Hold) -> Hold {
    Hold {
        hold_id: h.id.0,
        event_id: h.event_id.0,
        quantity: h.quantity,
        seats: h.seats.clone(),
        expires_at: rfc3339(h.expires_at_ms as i64),
        expires_at_ms: h.expires_at_ms,
    }
}

/// The answer to a repeated hold request whose hold was since paid for, released or expired.
#[derive(Debug, Serialize, ToSchema)]
pub struct PastHold {
    /// The hold.
    #[schema(minimum = 1)]
    pub hold_id: u64,
    /// The seats it held.
    pub seats: Vec<u32>,
    /// Always `false`.
    pub active: bool,
}

/// A placed hold, or (when the request repeats one whose hold is gone) what is left of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PlacedHold {
    /// The hold, active.
    Active(Hold),
    /// The hold was paid for, released or expired since.
    Past(PastHold),
}

/// A paid order: the tickets a hold became.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"order_id": 3, "event_id": 2, "tickets": [41, 42], "total_cents": 10000,
                          "payment_ref": "testpay_00000003", "confirmed_at": "2027-05-01T12:01:30Z"}))]
pub struct Order {
    /// The order.
    #[schema(minimum = 1)]
    pub order_id: u64,
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// Its ticket ids.
    pub tickets: Vec<u64>,
    /// What was charged, in minor units of the event's currency.
    pub total_cents: u64,
    /// The payment provider's reference.
    #[schema(example = "testpay_00000003")]
    pub payment_ref: String,
    /// When the order was confirmed.
    #[schema(format = DateTime)]
    pub confirmed_at: String,
}

/// Returns an order as the API shows it.
pub fn order(o: &tix_core::Order) -> Order {
    Order {
        order_id: o.id.0,
        event_id: o.event_id.0,
        tickets: o.tickets.iter().map(|t| t.0).collect(),
        total_cents: o.total_cents,
        payment_ref: o.payment_ref.clone(),
        confirmed_at: rfc3339(o.confirmed_at_ms as i64),
    }
}

/// The caller's orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    /// Oldest first.
    pub orders: Vec<Order>,
}

/// Whether a ticket admits: `active` tickets do; `refunded` ones and `cancelled` ones (refunded
/// because the organizer cancelled the event) do not.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Valid for entry.
    Active,
    /// Refunded.
    Refunded,
    /// Refunded because the organizer cancelled the event.
    Cancelled,
}

/// One admission to an event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"ticket_id": 41, "event_id": 2, "seat": 17, "order_id": 3,
                          "price_cents": 5000, "sold_at": "2027-05-01T12:01:30Z", "status": "active",
                          "refunded_at": null, "checked_in_at": null}))]
pub struct Ticket {
    /// The ticket.
    #[schema(minimum = 1)]
    pub ticket_id: u64,
    /// The event.
    #[schema(minimum = 1)]
    pub event_id: u64,
    /// The seat, or `null`.
    pub seat: Option<u32>,
    /// The shop order, or `null` for a box-office sale.
    pub order_id: Option<u64>,
    /// Price paid, minor units.
    pub price_cents: u64,
    /// When it was sold.
    #[schema(format = DateTime)]
    pub sold_at: String,
    /// Active, refunded or cancelled (refunded by the event's cancellation).
    pub status: TicketState,
    /// When it was refunded, or `null`.
    #[schema(format = DateTime)]
    pub refunded_at: Option<String>,
    /// When it was admitted at the door, or `null`.
    #[schema(format = DateTime)]
    pub checked_in_at: Option<String>,
}

/// Returns a ticket as the API shows it.
pub fn ticket(t: &tix_core::Ticket) -> Ticket {
    let (status, refunded_at) = match t.status {
        TicketStatus::Active => (TicketState::Active, None),
        TicketStatus::Refunded { at_ms } => (TicketState::Refunded, Some(rfc3339(at_ms as i64))),
        TicketStatus::Cancelled { at_ms } => (TicketState::Cancelled, Some(rfc3339(at_ms as i64))),
    };
    Ticket {
        ticket_id: t.id.0,
        event_id: t.event_id.0,
        seat: t.seat,
        order_id: t.order_id.map(|o| o.0),
        price_cents: t.price_cents,
        sold_at: rfc3339(t.sold_at_ms as i64),
        status,
        refunded_at,
        checked_in_at: t.checked_in.map(|(at, _)| rfc3339(at as i64)),
    }
}

/// The caller's shop tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketList {
    /// Active and refunded tickets, oldest first.
    pub tickets: Vec<Ticket>,
}

/// The state of a refunded ticket: `refunded`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Refunded.
    Refunded,
}

/// A refunded ticket.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"ticket_id": 41, "status": "refunded", "amount_cents": 5000}))]
pub struct Refund {
    /// The ticket.
    #[schema(minimum = 1)]
    pub ticket_id: u64,
    /// Always `refunded`.
    pub status: RefundStatus,
    /// What is paid back: the ticket's price, in minor units.
    pub amount_cents: u64,
}

/// A ticket admitted at the door.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"ticket_id": 41, "admitted": true, "at": "2027-06-01T19:42:10Z"}))]
pub struct Admission {
    /// The ticket.
    #[schema(minimum = 1)]
    pub ticket_id: u64,
    /// Always `true`.
    pub admitted: bool,
    /// When it was admitted.
    #[schema(format = DateTime)]
    pub at: String,
}

/// A node's health: `ok`, or `failed` once it has fail-stopped.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Serving.
    Ok,
    /// Stopped: its state can no longer be trusted; it is about to exit.
    Failed,
}

/// Whether this node serves.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "node_id": 1}))]
pub struct Health {
    /// `ok` or `failed`.
    pub status: HealthStatus,
    /// This node's Raft id.
    pub node_id: u64,
}

/// The cluster as the answering node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterStatus {
    /// The answering node.
    pub node_id: u64,
    /// The leader it knows of, or `null` during an election.
    pub leader_id: Option<u64>,
    /// Its current term.
    pub term: u64,
    /// The highest log index stored on a majority of voters, or `null` when no leader answered.
    pub committed: Option<u64>,
    /// Milliseconds since a quorum last acknowledged the leader, or `null`.
    pub millis_since_quorum_ack: Option<u64>,
    /// Every member, by id.
    pub nodes: Vec<ClusterNode>,
}

/// A member's Raft role, `learner` for a non-voter, or `unreachable`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterRole {
    /// Leads.
    Leader,
    /// Follows.
    Follower,
    /// Stands for election.
    Candidate,
    /// Replicates without a vote.
    Learner,
    /// Stopped.
    Shutdown,
    /// Did not answer within 1 s.
    Unreachable,
}

/// One member of the cluster. The members from `term` on are present only when the member
/// answered; `error` only when it did not.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterNode {
    /// The member's Raft id.
    pub id: u64,
    /// Its HTTP API address.
    #[schema(example = "127.0.0.1:8080")]
    pub api_addr: String,
    /// Its Raft address.
    #[schema(example = "127.0.0.1:8090")]
    pub raft_addr: String,
    /// Whether it votes (false for a learner).
    pub voter: bool,
    /// Log entries the leader has that this member has not stored yet, from the leader's view;
    /// `null` when no leader answered.
    pub replication_lag: Option<u64>,
    /// Its role.
    pub role: ClusterRole,
    /// Whether it answered within 1 s.
    pub reachable: bool,
    /// Its current term.
    #[schema(required = false)]
    pub term: u64,
    /// Its last log index.
    #[schema(required = false)]
    pub last_log_index: Option<u64>,
    /// Its last applied index.
    #[schema(required = false)]
    pub last_applied: Option<u64>,
    /// The cluster's committed index (the same for every member).
    #[schema(required = false)]
    pub committed: Option<u64>,
    /// The index of its last snapshot.
    #[schema(required = false)]
    pub snapshot_index: Option<u64>,
    /// How long fetching its metrics took for this request, in milliseconds.
    #[schema(required = false)]
    pub response_ms: u64,
    /// Why it could not be reached.
    #[schema(required = false)]
    pub error: String,
}

/// The seat map as one letter per seat: `F` free, `H` held, `S` sold, `B` blocked.
pub fn seat_letters(seats: &[SeatState]) -> String {
    seats
        .iter()
        .map(|s| match s {
            SeatState::Free => 'F',
            SeatState::Held(_) => 'H',
            SeatState::Sold(_) => 'S',
            SeatState::Blocked => 'B',
        })
        .collect()
}
