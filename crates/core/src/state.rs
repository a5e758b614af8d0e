//! The replicated state and how commands change it.
//!
//! [`State::apply_batch`] is the whole state machine: it advances log time, expires holds,
//! sessions and idempotency records that are due, then applies each command and returns one
//! outcome per command. All collections are `BTreeMap`s so that iteration order, and therefore
//! every choice (which seat is "best available", which hold expires first), is the same on every
//! replica.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{Batch, Command, EventDetails, HoldRequest, InventorySpec, Role};
use crate::ids::{CustomerKey, EventId, HoldId, IdempotencyKey, OrderId, TicketId, UserId};
use crate::inventory::Inventory;
use crate::limits::Limits;
use crate::outcome::{
    Admitted, CheckInRejection, EventRejection, HoldPlaced, OrderConfirmed, Outcome, Refunded,
    Rejection, Replayable, Sale, UserRejection,
};

/// An account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Unique login name.
    pub username: String,
    /// PHC-format argon2id hash.
    pub password_hash: String,
    /// What it may do.
    pub role: Role,
    /// When it was created, by log time.
    pub created_at_ms: u64,
}

/// A login session, stored under the hash of its bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Who is logged in.
    pub user_id: UserId,
    /// When it ends, by log time.
    pub expires_at_ms: u64,
}

/// An event and its inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its id.
    pub id: EventId,
    /// Who owns it.
    pub organizer: UserId,
    /// Name, time, venue, price.
    pub details: EventDetails,
    /// Starts at 1; every accepted edit adds one.
    pub version: u64,
    /// What is left to sell.
    pub inventory: Inventory,
    /// Active tickets of this event, in sale order (ticket ids only grow).
    pub tickets: BTreeSet<TicketId>,
    /// When it was created, by log time.
    pub created_at_ms: u64,
    /// The seed of the Ed25519 key that signs this event's ticket codes (secret).
    #[serde(default)]
    pub ticket_key_seed: [u8; 32],
}

/// Inventory reserved for a customer while they pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Its id.
    pub id: HoldId,
    /// Which event.
    pub event_id: EventId,
    /// Who holds.
    pub customer: UserId,
    /// How many tickets.
    pub quantity: u32,
    /// The seats, for a numbered event (`quantity` of them).
    pub seats: Vec<u32>,
    /// When it lapses, by log time.
    pub expires_at_ms: u64,
    /// The ticket price when the hold was placed: what checkout charges and the order records,
    /// even if the organizer edits the price meanwhile.
    pub price_cents: u64,
}

/// A confirmed, paid order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// Which event.
    pub event_id: EventId,
    /// Who bought.
    pub customer: UserId,
    /// Its tickets.
    pub tickets: Vec<TicketId>,
    /// What was charged, in minor units.
    pub total_cents: u64,
    /// The payment provider's reference.
    pub payment_ref: String,
    /// When, by log time.
    pub confirmed_at_ms: u64,
}

/// Whether a ticket is still good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketStatus {
    /// Valid for entry.
    Active,
    /// Refunded; its inventory went back on sale.
    Refunded {
        /// When, by log time.
        at_ms: u64,
    },
}

/// One admission to an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Its id.
    pub id: TicketId,
    /// Which event.
    pub event_id: EventId,
    /// The seat, for a numbered event.
    pub seat: Option<u32>,
    /// Who it counts against.
    pub customer: CustomerKey,
    /// The order it belongs to (`None` for box-office sales).
    pub order_id: Option<OrderId>,
    /// The idempotency key of the sale that created it (box-office sales).
    pub key: Option<IdempotencyKey>,
    /// Price paid, in minor units.
    pub price_cents: u64,
    /// When it was sold, by log time.
    pub sold_at_ms: u64,
    /// Active or refunded.
    pub status: TicketStatus,
    /// When and by whom it was admitted at the door.
    pub checked_in: Option<(u64, UserId)>,
}

/// The parameters of a request, remembered with its key to detect reuse with other parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Fingerprint {
    Purchase {
        customer: CustomerKey,
        seat: Option<u32>,
    },
    Hold {
        customer: UserId,
        request: HoldRequest,
    },
}

