//! Concurrency: many box-office clients race for the same inventory at once. Exactly as many
//! sales succeed as there is inventory, every loser gets a 409 with the right reason, and the
//! counters and the sales export agree with the 201s.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::helpers::{Reply, TestApp, numbered, spawn_app, unnumbered};

/// How many clients race; each is one task, all released together.
const RACERS: usize = 64;

/// Lets `RACERS` clients buy at once (distinct client ids, optionally the same seat) and returns
/// their replies.
async fn race(app: &Arc<TestApp>, event_id: u64, seat: Option<u32>) -> Vec<Reply> {
    let start = Arc::new(Barrier::new(RACERS));
    let mut tasks = JoinSet::new();
    for racer in 0..RACERS {
        let app = Arc::clone(app);
        let start = Arc::clone(&start);
        tasks.spawn(async move {
            start.wait().await;
            app.sell(event_id, &format!("racer-{racer}"), "the-one-request", seat)
                .await
        });
    }
    let mut replies = Vec::with_capacity(RACERS);
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.expect("racer task finished"));
    }
    replies
}

/// Splits replies into the 201 bodies and the reasons of the 409s; any other status fails.
fn tally(replies: &[Reply]) -> (Vec<Value>, Vec<String>) {
    let mut sold = Vec::new();
    let mut refused = Vec::new();
    for reply in replies {
        match reply.status {
            201 => sold.push(reply.json()),
            409 => {
                let problem = reply.problem(409);
                refused.push(problem["reason"].as_str().unwrap_or("").to_owned());
            }
            other => panic!("unexpected status {other}: {}", reply.text),
        }
    }
    (sold, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seat_sixty_four_buyers_exactly_one_wins() {
    // 64 clients buy seat 5 at once: one 201, 63 × 409 seat_taken; counters and /sales agree.
    let app = Arc::new(spawn_app().await);
    let event = app.admin_event(&numbered(10)).await;
    let (sold, refused) = tally(&race(&app, event, Some(5)).await);
    assert_eq!(sold.len(), 1, "exactly one winner: {sold:?}");
    assert_eq!(refused.len(), RACERS - 1);
    assert!(refused.iter().all(|r| r == "seat_taken"), "{refused:?}");
    assert_eq!(sold[0]["seat"], json!(5));

    let counts = app.counts(event).await;
    assert_eq!(
        (counts["sold"].as_u64(), counts["available"].as_u64()),
        (Some(1), Some(9))
    );
    assert_eq!(app.seat_letters(event).await, "FFFFSFFFFF");
    let lines = app.sales_lines(event).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["ticket_id"], sold[0]["ticket_id"]);
    assert_eq!(
        lines[0]["client_id"], sold[0]["client_id"],
        "the export names the winner"
    );
    app.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_tickets_sixty_four_buyers_exactly_ten_sold() {
    // 64 clients buy from 10 tickets at once: 10 × 201, 54 × 409 sold_out; sold == /sales == 10.
    let app = Arc::new(spawn_app().await);
    let capacity = 10;
    let event = app.admin_event(&unnumbered(capacity)).await;
    let (sold, refused) = tally(&race(&app, event, None).await);
    assert_eq!(sold.len(), capacity as usize, "{sold:?}");
    assert_eq!(refused.len(), RACERS - capacity as usize);
    assert!(refused.iter().all(|r| r == "sold_out"), "{refused:?}");

    let tickets: BTreeSet<u64> = sold
        .iter()
        .map(|s| s["ticket_id"].as_u64().expect("id"))
        .collect();
    assert_eq!(tickets.len(), capacity as usize, "ticket ids are distinct");
    let counts = app.counts(event).await;
    let expected = json!({
        "event_id": event,
        "capacity": capacity,
        "sold": capacity,
        "held": 0,
        "available": 0,
    });
    assert_eq!(counts, expected);
    let lines = app.sales_lines(event).await;
    let exported: BTreeSet<u64> = lines
        .iter()
        .map(|l| l["ticket_id"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        exported, tickets,
        "/sales lists exactly the tickets answered 201"
    );
    app.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_available_race_hands_out_each_seat_once() {
    // 64 clients buy "any seat" of 10 at once: each seat sold once, the rest 409 sold_out.
    let app = Arc::new(spawn_app().await);
    let event = app.admin_event(&numbered(10)).await;
    let (sold, refused) = tally(&race(&app, event, None).await);
    let seats: BTreeSet<u64> = sold
        .iter()
        .map(|s| s["seat"].as_u64().expect("seat"))
        .collect();
    assert_eq!(sold.len(), 10);
    assert_eq!(seats, (1..=10).collect(), "each seat once");
    assert!(refused.iter().all(|r| r == "sold_out"), "{refused:?}");
    assert_eq!(app.seat_letters(event).await, "S".repeat(10));
    assert_eq!(app.sales_lines(event).await.len(), 10);
    app.assert_invariants();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_of_one_request_sell_once() {
    // 64 concurrent copies of one request: one ticket, identical 201 bodies, 63 replays.
    let app = Arc::new(spawn_app().await);
    let event = app.admin_event(&unnumbered(100)).await;
    let start = Arc::new(Barrier::new(RACERS));
    let mut tasks = JoinSet::new();
    for _ in 0..RACERS {
        let app = Arc::clone(&app);
        let start = Arc::clone(&start);
        tasks.spawn(async move {
            start.wait().await;
            app.sell(event, "impatient", "same-request", None).await
        });
    }
    let mut bodies = BTreeSet::new();
    let mut replays = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("task finished");
        bodies.insert(reply.expect(201).to_string());
        replays += usize::from(reply.header("idempotent-replayed") == Some("true"));
    }
    assert_eq!(
        bodies.len(),
        1,
        "every copy got the same answer: {bodies:?}"
    );
    assert_eq!(replays, RACERS - 1, "all but the first are replays");
    assert_eq!(app.counts(event).await["sold"], json!(1));
    assert_eq!(app.sales_lines(event).await.len(), 1);
    app.assert_invariants();
}
