//! Replies: turns what the server reports after executing an action ([`ActionResult`]) into a
//! reply — plain text from the language's data (the caller escapes it; nothing here builds
//! HTML), structured [`Card`]s for a client to draw, and [`Choice`]s to click. Also the shared
//! formatting: dates ("Fri 15 Jan 2027, 19:30" / "Fr. 15. Jan. 2027, 19:30", in UTC), money
//! ("178.00 EUR" / "178,00 EUR"), counts ("1 ticket", "2 tickets") and seat lists.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::catalog::CatalogEvent;
use crate::dialogue::{Action, Context};
use crate::lang::{Lang, Replies};

/// The most cards (and text lines) one reply lists; the rest is summed up as "and N more".
pub const CARDS_MAX: usize = 20;
/// The most choices one reply offers.
pub const CHOICES_MAX: usize = 5;
/// The longest currency code shown, in characters.
const CURRENCY_CHARS_MAX: usize = 8;

/// Something to click: the label shown and the text sent back as the user's message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// What the button says.
    pub label: String,
    /// The message sent when it is clicked.
    pub send: String,
}

/// What a ticket is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Valid for entry.
    Valid,
    /// Refunded.
    Refunded,
    /// Used at the door.
    CheckedIn,
}

/// Structured content of a reply, for a client to draw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "card", rename_all = "snake_case")]
pub enum Card {
    /// An event, with its price and what is left when known.
    Event {
        /// The event's id.
        id: u64,
        /// Its name.
        name: String,
        /// Its venue.
        venue: String,
        /// Its city.
        city: String,
        /// When it starts, Unix milliseconds.
        starts_at_ms: i64,
        /// The ticket price, in minor units.
        #[serde(skip_serializing_if = "Option::is_none")]
        price_cents: Option<u64>,
        /// The price's currency.
        #[serde(skip_serializing_if = "Option::is_none")]
        currency: Option<String>,
        /// Tickets left.
        #[serde(skip_serializing_if = "Option::is_none")]
        tickets_left: Option<u32>,
    },
    /// A hold: seats kept for the user until it expires.
    Hold {
        /// The hold's id.
        hold: u64,
        /// The event's id.
        event: u64,
        /// The event's name.
        event_name: String,
        /// The seats held (empty for general admission).
        seats: Vec<u32>,
        /// How many tickets.
        quantity: u32,
        /// What paying costs, in minor units.
        total_cents: u64,
        /// The currency.
        currency: String,
        /// When the hold expires, Unix milliseconds.
        expires_at_ms: i64,
    },
    /// A ticket.
    Ticket {
        /// The ticket's id.
        ticket: u64,
        /// The event's id.
        event: u64,
        /// The event's name.
        event_name: String,
        /// The seat, for numbered events.
        #[serde(skip_serializing_if = "Option::is_none")]
        seat: Option<u32>,
        /// Valid, refunded or used.
        status: TicketStatus,
    },
    /// An order.
    Order {
        /// The order's id.
        order: u64,
        /// The event's id.
        event: u64,
        /// The event's name.
        event_name: String,
        /// How many tickets.
        tickets: u32,
        /// What it cost, in minor units.
        total_cents: u64,
        /// The currency.
        currency: String,
    },
    /// A refund receipt.
    Refund {
        /// The tickets refunded.
        tickets: Vec<u64>,
        /// The amount refunded, in minor units.
        amount_cents: u64,
        /// The currency.
        currency: String,
    },
}

/// What the assistant says: text, cards and choices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Plain text (the caller escapes it for HTML).
    pub text: String,
    /// Things to click.
    pub choices: Vec<Choice>,
    /// Structured content.
    pub cards: Vec<Card>,
}

/// An event found, with its offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOffer {
    /// The event.
    pub event: CatalogEvent,
    /// The ticket price, in minor units.
    pub price_cents: u64,
    /// The currency.
    pub currency: String,
    /// Tickets left.
    pub tickets_left: u32,
}

/// A ticket the user has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketInfo {
    /// The ticket's id.
    pub ticket: u64,
    /// The event's id.
    pub event: u64,
    /// The seat, for numbered events.
    pub seat: Option<u32>,
    /// Valid, refunded or used.
    pub status: TicketStatus,
}

