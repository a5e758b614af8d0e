//! Door check-in (`/door`): staff scan or type a ticket's signed code and get a verdict they can
//! read from a step away — admitted (green ✓ with the seat and row) or refused (red ✗ with the
//! reason in plain words: not a ticket code, forged, another event, already checked in at
//! HH:MM, refunded, cancelled) — and the count of admitted over expected tickets for the event.
//!
//! The page is a plain form and works without JavaScript: after every result the code field is
//! empty and focused, so the next scan is not appended to the last. `static/shop.js` adds
//! camera scanning (`BarcodeDetector` where the browser has it, else the vendored jsQR decoder
//! this module serves from `static/vendor/jsqr/`), posts each scan in place (the camera keeps
//! running) and beeps, differently for admitted and refused. The door may be set to one event
//! (`?event=ID`, then a hidden field): a ticket of another event is refused. The count reads
//! the local applied state (it may lag the leader by an entry): the event's sold tickets are
//! expected, and its active tickets with a check-in are counted, one pass over the event's
//! ticket index in history.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tix_core::{Event, EventId, Role, TicketId};

use super::super::receipt::seat_name;
use super::super::{Nav, PageError, field, form_pairs, login_first, when, when_local};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, MaybeCaller};
use crate::shop::admit;
use crate::ticket_code;

/// Where the vendored QR decoder is served (the version in the name, so it may be cached for
/// good).
pub const JSQR_PATH: &str = "/static/vendor/jsqr-1.4.0.min.js";

/// The most events offered in the door's event list.
const DOOR_EVENTS_MAX: usize = 100;
/// How long after its start an event is still offered in the door's list.
const DOOR_EVENT_STARTED_MS_MAX: i64 = 24 * 60 * 60 * 1000;
/// The most characters of a refused code repeated in the verdict.
const SHOWN_CODE_CHARS_MAX: usize = 48;

/// The door's routes: the page and the decoder its script loads.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/door", get(door_form).post(door_check))
        .route(JSQR_PATH, get(jsqr))
}

async fn jsqr() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        include_str!("../../../static/vendor/jsqr/jsqr-1.4.0.min.js"),
    )
        .into_response()
}

/// An event the door may be set to.
pub struct DoorEvent {
    /// Its id.
    pub id: u64,
    /// Its name and start.
    pub label: String,
    /// The door is set to it.
    pub selected: bool,
}

/// Admitted over expected tickets of one event.
pub struct DoorCount {
    /// The event.
    pub event_id: u64,
    /// Its name.
    pub event: String,
    /// Tickets checked in.
    pub admitted: u64,
    /// Tickets sold and not refunded.
    pub expected: u64,
}

