//! The organizer's and the door's pages: the list of one's events, a dashboard per event
//! (sold / held / available, revenue, a step chart of tickets sold over time drawn by `chart`,
//! a CSV export, a link to the door set to the event),
//! door check-in by signed ticket code (`door`: admitted once, a second scan says when and by
//! whom, forged codes refused; camera scanning and a count of admitted tickets), and the admin's
//! cluster status.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tix_core::EventId;

use super::{Nav, PageError, login_first, money, when, when_local};
use crate::AppState;
use crate::extract::{Caller, MaybeCaller};

mod chart;
mod door;

use chart::{SalesChart, sales_chart};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizer", get(my_events))
        .route("/organizer/events/{id}", get(dashboard))
        .route("/organizer/events/{id}/sales.csv", get(sales_csv))
        .route("/admin/cluster", get(cluster))
        .merge(door::routes())
}

/// An event in the organizer's list.
pub struct EventRow {
    pub id: u64,
    pub name: String,
    pub when: String,
    pub sold: u32,
    pub available: u32,
    /// The organizer cancelled it.
    pub cancelled: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/organizer.html")]
struct OrganizerPage {
    nav: Nav,
    events: Vec<EventRow>,
}

fn organizer_only(c: &Caller) -> Result<(), PageError> {
    if c.can_organize() {
        Ok(())
    } else {
        Err(PageError::forbidden(
            Nav::of(Some(c)),
            "This page is for event organizers. Your account is an attendee account.",
        ))
    }
}

async fn my_events(State(state): State<AppState>, caller: MaybeCaller) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/organizer");
    };
    if let Err(e) = organizer_only(&c) {
        return e.into_response();
    }
    let s = state.node.shared.read();
    let events = s
        .events()
        .filter(|e| c.is_admin() || e.organizer == c.user_id)
        .map(|e| {
            let a = crate::views::availability(e);
            EventRow {
                id: e.id.0,
                name: e.details.name.clone(),
                when: when_local(e.details.starts_at_ms, s.event_zone(e.id)),
                sold: a.sold,
                available: a.available,
                cancelled: s.cancellation(e.id).is_some(),
            }
        })
        .collect();
    drop(s);
    OrganizerPage {
        nav: Nav::of(Some(&c)),
        events,
    }
    .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/dashboard.html")]
struct DashboardPage {
    nav: Nav,
    id: u64,
    name: String,
    when: String,
    sold: u32,
    held: u32,
    available: u32,
    revenue: String,
    checked_in: usize,
    /// Tickets sold over time: the SVG, its summary and the numbers behind it.
    chart: SalesChart,
    /// When and why it was cancelled, if it was: a banner instead of the cancel button.
    cancelled: Option<(String, String)>,
}

