//! Event cancellation through `POST /api/v1/events/{id}/cancel`: every ticket refunded and every
//! hold released in one go, later holds, purchases and check-ins refused with "event
//! cancelled", and who may cancel, what a reason may be, and what a second cancellation gets.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, numbered, problem_kind, spawn_app};

impl TestApp {
    /// `POST /events/{id}/cancel`.
    pub async fn cancel_event(
        &self,
        token: Option<&str>,
        event_id: u64,
        body: &Value,
    ) -> crate::helpers::Reply {
        let path = format!("/api/v1/events/{event_id}/cancel");
        self.request(Method::POST, &path, token, Some(body)).await
    }
}

// Sells three seats (two buyers) and holds two more, cancels as the organizer, then checks the
// answer's counts, the tickets' status, the freed inventory, and the refusals that follow.
#[tokio::test]
async fn cancelling_refunds_every_ticket_releases_holds_and_refuses_what_follows() {
    let app = spawn_app().await;
    let organizer = app.new_user("cancelorg", Some("organizer")).await;
    let alice = app.new_user("alice", None).await;
    let bob = app.new_user("bob", None).await;
    let event = app.event_as(&organizer.token, &numbered(10)).await;
    let a1 = app.buy_seat(&alice.token, event, 1).await;
    let a2 = app.buy_seat(&alice.token, event, 2).await;
    let b3 = app.buy_seat(&bob.token, event, 3).await;
    app.hold_ok(&bob.token, event, "open-hold", &[4, 5]).await;

    let body = json!({"reason": "  The hall is flooded.  "});
    let answer = app
        .cancel_event(Some(&organizer.token), event, &body)
        .await
        .expect(200);
    assert_eq!(answer["event_id"], event);
    assert_eq!(answer["tickets_refunded"], 3);
    assert_eq!(answer["holds_released"], 1);
    assert_eq!(answer["amount_cents"], 3 * crate::helpers::PRICE_CENTS);
    assert_eq!(answer["reason"], "The hall is flooded.");

    for (user, ticket) in [(&alice, a1), (&alice, a2), (&bob, b3)] {
        let t = app.get_ticket(Some(&user.token), ticket).await.expect(200);
        assert_eq!(t["status"], "cancelled", "{t}");
        assert!(t["refunded_at"].is_string(), "{t}");
    }
    let counts = app.counts(event).await;
    assert_eq!(
        (counts["sold"].clone(), counts["held"].clone()),
        (json!(0), json!(0))
    );
    // Every order is paid back in full: Alice's two orders, Bob's one.
    for user in [&alice, &bob] {
        let orders = app.orders(Some(&user.token)).await.expect(200);
        for order in orders["orders"].as_array().expect("orders") {
            let payment_ref = order["payment_ref"].as_str().expect("payment_ref");
            assert_eq!(
                app.payments.refunded_cents(payment_ref),
                crate::helpers::PRICE_CENTS,
                "{order}"
            );
        }
    }
    let shown = app.get_event(event).await.expect(200);
    assert_eq!(shown["cancelled"]["reason"], "The hall is flooded.");

    let hold = json!({"request_id": "after", "quantity": 1});
    let refused = app
        .hold(Some(&alice.token), event, &hold)
        .await
        .problem(409);
    assert_eq!(problem_kind(&refused), "event_cancelled");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("event cancelled")
    );
    let sale = json!({"client_id": "door", "request_id": "late"});
    let refused = app
        .purchase(Some(&organizer.token), event, &sale)
        .await
        .problem(409);
    assert_eq!(problem_kind(&refused), "event_cancelled");
    let refused = app.check_in(Some(&organizer.token), a1).await.problem(409);
    assert_eq!(problem_kind(&refused), "event_cancelled");
    app.assert_invariants();
}

// Another organizer gets 403, an attendee 403, an unknown event 404; a bad reason is 422 with
// `field` = `reason`; a retry with the same request_id is the first answer again, flagged; any
// other second cancellation is 409 `already_cancelled`. An admin may cancel any event.
#[tokio::test]
async fn who_may_cancel_reasons_and_second_cancellations() {
    let app = spawn_app().await;
    let organizer = app.new_user("owner", Some("organizer")).await;
    let rival = app.new_user("rival", Some("organizer")).await;
    let attendee = app.new_user("carol", None).await;
    let event = app.event_as(&organizer.token, &numbered(5)).await;
    let other = app.event_as(&organizer.token, &numbered(5)).await;
    let body = json!({"reason": "Storm"});

    for token in [&rival.token, &attendee.token] {
        let refused = app
            .cancel_event(Some(token), event, &body)
            .await
            .problem(403);
        assert_eq!(problem_kind(&refused), "forbidden");
    }
    let refused = app.cancel_event(Some(&organizer.token), 999, &body).await;
    assert_eq!(problem_kind(&refused.problem(404)), "not_found");
    assert_eq!(app.cancel_event(None, event, &body).await.status, 401);

    let too_long = "x".repeat(tix_core::CANCEL_REASON_CHARS_MAX + 1);
    let longest = "y".repeat(tix_core::CANCEL_REASON_CHARS_MAX);
    for bad in [
        json!({}),
        json!({"reason": ""}),
        json!({"reason": "   "}),
        json!({"reason": "two\nlines"}),
        json!({"reason": too_long}),
        json!({"reason": "ok", "colour": "red"}),
    ] {
        let refused = app
            .cancel_event(Some(&organizer.token), event, &bad)
            .await
            .problem(422);
        assert_eq!(problem_kind(&refused), "invalid_field", "{bad}");
    }
    assert!(app.get_event(event).await.expect(200)["cancelled"].is_null());

    let keyed = json!({"reason": longest, "request_id": "cancel-1"});
    let first = app
        .cancel_event(Some(&organizer.token), event, &keyed)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let retry = app
        .cancel_event(Some(&organizer.token), event, &keyed)
        .await;
    assert_eq!(retry.expect(200)["tickets_refunded"], 0);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let again = app
        .cancel_event(Some(&organizer.token), event, &body)
        .await
        .problem(409);
    assert_eq!(problem_kind(&again), "already_cancelled");

    let by_admin = app.cancel_event(Some(&app.admin_token), other, &body).await;
    assert_eq!(by_admin.expect(200)["event_id"], other);
    app.assert_invariants();
}

