//! The waiting room's pages: the queue page a visitor watches (place, estimated wait, progress,
//! live over Server-Sent Events, a plain refresh without JavaScript), joining it, the panel the
//! event page shows instead of its order form until the visitor's turn, and the organizer's
//! form that sets the room.
//!
//! The visitor is the signed-in account (as at Ticketmaster: sign in to join), so every tab and
//! every reload shows the same place; the place itself lives in the replicated log
//! ([`crate::queue`]).

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use std::collections::HashMap;
use tix_core::EventId;
use tix_core::waiting::account_visitor;

use super::form::{FormErrors, Problem};
use super::{Nav, PageError, login_first, see_other, when};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, MaybeCaller};
use crate::live::ClientKey;
use crate::queue::{QueueStatus, place_of, status_of};

/// The pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/queue", get(page).post(join))
        .route("/events/{id}/queue/live", get(live))
        .route("/events/{id}/queue/status", get(status_json))
        .route(
            "/organizer/events/{id}/waiting-room",
            get(room_form).post(set_room),
        )
        .route("/static/queue.js", get(js))
}

async fn js() -> Response {
    super::static_asset(
        "text/javascript; charset=utf-8",
        include_str!("../../static/queue.js"),
    )
}

/// What the event page shows about its waiting room.
#[derive(Debug, Clone)]
pub struct RoomPanel {
    /// When the sale opens, for people.
    pub opens: String,
    /// Whether it has opened.
    pub open: bool,
    /// The signed-in visitor's status (`pre_queue`, `waiting`, `admitted`, `expired`,
    /// `sold_out`), or `None` when they have no place (or are not signed in).
    pub status: Option<&'static str>,
    /// Until when an admitted visitor may buy, for people.
    pub until: String,
    /// Whether the order form is shown (the visitor is admitted now).
    pub may_buy: bool,
}