/// An order the user made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInfo {
    /// The order's id.
    pub order: u64,
    /// The event's id.
    pub event: u64,
    /// How many tickets.
    pub tickets: u32,
    /// What it cost, in minor units.
    pub total_cents: u64,
    /// The currency.
    pub currency: String,
}

/// What happened when the server executed an [`Action`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ActionResult {
    /// A search's events (maybe none).
    EventsFound {
        /// The events, soonest first.
        events: Vec<EventOffer>,
    },
    /// One event's details.
    EventDetails {
        /// The event.
        offer: EventOffer,
    },
    /// What is left of an event, and which of the asked seats are free.
    Availability {
        /// The event's id.
        event: u64,
        /// Tickets left.
        tickets_left: u32,
        /// The asked seats that are free.
        seats_free: Vec<u32>,
        /// The asked seats that are taken.
        seats_taken: Vec<u32>,
    },
    /// Tickets held.
    Held {
        /// The hold's id.
        hold: u64,
        /// The event's id.
        event: u64,
        /// The seats held (empty for general admission).
        seats: Vec<u32>,
        /// How many tickets.
        quantity: u32,
        /// What paying costs, in minor units.
        total_cents: u64,
        /// The currency.
        currency: String,
        /// When the hold expires, Unix milliseconds.
        expires_at_ms: i64,
    },
    /// Fewer tickets left than asked for.
    NotEnoughLeft {
        /// The event's id.
        event: u64,
        /// Tickets left.
        tickets_left: u32,
    },
    /// Asked seats are taken.
    SeatsTaken {
        /// The event's id.
        event: u64,
        /// The taken seats.
        seats: Vec<u32>,
    },
    /// Nothing left.
    SoldOut {
        /// The event's id.
        event: u64,
    },
    /// The event is over.
    PastEvent {
        /// The event's id.
        event: u64,
    },
    /// Paid: the order and its tickets.
    Paid {
        /// The order's id.
        order: u64,
        /// The event's id.
        event: u64,
        /// The tickets issued.
        tickets: Vec<TicketInfo>,
        /// What it cost, in minor units.
        total_cents: u64,
        /// The currency.
        currency: String,
    },
    /// The user's tickets.
    Tickets {
        /// The tickets.
        tickets: Vec<TicketInfo>,
    },
    /// The user's orders.
    Orders {
        /// The orders.
        orders: Vec<OrderInfo>,
    },
    /// Refunded.
    Refunded {
        /// The tickets refunded.
        tickets: Vec<u64>,
        /// The amount, in minor units.
        amount_cents: u64,
        /// The currency.
        currency: String,
    },
    /// The ticket belongs to someone else.
    NotYourTicket {
        /// The ticket's id.
        ticket: u64,
    },
    /// The refund was refused by the event's rules.
    RefundRefused {
        /// The ticket's id.
        ticket: u64,
        /// Why, as the server names it: `not_refundable` (the event allows no refunds, or it
        /// has started), `already_refunded`, `already_checked_in`, or another code.
        reason: String,
    },
    /// There is no such ticket.
    NoSuchTicket {
        /// The ticket's id.
        ticket: u64,
    },
    /// The hold was given up.
    HoldCancelled {
        /// The hold's id.
        hold: u64,
    },
    /// The hold had expired.
    HoldExpired,
    /// There is no open hold.
    NoOpenHold,
    /// The payment provider declined.
    PaymentDeclined,
    /// Anything else went wrong (nothing internal is shown).
    Failed,
}

/// Fills `{name}` placeholders; unknown ones are left as they are.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(key);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn two_digits(value: u8) -> String {
    format!("{value:02}")
}

/// Returns a date and time as the language writes it ("Fri 15 Jan 2027, 19:30"), read as UTC
/// (pass a venue-local clock reading for the venue's time).
pub(crate) fn format_when(lang: Lang, at_ms: i64) -> String {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(at_ms.div_euclid(1_000)) else {
        return "?".to_string();
    };
    let format = &lang.data().format;
    let weekday = usize::from(at.weekday().number_days_from_monday());
    let month = usize::from(u8::from(at.month())) - 1;
    fill(
        &format.date_time,
        &[
            ("weekday", &format.weekdays[weekday]),
            ("day", &at.day().to_string()),
            ("month", &format.months[month]),
            ("year", &at.year().to_string()),
            ("hour", &two_digits(at.hour())),
            ("minute", &two_digits(at.minute())),
        ],
    )
}

