//! The shop's JSON API: holds, checkout (a saga over the payment provider), orders, tickets,
//! refunds and door check-in. Ownership is checked here (who may see or change what) and again
//! in the domain for holds and tickets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, json};
use tix_core::{
    CheckInRejection, Command, CustomerKey, EventId, HoldId, HoldPlaced, HoldRequest,
    IdempotencyKey, OrderConfirmed, Rejection, Replayable, Role, TicketId,
};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::openapi as api_doc;
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

/// What to reserve: give exactly one of `quantity` (any tickets; for a numbered event the
/// lowest-numbered free seats, of one price on a venue in sections), `seats` (these numbered
/// seats) or `best_available` (that many side by side). At most 10 tickets per hold. Unknown
/// fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldBody {
    /// Your id for this request, 1 to 128 bytes of UTF-8. With the event and your account it
    /// forms the idempotency key: repeat it only to retry the same request.
    #[schema(min_length = 1, max_length = 128, example = "hold-1")]
    request_id: String,
    /// How many tickets.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10, example = 2)]
    quantity: Option<u32>,
    /// Which seats (numbered events only), each at most once.
    #[serde(default)]
    #[schema(schema_with = api_doc::hold_seats)]
    seats: Option<Vec<u32>>,
    /// That many seats side by side in one row, the best available (numbered events only).
    #[serde(default)]
    best_available: Option<BestAvailableBody>,
}

/// "N together, best available": adjacent free seats in one row of a section (or anywhere),
/// front rows first, then closest to the row's centre; never split.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BestAvailableBody {
    /// How many seats, side by side.
    #[schema(minimum = 1, maximum = 10, example = 2)]
    quantity: u32,
    /// The section's name as the event lists it (case-insensitive); omitted or `null` is
    /// anywhere (the sections in the event's order).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 60, example = "Block A")]
    section: Option<String>,
}

/// Turns a hold body into the domain's request, resolving a section name against the event's
/// layout (fixed at creation, so the local state knows it once the event is known here).
fn hold_request(
    state: &AppState,
    event_id: EventId,
    body: HoldBody,
) -> Result<HoldRequest, ApiError> {
    match (body.quantity, body.seats, body.best_available) {
        (Some(q), None, None) => Ok(HoldRequest::Quantity(q)),
        (None, Some(seats), None) => Ok(HoldRequest::Seats(seats)),
        (None, None, Some(best)) => {
            let section = match best.section {
                None => None,
                Some(name) => Some(section_index(state, event_id, &name)?),
            };
            Ok(HoldRequest::BestAvailable {
                quantity: best.quantity,
                section,
            })
        }
        _ => Err(ApiError::invalid(
            "quantity",
            "give exactly one of quantity, seats and best_available",
        )),
    }
}

/// Returns the index of the event's section named `name`, or a 422 naming the field.
pub(crate) fn section_index(
    state: &AppState,
    event_id: EventId,
    name: &str,
) -> Result<u32, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(
            "best_available.section",
            "name a section, or leave section out for anywhere",
        ));
    }
    let s = state.node.shared.read();
    let event = s.event(event_id).ok_or(ApiError::NotFound("event"))?;
    let map = s
        .seat_map(event)
        .ok_or(ApiError::Rejected(Rejection::SeatNotApplicable))?;
    map.section_named(name).ok_or_else(|| {
        let names: Vec<&str> = map.sections.iter().map(|s| s.name).collect();
        let known = if names == [""] {
            "this event has one unnamed section; leave section out".to_owned()
        } else {
            format!("the sections are: {}", names.join(", "))
        };
        ApiError::invalid(
            "best_available.section",
            format!("no section named that; {known}"),
        )
    })
}

/// Places a hold for a signed-in customer; shared with the pages. The flag is true when the
/// answer is the recorded one of an earlier request with the same request id. When the event
/// has a waiting room the customer must be admitted: by `admission` (their token) when given,
/// else by their account's place in the queue.
pub async fn hold(
    state: &AppState,
    caller: &Caller,
    event_id: EventId,
    request_id: String,
    request: HoldRequest,
    admission: Option<&str>,
) -> Result<(tix_core::HoldPlaced, bool), ApiError> {
    let visitor = tix_core::waiting::account_visitor(caller.user_id);
    crate::queue::admit(
        state,
        event_id,
        crate::queue::Pass::Visitor {
            visitor: &visitor,
            token: admission,
        },
    )?;
    let key = IdempotencyKey::new(format!("user:{}", caller.user_id), request_id);
    let command = Command::PlaceHold {
        event_id,
        key,
        customer: caller.user_id,
        request,
        ttl_ms: state.config.hold_ttl_ms,
    };
    let h: Replayable<Result<HoldPlaced, Rejection>> = state.propose_for(command).await?;
    Ok((h.result?, h.replayed))
}

