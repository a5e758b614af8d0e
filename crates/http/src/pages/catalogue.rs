//! The home page (upcoming events as cards, search by words and dates, paging) and the
//! organizers' create/edit form: every field checked in the user's words at once
//! ([`super::form`]), then by the same functions as the API, each error shown beside its field
//! with the typed values kept.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tix_core::{EventId, Inventory};

use super::event_image::{self, ImageChange, Posted};
use super::form::{self, FormErrors, Problem};
use super::{EVENT_FORM_BYTES_MAX, Nav, PageError, field, login_first, see_other, when_local};
use crate::AppState;
use crate::error::ApiError;
use crate::events::{
    BLOCKED_SEATS_MAX, DESCRIPTION_CHARS_MAX, EventBody, ListQuery, NAME_CHARS_MAX, create_event,
    search, update_event, validate_details, validate_inventory,
};
use crate::extract::{MaybeCaller, parse_json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route(
            "/events/new",
            get(new_form)
                .post(create)
                .layer(DefaultBodyLimit::max(EVENT_FORM_BYTES_MAX)),
        )
        .route(
            "/events/{id}/edit",
            get(edit_form)
                .post(edit)
                .layer(DefaultBodyLimit::max(EVENT_FORM_BYTES_MAX)),
        )
}

/// "few left" below this share of the capacity.
const FEW_LEFT_PERCENT: u32 = 10;

/// An event as a card.
pub struct Card {
    pub id: u64,
    pub name: String,
    pub when: String,
    pub venue: String,
    pub price: String,
    pub available: u32,
    pub badge: Option<&'static str>,
    /// `sold` or `few`, for the badge's colour.
    pub badge_class: &'static str,
    /// The event's image as a thumbnail (decorative here: the card's heading names the event).
    pub image: Option<super::buy::PageImage>,
}

