//! The web shop's pages over HTTP without a browser (the browser tests are in
//! `crates/tix/tests/browser_shop.rs`): sign-up errors and the session cookie, redirects to
//! the login page, friendly 403/404 pages, a hold and checkout by form posts, the ticket's
//! signed code verified with the published key, and door check-in (admitted once, then
//! "already checked in", forged codes refused, old hex codes admitted, the count of admitted
//! tickets, every refusal in words, the vendored QR decoder served with caching headers).

use std::collections::BTreeMap;

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{CARD_DECLINED, CARD_OK, TestApp, USER_PASSWORD, numbered, spawn_app};

/// A browser-like client: no redirects followed, a cookie jar kept by hand, and form posts
/// as a browser sends them from tix's own pages: with `Origin` and `Sec-Fetch-Site:
/// same-origin` and the page's CSRF token (read from the form, as the page would carry it).
pub(crate) struct Browser {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    /// Cookie name → value.
    pub(crate) cookies: BTreeMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    /// The `tix_session` cookie set by this answer, with its attributes.
    pub(crate) set_cookie: Option<String>,
    /// Every `Set-Cookie` of this answer.
    pub(crate) set_cookies: Vec<String>,
    pub(crate) text: String,
    pub(crate) content_type: String,
    pub(crate) disposition: Option<String>,
}

/// Returns the value of the first `name="csrf"` field in a page.
pub(crate) fn csrf_field(html: &str) -> Option<String> {
    let rest = html.split("name=\"csrf\" value=\"").nth(1)?;
    Some(rest.split('"').next()?.to_owned())
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.base_url.clone(),
            cookies: BTreeMap::new(),
        }
    }

    /// Sends a request with the jar's cookies and keeps the cookies the answer sets.
    pub(crate) async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let r = if self.cookies.is_empty() {
            r
        } else {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            r.header("cookie", jar.join("; "))
        };
        let resp = r.send().await.expect("request sent");
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for set in &set_cookies {
            let pair = set.split(';').next().unwrap_or("");
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: resp.status().as_u16(),
            location: header("location"),
            set_cookie: set_cookies
                .iter()
                .find(|c| c.starts_with("tix_session="))
                .cloned(),
            set_cookies,
            content_type: header("content-type").unwrap_or_default(),
            disposition: header("content-disposition"),
            text: resp.text().await.unwrap_or_default(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts a form exactly as given, with these extra headers.
    pub(crate) async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Returns the CSRF token a page of this site would put into a form posted to `path`: the
    /// login or sign-up form's own, or the session's (read from the page header's log-out form).
    pub(crate) async fn token_for(&mut self, path: &str) -> Option<String> {
        let page = if ["/login", "/signup", "/password/forgot"].contains(&path) {
            path
        } else if self.cookies.contains_key("tix_session") {
            "/"
        } else {
            return None;
        };
        csrf_field(&self.get(page).await.text)
    }

    /// Posts a form as tix's own page would: same origin, with its CSRF token.
    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let token = self.token_for(path).await;
        let mut form = form.to_vec();
        if let Some(token) = &token {
            form.push(("csrf", token));
        }
        let origin = self.base.clone();
        let headers = [
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ];
        self.post_form(path, &form, &headers).await
    }

    /// Signs up through the form and keeps the session cookie.
    pub(crate) async fn sign_up(&mut self, username: &str, organizer: bool) {
        let mut form = vec![("username", username), ("password", USER_PASSWORD)];
        if organizer {
            form.push(("organizer", "on"));
        }
        let page = self.post("/signup", &form).await;
        assert_eq!(page.status, 303, "{}", page.text);
        let cookie = page.set_cookie.expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    }
}

