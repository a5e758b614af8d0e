//! The shop and accounts: holds with an expiry, checkout through the test payment provider
//! (paid and declined cards), ticket listings, refunds, door check-in, optimistic event edits,
//! and login/logout.

use serde_json::json;

use crate::helpers::{
    CARD_DECLINED, CARD_OK, PRICE_CENTS, USER_PASSWORD, numbered, problem_kind, spawn_app,
    unnumbered,
};

/// Parses an RFC 3339 time into milliseconds since the epoch.
fn rfc3339_ms(text: &str) -> i128 {
    let format = time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(text, &format).unwrap_or_else(|e| panic!("{text}: {e}"));
    at.unix_timestamp_nanos() / 1_000_000
}

/// Returns now in milliseconds since the epoch.
fn now_ms() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
}

#[tokio::test]
async fn hold_then_checkout_makes_an_order_of_two_tickets() {
    // Holds 2 seats, pays with the good card, and finds the order and tickets in the listings.
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(6)).await;
    let buyer = app.new_user("buyer", None).await;
    let token = Some(buyer.token.as_str());

    let body = json!({"request_id": "cart-1", "seats": [3, 4]});
    let hold = app.hold(token, event, &body).await.expect(201);
    let hold_id = hold["hold_id"].as_u64().expect("hold_id");
    assert_eq!(
        (hold["event_id"].clone(), hold["quantity"].clone()),
        (json!(event), json!(2))
    );
    assert_eq!(hold["seats"], json!([3, 4]));
    let expires_at = rfc3339_ms(hold["expires_at"].as_str().expect("expires_at"));
    assert!(
        expires_at > now_ms(),
        "a new hold expires in the future: {hold}"
    );
    assert_eq!(
        app.get_hold(token, hold_id).await.expect(200),
        hold,
        "GET shows the same hold"
    );
    assert_eq!(app.seat_letters(event).await, "FFHHFF");
    assert_eq!(app.counts(event).await["held"], json!(2));

    let reply = app.checkout(token, hold_id, CARD_OK).await;
    let order = reply.expect(201);
    let tickets = order["tickets"].as_array().expect("tickets").clone();
    assert_eq!(tickets.len(), 2, "{order}");
    assert_eq!(order["total_cents"], json!(2 * PRICE_CENTS));
    assert_eq!(order["event_id"], json!(event));
    assert!(
        order["payment_ref"].as_str().is_some_and(|r| !r.is_empty()),
        "{order}"
    );
    assert_eq!(app.seat_letters(event).await, "FFSSFF");
    let counts = app.counts(event).await;
    assert_eq!(
        (counts["sold"].clone(), counts["held"].clone()),
        (json!(2), json!(0))
    );
    app.get_hold(token, hold_id).await.problem(404);
    let problem = app.checkout(token, hold_id, CARD_OK).await.problem(404);
    assert_eq!(
        problem_kind(&problem),
        "not_found",
        "a paid hold cannot be paid twice"
    );

    let listed = app.tickets(token).await.expect(200);
    let listed = listed["tickets"].as_array().expect("tickets").clone();
    let ids: Vec<_> = listed.iter().map(|t| t["ticket_id"].clone()).collect();
    assert_eq!(ids, tickets);
    let seats: Vec<_> = listed.iter().map(|t| t["seat"].clone()).collect();
    assert_eq!(seats, [json!(3), json!(4)]);
    for ticket in &listed {
        assert_eq!(ticket["status"], json!("active"), "{ticket}");
        assert_eq!(ticket["price_cents"], json!(PRICE_CENTS), "{ticket}");
        assert_eq!(ticket["order_id"], order["order_id"], "{ticket}");
    }
    let orders = app.orders(token).await.expect(200);
    assert_eq!(orders["orders"], json!([order]));
    // Another user's listings are empty.
    let other = app.new_user("other", None).await;
    assert_eq!(
        app.tickets(Some(&other.token)).await.expect(200),
        json!({"tickets": []})
    );
    assert_eq!(
        app.orders(Some(&other.token)).await.expect(200),
        json!({"orders": []})
    );
}

