//! Outcomes: the answer of applying one command. "Sold out" and "seat taken" are answers, not
//! errors; the edges turn them into HTTP statuses in one place.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, HoldId, OrderId, TicketId, UserId};

/// The answer to one command, in the same position as the command in its batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Answer to `CreateUser` and `SetRole`.
    User(Result<UserId, UserRejection>),
    /// Answer to `CreateSession` and `EndSession` (always accepted).
    Session,
    /// Answer to `CreateEvent` and `UpdateEvent`: the event and its new version.
    Event(Result<(EventId, u64), EventRejection>),
    /// Answer to `Purchase`.
    Purchase(Replayable<Result<Sale, Rejection>>),
    /// Answer to `PlaceHold`.
    Hold(Replayable<Result<HoldPlaced, Rejection>>),
    /// Answer to `ReleaseHold`.
    Release(Result<HoldId, Rejection>),
    /// Answer to `ConfirmHold`.
    Confirm(Result<OrderConfirmed, Rejection>),
    /// Answer to `Refund`.
    Refund(Result<Refunded, Rejection>),
    /// Answer to `CheckIn`.
    CheckIn(Result<Admitted, CheckInRejection>),
    /// Answer to `CancelEvent`.
    Cancel(Replayable<Result<EventCancelled, CancelRejection>>),
    /// Answer to `SetWaitingRoom`.
    WaitingRoom(Result<(), crate::waiting::QueueRejection>),
    /// Answer to `JoinQueue`.
    Queue(Result<crate::waiting::Joined, crate::waiting::QueueRejection>),
    /// Answer to `SetEmail`, `CreatePasswordReset` and `ResetPassword`: the account changed.
    Account(Result<UserId, AccountRejection>),
    /// The answer of `SetEventZone`.
    Zone(Result<(), crate::zone::ZoneRejection>),
    /// The answer of `SetEventImage`. Appended last.
    Image(Result<(), crate::image::ImageRejection>),
}

/// An answer that may have been recorded earlier under the same idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replayable<T> {
    /// True when this is the recorded answer to an earlier request with the same key.
    pub replayed: bool,
    /// The answer.
    pub result: T,
}

/// A ticket sold by a direct purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    /// The new ticket.
    pub ticket_id: TicketId,
    /// The seat, for a numbered event.
    pub seat: Option<u32>,
}

/// A hold that was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldPlaced {
    /// The hold.
    pub hold_id: HoldId,
    /// When it expires, by log time.
    pub expires_at_ms: u64,
    /// How many tickets it covers.
    pub quantity: u32,
    /// The seats, for a numbered event.
    pub seats: Vec<u32>,
}

/// An order created from a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    /// The order.
    pub order_id: OrderId,
    /// Its tickets, one per held unit.
    pub tickets: Vec<TicketId>,
    /// What was charged, in minor units.
    pub total_cents: u64,
}

/// A refunded ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunded {
    /// The ticket.
    pub ticket_id: TicketId,
    /// What is paid back, in minor units.
    pub amount_cents: u64,
    /// The payment to refund (`None` for box-office sales).
    pub payment_ref: Option<String>,
}

/// An event that was cancelled, with what the cancellation undid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCancelled {
    /// The event.
    pub event_id: EventId,
    /// How many active tickets were refunded.
    pub tickets_refunded: u32,
    /// How many open holds were released.
    pub holds_released: u32,
    /// The sum of the refunded tickets' prices, in minor units.
    pub amount_cents: u64,
    /// The card payments to pay back, one per shop order with refunded tickets, in order id
    /// order (box-office sales have none). Empty in a replayed answer: the first answer's
    /// caller paid them back.
    pub payments: Vec<PaymentRefund>,
}

/// Money to pay back on one captured payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefund {
    /// The payment provider's reference.
    pub payment_ref: String,
    /// How much, in minor units.
    pub amount_cents: u64,
}

/// A ticket admitted at the door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admitted {
    /// The ticket.
    pub ticket_id: TicketId,
    /// When, by log time.
    pub at_ms: u64,
}

