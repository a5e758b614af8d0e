//! The booking assistant at the edge: `POST /api/v1/assistant/messages` and the conversations
//! behind it and the `/assistant` page. The engine (`tix-assistant`) is pure: it turns a message
//! and the conversation's state into a decision; this module keeps the conversations, builds
//! the engine's catalog from the applied state, and executes the engine's actions through the
//! same functions as the pages and the API ([`crate::shop::hold`], [`crate::shop::pay`],
//! [`crate::shop::refund_ticket`], [`crate::shop::release`]) with the caller's own session, so a
//! chat purchase goes through the same log entry, idempotency key and authorization as any
//! other. Nothing the client sends is trusted beyond its text: prices, seats and ownership come
//! from the state.
//!
//! Conversations live in this node's memory ([`AssistantHub`]), bounded in number (the least
//! recently used is dropped), in idle time and in transcript length, each bound to its owner:
//! an anonymous conversation is taken over by the first signed-in user who continues it (that
//! is how "log in to book" returns to the conversation); a user's conversation is never
//! continued by anyone else (they get a new one). Each conversation has a message budget
//! (a token bucket): a flood is answered 429 with `Retry-After`. A node switch (another node
//! behind the proxy) or a restart starts a new conversation; nothing is lost that the log
//! holds.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tix_assistant as engine;
use tix_core::{
    CustomerKey, EventId, HoldId, HoldRequest, Rejection, SeatState, TicketId, TicketStatus, UserId,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller, MaybeBearer};
use crate::openapi as api_doc;
use crate::payments::CARD_OK;

/// Limits of the assistant's conversations on one node.
#[derive(Debug, Clone)]
pub struct AssistantLimits {
    /// Conversations kept at once; the least recently used is dropped for a new one.
    pub conversations_max: usize,
    /// A conversation unused this long is forgotten.
    pub idle: Duration,
    /// Messages a conversation may send at once (the bucket's size).
    pub messages_burst: u32,
    /// One more message is allowed per this interval (the bucket's refill).
    pub message_interval: Duration,
    /// Messages (the user's and the assistant's) kept in a conversation's transcript.
    pub transcript_lines_max: usize,
}

impl Default for AssistantLimits {
    fn default() -> Self {
        AssistantLimits {
            conversations_max: 10_000,
            idle: Duration::from_secs(30 * 60),
            messages_burst: 10,
            message_interval: Duration::from_secs(2),
            transcript_lines_max: 40,
        }
    }
}

/// Who a conversation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Nobody signed in yet: the first signed-in user to continue it takes it over.
    Anonymous,
    /// This user only.
    User(UserId),
}

/// One line of a conversation's transcript.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Line {
    /// `user` or `assistant`.
    pub from: &'static str,
    /// What was said (plain text; escaped wherever it is shown).
    pub text: String,
    /// The assistant's structured cards.
    #[schema(value_type = Vec<Object>)]
    pub cards: Vec<engine::Card>,
    /// Choices to click (the assistant's last line only is offered).
    #[schema(value_type = Vec<Object>)]
    pub choices: Vec<engine::Choice>,
}

struct Entry {
    owner: Owner,
    conversation: engine::Conversation,
    transcript: VecDeque<Line>,
    last_used: Instant,
    /// Messages that may still be sent now (refilled over time).
    tokens: f64,
    /// The user must log in to continue (the page shows a link).
    login_needed: bool,
}

/// The conversations of this node.
pub struct AssistantHub {
    limits: AssistantLimits,
    entries: Mutex<HashMap<String, Entry>>,
}

/// What a conversation looks like to its owner.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The conversation's id.
    pub id: String,
    /// Its lines, oldest first.
    pub lines: Vec<Line>,
    /// The user must log in to continue.
    pub login_needed: bool,
}

/// A conversation checked out for one message.
struct Turn {
    id: String,
    conversation: engine::Conversation,
}

