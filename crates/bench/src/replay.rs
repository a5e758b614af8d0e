//! Replays a workload file against the HTTP API (direct architecture) and verifies the result
//! against the final state read back from the system. This is the core of `tix bench`; the
//! nginx front, the RabbitMQ path, the sweeps and the plots build on it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use tix_amqp::{PurchaseMessage, Requester};
use tix_testkit::client::ApiClient;

use crate::cost::{CostMeter, RunCost, metered};
use crate::workload::{Buy, Workload, WorkloadKind};

/// The tickets (or seats) of the fresh event each run creates.
pub const CONCERT_CAPACITY: u32 = 20_000;
/// Attempts per purchase when the answer is unknown (timeout, connection error, 503).
const ATTEMPTS_MAX: u32 = 20;

/// What a client was told for one line, after retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 201: the ticket and seat.
    Sold {
        /// The ticket.
        ticket_id: u64,
        /// The seat, for a numbered event.
        seat: Option<u64>,
    },
    /// 409 with this reason.
    Rejected(String),
    /// No definite answer after every attempt.
    Unknown(String),
}

/// The measurements and verdict of one replay.
#[derive(Debug)]
pub struct ReplayReport {
    /// The event created for the run.
    pub event_id: u64,
    /// Wall time of the load phase.
    pub elapsed: Duration,
    /// Answers by line index.
    pub answers: Vec<Answer>,
    /// Latency of each line (all attempts), in microseconds.
    pub latency_us: Histogram<u64>,
    /// Problems found by the verification; empty means PASS.
    pub violations: Vec<String>,
    /// Tickets in the final state.
    pub sold_final: usize,
    /// What the load phase cost the local processes, when a meter was given.
    pub cost: Option<RunCost>,
}

impl ReplayReport {
    /// Returns the number of 201s.
    pub fn sold(&self) -> usize {
        self.answers
            .iter()
            .filter(|a| matches!(a, Answer::Sold { .. }))
            .count()
    }

    /// Returns rejections counted by reason.
    pub fn rejections(&self) -> BTreeMap<String, usize> {
        let mut by_reason = BTreeMap::new();
        for a in &self.answers {
            if let Answer::Rejected(reason) = a {
                *by_reason.entry(reason.clone()).or_insert(0) += 1;
            }
        }
        by_reason
    }
}

/// How purchases reach the cluster.
#[derive(Clone)]
pub enum Transport {
    /// `POST /events/{id}/purchases` over keep-alive HTTP (to nginx or a node).
    Http(ApiClient),
    /// A message on `tix.purchases`, answered by a worker on a reply queue.
    Amqp(Requester),
}

/// How long an AMQP request waits for its reply (the requester re-publishes meanwhile).
const AMQP_REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// What the load phase measured.
pub struct LoadReport {
    /// Wall time.
    pub elapsed: Duration,
    /// Answers by line index.
    pub answers: Vec<Answer>,
    /// Latency of each line (all attempts), in microseconds.
    pub latency_us: Histogram<u64>,
}

impl LoadReport {
    /// Returns the lines that got a definite answer (sold or refused).
    pub fn answered(&self) -> usize {
        self.answers
            .iter()
            .filter(|a| !matches!(a, Answer::Unknown(_)))
            .count()
    }
}

/// Sends every buy of `buys` for `event_id` through `transport` with `clients` concurrent
/// clients (each waits for its answer before sending its next line), with a progress bar
/// when `progress` is set and stderr is a terminal.
pub async fn load(
    transport: &Transport,
    event_id: u64,
    buys: &[Buy],
    clients: usize,
    progress: bool,
) -> anyhow::Result<LoadReport> {
    let buys = Arc::new(buys.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(buys.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} lines ({per_sec}, eta {eta})",
            )?
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let (transport, buys, next, bar) =
            (transport.clone(), buys.clone(), next.clone(), bar.clone());
        tasks.spawn(async move {
            let mut answers = Vec::new();
            let mut latency = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("bounds");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(buy) = buys.get(i) else { break };
                let t = Instant::now();
                let answer = match &transport {
                    Transport::Http(api) => buy_with_retries(api, event_id, buy).await,
                    Transport::Amqp(requester) => buy_over_amqp(requester, event_id, buy).await,
                };
                latency.saturating_record(t.elapsed().as_micros() as u64);
                answers.push((i, answer));
                bar.inc(1);
            }
            (answers, latency)
        });
    }
    let mut answers = vec![Answer::Unknown("not sent".into()); buys.len()];
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    while let Some(done) = tasks.join_next().await {
        let (part, latency) = done?;
        latency_us.add(latency)?;
        for (i, answer) in part {
            answers[i] = answer;
        }
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(LoadReport {
        elapsed,
        answers,
        latency_us,
    })
}

/// The name of the event a replay creates and sells.
pub const REPLAY_EVENT_NAME: &str = "flash-sale benchmark";