impl Card {
    /// A card for the listing; a cancelled event is listed as cancelled, with nothing left.
    fn of(s: &tix_core::State, e: &tix_core::Event) -> Card {
        let cancelled = s.cancellation(e.id).is_some();
        let zone = s.event_zone(e.id);
        let a = crate::views::availability(e);
        let capacity = a.sold + a.held + a.available;
        let available = if cancelled { 0 } else { a.available };
        let badge = if cancelled {
            Some("Cancelled")
        } else if a.available == 0 {
            Some("Sold out")
        } else if u64::from(a.available) * 100 <= u64::from(capacity) * u64::from(FEW_LEFT_PERCENT)
        {
            Some("Few left")
        } else {
            None
        };
        Card {
            id: e.id.0,
            name: e.details.name.clone(),
            when: when_local(e.details.starts_at_ms, zone),
            venue: e.details.venue.name.clone(),
            price: super::ticket_price(e.details.price_cents, &e.details.currency),
            available,
            badge_class: if available == 0 { "sold" } else { "few" },
            badge,
            image: super::buy::PageImage::of(s, e),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct HomePage {
    nav: Nav,
    cards: Vec<Card>,
    q: String,
    from: String,
    to: String,
    total: usize,
    page: u32,
    pages: u32,
    error: Option<String>,
    prev_link: Option<String>,
    next_link: Option<String>,
}

fn link(q: &str, from: &str, to: &str, page: u32) -> String {
    format!(
        "/?q={}&from={}&to={}&page={page}",
        super::url_encode(q),
        super::url_encode(from),
        super::url_encode(to)
    )
}

async fn home(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    let (q, from, to) = (get("q"), get("from"), get("to"));
    let page = get("page").parse::<u32>().unwrap_or(1).max(1);
    let list = ListQuery {
        q: Some(q.clone()),
        from: Some(from.clone()),
        to: Some(to.clone()),
        page: Some(page),
        per_page: Some(12),
    };
    // A range that ends before it starts matches nothing: say so rather than "no events".
    let reversed = !from.is_empty() && !to.is_empty() && from > to;
    let s = state.node.shared.read();
    let found = if reversed {
        Err(ApiError::invalid(
            "to",
            format!("{to} is before {from}: swap the dates to see events between them"),
        ))
    } else {
        search(s.events(), &list)
    };
    let (cards, total, error) = match found {
        Ok(found) => (
            found.events.iter().map(|e| Card::of(&s, e)).collect(),
            found.total,
            None,
        ),
        Err(ApiError::Invalid { field, detail }) => {
            let label = match field.as_str() {
                "from" => "From date",
                "to" => "To date",
                "q" => "Search",
                "page" => "Page",
                other => other,
            };
            (Vec::new(), 0, Some(format!("{label}: {detail}")))
        }
        Err(e) => (Vec::new(), 0, Some(e.to_string())),
    };
    drop(s);
    let pages = total.div_ceil(12).max(1) as u32;
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page_view = HomePage {
        nav: Nav::of(caller.0.as_ref()),
        prev_link: (page > 1).then(|| link(&q, &from, &to, page - 1)),
        next_link: (page < pages).then(|| link(&q, &from, &to, page + 1)),
        cards,
        q,
        from,
        to,
        total,
        page,
        pages,
        error,
    };
    (status, page_view).into_response()
}

/// The form's fields, as typed (re-shown after an error).
#[derive(Debug, Clone, Default)]
pub struct EventForm {
    pub name: String,
    pub description: String,
    pub date: String,
    pub time: String,
    /// The venue's IANA time zone; the date and time are read in it.
    pub time_zone: String,
    pub venue: String,
    pub lat: String,
    pub lon: String,
    pub price: String,
    pub currency: String,
    pub kind: String,
    pub capacity: String,
    pub rows: String,
    pub seats_per_row: String,
    pub blocked: String,
    /// Seats in named sections: one per line, "name; rows; seats per row; price".
    pub sections: String,
    pub refundable: bool,
    pub version: String,
    /// The image's description, as typed (or as stored, on the edit form).
    pub image_alt: String,
    /// "Remove the image" was ticked.
    pub remove_image: bool,
    /// The event's image now (the edit form shows it).
    pub image: Option<super::buy::PageImage>,
}

impl EventForm {
    fn from_pairs(pairs: &[(String, String)]) -> EventForm {
        let f = |k: &str| field(pairs, k).trim().to_owned();
        EventForm {
            name: f("name"),
            description: f("description"),
            date: f("date"),
            time: f("time"),
            time_zone: f("time_zone"),
            venue: f("venue"),
            lat: f("lat"),
            lon: f("lon"),
            price: f("price"),
            currency: f("currency"),
            kind: f("kind"),
            capacity: f("capacity"),
            rows: f("rows"),
            seats_per_row: f("seats_per_row"),
            blocked: f("blocked"),
            sections: f("sections"),
            refundable: field(pairs, "refundable") == "on",
            version: f("version"),
            image_alt: f("image_alt"),
            remove_image: field(pairs, "remove_image") == "on",
            image: None,
        }
    }

    fn of_event(s: &tix_core::State, e: &tix_core::Event) -> EventForm {
        let zone = s.event_zone(e.id);
        let d = &e.details;
        let (date, time) =
            crate::zone::local_date_time(d.starts_at_ms, &crate::zone::of_name(zone));
        EventForm {
            name: d.name.clone(),
            description: d.description.clone(),
            date,
            time,
            time_zone: zone.to_owned(),
            venue: d.venue.name.clone(),
            lat: d.venue.lat.to_string(),
            lon: d.venue.lon.to_string(),
            price: format!("{}.{:02}", d.price_cents / 100, d.price_cents % 100),
            currency: d.currency.clone(),
            kind: match e.inventory {
                Inventory::Unnumbered { .. } => "ga".into(),
                Inventory::Numbered { .. } => "seated".into(),
            },
            refundable: d.refundable,
            version: e.version.to_string(),
            image_alt: s
                .event_image(e.id)
                .map(|i| i.alt.clone())
                .unwrap_or_default(),
            image: super::buy::PageImage::of(s, e),
            ..EventForm::default()
        }
    }

    /// Checks the image fields against the event's image now (`current_alt`: its description,
    /// when it has one) into the change asked for, adding to `errors`.
    fn check_image(
        &self,
        file: Option<&[u8]>,
        current_alt: Option<&str>,
        errors: &mut FormErrors,
    ) -> ImageChange {
        event_image::check(
            file,
            &self.image_alt,
            self.remove_image,
            current_alt,
            errors,
        )
    }

    /// Checks every field of the form in the user's words and builds the API body; the
    /// errors list each bad field, not just the first. A new event's start must be in the
    /// future, and so must an edited one's when the edit moves it (as the API decides).
    fn check(&self, checking: Checking) -> Result<EventBody, FormErrors> {
        let mut errors = FormErrors::new();
        errors.check("name", form::text(&self.name, true, NAME_CHARS_MAX, false));
        errors.check(
            "description",
            form::text(&self.description, false, DESCRIPTION_CHARS_MAX, true),
        );
        let date = errors.check("date", date(&self.date));
        let time = errors.check("time", time_of_day(&self.time));
        let zone = errors.check("time_zone", time_zone(&self.time_zone));
        let starts_ms = match (date.zip(time), &zone) {
            (Some((d, t)), Some((_, tz))) => {
                errors.check("time", local_start(&format!("{d}T{t}"), tz))
            }
            _ => None,
        };
        // The API gets the instant (UTC) and the zone's name.
        let starts_at = starts_ms.map(crate::views::rfc3339);
        let moved = |ms: i64| match checking {
            Checking::Create { .. } => true,
            Checking::Edit { starts_at_ms } => starts_at_ms != ms,
        };
        if let Some(ms) = starts_ms
            && moved(ms)
            && ms <= tix_raft::proposer::now_ms() as i64
        {
            errors.add("date", Problem::InThePast);
        }
        errors.check(
            "venue",
            form::text(&self.venue, true, NAME_CHARS_MAX, false),
        );
        let lat = errors.check(
            "lat",
            form::number(&self.lat, "48.2082", (-90.0, 90.0), ("−90", "90")),
        );
        let lon = errors.check(
            "lon",
            form::number(&self.lon, "16.3738", (-180.0, 180.0), ("−180", "180")),
        );
        let price_cents = errors.check("price", price(&self.price));
        let currency = errors.check("currency", currency(&self.currency));
        let inventory = match checking {
            Checking::Create { capacity_max } => self.inventory(&mut errors, capacity_max),
            Checking::Edit { .. } => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut body = json!({
            "name": self.name,
            "description": self.description,
            "starts_at": starts_at,
            "time_zone": zone.map(|(name, _)| name),
            "venue": {"name": self.venue, "lat": lat, "lon": lon},
            "price_cents": price_cents,
            "currency": currency,
            "refundable": self.refundable,
        });
        match inventory {
            Some(inventory) => body["inventory"] = inventory,
            None => body["version"] = json!(self.version.parse::<u64>().unwrap_or(0)),
        }
        parse_json(body.to_string().as_bytes()).map_err(|e| api_errors(&e).1)
    }

    /// Checks the tickets part of the form into the API's `inventory`, adding what is wrong
    /// to `errors`.
    fn inventory(&self, errors: &mut FormErrors, capacity_max: u32) -> Option<serde_json::Value> {
        match self.kind.as_str() {
            "ga" => {
                let capacity =
                    errors.check("capacity", form::whole(&self.capacity, 1, capacity_max))?;
                Some(json!({"kind": "unnumbered", "capacity": capacity}))
            }
            "seated" => {
                let rows = errors.check("rows", form::whole(&self.rows, 1, capacity_max));
                let per_row = errors.check(
                    "seats_per_row",
                    form::whole(&self.seats_per_row, 1, capacity_max),
                );
                let seats = match rows.zip(per_row) {
                    Some((r, p)) if u64::from(r) * u64::from(p) > u64::from(capacity_max) => {
                        errors.add("rows", Problem::TooManySeats { max: capacity_max });
                        None
                    }
                    Some((r, p)) => Some(r * p),
                    None => None,
                };
                let blocked = errors.check("blocked", blocked_seats(&self.blocked, seats));
                Some(
                    json!({"kind": "numbered", "rows": rows?, "seats_per_row": per_row?,
                            "blocked": blocked?}),
                )
            }
            "sections" => {
                let sections = errors.check("sections", sections(&self.sections, capacity_max));
                let seats = sections.as_ref().map(|(_, seats)| *seats);
                let blocked = errors.check("blocked", blocked_seats(&self.blocked, seats));
                Some(json!({"kind": "sections", "sections": sections?.0, "blocked": blocked?}))
            }
            _ => {
                errors.add("kind-ga", Problem::ChooseKind);
                None
            }
        }
    }
}

/// Checks the sections of a venue, one per line as "name; rows; seats per row; price" (a tab
/// may stand for each `;`, so a spreadsheet's rows paste in), into the API's sections and
/// their number of seats. The first bad line is named.
fn sections(value: &str, capacity_max: u32) -> Result<(serde_json::Value, u32), Problem> {
    let lines: Vec<(usize, &str)> = value
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(Problem::Missing);
    }
    let sections_max = tix_core::layout::SECTIONS_MAX;
    if lines.len() > sections_max {
        return Err(Problem::Said(format!("at most {sections_max} sections")));
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut total: u64 = 0;
    for (i, line) in lines {
        let n = i + 1;
        let bad = |what: &str| Problem::Said(format!("line {n}: {what}"));
        let parts: Vec<&str> = line.split([';', '\t']).map(str::trim).collect();
        let [name, rows, per_row, cost] = parts[..] else {
            return Err(bad(
                "write name; rows; seats per row; price, like Block A; 20; 40; 65.00",
            ));
        };
        let chars_max = tix_core::layout::SECTION_NAME_CHARS_MAX;
        if name.is_empty() || name.chars().count() > chars_max {
            return Err(bad(&format!("a name of 1 to {chars_max} characters")));
        }
        let rows = form::whole(rows, 1, capacity_max).map_err(|_| bad("rows: a whole number"))?;
        let per_row = form::whole(per_row, 1, capacity_max)
            .map_err(|_| bad("seats per row: a whole number"))?;
        let price_cents = price(cost).map_err(|_| bad("price: a number like 12.50"))?;
        total += u64::from(rows) * u64::from(per_row);
        out.push(json!({"name": name, "rows": rows, "seats_per_row": per_row,
            "price_cents": price_cents}));
    }
    if total > u64::from(capacity_max) {
        return Err(Problem::TooManySeats { max: capacity_max });
    }
    Ok((serde_json::Value::Array(out), total as u32))
}

/// What [`EventForm::check`] checks besides the fields both forms have.
#[derive(Debug, Clone, Copy)]
enum Checking {
    /// A new event: its tickets too, at most `capacity_max` of them.
    Create {
        /// The most tickets (or seats) an event may have.
        capacity_max: u32,
    },
    /// An edit of the event that starts at `starts_at_ms` (Unix ms) now.
    Edit {
        /// The start as stored: keeping it is fine even once it has passed.
        starts_at_ms: i64,
    },
}

/// Checks a date as the browser's date field sends it (`2031-06-01`).
fn date(value: &str) -> Result<&str, Problem> {
    if value.is_empty() {
        return Err(Problem::Missing);
    }
    crate::views::parse_rfc3339(&format!("{value}T00:00:00Z"))
        .filter(|_| value.len() == 10)
        .map(|_| value)
        .ok_or(Problem::NotADate)
}

/// Checks a time of day (`20:00`, or `20:00:00` from some browsers); none is midnight.
fn time_of_day(value: &str) -> Result<&str, Problem> {
    let hm = match value.len() {
        0 => return Ok("00:00"),
        8 if value.ends_with(":00") => &value[..5],
        _ => value,
    };
    crate::views::parse_rfc3339(&format!("2000-01-01T{hm}:00Z"))
        .filter(|_| hm.len() == 5)
        .map(|_| hm)
        .ok_or(Problem::NotATime)
}

/// Checks a time zone as chosen or typed (empty is UTC) into its canonical name and zone.
fn time_zone(value: &str) -> Result<(String, jiff::tz::TimeZone), Problem> {
    let value = if value.is_empty() { "UTC" } else { value };
    let name = crate::zone::validate("time_zone", value).map_err(|_| {
        Problem::Said(format!(
            "“{value}” is not a time zone we know; choose one from the list or type a name like \
             Europe/Vienna"
        ))
    })?;
    let zone = crate::zone::of_name(&name);
    Ok((name, zone))
}

/// Reads the local start (`2031-06-01T20:00`) in the event's zone; a time the clocks skip
/// (the night daylight saving time starts) is refused in words.
fn local_start(local: &str, zone: &jiff::tz::TimeZone) -> Result<i64, Problem> {
    crate::zone::local_to_ms(local, zone).map_err(|e| match e {
        crate::zone::LocalTimeError::Malformed => Problem::NotATime,
        gap => Problem::Said(gap.to_string()),
    })
}

/// Checks a price as typed into cents, within the largest price.
fn price(value: &str) -> Result<u64, Problem> {
    if value.trim().is_empty() {
        return Err(Problem::Missing);
    }
    let cents = parse_price(value).map_err(|_| Problem::NotANumber { example: "12.50" })?;
    let max = tix_core::Limits::default().price_cents_max;
    if cents > max {
        return Err(Problem::PriceTooHigh {
            max: format!("{}.{:02}", max / 100, max % 100),
        });
    }
    Ok(cents)
}

/// Checks a currency code (upper-cased; empty is EUR).
fn currency(value: &str) -> Result<String, Problem> {
    let code = value.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Ok("EUR".into());
    }
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Problem::CurrencyShape);
    }
    if !crate::currency::is_known(&code) {
        return Err(Problem::UnknownCurrency { code });
    }
    Ok(code)
}

/// Checks the blocked seats ("1, 2, 15"): numbers, at most [`BLOCKED_SEATS_MAX`], each a seat
/// of the venue when its size (`seats`) is known.
fn blocked_seats(value: &str, seats: Option<u32>) -> Result<Vec<u32>, Problem> {
    let mut out = Vec::new();
    for typed in value.split([',', ' ', ';']).filter(|s| !s.is_empty()) {
        let seat: u32 = typed.parse().map_err(|_| Problem::SeatNotANumber {
            typed: typed.chars().take(20).collect(),
        })?;
        if let Some(seats) = seats
            && (seat == 0 || seat > seats)
        {
            return Err(Problem::NoSuchSeat { seat, seats });
        }
        out.push(seat);
        if out.len() > BLOCKED_SEATS_MAX {
            return Err(Problem::TooManyBlocked {
                max: BLOCKED_SEATS_MAX,
            });
        }
    }
    Ok(out)
}

/// Parses "25", "25.5", "25.50" or "25,50" (a decimal comma, as typed in much of Europe) into
/// cents.
pub fn parse_price(s: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::invalid("price", "must be an amount like 25, 25.50 or 25,50");
    let s = s.trim();
    let (units, frac) = s
        .split_once('.')
        .or_else(|| s.split_once(','))
        .unwrap_or((s, ""));
    if units.is_empty() || frac.len() > 2 || !units.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let units: u64 = units.parse().map_err(|_| bad())?;
    let cents: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    units
        .checked_mul(100)
        .and_then(|u| u.checked_add(cents))
        .ok_or_else(bad)
}

/// Maps an API field name to the form's input, if the form has one.
fn form_field(api_field: &str) -> Option<&'static str> {
    Some(match api_field {
        "name" => "name",
        "description" => "description",
        "starts_at" => "date",
        "time_zone" => "time_zone",
        "venue.name" => "venue",
        "venue.lat" => "lat",
        "venue.lon" => "lon",
        "price_cents" => "price",
        "currency" => "currency",
        "inventory.capacity" => "capacity",
        "inventory.seats" | "inventory.rows" => "rows",
        "inventory.seats_per_row" => "seats_per_row",
        "inventory.blocked" => "blocked",
        f if f.starts_with("inventory.sections") => "sections",
        "inventory" => "kind-ga",
        "alt" => "image_alt",
        _ => return None,
    })
}