impl AssistantHub {
    /// Returns an empty hub.
    pub fn new(limits: AssistantLimits) -> AssistantHub {
        AssistantHub {
            limits,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic under this lock cannot leave an entry half-written in a way that matters: the
        // worst case is a conversation that restarts.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Returns the transcript of conversation `id` if `caller` may see it (an anonymous one is
    /// visible to anyone holding its id; a user's only to that user).
    pub fn transcript(&self, id: &str, caller: Option<UserId>) -> Option<Transcript> {
        let entries = self.lock();
        let entry = entries.get(id)?;
        if entry.last_used.elapsed() > self.limits.idle || !may_continue(entry.owner, caller) {
            return None;
        }
        Some(Transcript {
            id: id.to_owned(),
            lines: entry.transcript.iter().cloned().collect(),
            login_needed: entry.login_needed && caller.is_none(),
        })
    }

    /// The id of `user`'s most recently used conversation, if one is still kept (the page
    /// opened without an id continues it).
    pub fn latest_of(&self, user: UserId) -> Option<String> {
        let entries = self.lock();
        entries
            .iter()
            .filter(|(_, e)| {
                e.owner == Owner::User(user) && e.last_used.elapsed() <= self.limits.idle
            })
            .max_by_key(|(_, e)| e.last_used)
            .map(|(id, _)| id.clone())
    }

    /// Checks out conversation `id` for a message from `caller` (or a new one), spending one
    /// message of its budget; `Err` carries the seconds until the next message is allowed.
    fn begin(&self, id: Option<&str>, caller: Option<UserId>, now: Instant) -> Result<Turn, u64> {
        let mut entries = self.lock();
        let interval = self.limits.message_interval.as_secs_f64().max(0.001);
        let burst = f64::from(self.limits.messages_burst.max(1));
        let usable = id.filter(|id| {
            entries.get(*id).is_some_and(|e| {
                now.duration_since(e.last_used) <= self.limits.idle && may_continue(e.owner, caller)
            })
        });
        let id = match usable {
            Some(id) => id.to_owned(),
            None => {
                self.make_room(&mut entries, now);
                let id = new_id();
                entries.insert(
                    id.clone(),
                    Entry {
                        owner: Owner::Anonymous,
                        conversation: engine::Conversation::default(),
                        transcript: VecDeque::new(),
                        last_used: now,
                        tokens: burst,
                        login_needed: false,
                    },
                );
                id
            }
        };
        let entry = entries.get_mut(&id).expect("inserted or found above");
        let refill = now.duration_since(entry.last_used).as_secs_f64() / interval;
        entry.tokens = (entry.tokens + refill).min(burst);
        entry.last_used = now;
        if entry.tokens < 1.0 {
            let wait_s = ((1.0 - entry.tokens) * interval).ceil().max(1.0);
            return Err(wait_s as u64);
        }
        entry.tokens -= 1.0;
        if let (Owner::Anonymous, Some(user)) = (entry.owner, caller) {
            entry.owner = Owner::User(user);
        }
        Ok(Turn {
            id,
            conversation: entry.conversation.clone(),
        })
    }

    /// Stores the conversation after a message and appends the exchange to its transcript.
    fn finish(&self, turn: Turn, said: Line, answer: Line, login_needed: bool) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&turn.id) else {
            return;
        };
        entry.conversation = turn.conversation;
        entry.login_needed = login_needed;
        for line in entry.transcript.iter_mut() {
            line.choices.clear();
        }
        entry.transcript.push_back(said);
        entry.transcript.push_back(answer);
        while entry.transcript.len() > self.limits.transcript_lines_max.max(2) {
            entry.transcript.pop_front();
        }
    }