#[tokio::test]
async fn unknown_pages_are_html_and_unknown_api_paths_stay_problem_json() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let page = b.get("/no/such/page").await;
    assert_eq!(page.status, 404);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.text.contains("Not found") && page.text.contains("href=\"/\""));
    let api = b.get("/api/v1/no-such-thing").await;
    assert_eq!(api.status, 404);
    assert!(api.content_type.starts_with("application/problem+json"));
    // A date range that ends before it starts says so.
    let reversed = b.get("/?from=2030-06-01&to=2030-05-01").await;
    assert!(
        reversed
            .text
            .contains("2030-05-01 is before 2030-06-01: swap the dates"),
        "{}",
        reversed.text
    );
    // The favicon, and an event's calendar file and link preview.
    let icon = b.get("/favicon.ico").await;
    assert_eq!(icon.status, 200);
    assert!(icon.content_type.starts_with("image/svg+xml"));
    let mut free = crate::helpers::unnumbered(10);
    free["price_cents"] = json!(0);
    free["name"] = json!("Free, Open; Rehearsal");
    let free = app.admin_event(&free).await;
    let page = b.get(&format!("/events/{free}")).await;
    assert!(
        page.text.contains("<dd>Free"),
        "a free event says so: {}",
        page.text
    );
    assert!(page.text.contains("property=\"og:title\""), "{}", page.text);
    let ics = b.get(&format!("/events/{free}/calendar.ics")).await;
    assert_eq!(ics.status, 200);
    assert!(
        ics.content_type.starts_with("text/calendar"),
        "{}",
        ics.content_type
    );
    for line in [
        "BEGIN:VCALENDAR",
        "BEGIN:VEVENT",
        "DTSTART:20300601T200000Z",
        "SUMMARY:Free\\, Open\\; Rehearsal",
        "END:VCALENDAR",
    ] {
        assert!(ics.text.contains(line), "{line} in {}", ics.text);
    }
    assert!(ics.text.contains("\r\n"), "CRLF line ends");
    let event = b.get("/events/424242").await;
    assert_eq!(event.status, 404);
    assert!(event.text.contains("no such event"), "{}", event.text);
    // An id that is not a number: a styled page, never the framework's text.
    for path in [
        "/events/abc",
        "/events/-1",
        "/holds/x/pay-nothing",
        "/holds/1e3",
    ] {
        let page = b.get(path).await;
        if page.status == 404 {
            continue; // no such route at all: the 404 page above
        }
        assert_eq!(page.status, 400, "{path}: {}", page.text);
        assert!(page.content_type.starts_with("text/html"), "{path}");
        assert!(
            page.text.contains("Invalid address"),
            "{path}: {}",
            page.text
        );
        assert!(!page.text.contains("u64"), "{path}: no internals");
    }
}

#[tokio::test]
async fn sign_up_explains_what_is_wrong_and_signs_in() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let weak = b
        .post("/signup", &[("username", "carol"), ("password", "short")])
        .await;
    assert_eq!(weak.status, 422);
    assert!(weak.text.contains("Password:"), "{}", weak.text);
    assert!(weak.text.contains("value=\"carol\""), "the name is kept");
    b.sign_up("carol", false).await;
    let home = b.get("/").await;
    assert!(home.text.contains("Log out") && home.text.contains("carol"));
    assert!(
        !home.text.contains("Create event"),
        "attendees do not see it"
    );
    let taken = Browser::new(&app)
        .post(
            "/signup",
            &[("username", "carol"), ("password", USER_PASSWORD)],
        )
        .await;
    assert_eq!(taken.status, 409);
    assert!(
        taken.text.contains("Username: this name is taken"),
        "{}",
        taken.text
    );
    let wrong = Browser::new(&app)
        .post(
            "/login",
            &[
                ("username", "carol"),
                ("password", "wrong-password-x"),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("Wrong username or password"));
    // Only local paths are followed after login.
    let ok = Browser::new(&app)
        .post(
            "/login",
            &[
                ("username", "carol"),
                ("password", USER_PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location.as_deref(), Some("/"));
}

#[tokio::test]
async fn pages_need_the_right_role() {
    let app = spawn_app().await;
    let mut anonymous = Browser::new(&app);
    let tickets = anonymous.get("/tickets").await;
    assert_eq!(tickets.status, 303);
    assert_eq!(tickets.location.as_deref(), Some("/login?next=/tickets"));
    let mut attendee = Browser::new(&app);
    attendee.sign_up("dave", false).await;
    for path in [
        "/organizer",
        "/door",
        "/admin/cluster",
        "/admin/users",
        "/events/new",
    ] {
        let page = attendee.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.text.contains("Not allowed"), "{path}: {}", page.text);
    }
    let mut organizer = Browser::new(&app);
    organizer.sign_up("olga", true).await;
    assert_eq!(organizer.get("/organizer").await.status, 200);
    assert_eq!(organizer.get("/admin/cluster").await.status, 403);
    let event = app.admin_event(&numbered(4)).await;
    let other = organizer.get(&format!("/organizer/events/{event}")).await;
    assert_eq!(other.status, 403, "another organizer's dashboard");
}

#[tokio::test]
async fn an_organizer_creates_a_seated_event_with_field_errors_first() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.sign_up("olivia", true).await;
    let mut form = vec![
        ("name", "Jazz Night"),
        ("description", "Trio"),
        ("date", "2030-05-01"),
        ("time", "20:00"),
        ("venue", "Blue Note"),
        ("lat", "123"),
        ("lon", "16.37"),
        ("price", "30.00"),
        ("currency", "EUR"),
        ("kind", "seated"),
        ("rows", "3"),
        ("seats_per_row", "4"),
        ("blocked", "1, 2"),
    ];
    let bad = b.post("/events/new", &form).await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.text.contains("Latitude: a number from −90 to 90"),
        "{}",
        bad.text
    );
    assert!(
        bad.text.contains("id=\"lat\" name=\"lat\" value=\"123\""),
        "input kept"
    );
    assert!(bad.text.contains("aria-invalid=\"true\""));
    form[5] = ("lat", "48.2");
    // A date in the past is refused at the date field, the rest kept.
    form[2] = ("date", "2020-05-01");
    let past = b.post("/events/new", &form).await;
    assert_eq!(past.status, 422);
    assert!(
        past.text
            .contains("Date: choose a date and time in the future"),
        "{}",
        past.text
    );
    assert!(
        past.text.contains("id=\"date\"") && past.text.contains("aria-invalid=\"true\""),
        "{}",
        past.text
    );
    form[2] = ("date", "2030-05-01");
    let created = b.post("/events/new", &form).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let location = created.location.unwrap();
    let page = b.get(&location).await;
    assert!(page.text.contains("Jazz Night"));
    assert_eq!(
        page.text.matches("class=\"seat blocked\" title=").count(),
        2
    );
    assert_eq!(page.text.matches("class=\"seat free\" title=").count(), 10);
    assert!(b.get("/?q=jazz").await.text.contains("Jazz Night"));
    assert!(!b.get("/?q=opera").await.text.contains("Jazz Night"));
}

