//! Cross-site request forgery, replayed from the attacker probe over real sockets: every form
//! post of the shop sent from another site (a foreign `Origin`, `Sec-Fetch-Site: cross-site`),
//! without its CSRF token or with a wrong one is refused 403 and changes nothing; the JSON API
//! refuses the session cookie alone (401) and bodies that are not `application/json` (415);
//! cookies get `Secure` behind TLS. The same-origin flows keep working (see also `pages`).

use std::net::IpAddr;

use serde_json::{Value, json};
use tix_http::HttpConfig;

use crate::helpers::{
    ADMIN_PASSWORD, CARD_OK, TestApp, USER_PASSWORD, numbered, spawn_app, spawn_app_with,
};
use crate::pages::{Browser, Page, csrf_field};

/// The ways a forged form post arrives: a foreign Origin (with the right token, as if it had
/// leaked), Sec-Fetch-Site: cross-site (same), no token at all, a wrong token.
const FORGERIES: [&str; 4] = [
    "foreign origin",
    "cross-site fetch",
    "no token",
    "wrong token",
];

/// Posts `form` to `path` from `b` the way `forgery` names, with `token` as the right token.
async fn forge(
    b: &mut Browser,
    forgery: &str,
    path: &str,
    form: &[(&str, &str)],
    token: &str,
) -> Page {
    let mut form = form.to_vec();
    let wrong = "0".repeat(64);
    let headers: Vec<(&str, &str)> = match forgery {
        "foreign origin" => {
            form.push(("csrf", token));
            vec![("origin", "http://evil.example")]
        }
        "cross-site fetch" => {
            form.push(("csrf", token));
            vec![("sec-fetch-site", "cross-site")]
        }
        "no token" => Vec::new(),
        "wrong token" => {
            form.push(("csrf", &wrong));
            Vec::new()
        }
        other => panic!("unknown forgery {other}"),
    };
    b.post_form(path, &form, &headers).await
}

/// A form's fields.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// Asserts a refusal page: 403, HTML, "Not allowed".
fn assert_refused(page: &Page, what: &str) {
    assert_eq!(page.status, 403, "{what}: {}", page.text);
    assert!(page.content_type.starts_with("text/html"), "{what}");
    assert!(page.text.contains("Not allowed"), "{what}: {}", page.text);
    assert!(
        page.set_cookie.is_none(),
        "{what}: no session cookie change"
    );
}

/// Signs `username` in through the login form (same origin, with its token).
async fn page_login(app: &TestApp, username: &str, password: &str) -> Browser {
    let mut b = Browser::new(app);
    let page = b
        .post("/login", &[("username", username), ("password", password)])
        .await;
    assert_eq!(page.status, 303, "{}", page.text);
    assert!(b.cookies.contains_key("tix_session"));
    b
}

fn event_form(name: &str) -> Vec<(&str, &str)> {
    vec![
        ("name", name),
        ("date", "2030-01-02"),
        ("time", "19:00"),
        ("venue", "Hall"),
        ("lat", "1"),
        ("lon", "2"),
        ("price", "10"),
        ("kind", "ga"),
        ("capacity", "50"),
    ]
}