#[tokio::test]
async fn a_declined_card_is_402_and_keeps_the_hold_for_another_card() {
    // Pays a hold with the declined card: 402, nothing sold, the hold stays; the good card then
    // pays the same hold.
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(4)).await;
    let buyer = app.new_user("buyer", None).await;
    let token = Some(buyer.token.as_str());
    let hold_id = app.hold_ok(&buyer.token, event, "cart-1", &[1, 2]).await;
    assert_eq!(app.seat_letters(event).await, "HHFF");

    let problem = app
        .checkout(token, hold_id, CARD_DECLINED)
        .await
        .problem(402);
    assert_eq!(problem_kind(&problem), "payment_declined", "{problem}");
    assert_eq!(app.seat_letters(event).await, "HHFF", "the hold stays");
    let counts = app.counts(event).await;
    assert_eq!(
        counts,
        json!({"event_id": event, "capacity": 4, "sold": 0, "held": 2, "available": 2})
    );
    app.get_hold(token, hold_id).await.expect(200);
    assert!(app.sales_lines(event).await.is_empty());
    assert_eq!(app.tickets(token).await.expect(200), json!({"tickets": []}));

    app.checkout(token, hold_id, CARD_OK).await.expect(201);
    assert_eq!(app.seat_letters(event).await, "SSFF");
}

#[tokio::test]
async fn releasing_a_hold_frees_its_inventory() {
    // Releases a hold of 3 (204): counters recover, a second release and a checkout are 404.
    let app = spawn_app().await;
    let event = app.admin_event(&unnumbered(5)).await;
    let buyer = app.new_user("buyer", None).await;
    let token = Some(buyer.token.as_str());
    let body = json!({"request_id": "three", "quantity": 3});
    let hold = app.hold(token, event, &body).await.expect(201);
    assert_eq!(
        (hold["quantity"].clone(), hold["seats"].clone()),
        (json!(3), json!([]))
    );
    let hold_id = hold["hold_id"].as_u64().expect("hold_id");
    assert_eq!(app.counts(event).await["available"], json!(2));
    app.release_hold(token, hold_id).await.expect(204);
    assert_eq!(app.counts(event).await["available"], json!(5));
    app.release_hold(token, hold_id).await.problem(404);
    app.checkout(token, hold_id, CARD_OK).await.problem(404);
}

#[tokio::test]
async fn a_refund_frees_the_seat_once() {
    // Refunds a ticket: its seat is free and resellable, /sales drops it, a second refund 409s.
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(3)).await;
    let buyer = app.new_user("buyer", None).await;
    let token = Some(buyer.token.as_str());
    let ticket = app.buy_seat(&buyer.token, event, 2).await;
    assert_eq!(app.seat_letters(event).await, "FSF");

    let refund = app.refund(token, ticket).await.expect(200);
    assert_eq!(
        refund,
        json!({"ticket_id": ticket, "status": "refunded", "amount_cents": PRICE_CENTS})
    );
    assert_eq!(app.seat_letters(event).await, "FFF");
    assert_eq!(app.counts(event).await["sold"], json!(0));
    let shown = app.get_ticket(token, ticket).await.expect(200);
    assert_eq!(shown["status"], json!("refunded"), "{shown}");
    assert!(shown["refunded_at"].is_string(), "{shown}");
    assert!(app.sales_lines(event).await.is_empty());

    let problem = app.refund(token, ticket).await.problem(409);
    assert_eq!(problem["reason"], json!("already_refunded"), "{problem}");
    let problem = app
        .check_in(Some(&app.admin_token), ticket)
        .await
        .problem(409);
    assert_eq!(
        problem["reason"],
        json!("refunded"),
        "a refunded ticket is not admitted"
    );
    app.sell(event, "walk-in", "r", Some(2)).await.expect(201);
}

#[tokio::test]
async fn check_in_admits_once() {
    // Checks a ticket in twice: 200, then 409 already_admitted with when and by whom.
    let app = spawn_app().await;
    let organizer = app.new_user("organizer", Some("organizer")).await;
    let event = app.event_as(&organizer.token, &numbered(3)).await;
    let buyer = app.new_user("buyer", None).await;
    let ticket = app.buy_seat(&buyer.token, event, 1).await;

    let admitted = app
        .check_in(Some(&organizer.token), ticket)
        .await
        .expect(200);
    assert_eq!(
        (admitted["ticket_id"].clone(), admitted["admitted"].clone()),
        (json!(ticket), json!(true))
    );
    let at = admitted["at"].as_str().expect("at").to_owned();
    rfc3339_ms(&at);

    for token in [&organizer.token, &app.admin_token] {
        let problem = app.check_in(Some(token), ticket).await.problem(409);
        assert_eq!(problem["reason"], json!("already_admitted"), "{problem}");
        assert_eq!(problem["at"], json!(at), "{problem}");
        assert_eq!(problem["by"], json!("organizer"), "{problem}");
    }
    let shown = app.get_ticket(Some(&buyer.token), ticket).await.expect(200);
    assert_eq!(shown["checked_in_at"], json!(at));
    let problem = app.refund(Some(&buyer.token), ticket).await.problem(409);
    assert_eq!(problem["reason"], json!("already_checked_in"), "{problem}");
}

