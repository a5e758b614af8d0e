//! The shop's JSON API: holds, checkout (a saga over the payment provider), orders, tickets,
//! refunds and door check-in. Ownership is checked here (who may see or change what) and again
//! in the domain for holds and tickets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tix_core::{
    CheckInRejection, Command, CustomerKey, EventId, HoldId, HoldRequest, IdempotencyKey, Outcome,
    Rejection, Role, TicketId,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::payments::PaymentError;
use crate::views;

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/holds", post(place_hold))
        .route("/holds/{id}", get(get_hold).delete(release_hold))
        .route("/holds/{id}/checkout", post(checkout))
        .route("/orders", get(my_orders))
        .route("/tickets", get(my_tickets))
        .route("/tickets/{id}", get(get_ticket))
        .route("/tickets/{id}/refund", post(refund))
        .route("/checkins", post(check_in))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    request_id: String,
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    seats: Option<Vec<u32>>,
}

/// Places a hold for a signed-in customer; shared with the pages. The flag is true when the
/// answer is the recorded one of an earlier request with the same request id.
pub async fn hold(
    state: &AppState,
    caller: &Caller,
    event_id: EventId,
    request_id: String,
    request: HoldRequest,
) -> Result<(tix_core::HoldPlaced, bool), ApiError> {
    let key = IdempotencyKey::new(format!("user:{}", caller.user_id), request_id);
    let command = Command::PlaceHold {
        event_id,
        key,
        customer: caller.user_id,
        request,
        ttl_ms: state.config.hold_ttl_ms,
    };
    match state.node.propose(command).await? {
        Outcome::Hold(h) => Ok((h.result?, h.replayed)),
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

async fn place_hold(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<HoldBody>,
) -> Result<Response, ApiError> {
    let request = match (body.quantity, body.seats) {
        (Some(q), None) => HoldRequest::Quantity(q),
        (None, Some(seats)) => HoldRequest::Seats(seats),
        _ => {
            return Err(ApiError::invalid(
                "quantity",
                "give either quantity or seats",
            ));
        }
    };
    if body.request_id.is_empty() || body.request_id.len() > 128 {
        return Err(ApiError::invalid("request_id", "must be 1 to 128 bytes"));
    }
    let (placed, replayed) = hold(&state, &caller, EventId(id), body.request_id, request).await?;
    let body = match state.node.shared.read().hold(placed.hold_id) {
        Some(h) => views::hold(h),
        // A replay of a hold that was since paid for, released or expired.
        None => json!({"hold_id": placed.hold_id, "seats": placed.seats, "active": false}),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if replayed {
        let replayed = axum::http::HeaderValue::from_static("true");
        response
            .headers_mut()
            .insert("idempotent-replayed", replayed);
    }
    Ok(response)
}

async fn get_hold(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let s = state.node.shared.read();
    let hold = s.hold(HoldId(id)).filter(|h| h.customer == caller.user_id);
    Ok(Json(views::hold(hold.ok_or(ApiError::NotFound("hold"))?)))
}

/// Releases a hold; shared with the pages.
pub async fn release(state: &AppState, caller: &Caller, hold_id: HoldId) -> Result<(), ApiError> {
    let command = Command::ReleaseHold {
        hold_id,
        customer: caller.user_id,
    };
    match state.node.propose(command).await? {
        Outcome::Release(Ok(_)) => Ok(()),
        Outcome::Release(Err(Rejection::NotYours | Rejection::UnknownHold)) => {
            Err(ApiError::NotFound("hold"))
        }
        Outcome::Release(Err(r)) => Err(r.into()),
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    release(&state, &caller, HoldId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    card_number: String,
}

/// Pays for a hold and confirms it into an order. The saga: charge; if declined, release the
/// hold; if the confirm then fails (the hold lapsed meanwhile), refund the charge.
pub async fn pay(
    state: &AppState,
    caller: &Caller,
    hold_id: HoldId,
    card_number: &str,
) -> Result<tix_core::OrderConfirmed, ApiError> {
    let found = state
        .read_fresh(|s| {
            let hold = s.hold(hold_id).filter(|h| h.customer == caller.user_id)?;
            let event = s.event(hold.event_id)?;
            let amount = hold.price_cents * u64::from(hold.quantity);
            Some((amount, event.details.currency.clone()))
        })
        .await;
    let (amount, currency) = found.ok_or(ApiError::NotFound("hold"))?;
    let key = format!("hold-{hold_id}");
    let payment_ref = match state
        .payments
        .charge(&key, card_number, amount, &currency)
        .await
    {
        Ok(r) => r,
        Err(PaymentError::InvalidCard(detail)) => {
            return Err(ApiError::invalid("card_number", detail));
        }
        Err(PaymentError::Declined(reason)) => {
            release(state, caller, hold_id).await.ok();
            return Err(ApiError::PaymentDeclined(format!(
                "{reason}; the seats were released"
            )));
        }
        Err(PaymentError::Unavailable(detail)) => return Err(ApiError::Unavailable(detail)),
    };
    let command = Command::ConfirmHold {
        hold_id,
        customer: caller.user_id,
        payment_ref: payment_ref.clone(),
    };
    let outcome = state.node.propose(command).await;
    match outcome {
        Ok(Outcome::Confirm(Ok(order))) => Ok(order),
        Ok(Outcome::Confirm(Err(rejection))) => {
            if let Err(e) = state.payments.refund(&payment_ref, amount).await {
                tracing::error!(%payment_ref, error = %e, "refund after a failed confirm failed");
            }
            Err(match rejection {
                Rejection::UnknownHold => Rejection::HoldExpired.into(),
                other => other.into(),
            })
        }
        Ok(other) => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
        // The confirm may still commit; the charge stays so a committed order stays paid.
        Err(e) => Err(e.into()),
    }
}

async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> Result<Response, ApiError> {
    let order = pay(&state, &caller, HoldId(id), &body.card_number).await?;
    let body = match state.node.shared.history()?.order(order.order_id) {
        Some(o) => views::order(&o),
        None => json!({"order_id": order.order_id, "tickets": order.tickets}),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn my_orders(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let orders = state.node.shared.history()?.orders_of(caller.user_id);
    let orders: Vec<Value> = orders.iter().map(views::order).collect();
    Ok(Json(json!({"orders": orders})))
}

async fn my_tickets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let tickets = state.node.shared.history()?.tickets_of(caller.user_id);
    let tickets: Vec<Value> = tickets.iter().map(views::ticket).collect();
    Ok(Json(json!({"tickets": tickets})))
}

/// Returns true if the caller may see and manage a ticket of `event_id` owned by `owner`:
/// the owner, the event's organizer, or an admin.
fn may_manage(state: &AppState, caller: &Caller, owner: &CustomerKey, event_id: EventId) -> bool {
    if caller.is_admin() || *owner == CustomerKey::User(caller.user_id) {
        return true;
    }
    let s = state.node.shared.read();
    s.event(event_id)
        .is_some_and(|e| e.organizer == caller.user_id)
}

async fn get_ticket(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let ticket = state.read_fresh_history(|h| h.ticket(TicketId(id))).await?;
    let ticket = ticket.ok_or(ApiError::NotFound("ticket"))?;
    if !may_manage(&state, &caller, &ticket.customer, ticket.event_id) {
        return Err(ApiError::NotFound("ticket"));
    }
    Ok(Json(views::ticket(&ticket)))
}

/// Refunds a ticket: the owner within the event's policy; its organizer or an admin always.
pub async fn refund_ticket(
    state: &AppState,
    caller: &Caller,
    ticket_id: TicketId,
) -> Result<tix_core::Refunded, ApiError> {
    let ticket = state.read_fresh_history(|h| h.ticket(ticket_id)).await?;
    let ticket = ticket.ok_or(ApiError::NotFound("ticket"))?;
    if !may_manage(state, caller, &ticket.customer, ticket.event_id) {
        return Err(ApiError::NotFound("ticket"));
    }
    let is_owner = ticket.customer == CustomerKey::User(caller.user_id);
    let command = Command::Refund {
        ticket_id,
        by: caller.user_id,
        override_policy: !is_owner,
    };
    let refunded = match state.node.propose(command).await? {
        Outcome::Refund(result) => result?,
        other => return Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    };
    if let Some(payment_ref) = &refunded.payment_ref
        && let Err(e) = state
            .payments
            .refund(payment_ref, refunded.amount_cents)
            .await
    {
        tracing::error!(%payment_ref, error = %e, "payment refund failed; settle by hand");
    }
    Ok(refunded)
}

async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let refunded = refund_ticket(&state, &caller, TicketId(id)).await?;
    Ok(Json(json!({
        "ticket_id": refunded.ticket_id,
        "status": "refunded",
        "amount_cents": refunded.amount_cents,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckInBody {
    ticket_id: u64,
}

/// Admits a ticket at the door: staff anywhere, organizers at their own events, admins.
pub async fn admit(
    state: &AppState,
    caller: &Caller,
    ticket_id: TicketId,
) -> Result<tix_core::Admitted, ApiError> {
    // The role is checked before the ticket is looked up, so that an attendee cannot probe
    // which ticket ids exist.
    if caller.role == Role::Attendee {
        return Err(ApiError::Forbidden(
            "only door staff, the organizer or an admin may check in",
        ));
    }
    let event_id = state
        .read_fresh_history(|h| h.ticket(ticket_id).map(|t| t.event_id))
        .await?;
    let event_id = event_id.ok_or(ApiError::NotFound("ticket"))?;
    let allowed = match caller.role {
        Role::Admin | Role::Staff => true,
        Role::Organizer => state
            .node
            .shared
            .read()
            .event(event_id)
            .is_some_and(|e| e.organizer == caller.user_id),
        Role::Attendee => false,
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "only door staff, the organizer or an admin may check in",
        ));
    }
    match state
        .node
        .propose(Command::CheckIn {
            ticket_id,
            by: caller.user_id,
        })
        .await?
    {
        Outcome::CheckIn(Ok(admitted)) => Ok(admitted),
        Outcome::CheckIn(Err(CheckInRejection::AlreadyAdmitted { at_ms, by })) => {
            let by_name = state
                .node
                .shared
                .read()
                .user(by)
                .map(|u| u.username.clone());
            let mut extra = Map::new();
            extra.insert("at".into(), json!(views::rfc3339(at_ms as i64)));
            extra.insert("by".into(), json!(by_name));
            Err(ApiError::CheckInRefused {
                reason: "already_admitted",
                detail: format!(
                    "already admitted at {} by {}",
                    views::rfc3339(at_ms as i64),
                    by_name.unwrap_or_default()
                ),
                extra,
            })
        }
        Outcome::CheckIn(Err(CheckInRejection::Refunded)) => Err(ApiError::CheckInRefused {
            reason: "refunded",
            detail: "the ticket was refunded".into(),
            extra: Map::new(),
        }),
        Outcome::CheckIn(Err(CheckInRejection::UnknownTicket)) => Err(ApiError::NotFound("ticket")),
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CheckInBody>,
) -> Result<Json<Value>, ApiError> {
    let admitted = admit(&state, &caller, TicketId(body.ticket_id)).await?;
    Ok(Json(json!({
        "ticket_id": admitted.ticket_id,
        "admitted": true,
        "at": views::rfc3339(admitted.at_ms as i64),
    })))
}
