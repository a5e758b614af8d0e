//! My tickets: each with its signed code as a QR image (and as text), printable; a refund link
//! where the event allows it, below the code (away from what the door scans), to a page that
//! asks before refunding — the seat goes back on sale in the same log entry — and a receipt on
//! the tickets page afterwards.

use crate::error::ApiError;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tix_core::{TicketId, TicketStatus};

use super::{Nav, PageError, login_first, money, see_other, when, when_local};
use crate::AppState;
use crate::extract::MaybeCaller;
use crate::shop::refund_ticket;
use crate::ticket_code;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tickets", get(my_tickets))
        .route("/orders", get(my_orders))
        .route("/tickets/{id}/refund", get(confirm_refund).post(refund))
        .route("/tickets/{id}", get(ticket_pdf))
}

/// The printable ticket, `/tickets/{id}.pdf`: one A4 page with the event, the seat and the QR
/// code of the ticket's signed code (the one the door admits), for its owner only (404 for
/// anyone else, as for a ticket that does not exist) and only while it is valid.
async fn ticket_pdf(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(file): Path<String>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/tickets/{file}"));
    };
    let nav = Nav::of(Some(&c));
    let id = file
        .strip_suffix(".pdf")
        .and_then(|id| id.parse::<u64>().ok());
    let Some(id) = id else {
        return PageError::not_found(nav, "ticket").into_response();
    };
    let history = match state.node.shared.history() {
        Ok(history) => history,
        Err(e) => return PageError::from_api(nav, e.into()).into_response(),
    };
    let info = {
        let s = state.node.shared.read();
        history
            .ticket(TicketId(id))
            .filter(|t| t.customer == tix_core::CustomerKey::User(c.user_id))
            .filter(|t| t.status == TicketStatus::Active)
            .and_then(|t| {
                let e = s.event(t.event_id)?;
                Some(crate::notify::ticket_info(
                    e,
                    s.event_zone(e.id),
                    t.id,
                    t.seat,
                    &c.username,
                ))
            })
    };
    let Some(info) = info else {
        return PageError::not_found(nav, "ticket").into_response();
    };
    let pdf = tokio::task::spawn_blocking(move || tix_mail::tickets_pdf(&[info])).await;
    match pdf {
        Ok(pdf) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/pdf".to_owned(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"ticket-{id}.pdf\""),
                ),
            ],
            pdf,
        )
            .into_response(),
        Err(e) => PageError::from_api(nav, ApiError::Internal(e.to_string())).into_response(),
    }
}

/// A ticket as shown.
pub struct TicketView {
    pub id: u64,
    pub event_id: u64,
    pub event: String,
    pub when: String,
    pub venue: String,
    /// The seat in words: "seat 17", or "Block A, Row 3, Seat 8" in a venue of sections.
    pub seat: Option<String>,
    pub price: String,
    pub active: bool,
    /// Refunded because the organizer cancelled the event.
    pub cancelled: bool,
    pub refundable: bool,
    pub admitted: bool,
    pub code: String,
    pub qr_svg: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/tickets.html")]
struct TicketsPage {
    nav: Nav,
    tickets: Vec<TicketView>,
    notice: Option<String>,
}

fn tickets_of(state: &AppState, user: tix_core::UserId) -> Result<Vec<TicketView>, ApiError> {
    let s = state.node.shared.read();
    let mut out: Vec<TicketView> = state
        .node
        .shared
        .history()?
        .tickets_of(user)
        .into_iter()
        .filter_map(|t| {
            let e = s.event(t.event_id)?;
            let code = ticket_code::sign(&e.ticket_key_seed, e.id.0, t.id.0);
            let active = t.status == TicketStatus::Active;
            Some(TicketView {
                id: t.id.0,
                event_id: e.id.0,
                event: e.details.name.clone(),
                when: when_local(e.details.starts_at_ms, s.event_zone(e.id)),
                venue: e.details.venue.name.clone(),
                seat: t.seat.map(|n| match s.layout(e.id) {
                    Some(_) => s
                        .seat_map(e)
                        .map_or(format!("seat {n}"), |m| m.seat_name(n)),
                    None => format!("seat {n}"),
                }),
                price: money(t.price_cents, &e.details.currency),
                active,
                cancelled: matches!(t.status, TicketStatus::Cancelled { .. }),
                refundable: active && e.details.refundable && t.checked_in.is_none(),
                admitted: t.checked_in.is_some(),
                qr_svg: if active {
                    ticket_code::qr_svg(&code)
                } else {
                    String::new()
                },
                code,
            })
        })
        .collect();
    out.sort_by_key(|t| std::cmp::Reverse(t.id));
    Ok(out)
}

/// `?refunded=ID`: the tickets page shows the refund's receipt.
#[derive(serde::Deserialize)]
struct Refunded {
    #[serde(default)]
    refunded: Option<u64>,
}

async fn my_tickets(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Query(q): Query<Refunded>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/tickets");
    };
    let nav = Nav::of(Some(&c));
    match tickets_of(&state, c.user_id) {
        Ok(tickets) => {
            // The receipt of a refund just made: only for one of the caller's refunded tickets.
            let notice = q.refunded.and_then(|id| {
                let t = tickets.iter().find(|t| t.id == id && !t.active)?;
                Some(format!(
                    "Refund receipt: ticket {} for {} ({}{}), {} back to your card. The seat is \
                     on sale again.",
                    t.id,
                    t.event,
                    t.when,
                    t.seat
                        .as_ref()
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default(),
                    t.price
                ))
            });
            TicketsPage {
                nav,
                tickets,
                notice,
            }
            .into_response()
        }
        Err(e) => PageError::from_api(nav, e).into_response(),
    }
}