/// The recorded answer for one idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IdempotencyRecord {
    fingerprint: Fingerprint,
    outcome: Outcome,
    recorded_at_ms: u64,
}

/// Idempotency records are scoped per event.
type RecordKey = (EventId, IdempotencyKey);

/// Next values of the id counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    user: u64,
    event: u64,
    hold: u64,
    order: u64,
    ticket: u64,
}

/// Everything tix knows, replicated by applying the same batches in the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    limits: Limits,
    now_ms: u64,
    next: Counters,
    users: BTreeMap<UserId, User>,
    usernames: BTreeMap<String, UserId>,
    sessions: BTreeMap<String, Session>,
    session_expiry: BTreeSet<(u64, String)>,
    events: BTreeMap<EventId, Event>,
    holds: BTreeMap<HoldId, Hold>,
    hold_expiry: BTreeSet<(u64, HoldId)>,
    orders: BTreeMap<OrderId, Order>,
    tickets: BTreeMap<TicketId, Ticket>,
    #[serde(with = "map_as_pairs")]
    records: BTreeMap<RecordKey, IdempotencyRecord>,
    /// Keys in the order they were recorded; log time never goes back, so also by time.
    record_queue: VecDeque<(u64, RecordKey)>,
    /// Tickets plus held units per customer, kept for every event: `UpdateEvent` may add a
    /// per-customer cap later, and it must count the sales made before it.
    #[serde(with = "map_as_pairs")]
    customer_counts: BTreeMap<(EventId, CustomerKey), u32>,
    /// Active holds per customer, for `Limits::holds_per_customer_max`.
    holds_per_customer: BTreeMap<UserId, u32>,
}

impl Default for State {
    fn default() -> Self {
        State::new(Limits::default())
    }
}

impl State {
    /// Returns an empty state with the given limits.
    pub fn new(limits: Limits) -> State {
        State {
            limits,
            now_ms: 0,
            next: Counters {
                user: 1,
                event: 1,
                hold: 1,
                order: 1,
                ticket: 1,
            },
            users: BTreeMap::new(),
            usernames: BTreeMap::new(),
            sessions: BTreeMap::new(),
            session_expiry: BTreeSet::new(),
            events: BTreeMap::new(),
            holds: BTreeMap::new(),
            hold_expiry: BTreeSet::new(),
            orders: BTreeMap::new(),
            tickets: BTreeMap::new(),
            records: BTreeMap::new(),
            record_queue: VecDeque::new(),
            customer_counts: BTreeMap::new(),
            holds_per_customer: BTreeMap::new(),
        }
    }

    /// Applies a batch: advances log time, expires what is due, then applies each command.
    /// Returns one outcome per command, in order.
    pub fn apply_batch(&mut self, batch: &Batch) -> Vec<Outcome> {
        self.advance_time(batch.time_ms);
        batch.commands.iter().map(|c| self.apply(c)).collect()
    }

    /// Moves log time forward (never back) and expires holds, sessions and records that are due.
    pub fn advance_time(&mut self, time_ms: u64) {
        self.now_ms = self.now_ms.max(time_ms);
        self.expire_holds();
        self.expire_sessions();
        self.expire_records();
    }

