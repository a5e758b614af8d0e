//! Commands: every change to the state is one variant of [`Command`], applied in [`Batch`]es.
//!
//! This is a data format: batches are stored in the Raft log and replayed after restarts, so
//! variants may be added freely but existing ones change only with a migration.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, HoldId, IdempotencyKey, TicketId, UserId};
use crate::waiting::WaitingRoomSpec;

/// A group of commands proposed as one Raft log entry, stamped with the leader's clock.
///
/// The state machine never reads a clock: `time_ms` is the only time it knows, and log time is
/// made monotonic on apply (a new leader whose clock lags cannot move time backwards).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Milliseconds since the Unix epoch on the proposing leader.
    pub time_ms: u64,
    /// The commands, applied in order; each gets one outcome.
    pub commands: Vec<Command>,
}

/// The role of an account; decides what its holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Browses, buys and refunds their own tickets.
    Attendee,
    /// Creates and manages their own events, sells at the box office, checks in at their door.
    Organizer,
    /// Checks tickets in at the door of any event.
    Staff,
    /// Everything.
    Admin,
}

/// Where an event takes place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Venue {
    /// The venue's name, as shown to attendees.
    pub name: String,
    /// Latitude in degrees, -90..=90.
    pub lat: f64,
    /// Longitude in degrees, -180..=180.
    pub lon: f64,
}

/// The editable description of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDetails {
    /// Short name shown on cards and tickets.
    pub name: String,
    /// Free text shown on the detail page.
    pub description: String,
    /// Start time in milliseconds since the Unix epoch.
    pub starts_at_ms: i64,
    /// Where it happens.
    pub venue: Venue,
    /// Price of one ticket in minor units of `currency`.
    pub price_cents: u64,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
    /// Whether attendees may refund tickets before the event starts.
    pub refundable: bool,
    /// The most tickets (sold plus held) one customer may have for this event; `None` is no cap.
    pub per_customer_max: Option<u32>,
}

/// The shape of an event's inventory, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventorySpec {
    /// General admission: any `capacity` tickets.
    Unnumbered {
        /// How many tickets exist.
        capacity: u32,
    },
    /// Numbered seats `1..=seats`, optionally laid out in rows for the seat map.
    Numbered {
        /// How many seats exist.
        seats: u32,
        /// Seats per row; when set, `seats` must be a multiple of it.
        seats_per_row: Option<u32>,
        /// Seats that are never sold (pillars, technical positions).
        blocked: Vec<u32>,
    },
    /// Numbered seats in named sections of rows, each section at its own price: section `i`'s
    /// seats follow section `i - 1`'s, row by row, so the seats are still `1..=N` (see
    /// [`crate::layout`]). Appended last: the earlier variants keep their encoding.
    Sections {
        /// The sections, in the organizer's order (best first for "best available anywhere").
        sections: Vec<SectionSpec>,
        /// Seats that are never sold, by number.
        blocked: Vec<u32>,
    },
}

/// One section of a venue: named rows of equal length at one price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionSpec {
    /// Its name, unique in the venue ignoring ASCII case: "Block A".
    pub name: String,
    /// Rows, front first.
    pub rows: u32,
    /// Seats in each row.
    pub seats_per_row: u32,
    /// What one of its seats costs, in minor units of the event's currency.
    pub price_cents: u64,
}

/// What a hold asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldRequest {
    /// Any `n` tickets; on a numbered event the best available (lowest numbered) seats — on a
    /// venue in sections, of one price (the first, in the sections' order, with `n` free).
    Quantity(u32),
    /// These exact seats.
    Seats(Vec<u32>),
    /// `quantity` adjacent seats in one row, the best available (front rows first, then the
    /// row's centre) in one section or anywhere; never split. Appended last.
    BestAvailable {
        /// How many seats, side by side.
        quantity: u32,
        /// The section's index in the layout; `None` is anywhere.
        section: Option<u32>,
    },
}

