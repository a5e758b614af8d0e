//! Bad requests: malformed JSON, fields of the wrong type or out of range, missing fields and
//! oversize bodies. Each must be a 4xx `application/problem+json` (never a 5xx) naming the field
//! where there is one, and must leave the state exactly as it was. Limits are tested from both
//! sides: the maximum is accepted, one over is refused.

use serde_json::{Value, json};

use crate::helpers::{
    Snapshot, TestApp, assert_problem_shape, numbered, problem_kind, spawn_app, unnumbered,
};

/// Seats of the numbered event the purchase checks use.
const SEATS: u32 = 10;

/// Returns `body` with the member at a `/`-separated path set to `value` (added if missing).
fn set(mut body: Value, path: &str, value: Value) -> Value {
    let (parent, key) = path.rsplit_once('/').expect("path starts with /");
    let parent = body
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object");
    parent.insert(key.to_owned(), value);
    body
}

/// Returns `body` without the member at a `/`-separated path.
fn without(mut body: Value, path: &str) -> Value {
    let (parent, key) = path.rsplit_once('/').expect("path starts with /");
    let parent = body
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent object");
    assert!(parent.remove(key).is_some(), "{path} was not in the body");
    body
}

/// Asserts a 422 problem naming `field`, and returns it.
fn assert_invalid(reply: &crate::helpers::Reply, field: &str, case: &str) -> Value {
    assert_eq!(reply.status, 422, "{case}: {}", reply.text);
    let body = assert_problem_shape(reply);
    assert_eq!(body["field"], json!(field), "{case}: {body}");
    body
}

/// A numbered and an unnumbered event made by the admin, with one sale each, so that "nothing
/// changed" is checked against non-trivial counters.
async fn app_with_events() -> (TestApp, u64, u64) {
    let app = spawn_app().await;
    let seated = app.admin_event(&numbered(SEATS)).await;
    let open = app.admin_event(&unnumbered(5)).await;
    app.sell(seated, "setup", "r1", Some(1)).await.expect(201);
    app.sell(open, "setup", "r1", None).await.expect(201);
    (app, seated, open)
}

