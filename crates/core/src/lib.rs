//! The tix domain core: events, inventories, holds, orders, tickets, accounts and idempotency
//! records, changed only by applying [`Batch`]es of [`Command`]s to a [`State`] (the hot set in
//! memory) and its [`History`] (tickets, orders, records: written out as [`Changes`]).
//!
//! This crate is the replicated state machine of tix. It is pure and deterministic: it never
//! reads the clock, draws random numbers or touches IO. The time of a batch and every
//! externally generated value (password hashes, token hashes, payment references) arrive inside
//! the commands, stamped by the Raft leader before proposing, so every replica that applies the
//! same log reaches the same state (compare [`State::digest`]). Business answers such as
//! "sold out" are [`Outcome`]s, not errors; a broken invariant is a bug and
//! [`State::check_invariants`] reports it.

pub mod account_mail;
pub mod command;
pub mod extensions;
pub mod history;
pub mod ids;
pub mod image;
pub mod invariants;
pub mod inventory;
pub mod layout;
pub mod limits;
pub mod outcome;
pub mod replica;
pub mod state;
pub mod waiting;
pub mod zone;

pub use account_mail::{AccountMail, EMAIL_BYTES_MAX, PasswordReset, email_is_valid, email_key};
pub use command::{
    Batch, CANCEL_REASON_CHARS_MAX, Command, EventDetails, HoldRequest, InventorySpec, Role,
    SectionSpec, Venue,
};
pub use history::{
    Changes, CountKey, History, HistoryScan, MemoryHistory, Record, RecordChange, RecordKey,
    RecordedAnswer,
};
pub use ids::{CustomerKey, EventId, HoldId, IdempotencyKey, OrderId, TicketId, UserId};
pub use image::{
    EVENT_IMAGE_BYTES_MAX, EVENT_IMAGE_PIXELS_MAX, EVENT_IMAGE_SIDE_PIXELS_MAX, EventImage,
    IMAGE_ALT_CHARS_MAX, ImageFormat, ImageInfo, ImageProblem, ImageRejection, ImageUpload,
    alt_is_valid, image_sha256, inspect as inspect_image,
};
pub use invariants::InvariantViolation;
pub use inventory::{Inventory, SeatLayout, SeatState};
pub use layout::{MapSection, SeatMap, SeatPlace, VenueLayout};
pub use limits::Limits;
pub use outcome::{
    AccountRejection, Admitted, Answer, CancelRejection, CheckInRejection, EventCancelled,
    EventRejection, HoldPlaced, OrderConfirmed, Outcome, PaymentRefund, Refunded, Rejection,
    Replayable, Sale, UserRejection,
};
pub use replica::Replica;
pub use state::{
    Cancellation, ENDED_HOLD_RETENTION_MS, ENDED_HOLDS_MAX, EndedHold, Event, Hold, HoldEnd, Order,
    Session, State, Ticket, TicketStatus, User, username_key,
};
pub use waiting::{
    Joined, PlaceTimes, QueueRejection, QueueStanding, WaitingRoom, WaitingRoomSpec, WaitingRooms,
};
pub use zone::{ZONE_DEFAULT, ZONE_NAME_BYTES_MAX, ZoneRejection, zone_name_is_valid};