/// Reserve tickets while paying
///
/// Reserves tickets for the signed-in customer (any role) for 10 minutes by default; pay with
/// `POST /api/v1/holds/{id}/checkout` before `expires_at`, or the tickets go back on sale. At
/// most 10 tickets per hold and 5 active holds per account; held tickets count against the
/// event's `per_customer_max`.
///
/// **Idempotency:** the key is `(event, your account, request_id)`. Repeating a request with
/// the same `request_id` and the same `quantity`/`seats` returns the same hold (201, with
/// `Idempotent-Replayed: true`) instead of reserving more; with other parameters it is refused
/// with 422 `idempotency_key_reused`. Refusals are recorded and repeated too. Keys are
/// remembered for 24 hours of log time.
#[utoipa::path(post, path = "/api/v1/events/{id}/holds", tag = "shop", operation_id = "placeHold",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam, api_doc::AdmissionHeader),
    request_body(content = api_doc::HoldRequest, description = "What to reserve.",
        examples(
            ("seats" = (summary = "Chosen seats",
                value = json!({"request_id": "hold-1", "seats": [17, 18]}))),
            ("quantity" = (summary = "Any two tickets",
                value = json!({"request_id": "hold-2", "quantity": 2}))),
            ("best_available" = (summary = "Two together, best available in Block A",
                value = json!({"request_id": "hold-3",
                    "best_available": {"quantity": 2, "section": "Block A"}}))),
        )),
    responses(
        (status = 201, description = "Held (or the hold placed earlier by the same request).",
            body = views::PlacedHold,
            links(
                ("getHold" = (operation_id = "getHold",
                    parameters(("id" = "$response.body#/hold_id")))),
                ("checkout" = (operation_id = "checkout",
                    parameters(("id" = "$response.body#/hold_id")))),
                ("releaseHold" = (operation_id = "releaseHold",
                    parameters(("id" = "$response.body#/hold_id")))),
            ),
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the \
                recorded answer to an earlier request with the same request_id (the hold may \
                since have been paid for, released or expired; then `active` is false)."))),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::AdmissionRefused),
        (status = 404, response = api_doc::HoldEventNotFound),
        (status = 409, response = api_doc::HoldRefused),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::HoldInvalid),
    ))]
async fn place_hold(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath,
    ApiJson(mut body): ApiJson<HoldBody>,
) -> Result<Response, ApiError> {
    if body.request_id.is_empty() || body.request_id.len() > 128 {
        return Err(ApiError::invalid("request_id", "must be 1 to 128 bytes"));
    }
    let request_id = std::mem::take(&mut body.request_id);
    let request = hold_request(&state, EventId(id), body)?;
    let admission = crate::queue::admission_header(&headers)?;
    let (placed, replayed) =
        hold(&state, &caller, EventId(id), request_id, request, admission).await?;
    let body = match state.node.shared.read().hold(placed.hold_id) {
        Some(h) => views::PlacedHold::Active(views::hold(h)),
        // A replay of a hold that was since paid for, released or expired.
        None => views::PlacedHold::Past(views::PastHold {
            hold_id: placed.hold_id.0,
            seats: placed.seats,
            active: false,
        }),
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

/// One of your holds
///
/// Returns a hold of the caller. Holds of other accounts, paid, released and expired holds are
/// 404. Expired holds are removed when the next write is applied, so compare `expires_at` with
/// the clock. **Consistency:** a local read of this node's applied state; it may lag the leader
/// by an entry or two.
#[utoipa::path(get, path = "/api/v1/holds/{id}", tag = "shop", operation_id = "getHold",
    security(("bearerAuth" = [])),
    params(api_doc::HoldIdParam),
    responses(
        (status = 200, description = "The hold.", body = views::Hold),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 404, response = api_doc::HoldNotFound),
    ))]
async fn get_hold(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<views::Hold>, ApiError> {
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
    match state
        .propose_for::<Result<HoldId, Rejection>>(command)
        .await?
    {
        Ok(_) => Ok(()),
        Err(Rejection::NotYours | Rejection::UnknownHold) => Err(ApiError::NotFound("hold")),
        Err(r) => Err(r.into()),
    }
}

/// Release one of your holds
///
/// Gives the held tickets back for sale at once.
#[utoipa::path(delete, path = "/api/v1/holds/{id}", tag = "shop", operation_id = "releaseHold",
    security(("bearerAuth" = [])),
    params(api_doc::HoldIdParam),
    responses(
        (status = 204, description = "Released."),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 404, response = api_doc::HoldNotFound),
    ))]