#[tokio::test]
async fn buy_by_form_then_the_code_verifies_and_the_door_admits_once() {
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(5)).await;
    let mut buyer = Browser::new(&app);
    buyer.sign_up("erin", false).await;
    // A declined card keeps the hold: the checkout again, to try another card.
    let held = buyer
        .post(
            &format!("/events/{event}/order"),
            &[("seat", "2"), ("request_id", "r1")],
        )
        .await;
    assert_eq!(held.status, 303, "{}", held.text);
    let hold_path = held.location.unwrap();
    let checkout = buyer.get(&hold_path).await;
    assert!(checkout.text.contains("data-expires=") && checkout.text.contains("4242"));
    let declined = buyer
        .post(
            &format!("{hold_path}/pay"),
            &[("card_number", CARD_DECLINED)],
        )
        .await;
    assert_eq!(declined.status, 402, "{}", declined.text);
    assert!(
        declined.text.contains("Payment declined") && declined.text.contains("try another card"),
        "{}",
        declined.text
    );
    assert!(
        declined.text.contains("id=\"card_number\""),
        "the checkout form again"
    );
    assert_eq!(app.seat_letters(event).await, "FHFFF");
    // Then the good card on the same hold; then a second hold, for seat 3.
    let paid = buyer
        .post(
            &format!("{hold_path}/pay"),
            &[("card_number", "4242 4242 4242 4242")],
        )
        .await;
    assert!(paid.text.contains("Order confirmed"), "{}", paid.text);
    let held = buyer
        .post(
            &format!("/events/{event}/order"),
            &[("seat", "3"), ("request_id", "r2")],
        )
        .await;
    let hold_path = held.location.unwrap();
    let paid = buyer
        .post(
            &format!("{hold_path}/pay"),
            &[("card_number", "4242 4242 4242 4242")],
        )
        .await;
    assert!(paid.text.contains("Order confirmed"), "{}", paid.text);
    assert_eq!(app.seat_letters(event).await, "FSSFF");
    let _ = CARD_OK;
    let tickets = buyer.get("/tickets").await;
    assert_eq!(
        tickets.text.matches("<svg").count(),
        2,
        "a QR code per ticket"
    );
    let codes: Vec<String> = tickets
        .text
        .split("<code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next())
        .filter(|s| s.starts_with("TIX2-"))
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 2);
    // Offline verification with the published key.
    let key: Value = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/events/{event}/ticket-key"),
            None,
            None,
        )
        .await
        .json();
    let public: [u8; 32] = hex::decode(key["public_key_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert!(tix_http::ticket_code::verify(&public, &codes[0]).is_ok());
    // The door: admin is staff enough.
    let mut door = Browser::new(&app);
    let login = door
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", crate::helpers::ADMIN_PASSWORD),
                ("next", "/door"),
            ],
        )
        .await;
    assert_eq!(login.status, 303, "{}", login.text);
    let first = door.post("/door", &[("code", &codes[0])]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.text.contains("Admitted"), "{}", first.text);
    let second = door.post("/door", &[("code", &codes[0])]).await;
    assert_eq!(second.status, 409);
    assert!(
        second.text.contains("Already checked in at") && second.text.contains("by admin"),
        "{}",
        second.text
    );
    // One base32 character of the signature changed: well formed, wrongly signed.
    let mut forged = codes[1].clone();
    let at = forged.len() - 3;
    let swapped = if &forged[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, swapped);
    let refused = door.post("/door", &[("code", &forged)]).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text.contains("Forged code"), "{}", refused.text);
    // After a refused scan the field is empty, so the next scan is not appended to it.
    assert!(
        refused
            .text
            .contains("id=\"code\" name=\"code\" value=\"\""),
        "the field is cleared: {}",
        refused.text
    );
    let garbage = door.post("/door", &[("code", "hello")]).await;
    assert!(garbage.text.contains("Not a ticket code"));
    assert!(
        garbage.text.contains("(scanned: hello)"),
        "{}",
        garbage.text
    );
    assert!(
        garbage
            .text
            .contains("id=\"code\" name=\"code\" value=\"\"")
    );
    // Another organizer at their own door: answered in place, the scanner stays.
    let mut other_door = Browser::new(&app);
    other_door.sign_up("otherorganizer", true).await;
    let elsewhere = other_door.post("/door", &[("code", &codes[1])]).await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text);
    assert!(
        elsewhere.text.contains("Not this door"),
        "{}",
        elsewhere.text
    );
    assert!(elsewhere.text.contains("id=\"code\""), "the scanner stays");
    // Newest first: codes[0] is seat 3 (admitted above), codes[1] seat 2. Refunding it frees
    // seat 2 at once.
    let ticket_id = tix_http::ticket_code::parse(&codes[1]).unwrap().ticket_id;
    let ask = buyer.get(&format!("/tickets/{ticket_id}/refund")).await;
    assert!(
        ask.text.contains("Refund this ticket?") && ask.text.contains("seat 2"),
        "the refund asks first: {}",
        ask.text
    );
    assert_eq!(
        app.seat_letters(event).await,
        "FSSFF",
        "asking changes nothing"
    );
    let refunded = buyer
        .post(&format!("/tickets/{ticket_id}/refund"), &[])
        .await;
    assert_eq!(refunded.status, 303);
    let receipt = buyer.get(refunded.location.as_deref().unwrap_or("/")).await;
    assert!(
        receipt
            .text
            .contains(&format!("Refund receipt: ticket {ticket_id}")),
        "{}",
        receipt.text
    );
    // The order history: both orders, the refunded ticket marked.
    let orders = buyer.get("/orders").await;
    assert_eq!(orders.status, 200);
    assert_eq!(
        orders.text.matches("class=\"order\"").count(),
        2,
        "{}",
        orders.text
    );
    assert!(orders.text.contains("1 refunded"), "{}", orders.text);
    assert_eq!(app.seat_letters(event).await, "FFSFF");
    // The organizer's dashboard and CSV.
    let dash = door.get(&format!("/organizer/events/{event}")).await;
    assert!(dash.text.contains("id=\"stat-sold\">1<"), "{}", dash.text);
    // The chart: one image with a summary, a step line, its numbers in a table; and the door.
    assert!(
        dash.text.contains(&format!("href=\"/door?event={event}\""))
            && dash.text.contains("Open the door scanner for this event"),
        "{}",
        dash.text
    );
    assert!(
        dash.text.contains(
            "role=\"img\" aria-label=\"Tickets sold over time, a step chart: none before"
        ),
        "{}",
        dash.text
    );
    let step = dash
        .text
        .split("class=\"step\"")
        .next()
        .and_then(|before| before.rsplit("d=\"").next())
        .unwrap_or_default();
    assert!(
        step.starts_with('M') && step.contains(" V") && step.contains(" H"),
        "a step line: {step}"
    );
    assert!(
        dash.text
            .contains("<summary>The numbers behind the chart</summary>")
            && dash.text.contains("id=\"chart-table\""),
        "{}",
        dash.text
    );
    let csv = door
        .get(&format!("/organizer/events/{event}/sales.csv"))
        .await;
    assert!(csv.content_type.starts_with("text/csv"));
    assert_eq!(
        csv.disposition.as_deref(),
        Some(format!("attachment; filename=\"event-{event}-sales.csv\"").as_str())
    );
    assert!(csv.text.starts_with("ticket_id,seat,buyer,"));
    assert!(csv.text.contains(",3,erin,"), "{}", csv.text);
    assert!(
        !csv.text.contains(",2,erin,"),
        "refunded tickets are not sales"
    );
    let _ = json!(null);
    app.assert_invariants();
}