/// What the API refused, as the form's errors, with the status to answer.
fn api_errors(e: &ApiError) -> (StatusCode, FormErrors) {
    let mut errors = FormErrors::new();
    match e {
        ApiError::VersionConflict { .. } => errors.add_form(
            "Someone else changed this event while you were editing it. Reload the page to see \
             their version, then make your change again.",
        ),
        ApiError::Image(problem) => {
            errors.add("image", Problem::Said(crate::error::image_detail(problem)))
        }
        other => errors.api(other, form_field),
    }
    (e.problem().0, errors)
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/event_form.html")]
struct EventFormPage {
    nav: Nav,
    form: EventForm,
    editing: Option<u64>,
    /// Every bad field of the last submission.
    errors: FormErrors,
    /// The zones the time-zone field suggests.
    zones: &'static [&'static str],
}

fn form_page(
    nav: Nav,
    form: EventForm,
    editing: Option<u64>,
    failed: Option<(StatusCode, FormErrors)>,
) -> Response {
    let (status, errors) = failed.unwrap_or((StatusCode::OK, FormErrors::new()));
    let page = EventFormPage {
        nav,
        form,
        editing,
        errors,
        zones: crate::zone::COMMON_ZONES,
    };
    (status, page).into_response()
}

async fn new_form(caller: MaybeCaller) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/events/new");
    };
    let nav = Nav::of(Some(&c));
    if !c.can_organize() {
        return PageError::forbidden(nav, "Only organizers can create events.").into_response();
    }
    let form = EventForm {
        currency: "EUR".into(),
        kind: "ga".into(),
        time: "20:00".into(),
        time_zone: tix_core::ZONE_DEFAULT.into(),
        refundable: true,
        ..EventForm::default()
    };
    form_page(nav, form, None, None)
}