    /// Applies one command at the current log time.
    pub fn apply(&mut self, command: &Command) -> Outcome {
        match command {
            Command::CreateUser {
                username,
                password_hash,
                role,
            } => Outcome::User(self.create_user(username, password_hash, *role)),
            Command::SetRole { user_id, role } => Outcome::User(self.set_role(*user_id, *role)),
            Command::CreateSession {
                token_hash,
                user_id,
                expires_at_ms,
            } => {
                self.create_session(token_hash, *user_id, *expires_at_ms);
                Outcome::Session
            }
            Command::EndSession { token_hash } => {
                self.end_session(token_hash);
                Outcome::Session
            }
            Command::CreateEvent {
                organizer,
                details,
                inventory,
                ticket_key_seed,
            } => {
                Outcome::Event(self.create_event(*organizer, details, inventory, *ticket_key_seed))
            }
            Command::UpdateEvent {
                event_id,
                expected_version,
                details,
            } => Outcome::Event(self.update_event(*event_id, *expected_version, details)),
            Command::Purchase {
                event_id,
                key,
                customer,
                seat,
            } => Outcome::Purchase(self.purchase(*event_id, key, customer, *seat)),
            Command::PlaceHold {
                event_id,
                key,
                customer,
                request,
                ttl_ms,
            } => Outcome::Hold(self.place_hold(*event_id, key, *customer, request, *ttl_ms)),
            Command::ReleaseHold { hold_id, customer } => {
                Outcome::Release(self.release_hold(*hold_id, *customer))
            }
            Command::ConfirmHold {
                hold_id,
                customer,
                payment_ref,
            } => Outcome::Confirm(self.confirm_hold(*hold_id, *customer, payment_ref)),
            Command::Refund {
                ticket_id,
                by,
                override_policy,
            } => Outcome::Refund(self.refund(*ticket_id, *by, *override_policy)),
            Command::CheckIn { ticket_id, by } => Outcome::CheckIn(self.check_in(*ticket_id, *by)),
        }
    }

    // ----- accounts -----