// Every state-changing form of the probe — order, pay, release, refund, create and edit an
// event, check-in at the door, log out — posted with a foreign Origin, Sec-Fetch-Site:
// cross-site, no token or a wrong token is refused 403, and nothing changed: the hold, the
// ticket, the events and the sessions are as before. Then the same forms from tix's own pages
// work.
#[tokio::test]
async fn every_forged_form_post_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(5)).await;
    let erin = app.new_user("erin", None).await;
    let olga = app.new_user("olga", Some("organizer")).await;
    let hold = app.hold_ok(&erin.token, event, "h1", &[1]).await;
    let ticket = app.buy_seat(&erin.token, event, 2).await;
    let mut body = crate::helpers::unnumbered(50);
    body["name"] = json!("Olga's Night");
    let olgas = app.event_as(&olga.token, &body).await;
    let mut erin_b = page_login(&app, "erin", USER_PASSWORD).await;
    let tickets = erin_b.get("/tickets").await.text;
    let code = tickets
        .split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the ticket's code")
        .to_owned();
    let mut olga_b = page_login(&app, "olga", USER_PASSWORD).await;
    let mut admin_b = page_login(&app, "admin", ADMIN_PASSWORD).await;
    let erin_token = erin_b.token_for("/").await.expect("a token in the page");
    let olga_token = olga_b.token_for("/").await.expect("a token in the page");
    let admin_token = admin_b.token_for("/").await.expect("a token in the page");
    assert_ne!(erin_token, olga_token, "one token per session");
    let before = (app.seat_letters(event).await, app.event_count().await);
    assert_eq!(before.0, "HSFFF");

    let order = format!("/events/{event}/order");
    let pay = format!("/holds/{hold}/pay");
    let release = format!("/holds/{hold}/release");
    let refund = format!("/tickets/{ticket}/refund");
    let edit = format!("/events/{olgas}/edit");
    let mut edit_form = event_form("Forged Name");
    edit_form.push(("version", "1"));
    for forgery in FORGERIES {
        let what = |action: &str| format!("{action} with {forgery}");
        let forms: [(&str, &str, Form); 4] = [
            (
                "order",
                &order,
                vec![("seat", "3"), ("request_id", "forged")],
            ),
            ("pay", &pay, vec![("card_number", CARD_OK)]),
            ("release", &release, Vec::new()),
            ("refund", &refund, Vec::new()),
        ];
        for (action, path, form) in &forms {
            let page = forge(&mut erin_b, forgery, path, form, &erin_token).await;
            assert_refused(&page, &what(action));
        }
        let create = forge(
            &mut olga_b,
            forgery,
            "/events/new",
            &event_form("Forged"),
            &olga_token,
        )
        .await;
        assert_refused(&create, &what("create event"));
        let edited = forge(&mut olga_b, forgery, &edit, &edit_form, &olga_token).await;
        assert_refused(&edited, &what("edit event"));
        let door = forge(
            &mut admin_b,
            forgery,
            "/door",
            &[("code", &code)],
            &admin_token,
        )
        .await;
        assert_refused(&door, &what("check-in"));
        let logout = forge(&mut erin_b, forgery, "/logout", &[], &erin_token).await;
        assert_refused(&logout, &what("logout"));
    }
    assert_eq!(
        (app.seat_letters(event).await, app.event_count().await),
        before
    );
    app.get_hold(Some(&erin.token), hold).await.expect(200);
    let t = app.get_ticket(Some(&erin.token), ticket).await.expect(200);
    assert_eq!(
        (t["status"].as_str(), t["checked_in_at"].is_null()),
        (Some("active"), true),
        "{t}"
    );
    let e = app.get_event(olgas).await.expect(200);
    assert_eq!(e["name"], "Olga's Night");
    assert!(
        erin_b.get("/").await.text.contains("Log out"),
        "still signed in"
    );

    // The same forms from tix's own pages are carried out.
    let released = erin_b.post(&release, &[]).await;
    assert_eq!(released.status, 303, "{}", released.text);
    assert_eq!(app.seat_letters(event).await, "FSFFF");
    let edited = olga_b
        .post(&edit, &{
            let mut f = event_form("Olga's Later Night");
            f.push(("version", "1"));
            f
        })
        .await;
    assert_eq!(edited.status, 303, "{}", edited.text);
    let out = erin_b.post("/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert!(
        !erin_b.cookies.contains_key("tix_session"),
        "the cookie is cleared"
    );
    app.assert_invariants();
}

