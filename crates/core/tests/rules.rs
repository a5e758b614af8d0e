//! Example-based tests of the domain rules: each test builds a small world through
//! `State::apply_batch`, checks the outcomes of a few commands and runs
//! `State::check_invariants` after every batch.

use tix_core::{
    Admitted, Batch, CANCEL_REASON_CHARS_MAX, CancelRejection, CheckInRejection, Command,
    CustomerKey, ENDED_HOLD_RETENTION_MS, EventCancelled, EventDetails, EventId, EventRejection,
    HoldEnd, HoldId, HoldPlaced, HoldRequest, IdempotencyKey, Inventory, InventorySpec, Limits,
    OrderConfirmed, Outcome, PaymentRefund, Refunded, Rejection, Replayable, Replica, Role, Sale,
    SeatState, State, TicketId, TicketStatus, UserId, UserRejection, Venue,
};

/// Log time at the start of every test.
const START_MS: u64 = 1_700_000_000_000;
const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;
const PRICE_CENTS: u64 = 2_500;
const BOX_OFFICE: &str = "box-office";

/// Returns event details starting in 30 days, refundable, at `PRICE_CENTS`.
fn details(per_customer_max: Option<u32>) -> EventDetails {
    EventDetails {
        name: "Concert".into(),
        description: "A test event.".into(),
        starts_at_ms: (START_MS + 30 * DAY_MS) as i64,
        venue: Venue {
            name: "Hall".into(),
            lat: 52.52,
            lon: 13.405,
        },
        price_cents: PRICE_CENTS,
        currency: "EUR".into(),
        refundable: true,
        per_customer_max,
    }
}

fn unnumbered(capacity: u32) -> InventorySpec {
    InventorySpec::Unnumbered { capacity }
}

fn numbered(seats: u32, blocked: &[u32]) -> InventorySpec {
    InventorySpec::Numbered {
        seats,
        seats_per_row: None,
        blocked: blocked.to_vec(),
    }
}

fn batch(time_ms: u64, commands: Vec<Command>) -> Batch {
    Batch { time_ms, commands }
}

fn key(client_id: &str, request_id: &str) -> IdempotencyKey {
    IdempotencyKey::new(client_id, request_id)
}

fn client(name: &str) -> CustomerKey {
    CustomerKey::Client(name.into())
}

/// A state plus the log time of the next batch; every batch is followed by an invariant check.
struct World {
    state: Replica,
    now_ms: u64,
    organizer: UserId,
}

impl World {
    fn new() -> World {
        World::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> World {
        let state = Replica::new(limits);
        let mut world = World {
            state,
            now_ms: START_MS,
            organizer: UserId(0),
        };
        world.organizer = world.user_with_role("organizer", Role::Organizer);
        world
    }

    fn apply(&mut self, commands: Vec<Command>) -> Vec<Outcome> {
        let outcomes = self.state.apply_batch(&batch(self.now_ms, commands));
        self.state
            .check_invariants()
            .expect("invariants hold after every batch");
        outcomes
    }

    fn run(&mut self, command: Command) -> Outcome {
        let mut outcomes = self.apply(vec![command]);
        assert_eq!(outcomes.len(), 1, "one outcome per command");
        outcomes.remove(0)
    }

    /// Applies an empty batch at `time_ms`, which expires whatever is due.
    fn advance_to(&mut self, time_ms: u64) {
        self.now_ms = time_ms;
        assert!(self.apply(Vec::new()).is_empty());
    }

    fn user_with_role(&mut self, username: &str, role: Role) -> UserId {
        let command = Command::CreateUser {
            username: username.into(),
            password_hash: "hash".into(),
            role,
        };
        match self.run(command) {
            Outcome::User(Ok(id)) => id,
            other => panic!("creating {username}: {other:?}"),
        }
    }

    fn user(&mut self, username: &str) -> UserId {
        self.user_with_role(username, Role::Attendee)
    }

    fn event(&mut self, details: EventDetails, inventory: InventorySpec) -> EventId {
        let command = Command::CreateEvent {
            organizer: self.organizer,
            details,
            inventory,
            ticket_key_seed: [1; 32],
        };
        match self.run(command) {
            Outcome::Event(Ok((id, 1))) => id,
            other => panic!("creating an event: {other:?}"),
        }
    }

    /// Sells one ticket to `customer` under the key (`customer`'s name, `request_id`).
    fn buy_as(
        &mut self,
        event_id: EventId,
        customer: &CustomerKey,
        request_id: &str,
        seat: Option<u32>,
    ) -> Replayable<Result<Sale, Rejection>> {
        let client_id = match customer {
            CustomerKey::User(id) => format!("user-{id}"),
            CustomerKey::Client(name) => name.clone(),
        };
        let key = key(&client_id, request_id);
        let command = Command::Purchase {
            event_id,
            key,
            customer: customer.clone(),
            seat,
        };
        match self.run(command) {
            Outcome::Purchase(answer) => answer,
            other => panic!("purchase answered {other:?}"),
        }
    }

    /// Sells one ticket at the box office and returns the fresh (not replayed) result.
    fn buy(
        &mut self,
        event_id: EventId,
        request_id: &str,
        seat: Option<u32>,
    ) -> Result<Sale, Rejection> {
        let answer = self.buy_as(event_id, &client(BOX_OFFICE), request_id, seat);
        assert!(!answer.replayed, "request {request_id} was not sent before");
        answer.result
    }

    fn hold_keyed(
        &mut self,
        event_id: EventId,
        customer: UserId,
        key: IdempotencyKey,
        request: HoldRequest,
        ttl_ms: u64,
    ) -> Replayable<Result<HoldPlaced, Rejection>> {
        let command = Command::PlaceHold {
            event_id,
            key,
            customer,
            request,
            ttl_ms,
        };
        match self.run(command) {
            Outcome::Hold(answer) => answer,
            other => panic!("hold answered {other:?}"),
        }
    }

    /// Places a hold under a new key and returns the fresh result.
    fn hold(
        &mut self,
        event_id: EventId,
        customer: UserId,
        request_id: &str,
        request: HoldRequest,
        ttl_ms: u64,
    ) -> Result<HoldPlaced, Rejection> {
        let key = key(&format!("user-{customer}"), request_id);
        let answer = self.hold_keyed(event_id, customer, key, request, ttl_ms);
        assert!(!answer.replayed, "request {request_id} was not sent before");
        answer.result
    }

    fn confirm(&mut self, hold_id: HoldId, customer: UserId) -> Result<OrderConfirmed, Rejection> {
        let payment_ref = format!("pay-{hold_id}");
        match self.run(Command::ConfirmHold {
            hold_id,
            customer,
            payment_ref,
        }) {
            Outcome::Confirm(result) => result,
            other => panic!("confirm answered {other:?}"),
        }
    }

    fn release(&mut self, hold_id: HoldId, customer: UserId) -> Result<HoldId, Rejection> {
        match self.run(Command::ReleaseHold { hold_id, customer }) {
            Outcome::Release(result) => result,
            other => panic!("release answered {other:?}"),
        }
    }

    fn refund(
        &mut self,
        ticket_id: TicketId,
        by: UserId,
        override_policy: bool,
    ) -> Result<Refunded, Rejection> {
        match self.run(Command::Refund {
            ticket_id,
            by,
            override_policy,
        }) {
            Outcome::Refund(result) => result,
            other => panic!("refund answered {other:?}"),
        }
    }

    fn check_in(&mut self, ticket_id: TicketId, by: UserId) -> Result<Admitted, CheckInRejection> {
        match self.run(Command::CheckIn { ticket_id, by }) {
            Outcome::CheckIn(result) => result,
            other => panic!("check-in answered {other:?}"),
        }
    }

    /// Buys one ticket for `customer` through a hold and a confirmation.
    fn buy_through_hold(
        &mut self,
        event_id: EventId,
        customer: UserId,
        request_id: &str,
    ) -> TicketId {
        let hold = self.hold(
            event_id,
            customer,
            request_id,
            HoldRequest::Quantity(1),
            MINUTE_MS,
        );
        let order = self.confirm(hold.expect("hold placed").hold_id, customer);
        order.expect("hold confirmed").tickets[0]
    }

    fn cancel(
        &mut self,
        event_id: EventId,
        by: UserId,
        request_id: &str,
        reason: &str,
    ) -> Replayable<Result<EventCancelled, CancelRejection>> {
        let command = Command::CancelEvent {
            event_id,
            key: key(&format!("user:{by}"), request_id),
            by,
            reason: reason.into(),
        };
        match self.run(command) {
            Outcome::Cancel(answer) => answer,
            other => panic!("cancel answered {other:?}"),
        }
    }

    fn inventory(&self, event_id: EventId) -> &Inventory {
        &self.state.event(event_id).expect("event exists").inventory
    }

    fn seat(&self, event_id: EventId, seat: u32) -> Option<SeatState> {
        self.inventory(event_id).seat(seat)
    }
}

// An unnumbered event sells exactly its capacity: the last ticket sells, the next is SoldOut.
#[test]
fn unnumbered_event_sells_exactly_capacity_then_sold_out() {
    let mut w = World::new();
    let event = w.event(details(None), unnumbered(3));
    for request in ["r1", "r2", "r3"] {
        let sale = w.buy(event, request, None).expect("on sale");
        assert_eq!(sale.seat, None);
    }
    assert_eq!(w.buy(event, "r4", None), Err(Rejection::SoldOut));
    let inventory = w.inventory(event);
    assert_eq!(
        (inventory.sold(), inventory.held(), inventory.available()),
        (3, 0, 0)
    );
    assert_eq!(w.state.sales(event).count(), 3);
}

// A seat given for a general-admission event is refused with SeatNotApplicable, nothing sells.
#[test]
fn seat_on_unnumbered_event_is_not_applicable() {
    let mut w = World::new();
    let event = w.event(details(None), unnumbered(3));
    assert_eq!(
        w.buy(event, "r1", Some(1)),
        Err(Rejection::SeatNotApplicable)
    );
    assert_eq!(w.inventory(event).sold(), 0);
}

// Numbered seats: a sold or held seat is SeatTaken, 0 and N+1 are out of range, seat N sells,
// and a blocked seat is SeatBlocked.
#[test]
fn numbered_seat_rejections() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), numbered(10, &[5]));
    assert_eq!(
        w.buy(event, "r1", Some(3)),
        Ok(Sale {
            ticket_id: TicketId(1),
            seat: Some(3)
        })
    );
    assert_eq!(
        w.buy(event, "r2", Some(3)),
        Err(Rejection::SeatTaken { seat: 3 })
    );
    w.hold(event, alice, "h1", HoldRequest::Seats(vec![4]), MINUTE_MS)
        .expect("hold placed");
    assert_eq!(
        w.buy(event, "r3", Some(4)),
        Err(Rejection::SeatTaken { seat: 4 })
    );
    assert_eq!(
        w.buy(event, "r4", Some(0)),
        Err(Rejection::SeatOutOfRange { seat: 0, seats: 10 })
    );
    assert_eq!(
        w.buy(event, "r5", Some(11)),
        Err(Rejection::SeatOutOfRange {
            seat: 11,
            seats: 10
        })
    );
    assert_eq!(
        w.buy(event, "r6", Some(5)),
        Err(Rejection::SeatBlocked { seat: 5 })
    );
    assert_eq!(
        w.buy(event, "r7", Some(10)).expect("last seat sells").seat,
        Some(10)
    );
    let hold = w.hold(
        event,
        alice,
        "h2",
        HoldRequest::Seats(vec![6, 6]),
        MINUTE_MS,
    );
    assert_eq!(hold, Err(Rejection::DuplicateSeat { seat: 6 }));
}