/// Asserts that availability, sales and the event count of both events are as before.
async fn assert_unchanged(app: &TestApp, events: &[(u64, Snapshot)], case: &str) {
    for (event_id, before) in events {
        assert_eq!(
            &app.snapshot(*event_id).await,
            before,
            "state changed after {case}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_problem_and_changes_nothing() {
    // Posts non-JSON bodies to two endpoints: 400 malformed_json each time, state unchanged.
    let (app, seated, open) = app_with_events().await;
    let before = [
        (seated, app.snapshot(seated).await),
        (open, app.snapshot(open).await),
    ];
    let token = Some(app.admin_token.as_str());
    let purchase = json!({"client_id": "a", "request_id": "b", "seat": 2});
    let endpoints = [
        ("/api/v1/events".to_owned(), numbered(2)),
        (format!("/api/v1/events/{seated}/purchases"), purchase),
    ];
    for (path, valid) in endpoints {
        let valid = serde_json::to_vec(&valid).expect("serializes");
        let mut cut = valid.clone();
        cut.truncate(valid.len() / 2);
        let bodies: [Vec<u8>; 7] = [
            cut,
            [valid.as_slice(), b" trailing"].concat(),
            [valid.as_slice(), valid.as_slice()].concat(),
            Vec::new(),
            b"not json".to_vec(),
            b"{'client_id': 'a'}".to_vec(),
            b"\xff\xfe{}".to_vec(),
        ];
        for body in bodies {
            let case = format!("POST {path} with {:?}", String::from_utf8_lossy(&body));
            let reply = app.post_raw(&path, token, body).await;
            assert_eq!(reply.status, 400, "{case}: {}", reply.text);
            let problem = assert_problem_shape(&reply);
            assert_eq!(
                problem_kind(&problem),
                "malformed_json",
                "{case}: {problem}"
            );
            assert_unchanged(&app, &before, &case).await;
        }
    }
}

#[tokio::test]
async fn bad_event_fields_are_422_naming_the_field() {
    // Creates events with one bad field at a time: 422 naming the field, no event created.
    let (app, seated, open) = app_with_events().await;
    let before = [
        (seated, app.snapshot(seated).await),
        (open, app.snapshot(open).await),
    ];
    let good = numbered(4);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "price as text",
            set(good.clone(), "/price_cents", json!("ten")),
            "price_cents",
        ),
        (
            "negative price",
            set(good.clone(), "/price_cents", json!(-1)),
            "price_cents",
        ),
        (
            "fractional price",
            set(good.clone(), "/price_cents", json!(1.5)),
            "price_cents",
        ),
        (
            "name as number",
            set(good.clone(), "/name", json!(42)),
            "name",
        ),
        ("empty name", set(good.clone(), "/name", json!("")), "name"),
        (
            "NUL in the name",
            set(good.clone(), "/name", json!("Gala\u{0}night")),
            "name",
        ),
        (
            "bidi override in the description",
            set(good.clone(), "/description", json!("see \u{202E}txt.exe")),
            "description",
        ),
        (
            "escape sequence in the venue",
            set(good.clone(), "/venue/name", json!("\u{1b}[31mHall")),
            "venue.name",
        ),
        (
            "blank name",
            set(good.clone(), "/name", json!("   ")),
            "name",
        ),
        (
            "refundable as text",
            set(good.clone(), "/refundable", json!("yes")),
            "refundable",
        ),
        (
            "lat as text",
            set(good.clone(), "/venue/lat", json!("north")),
            "venue.lat",
        ),
        (
            "lat 91",
            set(good.clone(), "/venue/lat", json!(91)),
            "venue.lat",
        ),
        (
            "lat -91",
            set(good.clone(), "/venue/lat", json!(-91)),
            "venue.lat",
        ),
        (
            "lon 181",
            set(good.clone(), "/venue/lon", json!(181)),
            "venue.lon",
        ),
        (
            "lon -181",
            set(good.clone(), "/venue/lon", json!(-180.5)),
            "venue.lon",
        ),
        (
            "empty venue name",
            set(good.clone(), "/venue/name", json!("")),
            "venue.name",
        ),
        (
            "lower-case currency",
            set(good.clone(), "/currency", json!("eur")),
            "currency",
        ),
        (
            "four-letter currency",
            set(good.clone(), "/currency", json!("EURO")),
            "currency",
        ),
        (
            "digit in currency",
            set(good.clone(), "/currency", json!("E1R")),
            "currency",
        ),
        (
            "currency not in ISO 4217",
            set(good.clone(), "/currency", json!("XYZ")),
            "currency",
        ),
        (
            "starts_at in the past",
            set(good.clone(), "/starts_at", json!("2020-06-01T20:00:00Z")),
            "starts_at",
        ),
        (
            "starts_at in words",
            set(good.clone(), "/starts_at", json!("tomorrow")),
            "starts_at",
        ),
        (
            "starts_at date only",
            set(good.clone(), "/starts_at", json!("2030-06-01")),
            "starts_at",
        ),
        (
            "starts_at month 13",
            set(good.clone(), "/starts_at", json!("2030-13-01T20:00:00Z")),
            "starts_at",
        ),
        (
            "starts_at as number",
            set(good.clone(), "/starts_at", json!(1_900_000_000)),
            "starts_at",
        ),
        (
            "per_customer_max 0",
            set(good.clone(), "/per_customer_max", json!(0)),
            "per_customer_max",
        ),
        ("missing name", without(good.clone(), "/name"), "name"),
        (
            "missing starts_at",
            without(good.clone(), "/starts_at"),
            "starts_at",
        ),
        (
            "missing currency",
            without(good.clone(), "/currency"),
            "currency",
        ),
        (
            "missing price",
            without(good.clone(), "/price_cents"),
            "price_cents",
        ),
        ("missing venue", without(good.clone(), "/venue"), "venue"),
        (
            "missing inventory",
            without(good.clone(), "/inventory"),
            "inventory",
        ),
        (
            "zero seats",
            set(good.clone(), "/inventory/seats", json!(0)),
            "inventory.seats",
        ),
        (
            "blocked seat 0",
            set(good.clone(), "/inventory/blocked", json!([0])),
            "inventory.blocked",
        ),
        (
            "blocked seat past the end",
            set(good.clone(), "/inventory/blocked", json!([5])),
            "inventory.blocked",
        ),
        ("zero capacity", unnumbered(0), "inventory.capacity"),
        (
            "capacity one over the limit",
            unnumbered(1_000_001),
            "inventory.capacity",
        ),
    ];
    for (case, body, field) in cases {
        let reply = app.create_event(Some(&app.admin_token), &body).await;
        assert_invalid(&reply, field, case);
        assert_unchanged(&app, &before, case).await;
    }
}

