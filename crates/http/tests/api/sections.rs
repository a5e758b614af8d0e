//! Venues in named sections over HTTP: the event JSON takes and gives the sections (today's
//! shapes unchanged), holds take `best_available` by section name, bad sections and bad
//! requests are 4xx problems naming the field, the shop's page shows an overview of sections
//! with one section's seats at a time and books "N together" by form post, and the event form
//! takes a venue in sections.

use serde_json::{Value, json};

use crate::helpers::{PRICE_CENTS, TestApp, event_body, numbered, spawn_app};
use crate::pages::Browser;

/// An arena of three sections: A (2 rows of 5 at 50.00), B (3 rows of 4 at 20.00) and C (one
/// row of 4 at 20.00). Seats 1–10 are A, 11–22 B, 23–26 C.
fn arena() -> Value {
    event_body(json!({"kind": "sections", "sections": [
        {"name": "Block A", "rows": 2, "seats_per_row": 5, "price_cents": 5000},
        {"name": "Block B", "rows": 3, "seats_per_row": 4, "price_cents": 2000},
        {"name": "Block C", "rows": 1, "seats_per_row": 4, "price_cents": 2000},
    ], "blocked": [3]}))
}

async fn arena_event(app: &TestApp) -> u64 {
    app.admin_event(&arena()).await
}

// The event JSON returns the sections with their seat ranges; the seat map lists them too, and
// a plain numbered event reads as one unnamed section.
#[tokio::test]
async fn the_event_json_takes_and_gives_sections() {
    let app = spawn_app().await;
    let event = arena_event(&app).await;
    let got = app.get_event(event).await.expect(200);
    let inventory = &got["inventory"];
    assert_eq!(inventory["kind"], "sections");
    assert_eq!(inventory["seats"], 26);
    assert_eq!(inventory["blocked"], json!([3]));
    assert_eq!(
        inventory["sections"][1],
        json!({"name": "Block B", "rows": 3, "seats_per_row": 4, "price_cents": 2000,
            "first_seat": 11, "last_seat": 22})
    );
    assert_eq!(got["availability"]["capacity"], 25);
    let map = app.seat_map(event).await.expect(200);
    assert_eq!(map["sections"].as_array().map(Vec::len), Some(3));
    assert_eq!(map["map"].as_str().map(str::len), Some(26));

    let plain = app.admin_event(&numbered(12)).await;
    let plain_map = app.seat_map(plain).await.expect(200);
    assert_eq!(
        plain_map["sections"],
        json!([{"name": "", "rows": 1, "seats_per_row": 12, "price_cents": PRICE_CENTS,
            "first_seat": 1, "last_seat": 12}])
    );
    assert_eq!(
        app.get_event(plain).await.expect(200)["inventory"]["kind"],
        "numbered"
    );
    app.assert_invariants();
}

// Bad sections are 422 problems naming the field; nothing is created.
#[tokio::test]
async fn bad_sections_name_the_field() {
    let app = spawn_app().await;
    let with = |sections: Value, blocked: Value| {
        event_body(json!({"kind": "sections", "sections": sections, "blocked": blocked}))
    };
    let one = |name: &str, rows: u32, per_row: u32, price: u64| json!({"name": name, "rows": rows, "seats_per_row": per_row, "price_cents": price});
    let cases = [
        (with(json!([]), json!([])), "inventory.sections"),
        (
            with(json!([one(" ", 1, 1, 0)]), json!([])),
            "inventory.sections[0].name",
        ),
        (
            with(json!([one("A", 1, 1, 0), one("a", 1, 1, 0)]), json!([])),
            "inventory.sections[1].name",
        ),
        (
            with(json!([one("A\u{202E}", 1, 1, 0)]), json!([])),
            "inventory.sections[0].name",
        ),
        (
            with(json!([one("A", 0, 1, 0)]), json!([])),
            "inventory.sections[0].rows",
        ),
        (
            with(json!([one("A", 1, 0, 0)]), json!([])),
            "inventory.sections[0].seats_per_row",
        ),
        (
            with(json!([one("A", 1, 1, 10_000_000_001)]), json!([])),
            "inventory.sections[0].price_cents",
        ),
        (
            with(
                json!([one("A", 1000, 1000, 0), one("B", 1, 1, 0)]),
                json!([]),
            ),
            "inventory.sections",
        ),
        (
            with(json!([one("A", 1, 2, 0)]), json!([3])),
            "inventory.blocked",
        ),
    ];
    let before = app.event_count().await;
    for (body, field) in cases {
        let reply = app.create_event(Some(&app.admin_token), &body).await;
        let problem = reply.problem(422);
        assert_eq!(problem["field"], field, "{}", reply.text);
    }
    // An unknown member of a section is refused with its path, too.
    let mut extra = arena();
    extra["inventory"]["sections"][0]["colour"] = json!("red");
    let reply = app.create_event(Some(&app.admin_token), &extra).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(app.event_count().await, before);
}

