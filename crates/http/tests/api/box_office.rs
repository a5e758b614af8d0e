//! The box-office contract of `POST /api/v1/events/{id}/purchases`, `GET .../availability` and
//! `GET .../sales`: exact response bodies, idempotent retries keyed by (client_id, request_id)
//! per event, refusals as problem+json with a `reason`, and the NDJSON sales export.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{PRICE_CENTS, event_body, numbered, spawn_app, unnumbered};

/// Returns the sorted member names of a JSON object.
fn keys(value: &Value) -> Vec<&str> {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    object.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn a_purchase_answers_201_with_the_sale() {
    // Buys seat 3, then any seat, and compares the exact 201 bodies, headers and counters.
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(5)).await;
    let reply = app.sell(event, "client-1", "req-1", Some(3)).await;
    let sale = reply.expect(201);
    assert_eq!(reply.content_type(), "application/json");
    assert_eq!(
        reply.header("idempotent-replayed"),
        None,
        "a first answer is not a replay"
    );
    let ticket_id = sale["ticket_id"].as_u64().expect("ticket_id is a number");
    assert!(ticket_id >= 1);
    assert_eq!(
        sale,
        json!({
            "outcome": "sold",
            "event_id": event,
            "ticket_id": ticket_id,
            "seat": 3,
            "client_id": "client-1",
            "request_id": "req-1",
        })
    );
    let best = app.sell(event, "client-1", "req-2", None).await.expect(201);
    assert_eq!(
        best["seat"],
        json!(1),
        "best available is the lowest free seat"
    );
    assert_ne!(best["ticket_id"], json!(ticket_id));
    assert_eq!(app.seat_letters(event).await, "SFSFF");
    let counts = app.counts(event).await;
    assert_eq!(
        counts,
        json!({"event_id": event, "capacity": 5, "sold": 2, "held": 0, "available": 3})
    );
}

#[tokio::test]
async fn a_retry_replays_the_answer_without_a_second_ticket() {
    // Retries a purchase by key: same answer + Idempotent-Replayed, one ticket, reuse is 422.
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(5)).await;
    let first = app.sell(event, "retrier", "order-7", Some(2)).await;
    let first_body = first.expect(201);
    for _ in 0..3 {
        let again = app.sell(event, "retrier", "order-7", Some(2)).await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            again.json(),
            first_body,
            "a replay answers exactly the same"
        );
    }
    assert_eq!(app.sales_lines(event).await.len(), 1, "no second ticket");
    let counts = app.counts(event).await;
    assert_eq!(
        (counts["sold"].as_u64(), counts["available"].as_u64()),
        (Some(1), Some(4))
    );

    for (case, seat) in [("another seat", json!(4)), ("no seat", Value::Null)] {
        let mut body = json!({"client_id": "retrier", "request_id": "order-7"});
        if !seat.is_null() {
            body["seat"] = seat;
        }
        let reply = app.purchase(Some(&app.admin_token), event, &body).await;
        let problem = reply.problem(422);
        assert_eq!(
            problem["reason"],
            json!("idempotency_key_reused"),
            "{case}: {problem}"
        );
        assert_eq!(problem["outcome"], json!("rejected"), "{case}: {problem}");
    }
    assert_eq!(
        app.seat_letters(event).await,
        "FSFFF",
        "the reused key sold nothing"
    );
    assert_eq!(app.sales_lines(event).await.len(), 1);

    // Keys are scoped per event: the same key elsewhere is a new request.
    let other = app.admin_event(&numbered(5)).await;
    let elsewhere = app.sell(other, "retrier", "order-7", Some(2)).await;
    let elsewhere_body = elsewhere.expect(201);
    assert_eq!(elsewhere.header("idempotent-replayed"), None);
    assert_ne!(elsewhere_body["ticket_id"], first_body["ticket_id"]);

    // A refusal is an answer too: retrying a purchase of a taken seat replays the refusal.
    let refused = app.sell(event, "late", "try-1", Some(2)).await;
    let refusal = refused.problem(409);
    assert_eq!(refusal["reason"], json!("seat_taken"));
    assert_eq!(refused.header("idempotent-replayed"), None);
    let again = app.sell(event, "late", "try-1", Some(2)).await;
    // The same answer, but for another request (its own request id).
    let without_id = |mut body: serde_json::Value| {
        body.as_object_mut().map(|o| o.remove("request_id"));
        body
    };
    assert_eq!(without_id(again.problem(409)), without_id(refusal));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn a_sold_out_event_answers_409_sold_out() {
    // Sells all of a general-admission event; the next buyer gets 409 sold_out, counters full.
    let app = spawn_app().await;
    let event = app.admin_event(&unnumbered(2)).await;
    for client in ["a", "b"] {
        let sale = app.sell(event, client, "r", None).await.expect(201);
        assert_eq!(sale["seat"], Value::Null, "general admission has no seat");
    }
    let reply = app.sell(event, "c", "r", None).await;
    let problem = reply.problem(409);
    assert_eq!(problem["reason"], json!("sold_out"), "{problem}");
    assert_eq!(problem["outcome"], json!("rejected"), "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("/sold_out")),
        "{problem}"
    );
    let counts = app.counts(event).await;
    assert_eq!(
        counts,
        json!({"event_id": event, "capacity": 2, "sold": 2, "held": 0, "available": 0})
    );
    assert_eq!(app.sales_lines(event).await.len(), 2);
}