async fn create(
    State(state): State<AppState>,
    caller: MaybeCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first("/events/new");
    };
    let nav = Nav::of(Some(&c));
    if !c.can_organize() {
        return PageError::forbidden(nav, "Only organizers can create events.").into_response();
    }
    let Some(posted) = Posted::read(&headers, &body) else {
        return malformed(nav);
    };
    let form = EventForm::from_pairs(&posted.pairs);
    let capacity_max = state.node.shared.read().limits().event_capacity_max;
    let mut image_errors = FormErrors::new();
    let image = form.check_image(posted.file.as_deref(), None, &mut image_errors);
    let result = async {
        let body = match form.check(Checking::Create { capacity_max }) {
            Ok(body) if image_errors.is_empty() => body,
            Ok(_) => return Err((StatusCode::UNPROCESSABLE_ENTITY, image_errors)),
            Err(errors) => {
                let errors = with_image_errors(errors, image_errors, &image);
                return Err((StatusCode::UNPROCESSABLE_ENTITY, errors));
            }
        };
        // The API's own checks have the last word (a page never allows what the API refuses).
        async {
            let (details, zone) = validate_details(&body, tix_core::ZONE_DEFAULT)?;
            let inventory = body
                .inventory
                .as_ref()
                .ok_or_else(|| ApiError::invalid("inventory", "missing"))?;
            let spec = validate_inventory(inventory, capacity_max)?;
            create_event(&state, c.user_id, details, spec, &zone).await
        }
        .await
        .map_err(|e| api_errors(&e))
    }
    .await;
    let id = match result {
        Ok(id) => id,
        Err(failed) => return form_page(nav, form, None, Some(failed)),
    };
    match event_image::apply(&state, id, c.user_id, image).await {
        Ok(()) => see_other(&format!("/events/{id}")),
        // The event exists; its edit form says what became of the image.
        Err(e) => image_failed(&state, nav, id, &e, "created"),
    }
}

