//! The box office: direct purchases with idempotent retries, linearizable availability, and the
//! sales export used to verify a benchmark run.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tix_core::{Command, CustomerKey, EventId, IdempotencyKey, Rejection, Replayable, Sale};

use tix_core::waiting::client_visitor;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Caller};
use crate::openapi as api_doc;
use crate::queue;
use crate::views;

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/purchases", post(purchase))
        .route("/events/{id}/availability", get(availability))
        .route("/events/{id}/sales", get(sales))
        .route("/purchases/batch", post(purchase_batch))
}

/// One box-office sale. `(event, client_id, request_id)` is the idempotency key: repeat the
/// same request to retry it safely. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"client_id": "alice", "request_id": "r1", "seat": 17}))]
pub struct PurchaseBody {
    /// Who is buying (a box-office terminal, a reseller, a buyer): 1 to 128 bytes of UTF-8, no
    /// control or text-direction characters. It is also the customer that the event's
    /// `per_customer_max` counts.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]+$",
        example = "alice"
    )]
    pub client_id: String,
    /// The client's own id for this request, 1 to 128 bytes of UTF-8, no control or
    /// text-direction characters. Reuse it (with the same `seat`) only to retry; use a new one
    /// for a new sale.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]+$",
        example = "r1"
    )]
    pub request_id: String,
    /// Numbered events only: the seat to sell, 1 to the event's seats. Omit it (or send
    /// `null`) to get the lowest-numbered free seat. A seat for a general-admission event is a
    /// 422.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000, example = 17)]
    pub seat: Option<u32>,
}

/// Who sells: the authenticated caller of the API, or the account a node's RabbitMQ intake
/// sells as. Purchases are authorized for a seller exactly the same way on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seller {
    /// The account.
    pub user_id: tix_core::UserId,
    /// Whether it is an admin (may sell for every event).
    pub admin: bool,
}

impl From<&Caller> for Seller {
    fn from(caller: &Caller) -> Seller {
        Seller {
            user_id: caller.user_id,
            admin: caller.is_admin(),
        }
    }
}

/// Checks that the seller may sell for this event: its organizer or an admin. Returns the
/// event's numbered seats (0 for general admission).
pub(crate) async fn may_sell(
    state: &AppState,
    seller: Seller,
    event_id: EventId,
) -> Result<u32, ApiError> {
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
    if !(seller.admin || organizer == seller.user_id) {
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
    let outcome = match state
        .propose_for::<Replayable<Result<Sale, Rejection>>>(command)
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return (Err(e), false),
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

/// Sell one ticket at the box office (its organizer, admins)
///
/// Sells one ticket directly, without hold or payment: the box-office contract used by
/// terminals, resellers and the benchmark. For a numbered event, name a `seat` or omit it to
/// get the lowest-numbered free seat. The sale is committed to the replicated log (fsynced on
/// a majority) before the answer.
///
/// **Idempotency:** the key is `(event, client_id, request_id)`; keys are scoped per event, so
/// the same `client_id`/`request_id` may be used again for another event. Sending the same key
/// with the same parameters again (a retry after a timeout or a lost connection) returns the
/// recorded answer, with the same ticket, and the header `Idempotent-Replayed: true`; nothing
/// is sold twice. A refusal is recorded too: retrying a request that was answered `sold_out`
/// answers `sold_out` again (flagged as replayed) even if a ticket was freed meanwhile; use a
/// new `request_id` for a new attempt. The same key with other parameters (another `seat`, or
/// a seat where there was none) is refused with 422 `idempotency_key_reused`. Keys are
/// remembered for 24 hours of log time.
#[utoipa::path(post, path = "/api/v1/events/{id}/purchases", tag = "box office",
    operation_id = "purchase",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam, api_doc::AdmissionHeaders),
    request_body(content = PurchaseBody,
        description = "Who buys, the idempotency key, and optionally the seat.",
        examples(
            ("numbered" = (summary = "A chosen seat",
                value = json!({"client_id": "alice", "request_id": "r1", "seat": 17}))),
            ("best_available" = (summary = "Any seat / general admission",
                value = json!({"client_id": "alice", "request_id": "r2"}))),
        )),
    responses(
        (status = 201, description = "Sold. Also the answer to a retry of a request that sold, \
            then with `Idempotent-Replayed: true`.", body = views::PurchaseSold,
            links(
                ("getTicket" = (operation_id = "getTicket",
                    parameters(("id" = "$response.body#/ticket_id")))),
                ("refundTicket" = (operation_id = "refundTicket",
                    parameters(("id" = "$response.body#/ticket_id")))),
            ),
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the \
                recorded answer to an earlier request with the same key: nothing new was sold. \
                Absent on a fresh answer."))),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::SaleForbidden),
        (status = 404, response = api_doc::EventNotFound),
        (status = 409, response = api_doc::PurchaseRefused),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::PurchaseInvalid),
    ))]
