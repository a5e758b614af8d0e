//! Email addresses and password resets at the edge, without a mail server (the test node sends
//! no mail): the API's sign-up, `/me` and `PUT /me/email` with their refusals, the sign-up and
//! account pages showing every error beside its field, and the forgotten-password pages, which
//! answer alike for known and unknown accounts and refuse a link that does not exist.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{USER_PASSWORD, assert_problem_shape, spawn_app};
use crate::pages::Browser;

/// The API takes an optional address at sign-up and shows it to its owner; a bad one is a 422
/// naming `email`, at sign-up and on `PUT /me/email`; `null` removes it.
#[tokio::test]
async fn the_api_sets_shows_and_refuses_addresses() {
    let app = spawn_app().await;
    let url = "/api/v1/auth/signup";
    let body = json!({"username": "mia", "password": USER_PASSWORD, "email": "mia@@x"});
    let bad = app.request(Method::POST, url, None, Some(&body)).await;
    assert_eq!(assert_problem_shape(&bad)["field"], "email");
    assert_eq!(bad.status, 422);
    let body = json!({"username": "mia", "password": USER_PASSWORD, "email": " mia@example.org"});
    let spaced = app.request(Method::POST, url, None, Some(&body)).await;
    assert_eq!(
        spaced.status, 422,
        "the API takes the address as given: no spaces"
    );
    let body = json!({"username": "mia", "password": USER_PASSWORD, "email": "mia@example.org"});
    let created = app
        .request(Method::POST, url, None, Some(&body))
        .await
        .expect(201);
    assert_eq!(created["email"], "mia@example.org");
    let token = app.token_of("mia").await;
    assert_eq!(
        app.me(Some(&token)).await.expect(200)["email"],
        "mia@example.org"
    );

    let put = |email: serde_json::Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let body = json!({"email": email});
            app.request(Method::PUT, "/api/v1/me/email", Some(&token), Some(&body))
                .await
        }
    };
    let longest = format!("{}@example.org", "a".repeat(254 - 12));
    assert_eq!(
        put(json!(longest)).await.expect(200)["email"],
        longest.as_str()
    );
    let over = put(json!(format!("a{longest}"))).await;
    assert_eq!(over.status, 422);
    assert_eq!(assert_problem_shape(&over)["field"], "email");
    let control = put(json!("a@b\r\nBcc: c@d")).await;
    assert_eq!(control.status, 422);
    let cleared = put(json!(null)).await.expect(200);
    assert!(cleared.get("email").is_none(), "{cleared}");
    assert!(
        app.me(Some(&token))
            .await
            .expect(200)
            .get("email")
            .is_none()
    );
    let unauthenticated = app
        .request(
            Method::PUT,
            "/api/v1/me/email",
            None,
            Some(&json!({"email": "x@y.z"})),
        )
        .await;
    assert_eq!(unauthenticated.status, 401);
    app.assert_invariants();
}

/// The sign-up page shows a bad address beside its field with the other errors; the account
/// page shows the address and changes it, with the same checks.
#[tokio::test]
async fn pages_show_address_errors_beside_the_field() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let form = [
        ("username", "x"),
        ("password", "short"),
        ("email", "not an address"),
    ];
    let page = b.post("/signup", &form).await;
    assert_eq!(page.status, 422);
    assert!(page.text.contains("3 things to fix"), "{}", page.text);
    assert!(page.text.contains("id=\"email-error\""));
    assert!(
        page.text
            .contains("Email: use an address like name@example.org")
    );
    assert!(
        page.text.contains("value=\"not an address\""),
        "what was typed is kept"
    );

    let form = [
        ("username", "nina"),
        ("password", USER_PASSWORD),
        ("email", "nina@example.org"),
    ];
    let page = b.post("/signup", &form).await;
    assert_eq!(page.status, 303, "{}", page.text);
    let account = b.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(account.text.contains("value=\"nina@example.org\""));

    let bad = b.post("/account", &[("email", "a@b@c")]).await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.text
            .contains("aria-invalid=\"true\" aria-describedby=\"email-error email-hint\"")
    );
    // The page trims what was typed.
    let good = b.post("/account", &[("email", " nina@new.example ")]).await;
    assert_eq!(good.status, 303);
    assert_eq!(good.location.as_deref(), Some("/account?saved=1"));
    let saved = b.get("/account?saved=1").await;
    assert!(saved.text.contains("value=\"nina@new.example\"") && saved.text.contains("Saved."));
    let logged_out = Browser::new(&app).get("/account").await;
    assert_eq!(logged_out.status, 303, "the account page asks to log in");
    app.assert_invariants();
}

/// "Forgot your password?" answers a known and an unknown name alike, refuses an empty field
/// beside it, and a reset link that does not exist shows "no longer works" (404).
#[tokio::test]
async fn forgotten_password_pages_reveal_nothing() {
    let app = spawn_app().await;
    app.new_user("olga", None).await;
    let mut b = Browser::new(&app);
    let login = b.get("/login").await;
    assert!(login.text.contains("href=\"/password/forgot\""));
    let known = b.post("/password/forgot", &[("who", "olga")]).await;
    let unknown = b
        .post("/password/forgot", &[("who", "nobody-at-all")])
        .await;
    assert_eq!((known.status, unknown.status), (200, 200));
    assert!(known.text.contains("id=\"reset-sent\"") && unknown.text.contains("id=\"reset-sent\""));
    let empty = b.post("/password/forgot", &[("who", "")]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.text.contains("id=\"who-error\""));
    let bogus = b
        .get(&format!("/password/reset?token={}", "ab".repeat(32)))
        .await;
    assert_eq!(bogus.status, 404);
    assert!(bogus.text.contains("id=\"reset-invalid\""));
    let malformed = b.get("/password/reset?token=<script>").await;
    assert_eq!(malformed.status, 404);
}