#[tokio::test]
async fn bad_purchases_are_422_naming_the_field() {
    // Posts purchases with one bad field at a time: 422 naming the field, sales unchanged.
    let (app, seated, open) = app_with_events().await;
    let before = [
        (seated, app.snapshot(seated).await),
        (open, app.snapshot(open).await),
    ];
    let good = json!({"client_id": "buyer", "request_id": "req-1", "seat": 2});
    let long = "k".repeat(129);
    let cases: Vec<(&str, u64, Value, &str)> = vec![
        (
            "seat 0",
            seated,
            set(good.clone(), "/seat", json!(0)),
            "seat",
        ),
        (
            "seat N+1",
            seated,
            set(good.clone(), "/seat", json!(SEATS + 1)),
            "seat",
        ),
        (
            "negative seat",
            seated,
            set(good.clone(), "/seat", json!(-1)),
            "seat",
        ),
        (
            "seat as text",
            seated,
            set(good.clone(), "/seat", json!("A1")),
            "seat",
        ),
        ("seat on an unnumbered event", open, good.clone(), "seat"),
        (
            "missing client_id",
            seated,
            without(good.clone(), "/client_id"),
            "client_id",
        ),
        (
            "missing request_id",
            seated,
            without(good.clone(), "/request_id"),
            "request_id",
        ),
        (
            "client_id as number",
            seated,
            set(good.clone(), "/client_id", json!(7)),
            "client_id",
        ),
        (
            "empty client_id",
            seated,
            set(good.clone(), "/client_id", json!("")),
            "client_id",
        ),
        (
            "NUL in client_id",
            seated,
            set(good.clone(), "/client_id", json!("buyer\u{0}")),
            "client_id",
        ),
        (
            "bidi isolate in request_id",
            seated,
            set(good.clone(), "/request_id", json!("\u{2066}req")),
            "request_id",
        ),
        (
            "empty request_id",
            seated,
            set(good.clone(), "/request_id", json!("")),
            "request_id",
        ),
        (
            "client_id of 129 bytes",
            seated,
            set(good.clone(), "/client_id", json!(long)),
            "client_id",
        ),
        (
            "request_id of 129 bytes",
            seated,
            set(good.clone(), "/request_id", json!(long)),
            "request_id",
        ),
    ];
    for (case, event_id, body, field) in cases {
        let reply = app.purchase(Some(&app.admin_token), event_id, &body).await;
        assert_invalid(&reply, field, case);
        assert_unchanged(&app, &before, case).await;
    }
}