// Best available (seat None) takes the lowest free seat, skipping blocked, sold and held seats,
// and a released seat is the next one picked.
#[test]
fn best_available_picks_lowest_free_seat() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), numbered(6, &[1]));
    w.buy(event, "r1", Some(2)).expect("seat 2 sells");
    let hold = w
        .hold(event, alice, "h1", HoldRequest::Seats(vec![3]), MINUTE_MS)
        .expect("held");
    for (request, seat) in [("r2", 4), ("r3", 5), ("r4", 6)] {
        assert_eq!(
            w.buy(event, request, None).expect("a seat is free").seat,
            Some(seat)
        );
    }
    assert_eq!(w.buy(event, "r5", None), Err(Rejection::SoldOut));
    w.release(hold.hold_id, alice).expect("own hold");
    assert_eq!(
        w.buy(event, "r6", None).expect("seat 3 is back").seat,
        Some(3)
    );
    let best = w.hold(event, alice, "h2", HoldRequest::Quantity(1), MINUTE_MS);
    assert_eq!(best, Err(Rejection::SoldOut));
}

// A hold lasts until its expiry by log time: one millisecond before, its seats are still held;
// at the expiry the hold is removed, its seats sell again and confirming it is UnknownHold.
#[test]
fn hold_expires_by_log_time() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), numbered(4, &[]));
    let hold = w
        .hold(
            event,
            alice,
            "h1",
            HoldRequest::Seats(vec![1, 2]),
            MINUTE_MS,
        )
        .expect("seats are free");
    assert_eq!(hold.expires_at_ms, START_MS + MINUTE_MS);
    assert_eq!((hold.quantity, hold.seats.clone()), (2, vec![1, 2]));

    w.advance_to(hold.expires_at_ms - 1);
    assert_eq!(w.seat(event, 1), Some(SeatState::Held(hold.hold_id)));
    assert_eq!(
        w.buy(event, "r1", Some(1)),
        Err(Rejection::SeatTaken { seat: 1 })
    );

    w.advance_to(hold.expires_at_ms);
    assert!(w.state.hold(hold.hold_id).is_none());
    assert_eq!(w.state.holds_of(alice).count(), 0);
    assert_eq!(w.seat(event, 1), Some(SeatState::Free));
    assert_eq!(w.inventory(event).held(), 0);
    assert_eq!(w.confirm(hold.hold_id, alice), Err(Rejection::UnknownHold));
    assert_eq!(
        w.buy(event, "r2", Some(1)).expect("seat 1 is back").seat,
        Some(1)
    );
}