async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    release(&state, &caller, HoldId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The card to charge.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    /// 12 to 19 digits (spaces and dashes are ignored) with a valid Luhn check digit. Test
    /// cards: `4242424242424242` is paid, `4000000000000002` is declined, `4000000000009995` is
    /// declined for insufficient funds; any other valid number is paid.
    #[schema(
        pattern = "^[ -]*(?:[0-9][ -]*){12,19}$",
        example = "4242 4242 4242 4242"
    )]
    card_number: String,
}

/// Pays for a hold and confirms it into an order. The saga: charge (a declined card leaves the
/// hold as it is, so the buyer can try another card until it expires); if the confirm then
/// fails (the hold lapsed meanwhile), refund the charge.
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
            return Err(ApiError::PaymentDeclined(format!(
                "{reason}; the tickets stay held until the hold expires: try another card"
            )));
        }
        Err(PaymentError::Unavailable(detail)) => return Err(ApiError::Unavailable(detail)),
    };
    let command = Command::ConfirmHold {
        hold_id,
        customer: caller.user_id,
        payment_ref: payment_ref.clone(),
    };
    match state
        .propose_for::<Result<OrderConfirmed, Rejection>>(command)
        .await
    {
        Ok(Ok(order)) => {
            // Committed: the confirmation mail is queued, never waited for.
            crate::notify::order_confirmed(state, caller.user_id, &order);
            Ok(order)
        }
        Ok(Err(rejection)) => {
            if let Err(e) = state.payments.refund(&payment_ref, amount).await {
                tracing::error!(%payment_ref, error = %e, "refund after a failed confirm failed");
            }
            Err(match rejection {
                Rejection::UnknownHold => Rejection::HoldExpired.into(),
                other => other.into(),
            })
        }
        // The confirm may still commit; the charge stays so a committed order stays paid.
        Err(e) => Err(e),
    }
}

/// Pay for a hold
///
/// Charges the card for the hold (the ticket price when the hold was placed × quantity) and
/// turns the hold into an order with one ticket per held unit. If the card is declined (402)
/// the hold stays until it expires, so another card can be tried; if the hold lapsed while
/// paying, the charge is refunded (409 `hold_expired`).
///
/// **Test cards** (built-in test payment provider): `4242424242424242` is paid,
/// `4000000000000002` is declined, `4000000000009995` is declined for insufficient funds; any
/// other number with a valid check digit is paid.
///
/// The charge is idempotent per hold. If the answer is 503 the order may still have been
/// confirmed: check `GET /api/v1/orders` before paying again.
#[utoipa::path(post, path = "/api/v1/holds/{id}/checkout", tag = "shop", operation_id = "checkout",
    security(("bearerAuth" = [])),
    params(api_doc::HoldIdParam),
    request_body(content = CheckoutBody, description = "The card to charge.",
        examples(
            ("paid" = (summary = "Paid", value = json!({"card_number": "4242424242424242"}))),
            ("declined" = (summary = "Declined",
                value = json!({"card_number": "4000000000000002"}))),
            ("no_funds" = (summary = "Insufficient funds",
                value = json!({"card_number": "4000000000009995"}))),
        )),
    responses(
        (status = 201, description = "Paid: the order and its tickets.", body = views::Order),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 402, response = api_doc::PaymentDeclined),
        (status = 404, response = api_doc::HoldNotFound),
        (status = 409, response = api_doc::HoldExpired),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::CheckoutInvalid),
    ))]
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> Result<Response, ApiError> {
    let order = pay(&state, &caller, HoldId(id), &body.card_number).await?;
    let body = match state.node.shared.history()?.order(order.order_id) {
        Some(o) => views::order(&o),
        // The confirm was applied here before `pay` returned.
        None => return Err(ApiError::Internal("confirmed order missing".into())),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Your orders
///
/// Returns the caller's paid orders, oldest first. **Consistency:** a local read of this node's
/// applied state; it may lag the leader by an entry or two.
#[utoipa::path(get, path = "/api/v1/orders", tag = "shop", operation_id = "listOrders",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The orders.", body = views::OrderList),
        (status = 401, response = api_doc::Unauthenticated),
    ))]