// "2 together in Block B" holds the centre of Block B's front row at Block B's price;
// anywhere starts in Block A and skips its blocked seat; a section name is matched ignoring
// case; the order charges the section's price.
#[tokio::test]
async fn best_available_holds_adjacent_seats_in_the_named_section() {
    let app = spawn_app().await;
    let event = arena_event(&app).await;
    let buyer = app.new_user("together", None).await;
    let hold = |id: &str, quantity: u32, section: Value| json!({"request_id": id, "best_available": {"quantity": quantity, "section": section}});
    let b = app
        .hold(Some(&buyer.token), event, &hold("b", 2, json!("block b")))
        .await
        .expect(201);
    assert_eq!(b["seats"], json!([12, 13]));
    let order = app
        .checkout(
            Some(&buyer.token),
            b["hold_id"].as_u64().unwrap(),
            crate::helpers::CARD_OK,
        )
        .await
        .expect(201);
    assert_eq!(order["total_cents"], 4000, "{order}");
    // Row 1 of Block A is 1 2 [3 blocked] 4 5: two together are 1–2 or 4–5, equally far from
    // the centre; the lower wins. Three together go to row 2.
    let anywhere = app
        .hold(Some(&buyer.token), event, &hold("a2", 2, Value::Null))
        .await
        .expect(201);
    assert_eq!(anywhere["seats"], json!([1, 2]));
    let three = app
        .hold(
            Some(&buyer.token),
            event,
            &json!({"request_id": "a3",
            "best_available": {"quantity": 3}}),
        )
        .await
        .expect(201);
    assert_eq!(three["seats"], json!([7, 8, 9]));
    app.assert_invariants();
}

// The refusals: no run long enough is 409 `no_adjacent_seats`; an unknown section is 422 naming
// `best_available.section`; seats of two prices in one hold are 422 `mixed_prices`; two ways of
// choosing at once are 422; a general-admission event refuses `best_available`.
#[tokio::test]
async fn best_available_refusals_are_clear() {
    let app = spawn_app().await;
    let event = arena_event(&app).await;
    let buyer = app.new_user("refused", None).await;
    let token = Some(buyer.token.as_str());
    let five = json!({"request_id": "c5", "best_available": {"quantity": 5, "section": "Block C"}});
    let problem = app.hold(token, event, &five).await.problem(409);
    assert_eq!(problem["reason"], "no_adjacent_seats");
    assert_eq!(problem["quantity"], 5);
    let unknown = json!({"request_id": "x", "best_available": {"quantity": 1, "section": "Z"}});
    let problem = app.hold(token, event, &unknown).await.problem(422);
    assert_eq!(problem["field"], "best_available.section");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Block A, Block B, Block C")
    );
    let blank = json!({"request_id": "y", "best_available": {"quantity": 1, "section": " "}});
    let problem = app.hold(token, event, &blank).await.problem(422);
    assert_eq!(problem["field"], "best_available.section");
    let mixed = json!({"request_id": "m", "seats": [10, 11]});
    let problem = app.hold(token, event, &mixed).await.problem(422);
    assert_eq!(problem["reason"], "mixed_prices");
    let same_price = json!({"request_id": "s", "seats": [22, 23]});
    app.hold(token, event, &same_price).await.expect(201);
    let both = json!({"request_id": "both", "quantity": 1,
        "best_available": {"quantity": 1}});
    let problem = app.hold(token, event, &both).await.problem(422);
    assert_eq!(problem["field"], "quantity");
    let zero = json!({"request_id": "z", "best_available": {"quantity": 0}});
    assert_eq!(
        app.hold(token, event, &zero).await.problem(422)["reason"],
        "bad_quantity"
    );
    let bad_shape = json!({"request_id": "z", "best_available": {"quantity": "two"}});
    assert_eq!(app.hold(token, event, &bad_shape).await.status, 422);
    let general = app.admin_event(&crate::helpers::unnumbered(5)).await;
    let ga = json!({"request_id": "g", "best_available": {"quantity": 1}});
    let problem = app.hold(token, general, &ga).await.problem(422);
    assert_eq!(problem["reason"], "seat_not_applicable");
    app.assert_invariants();
}