#[tokio::test]
async fn taken_and_blocked_seats_answer_409_with_the_seat() {
    // Buys sold, blocked and held seats and a full event: 409 with the reason and the seat.
    let app = spawn_app().await;
    let body = event_body(json!({"kind": "numbered", "seats": 3, "blocked": [3]}));
    let event = app.admin_event(&body).await;
    app.sell(event, "first", "r", Some(1)).await.expect(201);
    let problem = app.sell(event, "second", "r", Some(1)).await.problem(409);
    assert_eq!(
        (problem["reason"].clone(), problem["seat"].clone()),
        (json!("seat_taken"), json!(1))
    );
    let problem = app.sell(event, "second", "r2", Some(3)).await.problem(409);
    assert_eq!(
        (problem["reason"].clone(), problem["seat"].clone()),
        (json!("seat_blocked"), json!(3))
    );
    app.hold_ok(&app.admin_token, event, "hold-2", &[2]).await;
    let problem = app.sell(event, "second", "r3", Some(2)).await.problem(409);
    assert_eq!(
        problem["reason"],
        json!("seat_taken"),
        "a held seat is taken: {problem}"
    );
    let problem = app.sell(event, "second", "r4", None).await.problem(409);
    assert_eq!(problem["reason"], json!("sold_out"), "{problem}");
    assert_eq!(app.seat_letters(event).await, "SHB");
    let counts = app.counts(event).await;
    assert_eq!(
        counts,
        json!({"event_id": event, "capacity": 2, "sold": 1, "held": 1, "available": 0})
    );
}

#[tokio::test]
async fn availability_reports_capacity_sold_held_and_available() {
    // Reads /availability anonymously around a sale, a hold and its release; exact members.
    let app = spawn_app().await;
    let event = app.admin_event(&unnumbered(10)).await;
    let reply = app.availability(event).await;
    let fresh = reply.expect(200);
    assert_eq!(reply.content_type(), "application/json");
    assert_eq!(
        keys(&fresh),
        ["available", "capacity", "event_id", "held", "sold"]
    );
    assert_eq!(
        fresh,
        json!({"event_id": event, "capacity": 10, "sold": 0, "held": 0, "available": 10})
    );
    app.sell(event, "c", "r", None).await.expect(201);
    let hold = json!({"request_id": "two", "quantity": 2});
    let hold = app
        .hold(Some(&app.admin_token), event, &hold)
        .await
        .expect(201);
    let counts = app.counts(event).await;
    assert_eq!(
        counts,
        json!({"event_id": event, "capacity": 10, "sold": 1, "held": 2, "available": 7})
    );
    let hold_id = hold["hold_id"].as_u64().expect("hold_id");
    app.release_hold(Some(&app.admin_token), hold_id)
        .await
        .expect(204);
    let counts = app.counts(event).await;
    assert_eq!(
        counts,
        json!({"event_id": event, "capacity": 10, "sold": 1, "held": 0, "available": 9})
    );
}

