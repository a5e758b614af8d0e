//! The clients of a chaos run: a bounded number of concurrent buyers, each sending purchases for
//! the unnumbered event or for a seat of the numbered event, every attempt to a node chosen at
//! random, and recording everything in its part of the history.
//!
//! Seats are drawn from a small window that slides over the seat map during the run, so several
//! clients fight for the same seats at any moment without exhausting the map early. After an
//! unknown answer (timeout, broken connection, 503, or a follower that has not caught up) a
//! client retries the same request id, possibly through another node, with a capped exponential
//! backoff, a bounded number of times.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::history::{Attempt, AttemptResult, Clock, Completion, Op, OpRecord, RequestKey, Ticket};

/// Time limit of one attempt. A paused or cut-off node never answers, and a client stuck on it
/// would hide how soon the rest of the cluster sells again; a healthy node answers in
/// milliseconds, and a node waiting for an election is retried elsewhere (same request id).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Time limit to connect to a node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The most attempts of one operation.
const ATTEMPTS_MAX: u32 = 30;
/// No new attempt of an operation starts later than this after it was invoked.
const RETRY_WINDOW: Duration = Duration::from_secs(20);
/// The first backoff after an unknown answer; it doubles up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The longest backoff between two attempts.
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How many adjacent seats the clients contend for at any moment.
pub const SEAT_WINDOW: u32 = 8;

/// Live counts of completed operations, for progress lines.
#[derive(Debug, Default)]
pub struct Progress {
    ok: AtomicU64,
    fail: AtomicU64,
    indeterminate: AtomicU64,
}

impl Progress {
    fn count(&self, completion: &Completion) {
        let counter = match completion {
            Completion::Ok { .. } => &self.ok,
            Completion::Fail { .. } => &self.fail,
            Completion::Indeterminate => &self.indeterminate,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns "N ok, N fail, N indeterminate" so far.
    pub fn summary(&self) -> String {
        format!(
            "so far {} ok, {} fail, {} indeterminate",
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.indeterminate.load(Ordering::Relaxed)
        )
    }
}

/// What every client shares: where to send, what to buy, and for how long.
pub struct Workload {
    /// The HTTP client (one keep-alive pool).
    pub http: reqwest::Client,
    /// Every node as (id, base URL); restarts keep the addresses.
    pub nodes: Vec<(u64, String)>,
    /// The admin bearer token.
    pub token: String,
    /// The unnumbered event.
    pub unnumbered_event: u64,
    /// The numbered event.
    pub numbered_event: u64,
    /// Its seat count.
    pub seats: u32,
    /// The run's clock.
    pub clock: Clock,
    /// No operation is invoked after this.
    pub until_ms: u64,
    /// The average pause of one client between two operations.
    pub think_time: Duration,
    /// Completed operations so far.
    pub progress: Progress,
}

/// Starts `clients` clients, client `i` with its own RNG seeded from `seed` and `i`; each
/// returns its operations.
pub fn spawn_clients(
    workload: &std::sync::Arc<Workload>,
    clients: u32,
    seed: u64,
) -> JoinSet<Vec<OpRecord>> {
    let mut tasks = JoinSet::new();
    for client in 0..clients {
        let workload = workload.clone();
        let rng = StdRng::seed_from_u64(seed ^ (u64::from(client) + 1).wrapping_mul(0x9E37_79B9));
        tasks.spawn(async move { client_loop(&workload, client, rng).await });
    }
    tasks
}

/// Returns the first seat of the contended window at `elapsed_ms` of a run of `duration_ms`: the
/// window slides from seat 1 to the last `window` seats over the run.
pub fn seat_window_start(elapsed_ms: u64, duration_ms: u64, seats: u32, window: u32) -> u32 {
    let span = u64::from(seats.saturating_sub(window));
    if elapsed_ms >= duration_ms {
        return 1 + span as u32;
    }
    1 + (span * elapsed_ms / duration_ms) as u32
}

async fn client_loop(workload: &Workload, client: u32, mut rng: StdRng) -> Vec<OpRecord> {
    let mut records = Vec::new();
    for request in 0u64.. {
        let invoked_ms = workload.clock.now_ms();
        if invoked_ms >= workload.until_ms {
            break;
        }
        let op = next_op(workload, client, request, invoked_ms, &mut rng);
        let record = perform(workload, op, &mut rng).await;
        workload.progress.count(&record.completion);
        records.push(record);
        let think_ms = workload.think_time.as_millis() as u64 * 2;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..=think_ms))).await;
    }
    records
}

fn next_op(workload: &Workload, client: u32, request: u64, now_ms: u64, rng: &mut StdRng) -> Op {
    let key = RequestKey {
        client_id: format!("chaos-{client}"),
        request_id: format!("r{request}"),
    };
    if rng.random_bool(0.5) {
        return Op {
            key,
            event_id: workload.unnumbered_event,
            seat: None,
        };
    }
    let window = SEAT_WINDOW.min(workload.seats);
    let first = seat_window_start(now_ms, workload.until_ms, workload.seats, window);
    Op {
        key,
        event_id: workload.numbered_event,
        seat: Some(first + rng.random_range(0..window)),
    }
}

