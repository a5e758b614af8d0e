//! The dialogue policy: [`step`] takes the conversation so far and one understood message and
//! decides what to do — reply, ask for a missing slot (with choices), ask the user to log in,
//! ask for confirmation, or execute an [`Action`]. State lives in [`Conversation`] (small and
//! serializable, so the caller can keep it in a session): the request being filled, the question
//! asked, the events offered, an action awaiting "yes", the language, the turn count.
//!
//! Policy choices: searching, event details and availability need no login; booking, paying,
//! listing tickets and orders, refunding and giving up a hold do, and the request is kept across
//! the login ([`resume`]). Paying and refunding need an explicit "yes"; holding seats does not
//! (a hold costs nothing, expires by itself, can be given up, and paying it is confirmed), so
//! "2 tickets" → "For which event?" → "the arena one" executes the hold at once. Past events
//! cannot be booked or checked for seats. An ambiguous event is a question with choices, never
//! a guess.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::Catalog;
use crate::catalog::CatalogEvent;
use crate::lang::Lang;
use crate::render::{
    CHOICES_MAX, Choice, EventView, Reply, choice, event_choice, fill, format_money, texts,
    tickets_phrase,
};
use crate::understand::{
    EVENT_CHOICES_MAX, Intent, QUERY_CHARS_MAX, SEATS_PER_MESSAGE_MAX, Slots, Understanding,
};

/// The most tickets one hold may ask for (the core's default `seats_per_order_max`).
pub const QUANTITY_MAX: u32 = 10;
/// The quantities offered as choices.
const QUANTITY_CHOICES: [u32; 4] = [1, 2, 3, 4];

/// The user's open hold, as the server knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHold {
    /// The hold's id.
    pub id: u64,
    /// The event's id.
    pub event: u64,
    /// The seats held (empty for general admission).
    pub seats: Vec<u32>,
    /// How many tickets.
    pub quantity: u32,
    /// What paying costs, in minor units.
    pub total_cents: u64,
    /// The currency.
    pub currency: String,
    /// When it expires, Unix milliseconds.
    pub expires_at_ms: i64,
}

/// What the policy needs to know about the world for one step.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Whether the user is logged in.
    pub logged_in: bool,
    /// The user's open hold, if any.
    pub hold: Option<&'a OpenHold>,
    /// The events.
    pub catalog: &'a Catalog,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
}

/// Something for the server to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Find events.
    Search {
        /// Words to search names for.
        query: Option<String>,
        /// The city.
        city: Option<String>,
        /// The venue.
        venue: Option<String>,
        /// The first day (inclusive), `YYYY-MM-DD`.
        date_from: Option<String>,
        /// The last day (inclusive), `YYYY-MM-DD`.
        date_to: Option<String>,
    },
    /// Show one event (price, tickets left).
    EventDetails {
        /// The event's id.
        event: u64,
    },
    /// How many are left, and whether these seats are free.
    Availability {
        /// The event's id.
        event: u64,
        /// Seats to check (none: just the count).
        seats: Vec<u32>,
    },
    /// Hold tickets.
    Hold {
        /// The event's id.
        event: u64,
        /// How many.
        quantity: u32,
        /// These seats (numbered events; empty: the server picks).
        seats: Vec<u32>,
        /// The user asked for the best available seats.
        best_available: bool,
        /// The user asked for seats together.
        together: bool,
    },
    /// Pay the open hold.
    Pay {
        /// The hold's id.
        hold: u64,
    },
    /// List the user's tickets.
    ListTickets,
    /// List the user's orders.
    ListOrders,
    /// Refund one ticket.
    Refund {
        /// The ticket's id.
        ticket: u64,
    },
    /// Refund the user's tickets for an event.
    RefundEvent {
        /// The event's id.
        event: u64,
    },
    /// Give up the open hold.
    CancelHold {
        /// The hold's id.
        hold: u64,
    },
}

/// A question the assistant asked and waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    /// Which event.
    Event,
    /// How many tickets.
    Quantity,
    /// Which ticket.
    Ticket,
}

/// What to do after a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Say this.
    Reply(Reply),
    /// Ask for a missing slot.
    Ask {
        /// What is asked.
        question: Question,
        /// The question's text and choices.
        reply: Reply,
    },
    /// Ask the user to log in; the request is kept ([`resume`] continues it).
    LogIn(Reply),
    /// Ask "yes or no?" before doing this.
    Confirm {
        /// What "yes" will execute.
        action: Action,
        /// The question's text and the yes/no choices.
        reply: Reply,
    },
    /// Do this, then [`crate::render`] the result.
    Execute(Action),
}

/// A request being filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// What the user wants.
    pub intent: Intent,
    /// What is known so far.
    pub slots: Slots,
    /// The words that referred to an event (for a search).
    pub query: Option<String>,
}

/// The state of one conversation. Bounded: one pending request (slots are bounded by the
/// understanding's limits), at most [`CHOICES_MAX`] offered events, one awaiting action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conversation {
    /// The language replies are in.
    pub lang: Lang,
    /// Messages so far (saturating).
    pub turns: u32,
    /// The request being filled in.
    pub pending: Option<Pending>,
    /// The question asked.
    pub question: Option<Question>,
    /// The events offered as choices, in the order shown.
    pub offered: Vec<u64>,
    /// The action a "yes" executes.
    pub awaiting: Option<Action>,
    /// The pending request waits for the user to log in.
    pub login_needed: bool,
}