/// Returns a clock time ("10:15"), in UTC.
pub(crate) fn format_time(lang: Lang, at_ms: i64) -> String {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(at_ms.div_euclid(1_000)) else {
        return "?".to_string();
    };
    fill(
        &lang.data().format.time,
        &[
            ("hour", &two_digits(at.hour())),
            ("minute", &two_digits(at.minute())),
        ],
    )
}

/// Returns an amount ("1,234.50 EUR" / "1.234,50 EUR").
pub(crate) fn format_money(lang: Lang, cents: u64, currency: &str) -> String {
    let format = &lang.data().format;
    let whole = (cents / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3 * format.group.len());
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push_str(&format.group);
        }
        grouped.push(digit);
    }
    let amount = format!("{grouped}{}{:02}", format.decimal, cents % 100);
    let currency: String = currency
        .chars()
        .filter(|c| !c.is_control())
        .take(CURRENCY_CHARS_MAX)
        .collect();
    fill(
        &format.money,
        &[("amount", &amount), ("currency", &currency)],
    )
}

/// Returns "1 ticket" / "2 tickets".
pub(crate) fn tickets_phrase(lang: Lang, count: u32) -> String {
    let replies = &lang.data().replies;
    let template = if count == 1 {
        &replies.tickets_one
    } else {
        &replies.tickets_other
    };
    fill(template, &[("count", &count.to_string())])
}

/// Returns "48", "48 and 49", "48, 49 and 50".
pub(crate) fn list_numbers<T: ToString>(lang: Lang, numbers: &[T]) -> String {
    let texts: Vec<String> = numbers
        .iter()
        .take(CARDS_MAX)
        .map(ToString::to_string)
        .collect();
    match texts.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{}{}{last}", rest.join(", "), lang.data().replies.list_and),
    }
}

/// How an event is named in a reply, whether or not the catalog knows it.
pub(crate) struct EventView {
    pub name: String,
    pub venue: String,
    pub city: String,
    /// The start on the venue's clock (see [`CatalogEvent::local_start_ms`]) and its zone label.
    pub local_start: Option<(i64, String)>,
}

impl EventView {
    pub fn of(event: &CatalogEvent) -> EventView {
        EventView {
            name: event.name.clone(),
            venue: event.venue.clone(),
            city: event.city.clone(),
            local_start: Some((event.local_start_ms(), event.zone_label.clone())),
        }
    }

    pub fn lookup(ctx: &Context, id: u64) -> EventView {
        match ctx.catalog.event(id) {
            Some(event) => EventView::of(event),
            None => EventView {
                name: format!("#{id}"),
                venue: String::new(),
                city: String::new(),
                local_start: None,
            },
        }
    }

    pub fn when(&self, lang: Lang) -> String {
        match &self.local_start {
            Some((ms, label)) if label.is_empty() => format_when(lang, *ms),
            Some((ms, label)) => format!("{} {label}", format_when(lang, *ms)),
            None => String::new(),
        }
    }

    /// "Beethoven Night: Fri 15 Jan 2027, 19:30, Tonhalle, Düsseldorf".
    pub fn line(&self, lang: Lang) -> String {
        fill(
            &lang.data().replies.event_line,
            &[
                ("event", &self.name),
                ("when", &self.when(lang)),
                ("venue", &self.venue),
                ("city", &self.city),
            ],
        )
    }
}

/// The reply texts of a language (shared with the dialogue policy).
pub(crate) fn texts(lang: Lang) -> &'static Replies {
    &lang.data().replies
}

/// A choice shown as `label` that sends `send` when clicked (shared with the dialogue policy).
pub(crate) fn choice(label: &str, send: &str) -> Choice {
    Choice {
        label: label.to_string(),
        send: send.to_string(),
    }
}

/// The choice that asks for an event by name; two events with one name are told apart by date.
pub(crate) fn event_choice(lang: Lang, ctx: &Context, event: &CatalogEvent) -> Choice {
    let view = EventView::of(event);
    let twins = ctx
        .catalog
        .events()
        .iter()
        .filter(|e| e.name == event.name)
        .count();
    let send = if twins > 1 {
        let date = crate::dates::today(event.local_start_ms());
        format!(
            "{} {:02}.{:02}.{}",
            event.name,
            date.day(),
            u8::from(date.month()),
            date.year()
        )
    } else {
        event.name.clone()
    };
    Choice {
        label: view.line(lang),
        send,
    }
}