    /// Drops expired conversations, then the least recently used ones, until one more fits.
    fn make_room(&self, entries: &mut HashMap<String, Entry>, now: Instant) {
        if entries.len() < self.limits.conversations_max {
            return;
        }
        entries.retain(|_, e| now.duration_since(e.last_used) <= self.limits.idle);
        while entries.len() >= self.limits.conversations_max.max(1) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => entries.remove(&id),
                None => break,
            };
        }
    }

    /// Conversations held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no conversation is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn may_continue(owner: Owner, caller: Option<UserId>) -> bool {
    match owner {
        Owner::Anonymous => true,
        Owner::User(user) => caller == Some(user),
    }
}

/// A new conversation id: 128 random bits in hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// True for what [`new_id`] makes (anything else is not looked up).
fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/assistant/messages", post(message))
}

/// A message to the assistant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageBody {
    /// The conversation to continue (from an earlier answer); omit it to start one. An
    /// unknown, expired or someone else's id starts a new conversation.
    #[serde(default)]
    #[schema(example = "3f1c2a9be4d04c6f8a7b5e2d1c0f9a8b")]
    conversation_id: Option<String>,
    /// What the user typed: 1 to 500 characters after trimming white space; line breaks and
    /// tabs allowed inside, no other control or text-direction characters (the pattern says
    /// exactly that).
    #[schema(
        example = "two tickets for the beethoven night",
        pattern = r"^[\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069](?:[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]{0,498}[^\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069])?[\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    text: String,
}

/// The assistant's answer to one message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Exchange {
    /// The conversation's id: send it with the next message.
    pub conversation_id: String,
    /// What the message was understood as (`book`, `search`, `unknown`, ...).
    pub intent: String,
    /// The language of the answer (`en`, `de`).
    pub lang: String,
    /// The answer's text (plain text).
    pub text: String,
    /// Structured results: events, holds, tickets, orders, refunds.
    #[schema(value_type = Vec<Object>)]
    pub cards: Vec<engine::Card>,
    /// Answers to offer as buttons: send a choice's `send` text as the next message.
    #[schema(value_type = Vec<Object>)]
    pub choices: Vec<engine::Choice>,
    /// What was done in the system, if anything (`hold`, `pay`, `refund`, ...).
    pub actions: Vec<ActionTaken>,
    /// The request needs a signed-in user: log in and send the next message with a token.
    pub login_required: bool,
}

/// One action the assistant executed for the message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionTaken {
    /// The action (`search`, `hold`, `pay`, `refund`, `cancel_hold`, ...).
    pub action: String,
    /// How it ended (`events_found`, `held`, `paid`, `sold_out`, `refunded`, ...).
    pub result: String,
}

/// Talk to the booking assistant
///
/// Sends one message of a conversation and returns the assistant's answer. The assistant
/// understands searches ("what's on in Düsseldorf in January?"), event details, availability,
/// booking ("two tickets for the Beethoven night"), paying with the test card, listing tickets
/// and orders, refunds and cancelling a hold, in English and German. It asks when something is
/// missing or ambiguous and asks for confirmation before paying or refunding; anything that
/// changes something needs a bearer token and acts as that user (the same holds, payments,
/// idempotency and rules as the shop). Anonymous callers can search and ask. Each conversation
/// may send 10 messages at once and one more every 2 s (429 beyond).
#[utoipa::path(post, path = "/api/v1/assistant/messages", tag = "assistant",
    operation_id = "sendAssistantMessage",
    security((), ("bearerAuth" = [])),
    request_body(content = MessageBody, description = "The message."),
    responses(
        (status = 200, description = "The answer.", body = Exchange),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::AssistantMessageInvalid),
        (status = 429, response = api_doc::TooManyMessages),
    ))]
async fn message(
    State(state): State<AppState>,
    MaybeBearer(caller): MaybeBearer,
    ApiJson(body): ApiJson<MessageBody>,
) -> Result<Json<Exchange>, ApiError> {
    let exchange = converse(
        &state,
        caller.as_ref(),
        body.conversation_id.as_deref(),
        &body.text,
    )
    .await?;
    Ok(Json(exchange))
}