impl Conversation {
    /// Returns a new conversation in this language.
    pub fn new(lang: Lang) -> Conversation {
        Conversation {
            lang,
            ..Conversation::default()
        }
    }

    /// Cuts lists to their limits: a conversation read back from storage is trusted no further
    /// than that.
    fn clamp(&mut self) {
        self.offered.truncate(CHOICES_MAX);
        if let Some(pending) = self.pending.as_mut() {
            pending.slots.seats.truncate(SEATS_PER_MESSAGE_MAX);
            pending.slots.event_choices.truncate(EVENT_CHOICES_MAX);
            if let Some(query) = pending.query.as_mut() {
                *query = query.chars().take(QUERY_CHARS_MAX).collect();
            }
        }
    }

    /// Forgets the request, question, choices and awaiting action (keeps language and turns).
    pub fn clear(&mut self) {
        self.pending = None;
        self.question = None;
        self.offered.clear();
        self.awaiting = None;
        self.login_needed = false;
    }
}

fn reply(text: String, choices: Vec<Choice>) -> Decision {
    Decision::Reply(Reply {
        text,
        choices,
        cards: Vec::new(),
    })
}

fn help_choices(lang: Lang) -> Vec<Choice> {
    texts(lang)
        .help_examples
        .iter()
        .take(CHOICES_MAX)
        .map(|e| choice(e, e))
        .collect()
}

fn yes_no(lang: Lang) -> Vec<Choice> {
    let r = texts(lang);
    vec![
        choice(&r.choice_yes, &r.send_yes),
        choice(&r.choice_no, &r.send_no),
    ]
}

/// Decides what to do with one understood message.
pub fn step(
    conversation: &mut Conversation,
    understanding: Understanding,
    ctx: &Context,
) -> Decision {
    let conv = conversation;
    let u = understanding;
    conv.clamp();
    conv.turns = conv.turns.saturating_add(1);
    if u.hints.lang_sure || conv.turns == 1 {
        conv.lang = u.lang;
    }
    let lang = conv.lang;
    let r = texts(lang);
    match u.intent {
        Intent::StartOver => {
            conv.clear();
            return reply(format!("{} {}", r.started_over, r.help), help_choices(lang));
        }
        Intent::Help => return reply(r.help.clone(), help_choices(lang)),
        Intent::Confirm if conv.awaiting.is_some() => {
            if let Some(action) = conv.awaiting.take() {
                return confirmed(conv, action, ctx);
            }
        }
        Intent::Deny if conv.awaiting.is_some() || conv.pending.is_some() => {
            conv.clear();
            return reply(r.cancelled.clone(), Vec::new());
        }
        _ => {}
    }
    if conv.login_needed
        && ctx.logged_in
        && matches!(u.intent, Intent::Confirm | Intent::Unknown | Intent::Greet)
    {
        conv.login_needed = false;
        return advance(conv, ctx);
    }
    if let Some(question) = conv.question {
        if let Some(decision) = answer(conv, question, &u, ctx) {
            return decision;
        }
        let new_request = u.hints.cued
            && !matches!(
                u.intent,
                Intent::Unknown | Intent::Greet | Intent::Confirm | Intent::Deny
            );
        if !new_request {
            return reask(conv, ctx);
        }
    }
    conv.clear();
    match u.intent {
        Intent::Greet => reply(r.greeting.clone(), help_choices(lang)),
        Intent::Unknown => reply(format!("{} {}", r.unknown, r.help), help_choices(lang)),
        Intent::Confirm | Intent::Deny => reply(r.nothing_to_confirm.clone(), help_choices(lang)),
        intent => {
            conv.pending = Some(Pending {
                intent,
                slots: u.slots,
                query: u.hints.reference,
            });
            advance(conv, ctx)
        }
    }
}

/// Continues a request that waited for the user to log in; `None` if none waits or the user
/// is still not logged in.
pub fn resume(conversation: &mut Conversation, ctx: &Context) -> Option<Decision> {
    if !conversation.login_needed || !ctx.logged_in {
        return None;
    }
    conversation.login_needed = false;
    if let Some(action) = conversation.awaiting.take() {
        return Some(confirm(conversation, action, ctx));
    }
    Some(advance(conversation, ctx))
}

/// Takes an answer to the question asked into the pending request; `None` if the message is
/// no answer.
fn answer(
    conv: &mut Conversation,
    question: Question,
    u: &Understanding,
    ctx: &Context,
) -> Option<Decision> {
    let pending = conv.pending.as_mut()?;
    let fits_request = u.intent == pending.intent
        || !u.hints.cued
        || u.intent == Intent::Confirm
        || (question == Question::Event && u.intent == Intent::EventDetails);
    if !fits_request {
        return None;
    }
    match question {
        Question::Event => match pick_event(&conv.offered, u, ctx)? {
            Ok(id) => {
                pending.slots.event = Some(id);
                pending.slots.event_choices.clear();
            }
            Err(narrower) => {
                pending.slots.event = None;
                pending.slots.event_choices = narrower;
            }
        },
        Question::Quantity => {
            let quantity = u.slots.quantity.or(u.hints.number).or_else(|| {
                (!u.slots.seats.is_empty())
                    .then(|| u32::try_from(u.slots.seats.len()).unwrap_or(u32::MAX))
            })?;
            pending.slots.quantity = Some(quantity);
        }
        Question::Ticket => {
            if let Some(ticket) = u.slots.ticket.or(u.hints.number.map(u64::from)) {
                pending.slots.ticket = Some(ticket);
            } else if u.slots.has_event() {
                pending.slots.event = u.slots.event;
                pending.slots.event_choices = u.slots.event_choices.clone();
            } else {
                return None;
            }
        }
    }
    if question != Question::Event {
        merge_extras(&mut pending.slots, &u.slots);
    } else {
        let mut extras = u.slots.clone();
        extras.event = None;
        extras.event_choices.clear();
        merge_extras(&mut pending.slots, &extras);
    }
    conv.question = None;
    conv.offered.clear();
    Some(advance(conv, ctx))
}