// The shop's page of a venue in sections: an overview with one link per section and no seat
// controls; `?section=` shows that section's seats only, named by section, row and seat; the
// best-available form books adjacent seats and leads to the checkout; too many together is
// told beside the field.
#[tokio::test]
async fn the_page_shows_one_section_and_books_seats_together() {
    let app = spawn_app().await;
    let event = arena_event(&app).await;
    let mut b = Browser::new(&app);
    let overview = b.get(&format!("/events/{event}")).await;
    assert_eq!(overview.status, 200);
    assert_eq!(
        overview.text.matches("<a class=\"block").count(),
        3,
        "{}",
        overview.text
    );
    assert!(
        overview
            .text
            .contains("href=\"?section=Block%20B#section-title\"")
    );
    assert!(
        !overview.text.contains("name=\"seat\""),
        "no seats before a section is chosen"
    );
    assert!(
        overview.text.contains("<dd>from "),
        "prices differ by section"
    );

    let section = b.get(&format!("/events/{event}?section=Block%20B")).await;
    assert_eq!(section.text.matches("name=\"seat\"").count(), 12);
    assert!(
        section
            .text
            .contains("aria-label=\"Block B, Row 3, Seat 4\""),
        "{}",
        section.text
    );
    assert!(section.text.contains("aria-current=\"true\""));

    b.sign_up("pairs", false).await;
    let path = format!("/events/{event}/best");
    let booked = b
        .post(
            &path,
            &[
                ("together", "2"),
                ("section", "Block B"),
                ("request_id", "p1"),
            ],
        )
        .await;
    assert_eq!(booked.status, 303, "{}", booked.text);
    let checkout = booked.location.expect("to the checkout");
    assert!(checkout.starts_with("/holds/"), "{checkout}");
    let page = b.get(&checkout).await;
    assert!(
        page.text.contains("40.00 EUR"),
        "Block B's price twice: {}",
        page.text
    );

    let refused = b
        .post(
            &path,
            &[
                ("together", "5"),
                ("section", "Block C"),
                ("request_id", "p2"),
            ],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("Seats together: no 5 free seats side by side in Block C"),
        "{}",
        refused.text
    );
    app.assert_invariants();
}

// An organizer describes a venue in sections on the event form, one per line; a bad line is
// named beside the field, the rest of the form kept; the created event opens on its overview.
#[tokio::test]
async fn the_event_form_creates_a_venue_in_sections() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.sign_up("venues", true).await;
    let mut form = vec![
        ("name", "Arena Night"),
        ("description", "Blocks"),
        ("date", "2030-05-01"),
        ("time", "20:00"),
        ("venue", "Arena"),
        ("lat", "48.2"),
        ("lon", "16.37"),
        ("price", "30.00"),
        ("currency", "EUR"),
        ("kind", "sections"),
        ("sections", "Floor A; 2; 10; 99.00\nBlock 101; x; 10; 30.00"),
        ("blocked", ""),
    ];
    let bad = b.post("/events/new", &form).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(
        bad.text.contains("Sections: line 2: rows: a whole number"),
        "{}",
        bad.text
    );
    form[10] = ("sections", "Floor A; 2; 10; 99.00\nBlock 101; 3; 10; 30,00");
    let created = b.post("/events/new", &form).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let page = b.get(&created.location.expect("the event")).await;
    assert_eq!(
        page.text.matches("<a class=\"block").count(),
        2,
        "{}",
        page.text
    );
    assert!(page.text.contains("30.00 EUR") && page.text.contains("99.00 EUR"));
}
