//! Buying: the event page (details, map link, live availability and seat map over
//! Server-Sent Events), ordering (a hold with a countdown), checkout with the test payment
//! provider, and the confirmation. A declined card or an expired hold releases the seats — the
//! checkout saga in `shop::pay` compensates — and the page says so.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use tix_core::{EventId, HoldEnd, HoldId, HoldRequest, Inventory, Rejection, SeatState};

use super::form::{self, FormErrors, Problem};
use super::receipt::Breakdown;
use super::seatmap::{self, Plan};
use super::{Nav, PageError, field, form_pairs, login_first, money, see_other, when, when_local};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, MaybeCaller};
use crate::live::{ClientKey, Next, PeerAddr};
use crate::shop::{hold, pay, release};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/{id}", get(detail))
        .route("/events/{id}/live", get(live))
        .route("/events/{id}/calendar.ics", get(calendar))
        .route("/events/{id}/order", post(order))
        .route("/events/{id}/best", post(best))
        .route("/holds/{id}", get(checkout_page))
        .route("/holds/{id}/pay", post(checkout))
        .route("/holds/{id}/release", post(cancel))
}

/// What a buyer had chosen on the event page before logging in: carried through the login
/// (and sign-up) in the return address as `?seats=2,3` or `?quantity=2`.
#[derive(Debug, Default, Deserialize)]
pub struct Chosen {
    /// Seat numbers, comma-separated.
    #[serde(default)]
    seats: Option<String>,
    /// How many tickets (general admission).
    #[serde(default)]
    quantity: Option<u32>,
    /// The section whose seats are shown, by name.
    #[serde(default)]
    section: Option<String>,
    /// Which page of a large section is shown, from 1.
    #[serde(default)]
    page: Option<u32>,
}

impl Chosen {
    /// The chosen seat numbers (at most [`ORDER_QUANTITY_MAX`]; anything unreadable dropped).
    fn seat_numbers(&self) -> Vec<u32> {
        self.seats
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .take(ORDER_QUANTITY_MAX as usize)
            .collect()
    }

    /// The choice of an order form.
    fn of(seats: &[u32], quantity: Option<u32>) -> Chosen {
        let list: Vec<String> = seats.iter().map(u32::to_string).collect();
        Chosen {
            seats: (!seats.is_empty()).then(|| list.join(",")),
            quantity,
            section: None,
            page: None,
        }
    }