/// The answer to one scan.
pub struct Verdict {
    /// Admitted (green ✓) or refused (red ✗).
    pub admitted: bool,
    /// One line in big letters: `Admitted`, `Already checked in at 21:04`, `Another event`...
    pub headline: String,
    /// The seat and row of an admitted ticket (`Seat 14 · row 2`), else empty.
    pub seat: String,
    /// The details in a sentence.
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/door.html")]
struct DoorPage {
    nav: Nav,
    /// The events the door may be set to.
    events: Vec<DoorEvent>,
    /// The event the door is set to (`None`: any event).
    event: Option<u64>,
    /// The event whose count is shown, carried from scan to scan.
    count: Option<DoorCount>,
    verdict: Option<Verdict>,
    jsqr_src: &'static str,
}

fn door_only(c: &Caller) -> Result<(), PageError> {
    if c.role == Role::Attendee {
        Err(PageError::forbidden(
            Nav::of(Some(c)),
            "Check-in is for door staff and organizers.",
        ))
    } else {
        Ok(())
    }
}

/// Staff and admins check in at every event, organizers at their own.
fn may_check_in(c: &Caller, e: &Event) -> bool {
    matches!(c.role, Role::Admin | Role::Staff) || e.organizer == c.user_id
}

/// The events the caller may check in that start later than a day ago (and `chosen`), soonest
/// first.
fn door_events(state: &AppState, c: &Caller, chosen: Option<u64>) -> Vec<DoorEvent> {
    let s = state.node.shared.read();
    let since_ms = (s.now_ms() as i64).saturating_sub(DOOR_EVENT_STARTED_MS_MAX);
    let mut events: Vec<&Event> = s
        .events()
        .filter(|e| may_check_in(c, e) && s.cancellation(e.id).is_none())
        .filter(|e| e.details.starts_at_ms >= since_ms || Some(e.id.0) == chosen)
        .collect();
    events.sort_by_key(|e| (e.details.starts_at_ms, e.id));
    events
        .into_iter()
        .take(DOOR_EVENTS_MAX)
        .map(|e| DoorEvent {
            id: e.id.0,
            label: format!(
                "{} — {}",
                e.details.name,
                when_local(e.details.starts_at_ms, s.event_zone(e.id))
            ),
            selected: Some(e.id.0) == chosen,
        })
        .collect()
}

/// Counts an event's admitted and expected tickets, if the caller may check it in.
fn door_count(state: &AppState, c: &Caller, event_id: u64) -> Option<DoorCount> {
    let (event, expected) = {
        let s = state.node.shared.read();
        let e = s.event(EventId(event_id)).filter(|e| may_check_in(c, e))?;
        (e.details.name.clone(), u64::from(e.inventory.sold()))
    };
    let history = state.node.shared.history().ok()?;
    let admitted = history
        .sales(EventId(event_id))
        .filter(|t| t.checked_in.is_some())
        .count() as u64;
    Some(DoorCount {
        event_id,
        event,
        admitted,
        expected,
    })
}

/// `?event=ID`: the event the door is set to.
#[derive(serde::Deserialize)]
struct DoorQuery {
    #[serde(default)]
    event: Option<String>,
}

fn event_param(s: Option<&str>) -> Option<u64> {
    s.and_then(|s| s.trim().parse().ok())
}

async fn door_form(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Query(q): Query<DoorQuery>,
) -> Response {
    let chosen = event_param(q.event.as_deref());
    let Some(c) = caller.0 else {
        return match chosen {
            Some(id) => login_first(&format!("/door?event={id}")),
            None => login_first("/door"),
        };
    };
    if let Err(e) = door_only(&c) {
        return e.into_response();
    }
    let events = door_events(&state, &c, chosen);
    // Only an event the caller may check in (and so is listed) can be the door's.
    let event = events.iter().find(|e| e.selected).map(|e| e.id);
    DoorPage {
        nav: Nav::of(Some(&c)),
        count: event.and_then(|id| door_count(&state, &c, id)),
        events,
        event,
        verdict: None,
        jsqr_src: JSQR_PATH,
    }
    .into_response()
}

/// A refused scan: its verdict, status, and the event it named (if it got that far).
struct Refusal {
    status: StatusCode,
    headline: String,
    detail: String,
    event_id: Option<u64>,
}

fn refusal(status: StatusCode, headline: &str, detail: impl Into<String>) -> Refusal {
    Refusal {
        status,
        headline: headline.into(),
        detail: detail.into(),
        event_id: None,
    }
}

async fn door_check(State(state): State<AppState>, caller: MaybeCaller, body: Bytes) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/door");
    };
    if let Err(e) = door_only(&c) {
        return e.into_response();
    }
    let form = form_pairs(&body);
    let code = field(&form, "code").trim().to_owned();
    let events = door_events(&state, &c, event_param(Some(field(&form, "event"))));
    let door_event = events.iter().find(|e| e.selected).map(|e| e.id);
    let last_event = event_param(Some(field(&form, "last_event")));
    let (verdict, status, scanned_event) = match check(&state, &c, &code, door_event).await {
        Ok((verdict, event_id)) => (verdict, StatusCode::OK, Some(event_id)),
        Err(r) => {
            // A refused code is repeated in the verdict, since the field is emptied.
            let shown: String = code.chars().take(SHOWN_CODE_CHARS_MAX).collect();
            let detail = if shown.is_empty() || r.event_id.is_some() {
                r.detail
            } else {
                format!("{} (scanned: {shown})", r.detail)
            };
            let verdict = Verdict {
                admitted: false,
                headline: r.headline,
                seat: String::new(),
                detail,
            };
            (verdict, r.status, r.event_id)
        }
    };
    // The count follows the door's event, else the last ticket scanned that named one.
    let count = [door_event, scanned_event, last_event]
        .into_iter()
        .flatten()
        .find_map(|id| door_count(&state, &c, id));
    let page = DoorPage {
        nav: Nav::of(Some(&c)),
        events,
        event: door_event,
        count,
        verdict: Some(verdict),
        jsqr_src: JSQR_PATH,
    };
    (status, page).into_response()
}