/// The edit form of an event just created or saved (`done`) whose image could not be stored,
/// saying why.
fn image_failed(state: &AppState, nav: Nav, id: EventId, e: &ApiError, done: &str) -> Response {
    let form = {
        let s = state.node.shared.read();
        s.event(id).map(|e| EventForm::of_event(&s, e))
    };
    let Some(form) = form else {
        return PageError::not_found(nav, "event").into_response();
    };
    let mut errors = FormErrors::new();
    errors.add(
        "image",
        Problem::Said(format!(
            "the event was {done}, but its image was not stored: {}",
            super::message_for(e)
        )),
    );
    form_page(nav, form, Some(id.0), Some((e.problem().0, errors)))
}

/// A form body that could not be read whole.
fn malformed(nav: Nav) -> Response {
    PageError {
        status: StatusCode::BAD_REQUEST,
        title: "Form not readable".into(),
        message: "The form did not arrive whole. Go back and send it again.".into(),
        nav,
    }
    .into_response()
}

/// The form's errors and the image's together; a good file chosen beside other mistakes must
/// be chosen again.
fn with_image_errors(
    mut errors: FormErrors,
    image_errors: FormErrors,
    image: &ImageChange,
) -> FormErrors {
    errors.append(image_errors);
    if matches!(image, ImageChange::Set(_)) {
        errors.add(
            "image",
            Problem::Said(
                "choose the file again: a form sent back with mistakes does not keep its file"
                    .into(),
            ),
        );
    }
    errors
}

