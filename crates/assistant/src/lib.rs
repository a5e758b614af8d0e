//! The booking assistant's engine: deterministic, template-based understanding of what a
//! customer types ("two tickets for the Beethoven night", "was läuft am Wochenende in Köln?"),
//! a dialogue policy that fills missing slots, asks for login and confirmation, and decides on
//! an action, and the rendering of the action's outcome as a reply. Pure: no IO, no clock, no
//! randomness — time arrives as `now_ms`, the catalog and the user's state arrive as arguments,
//! and the server executes the actions. It never invents an event, a price or a seat: events
//! come from the catalog, prices and seats from the server's results.
//!
//! The pipeline: text → [`understand`] → [`Understanding`] (language, [`Intent`], [`Slots`]) →
//! [`step`] with the [`Conversation`] and a [`Context`] → [`Decision`] (reply, question, login,
//! confirmation, or [`Action`]) → the server executes the action → [`render`] its
//! [`ActionResult`] → [`Reply`]. Languages are data files (`lang/<code>.json`, see [`Lang`]).

mod catalog;
mod dates;
mod dialogue;
pub mod eval;
mod intent;
mod lang;
mod matching;
mod render;
mod slots;
mod text;
mod understand;

pub use catalog::{CATALOG_EVENTS_MAX, Catalog, CatalogError, CatalogEvent, NAME_CHARS_MAX};
pub use dialogue::{
    Action, Context, Conversation, Decision, OpenHold, Pending, QUANTITY_MAX, Question, resume,
    step,
};
pub use intent::INTENT_SCORE_MIN;
pub use lang::{Lang, LangError, check_languages};
pub use render::{
    ActionResult, CARDS_MAX, CHOICES_MAX, Card, Choice, EventOffer, OrderInfo, Reply, TicketInfo,
    TicketStatus, render,
};
pub use text::{INPUT_CHARS_MAX, TOKENS_MAX};
pub use understand::{
    EVENT_CHOICES_MAX, Hints, Intent, QUERY_CHARS_MAX, SEATS_PER_MESSAGE_MAX, Slots, Understanding,
    format_date, understand,
};

/// The longest message the callers (the HTTP edge, the CLI) accept, in characters; they refuse
/// longer ones before calling [`understand`], which reads at most [`INPUT_CHARS_MAX`].
pub const MESSAGE_CHARS_MAX: usize = 500;
