//! JSON shapes of the API's responses, built from domain types, and time conversions
//! (RFC 3339 on the wire, milliseconds since the epoch inside).

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tix_core::{Event, Hold, Inventory, Order, Role, SeatState, Ticket, TicketStatus, User};

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
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Attendee => "attendee",
        Role::Organizer => "organizer",
        Role::Staff => "staff",
        Role::Admin => "admin",
    }
}

/// An account as the API shows it (never the password hash).
pub fn user(u: &User) -> Value {
    json!({"id": u.id, "username": u.username, "role": role_name(u.role)})
}

/// Availability counters of an event.
#[derive(Debug, Serialize)]
pub struct Availability {
    /// The event.
    pub event_id: u64,
    /// Tickets that can ever be sold.
    pub capacity: u32,
    /// Sold and not refunded.
    pub sold: u32,
    /// In active holds.
    pub held: u32,
    /// On sale now.
    pub available: u32,
}

/// Returns an event's availability.
pub fn availability(e: &Event) -> Availability {
    let inv = &e.inventory;
    Availability {
        event_id: e.id.0,
        capacity: inv.capacity(),
        sold: inv.sold(),
        held: inv.held(),
        available: inv.available(),
    }
}

/// An event with its inventory shape and availability.
pub fn event(e: &Event) -> Value {
    let d = &e.details;
    let inventory = match &e.inventory {
        Inventory::Unnumbered { capacity, .. } => {
            json!({"kind": "unnumbered", "capacity": capacity})
        }
        Inventory::Numbered { seats, layout, .. } => {
            let blocked: Vec<u32> = seats
                .iter()
                .enumerate()
                .filter(|(_, s)| **s == SeatState::Blocked)
                .map(|(i, _)| i as u32 + 1)
                .collect();
            json!({
                "kind": "numbered",
                "seats": seats.len(),
                "rows": layout.map(|l| l.rows),
                "seats_per_row": layout.map(|l| l.seats_per_row),
                "blocked": blocked,
            })
        }
    };
    json!({
        "id": e.id,
        "name": d.name,
        "description": d.description,
        "starts_at": rfc3339(d.starts_at_ms),
        "venue": {"name": d.venue.name, "lat": d.venue.lat, "lon": d.venue.lon},
        "price_cents": d.price_cents,
        "currency": d.currency,
        "refundable": d.refundable,
        "per_customer_max": d.per_customer_max,
        "organizer_id": e.organizer,
        "version": e.version,
        "inventory": inventory,
        "availability": availability(e),
    })
}

/// A hold.
pub fn hold(h: &Hold) -> Value {
    json!({
        "hold_id": h.id,
        "event_id": h.event_id,
        "quantity": h.quantity,
        "seats": h.seats,
        "expires_at": rfc3339(h.expires_at_ms as i64),
        "expires_at_ms": h.expires_at_ms,
    })
}

/// A ticket.
pub fn ticket(t: &Ticket) -> Value {
    let (status, refunded_at) = match t.status {
        TicketStatus::Active => ("active", None),
        TicketStatus::Refunded { at_ms } => ("refunded", Some(rfc3339(at_ms as i64))),
    };
    json!({
        "ticket_id": t.id,
        "event_id": t.event_id,
        "seat": t.seat,
        "order_id": t.order_id,
        "price_cents": t.price_cents,
        "sold_at": rfc3339(t.sold_at_ms as i64),
        "status": status,
        "refunded_at": refunded_at,
        "checked_in_at": t.checked_in.map(|(at, _)| rfc3339(at as i64)),
    })
}

/// An order.
pub fn order(o: &Order) -> Value {
    json!({
        "order_id": o.id,
        "event_id": o.event_id,
        "tickets": o.tickets,
        "total_cents": o.total_cents,
        "payment_ref": o.payment_ref,
        "confirmed_at": rfc3339(o.confirmed_at_ms as i64),
    })
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