    fn create_user(
        &mut self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<UserId, UserRejection> {
        if self.usernames.contains_key(username) {
            return Err(UserRejection::UsernameTaken);
        }
        let id = UserId(self.next.user);
        self.next.user += 1;
        let user = User {
            id,
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            role,
            created_at_ms: self.now_ms,
        };
        self.users.insert(id, user);
        self.usernames.insert(username.to_owned(), id);
        Ok(id)
    }

    fn set_role(&mut self, user_id: UserId, role: Role) -> Result<UserId, UserRejection> {
        let user = self
            .users
            .get_mut(&user_id)
            .ok_or(UserRejection::UnknownUser)?;
        user.role = role;
        Ok(user_id)
    }

    fn create_session(&mut self, token_hash: &str, user_id: UserId, expires_at_ms: u64) {
        if !self.users.contains_key(&user_id) || expires_at_ms <= self.now_ms {
            return;
        }
        self.end_session(token_hash);
        self.sessions.insert(
            token_hash.to_owned(),
            Session {
                user_id,
                expires_at_ms,
            },
        );
        self.session_expiry
            .insert((expires_at_ms, token_hash.to_owned()));
    }

    fn end_session(&mut self, token_hash: &str) {
        if let Some(old) = self.sessions.remove(token_hash) {
            self.session_expiry
                .remove(&(old.expires_at_ms, token_hash.to_owned()));
        }
    }

    fn expire_sessions(&mut self) {
        while let Some((at, _)) = self.session_expiry.first() {
            if *at > self.now_ms {
                break;
            }
            let (_, hash) = self.session_expiry.pop_first().expect("first exists");
            self.sessions.remove(&hash);
        }
    }

    // ----- events -----

    fn create_event(
        &mut self,
        organizer: UserId,
        details: &EventDetails,
        spec: &InventorySpec,
        ticket_key_seed: [u8; 32],
    ) -> Result<(EventId, u64), EventRejection> {
        self.check_price(details)?;
        let inventory = Inventory::from_spec(spec, self.limits.event_capacity_max)
            .map_err(|detail| EventRejection::BadInventory { detail })?;
        let id = EventId(self.next.event);
        self.next.event += 1;
        let event = Event {
            id,
            organizer,
            details: details.clone(),
            version: 1,
            inventory,
            tickets: BTreeSet::new(),
            created_at_ms: self.now_ms,
            ticket_key_seed,
        };
        self.events.insert(id, event);
        Ok((id, 1))
    }

    fn check_price(&self, details: &EventDetails) -> Result<(), EventRejection> {
        let max_cents = self.limits.price_cents_max;
        if details.price_cents > max_cents {
            return Err(EventRejection::BadPrice { max_cents });
        }
        Ok(())
    }

    fn update_event(
        &mut self,
        event_id: EventId,
        expected_version: u64,
        details: &EventDetails,
    ) -> Result<(EventId, u64), EventRejection> {
        self.check_price(details)?;
        let event = self
            .events
            .get_mut(&event_id)
            .ok_or(EventRejection::UnknownEvent)?;
        if event.version != expected_version {
            return Err(EventRejection::VersionConflict {
                current_version: event.version,
            });
        }
        event.details = details.clone();
        event.version += 1;
        Ok((event_id, event.version))
    }

    // ----- sales -----

    fn purchase(
        &mut self,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: &CustomerKey,
        seat: Option<u32>,
    ) -> Replayable<Result<Sale, Rejection>> {
        let fingerprint = Fingerprint::Purchase {
            customer: customer.clone(),
            seat,
        };
        let unwrap = |o| match o {
            Outcome::Purchase(r) => Some(r),
            _ => None,
        };
        self.idempotent(
            (event_id, key.clone()),
            fingerprint,
            unwrap,
            Outcome::Purchase,
            |s| s.sell_one(event_id, key, customer, seat),
        )
    }

    fn sell_one(
        &mut self,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: &CustomerKey,
        seat: Option<u32>,
    ) -> Result<Sale, Rejection> {
        self.check_key(key)?;
        let event = self.events.get(&event_id).ok_or(Rejection::UnknownEvent)?;
        let seat = match (event.inventory.is_numbered(), seat) {
            (false, Some(_)) => return Err(Rejection::SeatNotApplicable),
            (false, None) => {
                if event.inventory.available() == 0 {
                    return Err(Rejection::SoldOut);
                }
                None
            }
            (true, Some(seat)) => {
                event.inventory.check_seats_free(&[seat])?;
                Some(seat)
            }
            (true, None) => Some(event.inventory.best_available(1)?[0]),
        };
        self.check_customer_cap(event_id, customer, 1)?;
        let ticket_id = self.issue_ticket(event_id, seat, customer.clone(), None, Some(key));
        let event = self.events.get_mut(&event_id).expect("checked above");
        event.inventory.sell_free(ticket_id, seat);
        self.count_customer(event_id, customer, 1);
        Ok(Sale { ticket_id, seat })
    }

    fn place_hold(
        &mut self,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: UserId,
        request: &HoldRequest,
        ttl_ms: u64,
    ) -> Replayable<Result<HoldPlaced, Rejection>> {
        let fingerprint = Fingerprint::Hold {
            customer,
            request: request.clone(),
        };
        let unwrap = |o| match o {
            Outcome::Hold(r) => Some(r),
            _ => None,
        };
        self.idempotent(
            (event_id, key.clone()),
            fingerprint,
            unwrap,
            Outcome::Hold,
            |s| s.hold_inventory(event_id, key, customer, request, ttl_ms),
        )
    }

    fn hold_inventory(
        &mut self,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: UserId,
        request: &HoldRequest,
        ttl_ms: u64,
    ) -> Result<HoldPlaced, Rejection> {
        self.check_key(key)?;
        let event = self.events.get(&event_id).ok_or(Rejection::UnknownEvent)?;
        if ttl_ms == 0 || ttl_ms > self.limits.hold_ttl_ms_max {
            return Err(Rejection::BadTtl {
                max_ms: self.limits.hold_ttl_ms_max,
            });
        }
        let quantity = match request {
            HoldRequest::Quantity(n) => *n,
            HoldRequest::Seats(seats) => seats.len() as u32,
        };
        let max = self.limits.seats_per_order_max;
        if quantity == 0 || quantity > max {
            return Err(Rejection::BadQuantity { quantity, max });
        }
        let seats = match (event.inventory.is_numbered(), request) {
            (false, HoldRequest::Seats(_)) => return Err(Rejection::SeatNotApplicable),
            (false, HoldRequest::Quantity(n)) => {
                if event.inventory.available() < *n {
                    return Err(Rejection::SoldOut);
                }
                Vec::new()
            }
            (true, HoldRequest::Seats(seats)) => {
                event.inventory.check_seats_free(seats)?;
                seats.clone()
            }
            (true, HoldRequest::Quantity(n)) => event.inventory.best_available(*n)?,
        };
        let holds_max = self.limits.holds_per_customer_max;
        if self.holds_per_customer.get(&customer).copied().unwrap_or(0) >= holds_max {
            return Err(Rejection::CustomerLimit { max: holds_max });
        }
        let customer_key = CustomerKey::User(customer);
        self.check_customer_cap(event_id, &customer_key, quantity)?;

        let hold_id = HoldId(self.next.hold);
        self.next.hold += 1;
        let expires_at_ms = self.now_ms + ttl_ms;
        let event = self.events.get_mut(&event_id).expect("checked above");
        event.inventory.hold(hold_id, quantity, &seats);
        let price_cents = event.details.price_cents;
        let hold = Hold {
            id: hold_id,
            event_id,
            customer,
            quantity,
            seats,
            expires_at_ms,
            price_cents,
        };
        self.hold_expiry.insert((expires_at_ms, hold_id));
        *self.holds_per_customer.entry(customer).or_insert(0) += 1;
        self.count_customer(event_id, &customer_key, quantity);
        let placed = HoldPlaced {
            hold_id,
            expires_at_ms,
            quantity,
            seats: hold.seats.clone(),
        };
        self.holds.insert(hold_id, hold);
        Ok(placed)
    }

    fn release_hold(&mut self, hold_id: HoldId, customer: UserId) -> Result<HoldId, Rejection> {
        let hold = self.holds.get(&hold_id).ok_or(Rejection::UnknownHold)?;
        if hold.customer != customer {
            return Err(Rejection::NotYours);
        }
        self.drop_hold(hold_id);
        Ok(hold_id)
    }

    fn confirm_hold(
        &mut self,
        hold_id: HoldId,
        customer: UserId,
        payment_ref: &str,
    ) -> Result<OrderConfirmed, Rejection> {
        let hold = self.holds.get(&hold_id).ok_or(Rejection::UnknownHold)?;
        if hold.customer != customer {
            return Err(Rejection::NotYours);
        }
        // Expired holds were removed when time advanced, so a present hold is live.
        assert!(
            hold.expires_at_ms > self.now_ms,
            "an expired hold survived expiry"
        );
        let hold = self.holds.remove(&hold_id).expect("present");
        self.hold_expiry.remove(&(hold.expires_at_ms, hold_id));
        self.dec_holds_per_customer(customer);

        let event = self
            .events
            .get(&hold.event_id)
            .expect("a hold's event exists");
        assert!(event.id == hold.event_id, "hold points at its event");
        let price = hold.price_cents;
        let order_id = OrderId(self.next.order);
        self.next.order += 1;
        let units: Vec<Option<u32>> = if hold.seats.is_empty() {
            vec![None; hold.quantity as usize]
        } else {
            hold.seats.iter().map(|s| Some(*s)).collect()
        };
        let mut tickets = Vec::with_capacity(units.len());
        for seat in units {
            let id =
                self.issue_ticket(hold.event_id, seat, CustomerKey::User(customer), None, None);
            let ticket = self.tickets.get_mut(&id).expect("just issued");
            ticket.order_id = Some(order_id);
            ticket.price_cents = price;
            let event = self.events.get_mut(&hold.event_id).expect("exists");
            event.inventory.sell_held(id, seat);
            tickets.push(id);
        }
        let total_cents = price
            .checked_mul(u64::from(hold.quantity))
            .expect("prices are bounded by Limits::price_cents_max");
        let order = Order {
            id: order_id,
            event_id: hold.event_id,
            customer,
            tickets: tickets.clone(),
            total_cents,
            payment_ref: payment_ref.to_owned(),
            confirmed_at_ms: self.now_ms,
        };
        self.orders.insert(order_id, order);
        Ok(OrderConfirmed {
            order_id,
            tickets,
            total_cents,
        })
    }

    fn refund(
        &mut self,
        ticket_id: TicketId,
        by: UserId,
        override_policy: bool,
    ) -> Result<Refunded, Rejection> {
        let ticket = self
            .tickets
            .get(&ticket_id)
            .ok_or(Rejection::UnknownTicket)?;
        if !override_policy && ticket.customer != CustomerKey::User(by) {
            return Err(Rejection::NotYours);
        }
        if ticket.status != TicketStatus::Active {
            return Err(Rejection::AlreadyRefunded);
        }
        if ticket.checked_in.is_some() {
            return Err(Rejection::AlreadyCheckedIn);
        }
        let event = self
            .events
            .get(&ticket.event_id)
            .expect("a ticket's event exists");
        let started = self.now_ms as i64 >= event.details.starts_at_ms;
        if !override_policy && (!event.details.refundable || started) {
            return Err(Rejection::NotRefundable);
        }
        let payment_ref = ticket
            .order_id
            .and_then(|o| self.orders.get(&o))
            .map(|o| o.payment_ref.clone());
        let (event_id, seat, customer) = (ticket.event_id, ticket.seat, ticket.customer.clone());
        let amount_cents = ticket.price_cents;
        let now_ms = self.now_ms;
        let ticket = self.tickets.get_mut(&ticket_id).expect("present");
        ticket.status = TicketStatus::Refunded { at_ms: now_ms };
        let event = self.events.get_mut(&event_id).expect("exists");
        event.inventory.unsell(seat);
        event.tickets.remove(&ticket_id);
        self.uncount_customer(event_id, &customer, 1);
        Ok(Refunded {
            ticket_id,
            amount_cents,
            payment_ref,
        })
    }

    fn check_in(&mut self, ticket_id: TicketId, by: UserId) -> Result<Admitted, CheckInRejection> {
        let now_ms = self.now_ms;
        let ticket = self
            .tickets
            .get_mut(&ticket_id)
            .ok_or(CheckInRejection::UnknownTicket)?;
        if ticket.status != TicketStatus::Active {
            return Err(CheckInRejection::Refunded);
        }
        if let Some((at_ms, by)) = ticket.checked_in {
            return Err(CheckInRejection::AlreadyAdmitted { at_ms, by });
        }
        ticket.checked_in = Some((now_ms, by));
        Ok(Admitted {
            ticket_id,
            at_ms: now_ms,
        })
    }

    // ----- helpers that compute or make one change -----

    /// Runs a keyed request once: replays the recorded answer for the same key and parameters,
    /// refuses the same key with other parameters, otherwise runs `run` and records its answer
    /// (except for an unknown event or a malformed key, which record nothing).
    fn idempotent<T: Clone + PartialEq>(
        &mut self,
        record_key: RecordKey,
        fingerprint: Fingerprint,
        unwrap: impl Fn(Outcome) -> Option<Replayable<Result<T, Rejection>>>,
        wrap: fn(Replayable<Result<T, Rejection>>) -> Outcome,
        run: impl FnOnce(&mut Self) -> Result<T, Rejection>,
    ) -> Replayable<Result<T, Rejection>> {
        match self.recorded(&record_key, &fingerprint) {
            Some(Ok(outcome)) => {
                if let Some(recorded) = unwrap(outcome) {
                    return Replayable {
                        replayed: true,
                        result: recorded.result,
                    };
                }
            }
            Some(Err(rejection)) => {
                return Replayable {
                    replayed: false,
                    result: Err(rejection),
                };
            }
            None => {}
        }
        let result = run(self);
        if result != Err(Rejection::UnknownEvent) && result != Err(Rejection::BadKey) {
            let outcome = wrap(Replayable {
                replayed: false,
                result: result.clone(),
            });
            self.record(record_key, fingerprint, outcome);
        }
        Replayable {
            replayed: false,
            result,
        }
    }

    fn check_key(&self, key: &IdempotencyKey) -> Result<(), Rejection> {
        let max = self.limits.key_bytes_max as usize;
        let bad = |s: &str| s.is_empty() || s.len() > max;
        if bad(&key.client_id) || bad(&key.request_id) {
            return Err(Rejection::BadKey);
        }
        Ok(())
    }

    /// Looks up a recorded answer: `Some(Ok(outcome))` to replay it, `Some(Err(KeyReused))` when
    /// the key was used with other parameters, `None` when the key is new.
    fn recorded(
        &self,
        key: &RecordKey,
        fingerprint: &Fingerprint,
    ) -> Option<Result<Outcome, Rejection>> {
        let record = self.records.get(key)?;
        if record.fingerprint != *fingerprint {
            return Some(Err(Rejection::KeyReused));
        }
        Some(Ok(record.outcome.clone()))
    }

    fn record(&mut self, key: RecordKey, fingerprint: Fingerprint, outcome: Outcome) {
        let record = IdempotencyRecord {
            fingerprint,
            outcome,
            recorded_at_ms: self.now_ms,
        };
        self.record_queue.push_back((self.now_ms, key.clone()));
        let previous = self.records.insert(key, record);
        assert!(previous.is_none(), "an idempotency key was recorded twice");
    }

    fn expire_records(&mut self) {
        let retention = self.limits.idempotency_retention_ms;
        while let Some((at, _)) = self.record_queue.front() {
            if at.saturating_add(retention) > self.now_ms {
                break;
            }
            let (_, key) = self.record_queue.pop_front().expect("front exists");
            self.records.remove(&key);
        }
    }

    fn expire_holds(&mut self) {
        while let Some((at, hold_id)) = self.hold_expiry.first().copied() {
            if at > self.now_ms {
                break;
            }
            self.drop_hold(hold_id);
        }
    }

    /// Removes a hold and returns its inventory to sale.
    fn drop_hold(&mut self, hold_id: HoldId) {
        let hold = self
            .holds
            .remove(&hold_id)
            .expect("dropping a hold that exists");
        self.hold_expiry.remove(&(hold.expires_at_ms, hold_id));
        let event = self
            .events
            .get_mut(&hold.event_id)
            .expect("a hold's event exists");
        event.inventory.unhold(hold.quantity, &hold.seats);
        self.dec_holds_per_customer(hold.customer);
        self.uncount_customer(
            hold.event_id,
            &CustomerKey::User(hold.customer),
            hold.quantity,
        );
    }

    fn dec_holds_per_customer(&mut self, customer: UserId) {
        let count = self
            .holds_per_customer
            .get_mut(&customer)
            .expect("counted when placed");
        *count -= 1;
        if *count == 0 {
            self.holds_per_customer.remove(&customer);
        }
    }

    fn issue_ticket(
        &mut self,
        event_id: EventId,
        seat: Option<u32>,
        customer: CustomerKey,
        order_id: Option<OrderId>,
        key: Option<&IdempotencyKey>,
    ) -> TicketId {
        let id = TicketId(self.next.ticket);
        self.next.ticket += 1;
        let event = self
            .events
            .get_mut(&event_id)
            .expect("selling for an existing event");
        event.tickets.insert(id);
        let ticket = Ticket {
            id,
            event_id,
            seat,
            customer,
            order_id,
            key: key.cloned(),
            price_cents: event.details.price_cents,
            sold_at_ms: self.now_ms,
            status: TicketStatus::Active,
            checked_in: None,
        };
        self.tickets.insert(id, ticket);
        id
    }

    fn check_customer_cap(
        &self,
        event_id: EventId,
        customer: &CustomerKey,
        more: u32,
    ) -> Result<(), Rejection> {
        let event = self.events.get(&event_id).expect("checked by caller");
        let Some(max) = event.details.per_customer_max else {
            return Ok(());
        };
        let have = self
            .customer_counts
            .get(&(event_id, customer.clone()))
            .copied()
            .unwrap_or(0);
        if have + more > max {
            return Err(Rejection::CustomerLimit { max });
        }
        Ok(())
    }

    fn count_customer(&mut self, event_id: EventId, customer: &CustomerKey, n: u32) {
        *self
            .customer_counts
            .entry((event_id, customer.clone()))
            .or_insert(0) += n;
    }

    fn uncount_customer(&mut self, event_id: EventId, customer: &CustomerKey, n: u32) {
        let key = (event_id, customer.clone());
        let count = self
            .customer_counts
            .get_mut(&key)
            .expect("counted when sold or held");
        *count -= n;
        if *count == 0 {
            self.customer_counts.remove(&key);
        }
    }

    // ----- reads -----

    /// Returns the current log time.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Returns the limits this state enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Returns an account.
    pub fn user(&self, id: UserId) -> Option<&User> {
        self.users.get(&id)
    }

    /// Returns the account with this username.
    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.usernames
            .get(username)
            .and_then(|id| self.users.get(id))
    }