/// Sends `op` until a definite answer, retrying unknown ones through random nodes with backoff,
/// within `ATTEMPTS_MAX` attempts and `RETRY_WINDOW`.
async fn perform(workload: &Workload, op: Op, rng: &mut StdRng) -> OpRecord {
    let clock = workload.clock;
    let invoked_ms = clock.now_ms();
    let mut attempts = Vec::new();
    let mut backoff = BACKOFF_MIN;
    while attempts.len() < ATTEMPTS_MAX as usize {
        let (node, url) = &workload.nodes[rng.random_range(0..workload.nodes.len())];
        let started_ms = clock.now_ms();
        let result = attempt(workload, url, &op).await;
        let definite = result.is_definite();
        attempts.push(Attempt {
            node: *node,
            started_ms,
            finished_ms: clock.now_ms(),
            result,
        });
        if definite || clock.now_ms() + backoff.as_millis() as u64 > invoked_ms + retry_window_ms()
        {
            break;
        }
        let jitter = rng.random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    OpRecord {
        completion: OpRecord::completion_of(&attempts),
        completed_ms: clock.now_ms(),
        invoked_ms,
        op,
        attempts,
    }
}

fn retry_window_ms() -> u64 {
    RETRY_WINDOW.as_millis() as u64
}

/// Sends one purchase to the node at `url` and classifies what came back.
async fn attempt(workload: &Workload, url: &str, op: &Op) -> AttemptResult {
    let mut body = json!({"client_id": op.key.client_id, "request_id": op.key.request_id});
    if let Some(seat) = op.seat {
        body["seat"] = json!(seat);
    }
    let sent = workload
        .http
        .post(format!("{url}/api/v1/events/{}/purchases", op.event_id))
        .bearer_auth(&workload.token)
        .timeout(ATTEMPT_TIMEOUT)
        .json(&body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return AttemptResult::Timeout,
        Err(_) => return AttemptResult::ConnectionError,
    };
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let answer: Value = match response.json().await {
        Ok(answer) => answer,
        Err(e) if e.is_timeout() => return AttemptResult::Timeout,
        Err(e) if e.is_decode() => Value::Null,
        Err(_) => return AttemptResult::ConnectionError,
    };
    match status {
        201 => sold(op, &answer, replayed),
        409 => AttemptResult::Refused {
            reason: answer["reason"].as_str().unwrap_or("(none)").to_owned(),
        },
        503 => AttemptResult::Unavailable,
        status => AttemptResult::OtherStatus { status },
    }
}

/// Reads the ticket out of a 201 answer, which must name this request.
fn sold(op: &Op, answer: &Value, replayed: bool) -> AttemptResult {
    let names_request = answer["client_id"] == json!(op.key.client_id)
        && answer["request_id"] == json!(op.key.request_id)
        && answer["event_id"] == json!(op.event_id);
    let ticket_id = answer["ticket_id"].as_u64();
    let seat = answer["seat"].as_u64().map(|s| s as u32);
    match ticket_id {
        Some(ticket_id) if names_request => AttemptResult::Sold {
            ticket: Ticket { ticket_id, seat },
            replayed,
        },
        _ => AttemptResult::Malformed {
            detail: answer.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window starts at seat 1, ends at the last `window` seats, and stays there after the
    /// run's end.
    #[test]
    fn the_seat_window_slides_over_the_map() {
        assert_eq!(seat_window_start(0, 1000, 500, 8), 1);
        assert_eq!(seat_window_start(500, 1000, 500, 8), 247);
        assert_eq!(seat_window_start(1000, 1000, 500, 8), 493);
        assert_eq!(seat_window_start(5000, 1000, 500, 8), 493);
        assert_eq!(seat_window_start(10, 0, 500, 8), 493);
        assert_eq!(seat_window_start(10, 1000, 4, 8), 1);
    }

    /// A 201 must name the request; otherwise it is recorded as malformed.
    #[test]
    fn a_201_for_another_request_is_malformed() {
        let op = Op {
            key: RequestKey {
                client_id: "c".into(),
                request_id: "r1".into(),
            },
            event_id: 2,
            seat: Some(5),
        };
        let good = json!({"outcome": "sold", "event_id": 2, "ticket_id": 9, "seat": 5,
                          "client_id": "c", "request_id": "r1"});
        assert_eq!(
            sold(&op, &good, true),
            AttemptResult::Sold {
                ticket: Ticket {
                    ticket_id: 9,
                    seat: Some(5)
                },
                replayed: true
            }
        );
        let other = json!({"event_id": 2, "ticket_id": 9, "seat": 5,
                           "client_id": "c", "request_id": "r2"});
        assert!(matches!(
            sold(&op, &other, false),
            AttemptResult::Malformed { .. }
        ));
    }
}