/// Why a sale, hold, confirmation or refund was refused. Externally tagged (serde's default) so
/// that the cluster's binary encoding, which cannot read internally tagged enums, carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// No such event.
    UnknownEvent,
    /// No tickets left.
    SoldOut,
    /// The seat is sold or held by someone else.
    SeatTaken {
        /// The seat.
        seat: u32,
    },
    /// The seat does not exist on this event.
    SeatOutOfRange {
        /// The seat asked for.
        seat: u32,
        /// The highest seat number.
        seats: u32,
    },
    /// The seat is blocked and never sold.
    SeatBlocked {
        /// The seat.
        seat: u32,
    },
    /// A seat was given for a general-admission event.
    SeatNotApplicable,
    /// The same seat appears twice in one request.
    DuplicateSeat {
        /// The seat.
        seat: u32,
    },
    /// Zero tickets, or more than `Limits::seats_per_order_max`.
    BadQuantity {
        /// What was asked.
        quantity: u32,
        /// The most allowed.
        max: u32,
    },
    /// The customer would exceed the event's per-customer cap or the active-holds limit.
    CustomerLimit {
        /// The limit.
        max: u32,
    },
    /// The idempotency key was used before with other parameters.
    KeyReused,
    /// A client id or request id is empty or too long.
    BadKey,
    /// The hold TTL is zero or above the maximum.
    BadTtl {
        /// The most allowed.
        max_ms: u64,
    },
    /// No such hold (or it was already confirmed or released).
    UnknownHold,
    /// The hold or ticket belongs to someone else.
    NotYours,
    /// The hold expired before it was confirmed.
    HoldExpired,
    /// No such ticket.
    UnknownTicket,
    /// The ticket was already refunded.
    AlreadyRefunded,
    /// The ticket was used at the door.
    AlreadyCheckedIn,
    /// The event's policy does not allow this refund (not refundable, or already started).
    NotRefundable,
    /// The organizer cancelled the event: nothing more is held or sold for it.
    EventCancelled,
    /// "N together": no row (of the section, or anywhere) has this many adjacent free seats.
    /// The group is never split; the buyer may ask for fewer or pick seats.
    NoAdjacentSeats {
        /// How many were asked for.
        quantity: u32,
    },
    /// The section asked for does not exist on this event.
    UnknownSection {
        /// The index asked for.
        section: u32,
    },
    /// The seats of one hold span sections with different prices; a hold has one price per
    /// ticket, so seats of different price categories are held separately.
    MixedPrices,
}

/// The answer one kind of command gets, taken out of the [`Outcome`] that carries it. Callers
/// name the answer they expect (`let placed: HoldAnswer = ...`) instead of matching every
/// variant; a command answered with another kind's outcome is a bug, given back as `Err`.
pub trait Answer: Sized {
    /// The answer, or the outcome itself when it is another kind's.
    fn from_outcome(outcome: Outcome) -> Result<Self, Outcome>;
}

macro_rules! answers {
    ($($variant:ident => $answer:ty),+ $(,)?) => {$(
        impl Answer for $answer {
            fn from_outcome(outcome: Outcome) -> Result<Self, Outcome> {
                match outcome {
                    Outcome::$variant(answer) => Ok(answer),
                    other => Err(other),
                }
            }
        }
    )+};
}

answers! {
    User => Result<UserId, UserRejection>,
    Event => Result<(EventId, u64), EventRejection>,
    Purchase => Replayable<Result<Sale, Rejection>>,
    Hold => Replayable<Result<HoldPlaced, Rejection>>,
    Release => Result<HoldId, Rejection>,
    Confirm => Result<OrderConfirmed, Rejection>,
    Refund => Result<Refunded, Rejection>,
    CheckIn => Result<Admitted, CheckInRejection>,
    Cancel => Replayable<Result<EventCancelled, CancelRejection>>,
    WaitingRoom => Result<(), crate::waiting::QueueRejection>,
    Queue => Result<crate::waiting::Joined, crate::waiting::QueueRejection>,
    Account => Result<UserId, AccountRejection>,
    Zone => Result<(), crate::zone::ZoneRejection>,
    Image => Result<(), crate::image::ImageRejection>,
}