    /// Returns the number of accounts.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Returns the session stored under a token hash if it has not expired at `now_ms`
    /// (the reader's clock may be ahead of log time).
    pub fn session(&self, token_hash: &str, now_ms: u64) -> Option<&Session> {
        self.sessions
            .get(token_hash)
            .filter(|s| s.expires_at_ms > now_ms.max(self.now_ms))
    }

    /// Returns an event.
    pub fn event(&self, id: EventId) -> Option<&Event> {
        self.events.get(&id)
    }

    /// Returns all events in id order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.values()
    }

    /// Returns a hold.
    pub fn hold(&self, id: HoldId) -> Option<&Hold> {
        self.holds.get(&id)
    }

    /// Returns when the next hold expires, by log time, if any hold is active.
    pub fn next_hold_expiry_ms(&self) -> Option<u64> {
        self.hold_expiry.first().map(|(at, _)| *at)
    }

    /// Returns a customer's active holds.
    pub fn holds_of(&self, customer: UserId) -> impl Iterator<Item = &Hold> {
        self.holds.values().filter(move |h| h.customer == customer)
    }

    /// Returns an order.
    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id)
    }

    /// Returns a customer's orders, oldest first.
    pub fn orders_of(&self, customer: UserId) -> impl Iterator<Item = &Order> {
        self.orders.values().filter(move |o| o.customer == customer)
    }

    /// Returns a ticket.
    pub fn ticket(&self, id: TicketId) -> Option<&Ticket> {
        self.tickets.get(&id)
    }

    /// Returns a customer's tickets (active and refunded), oldest first.
    pub fn tickets_of(&self, customer: UserId) -> impl Iterator<Item = &Ticket> {
        let key = CustomerKey::User(customer);
        self.tickets.values().filter(move |t| t.customer == key)
    }

    /// Returns an event's active tickets in sale order.
    pub fn sales(&self, event_id: EventId) -> impl Iterator<Item = &Ticket> {
        self.events
            .get(&event_id)
            .into_iter()
            .flat_map(|e| e.tickets.iter())
            .map(|id| &self.tickets[id])
    }

    /// Returns how many idempotency records are kept (bounded by the retention window).
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Returns a 64-bit digest of the whole state; equal states have equal digests, so replicas
    /// that applied the same log can be compared cheaply.
    pub fn digest(&self) -> u64 {
        let bytes = serde_json::to_vec(self).expect("state serializes");
        fnv1a64(&bytes)
    }

    // Crate-internal access for the invariant checker.
    pub(crate) fn parts(&self) -> StateParts<'_> {
        StateParts {
            events: &self.events,
            holds: &self.holds,
            hold_expiry: &self.hold_expiry,
            tickets: &self.tickets,
            orders: &self.orders,
            records: self.records.len(),
            record_queue: self.record_queue.len(),
            customer_counts: &self.customer_counts,
            holds_per_customer: &self.holds_per_customer,
            next_ticket: self.next.ticket,
            now_ms: self.now_ms,
        }
    }
}

/// Read-only views of the state's collections for [`crate::invariants`].
pub(crate) struct StateParts<'a> {
    pub events: &'a BTreeMap<EventId, Event>,
    pub holds: &'a BTreeMap<HoldId, Hold>,
    pub hold_expiry: &'a BTreeSet<(u64, HoldId)>,
    pub tickets: &'a BTreeMap<TicketId, Ticket>,
    pub orders: &'a BTreeMap<OrderId, Order>,
    pub records: usize,
    pub record_queue: usize,
    pub customer_counts: &'a BTreeMap<(EventId, CustomerKey), u32>,
    pub holds_per_customer: &'a BTreeMap<UserId, u32>,
    pub next_ticket: u64,
    pub now_ms: u64,
}

/// FNV-1a, 64-bit: small, stable across platforms and releases, enough to compare replicas.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Serializes a map with composite keys as a list of pairs (JSON object keys must be strings).
mod map_as_pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S, K, V>(map: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        let pairs: Vec<(K, V)> = Vec::deserialize(deserializer)?;
        Ok(pairs.into_iter().collect())
    }
}