async fn my_orders(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<views::OrderList>, ApiError> {
    let orders = state.node.shared.history()?.orders_of(caller.user_id);
    let orders = orders.iter().map(views::order).collect();
    Ok(Json(views::OrderList { orders }))
}

/// Your tickets
///
/// Returns the caller's shop tickets, active and refunded, oldest first. Box-office sales
/// belong to a `client_id`, not to an account, and are not listed. **Consistency:** a local
/// read of this node's applied state; it may lag the leader by an entry or two.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "shop", operation_id = "listTickets",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The tickets.", body = views::TicketList),
        (status = 401, response = api_doc::Unauthenticated),
    ))]
async fn my_tickets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<views::TicketList>, ApiError> {
    let tickets = state.node.shared.history()?.tickets_of(caller.user_id);
    let tickets = tickets.iter().map(views::ticket).collect();
    Ok(Json(views::TicketList { tickets }))
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

/// A ticket
///
/// Returns a ticket to its owner, its event's organizer or an admin; to anyone else it is 404.
/// **Consistency:** a local read of this node's applied state (a ticket not found locally is
/// looked up again after a linearizable read).
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "shop", operation_id = "getTicket",
    security(("bearerAuth" = [])),
    params(api_doc::TicketIdParam),
    responses(
        (status = 200, description = "The ticket.", body = views::Ticket),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 404, response = api_doc::TicketNotFound),
    ))]
async fn get_ticket(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<views::Ticket>, ApiError> {
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
    let refunded = state
        .propose_for::<Result<tix_core::Refunded, Rejection>>(command)
        .await??;
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

/// Refund a ticket
///
/// Refunds a ticket and puts it back on sale. The owner may refund while the event is
/// refundable and has not started; the event's organizer and admins may refund any ticket of
/// the event at any time (box-office sales included). A shop ticket's price is paid back to the
/// card. No request body.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/refund", tag = "shop",
    operation_id = "refundTicket",
    security(("bearerAuth" = [])),
    params(api_doc::TicketIdParam),
    responses(
        (status = 200, description = "Refunded.", body = views::Refund),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 404, response = api_doc::TicketNotFound),
        (status = 409, response = api_doc::RefundRefused),
    ))]
async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<views::Refund>, ApiError> {
    let refunded = refund_ticket(&state, &caller, TicketId(id)).await?;
    Ok(Json(views::Refund {
        ticket_id: refunded.ticket_id.0,
        status: views::RefundStatus::Refunded,
        amount_cents: refunded.amount_cents,
    }))
}

/// The ticket presented at the door.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ticket_id": 41}))]
struct CheckInBody {
    /// The ticket id (the second number of its code).
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
    let command = Command::CheckIn {
        ticket_id,
        by: caller.user_id,
    };
    match state
        .propose_for::<Result<tix_core::Admitted, CheckInRejection>>(command)
        .await?
    {
        Ok(admitted) => Ok(admitted),
        Err(CheckInRejection::AlreadyAdmitted { at_ms, by }) => {
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
        Err(CheckInRejection::Refunded) => Err(ApiError::CheckInRefused {
            reason: "refunded",
            detail: "the ticket was refunded".into(),
            extra: Map::new(),
        }),
        Err(CheckInRejection::EventCancelled) => Err(ApiError::CheckInRefused {
            reason: "event_cancelled",
            detail: "event cancelled: the organizer cancelled this event; the ticket was refunded"
                .into(),
            extra: Map::new(),
        }),
        Err(CheckInRejection::UnknownTicket) => Err(ApiError::NotFound("ticket")),
    }
}

/// Admit a ticket at the door
///
/// Admits a ticket once. Staff may check in at any event, organizers at their own events,
/// admins anywhere. A second scan is refused with 409 `already_admitted`, saying when and by
/// whom.
#[utoipa::path(post, path = "/api/v1/checkins", tag = "door", operation_id = "checkIn",
    security(("bearerAuth" = [])),
    request_body(content = CheckInBody, description = "The ticket presented."),
    responses(
        (status = 200, description = "Admitted.", body = views::Admission),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::DoorOnly),
        (status = 404, response = api_doc::TicketNotFound),
        (status = 409, response = api_doc::CheckInRefused),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::CheckInInvalid),
    ))]
async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CheckInBody>,
) -> Result<Json<views::Admission>, ApiError> {
    let admitted = admit(&state, &caller, TicketId(body.ticket_id)).await?;
    Ok(Json(views::Admission {
        ticket_id: admitted.ticket_id.0,
        admitted: true,
        at: views::rfc3339(admitted.at_ms as i64),
    }))
}