/// Takes what else an answer says ("the arena one, best seats"); an event it names replaces
/// the request's.
fn merge_extras(slots: &mut Slots, new: &Slots) {
    if new.has_event() {
        slots.event = new.event;
        slots.event_choices = new.event_choices.clone();
    }
    if new.quantity.is_some() {
        slots.quantity = new.quantity;
    }
    if !new.seats.is_empty() {
        slots.seats = new.seats.clone();
    }
    slots.best_available |= new.best_available;
    slots.together |= new.together;
}

/// Returns the event an answer picks: `Ok(id)`, or `Err(ids)` when it narrows but does not
/// decide; `None` when it says nothing about events.
fn pick_event(offered: &[u64], u: &Understanding, ctx: &Context) -> Option<Result<u64, Vec<u64>>> {
    let slots = &u.slots;
    if let Some(id) = slots.event.filter(|id| ctx.catalog.event(*id).is_some()) {
        return Some(Ok(id));
    }
    if !slots.event_choices.is_empty() {
        let both: Vec<u64> = slots
            .event_choices
            .iter()
            .copied()
            .filter(|id| offered.contains(id))
            .collect();
        let ids = if both.is_empty() {
            slots.event_choices.clone()
        } else {
            both
        };
        return Some(if ids.len() == 1 { Ok(ids[0]) } else { Err(ids) });
    }
    if slots.has_place_or_date() {
        let ids: Vec<u64> = ctx
            .catalog
            .events()
            .iter()
            .filter(|e| offered.is_empty() || offered.contains(&e.id))
            .filter(|e| fits_place_and_date(e, slots))
            .map(|e| e.id)
            .collect();
        match ids.as_slice() {
            [] => {}
            [one] => return Some(Ok(*one)),
            _ => return Some(Err(ids)),
        }
    }
    // "2" answering "Which one do you mean?" picks the second choice.
    let index = usize::try_from(u.hints.number?).ok()?.checked_sub(1)?;
    offered.get(index).map(|id| Ok(*id))
}

fn fits_place_and_date(event: &CatalogEvent, slots: &Slots) -> bool {
    let day = crate::dates::today(event.local_start_ms());
    slots.city.as_ref().is_none_or(|c| *c == event.city)
        && slots.venue.as_ref().is_none_or(|v| *v == event.venue)
        && slots.date_from.is_none_or(|from: Date| day >= from)
        && slots.date_to.is_none_or(|to: Date| day <= to)
}

/// How a request's event resolved.
enum Resolved<'a> {
    One(&'a CatalogEvent),
    Several(Vec<u64>),
    NoneMatch,
    Missing,
}

/// Resolves the event a request means: named, chosen among, or implied by place and date.
fn resolve<'a>(slots: &Slots, ctx: &Context<'a>, upcoming_only: bool) -> Resolved<'a> {
    if let Some(event) = slots.event.and_then(|id| ctx.catalog.event(id)) {
        return Resolved::One(event);
    }
    let mut ids: Vec<u64> = slots
        .event_choices
        .iter()
        .copied()
        .filter(|id| ctx.catalog.event(*id).is_some())
        .collect();
    if ids.is_empty() && slots.has_place_or_date() {
        ids = sorted_events(ctx, |e| {
            fits_place_and_date(e, slots) && (!upcoming_only || e.starts_at_ms >= ctx.now_ms)
        });
        if ids.is_empty() {
            return Resolved::NoneMatch;
        }
    }
    match ids.as_slice() {
        [] => Resolved::Missing,
        [one] => ctx
            .catalog
            .event(*one)
            .map_or(Resolved::Missing, Resolved::One),
        _ => Resolved::Several(ids),
    }
}

/// Returns the ids of the events that pass, soonest first.
fn sorted_events(ctx: &Context, keep: impl Fn(&CatalogEvent) -> bool) -> Vec<u64> {
    let mut events: Vec<&CatalogEvent> = ctx.catalog.events().iter().filter(|e| keep(e)).collect();
    events.sort_by_key(|e| (e.starts_at_ms, e.id));
    events.into_iter().map(|e| e.id).collect()
}

