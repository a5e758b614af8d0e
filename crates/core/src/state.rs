//! The replicated state and how commands change it.
//!
//! [`State::apply_batch`] is the whole state machine: it advances log time, expires holds,
//! sessions and idempotency records that are due, then applies each command and returns one
//! outcome per command. All collections are `BTreeMap`s so that iteration order, and therefore
//! every choice (which seat is "best available", which hold expires first), is the same on every
//! replica.
//!
//! `State` is the **hot set**: what a sale decides (accounts, sessions, events with their
//! counters and seat maps, active holds), small and in memory. Tickets, orders, idempotency
//! records, per-customer counts and the bytes of event images are **history**: read through [`History`] and written as
//! [`Changes`] that the state collects in `pending` until the caller takes them
//! ([`State::take_changes`]) and writes them out. `history_digest` folds every change into the
//! state, so [`State::digest`] covers history without reading it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::account_mail::{AccountMail, email_is_valid};
use crate::command::{
    Batch, CANCEL_REASON_CHARS_MAX, Command, EventDetails, HoldRequest, InventorySpec, Role,
};
use crate::extensions::Extensions;
use crate::history::{
    Changes, CountKey, History, Record, RecordChange, RecordKey, RecordedAnswer, hash64,
};
use crate::ids::{CustomerKey, EventId, HoldId, IdempotencyKey, OrderId, TicketId, UserId};
use crate::inventory::{Inventory, SeatState};
use crate::layout::{SeatMap, TogetherRefusal, VenueLayout};
use crate::limits::Limits;
use crate::outcome::{
    AccountRejection, Admitted, CancelRejection, CheckInRejection, EventCancelled, EventRejection,
    HoldPlaced, OrderConfirmed, Outcome, PaymentRefund, Refunded, Rejection, Replayable, Sale,
    UserRejection,
};
use crate::waiting::{Joined, QueueRejection, WaitingRoom, WaitingRoomSpec};

/// Returns the key that makes usernames unique: the name in ASCII lower case. Only ASCII is
/// folded — Unicode case tables change between releases, and every replica of every version must
/// agree on which names collide (the edge allows only ASCII names anyway).
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// An account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Login name as it was chosen; unique ignoring ASCII case ([`username_key`]).
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
    /// When it was created, by log time.
    pub created_at_ms: u64,
    /// Whether per-customer counts are kept for this event: from the first time it has a
    /// `per_customer_max` (at creation or by an edit, which counts the earlier sales then) on.
    /// An event never capped writes no count rows: one history write less per sale.
    pub counts_customers: bool,
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
    /// Refunded because the organizer cancelled the event (appended last: history rows written
    /// before it keep their encoding).
    Cancelled {
        /// When, by log time.
        at_ms: u64,
    },
}

/// How and why an event was cancelled: kept for good, shown on the event page and on its
/// buyers' tickets, and the answer a retry of the same request gets again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// Who cancelled (the organizer or an admin).
    pub by: UserId,
    /// Why, as the canceller wrote it.
    pub reason: String,
    /// When, by log time.
    pub at_ms: u64,
    /// How many active tickets were refunded.
    pub tickets_refunded: u32,
    /// How many open holds were released.
    pub holds_released: u32,
    /// The sum of the refunded tickets' prices, in minor units.
    pub amount_cents: u64,
    /// The request that cancelled; the same key again is a retry and gets this answer.
    pub key: IdempotencyKey,
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

/// The parameters of a request, remembered (hashed) with its key to detect reuse with other
/// parameters.
enum Fingerprint<'a> {
    Purchase {
        customer: &'a CustomerKey,
        seat: Option<u32>,
    },
    Hold {
        customer: UserId,
        request: &'a HoldRequest,
    },
}

impl Fingerprint<'_> {
    /// A stable 64-bit hash of the parameters.
    fn hash(&self) -> u64 {
        let customer = |c: &CustomerKey| match c {
            CustomerKey::User(id) => [&[0u8][..], &id.0.to_le_bytes()].concat(),
            CustomerKey::Client(name) => [&[1u8][..], name.as_bytes()].concat(),
        };
        match self {
            Fingerprint::Purchase { customer: c, seat } => {
                let seat = seat.map_or(vec![0], |s| [&[1u8][..], &s.to_le_bytes()].concat());
                hash64(&[b"purchase", &customer(c), &seat])
            }
            Fingerprint::Hold {
                customer: c,
                request,
            } => {
                let request = match request {
                    HoldRequest::Quantity(n) => [&[0u8][..], &n.to_le_bytes()].concat(),
                    HoldRequest::Seats(seats) => {
                        let numbers = seats.iter().flat_map(|s| s.to_le_bytes());
                        [1u8].into_iter().chain(numbers).collect()
                    }
                    HoldRequest::BestAvailable { quantity, section } => {
                        let section =
                            section.map_or(vec![0], |s| [&[1u8][..], &s.to_le_bytes()].concat());
                        [&[2u8][..], &quantity.to_le_bytes(), &section].concat()
                    }
                };
                let c = customer(&CustomerKey::User(*c));
                hash64(&[b"hold", &c, &request])
            }
        }
    }
}

/// The most idempotency records one batch expires; the rest wait for the next batches, so a
/// batch after a long quiet spell does bounded work (records live at least their retention).
pub const RECORDS_EXPIRED_PER_BATCH_MAX: usize = 4096;

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
/// Deserialized through [`StateWire`], which rebuilds the indexes that are not encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StateWire")]
pub struct State {
    limits: Limits,
    now_ms: u64,
    next: Counters,
    users: BTreeMap<UserId, User>,
    /// Accounts by [`username_key`]: `Admin` and `admin` are one name.
    usernames: BTreeMap<String, UserId>,
    sessions: BTreeMap<String, Session>,
    session_expiry: BTreeSet<(u64, String)>,
    events: BTreeMap<EventId, Event>,
    holds: BTreeMap<HoldId, Hold>,
    hold_expiry: BTreeSet<(u64, HoldId)>,
    /// FNV-1a over every history change, in apply order: history's part of the digest.
    history_digest: u64,
    /// History changed since the last [`State::take_changes`]; read before history itself.
    #[serde(skip)]
    pending: Changes,
    /// Active holds per customer, for `Limits::holds_per_customer_max`.
    holds_per_customer: BTreeMap<UserId, u32>,
    /// The active holds of each customer, so "your hold" (every page view, every assistant
    /// message) is a lookup, not a pass over everyone's holds. Derived from `holds`: not
    /// encoded, rebuilt when a state is read ([`StateWire`]).
    #[serde(skip)]
    hold_ids_by_customer: BTreeMap<UserId, BTreeSet<HoldId>>,
    /// Cancelled events. Appended after the fields above, so a state encoded before
    /// cancellations existed is this encoding without its last three (empty collection)
    /// bytes, and one encoded before ended holds without its last two; [`State::decode`]
    /// reads both earlier forms.
    cancellations: BTreeMap<EventId, Cancellation>,
    /// How recently ended holds ended (paid → which order, released, expired, the event
    /// cancelled), so the checkout page of a finished hold can say so: kept
    /// [`ENDED_HOLD_RETENTION_MS`] of log time and at most [`ENDED_HOLDS_MAX`], oldest first out.
    ended_holds: BTreeMap<HoldId, EndedHold>,
    /// `ended_holds` by when each ended, oldest first.
    ended_hold_expiry: BTreeSet<(u64, HoldId)>,
    /// Everything added since: tagged sections, so a new collection needs no new encoding.
    ext: Extensions,
}