/// A CSV field that a spreadsheet shows as text: a cell that would start a formula (`=`, `+`,
/// `-`, `@`, tab or carriage return; OWASP's list) gets a leading `'`, which spreadsheets take
/// as "text" and do not display; then the field is quoted when it needs it.
pub fn csv_field(s: &str) -> String {
    let neutral = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if neutral.contains([',', '"', '\n', '\r']) || neutral.starts_with('\'') {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// The signed-in organizer of event `id` (or an admin), or the page to show instead: the login
/// page, 403 for attendees and other organizers, 404 for no such event.
pub(super) async fn event_owner(
    state: &AppState,
    caller: MaybeCaller,
    id: u64,
) -> Result<Caller, Response> {
    let Some(c) = caller.0 else {
        return Err(login_first(&format!("/organizer/events/{id}")));
    };
    organizer_only(&c).map_err(IntoResponse::into_response)?;
    let organizer = state
        .read_fresh(|s| s.event(EventId(id)).map(|e| e.organizer))
        .await;
    match organizer {
        None => Err(PageError::not_found(Nav::of(Some(&c)), "event").into_response()),
        Some(o) if c.is_admin() || c.user_id == o => Ok(c),
        Some(_) => Err(PageError::forbidden(
            Nav::of(Some(&c)),
            "Only this event's organizer can see its dashboard and sales.",
        )
        .into_response()),
    }
}

async fn dashboard(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let c = match event_owner(&state, caller, id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let nav = Nav::of(Some(&c));
    let s = state.node.shared.read();
    let Some(e) = s.event(EventId(id)) else {
        return PageError::not_found(nav, "event").into_response();
    };
    let a = crate::views::availability(e);
    let history = match state.node.shared.history() {
        Ok(h) => h,
        Err(e) => return PageError::from_api(nav, e.into()).into_response(),
    };
    // One pass over the sales: revenue, check-ins and the sale times for the chart.
    let (mut revenue, mut checked_in) = (0u64, 0usize);
    let mut times: Vec<u64> = Vec::new();
    for t in history.sales(e.id) {
        revenue += t.price_cents;
        checked_in += usize::from(t.checked_in.is_some());
        times.push(t.sold_at_ms);
    }
    times.sort_unstable();
    let now_ms = s.now_ms();
    let page = DashboardPage {
        nav,
        id,
        name: e.details.name.clone(),
        when: when_local(e.details.starts_at_ms, s.event_zone(e.id)),
        sold: a.sold,
        held: a.held,
        available: a.available,
        revenue: money(revenue, &e.details.currency),
        checked_in,
        chart: sales_chart(&times, now_ms),
        cancelled: s
            .cancellation(e.id)
            .map(|c| (when(c.at_ms as i64), c.reason.clone())),
    };
    drop(s);
    page.into_response()
}

async fn sales_csv(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let c = match event_owner(&state, caller, id).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let s = state.node.shared.read();
    let Some(e) = s.event(EventId(id)) else {
        return PageError::not_found(Nav::of(Some(&c)), "event").into_response();
    };
    let history = match state.node.shared.history() {
        Ok(h) => h,
        Err(e) => return PageError::from_api(Nav::of(Some(&c)), e.into()).into_response(),
    };
    let mut csv = String::from("ticket_id,seat,buyer,price,currency,sold_at,checked_in_at\n");
    for t in history.sales(e.id) {
        let buyer = match &t.customer {
            tix_core::CustomerKey::User(u) => {
                s.user(*u).map(|u| u.username.clone()).unwrap_or_default()
            }
            tix_core::CustomerKey::Client(client) => client.clone(),
        };
        csv.push_str(&format!(
            "{},{},{},{}.{:02},{},{},{}\n",
            t.id.0,
            t.seat.map(|n| n.to_string()).unwrap_or_default(),
            csv_field(&buyer),
            t.price_cents / 100,
            t.price_cents % 100,
            csv_field(&e.details.currency),
            crate::views::rfc3339(t.sold_at_ms as i64),
            t.checked_in
                .map(|(at, _)| crate::views::rfc3339(at as i64))
                .unwrap_or_default(),
        ));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"event-{id}-sales.csv\""),
            ),
        ],
        csv,
    )
        .into_response()
}

/// A node on the cluster page.
pub struct NodeRow {
    pub id: String,
    pub role: String,
    pub api_addr: String,
    pub term: String,
    pub applied: String,
    pub lag: String,
    pub response: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/cluster.html")]
struct ClusterPage {
    nav: Nav,
    leader: String,
    term: String,
    committed: String,
    nodes: Vec<NodeRow>,
}

async fn cluster(State(state): State<AppState>, caller: MaybeCaller) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/admin/cluster");
    };
    if !c.is_admin() {
        return PageError::forbidden(
            Nav::of(Some(&c)),
            "The cluster status is for administrators.",
        )
        .into_response();
    }
    let status = crate::cluster::cluster_status(&state).await;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let nodes = status["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| NodeRow {
                    id: text(&n["id"]),
                    role: text(&n["role"]),
                    api_addr: text(&n["api_addr"]),
                    term: text(&n["term"]),
                    applied: text(&n["last_applied"]),
                    lag: text(&n["replication_lag"]),
                    response: n["response_ms"]
                        .as_u64()
                        .map(|m| format!("{m} ms"))
                        .unwrap_or_else(|| "—".into()),
                })
                .collect()
        })
        .unwrap_or_default();
    ClusterPage {
        nav: Nav::of(Some(&c)),
        leader: text(&status["leader_id"]),
        term: text(&status["term"]),
        committed: text(&status["committed"]),
        nodes,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fields with separators or quotes are quoted; a field that would start a formula gets a
    // leading `'` (shown as text by spreadsheets) and is quoted; plain ones are left alone.
    #[test]
    fn quotes_csv_fields_and_never_starts_a_formula() {
        assert_eq!(csv_field("alice"), "alice");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "\"'=1+1\"");
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_field("+cmd|' /C calc'!A0"), "\"'+cmd|' /C calc'!A0\"");
        assert_eq!(csv_field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_field("-2+3"), "\"'-2+3\"");
        assert_eq!(csv_field("\tx"), "\"'\tx\"");
    }
}