fn event_card(offer: &EventOffer) -> Card {
    Card::Event {
        id: offer.event.id,
        name: offer.event.name.clone(),
        venue: offer.event.venue.clone(),
        city: offer.event.city.clone(),
        starts_at_ms: offer.event.starts_at_ms,
        price_cents: Some(offer.price_cents),
        currency: Some(offer.currency.clone()),
        tickets_left: Some(offer.tickets_left),
    }
}

fn book_choice(lang: Lang, name: &str) -> Choice {
    let r = texts(lang);
    choice(&r.choice_book, &fill(&r.send_book, &[("event", name)]))
}

fn hold_choices(lang: Lang) -> Vec<Choice> {
    let r = texts(lang);
    vec![
        choice(&r.choice_pay, &r.send_pay),
        choice(&r.choice_cancel_hold, &r.send_cancel_hold),
    ]
}

/// Appends "…and N more." when a list was cut.
fn more_line(lang: Lang, text: &mut String, total: usize) {
    if total > CARDS_MAX {
        text.push('\n');
        text.push_str(&fill(
            &texts(lang).more,
            &[("count", &(total - CARDS_MAX).to_string())],
        ));
    }
}

/// Returns the reply to an action's outcome.
pub fn render(lang: Lang, action: &Action, result: &ActionResult, ctx: &Context) -> Reply {
    let r = texts(lang);
    let event_name = |id: u64| EventView::lookup(ctx, id).name;
    let simple = |text: String| Reply {
        text,
        ..Reply::default()
    };
    match result {
        ActionResult::EventsFound { events } => render_events(lang, ctx, events),
        ActionResult::EventDetails { offer } => {
            let view = EventView::of(&offer.event);
            let text = fill(
                &r.event_details,
                &[
                    ("event", &view.name),
                    ("when", &view.when(lang)),
                    ("venue", &view.venue),
                    ("city", &view.city),
                    (
                        "price",
                        &format_money(lang, offer.price_cents, &offer.currency),
                    ),
                    ("tickets", &tickets_phrase(lang, offer.tickets_left)),
                ],
            );
            let upcoming = offer.event.starts_at_ms >= ctx.now_ms && offer.tickets_left > 0;
            let choices = if upcoming {
                vec![book_choice(lang, &view.name)]
            } else {
                Vec::new()
            };
            Reply {
                text,
                choices,
                cards: vec![event_card(offer)],
            }
        }
        ActionResult::Availability {
            event,
            tickets_left,
            seats_free,
            seats_taken,
        } => render_availability(
            lang,
            ctx,
            action,
            *event,
            *tickets_left,
            seats_free,
            seats_taken,
        ),
        ActionResult::Held {
            hold,
            event,
            seats,
            quantity,
            total_cents,
            currency,
            expires_at_ms,
        } => {
            let view = EventView::lookup(ctx, *event);
            let seats_text = if seats.is_empty() {
                String::new()
            } else {
                fill(&r.held_seats, &[("seats", &list_numbers(lang, seats))])
            };
            let text = fill(
                &r.held,
                &[
                    ("tickets", &tickets_phrase(lang, *quantity)),
                    ("event", &view.name),
                    ("when", &view.when(lang)),
                    ("venue", &view.venue),
                    ("city", &view.city),
                    ("seats", &seats_text),
                    ("total", &format_money(lang, *total_cents, currency)),
                    (
                        "expires",
                        &format!("{} UTC", format_time(lang, *expires_at_ms)),
                    ),
                ],
            );
            let card = Card::Hold {
                hold: *hold,
                event: *event,
                event_name: view.name,
                seats: seats.clone(),
                quantity: *quantity,
                total_cents: *total_cents,
                currency: currency.clone(),
                expires_at_ms: *expires_at_ms,
            };
            Reply {
                text,
                choices: hold_choices(lang),
                cards: vec![card],
            }
        }
        ActionResult::NotEnoughLeft {
            event,
            tickets_left: 0,
        }
        | ActionResult::SoldOut { event } => {
            simple(fill(&r.sold_out, &[("event", &event_name(*event))]))
        }
        ActionResult::NotEnoughLeft {
            event,
            tickets_left,
        } => simple(fill(
            &r.not_enough_left,
            &[
                ("event", &event_name(*event)),
                ("tickets", &tickets_phrase(lang, *tickets_left)),
            ],
        )),
        ActionResult::SeatsTaken { event, seats } => simple(fill(
            &r.seats_taken,
            &[
                ("event", &event_name(*event)),
                ("seats", &list_numbers(lang, seats)),
            ],
        )),
        ActionResult::PastEvent { event } => {
            let view = EventView::lookup(ctx, *event);
            simple(fill(
                &r.past_event,
                &[("event", &view.name), ("when", &view.when(lang))],
            ))
        }
        ActionResult::Paid {
            order,
            event,
            tickets,
            total_cents,
            currency,
        } => {
            let view = EventView::lookup(ctx, *event);
            let count = u32::try_from(tickets.len()).unwrap_or(u32::MAX);
            let text = fill(
                &r.paid,
                &[
                    ("order", &order.to_string()),
                    ("tickets", &tickets_phrase(lang, count)),
                    ("event", &view.name),
                    ("total", &format_money(lang, *total_cents, currency)),
                ],
            );
            let cards = tickets
                .iter()
                .take(CARDS_MAX)
                .map(|t| ticket_card(ctx, t))
                .collect();
            let choices = vec![choice(&r.choice_my_tickets, &r.send_my_tickets)];
            Reply {
                text,
                choices,
                cards,
            }
        }
        ActionResult::Tickets { tickets } => render_tickets(lang, ctx, tickets),
        ActionResult::Orders { orders } => render_orders(lang, ctx, orders),
        ActionResult::Refunded {
            tickets,
            amount_cents,
            currency,
        } => {
            let list = list_numbers(lang, tickets);
            let what_template = if tickets.len() == 1 {
                &r.refunded_one
            } else {
                &r.refunded_other
            };
            let what = fill(what_template, &[("list", &list)]);
            let text = fill(
                &r.refunded,
                &[
                    ("what", &what),
                    ("amount", &format_money(lang, *amount_cents, currency)),
                ],
            );
            let card = Card::Refund {
                tickets: tickets.clone(),
                amount_cents: *amount_cents,
                currency: currency.clone(),
            };
            Reply {
                text,
                choices: Vec::new(),
                cards: vec![card],
            }
        }
        ActionResult::NotYourTicket { ticket } => {
            simple(fill(&r.not_your_ticket, &[("ticket", &ticket.to_string())]))
        }
        ActionResult::RefundRefused { ticket, reason } => {
            let template = match reason.as_str() {
                "not_refundable" => &r.refund_not_refundable,
                "already_refunded" => &r.refund_already_refunded,
                "already_checked_in" => &r.refund_checked_in,
                _ => &r.failed,
            };
            simple(fill(template, &[("ticket", &ticket.to_string())]))
        }
        ActionResult::NoSuchTicket { ticket } => Reply {
            text: fill(&r.no_such_ticket, &[("ticket", &ticket.to_string())]),
            choices: vec![choice(&r.choice_my_tickets, &r.send_my_tickets)],
            cards: Vec::new(),
        },
        ActionResult::HoldCancelled { .. } => simple(r.hold_cancelled.clone()),
        ActionResult::HoldExpired => simple(r.hold_expired.clone()),
        ActionResult::NoOpenHold => simple(r.no_hold.clone()),
        ActionResult::PaymentDeclined => Reply {
            text: r.payment_declined.clone(),
            choices: hold_choices(lang),
            cards: Vec::new(),
        },
        ActionResult::Failed => simple(r.failed.clone()),
    }
}