/// How long, in log time, the state remembers how a hold ended.
pub const ENDED_HOLD_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

/// The most ended holds the state remembers (about 50 bytes each): past it the oldest goes.
pub const ENDED_HOLDS_MAX: usize = 100_000;

/// A hold that is no longer active, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedHold {
    /// Whose hold it was.
    pub customer: UserId,
    /// Which event.
    pub event_id: EventId,
    /// When it ended, by log time.
    pub at_ms: u64,
    /// How.
    pub how: HoldEnd,
}

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldEnd {
    /// Paid: it became this order.
    Confirmed(OrderId),
    /// Released by its customer.
    Released,
    /// Its time ran out unpaid.
    Expired,
    /// The organizer cancelled the event.
    EventCancelled,
}

/// The fields every encoding of the state has had, in order (store format 1 before
/// cancellations). postcard writes a nested struct's fields inline, with no framing, so the
/// nestings below read exactly the flat encoding [`State`] writes, and each older encoding is
/// the newer one without its last fields.
#[derive(Deserialize)]
struct WireBase {
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
    history_digest: u64,
    holds_per_customer: BTreeMap<UserId, u32>,
}

/// The encoding before ended holds were remembered: [`WireBase`] and cancellations.
#[derive(Deserialize)]
struct WireWithCancellations {
    base: WireBase,
    cancellations: BTreeMap<EventId, Cancellation>,
}

/// The encoding before the tagged sections: [`WireWithCancellations`] and ended holds.
#[derive(Deserialize)]
struct WireWithEndedHolds {
    earlier: WireWithCancellations,
    ended_holds: BTreeMap<HoldId, EndedHold>,
    ended_hold_expiry: BTreeSet<(u64, HoldId)>,
}

/// The encoded fields of [`State`], in its order (the `#[serde(skip)]` ones left out): a
/// state is read as this and completed with the indexes derived from it. Nothing is appended
/// after `ext` any more: new collections are sections of [`Extensions`].
#[derive(Deserialize)]
struct StateWire {
    earlier: WireWithEndedHolds,
    ext: Extensions,
}

impl From<WireBase> for WireWithCancellations {
    fn from(base: WireBase) -> Self {
        WireWithCancellations {
            base,
            cancellations: BTreeMap::new(),
        }
    }
}

impl From<WireWithCancellations> for WireWithEndedHolds {
    fn from(earlier: WireWithCancellations) -> Self {
        WireWithEndedHolds {
            earlier,
            ended_holds: BTreeMap::new(),
            ended_hold_expiry: BTreeSet::new(),
        }
    }
}

impl From<WireWithEndedHolds> for StateWire {
    fn from(earlier: WireWithEndedHolds) -> Self {
        StateWire {
            earlier,
            ext: Extensions::default(),
        }
    }
}

