//! The booking assistant's page (`/assistant`): the conversation as a transcript with a form
//! under it. Without JavaScript every message is a form post answered by a redirect back to the
//! page (post/redirect/get), each offered choice is a button of its own small form, and "log in
//! to continue" returns here with the conversation; with JavaScript (`static/shop.js`) the same
//! form is sent in the background and the transcript is replaced in place. Event pages carry a
//! small form that starts a conversation about that event.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tix_assistant::Card;

use super::{Nav, PageError, field, form_pairs, money, see_other, url_encode, when, when_local};
use crate::AppState;
use crate::assistant::{Line, converse};
use crate::error::ApiError;
use crate::extract::MaybeCaller;

pub fn routes() -> Router<AppState> {
    Router::new().route("/assistant", get(page).post(send))
}

/// A card as shown: a headline, a detail line and a link.
pub struct CardView {
    pub title: String,
    pub detail: String,
    pub link: Option<(String, String)>,
}

/// A transcript line as shown.
pub struct LineView {
    pub mine: bool,
    pub text: String,
    pub cards: Vec<CardView>,
    pub choices: Vec<tix_assistant::Choice>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/assistant.html")]
struct AssistantPage {
    nav: Nav,
    conversation: String,
    lines: Vec<LineView>,
    login_link: Option<String>,
    error: Option<String>,
    examples: Vec<&'static str>,
}

/// What a newcomer can try (shown on an empty conversation).
const EXAMPLES: [&str; 5] = [
    "What's on next month?",
    "2 tickets for the Beethoven night",
    "How many seats are left for the arena concert?",
    "What did I buy?",
    "Refund my ticket 12",
];

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    c: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Query(q): Query<PageQuery>,
) -> Response {
    let nav = Nav::of(caller.0.as_ref());
    let user = caller.0.as_ref().map(|c| c.user_id);
    // Without an id a signed-in user continues their latest conversation.
    let id =
        q.c.or_else(|| user.and_then(|u| state.assistant.latest_of(u)));
    let transcript = id
        .as_deref()
        .and_then(|id| state.assistant.transcript(id, user));
    let (conversation, lines, login_needed) = match transcript {
        Some(t) => (t.id, t.lines, t.login_needed),
        None => (String::new(), Vec::new(), false),
    };
    render(&state, nav, conversation, &lines, login_needed, None)
}

fn render(
    state: &AppState,
    nav: Nav,
    conversation: String,
    lines: &[Line],
    login_needed: bool,
    error: Option<String>,
) -> Response {
    let login_link = login_needed.then(|| {
        let back = format!("/assistant?c={conversation}");
        format!("/login?next={}", url_encode(&back))
    });
    let last = lines.len().saturating_sub(1);
    let lines = lines
        .iter()
        .enumerate()
        .map(|(i, l)| LineView {
            mine: l.from == "user",
            text: l.text.clone(),
            cards: l.cards.iter().map(|c| card_view(state, c)).collect(),
            choices: if i == last {
                l.choices.clone()
            } else {
                Vec::new()
            },
        })
        .collect();
    AssistantPage {
        nav,
        conversation,
        lines,
        login_link,
        error,
        examples: EXAMPLES.to_vec(),
    }
    .into_response()
}

/// A card as shown; an event's start is in its venue's time zone (read from the local state).
fn card_view(state: &AppState, card: &Card) -> CardView {
    match card {
        Card::Event {
            id,
            name,
            venue,
            city,
            starts_at_ms,
            price_cents,
            currency,
            tickets_left,
        } => {
            let zone = state
                .node
                .shared
                .read()
                .event_zone(tix_core::EventId(*id))
                .to_owned();
            let starts = when_local(*starts_at_ms, &zone);
            let mut detail = format!("{starts} · {venue}, {city}");
            if let (Some(p), Some(c)) = (price_cents, currency) {
                detail.push_str(&format!(" · {}", money(*p, c)));
            }
            if let Some(left) = tickets_left {
                detail.push_str(&format!(" · {left} left"));
            }
            CardView {
                title: name.clone(),
                detail,
                link: Some((format!("/events/{id}"), "View event".into())),
            }
        }
        Card::Hold {
            hold,
            event_name,
            seats,
            quantity,
            total_cents,
            currency,
            expires_at_ms,
            ..
        } => CardView {
            title: format!("Hold: {quantity} × {event_name}"),
            detail: format!(
                "{}{} · held until {}",
                seats_text(seats),
                money(*total_cents, currency),
                when(*expires_at_ms)
            ),
            link: Some((format!("/holds/{hold}"), "Pay on the checkout page".into())),
        },
        Card::Ticket {
            ticket,
            event: _,
            event_name,
            seat,
            status,
        } => CardView {
            title: format!("Ticket {ticket} · {event_name}"),
            detail: format!(
                "{}{}",
                seat.map(|s| format!("Seat {s} · ")).unwrap_or_default(),
                match status {
                    tix_assistant::TicketStatus::Valid => "valid",
                    tix_assistant::TicketStatus::Refunded => "refunded",
                    tix_assistant::TicketStatus::CheckedIn => "admitted",
                }
            ),
            link: Some((
                format!("/tickets#ticket-{ticket}"),
                "Show the ticket and its QR code".to_owned(),
            )),
        },
        Card::Order {
            order,
            event_name,
            tickets,
            total_cents,
            currency,
            ..
        } => CardView {
            title: format!("Order {order} · {event_name}"),
            detail: format!("{tickets} ticket(s) · {}", money(*total_cents, currency)),
            link: Some(("/tickets".into(), "My tickets".into())),
        },
        Card::Refund {
            tickets,
            amount_cents,
            currency,
        } => CardView {
            title: "Refund receipt".into(),
            detail: format!(
                "Ticket(s) {} · {} back to your card",
                tickets
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                money(*amount_cents, currency)
            ),
            link: None,
        },
    }
}

fn seats_text(seats: &[u32]) -> String {
    match seats {
        [] => String::new(),
        [one] => format!("Seat {one} · "),
        many => format!(
            "Seats {} · ",
            many.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn send(State(state): State<AppState>, caller: MaybeCaller, body: Bytes) -> Response {
    let form = form_pairs(&body);
    let conversation = field(&form, "c");
    let text = field(&form, "text");
    let nav = Nav::of(caller.0.as_ref());
    let id = (!conversation.is_empty()).then_some(conversation);
    match converse(&state, caller.0.as_ref(), id, text).await {
        Ok(exchange) => see_other(&format!("/assistant?c={}#last", exchange.conversation_id)),
        // A bad message is shown above the form, the conversation kept.
        Err(e @ (ApiError::Invalid { .. } | ApiError::TooManyMessages { .. })) => {
            let user = caller.0.as_ref().map(|c| c.user_id);
            let transcript = id.and_then(|id| state.assistant.transcript(id, user));
            let (conversation, lines, login_needed) = match transcript {
                Some(t) => (t.id, t.lines, t.login_needed),
                None => (String::new(), Vec::new(), false),
            };
            let message = match &e {
                ApiError::TooManyMessages { retry_after_s } => format!(
                    "You are sending messages faster than the assistant answers them; wait \
                     {retry_after_s} s."
                ),
                _ => format!(
                    "That message cannot be sent: the text {}.",
                    super::message_for(&e)
                ),
            };
            let mut response = render(
                &state,
                nav,
                conversation,
                &lines,
                login_needed,
                Some(message),
            );
            *response.status_mut() = e.problem().0;
            response
        }
        Err(e) => PageError::from_api(nav, e).into_response(),
    }
}