impl Rejection {
    /// Returns the stable, machine-readable name of the reason (`"sold_out"`, `"seat_taken"`...).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::UnknownEvent => "unknown_event",
            Rejection::SoldOut => "sold_out",
            Rejection::SeatTaken { .. } => "seat_taken",
            Rejection::SeatOutOfRange { .. } => "seat_out_of_range",
            Rejection::SeatBlocked { .. } => "seat_blocked",
            Rejection::SeatNotApplicable => "seat_not_applicable",
            Rejection::DuplicateSeat { .. } => "duplicate_seat",
            Rejection::BadQuantity { .. } => "bad_quantity",
            Rejection::CustomerLimit { .. } => "customer_limit",
            Rejection::KeyReused => "idempotency_key_reused",
            Rejection::BadKey => "bad_idempotency_key",
            Rejection::BadTtl { .. } => "bad_ttl",
            Rejection::UnknownHold => "unknown_hold",
            Rejection::NotYours => "not_yours",
            Rejection::HoldExpired => "hold_expired",
            Rejection::UnknownTicket => "unknown_ticket",
            Rejection::AlreadyRefunded => "already_refunded",
            Rejection::AlreadyCheckedIn => "already_checked_in",
            Rejection::NotRefundable => "not_refundable",
            Rejection::EventCancelled => "event_cancelled",
            Rejection::NoAdjacentSeats { .. } => "no_adjacent_seats",
            Rejection::UnknownSection { .. } => "unknown_section",
            Rejection::MixedPrices => "mixed_prices",
        }
    }
}

/// Why an account change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserRejection {
    /// Someone already has this username.
    UsernameTaken,
    /// No such account.
    UnknownUser,
    /// The account is the only admin; demoting it would leave nobody able to grant roles.
    LastAdmin,
}

/// Why a change of an account's address or password was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountRejection {
    /// No such account.
    UnknownUser,
    /// The address fails [`crate::email_is_valid`].
    BadEmail,
    /// No open reset has this token: never opened, already used, replaced or expired.
    UnknownResetToken,
    /// The reset's expiry is not after the log's time.
    ResetExpired,
}

/// Why an event change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventRejection {
    /// No such event.
    UnknownEvent,
    /// Someone else changed the event since the editor read it.
    VersionConflict {
        /// The version now stored.
        current_version: u64,
    },
    /// The price is above `Limits::price_cents_max`.
    BadPrice {
        /// The most allowed, in minor units.
        max_cents: u64,
    },
    /// The inventory is empty, too large, or the layout does not fit the seats.
    BadInventory {
        /// What is wrong, for the user.
        detail: String,
    },
    /// The event was cancelled; it is no longer edited.
    Cancelled,
}

/// Why a cancellation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelRejection {
    /// No such event.
    UnknownEvent,
    /// The caller is neither the event's organizer nor an admin.
    NotYourEvent,
    /// The event was cancelled before (by another request).
    AlreadyCancelled,
    /// The reason is empty, longer than `CANCEL_REASON_CHARS_MAX` characters, or has control
    /// characters.
    BadReason,
    /// A client id or request id is empty or too long.
    BadKey,
}

/// Why a check-in was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckInRejection {
    /// No such ticket.
    UnknownTicket,
    /// The ticket was refunded.
    Refunded,
    /// The ticket was admitted before.
    AlreadyAdmitted {
        /// When, by log time.
        at_ms: u64,
        /// By whom.
        by: UserId,
    },
    /// The ticket's event was cancelled.
    EventCancelled,
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    #[test]
    fn an_answer_is_taken_from_its_own_kind_only() {
        let refused: Result<HoldId, Rejection> = Err(Rejection::UnknownHold);
        let release = Outcome::Release(refused.clone());
        assert_eq!(
            Result::<HoldId, Rejection>::from_outcome(release),
            Ok(refused)
        );
        let other = Outcome::Session;
        assert!(matches!(
            Result::<OrderConfirmed, Rejection>::from_outcome(other),
            Err(Outcome::Session)
        ));
    }
}