impl From<StateWire> for State {
    fn from(wire: StateWire) -> State {
        let StateWire { earlier: w, ext } = wire;
        let WireWithCancellations {
            base: b,
            cancellations,
        } = w.earlier;
        let mut hold_ids_by_customer = BTreeMap::<UserId, BTreeSet<HoldId>>::new();
        for hold in b.holds.values() {
            hold_ids_by_customer
                .entry(hold.customer)
                .or_default()
                .insert(hold.id);
        }
        State {
            limits: b.limits,
            now_ms: b.now_ms,
            next: b.next,
            users: b.users,
            usernames: b.usernames,
            sessions: b.sessions,
            session_expiry: b.session_expiry,
            events: b.events,
            holds: b.holds,
            hold_expiry: b.hold_expiry,
            history_digest: b.history_digest,
            pending: Changes::default(),
            holds_per_customer: b.holds_per_customer,
            hold_ids_by_customer,
            cancellations,
            ended_holds: w.ended_holds,
            ended_hold_expiry: w.ended_hold_expiry,
            ext,
        }
    }
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
            history_digest: FNV_OFFSET,
            pending: Changes::default(),
            holds_per_customer: BTreeMap::new(),
            hold_ids_by_customer: BTreeMap::new(),
            cancellations: BTreeMap::new(),
            ended_holds: BTreeMap::new(),
            ended_hold_expiry: BTreeSet::new(),
            ext: Extensions::default(),
        }
    }

    /// Applies a batch: advances log time, expires what is due, then applies each command.
    /// Returns one outcome per command, in order. History is read through `h` (and the pending
    /// changes); what changes in it is kept until [`State::take_changes`].
    pub fn apply_batch(&mut self, batch: &Batch, h: &dyn History) -> Vec<Outcome> {
        self.advance_time(batch.time_ms, h);
        batch.commands.iter().map(|c| self.apply(c, h)).collect()
    }

    /// Moves log time forward (never back) and expires holds, sessions and records that are due.
    pub fn advance_time(&mut self, time_ms: u64, h: &dyn History) {
        self.now_ms = self.now_ms.max(time_ms);
        self.ext.waiting_rooms.draw_due(self.now_ms);
        self.expire_holds(h);
        self.forget_ended_holds();
        self.expire_sessions();
        self.ext.mail.expire_resets(self.now_ms);
        self.expire_records(h);
    }

    /// Takes the history changes made since the last call, for the caller to write out (all of
    /// them, in one unit, before the next batch reads history again without them).
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.pending)
    }

    /// Returns true when changes are waiting for [`State::take_changes`].
    pub fn has_pending_changes(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Applies one command at the current log time.
    pub fn apply(&mut self, command: &Command, h: &dyn History) -> Outcome {
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
            } => Outcome::Event(self.update_event(h, *event_id, *expected_version, details)),
            Command::Purchase {
                event_id,
                key,
                customer,
                seat,
            } => Outcome::Purchase(self.purchase(h, *event_id, key, customer, *seat)),
            Command::PlaceHold {
                event_id,
                key,
                customer,
                request,
                ttl_ms,
            } => Outcome::Hold(self.place_hold(h, *event_id, key, *customer, request, *ttl_ms)),
            Command::ReleaseHold { hold_id, customer } => {
                Outcome::Release(self.release_hold(h, *hold_id, *customer))
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
            } => Outcome::Refund(self.refund(h, *ticket_id, *by, *override_policy)),
            Command::CheckIn { ticket_id, by } => {
                Outcome::CheckIn(self.check_in(h, *ticket_id, *by))
            }
            Command::CancelEvent {
                event_id,
                key,
                by,
                reason,
            } => Outcome::Cancel(self.cancel_event(h, *event_id, key, *by, reason)),
            Command::SetWaitingRoom {
                event_id,
                by,
                spec,
                seed,
            } => Outcome::WaitingRoom(self.set_waiting_room(*event_id, *by, *spec, *seed)),
            Command::JoinQueue { event_id, visitor } => {
                Outcome::Queue(self.join_queue(*event_id, visitor))
            }
            Command::SetEmail { user_id, email } => {
                Outcome::Account(self.set_email(*user_id, email.as_deref()))
            }
            Command::CreatePasswordReset {
                token_hash,
                user_id,
                expires_at_ms,
            } => Outcome::Account(self.create_password_reset(token_hash, *user_id, *expires_at_ms)),
            Command::ResetPassword {
                token_hash,
                password_hash,
            } => Outcome::Account(self.reset_password(token_hash, password_hash)),
            Command::SetEventZone { event_id, by, zone } => {
                Outcome::Zone(self.set_event_zone(*event_id, *by, zone))
            }
            Command::SetEventImage {
                event_id,
                by,
                image,
            } => Outcome::Image(self.set_event_image(*event_id, *by, image.as_ref())),
        }
    }

    // ----- event images -----

    /// Stores (or with `None` removes) an event's image: the bytes as a history change, the
    /// descriptor in the hot state. Removing an image the event does not have changes nothing.
    fn set_event_image(
        &mut self,
        event_id: EventId,
        by: UserId,
        upload: Option<&crate::image::ImageUpload>,
    ) -> Result<(), crate::image::ImageRejection> {
        use crate::image::{EventImage, ImageRejection, alt_is_valid, inspect};
        let event = self
            .events
            .get(&event_id)
            .ok_or(ImageRejection::UnknownEvent)?;
        let is_admin = self.users.get(&by).is_some_and(|u| u.role == Role::Admin);
        if event.organizer != by && !is_admin {
            return Err(ImageRejection::NotYourEvent);
        }
        if self.cancellations.contains_key(&event_id) {
            return Err(ImageRejection::Cancelled);
        }
        let Some(upload) = upload else {
            if self.ext.images.remove(&event_id).is_some() {
                self.fold_digest(&(event_id, None::<[u8; 32]>));
                self.pending.images.insert(event_id, None);
            }
            return Ok(());
        };
        let info = inspect(&upload.bytes).map_err(ImageRejection::Bad)?;
        if !alt_is_valid(&upload.alt) {
            return Err(ImageRejection::BadAlt);
        }
        let image = EventImage::of(upload, info, self.now_ms);
        // The descriptor's SHA-256 (in the hot state, so in the digest) stands for the bytes.
        self.fold_digest(&(event_id, Some(image.sha256)));
        self.pending
            .images
            .insert(event_id, Some(upload.bytes.clone()));
        self.ext.images.insert(event_id, image);
        Ok(())
    }

    /// Returns the descriptor of an event's image, if it has one (the bytes are in history).
    pub fn event_image(&self, id: EventId) -> Option<&crate::image::EventImage> {
        self.ext.images.get(&id)
    }

    // ----- time zones -----

    fn set_event_zone(
        &mut self,
        event_id: EventId,
        by: UserId,
        zone: &str,
    ) -> Result<(), crate::zone::ZoneRejection> {
        use crate::zone::{ZONE_DEFAULT, ZoneRejection, zone_name_is_valid};
        let event = self
            .events
            .get(&event_id)
            .ok_or(ZoneRejection::UnknownEvent)?;
        let is_admin = self.users.get(&by).is_some_and(|u| u.role == Role::Admin);
        if event.organizer != by && !is_admin {
            return Err(ZoneRejection::NotYourEvent);
        }
        if self.cancellations.contains_key(&event_id) {
            return Err(ZoneRejection::Cancelled);
        }
        if !zone_name_is_valid(zone) {
            return Err(ZoneRejection::BadZone);
        }
        // UTC is the default, so it is not stored: a state without zones encodes as before.
        if zone == ZONE_DEFAULT {
            self.ext.zones.remove(&event_id);
        } else {
            self.ext.zones.insert(event_id, zone.to_owned());
        }
        Ok(())
    }

    /// Returns an event's IANA time-zone name; `UTC` when none was set.
    pub fn event_zone(&self, id: EventId) -> &str {
        self.ext
            .zones
            .get(&id)
            .map_or(crate::zone::ZONE_DEFAULT, String::as_str)
    }

    // ----- waiting rooms -----

    fn set_waiting_room(
        &mut self,
        event_id: EventId,
        by: UserId,
        spec: Option<WaitingRoomSpec>,
        seed: [u8; 32],
    ) -> Result<(), QueueRejection> {
        let event = self
            .events
            .get(&event_id)
            .ok_or(QueueRejection::EventNotFound)?;
        let is_admin = self.users.get(&by).is_some_and(|u| u.role == Role::Admin);
        if event.organizer != by && !is_admin {
            return Err(QueueRejection::NotOrganizer);
        }
        if self.cancellations.contains_key(&event_id) {
            return Err(QueueRejection::EventCancelled);
        }
        self.ext
            .waiting_rooms
            .set(event_id, spec, seed, self.now_ms)
    }

    fn join_queue(&mut self, event_id: EventId, visitor: &str) -> Result<Joined, QueueRejection> {
        if !self.events.contains_key(&event_id) {
            return Err(QueueRejection::EventNotFound);
        }
        if self.cancellations.contains_key(&event_id) {
            return Err(QueueRejection::EventCancelled);
        }
        self.ext.waiting_rooms.join(event_id, visitor, self.now_ms)
    }

    /// The waiting room of an event, if it has one.
    pub fn waiting_room(&self, event_id: EventId) -> Option<&WaitingRoom> {
        self.ext.waiting_rooms.get(event_id)
    }

    // ----- accounts -----

    fn create_user(
        &mut self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<UserId, UserRejection> {
        let key = username_key(username);
        if self.usernames.contains_key(&key) {
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
        self.usernames.insert(key, id);
        Ok(id)
    }

    fn set_role(&mut self, user_id: UserId, role: Role) -> Result<UserId, UserRejection> {
        let current = self
            .users
            .get(&user_id)
            .ok_or(UserRejection::UnknownUser)?
            .role;
        if current == Role::Admin && role != Role::Admin {
            let admins = self
                .users
                .values()
                .filter(|u| u.role == Role::Admin)
                .count();
            if admins == 1 {
                return Err(UserRejection::LastAdmin);
            }
        }
        self.users.get_mut(&user_id).expect("checked above").role = role;
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

    fn set_email(
        &mut self,
        user_id: UserId,
        email: Option<&str>,
    ) -> Result<UserId, AccountRejection> {
        if !self.users.contains_key(&user_id) {
            return Err(AccountRejection::UnknownUser);
        }
        if email.is_some_and(|e| !email_is_valid(e)) {
            return Err(AccountRejection::BadEmail);
        }
        self.ext.mail.set_email(user_id, email);
        Ok(user_id)
    }

    fn create_password_reset(
        &mut self,
        token_hash: &str,
        user_id: UserId,
        expires_at_ms: u64,
    ) -> Result<UserId, AccountRejection> {
        if !self.users.contains_key(&user_id) {
            return Err(AccountRejection::UnknownUser);
        }
        if expires_at_ms <= self.now_ms {
            return Err(AccountRejection::ResetExpired);
        }
        self.ext.mail.open_reset(token_hash, user_id, expires_at_ms);
        Ok(user_id)
    }

    /// Uses a reset once: the new password, and every session of the account ends (a pass over
    /// the sessions; a reset is rare, and whoever knew the old password must be logged out).
    fn reset_password(
        &mut self,
        token_hash: &str,
        password_hash: &str,
    ) -> Result<UserId, AccountRejection> {
        let reset = self
            .ext
            .mail
            .remove_reset(token_hash)
            .ok_or(AccountRejection::UnknownResetToken)?;
        let user = self
            .users
            .get_mut(&reset.user_id)
            .expect("a reset's account exists");
        user.password_hash = password_hash.to_owned();
        let ended: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.user_id == reset.user_id)
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in ended {
            self.end_session(&hash);
        }
        Ok(reset.user_id)
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
        let layout = match spec {
            InventorySpec::Sections { sections, .. } => {
                let max_cents = self.limits.price_cents_max;
                if sections.iter().any(|s| s.price_cents > max_cents) {
                    return Err(EventRejection::BadPrice { max_cents });
                }
                Some(VenueLayout {
                    sections: sections.clone(),
                })
            }
            _ => None,
        };
        let id = EventId(self.next.event);
        self.next.event += 1;
        if let Some(layout) = layout {
            self.ext.layouts.insert(id, layout);
        }
        let event = Event {
            id,
            organizer,
            details: details.clone(),
            version: 1,
            inventory,
            created_at_ms: self.now_ms,
            counts_customers: details.per_customer_max.is_some(),
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
        h: &dyn History,
        event_id: EventId,
        expected_version: u64,
        details: &EventDetails,
    ) -> Result<(EventId, u64), EventRejection> {
        self.check_price(details)?;
        let event = self
            .events
            .get_mut(&event_id)
            .ok_or(EventRejection::UnknownEvent)?;
        if self.cancellations.contains_key(&event_id) {
            return Err(EventRejection::Cancelled);
        }
        if event.version != expected_version {
            return Err(EventRejection::VersionConflict {
                current_version: event.version,
            });
        }
        let start_counting = !event.counts_customers && details.per_customer_max.is_some();
        event.details = details.clone();
        event.version += 1;
        event.counts_customers |= start_counting;
        let version = event.version;
        if start_counting {
            self.count_earlier_sales(h, event_id);
        }
        Ok((event_id, version))
    }

    /// Writes the per-customer counts of an event that had none: its active tickets (history
    /// and pending changes) and its active holds. Runs once per event, when it first gets a cap.
    fn count_earlier_sales(&mut self, h: &dyn History, event_id: EventId) {
        let mut counts: BTreeMap<CountKey, u32> = BTreeMap::new();
        let pending = &self.pending.tickets;
        h.for_each_active_ticket(event_id, &mut |t| {
            if !pending.contains_key(&t.id) {
                *counts
                    .entry(CountKey::of(event_id, &t.customer))
                    .or_default() += 1;
            }
        });
        let active_pending = pending
            .values()
            .filter(|t| t.event_id == event_id && t.status == TicketStatus::Active);
        for t in active_pending {
            *counts
                .entry(CountKey::of(event_id, &t.customer))
                .or_default() += 1;
        }
        for hold in self.holds.values().filter(|h| h.event_id == event_id) {
            let key = CountKey::of(event_id, &CustomerKey::User(hold.customer));
            *counts.entry(key).or_default() += hold.quantity;
        }
        for (key, count) in counts {
            self.fold_digest(&(key, count));
            self.pending.counts.insert(key, count);
        }
    }

    // ----- sales -----

    fn purchase(
        &mut self,
        h: &dyn History,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: &CustomerKey,
        seat: Option<u32>,
    ) -> Replayable<Result<Sale, Rejection>> {
        let fingerprint = Fingerprint::Purchase { customer, seat }.hash();
        let record_key = RecordKey::of(event_id, key);
        match self.recorded(h, record_key, fingerprint) {
            Some(Ok(RecordedAnswer::Purchase(result))) => return replayed(result),
            Some(Ok(RecordedAnswer::Hold(_))) | Some(Err(_)) => {
                return fresh(Err(Rejection::KeyReused));
            }
            None => {}
        }
        let result = self.sell_one(h, event_id, key, customer, seat);
        if records_answer(&result) {
            self.record(
                record_key,
                fingerprint,
                RecordedAnswer::Purchase(result.clone()),
            );
        }
        fresh(result)
    }

    fn sell_one(
        &mut self,
        h: &dyn History,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: &CustomerKey,
        seat: Option<u32>,
    ) -> Result<Sale, Rejection> {
        self.check_key(key)?;
        let event = self.events.get(&event_id).ok_or(Rejection::UnknownEvent)?;
        if self.cancellations.contains_key(&event_id) {
            return Err(Rejection::EventCancelled);
        }
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
        self.check_customer_cap(h, event_id, customer, 1)?;
        let price_cents = self.price_of_seats(event, seat.as_slice())?;
        let owner = customer.clone();
        let ticket_id = self.issue_ticket(event_id, seat, owner, None, Some(key), price_cents);
        let event = self.events.get_mut(&event_id).expect("checked above");
        event.inventory.sell_free(ticket_id, seat);
        self.count_customer(h, event_id, customer, 1, true);
        Ok(Sale { ticket_id, seat })
    }

    fn place_hold(
        &mut self,
        h: &dyn History,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: UserId,
        request: &HoldRequest,
        ttl_ms: u64,
    ) -> Replayable<Result<HoldPlaced, Rejection>> {
        let fingerprint = Fingerprint::Hold { customer, request }.hash();
        let record_key = RecordKey::of(event_id, key);
        match self.recorded(h, record_key, fingerprint) {
            Some(Ok(RecordedAnswer::Hold(result))) => return replayed(*result),
            Some(Ok(RecordedAnswer::Purchase(_))) | Some(Err(_)) => {
                return fresh(Err(Rejection::KeyReused));
            }
            None => {}
        }
        let result = self.hold_inventory(h, event_id, key, customer, request, ttl_ms);
        if records_answer(&result) {
            let answer = RecordedAnswer::Hold(Box::new(result.clone()));
            self.record(record_key, fingerprint, answer);
        }
        fresh(result)
    }

    fn hold_inventory(
        &mut self,
        h: &dyn History,
        event_id: EventId,
        key: &IdempotencyKey,
        customer: UserId,
        request: &HoldRequest,
        ttl_ms: u64,
    ) -> Result<HoldPlaced, Rejection> {
        self.check_key(key)?;
        let event = self.events.get(&event_id).ok_or(Rejection::UnknownEvent)?;
        if self.cancellations.contains_key(&event_id) {
            return Err(Rejection::EventCancelled);
        }
        if ttl_ms == 0 || ttl_ms > self.limits.hold_ttl_ms_max {
            return Err(Rejection::BadTtl {
                max_ms: self.limits.hold_ttl_ms_max,
            });
        }
        let quantity = match request {
            HoldRequest::Quantity(n) => *n,
            HoldRequest::Seats(seats) => seats.len() as u32,
            HoldRequest::BestAvailable { quantity, .. } => *quantity,
        };
        let max = self.limits.seats_per_order_max;
        if quantity == 0 || quantity > max {
            return Err(Rejection::BadQuantity { quantity, max });
        }
        let seats = match (event.inventory.is_numbered(), request) {
            (false, HoldRequest::Seats(_) | HoldRequest::BestAvailable { .. }) => {
                return Err(Rejection::SeatNotApplicable);
            }
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
            (true, HoldRequest::Quantity(n)) => self.lowest_free(event, *n)?,
            (true, HoldRequest::BestAvailable { quantity, section }) => {
                self.best_together(event, *quantity, *section)?
            }
        };
        let price_cents = self.price_of_seats(event, &seats)?;
        let holds_max = self.limits.holds_per_customer_max;
        if self.holds_per_customer.get(&customer).copied().unwrap_or(0) >= holds_max {
            return Err(Rejection::CustomerLimit { max: holds_max });
        }
        let customer_key = CustomerKey::User(customer);
        self.check_customer_cap(h, event_id, &customer_key, quantity)?;

        let hold_id = HoldId(self.next.hold);
        self.next.hold += 1;
        let expires_at_ms = self.now_ms + ttl_ms;
        let event = self.events.get_mut(&event_id).expect("checked above");
        event.inventory.hold(hold_id, quantity, &seats);
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
        self.hold_ids_by_customer
            .entry(customer)
            .or_default()
            .insert(hold_id);
        self.count_customer(h, event_id, &customer_key, quantity, true);
        let placed = HoldPlaced {
            hold_id,
            expires_at_ms,
            quantity,
            seats: hold.seats.clone(),
        };
        self.holds.insert(hold_id, hold);
        Ok(placed)
    }

    /// Returns `quantity` adjacent free seats in one row ([`SeatMap::best_together`]).
    fn best_together(
        &self,
        event: &Event,
        quantity: u32,
        section: Option<u32>,
    ) -> Result<Vec<u32>, Rejection> {
        let map = self.seat_map(event).ok_or(Rejection::SeatNotApplicable)?;
        let states = event.inventory.seat_states();
        map.best_together(states, quantity, section)
            .map_err(|refusal| match refusal {
                TogetherRefusal::UnknownSection => Rejection::UnknownSection {
                    section: section.unwrap_or(0),
                },
                TogetherRefusal::NoAdjacentSeats => Rejection::NoAdjacentSeats { quantity },
            })
    }

    /// Returns the `n` lowest-numbered free seats; on a venue in sections, of one price (the
    /// first, in the sections' order, that has `n` free), since a hold has one price.
    fn lowest_free(&self, event: &Event, n: u32) -> Result<Vec<u32>, Rejection> {
        let Some(layout) = self.ext.layouts.get(&event.id) else {
            return event.inventory.best_available(n);
        };
        if event.inventory.available() < n {
            return Err(Rejection::SoldOut);
        }
        let map = SeatMap::of(&event.inventory, Some(layout), event.details.price_cents)
            .expect("a layout belongs to a numbered event");
        map.lowest_free_of_one_price(event.inventory.seat_states(), n)
            .ok_or(Rejection::MixedPrices)
    }

    /// Returns the one price of `seats` (their sections' price; the event's price for general
    /// admission or an event without a layout), or `MixedPrices` when they differ.
    fn price_of_seats(&self, event: &Event, seats: &[u32]) -> Result<u64, Rejection> {
        let Some(layout) = self.ext.layouts.get(&event.id) else {
            return Ok(event.details.price_cents);
        };
        let map = SeatMap::of(&event.inventory, Some(layout), event.details.price_cents)
            .expect("a layout belongs to a numbered event");
        let mut prices = seats
            .iter()
            .map(|&s| map.price_of(s).expect("checked seat"));
        let first = prices.next().unwrap_or(event.details.price_cents);
        if prices.any(|p| p != first) {
            return Err(Rejection::MixedPrices);
        }
        Ok(first)
    }

    fn release_hold(
        &mut self,
        h: &dyn History,
        hold_id: HoldId,
        customer: UserId,
    ) -> Result<HoldId, Rejection> {
        let hold = self.holds.get(&hold_id).ok_or(Rejection::UnknownHold)?;
        if hold.customer != customer {
            return Err(Rejection::NotYours);
        }
        self.drop_hold(h, hold_id, HoldEnd::Released);
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
        self.dec_holds_per_customer(customer, hold_id);
        assert!(
            self.events.contains_key(&hold.event_id),
            "a hold's event exists"
        );
        let order_id = OrderId(self.next.order);
        self.next.order += 1;
        self.remember_end(&hold, HoldEnd::Confirmed(order_id));
        let units: Vec<Option<u32>> = if hold.seats.is_empty() {
            vec![None; hold.quantity as usize]
        } else {
            hold.seats.iter().map(|s| Some(*s)).collect()
        };
        // The held units become tickets: the customer's count (held + sold) does not change.
        let mut tickets = Vec::with_capacity(units.len());
        for seat in units {
            let owner = CustomerKey::User(customer);
            let price_cents = hold.price_cents;
            let id = self.issue_ticket(
                hold.event_id,
                seat,
                owner,
                Some(order_id),
                None,
                price_cents,
            );
            let event = self.events.get_mut(&hold.event_id).expect("exists");
            event.inventory.sell_held(id, seat);
            tickets.push(id);
        }
        let total_cents = hold
            .price_cents
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
        self.fold_digest(&order);
        self.pending.orders.insert(order_id, order);
        Ok(OrderConfirmed {
            order_id,
            tickets,
            total_cents,
        })
    }

    fn refund(
        &mut self,
        h: &dyn History,
        ticket_id: TicketId,
        by: UserId,
        override_policy: bool,
    ) -> Result<Refunded, Rejection> {
        let mut ticket = self
            .ticket_in(h, ticket_id)
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
            .and_then(|o| self.order_in(h, o))
            .map(|o| o.payment_ref);
        let (event_id, seat, customer) = (ticket.event_id, ticket.seat, ticket.customer.clone());
        let amount_cents = ticket.price_cents;
        ticket.status = TicketStatus::Refunded { at_ms: self.now_ms };
        self.put_ticket(ticket);
        let event = self.events.get_mut(&event_id).expect("exists");
        event.inventory.unsell(seat);
        self.count_customer(h, event_id, &customer, 1, false);
        Ok(Refunded {
            ticket_id,
            amount_cents,
            payment_ref,
        })
    }

    fn check_in(
        &mut self,
        h: &dyn History,
        ticket_id: TicketId,
        by: UserId,
    ) -> Result<Admitted, CheckInRejection> {
        let mut ticket = self
            .ticket_in(h, ticket_id)
            .ok_or(CheckInRejection::UnknownTicket)?;
        if self.cancellations.contains_key(&ticket.event_id) {
            return Err(CheckInRejection::EventCancelled);
        }
        if ticket.status != TicketStatus::Active {
            return Err(CheckInRejection::Refunded);
        }
        if let Some((at_ms, by)) = ticket.checked_in {
            return Err(CheckInRejection::AlreadyAdmitted { at_ms, by });
        }
        ticket.checked_in = Some((self.now_ms, by));
        self.put_ticket(ticket);
        Ok(Admitted {
            ticket_id,
            at_ms: self.now_ms,
        })
    }

    // ----- cancellation -----

    fn cancel_event(
        &mut self,
        h: &dyn History,
        event_id: EventId,
        key: &IdempotencyKey,
        by: UserId,
        reason: &str,
    ) -> Replayable<Result<EventCancelled, CancelRejection>> {
        if let Some(done) = self.cancellations.get(&event_id) {
            if done.key != *key {
                return fresh_answer(Err(CancelRejection::AlreadyCancelled));
            }
            return Replayable {
                replayed: true,
                result: Ok(EventCancelled {
                    event_id,
                    tickets_refunded: done.tickets_refunded,
                    holds_released: done.holds_released,
                    amount_cents: done.amount_cents,
                    payments: Vec::new(),
                }),
            };
        }
        fresh_answer(self.cancel_fresh(h, event_id, key, by, reason))
    }

    fn cancel_fresh(
        &mut self,
        h: &dyn History,
        event_id: EventId,
        key: &IdempotencyKey,
        by: UserId,
        reason: &str,
    ) -> Result<EventCancelled, CancelRejection> {
        self.check_key(key).map_err(|_| CancelRejection::BadKey)?;
        let event = self
            .events
            .get(&event_id)
            .ok_or(CancelRejection::UnknownEvent)?;
        let is_admin = self.users.get(&by).is_some_and(|u| u.role == Role::Admin);
        if event.organizer != by && !is_admin {
            return Err(CancelRejection::NotYourEvent);
        }
        if !reason_is_valid(reason) {
            return Err(CancelRejection::BadReason);
        }
        let holds: Vec<HoldId> = self
            .holds
            .values()
            .filter(|hold| hold.event_id == event_id)
            .map(|hold| hold.id)
            .collect();
        for hold_id in &holds {
            self.drop_hold(h, *hold_id, HoldEnd::EventCancelled);
        }
        let tickets = self.active_tickets_of(h, event_id);
        let mut amount_cents = 0u64;
        let mut per_order: BTreeMap<OrderId, u64> = BTreeMap::new();
        for ticket in &tickets {
            amount_cents += ticket.price_cents;
            if let Some(order_id) = ticket.order_id {
                *per_order.entry(order_id).or_default() += ticket.price_cents;
            }
            self.refund_for_cancellation(h, ticket.clone());
        }
        let payments = self.payments_of(h, per_order);
        let cancelled = EventCancelled {
            event_id,
            tickets_refunded: tickets.len() as u32,
            holds_released: holds.len() as u32,
            amount_cents,
            payments,
        };
        let cancellation = Cancellation {
            by,
            reason: reason.to_owned(),
            at_ms: self.now_ms,
            tickets_refunded: cancelled.tickets_refunded,
            holds_released: cancelled.holds_released,
            amount_cents,
            key: key.clone(),
        };
        self.cancellations.insert(event_id, cancellation);
        let event = self.events.get(&event_id).expect("checked above");
        assert!(
            event.inventory.sold() == 0 && event.inventory.held() == 0,
            "a cancelled event keeps no tickets or holds"
        );
        Ok(cancelled)
    }

    /// Returns an event's active tickets as the commands applied so far left them, in id
    /// order: history's (through its per-event index: the work is the event's tickets, not all
    /// history) that no pending change replaced, and the pending ones.
    fn active_tickets_of(&self, h: &dyn History, event_id: EventId) -> Vec<Ticket> {
        let pending = &self.pending.tickets;
        let mut tickets = Vec::new();
        h.for_each_active_ticket(event_id, &mut |t| {
            if !pending.contains_key(&t.id) {
                tickets.push(t.clone());
            }
        });
        let active_pending = pending
            .values()
            .filter(|t| t.event_id == event_id && t.status == TicketStatus::Active);
        tickets.extend(active_pending.cloned());
        // Id order, whatever was written out already: the digest folds the changes in this
        // order, and it must not depend on how batches were grouped into history writes.
        tickets.sort_unstable_by_key(|t| t.id);
        tickets
    }

    /// Refunds one ticket of a cancelled event: the refund path's effect (inventory back, the
    /// customer's count down), whatever the event's refund policy or the door said.
    fn refund_for_cancellation(&mut self, h: &dyn History, mut ticket: Ticket) {
        let (event_id, seat, customer) = (ticket.event_id, ticket.seat, ticket.customer.clone());
        ticket.status = TicketStatus::Cancelled { at_ms: self.now_ms };
        self.put_ticket(ticket);
        let event = self
            .events
            .get_mut(&event_id)
            .expect("a ticket's event exists");
        event.inventory.unsell(seat);
        self.count_customer(h, event_id, &customer, 1, false);
    }

    /// Returns the card payments to pay back: one per order, in order id order.
    fn payments_of(
        &self,
        h: &dyn History,
        per_order: BTreeMap<OrderId, u64>,
    ) -> Vec<PaymentRefund> {
        per_order
            .into_iter()
            .map(|(order_id, amount_cents)| {
                let order = self.order_in(h, order_id).expect("a ticket's order exists");
                PaymentRefund {
                    payment_ref: order.payment_ref,
                    amount_cents,
                }
            })
            .collect()
    }

    // ----- helpers that compute or make one change -----

    fn check_key(&self, key: &IdempotencyKey) -> Result<(), Rejection> {
        let max = self.limits.key_bytes_max as usize;
        let bad = |s: &str| s.is_empty() || s.len() > max;
        if bad(&key.client_id) || bad(&key.request_id) {
            return Err(Rejection::BadKey);
        }
        Ok(())
    }

    /// Looks up the answer recorded for a key: `Some(Ok(answer))` to replay it,
    /// `Some(Err(KeyReused))` when the key was used with other parameters, `None` when the key
    /// is new.
    fn recorded(
        &self,
        h: &dyn History,
        record_key: RecordKey,
        fingerprint: u64,
    ) -> Option<Result<RecordedAnswer, Rejection>> {
        let record = match self.pending.records.get(&record_key) {
            Some(RecordChange::Put(record)) => record.clone(),
            Some(RecordChange::Expire) => return None,
            None => h.record(record_key)?,
        };
        if record.fingerprint != fingerprint {
            return Some(Err(Rejection::KeyReused));
        }
        Some(Ok(record.answer))
    }

    fn record(&mut self, key: RecordKey, fingerprint: u64, answer: RecordedAnswer) {
        let record = Record {
            fingerprint,
            recorded_at_ms: self.now_ms,
            answer,
        };
        self.fold_digest(&(key, &record));
        let previous = self.pending.records.insert(key, RecordChange::Put(record));
        assert!(
            !matches!(previous, Some(RecordChange::Put(_))),
            "an idempotency key was recorded twice"
        );
    }

    /// Expires up to [`RECORDS_EXPIRED_PER_BATCH_MAX`] records whose retention has passed, oldest
    /// first (ties by key) over history and the pending changes together, so the choice does not
    /// depend on what was written out already.
    fn expire_records(&mut self, h: &dyn History) {
        let retention = self.limits.idempotency_retention_ms;
        let Some(cutoff) = self.now_ms.checked_sub(retention) else {
            return;
        };
        let max = RECORDS_EXPIRED_PER_BATCH_MAX;
        let pending_expired = self
            .pending
            .records
            .values()
            .filter(|c| matches!(c, RecordChange::Expire))
            .count();
        let mut due: Vec<(u64, RecordKey)> = h
            .records_due(cutoff, max + pending_expired)
            .into_iter()
            .filter(|(_, key)| !self.pending.records.contains_key(key))
            .collect();
        let pending_due = self.pending.records.iter().filter_map(|(key, c)| match c {
            RecordChange::Put(r) if r.recorded_at_ms <= cutoff => Some((r.recorded_at_ms, *key)),
            _ => None,
        });
        due.extend(pending_due);
        due.sort_unstable();
        for (_, key) in due.into_iter().take(max) {
            let change = RecordChange::Expire;
            self.fold_digest(&(key, &change));
            self.pending.records.insert(key, change);
        }
    }

    fn expire_holds(&mut self, h: &dyn History) {
        while let Some((at, hold_id)) = self.hold_expiry.first().copied() {
            if at > self.now_ms {
                break;
            }
            self.drop_hold(h, hold_id, HoldEnd::Expired);
        }
    }

    /// Forgets how holds ended once [`ENDED_HOLD_RETENTION_MS`] has passed (log time).
    fn forget_ended_holds(&mut self) {
        while let Some((at, hold_id)) = self.ended_hold_expiry.first().copied() {
            if at.saturating_add(ENDED_HOLD_RETENTION_MS) > self.now_ms {
                break;
            }
            self.ended_hold_expiry.pop_first();
            self.ended_holds.remove(&hold_id);
        }
    }

    /// Remembers how a hold ended; past [`ENDED_HOLDS_MAX`] the oldest is forgotten.
    fn remember_end(&mut self, hold: &Hold, how: HoldEnd) {
        let ended = EndedHold {
            customer: hold.customer,
            event_id: hold.event_id,
            at_ms: self.now_ms,
            how,
        };
        assert!(
            self.ended_holds.insert(hold.id, ended).is_none(),
            "a hold ends once"
        );
        self.ended_hold_expiry.insert((self.now_ms, hold.id));
        if self.ended_holds.len() > ENDED_HOLDS_MAX
            && let Some((_, oldest)) = self.ended_hold_expiry.pop_first()
        {
            self.ended_holds.remove(&oldest);
        }
    }

    /// Removes a hold and returns its inventory to sale.
    fn drop_hold(&mut self, h: &dyn History, hold_id: HoldId, how: HoldEnd) {
        let hold = self
            .holds
            .remove(&hold_id)
            .expect("dropping a hold that exists");
        self.remember_end(&hold, how);
        self.hold_expiry.remove(&(hold.expires_at_ms, hold_id));
        let event = self
            .events
            .get_mut(&hold.event_id)
            .expect("a hold's event exists");
        event.inventory.unhold(hold.quantity, &hold.seats);
        self.dec_holds_per_customer(hold.customer, hold_id);
        let customer = CustomerKey::User(hold.customer);
        self.count_customer(h, hold.event_id, &customer, hold.quantity, false);
    }

    fn dec_holds_per_customer(&mut self, customer: UserId, hold_id: HoldId) {
        let count = self
            .holds_per_customer
            .get_mut(&customer)
            .expect("counted when placed");
        *count -= 1;
        if *count == 0 {
            self.holds_per_customer.remove(&customer);
        }
        let ids = self
            .hold_ids_by_customer
            .get_mut(&customer)
            .expect("indexed when placed");
        ids.remove(&hold_id);
        if ids.is_empty() {
            self.hold_ids_by_customer.remove(&customer);
        }
    }

    fn issue_ticket(
        &mut self,
        event_id: EventId,
        seat: Option<u32>,
        customer: CustomerKey,
        order_id: Option<OrderId>,
        key: Option<&IdempotencyKey>,
        price_cents: u64,
    ) -> TicketId {
        let id = TicketId(self.next.ticket);
        self.next.ticket += 1;
        let ticket = Ticket {
            id,
            event_id,
            seat,
            customer,
            order_id,
            key: key.cloned(),
            price_cents,
            sold_at_ms: self.now_ms,
            status: TicketStatus::Active,
            checked_in: None,
        };
        self.put_ticket(ticket);
        id
    }

    fn put_ticket(&mut self, ticket: Ticket) {
        self.fold_digest(&ticket);
        self.pending.tickets.insert(ticket.id, ticket);
    }

    /// Returns a ticket as the commands applied so far left it.
    fn ticket_in(&self, h: &dyn History, id: TicketId) -> Option<Ticket> {
        match self.pending.tickets.get(&id) {
            Some(ticket) => Some(ticket.clone()),
            None => h.ticket(id),
        }
    }

    fn order_in(&self, h: &dyn History, id: OrderId) -> Option<Order> {
        match self.pending.orders.get(&id) {
            Some(order) => Some(order.clone()),
            None => h.order(id),
        }
    }

    fn customer_count(&self, h: &dyn History, key: CountKey) -> u32 {
        match self.pending.counts.get(&key) {
            Some(count) => *count,
            None => h.customer_count(key),
        }
    }

    fn check_customer_cap(
        &self,
        h: &dyn History,
        event_id: EventId,
        customer: &CustomerKey,
        more: u32,
    ) -> Result<(), Rejection> {
        let event = self.events.get(&event_id).expect("checked by caller");
        let Some(max) = event.details.per_customer_max else {
            return Ok(());
        };
        let have = self.customer_count(h, CountKey::of(event_id, customer));
        if have + more > max {
            return Err(Rejection::CustomerLimit { max });
        }
        Ok(())
    }

    /// Adds `n` to (or, with `add` false, takes `n` from) a customer's count at an event, if
    /// the event keeps counts (see `Event::counts_customers`).
    fn count_customer(
        &mut self,
        h: &dyn History,
        event_id: EventId,
        customer: &CustomerKey,
        n: u32,
        add: bool,
    ) {
        let counted = self
            .events
            .get(&event_id)
            .is_some_and(|e| e.counts_customers);
        if !counted {
            return;
        }
        let key = CountKey::of(event_id, customer);
        let have = self.customer_count(h, key);
        let count = if add {
            have + n
        } else {
            have.checked_sub(n).expect("counted when sold or held")
        };
        self.fold_digest(&(key, count));
        self.pending.counts.insert(key, count);
    }

    /// Folds one history change into `history_digest` (its binary encoding, FNV-1a).
    fn fold_digest(&mut self, change: &impl Serialize) {
        let bytes = postcard::to_stdvec(change).expect("history changes serialize");
        self.history_digest = fnv1a64_from(self.history_digest, &bytes);
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

    /// Returns the account with this username, ignoring ASCII case.
    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.usernames
            .get(&username_key(username))
            .and_then(|id| self.users.get(id))
    }

    /// Returns up to `limit` accounts whose name starts with `prefix` (ignoring ASCII case), in
    /// name order, from just after the name `after` when given: a page of the admin's user list
    /// in O(log accounts + limit), through the username index.
    pub fn users_by_name(&self, prefix: &str, after: Option<&str>, limit: usize) -> Vec<&User> {
        use std::ops::Bound;
        let prefix = username_key(prefix);
        let start = match after.map(username_key) {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix.clone()),
        };
        self.usernames
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&prefix))
            .take(limit)
            .filter_map(|(_, id)| self.users.get(id))
            .collect()
    }

    /// Returns the email addresses and open password resets of the accounts.
    pub fn account_mail(&self) -> &AccountMail {
        &self.ext.mail
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

    /// Returns an event's venue layout, if it was created with named sections.
    pub fn layout(&self, id: EventId) -> Option<&VenueLayout> {
        self.ext.layouts.get(&id)
    }

    /// Returns a numbered event's seats as sections × rows × places (its layout, or one
    /// unnamed section); `None` for general admission.
    pub fn seat_map<'a>(&'a self, event: &Event) -> Option<SeatMap<'a>> {
        let layout = self.ext.layouts.get(&event.id);
        SeatMap::of(&event.inventory, layout, event.details.price_cents)
    }

    /// Returns an event by id.
    pub fn event(&self, id: EventId) -> Option<&Event> {
        self.events.get(&id)
    }

    /// Returns how an event was cancelled, if it was.
    pub fn cancellation(&self, id: EventId) -> Option<&Cancellation> {
        self.cancellations.get(&id)
    }

    /// Returns all events in id order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.values()
    }

    /// Returns how a hold that is no longer active ended, if it ended within
    /// [`ENDED_HOLD_RETENTION_MS`] (and among the last [`ENDED_HOLDS_MAX`]): O(log n).
    pub fn ended_hold(&self, id: HoldId) -> Option<&EndedHold> {
        self.ended_holds.get(&id)
    }

    /// Returns an active hold.
    pub fn hold(&self, id: HoldId) -> Option<&Hold> {
        self.holds.get(&id)
    }

    /// Returns when the next hold expires, by log time, if any hold is active.
    pub fn next_hold_expiry_ms(&self) -> Option<u64> {
        self.hold_expiry.first().map(|(at, _)| *at)
    }

    /// Returns a customer's active holds.
    pub fn holds_of(&self, customer: UserId) -> impl Iterator<Item = &Hold> {
        self.hold_ids_by_customer
            .get(&customer)
            .into_iter()
            .flatten()
            .map(|id| &self.holds[id])
    }

    /// Returns `customer`'s newest hold that has not expired by `now_ms` (the shop's "your
    /// hold" banner and the assistant's context ask for it; expiry by log time may lag).
    pub fn open_hold_of(&self, customer: UserId, now_ms: u64) -> Option<&Hold> {
        self.holds_of(customer)
            .filter(|h| h.expires_at_ms > now_ms)
            .max_by_key(|h| h.id)
    }

    /// Estimates the bytes the hot state takes in memory (collections' entries and their
    /// strings, with a fixed allowance per tree entry), for operators' metrics.
    pub fn estimated_bytes(&self) -> u64 {
        const ENTRY_BYTES: usize = 32;
        let users: usize = self
            .users
            .values()
            .map(|u| size_of::<User>() + 2 * u.username.len() + u.password_hash.len())
            .sum::<usize>()
            + self.users.len() * 2 * ENTRY_BYTES;
        let sessions = self.sessions.len() * (size_of::<Session>() + 2 * 64 + 2 * ENTRY_BYTES);
        let events: usize = self
            .events
            .values()
            .map(|e| {
                let seats = match &e.inventory {
                    Inventory::Numbered { seats, .. } => seats.len() * size_of::<SeatState>(),
                    Inventory::Unnumbered { .. } => 0,
                };
                size_of::<Event>() + e.details.name.len() + e.details.description.len() + seats
            })
            .sum();
        let holds: usize = self
            .holds
            .values()
            .map(|h| size_of::<Hold>() + 4 * h.seats.len() + 2 * ENTRY_BYTES)
            .sum();
        let cancellations: usize = self
            .cancellations
            .values()
            .map(|c| size_of::<Cancellation>() + c.reason.len() + 2 * 128 + ENTRY_BYTES)
            .sum();
        // A visitor: the id (about 12 bytes), its place and a map entry.
        let visitors: usize = self
            .ext
            .waiting_rooms
            .iter()
            .map(|r| r.visitors() * (12 + 16 + ENTRY_BYTES))
            .sum();
        // Image descriptors only: the bytes are history.
        let images: usize = self
            .ext
            .images
            .values()
            .map(|i| size_of::<crate::image::EventImage>() + i.alt.len() + ENTRY_BYTES)
            .sum();
        let parts = users + sessions + events + holds + cancellations + visitors + images;
        (size_of::<State>() + parts) as u64
    }

    /// Returns a 64-bit digest of the whole state, history included (through
    /// `history_digest`); equal states have equal digests, so replicas that applied the same log
    /// can be compared cheaply.
    pub fn digest(&self) -> u64 {
        let bytes = self.encode();
        fnv1a64_from(FNV_OFFSET, &bytes)
    }

    /// Encodes the hot state (a checkpoint or a snapshot's first part). Pending history changes
    /// are not part of it: take and write them out first.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("the state serializes")
    }

    /// Decodes a state written by [`State::encode`]. The username index is rebuilt from the
    /// accounts (in id order, the first of a name wins), so a state written before usernames
    /// were keyed case-insensitively finds its accounts by any case too.
    /// A state encoded before cancellations existed (no final map) decodes with none.
    pub fn decode(bytes: &[u8]) -> Result<State, postcard::Error> {
        let mut state: State = match postcard::take_from_bytes::<State>(bytes) {
            Ok((state, [])) => state,
            _ => match postcard::take_from_bytes::<WireWithEndedHolds>(bytes) {
                Ok((old, [])) => StateWire::from(old).into(),
                _ => match postcard::take_from_bytes::<WireWithCancellations>(bytes) {
                    Ok((old, [])) => StateWire::from(WireWithEndedHolds::from(old)).into(),
                    _ => {
                        let old = postcard::from_bytes::<WireBase>(bytes)?;
                        StateWire::from(WireWithEndedHolds::from(WireWithCancellations::from(old)))
                            .into()
                    }
                },
            },
        };
        let mut index = BTreeMap::new();
        for user in state.users.values() {
            index.entry(username_key(&user.username)).or_insert(user.id);
        }
        state.usernames = index;
        Ok(state)
    }

    // Crate-internal access for the invariant checker.
    /// Checks the account mail section against the accounts and log time (for the invariants).
    pub(crate) fn check_account_mail(&self) -> Result<(), String> {
        self.ext
            .mail
            .check(self.now_ms, |id| self.users.contains_key(&id))
    }

    pub(crate) fn parts(&self) -> StateParts<'_> {
        StateParts {
            events: &self.events,
            holds: &self.holds,
            hold_expiry: &self.hold_expiry,
            holds_per_customer: &self.holds_per_customer,
            hold_ids_by_customer: &self.hold_ids_by_customer,
            next_ticket: self.next.ticket,
            next_order: self.next.order,
            now_ms: self.now_ms,
            cancellations: &self.cancellations,
            ended_holds: &self.ended_holds,
            ended_hold_expiry: &self.ended_hold_expiry,
            next_hold: self.next.hold,
            waiting_rooms: &self.ext.waiting_rooms,
            layouts: &self.ext.layouts,
            zones: &self.ext.zones,
            images: &self.ext.images,
        }
    }
}