// Login CSRF: the login and sign-up forms need the pre-session cookie and the same value in
// the form (double-submit). A foreign Origin or cross-site fetch with both, either one alone,
// or a mismatch is refused 403 and signs nobody in or up; from tix's own form it works.
#[tokio::test]
async fn login_and_sign_up_forms_need_the_double_submitted_token() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let form = b.get("/login").await;
    let cookie = form
        .set_cookies
        .iter()
        .find(|c| c.starts_with("tix_csrf="))
        .expect("a pre-session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let token = csrf_field(&form.text).expect("the form carries it");
    assert_eq!(b.cookies.get("tix_csrf"), Some(&token));
    assert_eq!(
        b.get("/signup").await.set_cookies.len(),
        0,
        "the cookie is reused"
    );
    let login = [("username", "admin"), ("password", ADMIN_PASSWORD)];
    let signup = [("username", "mallory"), ("password", USER_PASSWORD)];
    for forgery in FORGERIES {
        let page = forge(&mut b, forgery, "/login", &login, &token).await;
        assert_refused(&page, &format!("login with {forgery}"));
        let page = forge(&mut b, forgery, "/signup", &signup, &token).await;
        assert_refused(&page, &format!("sign-up with {forgery}"));
    }
    let mut cookieless = Browser::new(&app);
    let mut with_token = login.to_vec();
    with_token.push(("csrf", &token));
    let page = cookieless.post_form("/login", &with_token, &[]).await;
    assert_refused(&page, "login with the token but no cookie");
    app.login("mallory", USER_PASSWORD).await.problem(401);
    let ok = b.post("/login", &login).await;
    assert_eq!(ok.status, 303, "{}", ok.text);
}

/// Sends a request to the API with these headers and body.
async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let reply = request.send().await.expect("request sent");
    let status = reply.status().as_u16();
    let content_type = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = reply.text().await.expect("body");
    assert!(
        content_type.starts_with("application/problem+json") || status < 400,
        "{text}"
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// The API with the session cookie alone — the probe's hold, check-in and role change — is
// refused: 415 for text/plain and form bodies (what a cross-site form can send), 401 for JSON
// (the cookie is not a credential there); a bearer token with a foreign Origin is 403, and a
// bearer token with a text/plain body is 415 too. Nothing changed.
#[tokio::test]
async fn the_api_refuses_the_cookie_alone_and_bodies_that_are_not_json() {
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(3)).await;
    let erin = app.new_user("erin", None).await;
    let ticket = app.buy_seat(&erin.token, event, 1).await;
    let erin_b = page_login(&app, "erin", USER_PASSWORD).await;
    let admin_b = page_login(&app, "admin", ADMIN_PASSWORD).await;
    let cookie = |b: &Browser| format!("tix_session={}", b.cookies["tix_session"]);
    let (erin_cookie, admin_cookie) = (cookie(&erin_b), cookie(&admin_b));
    let hold = format!("/api/v1/events/{event}/holds");
    let role = format!("/api/v1/users/{}/role", erin.id);
    let probes: [(reqwest::Method, &str, &str, String); 3] = [
        (
            reqwest::Method::POST,
            &hold,
            &erin_cookie,
            json!({"request_id": "x", "seats": [2]}).to_string(),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/checkins",
            &admin_cookie,
            json!({"ticket_id": ticket}).to_string(),
        ),
        (
            reqwest::Method::PUT,
            &role,
            &admin_cookie,
            json!({"role": "admin"}).to_string(),
        ),
    ];
    for (method, path, cookie, body) in &probes {
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let headers = [("cookie", *cookie), ("content-type", content_type)];
            let (status, problem) =
                api(&app, method.clone(), path, &headers, Some(body.clone())).await;
            assert_eq!(status, 415, "{path} as {content_type}: {problem}");
            assert_eq!(
                problem["type"],
                "https://tix.invalid/problems/unsupported_media_type"
            );
        }
        let headers = [("cookie", *cookie), ("content-type", "application/json")];
        let (status, _) = api(&app, method.clone(), path, &headers, Some(body.clone())).await;
        assert_eq!(
            status, 401,
            "{path}: the cookie is no credential for the API"
        );
        let (status, _) = api(
            &app,
            method.clone(),
            path,
            &[("cookie", *cookie)],
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 415, "{path} without a content type");
    }
    let bearer = format!("Bearer {}", app.admin_token);
    let foreign = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
        ("origin", "http://evil.example"),
    ];
    let body = json!({"ticket_id": ticket}).to_string();
    let (status, problem) = api(
        &app,
        reqwest::Method::POST,
        "/api/v1/checkins",
        &foreign,
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (403, Some("https://tix.invalid/problems/cross_origin"))
    );
    let plain = [
        ("authorization", bearer.as_str()),
        ("content-type", "text/plain"),
    ];
    let (status, _) = api(
        &app,
        reqwest::Method::POST,
        "/api/v1/checkins",
        &plain,
        Some(body),
    )
    .await;
    assert_eq!(status, 415);
    let refund = format!("/api/v1/tickets/{ticket}/refund");
    let (status, _) = api(
        &app,
        reqwest::Method::POST,
        &refund,
        &[("cookie", &erin_cookie)],
        None,
    )
    .await;
    assert_eq!(status, 401, "a body-less write with the cookie alone");
    // Nothing changed.
    assert_eq!(app.seat_letters(event).await, "SFF");
    assert_eq!(
        app.me(Some(&erin.token)).await.expect(200)["role"],
        "attendee"
    );
    let t = app.get_ticket(Some(&erin.token), ticket).await.expect(200);
    assert!(t["checked_in_at"].is_null(), "{t}");
    app.me(None).await.problem(401);
    let (status, _) = api(
        &app,
        reqwest::Method::GET,
        "/api/v1/me",
        &[("cookie", &erin_cookie)],
        None,
    )
    .await;
    assert_eq!(status, 401, "reads too take only the bearer token");
}