/// One change to the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Creates an account. The password hash is computed at the edge.
    CreateUser {
        /// Login name, unique ignoring ASCII case (`Admin` is taken when `admin` exists).
        username: String,
        /// PHC-format argon2id hash.
        password_hash: String,
        /// The role granted.
        role: Role,
    },
    /// Changes an account's role (an admin's decision, checked at the edge).
    SetRole {
        /// Whose role changes.
        user_id: UserId,
        /// The new role.
        role: Role,
    },
    /// Records a login session under the hash of its token.
    CreateSession {
        /// Hex SHA-256 of the bearer token; the token itself is never stored.
        token_hash: String,
        /// Who logged in.
        user_id: UserId,
        /// When the session stops being valid, by log time.
        expires_at_ms: u64,
    },
    /// Ends a session (logout).
    EndSession {
        /// Hex SHA-256 of the bearer token.
        token_hash: String,
    },
    /// Creates an event owned by `organizer`.
    CreateEvent {
        /// The owner.
        organizer: UserId,
        /// Name, time, venue, price.
        details: EventDetails,
        /// Capacity or seats.
        inventory: InventorySpec,
        /// The seed of the event's Ed25519 key that signs its ticket codes. Drawn at the edge
        /// (the core draws no random numbers) and kept in the replicated state, so every node
        /// signs and verifies the same way; never shown in any view.
        #[serde(default)]
        ticket_key_seed: [u8; 32],
    },
    /// Replaces an event's details if nobody changed it since `expected_version`.
    UpdateEvent {
        /// Which event.
        event_id: EventId,
        /// The version the editor read; a different current version is a conflict.
        expected_version: u64,
        /// The new details.
        details: EventDetails,
    },
    /// Sells one ticket at once (hold and confirm in one step): the box-office sale.
    Purchase {
        /// Which event.
        event_id: EventId,
        /// Makes retries safe; scoped to the event.
        key: IdempotencyKey,
        /// Whom the ticket counts against.
        customer: crate::ids::CustomerKey,
        /// The seat for a numbered event; `None` takes the best available seat.
        seat: Option<u32>,
    },
    /// Reserves inventory for `ttl_ms` while the customer pays.
    PlaceHold {
        /// Which event.
        event_id: EventId,
        /// Makes retries safe; scoped to the event.
        key: IdempotencyKey,
        /// Who holds.
        customer: UserId,
        /// What to hold.
        request: HoldRequest,
        /// How long the hold lasts, at most `Limits::hold_ttl_ms_max`.
        ttl_ms: u64,
    },
    /// Gives a hold back before it expires (cancel, declined payment).
    ReleaseHold {
        /// Which hold.
        hold_id: HoldId,
        /// Must be the holder.
        customer: UserId,
    },
    /// Turns a paid hold into an order with tickets.
    ConfirmHold {
        /// Which hold.
        hold_id: HoldId,
        /// Must be the holder.
        customer: UserId,
        /// The payment provider's reference for the captured payment.
        payment_ref: String,
    },
    /// Refunds a ticket and puts its inventory back on sale.
    Refund {
        /// Which ticket.
        ticket_id: TicketId,
        /// Who asked; the edge has checked they may.
        by: UserId,
        /// Organizers and admins may refund after the start or when the event is not
        /// refundable; attendees may not.
        override_policy: bool,
    },
    /// Admits a ticket at the door, once.
    CheckIn {
        /// Which ticket.
        ticket_id: TicketId,
        /// The door staff member.
        by: UserId,
    },
    /// Cancels an event in one entry: refunds every active ticket of it (whatever the refund
    /// policy says), releases its open holds, and refuses holds, sales and check-ins from then
    /// on. Appended last: the log's earlier variants keep their encoding.
    CancelEvent {
        /// Which event.
        event_id: EventId,
        /// Makes retries safe: the same key answers the recorded cancellation again.
        key: IdempotencyKey,
        /// Who cancels: the event's organizer or an admin (checked here, in the core).
        by: UserId,
        /// Why, shown to buyers on the event page; 1 to [`CANCEL_REASON_CHARS_MAX`] characters.
        reason: String,
    },
    /// Gives an event a waiting room, changes it before it opens, or removes it (`spec: None`).
    SetWaitingRoom {
        /// Which event.
        event_id: EventId,
        /// The event's organizer or an admin (checked here, in the core).
        by: UserId,
        /// The settings; `None` removes the room (everyone may buy directly).
        spec: Option<WaitingRoomSpec>,
        /// The room's secret seed, drawn at the edge; kept when an existing room is changed.
        seed: [u8; 32],
    },
    /// Puts a visitor in an event's waiting room; the same visitor again keeps their place.
    JoinQueue {
        /// Which event.
        event_id: EventId,
        /// Who: [`crate::waiting::account_visitor`] or [`crate::waiting::client_visitor`].
        visitor: String,
    },
    /// Sets or clears an account's email address (`crate::account_mail`). The edge checked the
    /// caller may; the core refuses an address that fails [`crate::email_is_valid`].
    SetEmail {
        /// Whose address.
        user_id: UserId,
        /// The new address, or `None` to remove it.
        email: Option<String>,
    },
    /// Opens a password reset: the token was drawn and mailed at the edge, only its hash is
    /// kept. Replaces the account's earlier open reset.
    CreatePasswordReset {
        /// Hex SHA-256 of the reset token.
        token_hash: String,
        /// Whose password the token may set.
        user_id: UserId,
        /// When the token stops working, by log time.
        expires_at_ms: u64,
    },
    /// Uses a password reset, once: sets the account's password and ends its sessions.
    ResetPassword {
        /// Hex SHA-256 of the reset token.
        token_hash: String,
        /// PHC-format argon2id hash of the new password, computed at the edge.
        password_hash: String,
    },
    /// Sets the IANA time zone an event's times are entered and shown in (`crate::zone`).
    /// The event's organizer or an admin (checked here, in the core); the core checks only the
    /// name's shape, the edge checked it against its zone database. Appended last.
    SetEventZone {
        /// Which event.
        event_id: EventId,
        /// Who sets it.
        by: UserId,
        /// The zone's IANA name, such as `Europe/Vienna`; `UTC` removes the stored zone.
        zone: String,
    },
    /// Sets or removes an event's image (`crate::image`): the event's organizer or an admin,
    /// checked here, as are the bytes (type by magic bytes, size, pixels) and the alt text.
    /// The bytes go to history; the hot state keeps a descriptor. Appended last.
    SetEventImage {
        /// Which event.
        event_id: EventId,
        /// Who sets it.
        by: UserId,
        /// The new image, or `None` to remove the event's image.
        image: Option<crate::image::ImageUpload>,
    },
}

/// The longest cancellation reason, in characters (it is kept in the hot state forever).
pub const CANCEL_REASON_CHARS_MAX: usize = 500;

impl Command {
    /// Returns the event a command is about, if any (used to route and to authorize).
    pub fn event_id(&self) -> Option<EventId> {
        match self {
            Command::UpdateEvent { event_id, .. }
            | Command::Purchase { event_id, .. }
            | Command::PlaceHold { event_id, .. }
            | Command::CancelEvent { event_id, .. }
            | Command::SetWaitingRoom { event_id, .. }
            | Command::JoinQueue { event_id, .. }
            | Command::SetEventZone { event_id, .. }
            | Command::SetEventImage { event_id, .. } => Some(*event_id),
            _ => None,
        }
    }
}