async fn purchase(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<Response, ApiError> {
    let event_id = EventId(id);
    let seats = may_sell(&state, Seller::from(&caller), event_id).await?;
    let key_max = state.node.shared.read().limits().key_bytes_max as usize;
    validate_purchase(&body, seats, key_max)?;
    let visitor = client_visitor(&body.client_id);
    queue::admit(
        &state,
        event_id,
        queue::box_office_pass(&headers, &visitor)?,
    )?;
    run_purchase(&state, event_id, body).await
}

/// Availability counters
///
/// Returns capacity, sold, held and available for one event. Public. **Consistency:**
/// linearizable. Before reading, the node obtains a Raft read index (the leader confirms with a
/// quorum that it still leads) and waits until it has applied everything committed up to it,
/// so every sale acknowledged before this request started is counted. When that confirmation
/// cannot be had, the answer is 503.
#[utoipa::path(get, path = "/api/v1/events/{id}/availability", tag = "box office",
    operation_id = "getAvailability",
    params(api_doc::EventIdParam),
    responses(
        (status = 200, description = "The counters.", body = views::Availability),
        (status = 404, response = api_doc::EventNotFound),
    ))]
async fn availability(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<views::Availability>, ApiError> {
    state.node.ensure_linearizable().await?;
    let s = state.node.shared.read();
    let event = s.event(EventId(id)).ok_or(ApiError::NotFound("event"))?;
    Ok(Json(views::availability(event)))
}

/// Export sales as NDJSON (its organizer, admins)
///
/// Returns every active (sold and not refunded) ticket of the event, one JSON object per line
/// (`application/x-ndjson`, each line a `SaleLine`), in sale order. Used to verify a benchmark
/// run against the acknowledged purchases. **Consistency:** linearizable, like the
/// availability counters.
#[utoipa::path(get, path = "/api/v1/events/{id}/sales", tag = "box office",
    operation_id = "exportSales",
    security(("bearerAuth" = [])),
    params(api_doc::EventIdParam),
    responses(
        (status = 200, description = "One `SaleLine` JSON object per line, each line ending in \
            `\\n`; empty when nothing is sold.",
            content_type = "application/x-ndjson", body = String,
            example = json!("{\"client_id\":\"alice\",\"request_id\":\"r1\",\"seat\":17,\"ticket_id\":118}\n")),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 403, response = api_doc::SellerOnly),
        (status = 404, response = api_doc::EventNotFound),
    ))]
async fn sales(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let event_id = EventId(id);
    may_sell(&state, Seller::from(&caller), event_id).await?;
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to [`PURCHASE_BATCH_ITEMS_MAX`] purchases.
    #[schema(min_items = 1, max_items = 512)]
    pub purchases: Vec<BatchItem>,
}

/// One purchase of a batch: a [`PurchaseBody`] with its event. Only the shape is checked for
/// the whole batch; the values (the key's length and characters, the seat) are checked per
/// item, and an item that breaks a rule is answered 422 on its own.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// The event.
    #[schema(schema_with = api_doc::any_event_id)]
    pub event_id: u64,
    /// The buyer's client id (rules as for a single purchase).
    pub client_id: String,
    /// The client's id for this request (rules as for a single purchase).
    pub request_id: String,
    /// The seat, for a numbered event.
    #[serde(default)]
    #[schema(maximum = 4294967295_u64, format = Int64)]
    pub seat: Option<u32>,
    /// The buyer's admission token, for an event with a waiting room (the `token` from
    /// `POST /events/{id}/queue` for this `client_id`); not needed with
    /// `Tix-Waiting-Room: bypass` on the request. Longer than 200 characters: this item is
    /// answered 422 (like every item's field, checked item by item).
    #[serde(default)]
    pub admission: Option<String>,
}

/// Renders an error as a batch item: its problem body plus `status`.
fn item_error(e: &ApiError) -> serde_json::Value {
    let (status, mut body) = e.problem();
    body.insert("status".into(), json!(status.as_u16()));
    serde_json::Value::Object(body)
}