/// Checks a message's text: 1 to [`engine::MESSAGE_CHARS_MAX`] characters, no control or
/// text-direction characters (line breaks and tabs allowed).
pub fn check_message(text: &str) -> Result<&str, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid("text", "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > engine::MESSAGE_CHARS_MAX {
        return Err(ApiError::invalid(
            "text",
            format!(
                "must be at most {} characters (this one has {chars})",
                engine::MESSAGE_CHARS_MAX
            ),
        ));
    }
    crate::text::check_text("text", text, true)?;
    Ok(text)
}

/// Handles one message of conversation `id` (or a new one) from `caller`; shared by the API
/// and the page.
pub async fn converse(
    state: &AppState,
    caller: Option<&Caller>,
    id: Option<&str>,
    text: &str,
) -> Result<Exchange, ApiError> {
    let text = check_message(text)?;
    let id = id.filter(|id| is_id(id));
    let user = caller.map(|c| c.user_id);
    let mut turn = state
        .assistant
        .begin(id, user, Instant::now())
        .map_err(|retry_after_s| ApiError::TooManyMessages { retry_after_s })?;
    let now_ms = tix_raft::proposer::now_ms() as i64;
    let catalog = catalog(state, now_ms);
    let hold = caller.and_then(|c| open_hold(state, c.user_id, now_ms));
    let context = engine::Context {
        logged_in: caller.is_some(),
        hold: hold.as_ref(),
        catalog: &catalog,
        now_ms,
    };
    let understanding = engine::understand(text, &catalog, now_ms);
    let intent = understanding.intent.name().to_owned();
    let decision = engine::step(&mut turn.conversation, understanding, &context);
    let lang = turn.conversation.lang;
    let mut actions = Vec::new();
    let mut login_required = false;
    let reply = match decision {
        engine::Decision::Reply(reply)
        | engine::Decision::Ask { reply, .. }
        | engine::Decision::Confirm { reply, .. } => reply,
        engine::Decision::LogIn(reply) => {
            login_required = true;
            reply
        }
        engine::Decision::Execute(action) => {
            let key = format!("assistant-{}-{}", turn.id, turn.conversation.turns);
            let result = match caller {
                Some(caller) => execute(state, caller, &action, &catalog, &key, now_ms).await,
                None => public(state, &action, &catalog, now_ms),
            };
            actions.push(ActionTaken {
                action: tag(&action, "action"),
                result: tag(&result, "result"),
            });
            let hold = caller.and_then(|c| open_hold(state, c.user_id, now_ms));
            let context = engine::Context {
                hold: hold.as_ref(),
                ..context
            };
            engine::render(lang, &action, &result, &context)
        }
    };
    let said = Line {
        from: "user",
        text: text.to_owned(),
        cards: Vec::new(),
        choices: Vec::new(),
    };
    let answer = Line {
        from: "assistant",
        text: reply.text.clone(),
        cards: reply.cards.clone(),
        choices: reply.choices.clone(),
    };
    let conversation_id = turn.id.clone();
    state.assistant.finish(turn, said, answer, login_required);
    Ok(Exchange {
        conversation_id,
        intent,
        lang: lang.code().to_owned(),
        text: reply.text,
        cards: reply.cards,
        choices: reply.choices,
        actions,
        login_required,
    })
}

/// The `action`/`result` tag of a serialized engine value.
fn tag<T: Serialize>(value: &T, key: &str) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.get(key).and_then(|t| t.as_str().map(str::to_owned)))
        .unwrap_or_default()
}

/// Splits a venue name written "Tonhalle, Düsseldorf" into venue and city; a name without a
/// comma is both.
fn venue_and_city(name: &str) -> (String, String) {
    match name.rsplit_once(',') {
        Some((venue, city)) if !venue.trim().is_empty() && !city.trim().is_empty() => {
            (clip(venue), clip(city))
        }
        _ => (clip(name), clip(name)),
    }
}

