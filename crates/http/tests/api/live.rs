//! The live stream (`/events/{id}/live`) and `/metrics`: subscriber caps per client and per
//! node from both sides, slots that come back when a stream closes, the full first message and
//! the deltas after it (applied as the shop's script applies them), and who may read
//! `/metrics` and what its labels may contain.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use reqwest::Method;
use serde_json::{Value, json};
use tix_http::HttpConfig;
use tix_http::ops::MetricsToken;

use crate::helpers::{TestApp, event_body, problem_kind, spawn_app_with_metrics};

/// How long a test waits for a live message or a freed slot.
const WAIT: Duration = Duration::from_secs(10);
/// The `/metrics` token of the tests that configure one.
const METRICS_TOKEN: &str = "metrics-test-token-0123456789";

/// The process-wide Prometheus recorder (one per test binary), installed on first use.
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("the only recorder of this test binary")
        })
        .clone()
}

/// An app whose live caps are `per_client` and `node`.
async fn app_with_caps(per_client: u32, node: u32) -> TestApp {
    let config = HttpConfig {
        sse_subscribers_per_client_max: per_client,
        sse_subscribers_max: node,
        sse_update_interval_ms: 10,
        ..HttpConfig::default()
    };
    spawn_app_with_metrics(config, None).await
}

/// An open live stream, read message by message.
struct Live {
    response: reqwest::Response,
    buffer: String,
}