/// An order as shown in the order history.
pub struct OrderView {
    pub id: u64,
    pub event_id: u64,
    pub event: String,
    pub when: String,
    pub paid_at: String,
    pub tickets: usize,
    /// Tickets of the order refunded since.
    pub refunded: usize,
    /// Why the event was cancelled, when the organizer cancelled it (its tickets were refunded).
    pub cancelled: Option<String>,
    pub total: String,
    pub payment_ref: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/orders.html")]
struct OrdersPage {
    nav: Nav,
    orders: Vec<OrderView>,
}

/// The order history, newest first: what was paid, when, for which event, and how much of it
/// was refunded since.
async fn my_orders(State(state): State<AppState>, caller: MaybeCaller) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/orders");
    };
    let nav = Nav::of(Some(&c));
    let history = match state.node.shared.history() {
        Ok(h) => h,
        Err(e) => return PageError::from_api(nav, e.into()).into_response(),
    };
    let s = state.node.shared.read();
    let mut orders: Vec<OrderView> = history
        .orders_of(c.user_id)
        .iter()
        .filter_map(|o| {
            let e = s.event(o.event_id)?;
            let refunded = o
                .tickets
                .iter()
                .filter_map(|t| history.ticket(*t))
                .filter(|t| t.status != TicketStatus::Active)
                .count();
            Some(OrderView {
                id: o.id.0,
                event_id: e.id.0,
                event: e.details.name.clone(),
                when: when_local(e.details.starts_at_ms, s.event_zone(e.id)),
                paid_at: when(o.confirmed_at_ms as i64),
                tickets: o.tickets.len(),
                refunded,
                cancelled: s.cancellation(e.id).map(|c| c.reason.clone()),
                total: money(o.total_cents, &e.details.currency),
                payment_ref: o.payment_ref.clone(),
            })
        })
        .collect();
    drop(s);
    orders.sort_by_key(|o| std::cmp::Reverse(o.id));
    OrdersPage { nav, orders }.into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/refund.html")]
struct RefundPage {
    nav: Nav,
    ticket: TicketView,
}

/// Asks before refunding: which ticket, what comes back.
async fn confirm_refund(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/tickets/{id}/refund"));
    };
    let nav = Nav::of(Some(&c));
    let ticket = match tickets_of(&state, c.user_id) {
        Ok(tickets) => tickets.into_iter().find(|t| t.id == id),
        Err(e) => return PageError::from_api(nav, e).into_response(),
    };
    match ticket {
        Some(ticket) if ticket.refundable => RefundPage { nav, ticket }.into_response(),
        Some(_) => PageError {
            status: axum::http::StatusCode::CONFLICT,
            title: "Not refundable".into(),
            message: "This ticket was refunded already, was used at the door, or its event \
                      does not allow refunds."
                .into(),
            nav,
        }
        .into_response(),
        None => PageError::not_found(nav, "ticket of yours").into_response(),
    }
}

async fn refund(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/tickets");
    };
    let nav = Nav::of(Some(&c));
    match refund_ticket(&state, &c, TicketId(id)).await {
        Ok(_) => see_other(&format!("/tickets?refunded={id}")),
        Err(e) => PageError::from_api(nav, e).into_response(),
    }
}