/// The panel of an event with a waiting room, for `caller`; `None` without a room.
pub fn panel(
    state: &AppState,
    event_id: EventId,
    caller: Option<tix_core::UserId>,
) -> Option<RoomPanel> {
    let s = state.node.shared.read();
    let room = s.waiting_room(event_id)?;
    let now_ms = tix_raft::proposer::now_ms();
    let visitor = caller.map(account_visitor);
    let status = visitor.as_deref().and_then(|v| {
        let standing = room.standing(v)?;
        status_of(&s, event_id, v, standing, false, now_ms)
    });
    let until = status
        .as_ref()
        .and_then(|st| st.admit_until.as_deref())
        .and_then(crate::views::parse_rfc3339)
        .map(when)
        .unwrap_or_default();
    let code = status.as_ref().map(|st| st.status);
    Some(RoomPanel {
        opens: when(room.spec.opens_at_ms as i64),
        open: room.drawn() || now_ms >= room.spec.opens_at_ms,
        status: code,
        until,
        may_buy: code == Some("admitted"),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/queue.html")]
struct QueuePage {
    nav: Nav,
    id: u64,
    name: String,
    opens: String,
    signed_in: bool,
    status: Option<QueueStatus>,
    /// Progress through the queue, 0–100.
    progress: u64,
    wait: String,
    until: String,
    admit_at: String,
}

/// "about 3 minutes", "under a minute", "about 1 hour 20 minutes".
fn wait_words(seconds: u64) -> String {
    match seconds {
        0 => "none — it is your turn".into(),
        1..=59 => "under a minute".into(),
        60..=3_599 => {
            let m = seconds.div_ceil(60);
            format!("about {m} minute{}", if m == 1 { "" } else { "s" })
        }
        _ => {
            let (h, m) = (seconds / 3_600, (seconds % 3_600) / 60);
            format!(
                "about {h} hour{} {m} minutes",
                if h == 1 { "" } else { "s" }
            )
        }
    }
}

fn queue_page(
    state: &AppState,
    nav: Nav,
    id: u64,
    user: Option<tix_core::UserId>,
) -> Option<QueuePage> {
    let s = state.node.shared.read();
    let event = s.event(EventId(id))?;
    let room = s.waiting_room(EventId(id))?;
    let now_ms = tix_raft::proposer::now_ms();
    let status = user.and_then(|u| {
        let v = account_visitor(u);
        let standing = room.standing(&v)?;
        status_of(&s, EventId(id), &v, standing, false, now_ms)
    });
    let progress = match &status {
        Some(st) if st.status == "admitted" => 100,
        Some(st) => match (st.position, st.admitted) {
            (Some(p), a) if a + p > 0 => a * 100 / (a + p),
            _ => 0,
        },
        None => 0,
    };
    let time = |t: &Option<String>| {
        t.as_deref()
            .and_then(crate::views::parse_rfc3339)
            .map(when)
            .unwrap_or_default()
    };
    Some(QueuePage {
        nav,
        id,
        name: event.details.name.clone(),
        opens: when(room.spec.opens_at_ms as i64),
        signed_in: user.is_some(),
        wait: status
            .as_ref()
            .and_then(|st| st.wait_s)
            .map(wait_words)
            .unwrap_or_default(),
        until: status
            .as_ref()
            .map(|st| time(&st.admit_until))
            .unwrap_or_default(),
        admit_at: status
            .as_ref()
            .map(|st| time(&st.admit_at))
            .unwrap_or_default(),
        status,
        progress,
    })
}

async fn page(State(state): State<AppState>, caller: MaybeCaller, Path(id): Path<u64>) -> Response {
    let nav = Nav::of(caller.0.as_ref());
    let _ = state
        .read_fresh(|s| s.waiting_room(EventId(id)).map(|_| ()))
        .await;
    match queue_page(
        &state,
        nav.clone(),
        id,
        caller.0.as_ref().map(|c| c.user_id),
    ) {
        Some(p) => p.into_response(),
        None => {
            // No waiting room (any more): the event page sells directly.
            if state.node.shared.read().event(EventId(id)).is_some() {
                see_other(&format!("/events/{id}"))
            } else {
                PageError::not_found(nav, "event").into_response()
            }
        }
    }
}

async fn join(State(state): State<AppState>, caller: MaybeCaller, Path(id): Path<u64>) -> Response {
    let back = format!("/events/{id}/queue");
    let Some(c) = caller.0 else {
        return login_first(&back);
    };
    let nav = Nav::of(Some(&c));
    match place_of(&state, EventId(id), &account_visitor(c.user_id)).await {
        Ok(_) => see_other(&back),
        Err(ApiError::Queue(tix_core::QueueRejection::NoWaitingRoom)) => {
            see_other(&format!("/events/{id}"))
        }
        Err(e) => PageError::from_api(nav, e).into_response(),
    }
}

/// The signed-in visitor's status as JSON (the queue page's script polls it where
/// Server-Sent Events are unavailable).
async fn status_json(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ApiPath(id): ApiPath,
) -> Result<Json<QueueStatus>, ApiError> {
    let c = caller.0.ok_or(ApiError::Unauthenticated)?;
    current(&state, EventId(id), c.user_id).map(Json)
}

fn current(
    state: &AppState,
    event_id: EventId,
    user: tix_core::UserId,
) -> Result<QueueStatus, ApiError> {
    let s = state.node.shared.read();
    let room = s
        .waiting_room(event_id)
        .ok_or(ApiError::NotFound("waiting room"))?;
    let v = account_visitor(user);
    let standing = room
        .standing(&v)
        .ok_or(ApiError::NotFound("place in the queue"))?;
    let now_ms = tix_raft::proposer::now_ms();
    status_of(&s, event_id, &v, standing, false, now_ms).ok_or(ApiError::NotFound("waiting room"))
}

/// The visitor's status, once a second, until it is final (admitted, expired, sold out). Counts
/// against the node's live-stream caps like the availability stream.
async fn live(
    State(state): State<AppState>,
    caller: MaybeCaller,
    ApiPath(id): ApiPath,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let c = caller.0.ok_or(ApiError::Unauthenticated)?;
    let user = c.user_id;
    let event_id = EventId(id);
    current(&state, event_id, user)?;
    let (subscription, _driver) = state
        .live
        .subscribe(Some(ClientKey::User(user.0)), event_id)
        .map_err(ApiError::LiveFull)?;
    // The availability feed's driver is not needed here: the status is read from the state.
    let stream = futures::stream::unfold(
        (state, subscription, false),
        move |(state, subscription, done)| async move {
            if done {
                return None;
            }
            let status = current(&state, event_id, user).ok()?;
            let last = matches!(status.status, "admitted" | "expired" | "sold_out");
            let data = serde_json::to_string(&status).ok()?;
            let message = Ok(SseEvent::default().event("queue").data(data));
            if !last {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some((message, (state, subscription, last)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/waiting_room_form.html")]
struct RoomFormPage {
    nav: Nav,
    id: u64,
    name: String,
    errors: FormErrors,
    /// The current settings, when the event has a room.
    current: Option<crate::queue::RoomInfo>,
    /// Whether the settings may still change (no room, or it has not opened).
    editable: bool,
    /// The current opening, for people.
    opens: String,
    opens_at: String,
    admit_per_min: String,
    /// What an empty rate would be now.
    derived_admit_per_min: u32,
    /// The event's time zone, in which the opening is entered.
    zone: String,
    window_min: String,
}

fn room_form_page(
    state: &AppState,
    nav: Nav,
    id: u64,
    errors: FormErrors,
    form: Option<&HashMap<String, String>>,
) -> Option<RoomFormPage> {
    let s = state.node.shared.read();
    let event = s.event(EventId(id))?;
    let now_ms = tix_raft::proposer::now_ms();
    let current = crate::queue::room_view(&s, EventId(id), now_ms);
    let field =
        |name: &str, default: String| form.and_then(|f| f.get(name).cloned()).unwrap_or(default);
    // The opening is entered and shown on the venue's clock (its event's time zone).
    let zone_name = s.event_zone(EventId(id)).to_owned();
    let zone = crate::zone::of_name(&zone_name);
    let opens_at_ms = current
        .as_ref()
        .and_then(|r| crate::views::parse_rfc3339(&r.opens_at));
    let opens_default = opens_at_ms
        .map(|ms| {
            let (date, time) = crate::zone::local_date_time(ms, &zone);
            format!("{date}T{time}")
        })
        .unwrap_or_default();
    Some(RoomFormPage {
        nav,
        id,
        name: event.details.name.clone(),
        errors,
        opens_at: field("opens_at", opens_default),
        admit_per_min: field(
            "admit_per_min",
            current
                .as_ref()
                .map_or(String::new(), |r| r.admit_per_min.to_string()),
        ),
        derived_admit_per_min: crate::queue::derived_admit_per_min(
            state.node.shared.throughput.peak_per_s(),
        ),
        window_min: field(
            "window_min",
            current
                .as_ref()
                .map_or("10".into(), |r| (r.window_s / 60).to_string()),
        ),
        editable: current.as_ref().is_none_or(|r| !r.open),
        opens: opens_at_ms
            .map(|ms| crate::zone::when_local(ms, &zone_name))
            .unwrap_or_default(),
        zone: zone_name,
        current,
    })
}

/// Only the event's organizer or an admin.
fn may_manage(state: &AppState, c: &crate::extract::Caller, id: u64) -> bool {
    state
        .node
        .shared
        .read()
        .event(EventId(id))
        .is_some_and(|e| c.is_admin() || e.organizer == c.user_id)
}

async fn room_form(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/organizer/events/{id}/waiting-room"));
    };
    let nav = Nav::of(Some(&c));
    if !may_manage(&state, &c, id) {
        return PageError::forbidden(
            nav,
            "Only the event's organizer or an admin may set its waiting room.",
        )
        .into_response();
    }
    match room_form_page(&state, nav.clone(), id, FormErrors::new(), None) {
        Some(p) => p.into_response(),
        None => PageError::not_found(nav, "event").into_response(),
    }
}

async fn set_room(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/organizer/events/{id}/waiting-room"));
    };
    let nav = Nav::of(Some(&c));
    if !may_manage(&state, &c, id) {
        return PageError::forbidden(
            nav,
            "Only the event's organizer or an admin may set its waiting room.",
        )
        .into_response();
    }
    let get = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or("");
    let result = if get("action") == "remove" {
        crate::queue::propose_room(&state, EventId(id), c.user_id, None).await
    } else {
        let mut errors = FormErrors::new();
        // The form's date and time are the venue's (its event's time zone, named beside the
        // field).
        let zone = crate::zone::of_name(state.node.shared.read().event_zone(EventId(id)));
        let opens_at = match crate::zone::local_to_ms(get("opens_at"), &zone) {
            Ok(ms) => crate::views::rfc3339(ms),
            Err(crate::zone::LocalTimeError::Malformed) => {
                errors.add(
                    "opens_at",
                    Problem::Said("a date and time like 2030-06-01 10:00".into()),
                );
                String::new()
            }
            Err(gap) => {
                errors.add("opens_at", Problem::Said(gap.to_string()));
                String::new()
            }
        };
        // Empty: tix derives the rate from what the cluster has shown it can commit.
        let admit_per_min = get("admit_per_min")
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n));
        if admit_per_min.is_none() && !get("admit_per_min").is_empty() {
            errors.add(
                "admit_per_min",
                Problem::WholeNumber {
                    min: 1,
                    max: 1_000_000,
                },
            );
        }
        let window_min = get("window_min")
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=1_440).contains(n));
        if window_min.is_none() {
            errors.add("window_min", Problem::WholeNumber { min: 1, max: 1_440 });
        }
        if !errors.is_empty() {
            return match room_form_page(&state, nav.clone(), id, errors, Some(&form)) {
                Some(p) => (axum::http::StatusCode::UNPROCESSABLE_ENTITY, p).into_response(),
                None => PageError::not_found(nav, "event").into_response(),
            };
        }
        let body = crate::queue::RoomBody {
            opens_at,
            admit_per_min,
            window_s: window_min.map(|m| m * 60),
        };
        let peak = state.node.shared.throughput.peak_per_s();
        match crate::queue::validate_room(&body, peak) {
            Ok(spec) => {
                crate::queue::propose_room(&state, EventId(id), c.user_id, Some(spec)).await
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => see_other(&format!("/organizer/events/{id}/waiting-room")),
        Err(e) => {
            let mut errors = FormErrors::new();
            errors.api(&e, |field| match field {
                "opens_at" => Some("opens_at"),
                "admit_per_min" => Some("admit_per_min"),
                "window_s" => Some("window_min"),
                _ => None,
            });
            match room_form_page(&state, nav.clone(), id, errors, Some(&form)) {
                Some(p) => (e.problem().0, p).into_response(),
                None => PageError::not_found(nav, "event").into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_said_in_words() {
        assert_eq!(wait_words(0), "none — it is your turn");
        assert_eq!(wait_words(30), "under a minute");
        assert_eq!(wait_words(61), "about 2 minutes");
        assert_eq!(wait_words(60), "about 1 minute");
        assert_eq!(wait_words(3_600 + 20 * 60), "about 1 hour 20 minutes");
    }
}