    /// The query string that carries this choice (seats, else a quantity), or "" for none.
    fn query(&self) -> String {
        if let Some(seats) = &self.seats {
            return format!("?seats={seats}");
        }
        let mut params = Vec::new();
        if let Some(q) = self.quantity {
            params.push(format!("quantity={q}"));
        }
        if let Some(s) = &self.section {
            params.push(format!("section={}", super::url_encode(s)));
        }
        if let Some(p) = self.page {
            params.push(format!("page={p}"));
        }
        match params.is_empty() {
            true => String::new(),
            false => format!("?{}", params.join("&")),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/event.html")]
struct EventPage {
    nav: Nav,
    id: u64,
    name: String,
    description: String,
    when: String,
    venue: String,
    lat: f64,
    lon: f64,
    price: String,
    refundable: bool,
    sold: u32,
    held: u32,
    available: u32,
    /// The seat map: the overview of sections and the seats of the section shown.
    plan: Option<Plan>,
    per_customer_max: u32,
    can_edit: bool,
    /// What was wrong with the last order: the seats or the quantity, or the order as a whole.
    errors: FormErrors,
    /// When and why the organizer cancelled the event: a banner instead of the order form.
    cancelled: Option<CancelledBanner>,
    /// The quantity chosen before a detour through the login (general admission).
    chosen_quantity: u32,
    /// The event's waiting room as this visitor stands in it, if it has one.
    room: Option<super::queue::RoomPanel>,
    /// Whether the waiting room's panel replaces the order form (not the visitor's turn).
    room_blocks: bool,
    /// The "seats together" chosen before a detour (2 unless said otherwise).
    chosen_together: u32,
    /// The event's image, if it has one.
    image: Option<PageImage>,
    /// The image's absolute URL for link previews (`og:image`), on the page a link opens.
    og_image: Option<String>,
}

/// An event's image on a page.
#[derive(Debug, Clone)]
pub struct PageImage {
    /// Where it is (versioned: cached for good).
    pub url: String,
    /// What it shows: the organizer's words, else the event's name.
    pub alt: String,
    /// Width in pixels (the `width` attribute: no layout shift while it loads).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl PageImage {
    /// The image of event `e`, if it has one.
    pub fn of(s: &tix_core::State, e: &tix_core::Event) -> Option<PageImage> {
        let image = s.event_image(e.id)?;
        let alt = if image.alt.is_empty() {
            e.details.name.clone()
        } else {
            image.alt.clone()
        };
        Some(PageImage {
            url: crate::views::image_url(e.id.0, image),
            alt,
            width: image.width,
            height: image.height,
        })
    }
}

/// The banner of a cancelled event.
pub struct CancelledBanner {
    /// When, for people.
    pub when: String,
    /// Why, as the organizer wrote it.
    pub reason: String,
}

/// The most tickets one order may take on the page (the domain's own limit still applies).
const ORDER_QUANTITY_MAX: u32 = 10;

/// The most tickets one order of `e` may take on the page: the event's cap per customer, the
/// domain's seats per order (`limit`) and [`ORDER_QUANTITY_MAX`], whichever is lowest.
fn order_max(e: &tix_core::Event, limit: u32) -> u32 {
    e.details
        .per_customer_max
        .unwrap_or(ORDER_QUANTITY_MAX)
        .min(limit)
        .min(ORDER_QUANTITY_MAX)
}

/// Checks the seats of an order against the seat map as this node sees it, in the user's
/// words: each seat exists and is free, and there are not more than `max`.
fn check_seats(
    chosen: &[u32],
    seats: &[SeatState],
    max: u32,
    name: impl Fn(u32) -> String,
) -> Result<(), Problem> {
    if chosen.is_empty() {
        return Err(Problem::NoSeatChosen);
    }
    if chosen.len() > max as usize {
        return Err(Problem::TooManyTickets { max });
    }
    for &seat in chosen {
        let state = (seat as usize).checked_sub(1).and_then(|i| seats.get(i));
        match state {
            None => {
                return Err(Problem::NoSuchSeat {
                    seat,
                    seats: seats.len() as u32,
                });
            }
            Some(SeatState::Free) => {}
            Some(SeatState::Blocked) => return Err(Problem::SeatBlocked { seat: name(seat) }),
            Some(SeatState::Held(_) | SeatState::Sold(_)) => {
                return Err(Problem::SeatTaken { seat: name(seat) });
            }
        }
    }
    Ok(())
}

/// What a refused hold means for the order form's `field` (the seat map or the quantity).
fn order_refused(errors: &mut FormErrors, field: &str, e: &ApiError, name: impl Fn(u32) -> String) {
    match e {
        ApiError::Rejected(r) => match r {
            Rejection::SeatOutOfRange { seat, seats } => errors.add(
                field,
                Problem::NoSuchSeat {
                    seat: *seat,
                    seats: *seats,
                },
            ),
            Rejection::SeatTaken { seat } => {
                errors.add(field, Problem::SeatTaken { seat: name(*seat) })
            }
            Rejection::SeatBlocked { seat } => {
                errors.add(field, Problem::SeatBlocked { seat: name(*seat) })
            }
            Rejection::NoAdjacentSeats { quantity } => errors.add(
                field,
                Problem::NotTogether {
                    quantity: *quantity,
                    within: String::new(),
                },
            ),
            Rejection::BadQuantity { max, .. } | Rejection::CustomerLimit { max } => {
                errors.add(field, Problem::TooManyTickets { max: *max })
            }
            Rejection::SoldOut => errors.add(field, Problem::NotEnoughLeft),
            _ => errors.api(e, |_| None),
        },
        other => errors.api(other, |_| None),
    }
}

/// The event page again, with `errors` beside the order form and what the buyer chose kept,
/// answered with `status` (or the event's 404 if it is gone).
fn event_page_refused(
    state: &AppState,
    nav: &Nav,
    id: u64,
    caller: &crate::extract::Caller,
    kept: &Chosen,
    errors: FormErrors,
    status: axum::http::StatusCode,
) -> Response {
    match event_page(state, nav.clone(), id, errors, Some(caller), kept) {
        Some(page) => (status, page).into_response(),
        None => PageError::not_found(nav.clone(), "event").into_response(),
    }
}

fn event_page(
    state: &AppState,
    nav: Nav,
    id: u64,
    errors: FormErrors,
    user: Option<&crate::extract::Caller>,
    chosen: &Chosen,
) -> Option<EventPage> {
    let room = super::queue::panel(state, EventId(id), user.map(|c| c.user_id));
    let s = state.node.shared.read();
    let e = s.event(EventId(id))?;
    let a = crate::views::availability(e);
    let plan = s.seat_map(e).map(|map| {
        let seats = e.inventory.seat_states();
        let asked = (chosen.section.as_deref(), chosen.page);
        seatmap::plan(
            &map,
            seats,
            &e.details.currency,
            asked,
            &chosen.seat_numbers(),
        )
    });
    let price = super::ticket_price(e.details.price_cents, &e.details.currency);
    let price = match &plan {
        Some(p) if p.prices_differ => format!("from {price}"),
        _ => price,
    };
    let limit = s.limits().seats_per_order_max;
    Some(EventPage {
        nav,
        id,
        name: e.details.name.clone(),
        description: e.details.description.clone(),
        when: when_local(e.details.starts_at_ms, s.event_zone(e.id)),
        venue: e.details.venue.name.clone(),
        lat: e.details.venue.lat,
        lon: e.details.venue.lon,
        price,
        refundable: e.details.refundable,
        sold: a.sold,
        held: a.held,
        available: a.available,
        plan,
        per_customer_max: order_max(e, limit),
        can_edit: user.is_some_and(|c| c.is_admin() || c.user_id == e.organizer),
        errors,
        cancelled: s.cancellation(e.id).map(|c| CancelledBanner {
            when: when(c.at_ms as i64),
            reason: c.reason.clone(),
        }),
        chosen_quantity: chosen.quantity.unwrap_or(1).clamp(1, ORDER_QUANTITY_MAX),
        room_blocks: room.as_ref().is_some_and(|r| !r.may_buy),
        room,
        chosen_together: chosen.quantity.unwrap_or(2).clamp(1, order_max(e, limit)),
        image: PageImage::of(&s, e),
        og_image: None,
    })
}

async fn detail(
    State(state): State<AppState>,
    caller: MaybeCaller,
    headers: axum::http::HeaderMap,
    Path(id): Path<u64>,
    Query(chosen): Query<Chosen>,
) -> Response {
    let nav = Nav::of(caller.0.as_ref());
    // A page opened on a follower right after the event was created elsewhere: wait for it.
    let _ = state.read_fresh(|s| s.event(EventId(id)).map(|_| ())).await;
    let errors = FormErrors::new();
    match event_page(&state, nav.clone(), id, errors, caller.0.as_ref(), &chosen) {
        Some(mut page) => {
            let origin = super::site_origin(&state.config, &headers);
            page.og_image = page.image.as_ref().map(|i| format!("{origin}{}", i.url));
            page.into_response()
        }
        None => PageError::not_found(nav, "event").into_response(),
    }
}

/// The event as an iCalendar file (RFC 5545) for "add to calendar": one `VEVENT` with the start
/// (UTC), an assumed length of [`CALENDAR_EVENT_HOURS`], the venue and a link back.
async fn calendar(
    State(state): State<AppState>,
    caller: MaybeCaller,
    headers: axum::http::HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let found = state
        .read_fresh(|s| s.event(EventId(id)).map(|e| e.details.clone()))
        .await;
    let Some(d) = found else {
        return PageError::not_found(Nav::of(caller.0.as_ref()), "event").into_response();
    };
    let origin = super::site_origin(&state.config, &headers);
    let stamp = |ms: i64| {
        crate::views::rfc3339(ms)
            .replace(['-', ':'], "")
            .trim_end_matches('Z')
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned()
            + "Z"
    };
    let ends_ms = d.starts_at_ms + CALENDAR_EVENT_HOURS * 3_600_000;
    let body = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//tix//box office//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:event-{id}@tix"),
        format!("DTSTAMP:{}", stamp(tix_raft::proposer::now_ms() as i64)),
        format!("DTSTART:{}", stamp(d.starts_at_ms)),
        format!("DTEND:{}", stamp(ends_ms)),
        format!("SUMMARY:{}", ics_text(&d.name)),
        format!("LOCATION:{}", ics_text(&d.venue.name)),
        format!("GEO:{};{}", d.venue.lat, d.venue.lon),
        format!("DESCRIPTION:{}", ics_text(&d.description)),
        format!("URL:{origin}/events/{id}"),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ]
    .iter()
    .map(|line| ics_fold(line))
    .collect::<Vec<_>>()
    .join("\r\n")
        + "\r\n";
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"event-{id}.ics\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// How long an event is assumed to last in its calendar entry (tix stores only the start).
const CALENDAR_EVENT_HOURS: i64 = 3;

/// Folds an iCalendar content line longer than 75 octets (RFC 5545 3.1): a line break and a
/// space before each further chunk, never inside a UTF-8 character.
fn ics_fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out
}

/// Escapes a text value of an iCalendar property (RFC 5545 3.3.11): backslash, semicolon,
/// comma and line breaks; other control characters are dropped.
fn ics_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Server-Sent Events: the event's availability now in full (counts and one letter per seat:
/// `F` free, `H` held, `S` sold, `B` blocked), then, whenever applied log entries changed it,
/// the counts and only the seats that changed (`live::encode_update`). The event's feed is
/// driven by the state machine's applied-index signal, so another buyer's purchase reaches every
/// open page within one commit (and at most `sse_update_interval_ms` later). Past a cap — per
/// node, or per client (the signed-in user, else the peer address) — the answer is a cheap 503
/// with `Retry-After`, before anything is rendered.
async fn live(
    State(state): State<AppState>,
    caller: MaybeCaller,
    PeerAddr(peer): PeerAddr,
    ApiPath(id): ApiPath,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let client = match (&caller.0, peer) {
        (Some(caller), _) => Some(ClientKey::User(caller.user_id.0)),
        (None, Some(addr)) => Some(ClientKey::address(addr.ip())),
        (None, None) => None,
    };
    let (mut subscription, driver) = state
        .live
        .subscribe(client, EventId(id))
        .map_err(ApiError::LiveFull)?;
    let Next::Send(first) = subscription.first(&state.node.shared, Instant::now()) else {
        return Err(ApiError::NotFound("event"));
    };
    if let Some(driver) = driver {
        // Stops by itself when the event's last subscriber is gone.
        tokio::spawn(driver.run(state.node.shared.clone()));
    }
    let message = |data: Arc<str>| Ok(SseEvent::default().event("availability").data(data));
    let stream = futures::stream::unfold(
        (subscription, Some(first)),
        move |(mut subscription, pending)| async move {
            if let Some(data) = pending {
                return Some((message(data), (subscription, None)));
            }
            loop {
                if !subscription.changed().await {
                    return None;
                }
                match subscription.next(Instant::now()) {
                    Next::Send(data) => return Some((message(data), (subscription, None))),
                    Next::Wait => {}
                    Next::Gone | Next::TooSlow => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn order(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let form = form_pairs(&body);
    let seats: Vec<u32> = form
        .iter()
        .filter(|(k, _)| k == "seat")
        .filter_map(|(_, v)| v.parse().ok())
        .take(ORDER_QUANTITY_MAX as usize)
        .collect();
    // Carried through a login, and kept on the page if the hold is refused (one seat taken
    // meanwhile, say).
    let mut kept = Chosen::of(&seats, field(&form, "quantity").parse().ok());
    kept.section = Some(field(&form, "section").to_owned()).filter(|s| !s.is_empty());
    kept.page = field(&form, "page").parse().ok();
    let Some(c) = caller.0 else {
        // Back to the event page after logging in (or signing up), the choice still made.
        return login_first(&format!("/events/{id}{}", kept.query()));
    };
    let nav = Nav::of(Some(&c));
    // Every field in the user's words first, against the seat map this node has.
    let mut errors = FormErrors::new();
    let checked = {
        let s = state.node.shared.read();
        s.event(EventId(id)).map(|e| {
            let max = order_max(e, s.limits().seats_per_order_max);
            match &e.inventory {
                Inventory::Numbered { seats: states, .. } => {
                    let map = s.seat_map(e).expect("numbered");
                    let name = |n: u32| map.seat_name(n);
                    errors.check("seatmap", check_seats(&seats, states, max, name));
                    (true, HoldRequest::Seats(seats.clone()))
                }
                Inventory::Unnumbered { .. } => {
                    let quantity = field(&form, "quantity");
                    let q = errors.check("quantity", form::whole(quantity, 1, max));
                    (false, HoldRequest::Quantity(q.unwrap_or(0)))
                }
            }
        })
    };
    let Some((numbered, request)) = checked else {
        return PageError::not_found(nav, "event").into_response();
    };
    let order_field = if numbered { "seatmap" } else { "quantity" };
    let refused = |errors: FormErrors, status| {
        event_page_refused(&state, &nav, id, &c, &kept, errors, status)
    };
    if !errors.is_empty() {
        return refused(errors, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    }
    // The form carries a request id so a double submit places one hold, not two.
    let request_id = match field(&form, "request_id") {
        "" => format!("page-{}", rand::random::<u64>()),
        r => r.chars().take(64).collect(),
    };
    match hold(&state, &c, EventId(id), request_id, request, None).await {
        Ok((placed, _)) => see_other(&format!("/holds/{}", placed.hold_id.0)),
        // Not admitted by the event's waiting room: its page says where the buyer stands.
        Err(ApiError::Admission(_)) => see_other(&format!("/events/{id}/queue")),
        Err(e) => {
            order_refused(&mut errors, order_field, &e, |n| seat_name(&state, id, n));
            refused(errors, e.problem().0)
        }
    }
}

/// Returns a seat's name for people as this node's state has it ("Block A, Row 3, Seat 8").
fn seat_name(state: &AppState, event_id: u64, seat: u32) -> String {
    let s = state.node.shared.read();
    s.event(EventId(event_id))
        .and_then(|e| s.seat_map(e).map(|map| map.seat_name(seat)))
        .unwrap_or_else(|| format!("Seat {seat}"))
}

/// "N together, best available" from the event page: the core picks adjacent free seats in one
/// row of the section the form names (or anywhere), then the buyer goes to the checkout like
/// after choosing seats. A refusal (no such run, too many) comes back beside the form's field.
async fn best(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let form = form_pairs(&body);
    let section = field(&form, "section").trim().to_owned();
    let quantity = field(&form, "together");
    let kept = Chosen {
        seats: None,
        quantity: quantity.parse().ok(),
        section: Some(section.clone()).filter(|s| !s.is_empty()),
        page: field(&form, "page").parse().ok(),
    };
    let Some(c) = caller.0 else {
        return login_first(&format!("/events/{id}{}", kept.query()));
    };
    let nav = Nav::of(Some(&c));
    let max = {
        let s = state.node.shared.read();
        s.event(EventId(id))
            .map(|e| order_max(e, s.limits().seats_per_order_max))
    };
    let Some(max) = max else {
        return PageError::not_found(nav, "event").into_response();
    };
    let mut errors = FormErrors::new();
    let q = errors.check("together", form::whole(quantity, 1, max));
    let index = match section.as_str() {
        "" => None,
        name => match crate::shop::section_index(&state, EventId(id), name) {
            Ok(index) => Some(index),
            Err(e) => {
                errors.api(&e, |_| Some("together"));
                None
            }
        },
    };
    let refused = |errors: FormErrors, status| {
        event_page_refused(&state, &nav, id, &c, &kept, errors, status)
    };
    let Some(quantity) = q.filter(|_| errors.is_empty()) else {
        return refused(errors, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    };
    let request_id = match field(&form, "request_id") {
        "" => format!("page-{}", rand::random::<u64>()),
        r => r.chars().take(64).collect(),
    };
    let request = HoldRequest::BestAvailable {
        quantity,
        section: index,
    };
    match hold(&state, &c, EventId(id), request_id, request, None).await {
        Ok((placed, _)) => see_other(&format!("/holds/{}", placed.hold_id.0)),
        // Not admitted by the event's waiting room: its page says where the buyer stands.
        Err(ApiError::Admission(_)) => see_other(&format!("/events/{id}/queue")),
        Err(ApiError::Rejected(Rejection::NoAdjacentSeats { quantity })) => {
            let within = match section.as_str() {
                "" => String::new(),
                name => format!(" in {name}"),
            };
            errors.add("together", Problem::NotTogether { quantity, within });
            refused(errors, axum::http::StatusCode::CONFLICT)
        }
        Err(e) => {
            order_refused(&mut errors, "together", &e, |n| seat_name(&state, id, n));
            refused(errors, e.problem().0)
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/checkout.html")]
struct CheckoutPage {
    nav: Nav,
    hold_id: u64,
    event_id: u64,
    event_name: String,
    /// Each ticket, its price and the total.
    breakdown: Breakdown,
    expires_at_ms: u64,
    expires_at: String,
    /// What was wrong with the last payment: the card number, or the payment as a whole.
    errors: FormErrors,
    /// The card number as typed, kept after a mistyped one (never after a payment went out).
    card_number: String,
}

/// An order shown after payment: right after it, and whenever its checkout address is opened
/// again.
#[derive(Template, WebTemplate)]
#[template(path = "pages/confirmation.html")]
struct ConfirmationPage {
    nav: Nav,
    /// "Order confirmed" right after paying, "Paid — order #N" when the checkout is reopened.
    heading: String,
    order_id: u64,
    event_id: u64,
    event_name: String,
    /// How many tickets.
    tickets: usize,
    /// Each ticket, its price and the total, as at checkout.
    breakdown: Breakdown,
}

/// The order page of `order_id` for its customer `c`, read from history (its tickets: one
/// point read each) and the local state (the event's name and currency).
fn order_page(
    state: &AppState,
    nav: Nav,
    c: &crate::extract::Caller,
    order_id: tix_core::OrderId,
    heading: Option<String>,
) -> Result<Option<ConfirmationPage>, ApiError> {
    let history = state.node.shared.history()?;
    let Some(order) = history.order(order_id).filter(|o| o.customer == c.user_id) else {
        return Ok(None);
    };
    // The price each ticket was sold at (the hold's, even if the event's changed since).
    let sold: Vec<(Option<u32>, u64)> = order
        .tickets
        .iter()
        .filter_map(|t| history.ticket(*t))
        .map(|t| (t.seat, t.price_cents))
        .collect();
    let s = state.node.shared.read();
    let Some(e) = s.event(order.event_id) else {
        return Ok(None);
    };
    Ok(Some(ConfirmationPage {
        nav,
        heading: heading.unwrap_or_else(|| format!("Paid — order #{}", order.id.0)),
        order_id: order.id.0,
        event_id: e.id.0,
        event_name: e.details.name.clone(),
        tickets: order.tickets.len(),
        breakdown: Breakdown::of(&sold, &e.inventory, s.layout(e.id), &e.details.currency),
    }))
}

/// The checkout address of a hold that is no longer active, for its customer: the order it
/// became, or how it ended unpaid. `None` when this node does not remember the hold ending
/// (long ago, never, or someone else's).
fn ended_page(
    state: &AppState,
    nav: Nav,
    c: &crate::extract::Caller,
    hold_id: u64,
) -> Result<Option<Response>, ApiError> {
    let ended = {
        let s = state.node.shared.read();
        s.ended_hold(HoldId(hold_id))
            .filter(|e| e.customer == c.user_id)
            .map(|e| {
                let name = s
                    .event(e.event_id)
                    .map(|ev| ev.details.name.clone())
                    .unwrap_or_default();
                (e.clone(), name)
            })
    };
    let Some((ended, event_name)) = ended else {
        return Ok(None);
    };
    let (headline, message) = match ended.how {
        HoldEnd::Confirmed(order_id) => {
            return Ok(order_page(state, nav, c, order_id, None)?.map(IntoResponse::into_response));
        }
        HoldEnd::Expired => (
            "This hold expired unpaid",
            format!(
                "Time ran out at {} before it was paid: nothing was charged, and the tickets \
                 for {event_name} went back on sale.",
                when(ended.at_ms as i64)
            ),
        ),
        HoldEnd::Released => (
            "You released this hold",
            format!(
                "You cancelled it at {} before paying: nothing was charged, and the tickets for \
                 {event_name} went back on sale.",
                when(ended.at_ms as i64)
            ),
        ),
        HoldEnd::EventCancelled => (
            "This event was cancelled",
            format!(
                "The organizer cancelled {event_name} at {} before this hold was paid: nothing \
                 was charged.",
                when(ended.at_ms as i64)
            ),
        ),
    };
    Ok(Some(
        ReleasedPage {
            nav,
            event_id: ended.event_id.0,
            headline: headline.into(),
            message,
        }
        .into_response(),
    ))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/released.html")]
struct ReleasedPage {
    nav: Nav,
    event_id: u64,
    headline: String,
    message: String,
}

fn checkout_view(
    state: &AppState,
    nav: Nav,
    c: &crate::extract::Caller,
    hold_id: u64,
    errors: FormErrors,
    card_number: String,
) -> Option<CheckoutPage> {
    let s = state.node.shared.read();
    let h = s
        .hold(HoldId(hold_id))
        .filter(|h| h.customer == c.user_id)?;
    let e = s.event(h.event_id)?;
    Some(CheckoutPage {
        nav,
        hold_id,
        event_id: e.id.0,
        event_name: e.details.name.clone(),
        breakdown: Breakdown::of_hold(
            &h.seats,
            h.quantity,
            h.price_cents,
            &e.inventory,
            s.layout(e.id),
            &e.details.currency,
        ),
        expires_at_ms: h.expires_at_ms,
        expires_at: when(h.expires_at_ms as i64),
        errors,
        card_number,
    })
}

async fn checkout_page(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/holds/{id}"));
    };
    // The checkout shows the hold itself: no banner pointing at it.
    let nav = Nav {
        hold: None,
        ..Nav::of(Some(&c))
    };
    // Fresh: the hold, or how it ended (a payment confirmed on another node, say).
    let _ = state
        .read_fresh(|s| {
            let id = HoldId(id);
            (s.hold(id).is_some() || s.ended_hold(id).is_some()).then_some(())
        })
        .await;
    if let Some(page) = checkout_view(
        &state,
        nav.clone(),
        &c,
        id,
        FormErrors::new(),
        String::new(),
    ) {
        return page.into_response();
    }
    match ended_page(&state, nav.clone(), &c, id) {
        Ok(Some(page)) => page,
        Ok(None) => PageError {
            status: axum::http::StatusCode::NOT_FOUND,
            title: "Hold not found".into(),
            message: "There is no open hold of yours at this address. If you paid for it, the \
                      order is under My orders; otherwise order again from the event page."
                .into(),
            nav,
        }
        .into_response(),
        Err(e) => PageError::from_api(nav, e).into_response(),
    }
}

async fn checkout(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/holds/{id}"));
    };
    // The checkout shows the hold itself: no banner pointing at it.
    let nav = Nav {
        hold: None,
        ..Nav::of(Some(&c))
    };
    let form = form_pairs(&body);
    let typed = field(&form, "card_number").trim().to_owned();
    let card: String = typed.chars().filter(|ch| !ch.is_whitespace()).collect();
    let before = {
        let s = state.node.shared.read();
        s.hold(HoldId(id))
            .filter(|h| h.customer == c.user_id)
            .and_then(|h| {
                s.event(h.event_id)
                    .map(|e| (e.id.0, e.details.name.clone(), e.details.currency.clone()))
            })
    };
    let Some((event_id, event_name, currency)) = before else {
        // Ended already — paid (a second click, a resubmitted form), released, expired: its
        // address says how, and shows the order if it was paid.
        if let Ok(Some(_)) = ended_page(&state, nav.clone(), &c, id) {
            return see_other(&format!("/holds/{id}"));
        }
        return ReleasedPage {
            nav,
            event_id: 0,
            headline: "This hold is gone".into(),
            message: "It expired or was released; the seats are back on sale.".into(),
        }
        .into_response();
    };
    let mut errors = FormErrors::new();
    if errors.check("card_number", check_card(&card)).is_none() {
        return match checkout_view(&state, nav.clone(), &c, id, errors, typed) {
            Some(page) => (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
            None => ReleasedPage {
                nav,
                event_id,
                headline: "This hold is gone".into(),
                message: "It expired or was released; the seats are back on sale.".into(),
            }
            .into_response(),
        };
    }
    match pay(&state, &c, HoldId(id), &card).await {
        Ok(order) => {
            match order_page(
                &state,
                nav.clone(),
                &c,
                order.order_id,
                Some("Order confirmed".into()),
            ) {
                Ok(Some(page)) => page.into_response(),
                // Applied elsewhere and not here yet: what the answer says.
                _ => ConfirmationPage {
                    nav,
                    heading: "Order confirmed".into(),
                    order_id: order.order_id.0,
                    event_id,
                    event_name,
                    tickets: order.tickets.len(),
                    breakdown: Breakdown {
                        lines: Vec::new(),
                        total_cents: order.total_cents,
                        total: money(order.total_cents, &currency),
                    },
                }
                .into_response(),
            }
        }
        // The hold stays: the checkout again, to try another card.
        Err(ApiError::PaymentDeclined(why)) => {
            errors.add_form(format!(
                "Payment declined: {}. Nothing was charged; your tickets stay held until the \
                 countdown ends — try another card.",
                why.split(';').next().unwrap_or(&why)
            ));
            match checkout_view(&state, nav.clone(), &c, id, errors, String::new()) {
                Some(page) => (axum::http::StatusCode::PAYMENT_REQUIRED, page).into_response(),
                None => ReleasedPage {
                    nav,
                    event_id,
                    headline: "Payment declined".into(),
                    message: "Nothing was charged, and the hold has expired meanwhile.".into(),
                }
                .into_response(),
            }
        }
        Err(e @ ApiError::Invalid { .. }) => {
            errors.api(&e, |f| (f == "card_number").then_some("card_number"));
            match checkout_view(&state, nav.clone(), &c, id, errors, typed) {
                Some(page) => (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
                None => PageError::from_api(nav, e).into_response(),
            }
        }
        Err(ApiError::Rejected(_) | ApiError::NotFound(_)) => ReleasedPage {
            nav,
            event_id,
            headline: "This hold expired".into(),
            message: "Time ran out before the payment went through; the seats are back on sale and nothing was charged.".into(),
        }
        .into_response(),
        Err(e) => PageError::from_api(nav, e).into_response(),
    }
}

/// Checks a card number (spaces and dashes allowed) as the payment provider will, in the
/// user's words.
fn check_card(card: &str) -> Result<(), Problem> {
    let digits: String = card
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .collect();
    if digits.is_empty() {
        return Err(Problem::Missing);
    }
    if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::CardDigits);
    }
    crate::payments::normalize_card(&digits)
        .map(|_| ())
        .map_err(|_| Problem::CardMistyped)
}

async fn cancel(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/holds/{id}"));
    };
    let event_id = state
        .node
        .shared
        .read()
        .hold(HoldId(id))
        .map(|h| h.event_id.0);
    let _ = release(&state, &c, HoldId(id)).await;
    see_other(
        &event_id
            .map(|e| format!("/events/{e}"))
            .unwrap_or_else(|| "/".into()),
    )
}

#[cfg(test)]
mod calendar_tests {
    use super::{ics_fold, ics_text};

    #[test]
    fn calendar_text_is_escaped_and_long_lines_folded() {
        assert_eq!(ics_text("A, B; C\\D\nE\u{7}"), "A\\, B\\; C\\\\D\\nE");
        let long = format!("DESCRIPTION:{}", "ü".repeat(60));
        let folded = ics_fold(&long);
        for line in folded.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
        }
        assert_eq!(
            folded.replace("\r\n ", ""),
            long,
            "unfolding gives the line back"
        );
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    // The seats of an order are checked against the map: chosen, not too many, existing, free.
    #[test]
    fn checks_seats_against_the_map() {
        let map = [
            SeatState::Free,
            SeatState::Blocked,
            SeatState::Free,
            SeatState::Free,
        ];
        let name = |n: u32| format!("Row 1, Seat {n}");
        assert_eq!(check_seats(&[1, 3], &map, 2, name), Ok(()));
        assert_eq!(check_seats(&[], &map, 2, name), Err(Problem::NoSeatChosen));
        assert_eq!(
            check_seats(&[1, 3, 4], &map, 2, name),
            Err(Problem::TooManyTickets { max: 2 })
        );
        assert_eq!(
            check_seats(&[999], &map, 2, name),
            Err(Problem::NoSuchSeat {
                seat: 999,
                seats: 4
            })
        );
        assert_eq!(
            check_seats(&[0], &map, 2, name),
            Err(Problem::NoSuchSeat { seat: 0, seats: 4 })
        );
        assert_eq!(
            check_seats(&[2], &map, 2, name),
            Err(Problem::SeatBlocked {
                seat: "Row 1, Seat 2".into()
            })
        );
    }

    // Card numbers: spaces and dashes are fine; a wrong length or a wrong check digit is
    // told apart.
    #[test]
    fn checks_card_numbers() {
        assert_eq!(check_card("4242 4242 4242 4242"), Ok(()));
        assert_eq!(check_card("4242-4242-4242-4242"), Ok(()));
        assert_eq!(check_card(""), Err(Problem::Missing));
        assert_eq!(check_card("4242 4242"), Err(Problem::CardDigits));
        assert_eq!(check_card("4242 4242 4242 424x"), Err(Problem::CardDigits));
        assert_eq!(
            check_card("4242 4242 4242 4243"),
            Err(Problem::CardMistyped)
        );
    }
}