// Confirming a hold creates one order with one ticket per held unit, charges price × quantity,
// sells the held inventory, and the hold cannot be confirmed twice.
#[test]
fn confirm_hold_creates_order_with_one_ticket_per_unit() {
    let mut w = World::new();
    let alice = w.user("alice");
    let general = w.event(details(None), unnumbered(10));
    let seated = w.event(details(None), numbered(6, &[]));

    let hold = w
        .hold(general, alice, "h1", HoldRequest::Quantity(3), MINUTE_MS)
        .expect("held");
    let order = w.confirm(hold.hold_id, alice).expect("live hold");
    assert_eq!(order.tickets.len(), 3);
    assert_eq!(order.total_cents, 3 * PRICE_CENTS);
    let stored = w.state.order(order.order_id).expect("order stored");
    assert_eq!((stored.customer, &stored.tickets), (alice, &order.tickets));
    assert_eq!(stored.payment_ref, format!("pay-{}", hold.hold_id));
    for ticket_id in &order.tickets {
        let ticket = w.state.ticket(*ticket_id).expect("ticket stored");
        assert_eq!(ticket.order_id, Some(order.order_id));
        assert_eq!(ticket.price_cents, PRICE_CENTS);
        assert_eq!(ticket.customer, CustomerKey::User(alice));
    }
    let inventory = w.inventory(general);
    assert_eq!(
        (inventory.sold(), inventory.held(), inventory.available()),
        (3, 0, 7)
    );
    assert_eq!(w.confirm(hold.hold_id, alice), Err(Rejection::UnknownHold));

    let seats = HoldRequest::Seats(vec![2, 4]);
    let hold = w.hold(seated, alice, "h2", seats, MINUTE_MS).expect("held");
    let order = w.confirm(hold.hold_id, alice).expect("live hold");
    assert_eq!(order.total_cents, 2 * PRICE_CENTS);
    let sold: Vec<_> = order
        .tickets
        .iter()
        .map(|t| w.state.ticket(*t).unwrap().seat)
        .collect();
    assert_eq!(sold, vec![Some(2), Some(4)]);
    assert_eq!(w.seat(seated, 2), Some(SeatState::Sold(order.tickets[0])));
    assert_eq!(w.seat(seated, 4), Some(SeatState::Sold(order.tickets[1])));
}

// Only the holder may release or confirm a hold: another user gets NotYours and the hold stays;
// after the holder releases it, it is gone (UnknownHold) and its seats are free.
#[test]
fn release_hold_by_another_user_is_not_yours() {
    let mut w = World::new();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let event = w.event(details(None), numbered(4, &[]));
    let hold = w
        .hold(event, alice, "h1", HoldRequest::Quantity(2), MINUTE_MS)
        .expect("held");
    assert_eq!(w.release(hold.hold_id, bob), Err(Rejection::NotYours));
    assert_eq!(w.confirm(hold.hold_id, bob), Err(Rejection::NotYours));
    assert!(w.state.hold(hold.hold_id).is_some());

    assert_eq!(w.release(hold.hold_id, alice), Ok(hold.hold_id));
    assert_eq!(w.release(hold.hold_id, alice), Err(Rejection::UnknownHold));
    assert_eq!(w.seat(event, 1), Some(SeatState::Free));
    assert_eq!(w.inventory(event).available(), 4);
}

// A refund puts the seat back on sale and returns the price and payment reference; refunding
// the same ticket again is AlreadyRefunded.
#[test]
fn refund_puts_seat_back_and_twice_is_already_refunded() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), numbered(3, &[]));
    let hold = w
        .hold(event, alice, "h1", HoldRequest::Seats(vec![2]), MINUTE_MS)
        .expect("held");
    let ticket = w.confirm(hold.hold_id, alice).expect("confirmed").tickets[0];

    let refunded = w
        .refund(ticket, alice, false)
        .expect("refundable before the start");
    let payment_ref = Some(format!("pay-{}", hold.hold_id));
    assert_eq!(
        refunded,
        Refunded {
            ticket_id: ticket,
            amount_cents: PRICE_CENTS,
            payment_ref
        }
    );
    assert_eq!(w.seat(event, 2), Some(SeatState::Free));
    let status = &w.state.ticket(ticket).unwrap().status;
    assert_eq!(*status, TicketStatus::Refunded { at_ms: START_MS });
    assert_eq!(w.state.sales(event).count(), 0);
    assert_eq!(
        w.refund(ticket, alice, false),
        Err(Rejection::AlreadyRefunded)
    );
    assert_eq!(
        w.refund(ticket, w.organizer, true),
        Err(Rejection::AlreadyRefunded)
    );

    assert_eq!(
        w.buy(event, "r1", Some(2)).expect("seat 2 is back").seat,
        Some(2)
    );
    let box_office = w.state.sales(event).next().unwrap().id;
    let refunded = w
        .refund(box_office, w.organizer, true)
        .expect("organizer override");
    assert_eq!(refunded.payment_ref, None);
}

// Attendees may refund their own tickets only before the start and only on refundable events
// (else NotRefundable) and not other people's (NotYours); override_policy=true is allowed.
#[test]
fn attendee_refund_follows_policy_and_override_is_allowed() {
    let mut w = World::new();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let starts_at_ms = START_MS + HOUR_MS;
    let soon = EventDetails {
        starts_at_ms: starts_at_ms as i64,
        ..details(None)
    };
    let event = w.event(soon, unnumbered(10));
    let tickets: Vec<TicketId> = (0..3)
        .map(|i| w.buy_through_hold(event, alice, &format!("h{i}")))
        .collect();

    assert_eq!(w.refund(tickets[0], bob, false), Err(Rejection::NotYours));
    w.advance_to(starts_at_ms - 1);
    assert!(
        w.refund(tickets[0], alice, false).is_ok(),
        "one millisecond before the start"
    );
    w.advance_to(starts_at_ms);
    assert_eq!(
        w.refund(tickets[1], alice, false),
        Err(Rejection::NotRefundable)
    );
    assert!(w.refund(tickets[1], w.organizer, true).is_ok());

    let final_sale = EventDetails {
        refundable: false,
        ..details(None)
    };
    let strict = w.event(final_sale, unnumbered(10));
    let ticket = w.buy_through_hold(strict, alice, "h-strict");
    assert_eq!(
        w.refund(ticket, alice, false),
        Err(Rejection::NotRefundable)
    );
    assert!(w.refund(ticket, alice, true).is_ok());
}

// Check-in admits a ticket once; the second scan is AlreadyAdmitted with the first time and
// staff member; a refunded ticket is Refunded, an admitted one cannot be refunded.
#[test]
fn check_in_admits_once() {
    let mut w = World::new();
    let staff = w.user_with_role("door", Role::Staff);
    let other_staff = w.user_with_role("door-2", Role::Staff);
    let event = w.event(details(None), unnumbered(10));
    let ticket = w.buy(event, "r1", None).expect("on sale").ticket_id;
    let refunded = w.buy(event, "r2", None).expect("on sale").ticket_id;

    w.advance_to(START_MS + 5 * MINUTE_MS);
    let admitted = Admitted {
        ticket_id: ticket,
        at_ms: START_MS + 5 * MINUTE_MS,
    };
    assert_eq!(w.check_in(ticket, staff), Ok(admitted.clone()));
    w.advance_to(START_MS + 6 * MINUTE_MS);
    let again = CheckInRejection::AlreadyAdmitted {
        at_ms: admitted.at_ms,
        by: staff,
    };
    assert_eq!(w.check_in(ticket, other_staff), Err(again));
    assert_eq!(
        w.refund(ticket, w.organizer, true),
        Err(Rejection::AlreadyCheckedIn)
    );

    w.refund(refunded, w.organizer, true)
        .expect("organizer override");
    assert_eq!(w.check_in(refunded, staff), Err(CheckInRejection::Refunded));
    assert_eq!(
        w.check_in(TicketId(99), staff),
        Err(CheckInRejection::UnknownTicket)
    );
}