#[tokio::test]
async fn limits_are_accepted_at_the_maximum_and_refused_one_over() {
    // Tests each cheap limit from both sides: the maximum is accepted, one over is refused.
    let (app, seated, open) = app_with_events().await;
    let admin = Some(app.admin_token.as_str());

    // Multi-byte characters: the limit is in characters, not bytes.
    let name_max = "é".repeat(200);
    let created = app
        .create_event(admin, &set(numbered(2), "/name", json!(name_max)))
        .await;
    assert_eq!(created.expect(201)["name"], json!(name_max));
    let reply = app
        .create_event(admin, &set(numbered(2), "/name", json!("é".repeat(201))))
        .await;
    assert_invalid(&reply, "name", "name of 201 characters");
    let venue_name = set(numbered(2), "/venue/name", json!("v".repeat(201)));
    assert_invalid(
        &app.create_event(admin, &venue_name).await,
        "venue.name",
        "venue of 201",
    );
    let description = set(numbered(2), "/description", json!("d".repeat(10_000)));
    app.create_event(admin, &description).await.expect(201);
    let description = set(numbered(2), "/description", json!("d".repeat(10_001)));
    assert_invalid(
        &app.create_event(admin, &description).await,
        "description",
        "10,001 chars",
    );

    for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0)] {
        let body = set(
            set(numbered(2), "/venue/lat", json!(lat)),
            "/venue/lon",
            json!(lon),
        );
        let event = app.create_event(admin, &body).await.expect(201);
        assert_eq!(
            (
                event["venue"]["lat"].as_f64(),
                event["venue"]["lon"].as_f64()
            ),
            (Some(lat), Some(lon))
        );
    }
    let big = app
        .create_event(admin, &unnumbered(1_000_000))
        .await
        .expect(201);
    assert_eq!(big["availability"]["available"], json!(1_000_000));

    let events_before = app.event_count().await;
    let key_max = "k".repeat(128);
    let reply = app.sell(open, &key_max, &key_max, None).await;
    let sold = reply.expect(201);
    assert_eq!(
        (sold["client_id"].as_str(), sold["request_id"].as_str()),
        (Some(key_max.as_str()), Some(key_max.as_str()))
    );
    let reply = app.sell(open, &format!("{key_max}k"), "r", None).await;
    assert_invalid(&reply, "client_id", "client_id of 129 bytes");
    let reply = app.sell(open, "c", &format!("{key_max}k"), None).await;
    assert_invalid(&reply, "request_id", "request_id of 129 bytes");

    app.sell(seated, "edge", "first", Some(2)).await.expect(201);
    app.sell(seated, "edge", "last", Some(SEATS))
        .await
        .expect(201);
    assert_invalid(
        &app.sell(seated, "edge", "over", Some(SEATS + 1)).await,
        "seat",
        "seat N+1",
    );

    let hold = json!({"request_id": "ten", "quantity": 10});
    let placed = app.hold(admin, open, &hold).await;
    // Capacity 5 with one sold: ten are too many for this event, but not for the order limit.
    let problem = placed.problem(409);
    assert_eq!(problem["reason"], json!("sold_out"), "{problem}");
    let big_id = big["id"].as_u64().expect("id");
    let placed = app.hold(admin, big_id, &hold).await.expect(201);
    assert_eq!(placed["quantity"], json!(10));
    let eleven = json!({"request_id": "eleven", "quantity": 11});
    let problem = app.hold(admin, big_id, &eleven).await.problem(422);
    assert_eq!(problem["reason"], json!("bad_quantity"), "{problem}");
    assert_eq!(problem["max"], json!(10), "{problem}");
    let zero = json!({"request_id": "zero", "quantity": 0});
    let problem = app.hold(admin, big_id, &zero).await.problem(422);
    assert_eq!(problem["reason"], json!("bad_quantity"), "{problem}");
    let counts = app.counts(big_id).await;
    assert_eq!(
        (counts["held"].as_u64(), counts["available"].as_u64()),
        (Some(10), Some(999_990))
    );
    assert_eq!(
        app.event_count().await,
        events_before,
        "no event was created by a sale or hold"
    );
}

#[tokio::test]
async fn bad_hold_and_checkout_bodies_are_4xx_problems() {
    // Sends bad holds and mistyped cards: 4xx problems with field or reason, nothing held.
    let (app, seated, open) = app_with_events().await;
    let admin = Some(app.admin_token.as_str());
    let before = [
        (seated, app.snapshot(seated).await),
        (open, app.snapshot(open).await),
    ];
    let cases: Vec<(&str, u64, Value, u16, &str)> = vec![
        (
            "neither quantity nor seats",
            seated,
            json!({"request_id": "h"}),
            422,
            "quantity",
        ),
        (
            "both quantity and seats",
            seated,
            json!({"request_id": "h", "quantity": 1, "seats": [2]}),
            422,
            "quantity",
        ),
        (
            "missing request_id",
            seated,
            json!({"quantity": 1}),
            422,
            "request_id",
        ),
        (
            "empty request_id",
            seated,
            json!({"request_id": "", "quantity": 1}),
            422,
            "request_id",
        ),
        (
            "quantity as text",
            seated,
            json!({"request_id": "h", "quantity": "2"}),
            422,
            "quantity",
        ),
        (
            "seats not a list",
            seated,
            json!({"request_id": "h", "seats": 3}),
            422,
            "seats",
        ),
    ];
    for (case, event_id, body, status, field) in cases {
        let reply = app.hold(admin, event_id, &body).await;
        assert_eq!(reply.status, status, "{case}: {}", reply.text);
        assert_invalid(&reply, field, case);
        assert_unchanged(&app, &before, case).await;
    }
    // Refused by the domain: each gets its own request id, since refusals are recorded too.
    let domain_cases: Vec<(&str, u64, Vec<u32>, u16, &str)> = vec![
        ("seat 0", seated, vec![0], 422, "seat_out_of_range"),
        (
            "seat N+1",
            seated,
            vec![SEATS + 1],
            422,
            "seat_out_of_range",
        ),
        ("seat twice", seated, vec![3, 3], 422, "duplicate_seat"),
        ("sold seat", seated, vec![1], 409, "seat_taken"),
        (
            "seat on unnumbered",
            open,
            vec![1],
            422,
            "seat_not_applicable",
        ),
    ];
    for (case, event_id, seats, status, reason) in domain_cases {
        let body = json!({"request_id": case, "seats": seats});
        let reply = app.hold(admin, event_id, &body).await;
        let problem = reply.problem(status);
        assert_eq!(problem["reason"], json!(reason), "{case}: {problem}");
        assert_unchanged(&app, &before, case).await;
    }

    let hold_id = app.hold_ok(&app.admin_token, seated, "card", &[5]).await;
    for card in ["4242424242424241", "1234", "not a card"] {
        let reply = app.checkout(admin, hold_id, card).await;
        assert_invalid(&reply, "card_number", card);
    }
    let reply = app.checkout(admin, hold_id, "").await;
    assert_invalid(&reply, "card_number", "empty card");
    // A mistyped card is not a declined one: the hold survives for a second try.
    app.get_hold(admin, hold_id).await.expect(200);
    assert_eq!(app.counts(seated).await["held"], json!(1));
}

