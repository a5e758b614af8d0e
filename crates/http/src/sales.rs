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
        .route("/purchases/batch", post(purchase_batch))
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
        crate::text::check_text(field, value, false)?;
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

/// The most purchases in one `POST /purchases/batch` request.
pub const PURCHASE_BATCH_ITEMS_MAX: usize = 512;

/// Commits a purchase. Returns the 201 body of a sale or the refusal, and whether the answer
/// was replayed from the idempotency record.
pub async fn commit_purchase(
    state: &AppState,
    event_id: EventId,
    body: &PurchaseBody,
) -> (Result<serde_json::Value, ApiError>, bool) {
    let key = IdempotencyKey::new(body.client_id.clone(), body.request_id.clone());
    let customer = CustomerKey::Client(body.client_id.clone());
    let command = Command::Purchase {
        event_id,
        key,
        customer,
        seat: body.seat,
    };
    let outcome = match state.node.propose(command).await {
        Ok(Outcome::Purchase(outcome)) => outcome,
        Ok(other) => {
            let e = ApiError::Internal(format!("unexpected outcome {other:?}"));
            return (Err(e), false);
        }
        Err(e) => return (Err(e.into()), false),
    };
    let answer = match outcome.result {
        Ok(sale) => {
            metrics::counter!("tix_sales_total").increment(u64::from(!outcome.replayed));
            Ok(json!({
                "outcome": "sold",
                "event_id": event_id,
                "ticket_id": sale.ticket_id,
                "seat": sale.seat,
                "client_id": body.client_id,
                "request_id": body.request_id,
            }))
        }
        Err(rejection) => Err(ApiError::Rejected(rejection)),
    };
    (answer, outcome.replayed)
}

/// Runs a purchase command and renders the contract's response.
pub async fn run_purchase(
    state: &AppState,
    event_id: EventId,
    body: PurchaseBody,
) -> Result<Response, ApiError> {
    let (answer, replayed) = commit_purchase(state, event_id, &body).await;
    let mut response = match answer {
        Ok(sold) => (StatusCode::CREATED, Json(sold)).into_response(),
        // A reused key is the caller's mistake, not a recorded answer: no replay header.
        Err(e @ ApiError::Rejected(Rejection::KeyReused)) => return Err(e),
        Err(e @ ApiError::Rejected(_)) => e.into_response(),
        Err(e) => return Err(e),
    };
    if replayed {
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
    let history = state.node.shared.history()?;
    let mut body = String::new();
    for t in history.sales(event_id) {
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

/// Many box-office purchases, possibly for several events, in one request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to [`PURCHASE_BATCH_ITEMS_MAX`] purchases.
    pub purchases: Vec<BatchItem>,
}

/// One purchase of a batch: a [`PurchaseBody`] with its event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// The event.
    pub event_id: u64,
    /// The buyer's client id.
    pub client_id: String,
    /// The client's id for this request.
    pub request_id: String,
    /// The seat, for a numbered event.
    #[serde(default)]
    pub seat: Option<u32>,
}

/// Renders an error as a batch item: its problem body plus `status`.
fn item_error(e: &ApiError) -> serde_json::Value {
    let (status, mut body) = e.problem();
    body.insert("status".into(), json!(status.as_u16()));
    serde_json::Value::Object(body)
}

/// `POST /api/v1/purchases/batch`: the path of the RabbitMQ workers. Every item is answered
/// on its own — `status` plus the body `POST /events/{id}/purchases` would have answered — in
/// the order sent; the commands travel together through the proposer, so a batch usually
/// becomes one log entry. `Tix-Leader` names the leader's API address, so a client can send
/// its next batch there and save the follower's forwarding hop.
async fn purchase_batch(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Response, ApiError> {
    let n = body.purchases.len();
    if n == 0 || n > PURCHASE_BATCH_ITEMS_MAX {
        return Err(ApiError::invalid(
            "purchases",
            format!("must hold 1 to {PURCHASE_BATCH_ITEMS_MAX} purchases (got {n})"),
        ));
    }
    let key_max = state.node.shared.read().limits().key_bytes_max as usize;
    // Authorization and the event's shape are checked once per distinct event.
    let mut events: std::collections::BTreeMap<u64, Result<u32, serde_json::Value>> =
        std::collections::BTreeMap::new();
    for item in &body.purchases {
        if let std::collections::btree_map::Entry::Vacant(slot) = events.entry(item.event_id) {
            let check = may_sell(&state, &caller, EventId(item.event_id))
                .await
                .map_err(|e| item_error(&e));
            slot.insert(check);
        }
    }
    let commits = body.purchases.into_iter().map(|item| {
        let check = events[&item.event_id].clone();
        let state = state.clone();
        async move {
            let seats = match check {
                Ok(seats) => seats,
                Err(problem) => return problem,
            };
            let event_id = EventId(item.event_id);
            let body = PurchaseBody {
                client_id: item.client_id,
                request_id: item.request_id,
                seat: item.seat,
            };
            if let Err(e) = validate_purchase(&body, seats, key_max) {
                return item_error(&e);
            }
            match commit_purchase(&state, event_id, &body).await {
                (Ok(mut sold), replayed) => {
                    sold["status"] = json!(201);
                    if replayed {
                        sold["replayed"] = json!(true);
                    }
                    sold
                }
                (Err(e), replayed) => {
                    let mut problem = item_error(&e);
                    if replayed {
                        problem["replayed"] = json!(true);
                    }
                    problem
                }
            }
        }
    });
    let results = futures::future::join_all(commits).await;
    let mut response = Json(json!({ "results": results })).into_response();
    if let Some((_, leader)) = state.node.leader()
        && let Ok(value) = HeaderValue::from_str(&leader.api_addr)
    {
        response.headers_mut().insert("tix-leader", value);
    }
    Ok(response)
}