// per_customer_max counts tickets and held units together: reaching the max is accepted, one
// more (by purchase or hold) is CustomerLimit; other customers and refunds free the quota.
#[test]
fn per_customer_max_from_both_sides() {
    let mut w = World::new();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let event = w.event(details(Some(3)), unnumbered(100));
    let as_alice = CustomerKey::User(alice);

    w.hold(event, alice, "h1", HoldRequest::Quantity(2), MINUTE_MS)
        .expect("2 of 3");
    let third = w
        .buy_as(event, &as_alice, "r1", None)
        .result
        .expect("3 of 3 is the max");
    let limit = Rejection::CustomerLimit { max: 3 };
    assert_eq!(
        w.buy_as(event, &as_alice, "r2", None).result,
        Err(limit.clone())
    );
    assert_eq!(
        w.hold(event, alice, "h2", HoldRequest::Quantity(1), MINUTE_MS),
        Err(limit.clone())
    );
    let bob_hold = w.hold(event, bob, "h1", HoldRequest::Quantity(3), MINUTE_MS);
    assert!(bob_hold.is_ok(), "bob has his own quota");

    w.refund(third.ticket_id, alice, false).expect("refundable");
    assert!(
        w.buy_as(event, &as_alice, "r3", None).result.is_ok(),
        "the refund freed one"
    );
    let box_office = client(BOX_OFFICE);
    for request in ["b1", "b2", "b3"] {
        assert!(w.buy_as(event, &box_office, request, None).result.is_ok());
    }
    assert_eq!(w.buy_as(event, &box_office, "b4", None).result, Err(limit));
}

// seats_per_order_max bounds one hold: the max is accepted, one more (or zero) is BadQuantity.
#[test]
fn seats_per_order_max_from_both_sides() {
    let mut w = World::new();
    let alice = w.user("alice");
    let bob = w.user("bob");
    let general = w.event(details(None), unnumbered(100));
    let seated = w.event(details(None), numbered(20, &[]));
    let max = w.state.limits().seats_per_order_max;
    assert_eq!(max, 10);

    let placed = w.hold(general, alice, "h1", HoldRequest::Quantity(max), MINUTE_MS);
    assert_eq!(placed.expect("the max is accepted").quantity, max);
    let over = Err(Rejection::BadQuantity {
        quantity: max + 1,
        max,
    });
    assert_eq!(
        w.hold(
            general,
            alice,
            "h2",
            HoldRequest::Quantity(max + 1),
            MINUTE_MS
        ),
        over
    );
    let zero = Err(Rejection::BadQuantity { quantity: 0, max });
    assert_eq!(
        w.hold(general, alice, "h3", HoldRequest::Quantity(0), MINUTE_MS),
        zero
    );

    let seats = |n: u32| HoldRequest::Seats((1..=n).collect());
    assert!(w.hold(seated, bob, "h1", seats(max), MINUTE_MS).is_ok());
    assert_eq!(w.hold(seated, bob, "h2", seats(max + 1), MINUTE_MS), over);
    assert_eq!(
        w.hold(seated, bob, "h3", HoldRequest::Seats(Vec::new()), MINUTE_MS),
        zero
    );
}

// holds_per_customer_max bounds a customer's active holds: the max is accepted, one more is
// CustomerLimit, and releasing one makes room again.
#[test]
fn holds_per_customer_max_from_both_sides() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), unnumbered(100));
    let max = w.state.limits().holds_per_customer_max;
    assert_eq!(max, 5);
    let holds: Vec<HoldPlaced> = (0..max)
        .map(|i| {
            w.hold(
                event,
                alice,
                &format!("h{i}"),
                HoldRequest::Quantity(1),
                MINUTE_MS,
            )
        })
        .map(|placed| placed.expect("within the limit"))
        .collect();
    let over = w.hold(event, alice, "h-over", HoldRequest::Quantity(1), MINUTE_MS);
    assert_eq!(over, Err(Rejection::CustomerLimit { max }));

    w.release(holds[0].hold_id, alice).expect("own hold");
    assert!(
        w.hold(event, alice, "h-again", HoldRequest::Quantity(1), MINUTE_MS)
            .is_ok()
    );
}

// The hold TTL must be 1..=hold_ttl_ms_max: 0 and the max + 1 are BadTtl, the max is accepted.
#[test]
fn hold_ttl_limits() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), unnumbered(100));
    let max_ms = w.state.limits().hold_ttl_ms_max;
    let bad = Err(Rejection::BadTtl { max_ms });
    assert_eq!(w.hold(event, alice, "h1", HoldRequest::Quantity(1), 0), bad);
    assert_eq!(
        w.hold(event, alice, "h2", HoldRequest::Quantity(1), max_ms + 1),
        bad
    );
    let placed = w.hold(event, alice, "h3", HoldRequest::Quantity(1), max_ms);
    assert_eq!(
        placed.expect("the max is accepted").expires_at_ms,
        START_MS + max_ms
    );
    let shortest = w.hold(event, alice, "h4", HoldRequest::Quantity(1), 1);
    assert_eq!(
        shortest.expect("1 ms is accepted").expires_at_ms,
        START_MS + 1
    );
}

// key_bytes_max bounds both parts of an idempotency key: 128 bytes sell, 129 bytes or an empty
// part are BadKey, and a BadKey answer is not recorded.
#[test]
fn key_bytes_max_from_both_sides() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), unnumbered(100));
    assert_eq!(w.state.limits().key_bytes_max, 128);
    let purchase = |key: IdempotencyKey| Command::Purchase {
        event_id: event,
        key,
        customer: client(BOX_OFFICE),
        seat: None,
    };
    let (longest, too_long) = ("a".repeat(128), "a".repeat(129));

    let sold = w.run(purchase(key(&longest, &longest)));
    assert!(
        matches!(sold, Outcome::Purchase(Replayable { result: Ok(_), .. })),
        "{sold:?}"
    );
    assert_eq!(w.state.record_count(), 1);
    let bad = Outcome::Purchase(Replayable {
        replayed: false,
        result: Err(Rejection::BadKey),
    });
    for bad_key in [
        key(&too_long, "r1"),
        key("c1", &too_long),
        key("", "r1"),
        key("c1", ""),
    ] {
        assert_eq!(w.run(purchase(bad_key)), bad);
    }
    let hold = w.hold_keyed(
        event,
        alice,
        key(&too_long, "r1"),
        HoldRequest::Quantity(1),
        1,
    );
    assert_eq!(hold.result, Err(Rejection::BadKey));
    assert_eq!(w.state.record_count(), 1, "BadKey answers are not recorded");
    assert_eq!(w.inventory(event).sold(), 1);
}