/// Sell many tickets at the box office in one request (the RabbitMQ workers' path)
///
/// Up to 512 box-office purchases, possibly for several events, in one request. Each item is
/// the body of `POST /events/{id}/purchases` plus its `event_id`, and is answered on its own,
/// in the order sent: `status` (201, 409, 422, 404, 403, 503 ...) plus exactly the body that
/// endpoint would have answered (a problem+json object for a refusal), and `replayed: true`
/// when the answer came from the idempotency record. The purchases travel together through the
/// proposer, so a batch usually becomes one log entry and one fsync. An item answered 503 was
/// not committed or its outcome is unknown: send it again under the same request id. The
/// caller must be allowed to sell for every event (its organizer or an admin); an item for
/// another event is answered 403 on its own. The `Tix-Leader` response header names the
/// current leader's API address, so a client can send its next batch there and save a
/// forwarding hop.
#[utoipa::path(post, path = "/api/v1/purchases/batch", tag = "box office",
    operation_id = "purchaseBatch",
    security(("bearerAuth" = [])),
    params(api_doc::AdmissionHeaders),
    request_body(content = BatchBody,
        example = json!({"purchases": [
            {"event_id": 1, "client_id": "alice", "request_id": "r1", "seat": 17},
            {"event_id": 1, "client_id": "bob", "request_id": "r1"}]})),
    responses(
        (status = 200, description = "Every item answered, in order.", body = views::BatchResults,
            headers(("Tix-Leader" = String,
                description = "The leader's API address (host:port), when known."))),
        (status = 400, response = api_doc::MalformedJson),
        (status = 401, response = api_doc::Unauthenticated),
        (status = 413, response = api_doc::PayloadTooLarge),
        (status = 415, response = api_doc::UnsupportedMediaType),
        (status = 422, response = api_doc::BatchInvalid),
    ))]
async fn purchase_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Response, ApiError> {
    let n = body.purchases.len();
    if n == 0 || n > PURCHASE_BATCH_ITEMS_MAX {
        return Err(ApiError::invalid(
            "purchases",
            format!("must hold 1 to {PURCHASE_BATCH_ITEMS_MAX} purchases (got {n})"),
        ));
    }
    // The bypass header holds for every item; without it each item passes on its own token.
    let bypass = matches!(queue::box_office_pass(&headers, "")?, queue::Pass::Bypass);
    let results = purchase_items(&state, Seller::from(&caller), body.purchases, bypass).await;
    let mut response = Json(json!({ "results": results })).into_response();
    if let Some((_, leader)) = state.node.leader()
        && let Ok(value) = HeaderValue::from_str(&leader.api_addr)
    {
        response.headers_mut().insert("tix-leader", value);
    }
    Ok(response)
}

/// Validates and commits many purchases for `seller`, each exactly as
/// `POST /events/{id}/purchases` would (authorization once per distinct event, then the key's
/// and seat's rules, then the proposer), and returns one answer per item, in order: `status`
/// plus the body that endpoint would answer, and `replayed: true` for a recorded answer. The
/// items go to the proposer together, so they usually share one log entry. Both
/// `POST /purchases/batch` and a node's RabbitMQ intake sell through here.
pub async fn purchase_items(
    state: &AppState,
    seller: Seller,
    items: Vec<BatchItem>,
    bypass_waiting_room: bool,
) -> Vec<serde_json::Value> {
    let key_max = state.node.shared.read().limits().key_bytes_max as usize;
    // Authorization and the event's shape are checked once per distinct event.
    let mut events: std::collections::BTreeMap<u64, Result<u32, serde_json::Value>> =
        std::collections::BTreeMap::new();
    for item in &items {
        if let std::collections::btree_map::Entry::Vacant(slot) = events.entry(item.event_id) {
            let check = may_sell(state, seller, EventId(item.event_id))
                .await
                .map_err(|e| item_error(&e));
            slot.insert(check);
        }
    }
    let commits = items.into_iter().map(|item| {
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
            if let Some(Err(e)) = item
                .admission
                .as_deref()
                .map(|t| queue::checked_token("admission", Some(t)))
            {
                return item_error(&e);
            }
            let visitor = client_visitor(&body.client_id);
            let pass = if bypass_waiting_room {
                queue::Pass::Bypass
            } else {
                queue::Pass::Visitor {
                    visitor: &visitor,
                    token: item.admission.as_deref(),
                }
            };
            if let Err(e) = queue::admit(&state, event_id, pass) {
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
    futures::future::join_all(commits).await
}