/// Asks which event, offering `ids` (or the next upcoming events). The candidates are kept
/// in the request's `event_choices`, so asking again asks among them.
fn ask_event(
    conv: &mut Conversation,
    ctx: &Context,
    ids: Vec<u64>,
    prefix: Option<&str>,
) -> Decision {
    let lang = conv.lang;
    let r = texts(lang);
    let among = !ids.is_empty();
    let mut ids = if among {
        ids
    } else {
        sorted_events(ctx, |e| e.starts_at_ms >= ctx.now_ms)
    };
    ids.truncate(CHOICES_MAX);
    if let Some(pending) = conv.pending.as_mut() {
        pending.slots.event = None;
        pending.slots.event_choices = if among { ids.clone() } else { Vec::new() };
    }
    let question = if among {
        &r.ask_event_among
    } else {
        &r.ask_event
    };
    let text = match prefix {
        Some(prefix) => format!("{prefix} {question}"),
        None => question.clone(),
    };
    let choices = ids
        .iter()
        .filter_map(|id| ctx.catalog.event(*id))
        .map(|e| event_choice(lang, ctx, e))
        .collect();
    conv.question = Some(Question::Event);
    conv.offered = ids;
    Decision::Ask {
        question: Question::Event,
        reply: Reply {
            text,
            choices,
            cards: Vec::new(),
        },
    }
}

fn ask_quantity(conv: &mut Conversation, prefix: Option<String>) -> Decision {
    let r = texts(conv.lang);
    let text = match prefix {
        Some(prefix) => format!("{prefix} {}", r.ask_quantity),
        None => r.ask_quantity.clone(),
    };
    let choices = QUANTITY_CHOICES
        .iter()
        .map(|n| choice(&n.to_string(), &n.to_string()))
        .collect();
    conv.question = Some(Question::Quantity);
    conv.offered.clear();
    Decision::Ask {
        question: Question::Quantity,
        reply: Reply {
            text,
            choices,
            cards: Vec::new(),
        },
    }
}

fn ask_ticket(conv: &mut Conversation) -> Decision {
    let r = texts(conv.lang);
    conv.question = Some(Question::Ticket);
    conv.offered.clear();
    let choices = vec![choice(&r.choice_my_tickets, &r.send_my_tickets)];
    Decision::Ask {
        question: Question::Ticket,
        reply: Reply {
            text: r.ask_ticket.clone(),
            choices,
            cards: Vec::new(),
        },
    }
}

/// Asks the pending question again after a message that answered nothing, offering to start
/// over as well.
fn reask(conv: &mut Conversation, ctx: &Context) -> Decision {
    let r = texts(conv.lang);
    let prefix = r.not_understood.clone();
    let mut decision = match conv.question {
        Some(Question::Event) => {
            let among = conv
                .pending
                .as_ref()
                .is_some_and(|p| !p.slots.event_choices.is_empty());
            let offered = if among {
                conv.offered.clone()
            } else {
                Vec::new()
            };
            ask_event(conv, ctx, offered, Some(&prefix))
        }
        Some(Question::Quantity) => ask_quantity(conv, Some(prefix)),
        Some(Question::Ticket) | None => {
            let mut decision = ask_ticket(conv);
            if let Decision::Ask { reply, .. } = &mut decision {
                reply.text = format!("{prefix} {}", reply.text);
            }
            decision
        }
    };
    if let Decision::Ask { reply, .. } = &mut decision {
        reply.choices.truncate(CHOICES_MAX - 1);
        reply
            .choices
            .push(choice(&r.choice_start_over, &r.send_start_over));
    }
    decision
}

fn log_in(conv: &mut Conversation) -> Decision {
    conv.login_needed = true;
    Decision::LogIn(Reply {
        text: texts(conv.lang).login.clone(),
        ..Reply::default()
    })
}

/// Moves the pending request forward: asks what is missing, or acts.
fn advance(conv: &mut Conversation, ctx: &Context) -> Decision {
    let Some(pending) = conv.pending.clone() else {
        return reply(texts(conv.lang).help.clone(), help_choices(conv.lang));
    };
    match pending.intent {
        Intent::Search => {
            conv.clear();
            let slots = pending.slots;
            Decision::Execute(Action::Search {
                query: pending.query.filter(|_| slots.has_event()),
                city: slots.city,
                venue: slots.venue,
                date_from: slots.date_from.map(crate::format_date),
                date_to: slots.date_to.map(crate::format_date),
            })
        }
        Intent::EventDetails => with_event(conv, ctx, &pending.slots, false, |conv, event| {
            conv.clear();
            Decision::Execute(Action::EventDetails { event: event.id })
        }),
        Intent::Availability => with_event(conv, ctx, &pending.slots, true, |conv, event| {
            let seats = if event.numbered {
                pending.slots.seats.clone()
            } else {
                Vec::new()
            };
            conv.clear();
            Decision::Execute(Action::Availability {
                event: event.id,
                seats,
            })
        }),
        Intent::Book => with_event(conv, ctx, &pending.slots, true, |conv, event| {
            book(conv, ctx, event)
        }),
        Intent::Pay => pay(conv, ctx),
        Intent::MyTickets | Intent::MyOrders if !ctx.logged_in => log_in(conv),
        Intent::MyTickets => {
            conv.clear();
            Decision::Execute(Action::ListTickets)
        }
        Intent::MyOrders => {
            conv.clear();
            Decision::Execute(Action::ListOrders)
        }
        Intent::Refund => refund(conv, ctx, &pending.slots),
        Intent::CancelHold => cancel_hold(conv, ctx),
        _ => {
            conv.clear();
            reply(texts(conv.lang).help.clone(), help_choices(conv.lang))
        }
    }
}