impl Live {
    /// Returns the next `availability` message's data as JSON (keep-alive comments skipped).
    async fn next(&mut self) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if frame.lines().any(|l| l == "event: availability") {
                    return serde_json::from_str(&data.concat()).expect("message is JSON");
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("a live message within the wait")
                .expect("stream readable")
                .expect("stream still open");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

/// Opens `/events/{event}/live` (signed in with the session cookie a browser sends, when a token
/// is given: the pages take no bearer token); returns the stream, or the
/// status, `Retry-After` and body of a refusal.
async fn open(
    app: &TestApp,
    event: u64,
    token: Option<&str>,
) -> Result<Live, (u16, Option<String>, Value)> {
    let mut request = app
        .client
        .get(format!("{}/events/{event}/live", app.base_url));
    if let Some(token) = token {
        request = request.header("cookie", format!("tix_session={token}"));
    }
    let response = request.send().await.expect("request sent");
    if response.status() == 200 {
        let content_type = response.headers()["content-type"].to_str().expect("text");
        assert_eq!(content_type, "text/event-stream");
        return Ok(Live {
            response,
            buffer: String::new(),
        });
    }
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("text").to_owned());
    let body = response.json().await.expect("problem+json body");
    Err((status, retry_after, body))
}

/// Opens a stream that must be accepted, and reads its first message.
async fn open_ok(app: &TestApp, event: u64, token: Option<&str>) -> (Live, Value) {
    let mut live = match open(app, event, token).await {
        Ok(live) => live,
        Err(refusal) => panic!("stream refused: {refusal:?}"),
    };
    let first = live.next().await;
    (live, first)
}

/// Asserts that opening a stream is refused with 503, `Retry-After` and problem `live_full`.
async fn assert_refused(app: &TestApp, event: u64, token: Option<&str>) {
    match open(app, event, token).await {
        Ok(_) => panic!("a stream over the cap was accepted"),
        Err((status, retry_after, body)) => {
            assert_eq!(status, 503, "{body}");
            assert_eq!(retry_after.as_deref(), Some("10"));
            assert_eq!(problem_kind(&body), "live_full", "{body}");
        }
    }
}

/// Opens a stream, retrying while the cap is still full (a closed stream's slot comes back
/// once the server has seen the connection close); panics after the wait.
async fn open_when_free(app: &TestApp, event: u64, token: Option<&str>) -> Live {
    let deadline = Instant::now() + WAIT;
    loop {
        match open(app, event, token).await {
            Ok(live) => return live,
            Err((503, _, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(refusal) => panic!("the slot did not come back: {refusal:?}"),
        }
    }
}

/// A numbered event of `seats` seats, created by the admin.
async fn numbered(app: &TestApp, seats: u32) -> u64 {
    app.admin_event(&event_body(json!({"kind": "numbered", "seats": seats})))
        .await
}

/// Applies a live message to a seat map as `static/shop.js` does: the full `seats` string,
/// or each `[seat number, letter]` of `seats_changed`.
fn apply(map: &mut Vec<u8>, message: &Value) {
    if let Some(seats) = message["seats"].as_str() {
        *map = seats.as_bytes().to_vec();
    }
    for change in message["seats_changed"].as_array().into_iter().flatten() {
        let seat = change[0].as_u64().expect("seat number") as usize;
        let letter = change[1].as_str().expect("letter").as_bytes()[0];
        map[seat - 1] = letter;
    }
}

// Checks the per-client cap from both sides: a signed-in user gets exactly the cap's number of
// streams and one more is refused with 503 + Retry-After; closing one gives its slot back.
// Anonymous clients count by address, apart from the signed-in user on the same address.
#[tokio::test]
async fn per_client_cap_refuses_one_over_and_frees_on_close() {
    let app = app_with_caps(2, 100).await;
    let event = numbered(&app, 10).await;
    let alice = app.new_user("alice", None).await;
    let (first, _) = open_ok(&app, event, Some(&alice.token)).await;
    let (_second, _) = open_ok(&app, event, Some(&alice.token)).await;
    assert_refused(&app, event, Some(&alice.token)).await;

    // Anonymous from the same address: a key of its own, with the same cap.
    let (_anonymous1, _) = open_ok(&app, event, None).await;
    let (_anonymous2, _) = open_ok(&app, event, None).await;
    assert_refused(&app, event, None).await;

    drop(first);
    let mut again = open_when_free(&app, event, Some(&alice.token)).await;
    let message = again.next().await;
    assert_eq!(message["available"], 10);
    assert_refused(&app, event, Some(&alice.token)).await;
}

// Checks the per-node cap from both sides: with room for three, three users get a stream and
// a fourth user is refused; when a stream closes, the fourth gets the freed slot.
#[tokio::test]
async fn node_cap_refuses_one_over_and_frees_on_close() {
    let app = app_with_caps(10, 3).await;
    let event = numbered(&app, 10).await;
    let mut streams = Vec::new();
    for name in ["ann", "ben", "cat"] {
        let user = app.new_user(name, None).await;
        streams.push(open_ok(&app, event, Some(&user.token)).await.0);
    }
    let dan = app.new_user("dan", None).await;
    assert_refused(&app, event, Some(&dan.token)).await;
    assert_refused(&app, event, None).await;
    streams.pop();
    let mut live = open_when_free(&app, event, Some(&dan.token)).await;
    assert_eq!(live.next().await["sold"], 0);
}

// Checks that a stream for an event that does not exist is a problem+json 404 and keeps no
// slot: with a per-client cap of one, a real stream opens right after.
#[tokio::test]
async fn unknown_event_is_404_and_keeps_no_slot() {
    let app = app_with_caps(1, 10).await;
    let event = numbered(&app, 5).await;
    for _ in 0..3 {
        match open(&app, 999, None).await {
            Err((404, _, body)) => assert_eq!(problem_kind(&body), "not_found"),
            other => panic!("expected 404, got {:?}", other.err()),
        }
    }
    let (_live, first) = open_ok(&app, event, None).await;
    assert_eq!(first["seats"], "FFFFF");
}

// Checks the message shapes: the first message has the counts and every seat's letter; after
// sales and a hold, later messages carry only the changed seats, and applying them as the
// shop's script does reproduces the seat map the API reports. A second stream opened later
// starts from the full state again.
#[tokio::test]
async fn first_message_is_full_and_later_ones_are_deltas() {
    let app = app_with_caps(10, 10).await;
    let event = numbered(&app, 300).await;
    let (mut live, first) = open_ok(&app, event, None).await;
    assert_eq!(first["available"], 300);
    assert_eq!(first["sold"], 0);
    let mut map = Vec::new();
    apply(&mut map, &first);
    assert_eq!(map, vec![b'F'; 300]);

    app.sell(event, "c1", "r1", Some(7)).await.expect(201);
    let message = live.next().await;
    assert_eq!(message["seats_changed"], json!([[7, "S"]]), "{message}");
    assert!(message.get("seats").is_none(), "a delta has no full map");
    assert_eq!(
        (message["sold"].as_u64(), message["available"].as_u64()),
        (Some(1), Some(299))
    );
    apply(&mut map, &message);

    for seat in [1, 150, 300] {
        app.sell(event, "c1", &format!("s{seat}"), Some(seat))
            .await
            .expect(201);
    }
    let holder = app.new_user("holder", None).await;
    app.hold_ok(&holder.token, event, "h1", &[42]).await;
    // The changes arrive in one or more deltas (coalesced); apply until the counts add up.
    let deadline = Instant::now() + WAIT;
    loop {
        let message = live.next().await;
        assert!(message.get("seats_changed").is_some(), "{message}");
        apply(&mut map, &message);
        if message["sold"] == 4 && message["held"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the counts never reached 4 sold, 1 held"
        );
    }
    assert_eq!(
        String::from_utf8(map).expect("letters"),
        app.seat_letters(event).await
    );

    let (_later, later_first) = open_ok(&app, event, None).await;
    assert_eq!(
        later_first["seats"].as_str(),
        Some(app.seat_letters(event).await.as_str())
    );
}

// Checks an unnumbered event: every message has the counts and `"seats": null`.
#[tokio::test]
async fn unnumbered_event_streams_counts_only() {
    let app = app_with_caps(10, 10).await;
    let event = app
        .admin_event(&event_body(json!({"kind": "unnumbered", "capacity": 20})))
        .await;
    let (mut live, first) = open_ok(&app, event, None).await;
    assert_eq!(
        first,
        json!({"sold": 0, "held": 0, "available": 20, "seats": null})
    );
    app.sell(event, "c1", "r1", None).await.expect(201);
    assert_eq!(
        live.next().await,
        json!({"sold": 1, "held": 0, "available": 19, "seats": null})
    );
}

/// Reads `/metrics` with these extra headers.
async fn scrape(app: &TestApp, headers: &[(&str, &str)]) -> crate::helpers::Reply {
    let mut request = app.client.get(format!("{}/metrics", app.base_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    crate::helpers::Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    }
}

// Checks who may read /metrics: nobody without credentials or with a wrong token (401), not a
// signed-in attendee (403); the configured token, an admin's bearer token and an admin's
// session cookie may (200, Prometheus text).
#[tokio::test]
async fn metrics_answer_only_the_token_and_admins() {
    let config = HttpConfig {
        metrics_token: Some(MetricsToken::new(METRICS_TOKEN).expect("long enough")),
        ..HttpConfig::default()
    };
    let app = spawn_app_with_metrics(config, Some(recorder())).await;
    let attendee = app.new_user("watcher", None).await;
    let bearer = |token: &str| format!("Bearer {token}");

    let anonymous = scrape(&app, &[]).await;
    anonymous.problem(401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    scrape(
        &app,
        &[("authorization", &bearer("metrics-test-token-wrong0000"))],
    )
    .await
    .problem(401);
    scrape(&app, &[("authorization", &bearer(&attendee.token))])
        .await
        .problem(403);

    let cookie = format!("tix_session={}", app.admin_token);
    for headers in [
        [("authorization", bearer(METRICS_TOKEN))],
        [("authorization", bearer(&app.admin_token))],
        [("cookie", cookie)],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = scrape(&app, &headers).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.text);
        assert!(
            reply.text.contains("tix_state_memory_bytes"),
            "{}",
            reply.text
        );
    }
}

// Checks that without a recorder an admin gets 404, and a token that is too short is refused
// at configuration (the maximum length refused and the minimum accepted).
#[tokio::test]
async fn metrics_without_recorder_is_404_and_short_tokens_are_refused() {
    let app = spawn_app_with_metrics(HttpConfig::default(), None).await;
    let reply = scrape(
        &app,
        &[("authorization", &format!("Bearer {}", app.admin_token))],
    )
    .await;
    reply.problem(404);
    assert!(MetricsToken::new(&"x".repeat(15)).is_err());
    assert!(MetricsToken::new(&"x".repeat(16)).is_ok());
}

// Checks that methods a client invents do not become label values: 40 invented methods leave
// no trace in /metrics except the `other` method label, and every method label is a standard
// method.
#[tokio::test]
async fn invented_methods_are_counted_as_other() {
    let app = spawn_app_with_metrics(HttpConfig::default(), Some(recorder())).await;
    for i in 0..40 {
        let method = Method::from_bytes(format!("INVENTED{i}").as_bytes()).expect("method");
        let response = app
            .client
            .request(method, format!("{}/healthz", app.base_url))
            .send()
            .await
            .expect("request sent");
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let text = scrape(
        &app,
        &[("authorization", &format!("Bearer {}", app.admin_token))],
    )
    .await
    .text;
    assert!(
        !text.contains("INVENTED"),
        "an invented method became a label"
    );
    assert!(text.contains(r#"method="other""#), "{text}");
    let standard = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    for label in text.split(r#"method=""#).skip(1) {
        let value = label.split('"').next().expect("closing quote");
        assert!(
            value == "other" || standard.contains(&value),
            "method label {value:?}"
        );
    }
}