/// Waits until a running replay's event (the newest event named [`REPLAY_EVENT_NAME`]) has sold
/// at least `sold_at_least` tickets: fault tests inject their fault once the run is under way,
/// however fast or slow this machine is today.
pub async fn wait_for_sales(
    api: &ApiClient,
    sold_at_least: u64,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let mut sold = 0;
    while std::time::Instant::now() < deadline {
        let events: Value = api
            .http
            .get(format!("{}/api/v1/events", api.base_url))
            .send()
            .await?
            .json()
            .await?;
        let newest = events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == REPLAY_EVENT_NAME)
            .filter_map(|e| e["id"].as_u64())
            .max();
        if let Some(event_id) = newest {
            // A linearizable read answers 503 while an election is under way: poll again.
            if let Ok(availability) = api.availability(event_id).await {
                sold = availability["sold"].as_u64().unwrap_or(0);
            }
            if sold >= sold_at_least {
                return Ok(());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    anyhow::bail!("the replay sold {sold} < {sold_at_least} tickets within {timeout:?}")
}

/// Creates a fresh event for the workload (through `api`), replays it through `transport`
/// with `clients` concurrent clients, and verifies the final state. With a `meter`, the load
/// phase's cost is read too (just before the first purchase and just after the last answer).
pub async fn replay(
    api: &ApiClient,
    transport: &Transport,
    workload: &Workload,
    clients: usize,
    progress: bool,
    meter: Option<&CostMeter<'_>>,
) -> anyhow::Result<ReplayReport> {
    let inventory = match workload.kind {
        WorkloadKind::Unnumbered => json!({"kind": "unnumbered", "capacity": CONCERT_CAPACITY}),
        WorkloadKind::Numbered => json!({"kind": "numbered", "seats": CONCERT_CAPACITY}),
    };
    let event_id = api.create_event(REPLAY_EVENT_NAME, inventory).await?;
    let work = load(transport, event_id, &workload.buys, clients, progress);
    let (
        LoadReport {
            elapsed,
            answers,
            latency_us,
        },
        cost,
    ) = match meter {
        Some(meter) => metered(meter, work).await?,
        None => (work.await?, None),
    };
    let sales = api.sales(event_id).await?;
    let availability = api.availability(event_id).await?;
    let violations = verify(workload, &answers, &sales, &availability);
    Ok(ReplayReport {
        event_id,
        elapsed,
        answers,
        latency_us,
        violations,
        sold_final: sales.len(),
        cost,
    })
}

/// Reads an answer body (HTTP or AMQP reply) with its status.
fn answer_of(status: u64, body: &Value) -> Option<Answer> {
    match status {
        201 => Some(Answer::Sold {
            ticket_id: body["ticket_id"].as_u64().unwrap_or(0),
            seat: body["seat"].as_u64(),
        }),
        409 => Some(Answer::Rejected(
            body["reason"].as_str().unwrap_or("conflict").into(),
        )),
        503 | 0 => None,
        status => Some(Answer::Rejected(format!("http {status}: {}", body["type"]))),
    }
}

async fn buy_over_amqp(requester: &Requester, event_id: u64, buy: &Buy) -> Answer {
    let message = PurchaseMessage {
        event_id,
        client_id: buy.client_id.clone(),
        request_id: buy.request_id.clone(),
        seat: buy.seat,
        admission: None,
    };
    match requester.request(&message, AMQP_REPLY_TIMEOUT).await {
        Ok(reply) => answer_of(reply["status"].as_u64().unwrap_or(0), &reply)
            .unwrap_or_else(|| Answer::Unknown(format!("reply {reply}"))),
        Err(e) => Answer::Unknown(e.to_string()),
    }
}

async fn buy_with_retries(api: &ApiClient, event_id: u64, buy: &Buy) -> Answer {
    let seat = buy.seat;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS_MAX {
        match api
            .purchase(event_id, &buy.client_id, &buy.request_id, seat)
            .await
        {
            Ok((status, body)) => match answer_of(u64::from(status), &body) {
                Some(answer) => return answer,
                None => last = format!("http {status}"),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
    }
    Answer::Unknown(last)
}

/// Checks the run against the final state. Returns every violation found.
///
/// - every 201 a client saw is in `/sales` with the same ticket and seat;
/// - every ticket in `/sales` answers a line of the file (no ticket nobody asked for);
/// - no request id and no seat appears twice;
/// - unnumbered: exactly min(capacity, lines) sold, and every later attempt was refused;
///   numbered: sold equals the distinct seats requested;
/// - availability agrees with `/sales`.
pub fn verify(
    workload: &Workload,
    answers: &[Answer],
    sales: &[Value],
    availability: &Value,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut by_key: BTreeMap<(String, String), (u64, Option<u64>)> = BTreeMap::new();
    let mut seats = BTreeSet::new();
    for line in sales {
        let key = (
            line["client_id"].as_str().unwrap_or_default().to_owned(),
            line["request_id"].as_str().unwrap_or_default().to_owned(),
        );
        let ticket = (
            line["ticket_id"].as_u64().unwrap_or(0),
            line["seat"].as_u64(),
        );
        if by_key.insert(key.clone(), ticket).is_some() {
            violations.push(format!("request {key:?} produced two tickets"));
        }
        if let Some(seat) = ticket.1
            && !seats.insert(seat)
        {
            violations.push(format!("seat {seat} sold twice"));
        }
    }
    let asked: BTreeSet<(String, String)> = workload
        .buys
        .iter()
        .map(|b| (b.client_id.clone(), b.request_id.clone()))
        .collect();
    for key in by_key.keys().filter(|k| !asked.contains(*k)) {
        violations.push(format!(
            "ticket for {key:?}, which no line of the file asked for"
        ));
    }
    for (buy, answer) in workload.buys.iter().zip(answers) {
        let key = (buy.client_id.clone(), buy.request_id.clone());
        match answer {
            Answer::Sold { ticket_id, seat } => match by_key.get(&key) {
                Some(found) if *found == (*ticket_id, *seat) => {}
                other => violations.push(format!(
                    "line {}: the client was sold ticket {ticket_id} seat {seat:?}, the final state has {other:?}",
                    buy.line
                )),
            },
            Answer::Rejected(_) if by_key.contains_key(&key) => violations.push(format!(
                "line {}: the client was refused but the final state has a ticket for it",
                buy.line
            )),
            Answer::Unknown(why) => violations.push(format!(
                "line {}: the client got no definite answer ({why})",
                buy.line
            )),
            Answer::Rejected(_) => {}
        }
    }
    let expected = workload.expected_sold(CONCERT_CAPACITY);
    if by_key.len() != expected {
        violations.push(format!(
            "{} tickets sold; the workload must sell exactly {expected}",
            by_key.len()
        ));
    }
    if availability["sold"].as_u64() != Some(by_key.len() as u64) {
        violations.push(format!(
            "availability says {} sold, /sales lists {}",
            availability["sold"],
            by_key.len()
        ));
    }
    violations
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::workload::parse;

    fn sale(client: &str, request: &str, ticket: u64, seat: Option<u64>) -> Value {
        json!({"client_id": client, "request_id": request, "ticket_id": ticket, "seat": seat})
    }

    // A correct numbered run passes; a seat sold twice, a lost 201 and a phantom ticket each fail.
    #[test]
    fn verify_catches_double_lost_and_phantom_sales() {
        let w = parse(
            Path::new("w"),
            "BUY a 1 r1\nBUY b 1 r2\nBUY c 2 r3\n",
            20_000,
        )
        .unwrap();
        let answers = vec![
            Answer::Sold {
                ticket_id: 1,
                seat: Some(1),
            },
            Answer::Rejected("seat_taken".into()),
            Answer::Sold {
                ticket_id: 2,
                seat: Some(2),
            },
        ];
        let good = vec![sale("a", "r1", 1, Some(1)), sale("c", "r3", 2, Some(2))];
        assert_eq!(
            verify(&w, &answers, &good, &json!({"sold": 2})),
            Vec::<String>::new()
        );

        let double = vec![
            good[0].clone(),
            sale("b", "r2", 3, Some(1)),
            good[1].clone(),
        ];
        let v = verify(&w, &answers, &double, &json!({"sold": 3}));
        assert!(v.iter().any(|m| m.contains("seat 1 sold twice")), "{v:?}");
        assert!(v.iter().any(|m| m.contains("refused but")), "{v:?}");

        let lost = vec![good[0].clone()];
        let v = verify(&w, &answers, &lost, &json!({"sold": 1}));
        assert!(v.iter().any(|m| m.contains("line 3")), "{v:?}");

        let phantom = vec![
            good[0].clone(),
            good[1].clone(),
            sale("z", "r9", 9, Some(3)),
        ];
        let v = verify(&w, &answers, &phantom, &json!({"sold": 3}));
        assert!(v.iter().any(|m| m.contains("no line of the file")), "{v:?}");
    }

    // An unnumbered run must sell exactly min(capacity, lines).
    #[test]
    fn verify_checks_the_unnumbered_count() {
        let w = parse(Path::new("w"), "BUY a r1\nBUY b r2\n", 20_000).unwrap();
        let answers = vec![
            Answer::Sold {
                ticket_id: 1,
                seat: None,
            },
            Answer::Unknown("timeout".into()),
        ];
        let sales = vec![sale("a", "r1", 1, None)];
        let v = verify(&w, &answers, &sales, &json!({"sold": 1}));
        assert!(v.iter().any(|m| m.contains("must sell exactly 2")), "{v:?}");
    }
}
