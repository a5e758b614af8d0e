//! Cancelling an event from the organizer's dashboard: a confirmation page that says what the
//! cancellation will undo (tickets refunded, holds released) and asks for the reason buyers
//! will read, then the cancellation itself (`events::cancel_event`, the API's own path: one log
//! entry) and a result page. Plain forms, no JavaScript; the form carries the session's CSRF
//! token and a request id drawn when the page was shown, so posting it twice is one
//! cancellation (the second post gets the first answer).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tix_core::{CANCEL_REASON_CHARS_MAX, EventId};

use super::form::{self, FormErrors};
use super::staff::event_owner;
use super::{Nav, PageError, field, form_pairs, money, when, when_local};
use crate::AppState;
use crate::error::ApiError;
use crate::events::{cancel_event, fresh_request_id};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/organizer/events/{id}/cancel",
        get(confirm_page).post(cancel),
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cancel_event.html")]
struct ConfirmPage {
    nav: Nav,
    id: u64,
    name: String,
    when: String,
    /// Active tickets the cancellation refunds.
    tickets: u32,
    /// Their prices together, for people.
    amount: String,
    /// Tickets in open holds it releases.
    held: u32,
    reason: String,
    request_id: String,
    reason_chars_max: usize,
    /// What was wrong with the reason given.
    errors: FormErrors,
    /// Set when the event is cancelled already: when and why, instead of the form.
    cancelled: Option<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cancel_result.html")]
struct ResultPage {
    nav: Nav,
    id: u64,
    name: String,
    tickets: u32,
    amount: String,
    holds: u32,
    reason: String,
}

/// Builds the confirmation page from the local state (the counts may lag the leader by an
/// entry; the cancellation itself refunds what the log says).
fn confirm(
    state: &AppState,
    nav: Nav,
    id: u64,
    reason: String,
    request_id: String,
    errors: FormErrors,
) -> Result<ConfirmPage, PageError> {
    let s = state.node.shared.read();
    let Some(e) = s.event(EventId(id)) else {
        return Err(PageError::not_found(nav, "event"));
    };
    let history = match state.node.shared.history() {
        Ok(h) => h,
        Err(err) => return Err(PageError::from_api(nav, err.into())),
    };
    let amount_cents: u64 = history.sales(e.id).map(|t| t.price_cents).sum();
    let a = crate::views::availability(e);
    Ok(ConfirmPage {
        id,
        name: e.details.name.clone(),
        when: when_local(e.details.starts_at_ms, s.event_zone(e.id)),
        tickets: a.sold,
        amount: money(amount_cents, &e.details.currency),
        held: a.held,
        reason,
        request_id,
        reason_chars_max: CANCEL_REASON_CHARS_MAX,
        errors,
        cancelled: s
            .cancellation(e.id)
            .map(|c| (when(c.at_ms as i64), c.reason.clone())),
        nav,
    })
}

async fn confirm_page(
    State(state): State<AppState>,
    caller: crate::extract::MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let c = match event_owner(&state, caller, id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let nav = Nav::of(Some(&c));
    let errors = FormErrors::new();
    match confirm(&state, nav, id, String::new(), fresh_request_id(), errors) {
        Ok(page) => page.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn cancel(
    State(state): State<AppState>,
    caller: crate::extract::MaybeCaller,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let c = match event_owner(&state, caller, id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let nav = Nav::of(Some(&c));
    let form = form_pairs(&body);
    let reason = field(&form, "reason").to_owned();
    let request_id = match field(&form, "request_id") {
        "" => fresh_request_id(),
        given => given.to_owned(),
    };
    let mut errors = FormErrors::new();
    let checked = form::text(&reason, true, CANCEL_REASON_CHARS_MAX, false);
    if errors.check("reason", checked).is_none() {
        return match confirm(&state, nav, id, reason, request_id, errors) {
            Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            Err(e) => e.into_response(),
        };
    }
    match cancel_event(&state, &c, EventId(id), &reason, request_id.clone()).await {
        Ok((cancelled, _)) => {
            let s = state.node.shared.read();
            let Some(e) = s.event(EventId(id)) else {
                return PageError::not_found(nav, "event").into_response();
            };
            ResultPage {
                nav,
                id,
                name: e.details.name.clone(),
                tickets: cancelled.tickets_refunded,
                amount: money(cancelled.amount_cents, &e.details.currency),
                holds: cancelled.holds_released,
                reason: s
                    .cancellation(e.id)
                    .map(|c| c.reason.clone())
                    .unwrap_or_default(),
            }
            .into_response()
        }
        Err(e @ ApiError::Invalid { .. }) => {
            errors.api(&e, |f| (f == "reason").then_some("reason"));
            match confirm(&state, nav, id, reason, request_id, errors) {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => PageError::from_api(nav, e).into_response(),
    }
}