#[tokio::test]
async fn editing_a_stale_version_says_someone_else_changed_it() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.sign_up("owen", true).await;
    let form = [
        ("name", "Edit Me"),
        ("date", "2030-01-02"),
        ("time", "19:00"),
        ("venue", "Hall"),
        ("lat", "1"),
        ("lon", "2"),
        ("price", "10"),
        ("kind", "ga"),
        ("capacity", "50"),
    ];
    let created = b.post("/events/new", &form).await;
    let event_page = created.location.expect("created");
    let edit = b.get(&format!("{event_page}/edit")).await;
    assert!(
        edit.text.contains("name=\"version\" value=\"1\""),
        "{}",
        edit.text
    );
    let mut changed = form.to_vec();
    changed[0] = ("name", "First Edit");
    changed.push(("version", "1"));
    let first = b.post(&format!("{event_page}/edit"), &changed).await;
    assert_eq!(first.status, 303, "{}", first.text);
    changed[0] = ("name", "Second Edit");
    let stale = b.post(&format!("{event_page}/edit"), &changed).await;
    assert_eq!(stale.status, 409);
    assert!(
        stale.text.contains("Someone else changed this event"),
        "{}",
        stale.text
    );
    assert!(b.get(&event_page).await.text.contains("First Edit"));
}

