//! The box office: direct purchases with idempotent retries, linearizable availability, and the
//! sales export used to verify a benchmark run.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tix_core::{Command, CustomerKey, EventId, IdempotencyKey, Outcome, Rejection};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::views;

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/purchases", post(purchase))
        .route("/events/{id}/availability", get(availability))
        .route("/events/{id}/sales", get(sales))
}

/// A box-office purchase.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    /// The buyer's client id.
    pub client_id: String,
    /// The client's id for this request; a retry reuses it.
    pub request_id: String,
    /// The seat, for a numbered event; omitted takes the best available seat.
    #[serde(default)]
    pub seat: Option<u32>,
}

/// Checks that the caller may sell for this event: its organizer or an admin.
async fn may_sell(state: &AppState, caller: &Caller, event_id: EventId) -> Result<u32, ApiError> {
    let found = state
        .read_fresh(|s| {
            let event = s.event(event_id)?;
            let seats = match &event.inventory {
                tix_core::Inventory::Numbered { seats, .. } => seats.len() as u32,
                tix_core::Inventory::Unnumbered { .. } => 0,
            };
            Some((event.organizer, seats))
        })
        .await;
    let (organizer, seats) = found.ok_or(ApiError::NotFound("event"))?;
    if !(caller.is_admin() || organizer == caller.user_id) {
        return Err(ApiError::Forbidden(
            "only the event's organizer or an admin may sell here",
        ));
    }
    Ok(seats)
}

/// Validates a purchase against the event's shape before anything is recorded.
pub fn validate_purchase(body: &PurchaseBody, seats: u32, key_max: usize) -> Result<(), ApiError> {
    for (field, value) in [
        ("client_id", &body.client_id),
        ("request_id", &body.request_id),
    ] {
        if value.is_empty() || value.len() > key_max {
            return Err(ApiError::invalid(
                field,
                format!("must be 1 to {key_max} bytes"),
            ));
        }
    }
    match (seats, body.seat) {
        (0, Some(_)) => Err(ApiError::invalid(
            "seat",
            "this event has no numbered seats",
        )),
        (n, Some(seat)) if seat == 0 || seat > n => Err(ApiError::invalid(
            "seat",
            format!("seat {seat} does not exist; seats are numbered 1 to {n}"),
        )),
        _ => Ok(()),
    }
}

/// Runs a purchase command and renders the contract's response.
pub async fn run_purchase(
    state: &AppState,
    event_id: EventId,
    body: PurchaseBody,
) -> Result<Response, ApiError> {
    let key = IdempotencyKey::new(body.client_id.clone(), body.request_id.clone());
    let customer = CustomerKey::Client(body.client_id.clone());
    let command = Command::Purchase {
        event_id,
        key,
        customer,
        seat: body.seat,
    };
    let outcome = match state.node.propose(command).await? {
        Outcome::Purchase(outcome) => outcome,
        other => return Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    };
    let mut response = match outcome.result {
        Ok(sale) => {
            metrics::counter!("tix_sales_total").increment(u64::from(!outcome.replayed));
            let body = json!({
                "outcome": "sold",
                "event_id": event_id,
                "ticket_id": sale.ticket_id,
                "seat": sale.seat,
                "client_id": body.client_id,
                "request_id": body.request_id,
            });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(Rejection::KeyReused) => {
            return Err(ApiError::Rejected(Rejection::KeyReused));
        }
        Err(rejection) => ApiError::Rejected(rejection).into_response(),
    };
    if outcome.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn purchase(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<Response, ApiError> {
    let event_id = EventId(id);
    let seats = may_sell(&state, &caller, event_id).await?;
    let key_max = state.node.shared.read().limits().key_bytes_max as usize;
    validate_purchase(&body, seats, key_max)?;
    run_purchase(&state, event_id, body).await
}

/// Linearizable: confirms leadership (read index) before reading, so a sale acknowledged
/// anywhere before this request started is counted.
async fn availability(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<views::Availability>, ApiError> {
    state.node.ensure_linearizable().await?;
    let s = state.node.shared.read();
    let event = s.event(EventId(id)).ok_or(ApiError::NotFound("event"))?;
    Ok(Json(views::availability(event)))
}

/// Linearizable, like availability. One JSON line per active ticket, in sale order.
async fn sales(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let event_id = EventId(id);
    may_sell(&state, &caller, event_id).await?;
    state.node.ensure_linearizable().await?;
    let s = state.node.shared.read();
    let mut body = String::new();
    for t in s.sales(event_id) {
        let (client_id, request_id) = match (&t.key, &t.customer) {
            (Some(k), _) => (k.client_id.clone(), k.request_id.clone()),
            (None, CustomerKey::User(u)) => (
                format!("user:{u}"),
                format!("order:{}", t.order_id.map(|o| o.0).unwrap_or(0)),
            ),
            (None, CustomerKey::Client(c)) => (c.clone(), String::new()),
        };
        let line = json!({
            "ticket_id": t.id,
            "client_id": client_id,
            "request_id": request_id,
            "seat": t.seat,
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
