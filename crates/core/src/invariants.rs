//! The invariants of the state and its history, checked by recomputing every counter from first
//! principles.
//!
//! Tests call [`State::check_invariants`] after every command; the Raft layer calls it after
//! installing a snapshot. It streams over history once ([`HistoryScan`]) and keeps only
//! per-event counters and a 128-bit sum in memory, so it can check a state with millions of
//! tickets. A violation is a bug: callers outside tests stop the process rather than serve a
//! state that disagrees with itself.
//!
//! On the hot path, each command checks what it touches instead: inventory changes assert the
//! seat or counter they move (`Inventory::hold`, `sell_free`, `sell_held`), counts assert they
//! never go below zero, and a record is never stored twice.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{CountKey, HistoryScan};
use crate::ids::{CustomerKey, EventId, HoldId, UserId};
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

/// Mixes a count key into 128 bits for the multiset sum of per-customer counts.
fn mix(key: CountKey) -> u128 {
    let event = u128::from(key.event_id.0).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    (key.customer ^ event).wrapping_mul(0x2545_f491_4f6c_dd1d_0000_0000_0000_0001) | 1
}

impl State {
    /// Checks every invariant of the state together with its history:
    /// - for every event, sold + held + available = capacity, and sold and held equal the
    ///   active tickets and held units that point at it;
    /// - each seat is in at most one active hold or active ticket, and the seat map agrees;
    /// - ticket and order ids are below the next id, and every order's tickets point back at it;
    /// - no hold outlives its expiry and every hold is in the expiry index;
    /// - per-customer counts (of events that keep them, and only those) and active-hold counts
    ///   match the holds and tickets;
    /// - a cancelled event exists and has no active ticket and no hold;
    /// - every stored email address is valid and belongs to an account, every open password
    ///   reset belongs to an account and has not outlived its expiry, one per account;
    /// - every stored time zone belongs to an event and is a valid name other than `UTC`;
    /// - every image descriptor belongs to an event, has valid alt text and matches the bytes
    ///   stored in history (size, SHA-256, format and dimensions read again), and every stored
    ///   image has a descriptor.
    ///
    /// Pending changes must have been written to `h` first.
    pub fn check_invariants(&self, h: &dyn HistoryScan) -> Result<(), InvariantViolation> {
        ensure!(
            !self.has_pending_changes(),
            "checking with history changes not written out"
        );
        let parts = self.parts();
        self.check_account_mail().map_err(InvariantViolation)?;
        let counted = |e: EventId| parts.events.get(&e).is_some_and(|e| e.counts_customers);
        let mut sold: BTreeMap<EventId, u32> = BTreeMap::new();
        let mut held: BTreeMap<EventId, u32> = BTreeMap::new();
        // Σ mix(key) over every sold or held unit, against Σ count × mix(key) over the rows.
        let mut units_sum: u128 = 0;
        let mut problem: Option<InvariantViolation> = None;

        h.for_each_ticket(&mut |ticket| {
            if problem.is_some() {
                return;
            }
            let id = ticket.id;
            let check = || -> Result<(), InvariantViolation> {
                ensure!(
                    id.0 < parts.next_ticket,
                    "ticket {id} not below the next id"
                );
                let event = parts.events.get(&ticket.event_id);
                ensure!(event.is_some(), "ticket {id} without event");
                if ticket.status != TicketStatus::Active {
                    return Ok(());
                }
                if let Some(seat) = ticket.seat {
                    let state = event.and_then(|e| e.inventory.seat(seat));
                    ensure!(
                        state == Some(SeatState::Sold(id)),
                        "ticket {id} has seat {seat}, whose state is {state:?}"
                    );
                }
                Ok(())
            };
            match check() {
                Err(violation) => problem = Some(violation),
                Ok(()) if ticket.status == TicketStatus::Active => {
                    *sold.entry(ticket.event_id).or_default() += 1;
                    if counted(ticket.event_id) {
                        let key = CountKey::of(ticket.event_id, &ticket.customer);
                        units_sum = units_sum.wrapping_add(mix(key));
                    }
                }
                Ok(()) => {}
            }
        });
        if let Some(violation) = problem {
            return Err(violation);
        }

        let mut holds_per_customer: BTreeMap<UserId, u32> = BTreeMap::new();
        let mut hold_ids_by_customer: BTreeMap<UserId, BTreeSet<HoldId>> = BTreeMap::new();
        for (id, hold) in parts.holds {
            hold_ids_by_customer
                .entry(hold.customer)
                .or_default()
                .insert(*id);
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
            if counted(hold.event_id) {
                let key = CountKey::of(hold.event_id, &CustomerKey::User(hold.customer));
                let units = mix(key).wrapping_mul(u128::from(hold.quantity));
                units_sum = units_sum.wrapping_add(units);
            }
            let event = parts.events.get(&hold.event_id);
            ensure!(event.is_some(), "hold {id} without event");
            // A hold has one price: on a venue in sections, every seat's section costs it.
            if let (Some(e), Some(layout)) = (event, parts.layouts.get(&hold.event_id)) {
                let map = crate::layout::SeatMap::of(&e.inventory, Some(layout), 0);
                let priced = |s: &u32| map.as_ref().and_then(|m| m.price_of(*s));
                ensure!(
                    hold.seats
                        .iter()
                        .all(|s| priced(s) == Some(hold.price_cents)),
                    "hold {id}: a seat's section price differs from the hold's price"
                );
            }
            for seat in &hold.seats {
                let state = event.and_then(|e| e.inventory.seat(*seat));
                ensure!(
                    state == Some(SeatState::Held(*id)),
                    "hold {id} has seat {seat}, whose state is {state:?}"
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
        ensure!(
            hold_ids_by_customer == *parts.hold_ids_by_customer,
            "the per-customer hold index disagrees with holds"
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
            check_seats(*id, inv)?;
        }
        // Every stored zone belongs to an event and has a valid name; UTC is never stored.
        for (id, zone) in parts.zones {
            ensure!(
                parts.events.contains_key(id),
                "zone of event {id}, which does not exist"
            );
            ensure!(
                crate::zone::zone_name_is_valid(zone) && zone != crate::zone::ZONE_DEFAULT,
                "event {id}: stored zone {zone:?} is not a valid, non-default name"
            );
        }
        // An event's image descriptor matches its stored bytes, and every stored image has one.
        check_images(&parts, h)?;
        // Each seat is in exactly one section, row and place: the layout's sections cover the
        // event's seats `1..=N` one after another, so their sizes add up to N.
        for (id, layout) in parts.layouts {
            let event = parts.events.get(id);
            ensure!(
                event.is_some(),
                "layout of event {id}, which does not exist"
            );
            let seats = event.map_or(0, |e| e.inventory.seat_states().len());
            let covered: u64 = layout
                .sections
                .iter()
                .map(|s| u64::from(s.rows) * u64::from(s.seats_per_row))
                .sum();
            ensure!(
                seats > 0 && covered == seats as u64,
                "event {id}: the layout covers {covered} seats of {seats}"
            );
        }
        for id in parts.cancellations.keys() {
            let event = parts.events.get(id);
            ensure!(event.is_some(), "cancelled event {id} does not exist");
            let inv = event.map(|e| &e.inventory).expect("checked above");
            ensure!(
                inv.sold() == 0 && inv.held() == 0,
                "cancelled event {id} has {} tickets sold and {} held",
                inv.sold(),
                inv.held()
            );
        }

        // Waiting rooms: each place given once, the pre-queue drawn exactly when due.
        if let Err(problem) = parts.waiting_rooms.check() {
            return Err(InvariantViolation(format!("waiting room: {problem}")));
        }
        for room in parts.waiting_rooms.iter() {
            ensure!(
                parts.events.contains_key(&room.event_id),
                "waiting room of missing event {}",
                room.event_id
            );
            ensure!(
                room.drawn() == (parts.now_ms >= room.spec.opens_at_ms),
                "waiting room of event {} drawn={} at log time {} (opens {})",
                room.event_id,
                room.drawn(),
                parts.now_ms,
                room.spec.opens_at_ms
            );
        }

        // A hold ends once: an ended hold is not active, was placed, and has one expiry entry;
        // a paid one names an order that exists.
        ensure!(
            parts.ended_holds.len() == parts.ended_hold_expiry.len()
                && parts.ended_holds.len() <= crate::state::ENDED_HOLDS_MAX,
            "ended holds: {} remembered, {} in the expiry index",
            parts.ended_holds.len(),
            parts.ended_hold_expiry.len()
        );
        for &(at, id) in parts.ended_hold_expiry {
            let ended = parts.ended_holds.get(&id);
            ensure!(
                ended.is_some_and(|e| e.at_ms == at),
                "ended hold {id}: expiry entry without its record"
            );
            ensure!(
                !parts.holds.contains_key(&id) && id.0 < parts.next_hold,
                "ended hold {id} is still active or was never placed"
            );
            if let Some(crate::state::HoldEnd::Confirmed(order)) = ended.map(|e| e.how) {
                ensure!(
                    order.0 < parts.next_order,
                    "ended hold {id} names order {order}, never created"
                );
            }
        }

        let mut counts_sum: u128 = 0;
        let (mut zero_rows, mut uncounted_rows) = (0u64, 0u64);
        h.for_each_count(&mut |key, count| {
            zero_rows += u64::from(count == 0);
            uncounted_rows += u64::from(!counted(key.event_id));
            counts_sum = counts_sum.wrapping_add(mix(key).wrapping_mul(u128::from(count)));
        });
        ensure!(zero_rows == 0, "{zero_rows} per-customer count rows of 0");
        ensure!(
            uncounted_rows == 0,
            "{uncounted_rows} count rows of events that keep no counts"
        );
        ensure!(
            counts_sum == units_sum,
            "per-customer counts disagree with tickets and holds"
        );

        let mut problem = None;
        h.for_each_order(&mut |order| {
            if problem.is_some() {
                return;
            }
            if order.id.0 >= parts.next_order {
                problem = Some(format!("order {} not below the next id", order.id));
            }
            for ticket in &order.tickets {
                let linked = h.ticket(*ticket).and_then(|t| t.order_id);
                if linked != Some(order.id) {
                    problem = Some(format!(
                        "order {} lists ticket {ticket}: {linked:?}",
                        order.id
                    ));
                }
            }
        });
        if let Some(problem) = problem {
            return Err(InvariantViolation(problem));
        }
        Ok(())
    }
}

/// Checks that a numbered event's counters agree with its seat map (each ticket and hold was
/// checked against the map above; equal counts make the correspondence one-to-one).
fn check_seats(event_id: EventId, inv: &Inventory) -> Result<(), InvariantViolation> {
    let Inventory::Numbered {
        seats,
        blocked,
        first_free_hint,
        sold,
        held,
        ..
    } = inv
    else {
        return Ok(());
    };
    let (mut blocked_seen, mut sold_seen, mut held_seen) = (0, 0, 0);
    for (i, state) in seats.iter().enumerate() {
        let seat = i as u32 + 1;
        match state {
            SeatState::Free => ensure!(
                seat >= *first_free_hint,
                "event {event_id}: free seat below the hint"
            ),
            SeatState::Blocked => blocked_seen += 1,
            SeatState::Held(_) => held_seen += 1,
            SeatState::Sold(_) => sold_seen += 1,
        }
    }
    ensure!(
        blocked_seen == *blocked,
        "event {event_id}: blocked count disagrees"
    );
    ensure!(
        sold_seen == *sold && held_seen == *held,
        "event {event_id}: seat map counts disagree with counters"
    );
    Ok(())
}

/// Invariant 19: the hot state's image descriptors and history's image bytes agree one to one.
fn check_images(
    parts: &crate::state::StateParts<'_>,
    h: &dyn HistoryScan,
) -> Result<(), InvariantViolation> {
    for (id, image) in parts.images {
        ensure!(
            parts.events.contains_key(id),
            "image of event {id}, which does not exist"
        );
        ensure!(
            crate::image::alt_is_valid(&image.alt)
                && image.bytes as usize <= crate::image::EVENT_IMAGE_BYTES_MAX,
            "event {id}: image descriptor out of its limits"
        );
    }
    let mut stored = 0usize;
    let mut problem: Option<InvariantViolation> = None;
    h.for_each_image(&mut |id, bytes| {
        stored += 1;
        if problem.is_some() {
            return;
        }
        let matches = parts.images.get(&id).is_some_and(|i| i.matches(bytes));
        if !matches {
            problem = Some(InvariantViolation(format!(
                "event {id}: stored image of {} bytes without a matching descriptor",
                bytes.len()
            )));
        }
    });
    if let Some(problem) = problem {
        return Err(problem);
    }
    ensure!(
        stored == parts.images.len(),
        "{} image descriptors, {stored} stored images",
        parts.images.len()
    );
    Ok(())
}