#[tokio::test]
async fn oversize_bodies_are_refused_at_the_limit() {
    // Posts a padded body of exactly 64 KiB (201), then 64 KiB + 1 and 1 MiB (413, no event).
    let app = spawn_app().await;
    let limit = 64 * 1024;
    let padded = |len: usize| {
        let mut bytes = serde_json::to_vec(&numbered(3)).expect("serializes");
        assert!(bytes.len() < len);
        bytes.resize(len, b' ');
        bytes
    };
    let admin = Some(app.admin_token.as_str());
    app.post_raw("/api/v1/events", admin, padded(limit))
        .await
        .expect(201);
    let count = app.event_count().await;
    assert_eq!(count, 1);
    for len in [limit + 1, 1024 * 1024] {
        let reply = app.post_raw("/api/v1/events", admin, padded(len)).await;
        let problem = reply.problem(413);
        assert_eq!(problem_kind(&problem), "payload_too_large", "{problem}");
        assert_eq!(
            app.event_count().await,
            count,
            "a body of {len} bytes created an event"
        );
    }
}

#[tokio::test]
async fn unknown_members_and_variants_are_refused() {
    // Sends unknown members and kinds, non-object bodies and bad edits: 422, nothing changed.
    let (app, seated, open) = app_with_events().await;
    let admin = Some(app.admin_token.as_str());
    let before = [
        (seated, app.snapshot(seated).await),
        (open, app.snapshot(open).await),
    ];
    let cases: Vec<(&str, Value)> = vec![
        ("unknown member", set(numbered(2), "/colour", json!("red"))),
        (
            "unknown kind",
            set(numbered(2), "/inventory/kind", json!("standing")),
        ),
        ("array body", json!([numbered(2)])),
        ("string body", json!("event")),
    ];
    for (case, body) in cases {
        let reply = app.create_event(admin, &body).await;
        assert_eq!(reply.status, 422, "{case}: {}", reply.text);
        assert_problem_shape(&reply);
        assert_unchanged(&app, &before, case).await;
    }
    let purchase = json!({"client_id": "c", "request_id": "r", "quantity": 2});
    let reply = app.purchase(admin, seated, &purchase).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_problem_shape(&reply);

    let mut edit = set(numbered(SEATS), "/version", json!(1));
    let reply = app.edit_event(admin, seated, &edit).await;
    assert_invalid(&reply, "inventory", "inventory on an edit");
    edit = without(edit, "/inventory");
    edit = without(edit, "/version");
    assert_invalid(
        &app.edit_event(admin, seated, &edit).await,
        "version",
        "edit without version",
    );
    assert_eq!(app.get_event(seated).await.expect(200)["version"], json!(1));
    assert_unchanged(&app, &before, "bad edits").await;
}