#[tokio::test]
async fn sales_export_is_ndjson_in_sale_order() {
    // Sells, refunds and reads /sales: NDJSON lines with exactly the four members, in order.
    let app = spawn_app().await;
    let open = app.admin_event(&unnumbered(10)).await;
    let seated = app.admin_event(&numbered(10)).await;

    let reply = app.sales(Some(&app.admin_token), open).await;
    assert_eq!(
        (reply.status, reply.content_type()),
        (200, "application/x-ndjson")
    );
    assert_eq!(reply.text, "", "no sales yet");

    let mut sold = Vec::new();
    for (client, request) in [("c1", "r1"), ("c2", "r1"), ("c1", "r2")] {
        let sale = app.sell(open, client, request, None).await.expect(201);
        sold.push(json!({
            "ticket_id": sale["ticket_id"],
            "client_id": client,
            "request_id": request,
            "seat": null,
        }));
    }
    let lines = app.sales_lines(open).await;
    assert_eq!(lines, sold);
    for line in &lines {
        assert_eq!(keys(line), ["client_id", "request_id", "seat", "ticket_id"]);
    }
    let reply = app.sales(Some(&app.admin_token), open).await;
    assert!(
        reply.text.ends_with('\n') && reply.text.lines().count() == 3,
        "{:?}",
        reply.text
    );

    // Refunding the middle ticket removes its line; the order of the others stays.
    let refunded = sold[1]["ticket_id"].as_u64().expect("id");
    let refund = app
        .refund(Some(&app.admin_token), refunded)
        .await
        .expect(200);
    assert_eq!(
        refund,
        json!({"ticket_id": refunded, "status": "refunded", "amount_cents": PRICE_CENTS})
    );
    assert_eq!(
        app.sales_lines(open).await,
        [sold[0].clone(), sold[2].clone()]
    );

    // Numbered: seats are numbers; shop sales carry the buyer and the order.
    let sale = app.sell(seated, "c1", "r1", Some(7)).await.expect(201);
    let buyer = app.new_user("buyer", None).await;
    let ticket = app.buy_seat(&buyer.token, seated, 4).await;
    let order = app.get_ticket(Some(&buyer.token), ticket).await.expect(200)["order_id"].clone();
    let lines = app.sales_lines(seated).await;
    assert_eq!(
        lines,
        [
            json!({
                "ticket_id": sale["ticket_id"],
                "client_id": "c1",
                "request_id": "r1",
                "seat": 7,
            }),
            json!({
                "ticket_id": ticket,
                "client_id": format!("user:{}", buyer.id),
                "request_id": format!("order:{order}"),
                "seat": 4,
            }),
        ]
    );
    let ids: BTreeSet<u64> = lines
        .iter()
        .map(|l| l["ticket_id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 2, "ticket ids are unique across events");
}

#[tokio::test]
async fn the_per_customer_cap_counts_box_office_sales_per_client() {
    // Buys twice as one client on a one-per-customer event: 409 customer_limit; others may buy.
    let app = spawn_app().await;
    let mut body = unnumbered(5);
    body["per_customer_max"] = json!(1);
    let event = app.admin_event(&body).await;
    app.sell(event, "collector", "first", None)
        .await
        .expect(201);
    let problem = app
        .sell(event, "collector", "second", None)
        .await
        .problem(409);
    assert_eq!(problem["reason"], json!("customer_limit"), "{problem}");
    assert_eq!(problem["max"], json!(1), "{problem}");
    app.sell(event, "someone-else", "first", None)
        .await
        .expect(201);
    assert_eq!(app.counts(event).await["sold"], json!(2));
}

#[tokio::test]
async fn a_batch_answers_each_purchase_as_the_single_endpoint_would() {
    // One batch mixing a sale, a best-available sale, a taken seat, a seat out of range, an
    // unknown event and another organizer's event; then the whole batch again (every answer
    // replayed, nothing sold twice); then empty and oversized batches.
    let app = spawn_app().await;
    let event = app.admin_event(&numbered(3)).await;
    let organizer = app.new_user("batch-org", Some("organizer")).await;
    let theirs = app.event_as(&organizer.token, &numbered(3)).await;
    let other_admin_event = app.admin_event(&unnumbered(1)).await;
    let batch = json!({"purchases": [
        {"event_id": event, "client_id": "c1", "request_id": "r1", "seat": 2},
        {"event_id": event, "client_id": "c2", "request_id": "r1"},
        {"event_id": event, "client_id": "c3", "request_id": "r1", "seat": 2},
        {"event_id": event, "client_id": "c4", "request_id": "r1", "seat": 9},
        {"event_id": 999_999, "client_id": "c5", "request_id": "r1"},
        {"event_id": other_admin_event, "client_id": "c6", "request_id": "r1"},
    ]});
    let path = "/api/v1/purchases/batch";
    let token = Some(app.admin_token.as_str());
    let reply = app
        .request(reqwest::Method::POST, path, token, Some(&batch))
        .await;
    let first = reply.expect(200);
    assert!(reply.header("tix-leader").is_some(), "names the leader");
    let results = first["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 6);
    assert_eq!(results[0]["status"], json!(201));
    assert_eq!(results[0]["seat"], json!(2));
    assert_eq!(results[0]["outcome"], json!("sold"));
    assert_eq!(results[0]["client_id"], json!("c1"));
    assert_eq!(results[1]["status"], json!(201));
    assert_eq!(results[1]["seat"], json!(1), "best available");
    // Items enter the proposer in the order sent: the first asker got seat 2.
    assert_eq!(results[2]["status"], json!(409));
    assert_eq!(results[2]["reason"], json!("seat_taken"));
    assert_eq!(results[3]["status"], json!(422));
    assert_eq!(results[3]["field"], json!("seat"));
    assert_eq!(results[4]["status"], json!(404));
    assert_eq!(results[5]["status"], json!(201));

    // The same batch again: every recorded answer is replayed, nothing new is sold.
    let again = app
        .request(reqwest::Method::POST, path, token, Some(&batch))
        .await
        .expect(200);
    for i in [0, 1, 2, 5] {
        assert_eq!(again["results"][i]["replayed"], json!(true), "item {i}");
        assert_eq!(again["results"][i]["status"], results[i]["status"]);
        assert_eq!(again["results"][i]["ticket_id"], results[i]["ticket_id"]);
    }
    assert_eq!(app.counts(event).await["sold"], json!(2));

    // An organizer may sell only their own events: the others are refused item by item.
    let mixed = json!({"purchases": [
        {"event_id": theirs, "client_id": "o1", "request_id": "r1", "seat": 1},
        {"event_id": event, "client_id": "o2", "request_id": "r1"},
    ]});
    let reply = app
        .request(
            reqwest::Method::POST,
            path,
            Some(&organizer.token),
            Some(&mixed),
        )
        .await
        .expect(200);
    assert_eq!(reply["results"][0]["status"], json!(201));
    assert_eq!(reply["results"][1]["status"], json!(403));
    assert_eq!(app.counts(event).await["sold"], json!(2));

    // Without a token, with no items, with too many items: refused as a whole.
    app.request(reqwest::Method::POST, path, None, Some(&batch))
        .await
        .problem(401);
    let empty = json!({"purchases": []});
    let p = app
        .request(reqwest::Method::POST, path, token, Some(&empty))
        .await
        .problem(422);
    assert_eq!(p["field"], json!("purchases"));
    let many: Vec<Value> = (0..513)
        .map(|i| json!({"event_id": event, "client_id": "m", "request_id": format!("{i}")}))
        .collect();
    let p = app
        .request(
            reqwest::Method::POST,
            path,
            token,
            Some(&json!({"purchases": many})),
        )
        .await
        .problem(422);
    assert!(p["detail"].as_str().unwrap_or("").contains("513"), "{p}");
    app.assert_invariants();
}