/// Resolves the request's event, asks when it cannot, refuses past events when `upcoming` is
/// required, and otherwise continues with `then`.
fn with_event(
    conv: &mut Conversation,
    ctx: &Context,
    slots: &Slots,
    upcoming: bool,
    then: impl FnOnce(&mut Conversation, &CatalogEvent) -> Decision,
) -> Decision {
    match resolve(slots, ctx, upcoming) {
        Resolved::One(event) if upcoming && event.starts_at_ms < ctx.now_ms => {
            conv.clear();
            let lang = conv.lang;
            let view = EventView::of(event);
            reply(
                fill(
                    &texts(lang).past_event,
                    &[("event", &view.name), ("when", &view.when(lang))],
                ),
                Vec::new(),
            )
        }
        Resolved::One(event) => then(conv, event),
        Resolved::Several(ids) => ask_event(conv, ctx, ids, None),
        Resolved::NoneMatch => {
            let prefix = texts(conv.lang).no_events_match.clone();
            ask_event(conv, ctx, Vec::new(), Some(&prefix))
        }
        Resolved::Missing => ask_event(conv, ctx, Vec::new(), None),
    }
}

fn book(conv: &mut Conversation, ctx: &Context, event: &CatalogEvent) -> Decision {
    let lang = conv.lang;
    let r = texts(lang);
    let Some(pending) = conv.pending.as_mut() else {
        return reply(r.help.clone(), help_choices(lang));
    };
    pending.slots.event = Some(event.id);
    pending.slots.event_choices.clear();
    let slots = &mut pending.slots;
    if !event.numbered && !slots.seats.is_empty() {
        slots.seats.clear();
        if slots.quantity.is_none() {
            let prefix = fill(&r.no_seat_numbers, &[("event", &event.name)]);
            return ask_quantity(conv, Some(prefix));
        }
    }
    let quantity = if slots.seats.is_empty() {
        slots.quantity
    } else {
        u32::try_from(slots.seats.len()).ok()
    };
    let Some(quantity) = quantity.filter(|q| *q > 0) else {
        slots.quantity = None;
        return ask_quantity(conv, None);
    };
    if quantity > QUANTITY_MAX {
        slots.quantity = None;
        slots.seats.clear();
        let prefix = fill(&r.too_many, &[("max", &QUANTITY_MAX.to_string())]);
        return ask_quantity(conv, Some(prefix));
    }
    if !ctx.logged_in {
        return log_in(conv);
    }
    let action = Action::Hold {
        event: event.id,
        quantity,
        seats: slots.seats.clone(),
        best_available: slots.best_available,
        together: slots.together,
    };
    conv.clear();
    Decision::Execute(action)
}

/// Asks to confirm an action that costs or returns money.
fn confirm(conv: &mut Conversation, action: Action, ctx: &Context) -> Decision {
    let lang = conv.lang;
    let r = texts(lang);
    let text = match &action {
        Action::Pay { .. } => match ctx.hold {
            Some(hold) => {
                let view = EventView::lookup(ctx, hold.event);
                fill(
                    &r.confirm_pay,
                    &[
                        (
                            "total",
                            &format_money(lang, hold.total_cents, &hold.currency),
                        ),
                        ("tickets", &tickets_phrase(lang, hold.quantity)),
                        ("event", &view.name),
                        ("when", &view.when(lang)),
                        ("venue", &view.venue),
                        ("city", &view.city),
                    ],
                )
            }
            None => {
                conv.clear();
                return reply(r.no_hold.clone(), Vec::new());
            }
        },
        Action::Refund { ticket } => fill(&r.confirm_refund, &[("ticket", &ticket.to_string())]),
        Action::RefundEvent { event } => {
            let view = EventView::lookup(ctx, *event);
            fill(
                &r.confirm_refund_event,
                &[("event", &view.name), ("when", &view.when(lang))],
            )
        }
        _ => {
            conv.clear();
            return Decision::Execute(action);
        }
    };
    conv.pending = None;
    conv.question = None;
    conv.offered.clear();
    conv.awaiting = Some(action.clone());
    Decision::Confirm {
        action,
        reply: Reply {
            text,
            choices: yes_no(lang),
            cards: Vec::new(),
        },
    }
}

/// Executes a confirmed action, after checking it still makes sense.
fn confirmed(conv: &mut Conversation, action: Action, ctx: &Context) -> Decision {
    if !ctx.logged_in {
        conv.awaiting = Some(action);
        return log_in(conv);
    }
    let r = texts(conv.lang);
    if let Action::Pay { hold } = action {
        match ctx.hold {
            Some(open) if open.id == hold && open.expires_at_ms > ctx.now_ms => {}
            Some(open) if open.id == hold => {
                conv.clear();
                return reply(r.hold_expired.clone(), Vec::new());
            }
            _ => {
                conv.clear();
                return reply(r.no_hold.clone(), Vec::new());
            }
        }
    }
    conv.clear();
    Decision::Execute(action)
}

fn pay(conv: &mut Conversation, ctx: &Context) -> Decision {
    if !ctx.logged_in {
        return log_in(conv);
    }
    let r = texts(conv.lang);
    match ctx.hold {
        None => {
            conv.clear();
            reply(r.no_hold.clone(), Vec::new())
        }
        Some(hold) if hold.expires_at_ms <= ctx.now_ms => {
            conv.clear();
            reply(r.hold_expired.clone(), Vec::new())
        }
        Some(hold) => confirm(conv, Action::Pay { hold: hold.id }, ctx),
    }
}

