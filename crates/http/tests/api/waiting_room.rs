//! Waiting rooms through the API: an organizer sets a room opening in a moment; before it, a
//! box-office sale without admission is refused (the seller may bypass explicitly) and
//! visitors who join are in the pre-queue without a position; at the opening they are drawn
//! into places with signed tokens, admitted one per second; a token buys only for its visitor
//! and only in its window; an account's hold is admitted by its own place; the settings are
//! fixed once open; removing the room opens the sale to everyone.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, problem_kind, read, spawn_app, unnumbered};

impl TestApp {
    /// `POST /events/{id}/queue` with a body.
    async fn join_queue(&self, token: &str, event_id: u64, body: &Value) -> Reply {
        let path = format!("/api/v1/events/{event_id}/queue");
        self.request(Method::POST, &path, Some(token), Some(body))
            .await
    }

    /// A box-office purchase with extra headers.
    async fn purchase_with(
        &self,
        token: &str,
        event_id: u64,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .post(format!(
                "{}/api/v1/events/{event_id}/purchases",
                self.base_url
            ))
            .bearer_auth(token)
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.expect("sent")).await
    }
}

fn now_ms() -> u64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64
}

fn parse_time_ms(s: &str) -> u64 {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    (t.unix_timestamp_nanos() / 1_000_000) as u64
}