/// A text as the engine's catalog takes it: trimmed, at most [`engine::NAME_CHARS_MAX`]
/// characters, never empty.
fn clip(text: &str) -> String {
    let text: String = text.trim().chars().take(engine::NAME_CHARS_MAX).collect();
    if text.is_empty() {
        "?".to_owned()
    } else {
        text
    }
}

/// The engine's catalog: every event of the applied state (the engine refuses to book past
/// ones), at most [`engine::CATALOG_EVENTS_MAX`] of the soonest.
fn catalog(state: &AppState, now_ms: i64) -> engine::Catalog {
    let s = state.node.shared.read();
    // A cancelled event is nothing the assistant can book any more.
    let mut events: Vec<engine::CatalogEvent> = s
        .events()
        .filter(|e| s.cancellation(e.id).is_none())
        .map(|e| {
            let (venue, city) = venue_and_city(&e.details.venue.name);
            let (utc_offset_s, zone_label) =
                crate::zone::offset_and_label(e.details.starts_at_ms, s.event_zone(e.id));
            engine::CatalogEvent {
                id: e.id.0,
                name: clip(&e.details.name),
                venue,
                city,
                starts_at_ms: e.details.starts_at_ms,
                utc_offset_s,
                zone_label,
                numbered: e.inventory.is_numbered(),
            }
        })
        .collect();
    drop(s);
    // Upcoming events first (soonest first), then past ones (latest first).
    events.sort_by_key(|e| {
        if e.starts_at_ms >= now_ms {
            (0, e.starts_at_ms, e.id)
        } else {
            (1, -e.starts_at_ms, e.id)
        }
    });
    events.truncate(engine::CATALOG_EVENTS_MAX);
    engine::Catalog::new(events).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the assistant's catalog was refused; answering without events");
        engine::Catalog::new(Vec::new()).expect("an empty catalog is valid")
    })
}

/// The caller's newest active hold, as the engine sees it.
fn open_hold(state: &AppState, user: UserId, now_ms: i64) -> Option<engine::OpenHold> {
    let s = state.node.shared.read();
    let hold = s.open_hold_of(user, u64::try_from(now_ms).unwrap_or(0))?;
    let event = s.event(hold.event_id)?;
    Some(engine::OpenHold {
        id: hold.id.0,
        event: hold.event_id.0,
        seats: hold.seats.clone(),
        quantity: hold.quantity,
        total_cents: hold.price_cents * u64::from(hold.quantity),
        currency: event.details.currency.clone(),
        expires_at_ms: hold.expires_at_ms as i64,
    })
}

/// An event as offered in a reply.
fn offer(state: &AppState, catalog: &engine::Catalog, id: u64) -> Option<engine::EventOffer> {
    let event = catalog.event(id)?.clone();
    let s = state.node.shared.read();
    let e = s.event(EventId(id))?;
    Some(engine::EventOffer {
        event,
        price_cents: e.details.price_cents,
        currency: e.details.currency.clone(),
        tickets_left: e.inventory.available(),
    })
}