fn refund(conv: &mut Conversation, ctx: &Context, slots: &Slots) -> Decision {
    if let Some(ticket) = slots.ticket {
        if !ctx.logged_in {
            return log_in(conv);
        }
        return confirm(conv, Action::Refund { ticket }, ctx);
    }
    match resolve(slots, ctx, false) {
        Resolved::One(event) => {
            if !ctx.logged_in {
                return log_in(conv);
            }
            confirm(conv, Action::RefundEvent { event: event.id }, ctx)
        }
        Resolved::Several(ids) => ask_event(conv, ctx, ids, None),
        Resolved::NoneMatch | Resolved::Missing => ask_ticket(conv),
    }
}

fn cancel_hold(conv: &mut Conversation, ctx: &Context) -> Decision {
    if !ctx.logged_in {
        return log_in(conv);
    }
    conv.clear();
    match ctx.hold {
        Some(hold) => Decision::Execute(Action::CancelHold { hold: hold.id }),
        None => reply(texts(conv.lang).no_hold.clone(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::understand::understand;

    const CATALOG: &str = include_str!("../eval/catalog.json");
    /// 2027-01-06T10:00:00Z, a Wednesday.
    const NOW_MS: i64 = 1_799_229_600_000;

    struct Chat {
        catalog: Catalog,
        conversation: Conversation,
        logged_in: bool,
        hold: Option<OpenHold>,
    }

    impl Chat {
        fn new(logged_in: bool) -> Chat {
            Chat {
                catalog: Catalog::from_json(CATALOG).unwrap(),
                conversation: Conversation::default(),
                logged_in,
                hold: None,
            }
        }

        fn say(&mut self, text: &str) -> Decision {
            let ctx = Context {
                logged_in: self.logged_in,
                hold: self.hold.as_ref(),
                catalog: &self.catalog,
                now_ms: NOW_MS,
            };
            let u = understand(text, &self.catalog, NOW_MS);
            let decision = step(&mut self.conversation, u, &ctx);
            // The state stays small and survives a round trip through JSON.
            let json = serde_json::to_string(&self.conversation).unwrap();
            assert!(json.len() < 2_048, "{json}");
            assert_eq!(
                serde_json::from_str::<Conversation>(&json).unwrap(),
                self.conversation
            );
            decision
        }

        fn click(&mut self, decision: &Decision, index: usize) -> Decision {
            let reply = match decision {
                Decision::Reply(reply) | Decision::LogIn(reply) => reply,
                Decision::Ask { reply, .. } | Decision::Confirm { reply, .. } => reply,
                Decision::Execute(_) => panic!("nothing to click"),
            };
            let send = reply.choices[index].send.clone();
            self.say(&send)
        }
    }

    fn hold() -> OpenHold {
        OpenHold {
            id: 7,
            event: 1,
            seats: vec![48, 49],
            quantity: 2,
            total_cents: 17_800,
            currency: "EUR".to_string(),
            expires_at_ms: NOW_MS + 600_000,
        }
    }

    fn text(decision: &Decision) -> &str {
        match decision {
            Decision::Reply(reply) | Decision::LogIn(reply) => &reply.text,
            Decision::Ask { reply, .. } | Decision::Confirm { reply, .. } => &reply.text,
            Decision::Execute(_) => "",
        }
    }

    fn hold_action(event: u64, quantity: u32) -> Decision {
        Decision::Execute(Action::Hold {
            event,
            quantity,
            seats: Vec::new(),
            best_available: false,
            together: false,
        })
    }

    /// A complete request executes at once; holding needs no confirmation.
    #[test]
    fn books_in_one_message() {
        let mut chat = Chat::new(true);
        assert_eq!(
            chat.say("two tickets for the beethoven night"),
            hold_action(1, 2)
        );
        assert_eq!(chat.conversation.pending, None);
    }

    /// "2 tickets" → "For which event?" → "the arena one" → the hold.
    #[test]
    fn fills_the_event_over_turns() {
        let mut chat = Chat::new(true);
        let asked = chat.say("2 tickets");
        assert!(
            matches!(
                asked,
                Decision::Ask {
                    question: Question::Event,
                    ..
                }
            ),
            "{asked:?}"
        );
        assert_eq!(text(&asked), "For which event?");
        assert_eq!(chat.say("the arena one"), hold_action(2, 2));
    }

    /// An event without a quantity asks how many; a bare number answers.
    #[test]
    fn fills_the_quantity_over_turns() {
        let mut chat = Chat::new(true);
        let asked = chat.say("tickets for jazz im park");
        assert!(
            matches!(
                asked,
                Decision::Ask {
                    question: Question::Quantity,
                    ..
                }
            ),
            "{asked:?}"
        );
        assert_eq!(chat.say("3"), hold_action(3, 3));
    }

    /// An ambiguous name asks which one, with the candidates as choices; clicking one works.
    #[test]
    fn asks_on_ambiguity_and_clicks_work() {
        let mut chat = Chat::new(true);
        let asked = chat.say("2 tickets for beethoven");
        let Decision::Ask {
            question: Question::Event,
            reply,
        } = &asked
        else {
            panic!("{asked:?}");
        };
        assert_eq!(reply.choices.len(), 2);
        assert!(
            reply.choices[1]
                .label
                .starts_with("Beethoven Piano Sonatas: Fri 12 Mar 2027")
        );
        assert_eq!(chat.click(&asked, 1), hold_action(4, 2));
        // Answering by position works too.
        let _ = chat.say("2 tickets for beethoven");
        assert_eq!(chat.say("1"), hold_action(1, 2));
        // Or by ordinal.
        let _ = chat.say("2 tickets for beethoven");
        assert_eq!(chat.say("the second one"), hold_action(4, 2));
        // And by naming the place.
        let _ = chat.say("2 tickets for beethoven");
        assert_eq!(chat.say("the one in köln"), hold_action(4, 2));
    }

    /// Anonymous users may search and ask, but booking asks them to log in and resumes after.
    #[test]
    fn asks_to_log_in_and_resumes() {
        let mut chat = Chat::new(false);
        assert!(matches!(
            chat.say("what's on in berlin"),
            Decision::Execute(Action::Search { .. })
        ));
        assert!(matches!(
            chat.say("seats left for the arena concert?"),
            Decision::Execute(Action::Availability { event: 2, .. })
        ));
        let login = chat.say("2 tickets for the arena concert");
        assert!(matches!(login, Decision::LogIn(_)), "{login:?}");
        assert!(chat.conversation.login_needed);
        chat.logged_in = true;
        let catalog = chat.catalog.clone();
        let ctx = Context {
            logged_in: true,
            hold: None,
            catalog: &catalog,
            now_ms: NOW_MS,
        };
        assert_eq!(
            resume(&mut chat.conversation, &ctx),
            Some(hold_action(2, 2))
        );
        assert_eq!(resume(&mut chat.conversation, &ctx), None);
        let mut chat = Chat::new(false);
        assert!(matches!(chat.say("my tickets"), Decision::LogIn(_)));
        chat.logged_in = true;
        // Saying "ok" after logging in also resumes.
        assert_eq!(chat.say("ok"), Decision::Execute(Action::ListTickets));
    }

    /// Paying asks to confirm; "yes" executes, "no" drops it.
    #[test]
    fn confirms_payment() {
        let mut chat = Chat::new(true);
        chat.hold = Some(hold());
        let asked = chat.say("checkout");
        let Decision::Confirm {
            action: Action::Pay { hold: 7 },
            reply,
        } = &asked
        else {
            panic!("{asked:?}");
        };
        assert_eq!(
            reply.text,
            "Pay 178.00 EUR for 2 tickets for Beethoven Night (Fri 15 Jan 2027, 19:30, Tonhalle, Düsseldorf)?"
        );
        assert_eq!(
            chat.click(&asked, 0),
            Decision::Execute(Action::Pay { hold: 7 })
        );
        let _ = chat.say("pay with the test card");
        let no = chat.say("no");
        assert_eq!(text(&no), "Okay, I won't do that.");
        assert_eq!(chat.conversation.awaiting, None);
        assert_eq!(
            text(&chat.say("yes")),
            "There is nothing to confirm right now."
        );
        // Without a hold there is nothing to pay.
        chat.hold = None;
        assert_eq!(text(&chat.say("pay")), "You have no open hold.");
    }

    /// Confirming a payment whose hold expired meanwhile does not pay.
    #[test]
    fn expired_hold_is_not_paid() {
        let mut chat = Chat::new(true);
        chat.hold = Some(hold());
        let _ = chat.say("pay");
        chat.hold = Some(OpenHold {
            expires_at_ms: NOW_MS - 1,
            ..hold()
        });
        assert_eq!(
            text(&chat.say("yes")),
            "Your hold has expired and its tickets were released."
        );
    }

    /// Refunds are confirmed; by ticket or by event; without either, the ticket is asked.
    #[test]
    fn confirms_refunds() {
        let mut chat = Chat::new(true);
        let asked = chat.say("refund my ticket 12");
        assert!(
            matches!(
                asked,
                Decision::Confirm {
                    action: Action::Refund { ticket: 12 },
                    ..
                }
            ),
            "{asked:?}"
        );
        assert_eq!(
            chat.say("yes"),
            Decision::Execute(Action::Refund { ticket: 12 })
        );
        let asked = chat.say("refund my tickets for the beethoven night");
        assert!(
            matches!(
                asked,
                Decision::Confirm {
                    action: Action::RefundEvent { event: 1 },
                    ..
                }
            ),
            "{asked:?}"
        );
        let asked = chat.say("I want a refund");
        assert!(
            matches!(
                asked,
                Decision::Ask {
                    question: Question::Ticket,
                    ..
                }
            ),
            "{asked:?}"
        );
        assert!(matches!(
            chat.say("12"),
            Decision::Confirm {
                action: Action::Refund { ticket: 12 },
                ..
            }
        ));
    }

    /// Past events cannot be booked: a clear answer, no action.
    #[test]
    fn refuses_past_events() {
        let mut chat = Chat::new(true);
        let answer = chat.say("2 tickets for the new year gala");
        assert_eq!(
            text(&answer),
            "New Year Gala took place on Fri 1 Jan 2027, 20:00; it can't be booked any more."
        );
        assert_eq!(chat.conversation.pending, None);
        // Its details may still be shown.
        assert_eq!(
            chat.say("when was the new year gala"),
            Decision::Execute(Action::EventDetails { event: 8 })
        );
    }

    /// "start over" forgets everything; unknown messages get the help text; a question is
    /// asked again after a message that answers nothing.
    #[test]
    fn starts_over_and_helps() {
        let mut chat = Chat::new(true);
        let _ = chat.say("2 tickets");
        let again = chat.say("hmm blorp");
        assert!(
            text(&again).starts_with("Sorry, I didn't get that. For which event?"),
            "{}",
            text(&again)
        );
        let _ = chat.say("start over");
        assert_eq!(chat.conversation.pending, None);
        let help = chat.say("tell me a joke");
        assert!(
            text(&help).starts_with("Sorry, I didn't understand that. I can find events"),
            "{}",
            text(&help)
        );
        // A new request replaces a pending question.
        let _ = chat.say("2 tickets");
        assert!(matches!(
            chat.say("what's on in hamburg?"),
            Decision::Execute(Action::Search { .. })
        ));
    }

    /// Too many tickets, and seat numbers for general admission, are asked about again.
    #[test]
    fn checks_quantities_and_seats() {
        let mut chat = Chat::new(true);
        let asked = chat.say("50 tickets for the arena concert");
        assert_eq!(
            text(&asked),
            "At most 10 tickets per order. How many tickets?"
        );
        assert_eq!(chat.say("4"), hold_action(2, 4));
        let asked = chat.say("book seat 48 for jazz im park");
        assert_eq!(
            text(&asked),
            "Jazz im Park has no numbered seats. How many tickets?"
        );
        let seats = chat.say("seats 48 and 49 for the beethoven night, together");
        assert_eq!(
            seats,
            Decision::Execute(Action::Hold {
                event: 1,
                quantity: 2,
                seats: vec![48, 49],
                best_available: false,
                together: true
            })
        );
    }

    /// Giving up the hold needs one; German replies come from the German data.
    #[test]
    fn cancels_holds_in_german() {
        let mut chat = Chat::new(true);
        let answer = chat.say("Reservierung stornieren");
        assert_eq!(text(&answer), "Du hast keine offene Reservierung.");
        chat.hold = Some(hold());
        assert_eq!(
            chat.say("Reservierung stornieren"),
            Decision::Execute(Action::CancelHold { hold: 7 })
        );
        let asked = chat.say("zwei Karten");
        assert_eq!(text(&asked), "Für welche Veranstaltung?");
        // A short answer keeps the conversation's language.
        let asked = chat.say("bezahlen");
        assert!(
            text(&asked)
                .starts_with("178,00 EUR für 2 Tickets für Beethoven Night (Fr. 15. Jan. 2027"),
            "{}",
            text(&asked)
        );
        assert!(matches!(
            chat.say("ok"),
            Decision::Execute(Action::Pay { hold: 7 })
        ));
        assert_eq!(chat.conversation.lang, Lang::DE);
    }

    /// Every event's choice text, sent back, picks that event (clicking works for all).
    #[test]
    fn every_event_choice_picks_its_event() {
        let mut chat = Chat::new(true);
        let ctx_catalog = chat.catalog.clone();
        let ctx = Context {
            logged_in: true,
            hold: None,
            catalog: &ctx_catalog,
            now_ms: NOW_MS,
        };
        for event in ctx_catalog.events() {
            for lang in Lang::all() {
                let choice = event_choice(lang, &ctx, event);
                chat.conversation = Conversation::new(lang);
                let _ = chat.say(if lang == Lang::DE {
                    "Details bitte"
                } else {
                    "details please"
                });
                assert_eq!(chat.conversation.question, Some(Question::Event));
                chat.conversation.offered = ctx_catalog.events().iter().map(|e| e.id).collect();
                let decision = chat.say(&choice.send);
                assert_eq!(
                    decision,
                    Decision::Execute(Action::EventDetails { event: event.id }),
                    "{}",
                    choice.send
                );
            }
        }
    }

    /// A conversation read back with oversized lists is cut to its limits before use.
    #[test]
    fn clamps_stored_state() {
        let mut chat = Chat::new(true);
        chat.conversation.offered = (1..=1_000).collect();
        chat.conversation.pending = Some(Pending {
            intent: Intent::Book,
            slots: Slots {
                seats: (1..=1_000).collect(),
                ..Slots::default()
            },
            query: Some("x".repeat(10_000)),
        });
        chat.conversation.question = Some(Question::Quantity);
        let _ = chat.say("blorp");
        assert!(chat.conversation.offered.len() <= CHOICES_MAX);
        let pending = chat.conversation.pending.as_ref().unwrap();
        assert!(pending.slots.seats.len() <= SEATS_PER_MESSAGE_MAX);
        assert!(pending.query.as_ref().unwrap().chars().count() <= QUERY_CHARS_MAX);
    }

    /// A venue or city alone resolves to its event when it has one, else asks among them.
    #[test]
    fn resolves_events_by_place() {
        let mut chat = Chat::new(true);
        assert_eq!(
            chat.say("when is the concert at the tonhalle"),
            Decision::Execute(Action::EventDetails { event: 1 })
        );
        let asked = chat.say("2 tickets for something in köln");
        let Decision::Ask { reply, .. } = &asked else {
            panic!("{asked:?}")
        };
        assert_eq!(reply.choices.len(), 2);
    }
}