async fn edit_form(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/events/{id}/edit"));
    };
    let nav = Nav::of(Some(&c));
    let found = state
        .read_fresh(|s| {
            s.event(EventId(id))
                .map(|e| (e.organizer, EventForm::of_event(s, e)))
        })
        .await;
    let Some((organizer, form)) = found else {
        return PageError::not_found(nav, "event").into_response();
    };
    if !(c.is_admin() || c.user_id == organizer) {
        return PageError::forbidden(nav, "Only the event's organizer can edit it.")
            .into_response();
    }
    form_page(nav, form, Some(id), None)
}

async fn edit(
    State(state): State<AppState>,
    caller: MaybeCaller,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(c) = caller.0 else {
        return login_first(&format!("/events/{id}/edit"));
    };
    let nav = Nav::of(Some(&c));
    let Some(posted) = Posted::read(&headers, &body) else {
        return malformed(nav);
    };
    let mut form = EventForm::from_pairs(&posted.pairs);
    let stored = {
        let s = state.node.shared.read();
        s.event(EventId(id)).map(|e| {
            let alt = s.event_image(e.id).map(|i| i.alt.clone());
            (
                e.organizer,
                e.details.starts_at_ms,
                alt,
                super::buy::PageImage::of(&s, e),
            )
        })
    };
    let Some((organizer, starts_at_ms, current_alt, current)) = stored else {
        return PageError::not_found(nav, "event").into_response();
    };
    form.image = current;
    // Who may edit is answered before what is wrong with the form (`update_event` decides it
    // again through the log).
    if !(c.is_admin() || c.user_id == organizer) {
        return PageError::forbidden(nav, "Only the event's organizer can edit it.")
            .into_response();
    }
    let mut image_errors = FormErrors::new();
    let image = form.check_image(
        posted.file.as_deref(),
        current_alt.as_deref(),
        &mut image_errors,
    );
    let body = match form.check(Checking::Edit { starts_at_ms }) {
        Ok(body) if image_errors.is_empty() => body,
        Ok(_) => {
            let failed = (StatusCode::UNPROCESSABLE_ENTITY, image_errors);
            return form_page(nav, form, Some(id), Some(failed));
        }
        Err(errors) => {
            let errors = with_image_errors(errors, image_errors, &image);
            let failed = (StatusCode::UNPROCESSABLE_ENTITY, errors);
            return form_page(nav, form, Some(id), Some(failed));
        }
    };
    match update_event(&state, &c, EventId(id), &body).await {
        Ok(()) => {}
        Err(e @ (ApiError::Forbidden(_) | ApiError::NotFound(_))) => {
            return PageError::from_api(nav, e).into_response();
        }
        Err(e) => return form_page(nav, form, Some(id), Some(api_errors(&e))),
    }
    match event_image::apply(&state, EventId(id), c.user_id, image).await {
        Ok(()) => see_other(&format!("/events/{id}")),
        // The details are saved; the edit form, fresh, says what became of the image.
        Err(e) => image_failed(&state, nav, EventId(id), &e, "saved"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A form as an organizer would fill it in for a seated event of 8 × 12 seats.
    fn seated_form() -> EventForm {
        EventForm {
            name: "Gala".into(),
            date: "2099-06-01".into(),
            time: "20:00".into(),
            venue: "Hall".into(),
            lat: "48.2".into(),
            lon: "16.37".into(),
            price: "12,50".into(),
            currency: "eur".into(),
            kind: "seated".into(),
            rows: "8".into(),
            seats_per_row: "12".into(),
            blocked: "1, 96".into(),
            ..EventForm::default()
        }
    }

    // Three bad fields give three errors, each under its input, in the form's order.
    #[test]
    fn the_event_form_reports_every_bad_field() {
        let form = EventForm {
            lat: "95".into(),
            price: "twelve".into(),
            rows: "5.5".into(),
            ..seated_form()
        };
        let errors = form
            .check(Checking::Create { capacity_max: 1000 })
            .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["lat", "price", "rows"]);
        assert_eq!(errors.get("lat"), Some("Latitude: a number from −90 to 90"));
        assert_eq!(errors.get("price"), Some("Price: use a number like 12.50"));
        assert_eq!(
            errors.get("rows"),
            Some("Rows: a whole number from 1 to 1,000")
        );
    }

    // A blocked seat outside the layout names the seat and the venue's seats; the limits of
    // the layout are checked from both sides.
    #[test]
    fn the_event_form_checks_seats_against_the_layout() {
        let body = seated_form()
            .check(Checking::Create { capacity_max: 96 })
            .expect("8 × 12 = 96 seats fit");
        let (details, _) = validate_details(&body, "UTC").expect("the API takes it");
        assert_eq!(
            (details.currency.as_str(), details.price_cents),
            ("EUR", 1250)
        );
        let errors = EventForm {
            blocked: "1, 999".into(),
            ..seated_form()
        }
        .check(Checking::Create { capacity_max: 96 })
        .unwrap_err();
        assert_eq!(
            errors.get("blocked"),
            Some("Seat 999 doesn't exist: this venue has seats 1–96")
        );
        let errors = seated_form()
            .check(Checking::Create { capacity_max: 95 })
            .unwrap_err();
        assert_eq!(
            errors.get("rows"),
            Some("Rows: rows × seats per row can be at most 95 seats")
        );
    }

    // An event in the past, an unknown currency and an empty name, all at once.
    #[test]
    fn the_event_form_words_dates_currencies_and_names() {
        let errors = EventForm {
            name: " ".into(),
            date: "2001-01-01".into(),
            currency: "XYZ".into(),
            ..seated_form()
        }
        .check(Checking::Create { capacity_max: 1000 })
        .unwrap_err();
        assert_eq!(errors.get("name"), Some("Event name: fill this in"));
        assert_eq!(
            errors.get("date"),
            Some("Date: choose a date and time in the future")
        );
        assert_eq!(
            errors.get("currency"),
            Some("Currency: XYZ is not a currency we know; try EUR, USD or GBP")
        );
        // An edit checks no tickets, and may keep a start that has passed, but not move to one.
        let edit = EventForm {
            date: "2001-01-01".into(),
            rows: String::new(),
            version: "3".into(),
            ..seated_form()
        };
        let kept = crate::views::parse_rfc3339("2001-01-01T20:00:00Z").unwrap();
        assert!(edit.check(Checking::Edit { starts_at_ms: kept }).is_ok());
        let moved = edit.check(Checking::Edit {
            starts_at_ms: kept + 60_000,
        });
        assert_eq!(
            moved.unwrap_err().get("date"),
            Some("Date: choose a date and time in the future")
        );
    }

    // Prices are typed as amounts; anything else names the price field.
    #[test]
    fn parses_prices() {
        assert_eq!(parse_price("25").unwrap(), 2500);
        assert_eq!(parse_price("25.5").unwrap(), 2550);
        assert_eq!(parse_price("25.05").unwrap(), 2505);
        assert_eq!(parse_price("0").unwrap(), 0);
        assert_eq!(parse_price("12,50").unwrap(), 1250);
        assert_eq!(parse_price(" 12,5 ").unwrap(), 1250);
        for bad in [
            "",
            "abc",
            "25.505",
            "1.234,50",
            "12,50,1",
            "-1",
            "1e3",
            ".5",
            "99999999999999999999",
        ] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
    }

    // A venue in sections, typed one per line: the API body lists them (prices with a comma or
    // a point, tabs as separators); a bad line is named, and blocked seats count every section.
    #[test]
    fn sections_are_typed_one_per_line() {
        let form = EventForm {
            kind: "sections".into(),
            sections: "Floor A; 2; 10; 129,00\n\nBlock 101\t3\t5\t59.00".into(),
            blocked: "25".into(),
            ..seated_form()
        };
        let body = form.check(Checking::Create { capacity_max: 1000 });
        assert!(body.is_ok(), "{:?}", body.err());
        let (typed, seats) = sections("Floor A; 2; 10; 129,00\nB; 3; 5; 59", 1000).unwrap();
        assert_eq!(seats, 35);
        assert_eq!(typed[0]["price_cents"], 12_900);
        assert_eq!(typed[1]["name"], "B");
        assert_eq!(
            sections("A; 2; 10; 1\nB; two; 5; 1", 1000),
            Err(Problem::Said("line 2: rows: a whole number".into()))
        );
        assert_eq!(sections(" ", 1000), Err(Problem::Missing));
        let too_big = EventForm {
            kind: "sections".into(),
            sections: "A; 2; 10; 1".into(),
            blocked: "21".into(),
            ..seated_form()
        };
        let errors = too_big
            .check(Checking::Create { capacity_max: 1000 })
            .unwrap_err();
        assert!(errors.has("blocked"), "{errors:?}");
    }
}