// The same key with the same parameters replays the recorded answer and sells nothing; with
// other parameters it is KeyReused; keys are scoped per event.
#[test]
fn replay_returns_recorded_answer_and_reuse_is_rejected() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), numbered(10, &[]));
    let other_event = w.event(details(None), numbered(10, &[]));
    let box_office = client(BOX_OFFICE);

    let first = w.buy_as(event, &box_office, "r1", Some(3));
    let sale = first.result.clone().expect("seat 3 is free");
    let replay = w.buy_as(event, &box_office, "r1", Some(3));
    assert_eq!(
        replay,
        Replayable {
            replayed: true,
            result: Ok(sale)
        }
    );
    assert_eq!(w.state.sales(event).count(), 1, "a replay sells nothing");
    let reused = Replayable {
        replayed: false,
        result: Err(Rejection::KeyReused),
    };
    assert_eq!(w.buy_as(event, &box_office, "r1", Some(4)), reused);
    assert_eq!(w.buy_as(event, &box_office, "r1", None), reused);
    let same_key = Command::Purchase {
        event_id: event,
        key: key(BOX_OFFICE, "r1"),
        customer: client("someone-else"),
        seat: Some(3),
    };
    assert_eq!(w.run(same_key), Outcome::Purchase(reused.clone()));
    assert!(
        w.buy_as(other_event, &box_office, "r1", Some(3))
            .result
            .is_ok(),
        "per event"
    );

    let hold_key = key("shop", "h1");
    let request = HoldRequest::Seats(vec![5]);
    let placed = w.hold_keyed(event, alice, hold_key.clone(), request.clone(), MINUTE_MS);
    let replay = w.hold_keyed(event, alice, hold_key.clone(), request, MINUTE_MS);
    assert_eq!(
        replay,
        Replayable {
            replayed: true,
            result: placed.result
        }
    );
    assert_eq!(w.state.holds_of(alice).count(), 1, "a replay holds nothing");
    let other = w.hold_keyed(
        event,
        alice,
        hold_key.clone(),
        HoldRequest::Quantity(1),
        MINUTE_MS,
    );
    assert_eq!(
        other,
        Replayable {
            replayed: false,
            result: Err(Rejection::KeyReused)
        }
    );
    let purchase = Command::Purchase {
        event_id: event,
        key: hold_key,
        customer: box_office,
        seat: None,
    };
    assert_eq!(w.run(purchase), Outcome::Purchase(reused));
}

// A rejection is recorded like a sale: replaying a SoldOut request after a refund still answers
// SoldOut (replayed), while a new request id sells the freed ticket.
#[test]
fn recorded_rejection_replays_as_is() {
    let mut w = World::new();
    let event = w.event(details(None), unnumbered(1));
    let sale = w.buy(event, "r1", None).expect("on sale");
    assert_eq!(w.buy(event, "r2", None), Err(Rejection::SoldOut));
    w.refund(sale.ticket_id, w.organizer, true)
        .expect("override");
    let replay = w.buy_as(event, &client(BOX_OFFICE), "r2", None);
    assert_eq!(
        replay,
        Replayable {
            replayed: true,
            result: Err(Rejection::SoldOut)
        }
    );
    assert!(w.buy(event, "r3", None).is_ok());
}

// A purchase or hold for an event that does not exist is UnknownEvent and is not recorded.
#[test]
fn unknown_event_is_rejected_and_not_recorded() {
    let mut w = World::new();
    let alice = w.user("alice");
    assert_eq!(w.buy(EventId(99), "r1", None), Err(Rejection::UnknownEvent));
    assert_eq!(
        w.buy(EventId(99), "r1", Some(1)),
        Err(Rejection::UnknownEvent)
    );
    let hold = w.hold(
        EventId(99),
        alice,
        "h1",
        HoldRequest::Quantity(1),
        MINUTE_MS,
    );
    assert_eq!(hold, Err(Rejection::UnknownEvent));
    assert_eq!(w.state.record_count(), 0);
}

// Idempotency records live idempotency_retention_ms of log time: one millisecond before, the
// key still replays; at the retention the record is dropped and the same key sells again.
#[test]
fn idempotency_records_expire_after_retention() {
    let mut w = World::new();
    let retention_ms = w.state.limits().idempotency_retention_ms;
    let event = w.event(details(None), unnumbered(10));
    let box_office = client(BOX_OFFICE);
    let sale = w.buy(event, "r1", None).expect("on sale");
    assert_eq!(w.state.record_count(), 1);

    w.advance_to(START_MS + retention_ms - 1);
    assert_eq!(w.state.record_count(), 1);
    let replay = w.buy_as(event, &box_office, "r1", None);
    assert_eq!(
        replay,
        Replayable {
            replayed: true,
            result: Ok(sale.clone())
        }
    );

    w.advance_to(START_MS + retention_ms);
    assert_eq!(w.state.record_count(), 0);
    let again = w.buy_as(event, &box_office, "r1", None);
    assert!(!again.replayed);
    assert_ne!(again.result.expect("sells again").ticket_id, sale.ticket_id);
    assert_eq!(w.state.record_count(), 1);
    assert_eq!(w.state.sales(event).count(), 2);
}

// UpdateEvent with the current version bumps it; a stale version is VersionConflict naming the
// current version; an unknown event is UnknownEvent.
#[test]
fn update_event_with_stale_version_conflicts() {
    let mut w = World::new();
    let event = w.event(details(None), unnumbered(10));
    let renamed = EventDetails {
        name: "Renamed".into(),
        ..details(None)
    };
    let update = |expected_version: u64| Command::UpdateEvent {
        event_id: event,
        expected_version,
        details: renamed.clone(),
    };
    assert_eq!(w.run(update(1)), Outcome::Event(Ok((event, 2))));
    assert_eq!(w.state.event(event).unwrap().details.name, "Renamed");
    let conflict = EventRejection::VersionConflict { current_version: 2 };
    assert_eq!(w.run(update(1)), Outcome::Event(Err(conflict)));
    assert_eq!(w.run(update(2)), Outcome::Event(Ok((event, 3))));
    // The ticket-signing key comes from the create command and no edit changes it (codes
    // already issued must keep verifying).
    assert_eq!(w.state.event(event).unwrap().ticket_key_seed, [1; 32]);
    let unknown = Command::UpdateEvent {
        event_id: EventId(99),
        expected_version: 1,
        details: details(None),
    };
    assert_eq!(
        w.run(unknown),
        Outcome::Event(Err(EventRejection::UnknownEvent))
    );
}

// Setting per_customer_max on an event that already sold counts the earlier sales against it
// (an uncapped event keeps no counts; its first cap counts its tickets and holds), and removing
// it again keeps the invariants.
#[test]
fn per_customer_max_added_after_sales_counts_earlier_sales() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), unnumbered(10));
    let as_alice = CustomerKey::User(alice);
    w.buy_as(event, &as_alice, "r1", None)
        .result
        .expect("no cap yet");
    w.hold(event, alice, "h1", HoldRequest::Quantity(1), MINUTE_MS)
        .expect("no cap yet");

    let capped = Command::UpdateEvent {
        event_id: event,
        expected_version: 1,
        details: details(Some(2)),
    };
    assert_eq!(w.run(capped), Outcome::Event(Ok((event, 2))));
    let limit = Err(Rejection::CustomerLimit { max: 2 });
    assert_eq!(w.buy_as(event, &as_alice, "r2", None).result, limit);

    let uncapped = Command::UpdateEvent {
        event_id: event,
        expected_version: 2,
        details: details(None),
    };
    assert_eq!(w.run(uncapped), Outcome::Event(Ok((event, 3))));
    assert!(w.buy_as(event, &as_alice, "r3", None).result.is_ok());
    let recapped = Command::UpdateEvent {
        event_id: event,
        expected_version: 3,
        details: details(Some(3)),
    };
    assert_eq!(w.run(recapped), Outcome::Event(Ok((event, 4))));
    assert_eq!(
        w.buy_as(event, &as_alice, "r4", None).result,
        Err(Rejection::CustomerLimit { max: 3 })
    );
}