// Behind TLS the cookies are Secure: with --cookie-secure the pre-session cookie is
// `__Host-tix_csrf` (Secure) and the session cookie Secure, and an http:// Origin is foreign;
// behind a trusted proxy `X-Forwarded-Proto: https` does the same, from anyone else it is
// ignored.
#[tokio::test]
async fn cookies_are_secure_behind_tls() {
    let app = spawn_app_with(HttpConfig {
        cookie_secure: true,
        ..HttpConfig::default()
    })
    .await;
    let mut b = Browser::new(&app);
    let form = b.get("/login").await;
    let cookie = &form.set_cookies[0];
    assert!(
        cookie.starts_with("__Host-tix_csrf=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    let token = csrf_field(&form.text).expect("token");
    let https = app.base_url.replace("http://", "https://");
    let login = [
        ("username", "admin"),
        ("password", ADMIN_PASSWORD),
        ("csrf", &token),
    ];
    let plain_origin = b
        .post_form("/login", &login, &[("origin", &app.base_url)])
        .await;
    assert_refused(&plain_origin, "an http origin over TLS");
    let ok = b.post_form("/login", &login, &[("origin", &https)]).await;
    assert_eq!(ok.status, 303, "{}", ok.text);
    let session = ok.set_cookie.expect("a session cookie");
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );

    let proxied = spawn_app_with(HttpConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..HttpConfig::default()
    })
    .await;
    let login_page = |client: reqwest::Client, proto: &'static str| {
        let url = format!("{}/login", proxied.base_url);
        async move {
            let reply = client
                .get(url)
                .header("x-forwarded-proto", proto)
                .send()
                .await
                .expect("sent");
            let set = reply.headers().get("set-cookie").expect("a cookie");
            set.to_str().unwrap().to_owned()
        }
    };
    let from_proxy = login_page(proxied.client_from(IpAddr::from([127, 0, 0, 1])), "https").await;
    assert!(from_proxy.starts_with("__Host-tix_csrf=") && from_proxy.contains("Secure"));
    let plain = login_page(proxied.client_from(IpAddr::from([127, 0, 0, 1])), "http").await;
    assert!(
        plain.starts_with("tix_csrf=") && !plain.contains("Secure"),
        "{plain}"
    );
    let spoofed = login_page(proxied.client_from(IpAddr::from([127, 0, 0, 7])), "https").await;
    assert!(
        spoofed.starts_with("tix_csrf=") && !spoofed.contains("Secure"),
        "{spoofed}"
    );
}