// Every response carries the security headers; pages and the API are never cached, static
// assets may be; Swagger UI keeps its inline bootstrapping but may not be framed either.
#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", app.base_url)).send();
    for path in ["/", "/login", "/api/v1/events", "/no-such-page"] {
        let resp = get(path).await.expect("request sent");
        let h = resp.headers();
        let value = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let csp = value("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(value("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(value("referrer-policy"), "same-origin", "{path}");
        assert_eq!(value("cache-control"), "no-store", "{path}");
    }
    let asset = get("/static/shop.js").await.expect("request sent");
    assert_eq!(asset.status(), 200);
    assert_ne!(
        asset.headers().get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let docs = get("/api/docs/").await.expect("request sent");
    let csp = docs.headers().get("content-security-policy").unwrap();
    assert_eq!(csp, "frame-ancestors 'none'");
}

#[tokio::test]
async fn a_logged_out_order_returns_after_sign_up_with_the_seats_still_chosen() {
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(6)).await;
    let mut b = Browser::new(&app);
    let order = b
        .post_form(
            &format!("/events/{event}/order"),
            &[("seat", "2"), ("seat", "3"), ("request_id", "r1")],
            &[
                ("origin", &app.base_url.clone()),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(order.status, 303, "{}", order.text);
    let login = order.location.expect("to the login");
    assert!(login.starts_with("/login?next="), "{login}");
    let page = b.get(&login).await;
    assert!(
        page.text.contains("continue with your order"),
        "the login says why: {}",
        page.text
    );
    let signup_link = page
        .text
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap_or(""))
        .find(|href| href.starts_with("/signup?next="))
        .expect("the sign-up link keeps the return address")
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    let signup = b.get(&signup_link).await;
    let next = signup
        .text
        .split("name=\"next\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-up form carries it")
        .replace("&#61;", "=")
        .replace("&#44;", ",")
        .replace("&#47;", "/");
    assert_eq!(next, format!("/events/{event}?seats=2,3"));
    let signed_up = b
        .post(
            "/signup",
            &[
                ("username", "returning"),
                ("password", crate::helpers::USER_PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(signed_up.status, 303, "{}", signed_up.text);
    assert_eq!(signed_up.location.as_deref(), Some(next.as_str()));
    let back = b.get(&next).await;
    for seat in [2, 3] {
        assert!(
            back.text.contains(&format!(
                "value=\"{seat}\" checked aria-label=\"Row 1, Seat {seat}\""
            )),
            "seat {seat} still chosen: {}",
            back.text
        );
    }
    assert!(!back.text.contains("value=\"1\" checked"));

    // With a hold open, every page but its checkout shows a banner leading back to it.
    let held = b
        .post(
            &format!("/events/{event}/order"),
            &[("seat", "2"), ("seat", "3"), ("request_id", "r2")],
        )
        .await;
    assert_eq!(held.status, 303, "{}", held.text);
    let checkout = held.location.expect("the checkout");
    let home = b.get("/").await;
    assert!(
        home.text.contains("id=\"hold-banner\"")
            && home.text.contains(&format!("href=\"{checkout}\"")),
        "{}",
        home.text
    );
    assert!(!b.get(&checkout).await.text.contains("id=\"hold-banner\""));
}

/// Returns the door page's count, `admitted / expected`, if it shows one.
fn door_count(html: &str) -> Option<String> {
    let admitted = html
        .split("id=\"door-admitted\">")
        .nth(1)?
        .split('<')
        .next()?;
    let expected = html
        .split("id=\"door-expected\">")
        .nth(1)?
        .split('<')
        .next()?;
    Some(format!("{admitted} / {expected}"))
}

/// The door set to one event: the count of admitted over expected tickets from the start; an
/// old hex code (what tickets sold before the base32 codes carry) admits and the count goes up;
/// a ticket of another event, a second scan (with its HH:MM), a refunded ticket and garbage are
/// each refused in plain words with the field empty; the count follows the last ticket when the
/// door takes any event; the vendored QR decoder is served from our host, cached for good.
#[tokio::test]
async fn the_door_counts_admissions_and_names_every_refusal() {
    use tix_http::ticket_code;
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(5)).await;
    let other = app.admin_event(&numbered(5)).await;
    let buyer = app.new_user("fay", None).await;
    let old_ticket = app.buy_seat(&buyer.token, event, 1).await;
    let new_ticket = app.buy_seat(&buyer.token, event, 2).await;
    let refunded = app.buy_seat(&buyer.token, event, 3).await;
    let elsewhere = app.buy_seat(&buyer.token, other, 1).await;
    app.refund(Some(&app.admin_token), refunded)
        .await
        .expect(200);
    let seed = |e: u64| {
        app.node
            .shared
            .read()
            .event(tix_core::EventId(e))
            .expect("event")
            .ticket_key_seed
    };
    let old_code = ticket_code::sign_v1(&seed(event), event, old_ticket);
    assert!(old_code.starts_with("TIX1-"), "{old_code}");
    let new_code = ticket_code::sign(&seed(event), event, new_ticket);
    let refunded_code = ticket_code::sign(&seed(event), event, refunded);
    let other_code = ticket_code::sign(&seed(other), other, elsewhere);

    let mut door = Browser::new(&app);
    let login = door
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", crate::helpers::ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(login.status, 303, "{}", login.text);
    let form = door.get(&format!("/door?event={event}")).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert_eq!(
        door_count(&form.text).as_deref(),
        Some("0 / 2"),
        "refunded not expected"
    );
    assert!(
        form.text
            .contains(&format!("<option value=\"{event}\" selected>")),
        "the door is set to the event: {}",
        form.text
    );
    assert!(
        form.text.contains("id=\"scan\" hidden"),
        "no camera button without JavaScript"
    );
    let event_field = event.to_string();
    let cleared = "id=\"code\" name=\"code\" value=\"\"";

    let first = door
        .post("/door", &[("code", &old_code), ("event", &event_field)])
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(
        first.text.contains("data-outcome=\"admitted\"") && first.text.contains("Seat 1"),
        "{}",
        first.text
    );
    assert_eq!(door_count(&first.text).as_deref(), Some("1 / 2"));
    assert!(first.text.contains(cleared));

    let wrong = door
        .post("/door", &[("code", &other_code), ("event", &event_field)])
        .await;
    assert_eq!(wrong.status, 409, "{}", wrong.text);
    assert!(
        wrong.text.contains("Another event") && wrong.text.contains("data-outcome=\"refused\""),
        "{}",
        wrong.text
    );
    assert_eq!(door_count(&wrong.text).as_deref(), Some("1 / 2"));
    assert!(wrong.text.contains(cleared));

    let typed = door
        .post(
            "/door",
            &[
                ("code", &new_code.to_ascii_lowercase()),
                ("event", &event_field),
            ],
        )
        .await;
    assert_eq!(typed.status, 200, "typed in lower case: {}", typed.text);
    assert_eq!(door_count(&typed.text).as_deref(), Some("2 / 2"));

    let again = door
        .post("/door", &[("code", &old_code), ("event", &event_field)])
        .await;
    assert_eq!(again.status, 409);
    let headline = again
        .text
        .split("Already checked in at ")
        .nth(1)
        .expect("a second scan says when")
        .get(..5)
        .unwrap_or_default()
        .to_owned();
    assert!(
        headline.as_bytes()[2] == b':'
            && headline
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 2 || b.is_ascii_digit()),
        "HH:MM: {headline}"
    );
    assert!(again.text.contains("by admin"), "{}", again.text);

    let gone = door
        .post(
            "/door",
            &[("code", &refunded_code), ("event", &event_field)],
        )
        .await;
    assert_eq!(gone.status, 409);
    assert!(
        gone.text.contains("<strong>Refunded</strong>"),
        "{}",
        gone.text
    );

    let garbage = door
        .post("/door", &[("code", "hello"), ("event", &event_field)])
        .await;
    assert_eq!(garbage.status, 422);
    assert!(garbage.text.contains("Not a ticket code"));
    assert!(garbage.text.contains(cleared));
    assert_eq!(door_count(&garbage.text).as_deref(), Some("2 / 2"));

    // A door taking any event counts the last ticket's event, carried through garbage.
    let any = door
        .post(
            "/door",
            &[
                ("code", "hello"),
                ("event", ""),
                ("last_event", &event_field),
            ],
        )
        .await;
    assert_eq!(
        door_count(&any.text).as_deref(),
        Some("2 / 2"),
        "{}",
        any.text
    );
    let any = door
        .post("/door", &[("code", &other_code), ("event", "")])
        .await;
    assert_eq!(any.status, 200, "{}", any.text);
    assert_eq!(door_count(&any.text).as_deref(), Some("1 / 1"));

    // The decoder the page's script loads: from this host, long-cached, allowed by the CSP.
    let jsqr = app
        .client
        .get(format!("{}/static/vendor/jsqr-1.4.0.min.js", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(jsqr.status(), 200);
    let header = |name: &str| {
        jsqr.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("cache-control").contains("immutable"));
    assert!(header("content-type").starts_with("text/javascript"));
    assert!(header("content-security-policy").contains("script-src 'self'"));
    assert!(jsqr.text().await.unwrap().contains("jsQR"));
    assert!(
        form.text
            .contains("data-jsqr=\"/static/vendor/jsqr-1.4.0.min.js\"")
    );
}

/// Places a hold on `seat` of `event` through the order form; returns the checkout's address.
async fn hold_seat(browser: &mut Browser, event: u64, seat: &str) -> String {
    let held = browser
        .post(
            &format!("/events/{event}/order"),
            &[("seat", seat), ("request_id", &format!("hold-{seat}"))],
        )
        .await;
    assert_eq!(held.status, 303, "{}", held.text);
    held.location.expect("the checkout's address")
}

// A paid checkout's address shows its order (to its owner only); a released one and an
// expired one say so plainly.
#[tokio::test]
async fn a_checkout_address_shows_how_its_hold_ended() {
    let app = crate::helpers::spawn_app_with(tix_http::HttpConfig {
        hold_ttl_ms: 3_000,
        ..tix_http::HttpConfig::default()
    })
    .await;
    let event = app.admin_event(&numbered(5)).await;
    let mut buyer = Browser::new(&app);
    buyer.sign_up("paula", false).await;
    let hold_path = hold_seat(&mut buyer, event, "4").await;
    let paid = buyer
        .post(&format!("{hold_path}/pay"), &[("card_number", CARD_OK)])
        .await;
    assert!(paid.text.contains("Order confirmed"), "{}", paid.text);
    let order = paid
        .text
        .split("Paid — order #")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the order's number")
        .to_owned();

    // Reopened: the order, its ticket, the amount and the way to the tickets.
    let again = buyer.get(&hold_path).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert!(
        again
            .text
            .contains(&format!("<h1>Paid — order #{order}</h1>")),
        "{}",
        again.text
    );
    assert!(
        again.text.contains("<th scope=\"row\">Seat 4</th>"),
        "{}",
        again.text
    );
    assert!(again.text.contains("href=\"/tickets\""), "{}", again.text);
    assert!(!again.text.contains("back on sale"), "{}", again.text);
    // Paying again (a resubmitted form) leads to the same order, charging nothing.
    let twice = buyer
        .post(&format!("{hold_path}/pay"), &[("card_number", CARD_OK)])
        .await;
    assert_eq!(twice.status, 303, "{}", twice.text);
    assert_eq!(twice.location.as_deref(), Some(hold_path.as_str()));

    // Someone else sees nothing of it.
    let mut other = Browser::new(&app);
    other.sign_up("quentin", false).await;
    let theirs = other.get(&hold_path).await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    assert!(!theirs.text.contains("Seat 4"), "{}", theirs.text);

    // Released by the buyer.
    let released_path = hold_seat(&mut buyer, event, "1").await;
    let release = buyer.post(&format!("{released_path}/release"), &[]).await;
    assert_eq!(release.status, 303, "{}", release.text);
    let released = buyer.get(&released_path).await;
    assert!(
        released.text.contains("You released this hold")
            && released.text.contains("nothing was charged"),
        "{}",
        released.text
    );

    // Expired unpaid: the sweeper ends it within a moment of its time.
    let expired_path = hold_seat(&mut buyer, event, "2").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let page = buyer.get(&expired_path).await;
        if page.text.contains("This hold expired unpaid") {
            assert!(page.text.contains("nothing was charged"), "{}", page.text);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hold never expired: {}",
            page.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.assert_invariants();
}

/// The rows of the price breakdown on a page: (ticket, unit price, quantity, amount), and the
/// total.
fn receipt(html: &str) -> (Vec<[String; 4]>, String) {
    let table = html
        .split("id=\"receipt\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no price breakdown: {html}"));
    // A cell's text is what follows the last `>` before its closing `</td>` or `</th>`.
    let cells = |row: &str| -> Vec<String> {
        row.split("</t")
            .filter_map(|part| part.rsplit('>').next())
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let body = table
        .split("<tbody>")
        .nth(1)
        .and_then(|b| b.split("</tbody>").next());
    let rows = body
        .unwrap_or_default()
        .split("<tr>")
        .skip(1)
        .map(|row| {
            let c = cells(row);
            [c[0].clone(), c[1].clone(), c[2].clone(), c[3].clone()]
        })
        .collect();
    let total = table
        .split("id=\"receipt-total\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap_or_default()
        .to_owned();
    (rows, total)
}

// The checkout lists each ticket with its price, how many and the amount, then the total in the
// event's currency — no fee line, since there are no fees — and the confirmation repeats it.
#[tokio::test]
async fn checkout_and_confirmation_break_the_price_down() {
    let app = spawn_app().await;
    let seated = app.admin_event(&numbered(5)).await;
    let general = app.admin_event(&crate::helpers::unnumbered(50)).await;
    let mut buyer = Browser::new(&app);
    buyer.sign_up("rosa", false).await;
    let price = format!(
        "{}.{:02} EUR",
        crate::helpers::PRICE_CENTS / 100,
        crate::helpers::PRICE_CENTS % 100
    );
    let twice = format!(
        "{}.{:02} EUR",
        2 * crate::helpers::PRICE_CENTS / 100,
        2 * crate::helpers::PRICE_CENTS % 100
    );
    let thrice = format!(
        "{}.{:02} EUR",
        3 * crate::helpers::PRICE_CENTS / 100,
        3 * crate::helpers::PRICE_CENTS % 100
    );

    // Two seats: a line each.
    let held = buyer
        .post(
            &format!("/events/{seated}/order"),
            &[("seat", "2"), ("seat", "5"), ("request_id", "b1")],
        )
        .await;
    let hold_path = held.location.expect("a hold");
    let checkout = buyer.get(&hold_path).await;
    let one = |seat: &str| {
        [
            seat.to_owned(),
            price.clone(),
            "1".to_owned(),
            price.clone(),
        ]
    };
    assert_eq!(
        receipt(&checkout.text),
        (vec![one("Seat 2"), one("Seat 5")], twice.clone())
    );
    assert!(!checkout.text.to_lowercase().contains("fee"), "no fee line");
    assert!(checkout.text.contains(&format!("Pay {twice}")));
    let paid = buyer
        .post(&format!("{hold_path}/pay"), &[("card_number", CARD_OK)])
        .await;
    assert!(paid.text.contains("Order confirmed"), "{}", paid.text);
    assert_eq!(
        receipt(&paid.text),
        (vec![one("Seat 2"), one("Seat 5")], twice.clone())
    );

    // Three general-admission tickets: one line of three.
    let held = buyer
        .post(
            &format!("/events/{general}/order"),
            &[("quantity", "3"), ("request_id", "b2")],
        )
        .await;
    let hold_path = held.location.expect("a hold");
    let three = vec![[
        "General admission".to_owned(),
        price.clone(),
        "3".to_owned(),
        thrice.clone(),
    ]];
    let checkout = buyer.get(&hold_path).await;
    assert_eq!(receipt(&checkout.text), (three.clone(), thrice.clone()));
    let paid = buyer
        .post(&format!("{hold_path}/pay"), &[("card_number", CARD_OK)])
        .await;
    assert_eq!(receipt(&paid.text), (three.clone(), thrice.clone()));
    // And the paid checkout's address, reopened, repeats it.
    assert_eq!(receipt(&buyer.get(&hold_path).await.text), (three, thrice));
}