// CreateUser with a username that is taken is UsernameTaken and creates no account.
#[test]
fn create_user_with_taken_username_is_rejected() {
    let mut w = World::new();
    let alice = w.user("alice");
    let again = Command::CreateUser {
        username: "alice".into(),
        password_hash: "other".into(),
        role: Role::Admin,
    };
    assert_eq!(
        w.run(again),
        Outcome::User(Err(UserRejection::UsernameTaken))
    );
    assert_eq!(w.state.user_count(), 2, "the organizer and alice");
    assert_eq!(
        w.state.user_by_name("alice").map(|u| (u.id, u.role)),
        Some((alice, Role::Attendee))
    );
}

// Usernames are unique ignoring ASCII case, decided by the core: after `abcd` exists, every
// other of its 16 case spellings is UsernameTaken and creates nothing; the account is found by
// any spelling and keeps the spelling it was created with, also after an encode/decode; a
// non-ASCII letter is not folded (the edge refuses such names anyway).
#[test]
fn usernames_are_unique_ignoring_case() {
    let mut w = World::new();
    let first = w.user("aBcd");
    let spellings: Vec<String> = (0..16u32)
        .map(|mask| {
            "abcd"
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if mask & (1 << i) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect();
    for name in &spellings {
        let again = Command::CreateUser {
            username: name.clone(),
            password_hash: "other".into(),
            role: Role::Admin,
        };
        assert_eq!(
            w.run(again),
            Outcome::User(Err(UserRejection::UsernameTaken)),
            "{name}"
        );
        let found = w.state.user_by_name(name).expect("found by any case");
        assert_eq!((found.id, found.username.as_str()), (first, "aBcd"));
    }
    assert_eq!(w.state.user_count(), 2, "the organizer and aBcd");
    let restored = tix_core::State::decode(&w.state.encode()).expect("decodes");
    assert_eq!(restored.user_by_name("ABCD").map(|u| u.id), Some(first));
    assert_eq!(restored.digest(), w.state.digest());
    let accented = w.user("\u{c9}mile");
    assert_ne!(w.user("\u{e9}mile"), accented);
}

// Sessions end by log time: a reader's clock at or past the expiry hides the session, the
// first batch at the expiry removes it, an already-expired session is never stored, and
// EndSession removes one.
#[test]
fn sessions_expire_by_log_time() {
    let mut w = World::new();
    let alice = w.user("alice");
    let expires_at_ms = START_MS + HOUR_MS;
    let create = |token_hash: &str, expires_at_ms: u64| Command::CreateSession {
        token_hash: token_hash.into(),
        user_id: alice,
        expires_at_ms,
    };
    assert_eq!(w.run(create("t1", expires_at_ms)), Outcome::Session);
    assert_eq!(w.run(create("t2", expires_at_ms)), Outcome::Session);
    assert_eq!(
        w.state.session("t1", START_MS).map(|s| s.user_id),
        Some(alice)
    );
    assert!(
        w.state.session("t1", expires_at_ms).is_none(),
        "the reader's clock is ahead"
    );

    w.advance_to(expires_at_ms - 1);
    assert!(w.state.session("t1", 0).is_some());
    assert_eq!(
        w.run(Command::EndSession {
            token_hash: "t2".into()
        }),
        Outcome::Session
    );
    assert!(w.state.session("t2", 0).is_none());

    w.advance_to(expires_at_ms);
    assert!(
        w.state.session("t1", 0).is_none(),
        "log time passed the expiry"
    );
    w.run(create("t3", expires_at_ms));
    assert!(
        w.state.session("t3", 0).is_none(),
        "an expired session is not stored"
    );
}

// Log time never moves backwards: a batch stamped earlier than log time applies at log time,
// so a hold placed in it expires relative to the later time.
#[test]
fn log_time_never_moves_backwards() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), unnumbered(10));
    w.advance_to(START_MS + HOUR_MS);
    w.now_ms = START_MS;
    let hold = w
        .hold(event, alice, "h1", HoldRequest::Quantity(1), MINUTE_MS)
        .expect("held");
    assert_eq!(w.state.now_ms(), START_MS + HOUR_MS);
    assert_eq!(hold.expires_at_ms, START_MS + HOUR_MS + MINUTE_MS);
}

// A general-admission hold may take exactly what is left after sales; one more is SoldOut.
#[test]
fn unnumbered_hold_takes_at_most_what_is_left() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), unnumbered(5));
    w.buy(event, "r1", None).expect("on sale");
    w.buy(event, "r2", None).expect("on sale");
    let too_many = w.hold(event, alice, "h1", HoldRequest::Quantity(4), MINUTE_MS);
    assert_eq!(too_many, Err(Rejection::SoldOut));
    let rest = w.hold(event, alice, "h2", HoldRequest::Quantity(3), MINUTE_MS);
    assert_eq!(rest.expect("exactly what is left").quantity, 3);
    assert_eq!(w.buy(event, "r3", None), Err(Rejection::SoldOut));
    let inventory = w.inventory(event);
    assert_eq!(
        (inventory.sold(), inventory.held(), inventory.available()),
        (2, 3, 0)
    );
}

// A JSON snapshot restores to an equal state with the same digest, even for a venue latitude
// whose shortest decimal form serde_json's default (not float_roundtrip) parser reads back
// one ulp off.
#[test]
fn snapshot_restores_venue_coordinates_exactly() {
    let mut w = World::new();
    let lat = 20.302462714509574;
    let venue = Venue {
        name: "Hall".into(),
        lat,
        lon: 0.1 + 0.2,
    };
    let event = w.event(
        EventDetails {
            venue,
            ..details(None)
        },
        unnumbered(5),
    );
    let bytes = postcard::to_stdvec(&w.state).expect("the state serializes");
    let restored: Replica = postcard::from_bytes(&bytes).expect("the snapshot deserializes");
    assert_eq!(
        restored.event(event).unwrap().details.venue.lat.to_bits(),
        lat.to_bits()
    );
    assert_eq!(restored.digest(), w.state.digest());
    assert_eq!(restored, w.state);
}

// The price limit from both sides: the highest price creates an event, one more is refused
// with BadPrice, on create and on edit.
#[test]
fn price_limit_from_both_sides() {
    let mut state = Replica::default();
    let max = state.limits().price_cents_max;
    let mut details = details(None);
    details.price_cents = max;
    let created = state.apply(&Command::CreateEvent {
        organizer: UserId(1),
        details: details.clone(),
        inventory: InventorySpec::Unnumbered { capacity: 3 },
        ticket_key_seed: [2; 32],
    });
    let Outcome::Event(Ok((event_id, version))) = created else {
        panic!("{created:?}")
    };
    details.price_cents = max + 1;
    let refused = state.apply(&Command::CreateEvent {
        organizer: UserId(1),
        details: details.clone(),
        inventory: InventorySpec::Unnumbered { capacity: 3 },
        ticket_key_seed: [2; 32],
    });
    assert_eq!(
        refused,
        Outcome::Event(Err(EventRejection::BadPrice { max_cents: max }))
    );
    let edit = Command::UpdateEvent {
        event_id,
        expected_version: version,
        details,
    };
    let refused = state.apply(&edit);
    assert_eq!(
        refused,
        Outcome::Event(Err(EventRejection::BadPrice { max_cents: max }))
    );
    state.check_invariants().expect("invariants hold");
}