/// Executes what anyone may ask (the engine asks anonymous users to log in for the rest).
fn public(
    state: &AppState,
    action: &engine::Action,
    catalog: &engine::Catalog,
    now_ms: i64,
) -> engine::ActionResult {
    use engine::ActionResult as R;
    match action {
        engine::Action::Search {
            query,
            city,
            venue,
            date_from,
            date_to,
        } => {
            let from = date_from.as_deref().and_then(day_start_ms);
            let to = date_to
                .as_deref()
                .and_then(day_start_ms)
                .map(|d| d + DAY_MS - 1);
            let words: Vec<String> = query
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_lowercase)
                .collect();
            let events = catalog
                .events()
                .iter()
                .filter(|e| e.starts_at_ms >= now_ms)
                .filter(|e| city.as_deref().is_none_or(|c| e.city == c))
                .filter(|e| venue.as_deref().is_none_or(|v| e.venue == v))
                .filter(|e| from.is_none_or(|f| e.starts_at_ms >= f))
                .filter(|e| to.is_none_or(|t| e.starts_at_ms <= t))
                .filter(|e| {
                    let name = e.name.to_lowercase();
                    words.iter().all(|w| name.contains(w.as_str()))
                })
                .take(engine::CARDS_MAX)
                .filter_map(|e| offer(state, catalog, e.id))
                .collect();
            R::EventsFound { events }
        }
        engine::Action::EventDetails { event } => match offer(state, catalog, *event) {
            Some(offer) => R::EventDetails { offer },
            None => R::Failed,
        },
        engine::Action::Availability { event, seats } => {
            let s = state.node.shared.read();
            let Some(e) = s.event(EventId(*event)) else {
                return R::Failed;
            };
            let (free, taken) = seats
                .iter()
                .partition(|n| e.inventory.seat(**n) == Some(SeatState::Free));
            R::Availability {
                event: *event,
                tickets_left: e.inventory.available(),
                seats_free: free,
                seats_taken: taken,
            }
        }
        _ => R::Failed,
    }
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Midnight UTC of a `YYYY-MM-DD` day, in Unix milliseconds.
fn day_start_ms(day: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Executes an action for a signed-in caller through the shop's own functions.
async fn execute(
    state: &AppState,
    caller: &Caller,
    action: &engine::Action,
    catalog: &engine::Catalog,
    key: &str,
    now_ms: i64,
) -> engine::ActionResult {
    use engine::ActionResult as R;
    match action {
        engine::Action::Hold {
            event,
            quantity,
            seats,
            best_available: _,
            together,
        } => {
            hold(
                state, caller, *event, *quantity, seats, *together, key, now_ms,
            )
            .await
        }
        engine::Action::Pay { hold } => pay(state, caller, *hold).await,
        engine::Action::CancelHold { hold } => {
            match crate::shop::release(state, caller, HoldId(*hold)).await {
                Ok(()) => R::HoldCancelled { hold: *hold },
                Err(ApiError::NotFound(_)) => R::NoOpenHold,
                Err(e) => failed(e),
            }
        }
        engine::Action::ListTickets => tickets(state, caller.user_id),
        engine::Action::ListOrders => orders(state, caller.user_id),
        engine::Action::Refund { ticket } => refund(state, caller, &[TicketId(*ticket)]).await,
        engine::Action::RefundEvent { event } => {
            let mine: Vec<TicketId> = match state.node.shared.history() {
                Ok(h) => h
                    .tickets_of(caller.user_id)
                    .into_iter()
                    .filter(|t| t.event_id == EventId(*event))
                    .filter(|t| t.status == TicketStatus::Active)
                    .map(|t| t.id)
                    .collect(),
                Err(e) => return failed(e),
            };
            if mine.is_empty() {
                return R::Tickets {
                    tickets: Vec::new(),
                };
            }
            refund(state, caller, &mine).await
        }
        other => public(state, other, catalog, now_ms),
    }
}

/// Logs an unexpected failure once and answers the engine's generic "failed".
fn failed(e: impl std::fmt::Display) -> engine::ActionResult {
    tracing::warn!(error = %e, "assistant action failed");
    engine::ActionResult::Failed
}

/// Places a hold: explicit seats, or `quantity` seats side by side in one row when asked for
/// together (numbered events), or the core's best available.
#[allow(clippy::too_many_arguments)]
async fn hold(
    state: &AppState,
    caller: &Caller,
    event: u64,
    quantity: u32,
    seats: &[u32],
    together: bool,
    key: &str,
    now_ms: i64,
) -> engine::ActionResult {
    use engine::ActionResult as R;
    let found = {
        let s = state.node.shared.read();
        s.event(EventId(event)).map(|e| {
            (
                e.details.starts_at_ms,
                together
                    .then(|| side_by_side(&e.inventory, quantity))
                    .flatten(),
            )
        })
    };
    let Some((starts_at_ms, run)) = found else {
        return R::Failed;
    };
    if starts_at_ms < now_ms {
        return R::PastEvent { event };
    }
    // Sold out or not enough left is the core's answer to the hold (below), never a guess from
    // this node's possibly older view.
    let request = if !seats.is_empty() {
        HoldRequest::Seats(seats.to_vec())
    } else if let Some(run) = run {
        HoldRequest::Seats(run)
    } else {
        HoldRequest::Quantity(quantity)
    };
    match crate::shop::hold(state, caller, EventId(event), key.to_owned(), request, None).await {
        Ok((placed, _)) => {
            let s = state.node.shared.read();
            let currency = s
                .event(EventId(event))
                .map(|e| e.details.currency.clone())
                .unwrap_or_default();
            // The price the hold locked in (the event's price may change later).
            let price_cents = s.hold(placed.hold_id).map_or(0, |h| h.price_cents);
            R::Held {
                hold: placed.hold_id.0,
                event,
                seats: placed.seats.clone(),
                quantity: placed.quantity,
                total_cents: price_cents * u64::from(placed.quantity),
                currency,
                expires_at_ms: placed.expires_at_ms as i64,
            }
        }
        Err(ApiError::Rejected(r)) => match r {
            Rejection::SoldOut => {
                let left = state
                    .node
                    .shared
                    .read()
                    .event(EventId(event))
                    .map_or(0, |e| e.inventory.available());
                if left == 0 {
                    R::SoldOut { event }
                } else {
                    R::NotEnoughLeft {
                        event,
                        tickets_left: left,
                    }
                }
            }
            Rejection::SeatTaken { seat } | Rejection::SeatBlocked { seat } => R::SeatsTaken {
                event,
                seats: vec![seat],
            },
            other => failed(format!("hold refused: {}", other.code())),
        },
        Err(e) => failed(e),
    }
}

/// The lowest-numbered run of `n` free seats in one row, if the event is numbered.
fn side_by_side(inventory: &tix_core::Inventory, n: u32) -> Option<Vec<u32>> {
    let tix_core::Inventory::Numbered {
        layout: Some(layout),
        ..
    } = inventory
    else {
        return None;
    };
    let per_row = layout.seats_per_row.max(1);
    for row in 0..layout.rows {
        let first = row * per_row + 1;
        let mut run = Vec::new();
        for seat in first..first + per_row {
            if inventory.seat(seat) == Some(SeatState::Free) {
                run.push(seat);
                if run.len() as u32 == n {
                    return Some(run);
                }
            } else {
                run.clear();
            }
        }
    }
    None
}

/// Pays the caller's hold with the test card.
async fn pay(state: &AppState, caller: &Caller, hold: u64) -> engine::ActionResult {
    use engine::ActionResult as R;
    match crate::shop::pay(state, caller, HoldId(hold), CARD_OK).await {
        Ok(order) => {
            let history = match state.node.shared.history() {
                Ok(h) => h,
                Err(e) => return failed(e),
            };
            let Some(o) = history.order(order.order_id) else {
                return failed("confirmed order missing");
            };
            let currency = state
                .node
                .shared
                .read()
                .event(o.event_id)
                .map(|e| e.details.currency.clone())
                .unwrap_or_default();
            let tickets = o
                .tickets
                .iter()
                .filter_map(|t| history.ticket(*t))
                .map(|t| engine::TicketInfo {
                    ticket: t.id.0,
                    event: t.event_id.0,
                    seat: t.seat,
                    status: ticket_status(&t),
                })
                .collect();
            R::Paid {
                order: o.id.0,
                event: o.event_id.0,
                tickets,
                total_cents: o.total_cents,
                currency,
            }
        }
        Err(ApiError::NotFound(_)) => R::NoOpenHold,
        Err(ApiError::PaymentDeclined(_)) => R::PaymentDeclined,
        Err(ApiError::Rejected(Rejection::HoldExpired | Rejection::UnknownHold)) => R::HoldExpired,
        Err(e) => failed(e),
    }
}

fn ticket_status(t: &tix_core::Ticket) -> engine::TicketStatus {
    match (&t.status, t.checked_in.is_some()) {
        (TicketStatus::Refunded { .. } | TicketStatus::Cancelled { .. }, _) => {
            engine::TicketStatus::Refunded
        }
        (_, true) => engine::TicketStatus::CheckedIn,
        _ => engine::TicketStatus::Valid,
    }
}

/// The caller's tickets, newest last, at most [`engine::CARDS_MAX`].
fn tickets(state: &AppState, user: UserId) -> engine::ActionResult {
    let history = match state.node.shared.history() {
        Ok(h) => h,
        Err(e) => return failed(e),
    };
    let all = history.tickets_of(user);
    let skip = all.len().saturating_sub(engine::CARDS_MAX);
    let tickets = all
        .iter()
        .skip(skip)
        .map(|t| engine::TicketInfo {
            ticket: t.id.0,
            event: t.event_id.0,
            seat: t.seat,
            status: ticket_status(t),
        })
        .collect();
    engine::ActionResult::Tickets { tickets }
}

/// The caller's orders, newest last, at most [`engine::CARDS_MAX`].
fn orders(state: &AppState, user: UserId) -> engine::ActionResult {
    let history = match state.node.shared.history() {
        Ok(h) => h,
        Err(e) => return failed(e),
    };
    let all = history.orders_of(user);
    let skip = all.len().saturating_sub(engine::CARDS_MAX);
    let s = state.node.shared.read();
    let orders = all
        .iter()
        .skip(skip)
        .map(|o| engine::OrderInfo {
            order: o.id.0,
            event: o.event_id.0,
            tickets: o.tickets.len() as u32,
            total_cents: o.total_cents,
            currency: s
                .event(o.event_id)
                .map(|e| e.details.currency.clone())
                .unwrap_or_default(),
        })
        .collect();
    engine::ActionResult::Orders { orders }
}

/// Refunds the caller's own tickets (never someone else's, whatever the caller's role: the
/// organizer's and admin's refunds of others' tickets stay on their pages).
async fn refund(state: &AppState, caller: &Caller, ids: &[TicketId]) -> engine::ActionResult {
    use engine::ActionResult as R;
    let mut done = Vec::new();
    let mut amount_cents = 0;
    let mut currency = String::new();
    for id in ids {
        let ticket = match state.read_fresh_history(|h| h.ticket(*id)).await {
            Ok(t) => t,
            Err(e) => return failed(e),
        };
        let Some(ticket) = ticket else {
            return R::NoSuchTicket { ticket: id.0 };
        };
        if ticket.customer != CustomerKey::User(caller.user_id) {
            return R::NotYourTicket { ticket: id.0 };
        }
        match crate::shop::refund_ticket(state, caller, *id).await {
            Ok(refunded) => {
                done.push(id.0);
                amount_cents += refunded.amount_cents;
                if currency.is_empty() {
                    currency = state
                        .node
                        .shared
                        .read()
                        .event(ticket.event_id)
                        .map(|e| e.details.currency.clone())
                        .unwrap_or_default();
                }
            }
            Err(ApiError::Rejected(r)) if done.is_empty() => {
                return R::RefundRefused {
                    ticket: id.0,
                    reason: r.code().to_owned(),
                };
            }
            Err(e) if done.is_empty() => return failed(e),
            Err(e) => {
                tracing::warn!(error = %e, ticket = id.0, "assistant refund stopped");
                break;
            }
        }
    }
    R::Refunded {
        tickets: done,
        amount_cents,
        currency,
    }
}