#[tokio::test]
async fn an_edit_with_a_stale_version_is_409_with_the_current_version() {
    // Edits at version 1 twice: 200, then 409 with current_version 2 and no lost update.
    let app = spawn_app().await;
    let organizer = app.new_user("organizer", Some("organizer")).await;
    let token = Some(organizer.token.as_str());
    let event = app.event_as(&organizer.token, &numbered(3)).await;
    assert_eq!(app.get_event(event).await.expect(200)["version"], json!(1));

    let mut edit = numbered(3);
    edit.as_object_mut().expect("object").remove("inventory");
    edit["version"] = json!(1);
    edit["name"] = json!("Renamed Concert");
    let edited = app.edit_event(token, event, &edit).await.expect(200);
    assert_eq!(
        (edited["version"].clone(), edited["name"].clone()),
        (json!(2), json!("Renamed Concert"))
    );

    edit["name"] = json!("Lost Update");
    let problem = app.edit_event(token, event, &edit).await.problem(409);
    assert_eq!(problem["current_version"], json!(2), "{problem}");
    assert_eq!(problem_kind(&problem), "version_conflict", "{problem}");
    let stored = app.get_event(event).await.expect(200);
    assert_eq!(
        (stored["version"].clone(), stored["name"].clone()),
        (json!(2), json!("Renamed Concert"))
    );

    edit["version"] = json!(2);
    app.edit_event(token, event, &edit).await.expect(200);
    assert_eq!(
        app.get_event(event).await.expect(200)["name"],
        json!("Lost Update")
    );
}

#[tokio::test]
async fn wrong_passwords_are_401_and_logout_ends_the_session() {
    // Logs in with bad credentials (401) and logs out: the token is refused, others still work.
    let app = spawn_app().await;
    let user = app.new_user("someone", None).await;
    for (name, password) in [("someone", "wrong-password-1"), ("nobody", USER_PASSWORD)] {
        let reply = app.login(name, password).await;
        let problem = reply.problem(401);
        assert_eq!(problem_kind(&problem), "bad_credentials", "{problem}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert!(problem.get("token").is_none(), "{problem}");
    }
    let me = app.me(Some(&user.token)).await.expect(200);
    assert_eq!(
        me,
        json!({"id": user.id, "username": user.username, "role": "attendee"})
    );
    let second = app.login("someone", USER_PASSWORD).await.expect(200);
    let second = second["token"].as_str().expect("token").to_owned();
    assert_ne!(second, user.token, "each login gets its own token");

    app.logout(&user.token).await.expect(204);
    let problem = app.me(Some(&user.token)).await.problem(401);
    assert_eq!(problem_kind(&problem), "unauthenticated", "{problem}");
    app.logout(&user.token).await.problem(401);
    app.tickets(Some(&user.token)).await.problem(401);
    app.me(Some(&second)).await.expect(200);
    app.me(Some("not-a-token")).await.problem(401);
}

#[tokio::test]
async fn a_retried_hold_replays_the_same_hold() {
    // Sends the same hold request twice: the second answer is the same hold, flagged
    // `Idempotent-Replayed: true`, and only two seats are held.
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(6)).await;
    let buyer = app.new_user("retrier", None).await;
    let token = Some(buyer.token.as_str());
    let body = json!({"request_id": "cart-7", "seats": [1, 2]});
    let first = app.hold(token, event, &body).await;
    assert_eq!(first.header("idempotent-replayed"), None);
    let first = first.expect(201);
    let again = app.hold(token, event, &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.expect(201)["hold_id"], first["hold_id"]);
    let availability = app.availability(event).await.expect(200);
    assert_eq!(availability["held"], json!(2), "{availability}");
}

#[tokio::test]
async fn an_event_cannot_be_moved_into_the_past() {
    let app = spawn_app().await;
    let organizer = app.new_user("mover", Some("organizer")).await;
    let token = Some(organizer.token.as_str());
    let event = app.event_as(&organizer.token, &numbered(3)).await;
    let mut edit = numbered(3);
    edit.as_object_mut().expect("object").remove("inventory");
    edit["version"] = json!(1);
    edit["starts_at"] = json!("2020-06-01T20:00:00Z");
    let problem = app.edit_event(token, event, &edit).await.problem(422);
    assert_eq!(problem["field"], "starts_at", "{problem}");
    assert_eq!(app.get_event(event).await.expect(200)["version"], json!(1));
    // The same start time, other details changed: accepted.
    edit["starts_at"] = json!("2030-06-01T20:00:00Z");
    edit["name"] = json!("Renamed");
    app.edit_event(token, event, &edit).await.expect(200);
}