/// Checks a scanned code and admits its ticket; returns the verdict and the ticket's event.
async fn check(
    state: &AppState,
    c: &Caller,
    code: &str,
    door_event: Option<u64>,
) -> Result<(Verdict, u64), Refusal> {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let Ok(parsed) = ticket_code::parse(code) else {
        return Err(refusal(
            unprocessable,
            "Not a ticket code",
            "This is not a tix ticket code. Scan the QR code again, or type the code printed \
             under it.",
        ));
    };
    let (event_id, ticket_id) = (parsed.event_id, parsed.ticket_id);
    let event = state
        .read_fresh(|s| {
            let e = s.event(EventId(event_id))?;
            Some((
                e.ticket_key_seed,
                e.details.name.clone(),
                when_local(e.details.starts_at_ms, s.event_zone(e.id)),
                (e.inventory.clone(), s.layout(e.id).cloned()),
            ))
        })
        .await;
    let Some((seed, event_name, event_when, (inventory, layout))) = event else {
        return Err(refusal(
            unprocessable,
            "Forged code",
            "No such event: this code was not issued by tix.",
        ));
    };
    if ticket_code::verify_with_seed(&seed, code).is_err() {
        return Err(refusal(
            unprocessable,
            "Forged code",
            "The signature does not match: this code was not issued by tix, or was altered.",
        ));
    }
    let ticket = state
        .read_fresh_history(|h| h.ticket(TicketId(ticket_id)))
        .await
        .map_err(|e| refusal(StatusCode::SERVICE_UNAVAILABLE, "Try again", message(&e)))?;
    let seat = match ticket {
        Some(t) if t.event_id.0 == event_id => t.seat,
        _ => {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                "Unknown ticket",
                "The code is signed but no such ticket exists.",
            ));
        }
    };
    let named = |r: Refusal| Refusal {
        event_id: Some(event_id),
        ..r
    };
    if let Some(door) = door_event.filter(|d| *d != event_id) {
        let door_name = state
            .node
            .shared
            .read()
            .event(EventId(door))
            .map(|e| e.details.name.clone())
            .unwrap_or_default();
        // Not `named`: the count stays with the door's event.
        return Err(refusal(
            StatusCode::CONFLICT,
            "Another event",
            format!("This ticket is for {event_name} ({event_when}), not {door_name}."),
        ));
    }
    match admit(state, c, TicketId(ticket_id)).await {
        Ok(_) => Ok((
            Verdict {
                admitted: true,
                headline: "Admitted".into(),
                seat: seat_name(&inventory, layout.as_ref(), seat),
                detail: format!("{event_name}: ticket {ticket_id}."),
            },
            event_id,
        )),
        Err(ApiError::CheckInRefused { reason, extra, .. }) => Err(named(match reason {
            "already_admitted" => {
                let at = extra
                    .get("at")
                    .and_then(|v| v.as_str())
                    .and_then(crate::views::parse_rfc3339);
                let by = extra
                    .get("by")
                    .and_then(|v| v.as_str())
                    .unwrap_or("someone");
                let hhmm = at.map(when).unwrap_or_default();
                let hhmm = hhmm.get(11..16).unwrap_or(&hhmm).to_owned();
                refusal(
                    StatusCode::CONFLICT,
                    &format!("Already checked in at {hhmm}"),
                    format!("Admitted at {hhmm} UTC by {by}: this ticket was used already."),
                )
            }
            "refunded" => refusal(
                StatusCode::CONFLICT,
                "Refunded",
                "This ticket was refunded; it is not valid any more.",
            ),
            "event_cancelled" => refusal(
                StatusCode::CONFLICT,
                "Event cancelled",
                "The organizer cancelled this event; the ticket was refunded.",
            ),
            _ => refusal(
                StatusCode::CONFLICT,
                "Not admitted",
                "The ticket is not valid.",
            ),
        })),
        // Another organizer's event: answered here, the scanner stays open.
        Err(ApiError::Forbidden(_)) => Err(refusal(
            StatusCode::FORBIDDEN,
            "Not this door",
            format!("This ticket is for {event_name}, which you do not check in."),
        )),
        Err(e) => Err(named(refusal(
            StatusCode::CONFLICT,
            "Not admitted",
            message(&e),
        ))),
    }
}

fn message(e: &ApiError) -> String {
    super::super::message_for(e)
}