fn render_events(lang: Lang, ctx: &Context, events: &[EventOffer]) -> Reply {
    let r = texts(lang);
    if events.is_empty() {
        return Reply {
            text: r.events_none.clone(),
            ..Reply::default()
        };
    }
    let mut text = r.events_found.clone();
    let mut cards = Vec::new();
    for offer in events.iter().take(CARDS_MAX) {
        let view = EventView::of(&offer.event);
        text.push('\n');
        text.push_str(&fill(
            &r.event_offer,
            &[
                ("line", &view.line(lang)),
                (
                    "price",
                    &format_money(lang, offer.price_cents, &offer.currency),
                ),
                ("tickets", &tickets_phrase(lang, offer.tickets_left)),
            ],
        ));
        cards.push(event_card(offer));
    }
    more_line(lang, &mut text, events.len());
    let choices = events
        .iter()
        .take(CHOICES_MAX)
        .map(|o| event_choice(lang, ctx, &o.event))
        .collect();
    Reply {
        text,
        choices,
        cards,
    }
}

fn render_availability(
    lang: Lang,
    ctx: &Context,
    action: &Action,
    event: u64,
    tickets_left: u32,
    seats_free: &[u32],
    seats_taken: &[u32],
) -> Reply {
    let r = texts(lang);
    let view = EventView::lookup(ctx, event);
    let asked_seats = matches!(action, Action::Availability { seats, .. } if !seats.is_empty());
    let mut lines = Vec::new();
    if asked_seats || !seats_free.is_empty() || !seats_taken.is_empty() {
        if !seats_free.is_empty() {
            lines.push(fill(
                &r.availability_free,
                &[
                    ("event", &view.name),
                    ("seats", &list_numbers(lang, seats_free)),
                ],
            ));
        }
        if !seats_taken.is_empty() {
            lines.push(fill(
                &r.availability_taken,
                &[("seats", &list_numbers(lang, seats_taken))],
            ));
        }
    }
    if lines.is_empty() {
        let line = if tickets_left == 0 {
            fill(&r.sold_out, &[("event", &view.name)])
        } else {
            fill(
                &r.availability_left,
                &[
                    ("event", &view.name),
                    ("tickets", &tickets_phrase(lang, tickets_left)),
                ],
            )
        };
        lines.push(line);
    }
    let choices = if tickets_left > 0 {
        vec![book_choice(lang, &view.name)]
    } else {
        Vec::new()
    };
    Reply {
        text: lines.join(" "),
        choices,
        cards: Vec::new(),
    }
}