// The pages without a browser: the dashboard's cancel page counts what it will refund, refuses
// an empty reason with a readable message (422), cancels with a reason, and the buyer's
// tickets, orders and the event page then say so. Another organizer gets the 403 page.
#[tokio::test]
async fn the_cancel_pages_confirm_then_cancel_and_buyers_see_it() {
    use crate::pages::Browser;
    let app = spawn_app().await;
    let mut organizer = Browser::new(&app);
    organizer.sign_up("pageorg", true).await;
    let mut buyer_page = Browser::new(&app);
    buyer_page.sign_up("pagebuyer", false).await;
    let token = app.token_of("pageorg").await;
    let event = app.event_as(&token, &numbered(6)).await;
    let buyer_token = app.token_of("pagebuyer").await;
    app.buy_seat(&buyer_token, event, 2).await;

    let mut rival = Browser::new(&app);
    rival.sign_up("pagerival", true).await;
    let path = format!("/organizer/events/{event}/cancel");
    assert_eq!(rival.get(&path).await.status, 403);
    let dashboard = organizer.get(&format!("/organizer/events/{event}")).await;
    assert!(dashboard.text.contains(&path), "a Cancel event link");
    let confirm = organizer.get(&path).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.text.contains("1 ticket</strong>"),
        "{}",
        confirm.text
    );

    let empty = organizer.post(&path, &[("reason", "  ")]).await;
    assert_eq!(empty.status, 422);
    assert!(
        empty.text.contains("Reason: fill this in"),
        "{}",
        empty.text
    );
    assert!(
        empty
            .text
            .contains("aria-invalid=\"true\" aria-describedby=\"reason-error reason-hint\""),
        "{}",
        empty.text
    );
    let done = organizer
        .post(
            &path,
            &[("reason", "Storm warning"), ("request_id", "page-1")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("1 ticket refunded"), "{}", done.text);
    let again = organizer
        .post(
            &path,
            &[("reason", "Storm warning"), ("request_id", "page-1")],
        )
        .await;
    assert_eq!(
        again.status, 200,
        "a repeated post is the same cancellation"
    );

    let tickets = buyer_page.get("/tickets").await;
    assert!(
        tickets
            .text
            .contains("Cancelled by the organizer — refunded")
    );
    let orders = buyer_page.get("/orders").await;
    assert!(
        orders
            .text
            .contains("Cancelled by the organizer — refunded")
    );
    let page = buyer_page.get(&format!("/events/{event}")).await;
    assert!(
        page.text.contains("cancelled by the organizer") && page.text.contains("Storm warning")
    );
    assert!(
        !page.text.contains("order-form"),
        "no order form on a cancelled event"
    );
    let home = buyer_page.get("/").await;
    assert!(home.text.contains("Cancelled"));
    app.assert_invariants();
}

/// Logs a test user in and returns `/me`.
async fn account(app: &TestApp, username: &str) -> Value {
    let token = app.token_of(username).await;
    app.me(Some(&token)).await.expect(200)
}

// `/admin/users`: 403 for others; an admin finds an account by the start of its name and changes
// its role through the same path as the API; demoting the only admin says why it cannot be.
#[tokio::test]
async fn admins_change_roles_on_the_users_page() {
    use crate::pages::Browser;
    let app = spawn_app().await;
    let mut someone = Browser::new(&app);
    someone.sign_up("roleuser", false).await;
    assert_eq!(someone.get("/admin/users").await.status, 403);
    let mut admin = Browser::new(&app);
    let login = admin
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", crate::helpers::ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(login.status, 303, "{}", login.text);
    let list = admin.get("/admin/users?q=ROLE").await;
    assert_eq!(list.status, 200);
    assert!(list.text.contains("roleuser") && !list.text.contains(">admin</td>"));
    let id = account(&app, "roleuser").await["id"].as_u64().expect("id");
    let changed = admin
        .post(
            &format!("/admin/users/{id}/role"),
            &[("role", "staff"), ("q", "role")],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert!(
        changed.text.contains("roleuser is now staff."),
        "{}",
        changed.text
    );
    assert_eq!(account(&app, "roleuser").await["role"], "staff");
    let refused = admin
        .post("/admin/users/1/role", &[("role", "attendee")])
        .await;
    assert_eq!(refused.status, 409);
    assert!(refused.text.contains("only admin"), "{}", refused.text);
}