fn rfc3339_in(ms: u64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(ms as i64);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn an_admission_rate_left_open_is_derived_by_tix() {
    let app = spawn_app().await;
    let organizer = app.new_user("rateorg", Some("organizer")).await;
    let event = app.event_as(&organizer.token, &unnumbered(10)).await;
    let room_path = format!("/api/v1/events/{event}/waiting-room");
    // Omitted or null: derived from the busiest second this node has applied; a quiet node
    // gets the floor.
    for room in [
        json!({"opens_at": rfc3339_in(60_000)}),
        json!({"opens_at": rfc3339_in(60_000), "admit_per_min": null}),
    ] {
        let info = app
            .request(Method::PUT, &room_path, Some(&organizer.token), Some(&room))
            .await
            .expect(200);
        assert_eq!(
            info["admit_per_min"],
            tix_http::defaults::DERIVED_ADMIT_PER_MIN_MIN,
            "{info}"
        );
    }
    // A rate given is kept as given.
    let info = app
        .request(
            Method::PUT,
            &room_path,
            Some(&organizer.token),
            Some(&json!({"opens_at": rfc3339_in(60_000), "admit_per_min": 7})),
        )
        .await
        .expect(200);
    assert_eq!(info["admit_per_min"], 7);
}

#[tokio::test]
async fn a_waiting_room_admits_visitors_in_drawn_order_with_signed_tokens() {
    let app = spawn_app().await;
    let organizer = app.new_user("roomorg", Some("organizer")).await;
    let fan = app.new_user("fan", None).await;
    let event = app.event_as(&organizer.token, &unnumbered(10)).await;
    let room_path = format!("/api/v1/events/{event}/waiting-room");

    // Settings are checked field by field.
    for (body, field) in [
        (json!({"opens_at": "soon", "admit_per_min": 60}), "opens_at"),
        (
            json!({"opens_at": rfc3339_in(1_000), "admit_per_min": 0}),
            "admit_per_min",
        ),
        (
            json!({"opens_at": rfc3339_in(1_000), "admit_per_min": 60, "window_s": 5}),
            "window_s",
        ),
    ] {
        let problem = app
            .request(Method::PUT, &room_path, Some(&organizer.token), Some(&body))
            .await
            .problem(422);
        assert_eq!(problem["field"], field, "{problem}");
    }
    // Only the organizer (or an admin) sets it.
    let room = json!({"opens_at": rfc3339_in(1_500), "admit_per_min": 60, "window_s": 120});
    app.request(Method::PUT, &room_path, Some(&fan.token), Some(&room))
        .await
        .problem(403);
    let info = app
        .request(Method::PUT, &room_path, Some(&organizer.token), Some(&room))
        .await
        .expect(200);
    assert_eq!(info["admit_per_min"], 60);
    assert_eq!(info["open"], false);

    // Before the opening: no sale without admission, unless the seller says bypass.
    let sale = json!({"client_id": "walk-in", "request_id": "r1"});
    let refused = app
        .purchase_with(&organizer.token, event, &sale, &[])
        .await
        .problem(403);
    assert_eq!(refused["reason"], "waiting_room_not_open", "{refused}");
    app.purchase_with(
        &organizer.token,
        event,
        &sale,
        &[("Tix-Waiting-Room", "bypass")],
    )
    .await
    .expect(201);
    let bad = app
        .purchase_with(
            &organizer.token,
            event,
            &json!({"client_id": "walk-in", "request_id": "r2"}),
            &[("Tix-Waiting-Room", "please")],
        )
        .await
        .problem(422);
    assert_eq!(bad["field"], "Tix-Waiting-Room");

    // Early visitors: the pre-queue, no position or token yet; joining again is the same.
    let visitors = ["v-a", "v-b", "v-c"];
    for v in visitors {
        let s = app
            .join_queue(&organizer.token, event, &json!({"client_id": v}))
            .await
            .expect(200);
        assert_eq!(s["status"], "pre_queue", "{s}");
        assert!(s["token"].is_null() && s["position"].is_null());
        assert_eq!(s["joined_now"], true);
    }
    let again = app
        .join_queue(&organizer.token, event, &json!({"client_id": "v-a"}))
        .await
        .expect(200);
    assert_eq!(again["joined_now"], false);
    let me = app
        .join_queue(&fan.token, event, &json!({}))
        .await
        .expect(200);
    assert_eq!(me["visitor"], format!("user:{}", fan.id));
    // An attendee may not join for someone else.
    app.join_queue(&fan.token, event, &json!({"client_id": "x"}))
        .await
        .problem(403);

    // The opening: everyone is drawn into a place, one admitted per second from the opening.
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let mut placed = Vec::new();
    for v in visitors {
        let s = app
            .join_queue(&organizer.token, event, &json!({"client_id": v}))
            .await
            .expect(200);
        assert!(s["token"].is_string(), "{s}");
        placed.push((v, s));
    }
    let me = app
        .join_queue(&fan.token, event, &json!({}))
        .await
        .expect(200);
    let mut admit_times: Vec<String> = placed
        .iter()
        .map(|(_, s)| s["admit_at"].as_str().unwrap().to_owned())
        .chain([me["admit_at"].as_str().unwrap().to_owned()])
        .collect();
    admit_times.sort();
    admit_times.dedup();
    assert_eq!(admit_times.len(), 4, "four distinct admission times");
    // The earliest client visitor buys with their token once admitted (at once, or within a
    // few seconds); the last one is still waiting (its slot is at least 2 s after the opening).
    placed.sort_by(|a, b| a.1["admit_at"].as_str().cmp(&b.1["admit_at"].as_str()));
    let (first, first_status) = &placed[0];
    let (last, last_status) = &placed[placed.len() - 1];
    assert_eq!(last_status["status"], "waiting", "{last_status}");
    let reply = app
        .purchase_with(
            &organizer.token,
            event,
            &json!({"client_id": last, "request_id": "q2"}),
            &[("Tix-Admission", last_status["token"].as_str().unwrap())],
        )
        .await;
    let problem = reply.problem(403);
    assert_eq!(problem["reason"], "not_admitted_yet", "{problem}");
    assert!(reply.header("retry-after").is_some());
    let wait_s = first_status["wait_s"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(wait_s * 1000)).await;
    let token = first_status["token"].as_str().unwrap();
    // The token buys for its own visitor...
    app.purchase_with(
        &organizer.token,
        event,
        &json!({"client_id": first, "request_id": "q1"}),
        &[("Tix-Admission", token)],
    )
    .await
    .expect(201);
    // ...not for another.
    let other = app
        .purchase_with(
            &organizer.token,
            event,
            &json!({"client_id": "someone-else", "request_id": "q1"}),
            &[("Tix-Admission", token)],
        )
        .await
        .problem(403);
    assert_eq!(other["reason"], "admission_invalid");
    // A tampered token is refused.
    let (v, s) = (first, first_status);
    let tampered = s["token"].as_str().unwrap().replacen('.', "1.", 1);
    let problem = app
        .purchase_with(
            &organizer.token,
            event,
            &json!({"client_id": v, "request_id": "q3"}),
            &[("Tix-Admission", &tampered)],
        )
        .await
        .problem(403);
    assert_eq!(problem["reason"], "admission_invalid");
    // A header longer than any token is a malformed request (422), bypass or not; in a batch
    // item the same is that item's 422.
    let long = "0".repeat(201);
    for headers in [
        vec![("Tix-Admission", long.as_str())],
        vec![
            ("Tix-Admission", long.as_str()),
            ("Tix-Waiting-Room", "bypass"),
        ],
    ] {
        let problem = app
            .purchase_with(
                &organizer.token,
                event,
                &json!({"client_id": v, "request_id": "q4"}),
                &headers,
            )
            .await
            .problem(422);
        assert_eq!(problem["field"], "Tix-Admission", "{problem}");
    }
    let batch = app
        .request(
            Method::POST,
            "/api/v1/purchases/batch",
            Some(&organizer.token),
            Some(&json!({"purchases": [
                {"event_id": event, "client_id": v, "request_id": "q5", "admission": long}
            ]})),
        )
        .await
        .expect(200);
    assert_eq!(batch["results"][0]["status"], 422, "{batch}");
    assert_eq!(batch["results"][0]["field"], "admission", "{batch}");

    // The attendee's hold is admitted by their own place once their turn comes.
    let wait_s = me["wait_s"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(wait_s * 1000 + 200)).await;
    let hold = app
        .hold(
            Some(&fan.token),
            event,
            &json!({"request_id": "h1", "quantity": 2}),
        )
        .await;
    hold.expect(201);
    // A stranger with no place is told to join.
    let stranger = app.new_user("stranger", None).await;
    let problem = app
        .hold(
            Some(&stranger.token),
            event,
            &json!({"request_id": "h1", "quantity": 1}),
        )
        .await
        .problem(403);
    assert_eq!(problem_kind(&problem), "not_in_queue");

    // Open: the settings are fixed; the room can only be removed, which opens the sale.
    let info = app
        .request(Method::GET, &room_path, None, None)
        .await
        .expect(200);
    assert_eq!(info["open"], true);
    assert_eq!(info["visitors"], 4);
    let problem = app
        .request(Method::PUT, &room_path, Some(&organizer.token), Some(&room))
        .await
        .problem(409);
    assert_eq!(problem_kind(&problem), "waiting_room_open");
    app.request(Method::DELETE, &room_path, Some(&organizer.token), None)
        .await
        .expect(204);
    app.request(Method::GET, &room_path, None, None)
        .await
        .problem(404);
    app.purchase_with(
        &organizer.token,
        event,
        &json!({"client_id": "walk-in", "request_id": "r9"}),
        &[],
    )
    .await
    .expect(201);
    let problem = app
        .join_queue(&fan.token, event, &json!({}))
        .await
        .problem(409);
    assert_eq!(problem_kind(&problem), "no_waiting_room");
    app.assert_invariants();
}

/// The shop's side: the organizer sets the room with the dashboard's form (errors beside their
/// fields), a buyer sees "join the queue" instead of the order form, joins (one place however
/// often), watches the queue page, and once admitted orders from the event page.
#[tokio::test]
async fn the_shop_shows_the_waiting_room_and_lets_the_buyer_order_on_their_turn() {
    use crate::pages::Browser;
    let app = spawn_app().await;
    let mut org = Browser::new(&app);
    org.sign_up("roomshop-org", true).await;
    let organizer_token = app.token_of("roomshop-org").await;
    let event = app.event_as(&organizer_token, &unnumbered(5)).await;
    let form_path = format!("/organizer/events/{event}/waiting-room");

    let page = org.get(&form_path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let bad = org
        .post(
            &form_path,
            &[
                ("opens_at", "tomorrow"),
                ("admit_per_min", "0"),
                ("window_min", "5"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("id=\"opens_at-error\""), "{}", bad.text);
    assert!(
        bad.text.contains("id=\"admit_per_min-error\""),
        "{}",
        bad.text
    );
    let opens = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let opens_local = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        opens.year(),
        u8::from(opens.month()),
        opens.day(),
        opens.hour(),
        opens.minute()
    );
    // The form takes minutes: the opening is at most a minute away; seconds do not matter
    // here, only that the buyer waits for it.
    let saved = org
        .post(
            &form_path,
            &[
                ("opens_at", &opens_local),
                // Empty: tix derives the rate; a quiet test node has shown nothing above the
                // floor of 600 a minute.
                ("admit_per_min", ""),
                ("window_min", "10"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let page = org.get(&form_path).await;
    assert!(
        page.text.contains("600 per minute, 10 minutes each"),
        "{}",
        page.text
    );

    let mut buyer = Browser::new(&app);
    buyer.sign_up("roomshop-buyer", false).await;
    let event_page = buyer.get(&format!("/events/{event}")).await;
    assert!(
        event_page.text.contains("id=\"room-join\""),
        "{}",
        event_page.text
    );
    assert!(!event_page.text.contains("id=\"order-form\""));
    for _ in 0..2 {
        let joined = buyer.post(&format!("/events/{event}/queue"), &[]).await;
        assert_eq!(joined.status, 303, "{}", joined.text);
    }
    let queue = buyer.get(&format!("/events/{event}/queue")).await;
    assert!(
        queue.text.contains("You are in the waiting room")
            || queue.text.contains("in line")
            || queue.text.contains("It is your turn"),
        "{}",
        queue.text
    );
    let info = app
        .request(
            Method::GET,
            &format!("/api/v1/events/{event}/waiting-room"),
            None,
            None,
        )
        .await
        .expect(200);
    assert_eq!(info["visitors"], 1, "one place however often one joins");

    // Wait for the opening (at most a minute: the form's resolution), then the turn.
    let opens_ms = parse_time_ms(info["opens_at"].as_str().unwrap());
    let now_ms = now_ms();
    tokio::time::sleep(Duration::from_millis(opens_ms.saturating_sub(now_ms) + 300)).await;
    // The draw happens when the log's time passes the opening; on a busy machine the entry
    // that carries it may land a moment later, so the page is asked again (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let queue = loop {
        let queue = buyer.get(&format!("/events/{event}/queue")).await;
        if queue.text.contains("It is your turn") || std::time::Instant::now() > deadline {
            break queue;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(queue.text.contains("It is your turn"), "{}", queue.text);
    let event_page = buyer.get(&format!("/events/{event}")).await;
    assert!(
        event_page.text.contains("id=\"room-turn\""),
        "{}",
        event_page.text
    );
    let ordered = buyer
        .post(
            &format!("/events/{event}/order"),
            &[("quantity", "2"), ("request_id", "o1")],
        )
        .await;
    assert_eq!(ordered.status, 303, "{}", ordered.text);
    assert!(ordered.location.unwrap_or_default().starts_with("/holds/"));

    // Someone who never joined is sent to the queue page instead of holding.
    let mut late = Browser::new(&app);
    late.sign_up("roomshop-late", false).await;
    let refused = late
        .post(
            &format!("/events/{event}/order"),
            &[("quantity", "1"), ("request_id", "o2")],
        )
        .await;
    assert_eq!(refused.status, 303);
    assert_eq!(
        refused.location.as_deref(),
        Some(format!("/events/{event}/queue").as_str())
    );
}

#[tokio::test]
async fn the_room_form_takes_the_opening_on_the_venues_clock() {
    use crate::pages::Browser;
    let app = spawn_app().await;
    let mut org = Browser::new(&app);
    org.sign_up("roomzone-org", true).await;
    let token = app.token_of("roomzone-org").await;
    // Tokyo has no daylight saving time: 10:00 there is 01:00 UTC all year.
    let mut body = unnumbered(5);
    body["time_zone"] = json!("Asia/Tokyo");
    let event = app.event_as(&token, &body).await;
    let form_path = format!("/organizer/events/{event}/waiting-room");
    let page = org.get(&form_path).await;
    assert!(
        page.text.contains("Sale opens (Asia/Tokyo time)"),
        "{}",
        page.text
    );
    let saved = org
        .post(
            &form_path,
            &[
                ("opens_at", "2031-01-01T10:00"),
                ("admit_per_min", "60"),
                ("window_min", "10"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let room = app
        .request(
            Method::GET,
            &format!("/api/v1/events/{event}/waiting-room"),
            None,
            None,
        )
        .await
        .expect(200);
    assert_eq!(room["opens_at"], "2031-01-01T01:00:00Z", "{room}");
    // Shown back on the same clock, in the field and for people.
    let page = org.get(&form_path).await;
    assert!(
        page.text.contains("value=\"2031-01-01T10:00\""),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("Wed 1 Jan 2031, 10:00 JST"),
        "{}",
        page.text
    );
}