fn status_text(lang: Lang, status: TicketStatus) -> &'static str {
    let r = texts(lang);
    match status {
        TicketStatus::Valid => &r.status_valid,
        TicketStatus::Refunded => &r.status_refunded,
        TicketStatus::CheckedIn => &r.status_checked_in,
    }
}

fn ticket_card(ctx: &Context, ticket: &TicketInfo) -> Card {
    Card::Ticket {
        ticket: ticket.ticket,
        event: ticket.event,
        event_name: EventView::lookup(ctx, ticket.event).name,
        seat: ticket.seat,
        status: ticket.status,
    }
}

fn render_tickets(lang: Lang, ctx: &Context, tickets: &[TicketInfo]) -> Reply {
    let r = texts(lang);
    if tickets.is_empty() {
        return Reply {
            text: r.tickets_none.clone(),
            ..Reply::default()
        };
    }
    let mut text = r.tickets_list.clone();
    for ticket in tickets.iter().take(CARDS_MAX) {
        let view = EventView::lookup(ctx, ticket.event);
        let seat = ticket
            .seat
            .map(|s| fill(&r.ticket_seat, &[("seat", &s.to_string())]))
            .unwrap_or_default();
        text.push('\n');
        text.push_str(&fill(
            &r.ticket_line,
            &[
                ("ticket", &ticket.ticket.to_string()),
                ("event", &view.name),
                ("when", &view.when(lang)),
                ("seat", &seat),
                ("status", status_text(lang, ticket.status)),
            ],
        ));
    }
    more_line(lang, &mut text, tickets.len());
    let cards = tickets
        .iter()
        .take(CARDS_MAX)
        .map(|t| ticket_card(ctx, t))
        .collect();
    Reply {
        text,
        choices: Vec::new(),
        cards,
    }
}