// The only admin cannot be demoted (nobody could grant roles again); with a second admin either
// may be, and then the other is the last one.
#[test]
fn the_last_admin_cannot_be_demoted() {
    let mut w = World::new();
    let root = w.user_with_role("root", Role::Admin);
    let demote = |user_id| Command::SetRole {
        user_id,
        role: Role::Organizer,
    };
    assert_eq!(
        w.run(demote(root)),
        Outcome::User(Err(UserRejection::LastAdmin))
    );
    assert_eq!(w.state.user(root).map(|u| u.role), Some(Role::Admin));
    let second = w.user_with_role("second", Role::Admin);
    assert_eq!(w.run(demote(root)), Outcome::User(Ok(root)));
    assert_eq!(
        w.run(demote(second)),
        Outcome::User(Err(UserRejection::LastAdmin))
    );
    let reaffirm = Command::SetRole {
        user_id: second,
        role: Role::Admin,
    };
    assert_eq!(w.run(reaffirm), Outcome::User(Ok(second)));
}

// Cancelling refunds every active ticket (shop and box office, admitted or not, whatever the
// refund policy), releases every open hold, and leaves the other events alone.
#[test]
fn cancelling_refunds_every_ticket_and_releases_every_hold() {
    let mut w = World::new();
    let (alice, bob) = (w.user("alice"), w.user("bob"));
    let staff = w.user_with_role("door", Role::Staff);
    let mut no_refunds = details(Some(4));
    no_refunds.refundable = false;
    let event = w.event(no_refunds, numbered(10, &[]));
    let other = w.event(details(None), unnumbered(5));
    let shop = w.buy_through_hold(event, alice, "a1");
    let pair = w
        .hold(event, alice, "a2", HoldRequest::Quantity(2), MINUTE_MS)
        .expect("held");
    let order = w.confirm(pair.hold_id, alice).expect("confirmed");
    let box_office = w.buy(event, "b1", None).expect("sold").ticket_id;
    w.check_in(box_office, staff).expect("admitted");
    let open = w
        .hold(event, bob, "b1", HoldRequest::Quantity(3), MINUTE_MS)
        .expect("held");
    let elsewhere = w.buy(other, "o1", None).expect("sold").ticket_id;

    let answer = w.cancel(event, w.organizer, "c1", "The venue flooded.");
    assert!(!answer.replayed);
    let cancelled = answer.result.expect("cancelled");
    assert_eq!(cancelled.tickets_refunded, 4);
    assert_eq!(cancelled.holds_released, 1);
    assert_eq!(cancelled.amount_cents, 4 * PRICE_CENTS);
    let payments: Vec<PaymentRefund> = vec![
        PaymentRefund {
            payment_ref: "pay-1".into(),
            amount_cents: PRICE_CENTS,
        },
        PaymentRefund {
            payment_ref: format!("pay-{}", pair.hold_id),
            amount_cents: 2 * PRICE_CENTS,
        },
    ];
    assert_eq!(cancelled.payments, payments);
    for ticket in [shop, box_office, order.tickets[0], order.tickets[1]] {
        let status = w.state.ticket(ticket).expect("exists").status;
        assert_eq!(status, TicketStatus::Cancelled { at_ms: START_MS });
    }
    assert_eq!(w.state.sales(event).count(), 0);
    assert!(w.state.hold(open.hold_id).is_none());
    assert_eq!(
        (w.inventory(event).sold(), w.inventory(event).held()),
        (0, 0)
    );
    assert_eq!(w.inventory(event).available(), 10);
    let kept = w.state.cancellation(event).expect("recorded");
    assert_eq!(kept.reason, "The venue flooded.");
    assert_eq!((kept.by, kept.at_ms), (w.organizer, START_MS));
    assert_eq!(
        w.state.ticket(elsewhere).unwrap().status,
        TicketStatus::Active
    );
    assert_eq!(w.inventory(other).sold(), 1);
}

// After a cancellation the event refuses holds, sales, check-ins and edits with "cancelled",
// and a refund of its tickets is "already refunded".
#[test]
fn a_cancelled_event_refuses_everything_with_a_clear_answer() {
    let mut w = World::new();
    let alice = w.user("alice");
    let staff = w.user_with_role("door", Role::Staff);
    let event = w.event(details(None), unnumbered(10));
    let ticket = w.buy_through_hold(event, alice, "a1");
    w.cancel(event, w.organizer, "c1", "Storm")
        .result
        .expect("cancelled");

    let held = w.hold(event, alice, "a2", HoldRequest::Quantity(1), MINUTE_MS);
    assert_eq!(held, Err(Rejection::EventCancelled));
    assert_eq!(w.buy(event, "b1", None), Err(Rejection::EventCancelled));
    assert_eq!(
        w.check_in(ticket, staff),
        Err(CheckInRejection::EventCancelled)
    );
    assert_eq!(
        w.refund(ticket, alice, false),
        Err(Rejection::AlreadyRefunded)
    );
    let edit = w.run(Command::UpdateEvent {
        event_id: event,
        expected_version: 1,
        details: details(None),
    });
    assert_eq!(edit, Outcome::Event(Err(EventRejection::Cancelled)));
    assert_eq!(Rejection::EventCancelled.code(), "event_cancelled");
}

// Only the event's organizer or an admin may cancel; a retry with the same request id gets the
// recorded answer, flagged, and another request is "already cancelled".
#[test]
fn who_may_cancel_and_retries() {
    let mut w = World::new();
    let rival = w.user_with_role("rival", Role::Organizer);
    let admin = w.user_with_role("root", Role::Admin);
    let alice = w.user("alice");
    let event = w.event(details(None), unnumbered(10));
    let second = w.event(details(None), unnumbered(10));
    w.buy_through_hold(event, alice, "a1");

    let refused = w.cancel(event, rival, "c1", "mine now").result;
    assert_eq!(refused, Err(CancelRejection::NotYourEvent));
    let refused = w.cancel(event, alice, "c1", "nope").result;
    assert_eq!(refused, Err(CancelRejection::NotYourEvent));
    let unknown = w.cancel(EventId(99), admin, "c1", "gone").result;
    assert_eq!(unknown, Err(CancelRejection::UnknownEvent));

    let first = w.cancel(event, w.organizer, "c1", "Storm");
    assert_eq!(first.result.as_ref().map(|c| c.tickets_refunded), Ok(1));
    let retry = w.cancel(event, w.organizer, "c1", "Storm");
    assert!(retry.replayed);
    assert_eq!(retry.result.map(|c| c.tickets_refunded), Ok(1));
    let again = w.cancel(event, w.organizer, "c2", "Storm");
    assert!(!again.replayed);
    assert_eq!(again.result, Err(CancelRejection::AlreadyCancelled));
    let by_admin = w.cancel(second, admin, "c1", "Admin decision").result;
    assert_eq!(by_admin.map(|c| c.tickets_refunded), Ok(0));
}