#[tokio::test]
async fn unknown_ids_and_paths_are_4xx_never_5xx() {
    // Uses missing ids, unparsable ids, wrong methods and bad queries: 4xx each, no change.
    let (app, seated, open) = app_with_events().await;
    let admin = Some(app.admin_token.as_str());
    let before = [
        (seated, app.snapshot(seated).await),
        (open, app.snapshot(open).await),
    ];
    let missing = 999_999;
    let sale = json!({"client_id": "c", "request_id": "r"});
    let replies = [
        app.get_event(missing).await,
        app.availability(missing).await,
        app.sales(admin, missing).await,
        app.purchase(admin, missing, &sale).await,
        app.hold(admin, missing, &json!({"request_id": "h", "quantity": 1}))
            .await,
        app.get_hold(admin, missing).await,
        app.release_hold(admin, missing).await,
        app.checkout(admin, missing, crate::helpers::CARD_OK).await,
        app.get_ticket(admin, missing).await,
        app.refund(admin, missing).await,
        app.check_in(admin, missing).await,
        app.set_role(admin, missing, "staff").await,
        app.seat_map(missing).await,
        app.request(reqwest::Method::GET, "/api/v1/no-such-thing", None, None)
            .await,
    ];
    for reply in &replies {
        let problem = reply.problem(404);
        let kind = problem_kind(&problem);
        assert!(["not_found", "unknown_event"].contains(&kind), "{problem}");
    }
    // The seat map of a general-admission event does not exist.
    let problem = app.seat_map(open).await.problem(422);
    assert_eq!(problem["reason"], json!("seat_not_applicable"), "{problem}");
    // Ids that are not numbers name nothing: problem+json 404, like an unknown id.
    for path in [
        "/api/v1/events/abc",
        "/api/v1/events/-1/availability",
        "/api/v1/tickets/1.5",
    ] {
        let reply = app.request(reqwest::Method::GET, path, admin, None).await;
        let problem = reply.problem(404);
        assert_eq!(problem_kind(&problem), "not_found", "{path}: {problem}");
    }
    // Known paths with the wrong method are 405 problems.
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/events".to_owned()),
        (
            reqwest::Method::POST,
            format!("/api/v1/events/{seated}/availability"),
        ),
        (reqwest::Method::GET, "/api/v1/auth/login".to_owned()),
    ] {
        let reply = app.request(method, &path, admin, None).await;
        let problem = reply.problem(405);
        assert_eq!(
            problem_kind(&problem),
            "method_not_allowed",
            "{path}: {problem}"
        );
    }
    for query in [
        "page=0",
        "per_page=0",
        "per_page=101",
        "from=yesterday",
        "page=abc",
    ] {
        let reply = app.list_events(query).await;
        assert_eq!(reply.status, 422, "{query}: {}", reply.text);
        assert_problem_shape(&reply);
    }
    assert_unchanged(&app, &before, "unknown ids").await;
}

// The price limit from both sides (the largest price is accepted, one more is a 422 naming
// `price_cents`), and a missing nested member is named by its full path (`venue.lat`).
#[tokio::test]
async fn price_limit_and_nested_missing_fields() {
    let app = spawn_app().await;
    let admin = Some(app.admin_token.as_str());
    let max = tix_core::Limits::default().price_cents_max;
    let mut body = crate::helpers::event_body(json!({"kind": "unnumbered", "capacity": 5}));
    body["price_cents"] = json!(max);
    assert_eq!(app.create_event(admin, &body).await.status, 201);
    body["price_cents"] = json!(max + 1);
    let problem = app.create_event(admin, &body).await.problem(422);
    assert_eq!(problem["field"], json!("price_cents"), "{problem}");
    let mut body = crate::helpers::event_body(json!({"kind": "unnumbered", "capacity": 5}));
    body["venue"].as_object_mut().unwrap().remove("lat");
    let problem = app.create_event(admin, &body).await.problem(422);
    assert_eq!(problem["field"], json!("venue.lat"), "{problem}");
}

// The home page at `/` is HTML that links the API docs and lists the events by name, with
// their names escaped.
#[tokio::test]
async fn the_home_page_lists_events_escaped_and_links_the_docs() {
    let app = spawn_app().await;
    let admin = Some(app.admin_token.as_str());
    let mut body = crate::helpers::event_body(json!({"kind": "unnumbered", "capacity": 5}));
    body["name"] = json!("Rock <& Roll>");
    assert_eq!(app.create_event(admin, &body).await.status, 201);
    let page = app.request(reqwest::Method::GET, "/", None, None).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type().starts_with("text/html"));
    assert!(page.text.contains("href=\"/api/docs\""), "{}", page.text);
    assert!(
        page.text.contains("Rock &#60;&#38; Roll&#62;"),
        "{}",
        page.text
    );
}