fn render_orders(lang: Lang, ctx: &Context, orders: &[OrderInfo]) -> Reply {
    let r = texts(lang);
    if orders.is_empty() {
        return Reply {
            text: r.orders_none.clone(),
            ..Reply::default()
        };
    }
    let mut text = r.orders_list.clone();
    let mut cards = Vec::new();
    for order in orders.iter().take(CARDS_MAX) {
        let view = EventView::lookup(ctx, order.event);
        text.push('\n');
        text.push_str(&fill(
            &r.order_line,
            &[
                ("order", &order.order.to_string()),
                ("tickets", &tickets_phrase(lang, order.tickets)),
                ("event", &view.name),
                (
                    "total",
                    &format_money(lang, order.total_cents, &order.currency),
                ),
            ],
        ));
        cards.push(Card::Order {
            order: order.order,
            event: order.event,
            event_name: view.name,
            tickets: order.tickets,
            total_cents: order.total_cents,
            currency: order.currency.clone(),
        });
    }
    more_line(lang, &mut text, orders.len());
    Reply {
        text,
        choices: Vec::new(),
        cards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    const CATALOG: &str = include_str!("../eval/catalog.json");
    const NOW_MS: i64 = 1_799_229_600_000;

    /// Event starts are said on the venue's clock with its zone, and the venue's day counts:
    /// 23:30 UTC on a Thursday is Friday 00:30 in Berlin.
    #[test]
    fn event_starts_are_said_in_the_venues_time() {
        let event = CatalogEvent {
            id: 1,
            name: "Late Show".into(),
            venue: "Tempodrom".into(),
            city: "Berlin".into(),
            // 2027-01-14T23:30:00Z, a Thursday.
            starts_at_ms: 1_799_969_400_000,
            utc_offset_s: 3_600,
            zone_label: "CET".into(),
            numbered: false,
        };
        assert_eq!(
            EventView::of(&event).when(Lang::EN),
            "Fri 15 Jan 2027, 00:30 CET"
        );
        assert_eq!(
            crate::dates::today(event.local_start_ms()),
            crate::dates::today(1_800_041_400_000)
        );
        // An older catalog without a zone reads as UTC, unlabelled.
        let utc = CatalogEvent {
            utc_offset_s: 0,
            zone_label: String::new(),
            ..event
        };
        assert_eq!(EventView::of(&utc).when(Lang::EN), "Thu 14 Jan 2027, 23:30");
    }

    /// Dates and money are written the way each language writes them.
    #[test]
    fn formats_dates_and_money() {
        // 2027-01-15T19:30:00Z
        let at = 1_800_041_400_000;
        assert_eq!(format_when(Lang::EN, at), "Fri 15 Jan 2027, 19:30");
        assert_eq!(format_when(Lang::DE, at), "Fr. 15. Jan. 2027, 19:30");
        assert_eq!(format_money(Lang::EN, 17_800, "EUR"), "178.00 EUR");
        assert_eq!(format_money(Lang::DE, 17_800, "EUR"), "178,00 EUR");
        assert_eq!(
            format_money(Lang::EN, 123_456_789, "EUR"),
            "1,234,567.89 EUR"
        );
        assert_eq!(
            format_money(Lang::DE, 123_456_789, "EUR"),
            "1.234.567,89 EUR"
        );
        assert_eq!(format_money(Lang::EN, 5, "EUR"), "0.05 EUR");
        assert_eq!(
            format_money(Lang::EN, u64::MAX, "EUR"),
            "184,467,440,737,095,516.15 EUR"
        );
        assert_eq!(format_when(Lang::EN, i64::MAX), "?");
        assert_eq!(tickets_phrase(Lang::EN, 1), "1 ticket");
        assert_eq!(tickets_phrase(Lang::DE, 2), "2 Tickets");
        assert_eq!(list_numbers(Lang::EN, &[48, 49, 50]), "48, 49 and 50");
        assert_eq!(list_numbers(Lang::DE, &[48, 49]), "48 und 49");
    }

    /// Placeholders fill; unknown or unclosed ones stay as written.
    #[test]
    fn fills_templates() {
        assert_eq!(fill("a {x} b {y} {", &[("x", "1")]), "a 1 b {y} {");
        assert_eq!(fill("{x}{x}", &[("x", "é")]), "éé");
        assert_eq!(fill("", &[]), "");
    }

    /// A hold renders with its total and expiry, in German too, and offers pay and cancel.
    #[test]
    fn renders_a_hold_in_both_languages() {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let ctx = Context {
            logged_in: true,
            hold: None,
            catalog: &catalog,
            now_ms: NOW_MS,
        };
        let action = Action::Hold {
            event: 1,
            quantity: 2,
            seats: vec![48, 49],
            best_available: false,
            together: false,
        };
        let result = ActionResult::Held {
            hold: 7,
            event: 1,
            seats: vec![48, 49],
            quantity: 2,
            total_cents: 17_800,
            currency: "EUR".to_string(),
            expires_at_ms: NOW_MS + 15 * 60_000,
        };
        let en = render(Lang::EN, &action, &result, &ctx);
        assert_eq!(
            en.text,
            "Held 2 tickets for Beethoven Night (Fri 15 Jan 2027, 19:30, Tonhalle, Düsseldorf), seats 48 and 49: 178.00 EUR. The hold expires at 10:15 UTC."
        );
        assert_eq!(en.choices.len(), 2);
        assert!(matches!(
            en.cards[0],
            Card::Hold {
                hold: 7,
                total_cents: 17_800,
                ..
            }
        ));
        let de = render(Lang::DE, &action, &result, &ctx);
        assert_eq!(
            de.text,
            "Reserviert: 2 Tickets für Beethoven Night (Fr. 15. Jan. 2027, 19:30, Tonhalle, Düsseldorf), Plätze 48 und 49: 178,00 EUR. Die Reservierung läuft um 10:15 UTC ab."
        );
        assert_eq!(de.choices[0].send, "bezahlen");
    }

    /// Every result renders without leftover placeholders, in every language.
    #[test]
    fn renders_every_result() {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let ctx = Context {
            logged_in: true,
            hold: None,
            catalog: &catalog,
            now_ms: NOW_MS,
        };
        let offer = EventOffer {
            event: catalog.event(3).unwrap().clone(),
            price_cents: 2_500,
            currency: "EUR".to_string(),
            tickets_left: 40,
        };
        let ticket = TicketInfo {
            ticket: 12,
            event: 1,
            seat: Some(48),
            status: TicketStatus::Valid,
        };
        let order = OrderInfo {
            order: 3,
            event: 1,
            tickets: 2,
            total_cents: 17_800,
            currency: "EUR".to_string(),
        };
        let results = [
            ActionResult::EventsFound {
                events: vec![offer.clone(); 25],
            },
            ActionResult::EventsFound { events: Vec::new() },
            ActionResult::EventDetails {
                offer: offer.clone(),
            },
            ActionResult::Availability {
                event: 1,
                tickets_left: 5,
                seats_free: vec![48],
                seats_taken: vec![49],
            },
            ActionResult::Availability {
                event: 1,
                tickets_left: 0,
                seats_free: Vec::new(),
                seats_taken: Vec::new(),
            },
            ActionResult::NotEnoughLeft {
                event: 1,
                tickets_left: 1,
            },
            ActionResult::NotEnoughLeft {
                event: 1,
                tickets_left: 0,
            },
            ActionResult::SeatsTaken {
                event: 1,
                seats: vec![48],
            },
            ActionResult::SoldOut { event: 99 },
            ActionResult::PastEvent { event: 8 },
            ActionResult::Paid {
                order: 3,
                event: 1,
                tickets: vec![ticket.clone()],
                total_cents: 8_900,
                currency: "EUR".to_string(),
            },
            ActionResult::Tickets {
                tickets: vec![ticket.clone()],
            },
            ActionResult::Tickets {
                tickets: Vec::new(),
            },
            ActionResult::Orders {
                orders: vec![order],
            },
            ActionResult::Orders { orders: Vec::new() },
            ActionResult::Refunded {
                tickets: vec![12],
                amount_cents: 8_900,
                currency: "EUR".to_string(),
            },
            ActionResult::NotYourTicket { ticket: 12 },
            ActionResult::RefundRefused {
                ticket: 12,
                reason: "not_refundable".to_string(),
            },
            ActionResult::RefundRefused {
                ticket: 12,
                reason: "already_checked_in".to_string(),
            },
            ActionResult::NoSuchTicket { ticket: 12 },
            ActionResult::HoldCancelled { hold: 7 },
            ActionResult::HoldExpired,
            ActionResult::NoOpenHold,
            ActionResult::PaymentDeclined,
            ActionResult::Failed,
        ];
        let action = Action::ListTickets;
        for lang in Lang::all() {
            for result in &results {
                let reply = render(lang, &action, result, &ctx);
                assert!(!reply.text.is_empty(), "{lang} {result:?}");
                assert!(
                    !reply.text.contains('{'),
                    "{lang} {result:?}: {}",
                    reply.text
                );
                assert!(reply.cards.len() <= CARDS_MAX);
                assert!(reply.choices.len() <= CHOICES_MAX);
            }
        }
        let many = render(Lang::EN, &action, &results[0], &ctx);
        assert!(many.text.ends_with("…and 5 more."), "{}", many.text);
        let refund = render(Lang::DE, &action, &results[15], &ctx);
        assert_eq!(refund.text, "Erstattet: Ticket 12, 89,00 EUR.");
    }
}
