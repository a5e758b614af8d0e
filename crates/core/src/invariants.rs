//! The invariants of the state, checked by recomputing every counter from first principles.
//!
//! Tests call [`State::check_invariants`] after every command; the Raft layer calls it before
//! building a snapshot and after installing one. A violation is a bug: callers outside tests
//! stop the process rather than serve a state that disagrees with itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{CustomerKey, EventId, TicketId, UserId};
use crate::inventory::{Inventory, SeatState};
use crate::state::{State, TicketStatus};

/// A broken invariant, with enough detail to find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant violated: {0}")]
pub struct InvariantViolation(pub String);

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(InvariantViolation(format!($($fmt)+)));
        }
    };
}

impl State {
    /// Checks every invariant:
    /// - for every event, sold + held + available = capacity, and sold and held equal the
    ///   active tickets and held units that point at it;
    /// - each seat is in at most one active hold or active ticket, and the seat map agrees;
    /// - ticket ids are unique and below the next id; each event lists exactly its active tickets;
    /// - no hold outlives its expiry and every hold is in the expiry index;
    /// - every idempotency record is in the expiry queue once;
    /// - per-customer counts and active-hold counts match the holds and tickets.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let parts = self.parts();
        let mut sold: BTreeMap<EventId, u32> = BTreeMap::new();
        let mut held: BTreeMap<EventId, u32> = BTreeMap::new();
        let mut seat_owner: BTreeMap<(EventId, u32), String> = BTreeMap::new();
        let mut customer_counts: BTreeMap<(EventId, CustomerKey), u32> = BTreeMap::new();
        let mut active_by_event: BTreeMap<EventId, BTreeSet<TicketId>> = BTreeMap::new();

        for (id, ticket) in parts.tickets {
            ensure!(*id == ticket.id, "ticket {id} stored under another id");
            ensure!(
                id.0 < parts.next_ticket,
                "ticket {id} not below the next id"
            );
            ensure!(
                parts.events.contains_key(&ticket.event_id),
                "ticket {id} without event"
            );
            if ticket.status != TicketStatus::Active {
                continue;
            }
            *sold.entry(ticket.event_id).or_default() += 1;
            active_by_event
                .entry(ticket.event_id)
                .or_default()
                .insert(*id);
            *customer_counts
                .entry((ticket.event_id, ticket.customer.clone()))
                .or_default() += 1;
            if let Some(seat) = ticket.seat {
                let previous = seat_owner.insert((ticket.event_id, seat), format!("ticket {id}"));
                ensure!(previous.is_none(), "seat {seat} in {id} and {previous:?}");
            }
        }
        let mut holds_per_customer: BTreeMap<UserId, u32> = BTreeMap::new();
        for (id, hold) in parts.holds {
            ensure!(
                hold.expires_at_ms > parts.now_ms,
                "hold {id} outlived its expiry"
            );
            ensure!(
                parts.hold_expiry.contains(&(hold.expires_at_ms, *id)),
                "hold {id} missing from the expiry index"
            );
            *held.entry(hold.event_id).or_default() += hold.quantity;
            *holds_per_customer.entry(hold.customer).or_default() += 1;
            let key = (hold.event_id, CustomerKey::User(hold.customer));
            *customer_counts.entry(key).or_default() += hold.quantity;
            for seat in &hold.seats {
                let previous = seat_owner.insert((hold.event_id, *seat), format!("hold {id}"));
                ensure!(
                    previous.is_none(),
                    "seat {seat} in hold {id} and {previous:?}"
                );
            }
        }
        ensure!(
            parts.hold_expiry.len() == parts.holds.len(),
            "stale entries in hold expiry"
        );
        ensure!(
            holds_per_customer == *parts.holds_per_customer,
            "active-hold counts disagree with holds"
        );

        for (id, event) in parts.events {
            let inv = &event.inventory;
            let want_sold = sold.get(id).copied().unwrap_or(0);
            let want_held = held.get(id).copied().unwrap_or(0);
            ensure!(
                inv.sold() == want_sold,
                "event {id}: sold {} != {want_sold}",
                inv.sold()
            );
            ensure!(
                inv.held() == want_held,
                "event {id}: held {} != {want_held}",
                inv.held()
            );
            ensure!(
                inv.sold() + inv.held() + inv.available() == inv.capacity(),
                "event {id}: sold + held + available != capacity"
            );
            let empty = BTreeSet::new();
            let active = active_by_event.get(id).unwrap_or(&empty);
            ensure!(
                event.tickets == *active,
                "event {id}: ticket list disagrees"
            );
            check_seats(*id, inv, &seat_owner)?;
        }
        ensure!(
            customer_counts == *parts.customer_counts,
            "per-customer counts disagree with tickets and holds"
        );
        for (order_id, order) in parts.orders {
            for ticket in &order.tickets {
                let t = parts.tickets.get(ticket);
                ensure!(
                    t.is_some(),
                    "order {order_id} lists missing ticket {ticket}"
                );
                ensure!(
                    t.and_then(|t| t.order_id) == Some(*order_id),
                    "order link broken"
                );
            }
        }
        ensure!(
            parts.records == parts.record_queue,
            "idempotency records and queue disagree"
        );
        Ok(())
    }
}

/// Checks that the seat map of a numbered event matches the holds and tickets that own seats.
fn check_seats(
    event_id: EventId,
    inv: &Inventory,
    seat_owner: &BTreeMap<(EventId, u32), String>,
) -> Result<(), InvariantViolation> {
    let Inventory::Numbered {
        seats,
        blocked,
        first_free_hint,
        ..
    } = inv
    else {
        return Ok(());
    };
    let mut blocked_seen = 0;
    for (i, state) in seats.iter().enumerate() {
        let seat = i as u32 + 1;
        let owner = seat_owner.get(&(event_id, seat));
        match state {
            SeatState::Free => {
                ensure!(
                    owner.is_none(),
                    "event {event_id} seat {seat} free but owned"
                );
                ensure!(
                    seat >= *first_free_hint,
                    "event {event_id}: free seat below the hint"
                );
            }
            SeatState::Blocked => {
                blocked_seen += 1;
                ensure!(
                    owner.is_none(),
                    "event {event_id} seat {seat} blocked but owned"
                );
            }
            SeatState::Held(h) => ensure!(
                owner == Some(&format!("hold {h}")),
                "event {event_id} seat {seat} held by {h} but owned by {owner:?}"
            ),
            SeatState::Sold(t) => ensure!(
                owner == Some(&format!("ticket {t}")),
                "event {event_id} seat {seat} sold on {t} but owned by {owner:?}"
            ),
        }
    }
    ensure!(
        blocked_seen == *blocked,
        "event {event_id}: blocked count disagrees"
    );
    Ok(())
}