// The reason is 1 to CANCEL_REASON_CHARS_MAX characters without control characters, from both
// sides of the limit.
#[test]
fn cancel_reason_limits_from_both_sides() {
    let mut w = World::new();
    let event = w.event(details(None), unnumbered(10));
    for bad in ["", "   ", "line\nbreak", "tab\there"] {
        let refused = w.cancel(event, w.organizer, "c1", bad).result;
        assert_eq!(refused, Err(CancelRejection::BadReason), "{bad:?}");
    }
    let over = "é".repeat(CANCEL_REASON_CHARS_MAX + 1);
    let refused = w.cancel(event, w.organizer, "c1", &over).result;
    assert_eq!(refused, Err(CancelRejection::BadReason));
    assert!(w.state.cancellation(event).is_none());
    let longest = "é".repeat(CANCEL_REASON_CHARS_MAX);
    let done = w.cancel(event, w.organizer, "c1", &longest).result;
    assert!(done.is_ok(), "{done:?}");
}

// Tickets sold earlier in the same batch (still pending history changes) are refunded too, and
// the cancellation survives an encode/decode of the hot state.
#[test]
fn cancel_in_the_same_batch_as_sales_and_after_a_restore() {
    let mut w = World::new();
    let event = w.event(details(Some(3)), unnumbered(10));
    let sale = |request_id: &str| Command::Purchase {
        event_id: event,
        key: key(BOX_OFFICE, request_id),
        customer: client(BOX_OFFICE),
        seat: None,
    };
    let cancel = Command::CancelEvent {
        event_id: event,
        key: key("user:1", "c1"),
        by: w.organizer,
        reason: "Storm".into(),
    };
    let outcomes = w.apply(vec![sale("r1"), sale("r2"), cancel, sale("r3")]);
    match &outcomes[2] {
        Outcome::Cancel(answer) => {
            assert_eq!(answer.result.as_ref().map(|c| c.tickets_refunded), Ok(2))
        }
        other => panic!("cancel answered {other:?}"),
    }
    assert!(matches!(
        &outcomes[3],
        Outcome::Purchase(Replayable {
            result: Err(Rejection::EventCancelled),
            ..
        })
    ));
    let mut hot = State::new(Limits::default());
    let mut history = tix_core::MemoryHistory::default();
    let batch = batch(
        START_MS,
        vec![Command::CreateUser {
            username: "x".into(),
            password_hash: "h".into(),
            role: Role::Admin,
        }],
    );
    hot.apply_batch(&batch, &history);
    history.write(hot.take_changes());
    let bytes = hot.encode();
    assert_eq!(State::decode(&bytes).expect("decodes"), hot);
    // A state encoded before the tagged sections lacks the last (empty list) byte, one before
    // ended holds were remembered the last three (empty) bytes, one encoded before
    // cancellations existed the last four.
    assert_eq!(bytes[bytes.len() - 4..], [0, 0, 0, 0]);
    for cut in [1, 3, 4] {
        let legacy = &bytes[..bytes.len() - cut];
        assert_eq!(
            State::decode(legacy).expect("the old encoding decodes"),
            hot,
            "without the last {cut} bytes"
        );
    }
}

// A hold that ended is remembered with how: paid (its order), released, expired, or its event
// cancelled — for its customer's checkout page — and forgotten a day of log time later.
#[test]
fn a_hold_remembers_how_it_ended_for_a_day() {
    let mut w = World::new();
    let alice = w.user("alice");
    let event = w.event(details(None), numbered(6, &[]));
    let hold = |w: &mut World, id: &str, seat: u32| {
        w.hold(event, alice, id, HoldRequest::Seats(vec![seat]), MINUTE_MS)
            .expect("held")
            .hold_id
    };
    let paid = hold(&mut w, "h1", 1);
    let released = hold(&mut w, "h2", 2);
    let expired = hold(&mut w, "h3", 3);
    assert!(w.state.ended_hold(paid).is_none(), "active, not ended");
    let order = w.confirm(paid, alice).expect("live hold");
    assert_eq!(w.release(released, alice), Ok(released));
    w.advance_to(START_MS + MINUTE_MS);
    let how = |w: &World, id: HoldId| w.state.ended_hold(id).map(|e| (e.customer, e.how));
    assert_eq!(
        how(&w, paid),
        Some((alice, HoldEnd::Confirmed(order.order_id)))
    );
    assert_eq!(how(&w, released), Some((alice, HoldEnd::Released)));
    assert_eq!(how(&w, expired), Some((alice, HoldEnd::Expired)));
    assert_eq!(
        w.state.ended_hold(expired).map(|e| e.at_ms),
        Some(START_MS + MINUTE_MS)
    );

    w.advance_to(START_MS + 2 * MINUTE_MS);
    let cancelled = hold(&mut w, "h4", 4);
    let cancel = Command::CancelEvent {
        event_id: event,
        key: key("user:1", "c1"),
        by: w.organizer,
        reason: "Storm".into(),
    };
    w.run(cancel);
    assert_eq!(how(&w, cancelled), Some((alice, HoldEnd::EventCancelled)));
    // A snapshot keeps them.
    let restored = State::decode(&w.state.encode()).expect("decodes");
    assert_eq!(restored.ended_hold(paid), w.state.ended_hold(paid));

    // The first three ended by START_MS + a minute, the last a minute later: a day after the
    // third, only the event's cancellation is still remembered.
    w.advance_to(START_MS + MINUTE_MS + ENDED_HOLD_RETENTION_MS);
    assert_eq!(how(&w, paid), None);
    assert_eq!(how(&w, expired), None);
    assert!(how(&w, cancelled).is_some());
}

// The admin's user list: a name prefix ignoring case, in name order, pages of `limit` after a
// cursor; a cursor before the prefix starts at the prefix.
#[test]
fn users_by_name_pages_through_a_prefix() {
    let mut w = World::new();
    for name in ["Anna", "anton", "Bert", "annika", "zoe"] {
        w.user(name);
    }
    let names = |users: Vec<&tix_core::User>| -> Vec<String> {
        users.iter().map(|u| u.username.clone()).collect()
    };
    assert_eq!(
        names(w.state.users_by_name("AN", None, 10)),
        ["Anna", "annika", "anton"]
    );
    assert_eq!(
        names(w.state.users_by_name("an", None, 2)),
        ["Anna", "annika"]
    );
    assert_eq!(
        names(w.state.users_by_name("an", Some("annika"), 2)),
        ["anton"]
    );
    assert_eq!(names(w.state.users_by_name("an", Some("aaa"), 1)), ["Anna"]);
    assert_eq!(w.state.users_by_name("", None, 100).len(), 6);
    assert!(w.state.users_by_name("x", None, 10).is_empty());
}

// A 20,000-ticket event is cancelled by one command in one batch: every ticket refunded, the
// inventory whole again, the invariants intact.
#[test]
fn cancelling_a_twenty_thousand_ticket_event_is_one_command() {
    const TICKETS: u32 = 20_000;
    let mut w = World::new();
    let event = w.event(details(None), unnumbered(TICKETS));
    let sales: Vec<Command> = (0..TICKETS)
        .map(|n| Command::Purchase {
            event_id: event,
            key: key(BOX_OFFICE, &format!("r{n}")),
            customer: client(BOX_OFFICE),
            seat: None,
        })
        .collect();
    w.apply(sales);
    assert_eq!(w.inventory(event).sold(), TICKETS);
    let answer = w.cancel(event, w.organizer, "c1", "Storm");
    let cancelled = answer.result.expect("cancelled");
    assert_eq!(cancelled.tickets_refunded, TICKETS);
    assert_eq!(cancelled.amount_cents, u64::from(TICKETS) * PRICE_CENTS);
    assert!(
        cancelled.payments.is_empty(),
        "box-office sales have no card payments"
    );
    assert_eq!(w.inventory(event).available(), TICKETS);
}