/// Read-only views of the state's collections for [`crate::invariants`].
pub(crate) struct StateParts<'a> {
    pub events: &'a BTreeMap<EventId, Event>,
    pub holds: &'a BTreeMap<HoldId, Hold>,
    pub hold_expiry: &'a BTreeSet<(u64, HoldId)>,
    pub holds_per_customer: &'a BTreeMap<UserId, u32>,
    pub hold_ids_by_customer: &'a BTreeMap<UserId, BTreeSet<HoldId>>,
    pub next_ticket: u64,
    pub next_order: u64,
    pub now_ms: u64,
    pub cancellations: &'a BTreeMap<EventId, Cancellation>,
    pub ended_holds: &'a BTreeMap<HoldId, EndedHold>,
    pub ended_hold_expiry: &'a BTreeSet<(u64, HoldId)>,
    pub layouts: &'a BTreeMap<EventId, VenueLayout>,
    pub zones: &'a BTreeMap<EventId, String>,
    pub images: &'a BTreeMap<EventId, crate::image::EventImage>,
    pub next_hold: u64,
    pub waiting_rooms: &'a crate::waiting::WaitingRooms,
}

/// Answers a key's first request.
fn fresh<T>(result: Result<T, Rejection>) -> Replayable<Result<T, Rejection>> {
    Replayable {
        replayed: false,
        result,
    }
}

/// Answers a request that is not a replay.
fn fresh_answer<T, E>(result: Result<T, E>) -> Replayable<Result<T, E>> {
    Replayable {
        replayed: false,
        result,
    }
}

/// Returns whether a cancellation reason may be kept: 1 to [`CANCEL_REASON_CHARS_MAX`]
/// characters, not only white space, no control characters.
pub fn reason_is_valid(reason: &str) -> bool {
    let chars = reason.chars().count();
    !reason.trim().is_empty()
        && chars <= CANCEL_REASON_CHARS_MAX
        && !reason.chars().any(char::is_control)
}

/// Answers a repeat with the recorded answer.
fn replayed<T>(result: Result<T, Rejection>) -> Replayable<Result<T, Rejection>> {
    Replayable {
        replayed: true,
        result,
    }
}

/// Whether an answer is recorded: not for an unknown event or a malformed key (nothing to scope
/// the record to, or nothing valid to record it under).
fn records_answer<T>(result: &Result<T, Rejection>) -> bool {
    !matches!(
        result,
        Err(Rejection::UnknownEvent) | Err(Rejection::BadKey)
    )
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64-bit, continued from `hash`: small, stable across platforms and releases, enough to
/// compare replicas.
fn fnv1a64_from(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
