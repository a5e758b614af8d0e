//! `tix worker`: consumes purchase requests from [`PURCHASE_QUEUE`], commits them to the cluster
//! in batches, replies, and acknowledges.
//!
//! One session is one connection and one channel with a prefetch window. Deliveries are grouped
//! naturally (the first one waits; every delivery already buffered joins it, up to
//! `batch_max`), and up to `batches_in_flight_max` batches are worked on at once. A batch goes to
//! the cluster as one `POST /api/v1/purchases/batch`, which the node turns into (usually) one
//! log entry; the worker follows the `Tix-Leader` header so later batches skip the follower's
//! forwarding hop. Each answer is published to its `reply_to` with publisher confirms, and only
//! once the broker has confirmed a reply is its request acknowledged — in bulk, up to the highest
//! delivery below which everything has finished ([`AckTracker`]).
//!
//! So a worker killed at any moment loses nothing: whatever it had not acknowledged is delivered
//! again, to it or to another worker, and the request id makes the repeat return the recorded
//! answer instead of selling twice. Requests the cluster cannot answer now (503: no leader, the
//! outcome unknown) are retried with backoff for `api_retry_ms`, then handed back to the broker
//! (`basic.nack` with requeue). A lost broker connection ends the session; the worker reconnects
//! with exponential backoff, and the broker redelivers what was unacknowledged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::ack::AckTracker;
use crate::protocol::{PURCHASE_QUEUE, PurchaseMessage, malformed_reply};

/// How a worker connects and how much it takes on at once.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// Base URLs of tix nodes (or of nginx in front of them); the first one answering is used,
    /// then the leader it names.
    pub api_urls: Vec<String>,
    /// An account allowed to sell for the events (organizer of them, or admin).
    pub username: String,
    /// Its password.
    pub password: String,
    /// The queue to consume.
    pub queue: String,
    /// Unacknowledged deliveries the broker may send ahead (`basic.qos`).
    pub prefetch: u16,
    /// The most requests in one batch (the API takes at most 512).
    pub batch_max: usize,
    /// How long to wait for more deliveries after the first of a batch (zero: do not wait).
    pub batch_wait_ms: u64,
    /// Batches being committed at once.
    pub batches_in_flight_max: usize,
    /// How long a batch is retried while the cluster answers 503 or cannot be reached.
    pub api_retry_ms: u64,
    /// Timeout of one API request.
    pub api_timeout_ms: u64,
    /// First pause before reconnecting to the broker; doubles up to `reconnect_backoff_max_ms`.
    pub reconnect_backoff_first_ms: u64,
    /// Longest pause before reconnecting.
    pub reconnect_backoff_max_ms: u64,
    /// Answer every request with a fixed reply without touching the cluster: measures the
    /// broker path's ceiling.
    pub echo: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            api_urls: vec!["http://127.0.0.1:8080".into()],
            username: "admin".into(),
            password: String::new(),
            queue: PURCHASE_QUEUE.into(),
            prefetch: 1024,
            batch_max: 256,
            batch_wait_ms: 0,
            batches_in_flight_max: 4,
            api_retry_ms: 30_000,
            api_timeout_ms: 10_000,
            reconnect_backoff_first_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            echo: false,
        }
    }
}

impl WorkerConfig {
    /// Checks the limits before anything connects.
    pub fn validate(&self) -> Result<(), WorkerError> {
        let bad = |what: &str| Err(WorkerError::Config(what.to_owned()));
        if self.api_urls.is_empty() && !self.echo {
            return bad("at least one --api URL is needed");
        }
        if self.prefetch == 0 {
            return bad("--prefetch must be at least 1");
        }
        if !(1..=512).contains(&self.batch_max) {
            return bad("--batch-max must be 1..=512 (the batch endpoint's limit)");
        }
        if !(1..=64).contains(&self.batches_in_flight_max) {
            return bad("--batches-in-flight must be 1..=64");
        }
        if self.batch_wait_ms > 1000 {
            return bad("--batch-wait-ms must be at most 1000");
        }
        if self.queue.is_empty() || self.queue.len() > 255 {
            return bad("the queue name must be 1 to 255 bytes");
        }
        Ok(())
    }
}

/// Why a worker stopped or a session ended.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration is unusable.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The broker refused or dropped the connection, or a channel operation failed.
    #[error("RabbitMQ at {url}: {source}")]
    Broker {
        /// The broker URL, without its password.
        url: String,
        /// What failed.
        #[source]
        source: lapin::Error,
    },
    /// The broker did not answer in time.
    #[error("RabbitMQ at {0} did not answer within {1} ms")]
    BrokerTimeout(String, u64),
    /// The consumer was cancelled by the broker (queue deleted, node shutting down).
    #[error("the broker cancelled the consumer")]
    ConsumerCancelled,
    /// Logging in to the API failed for a reason a retry will not fix.
    #[error("the tix API refused the worker's login: {0}")]
    Login(String),
}

/// Returns `url` with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Runs the worker until `shutdown` turns true: sessions with reconnects in between. Returns an
/// error only for a problem that reconnecting cannot fix.
pub async fn run(
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    config.validate()?;
    let api = Arc::new(ApiTarget::new(&config)?);
    if !config.echo {
        api.login().await?;
    }
    let mut backoff = Duration::from_millis(config.reconnect_backoff_first_ms);
    loop {
        let started = Instant::now();
        match session(&config, &api, &mut shutdown).await {
            Ok(()) => return Ok(()),
            Err(e @ (WorkerError::Config(_) | WorkerError::Login(_))) => return Err(e),
            Err(e) => {
                if started.elapsed() > Duration::from_secs(10) {
                    backoff = Duration::from_millis(config.reconnect_backoff_first_ms);
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "worker session ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_millis(config.reconnect_backoff_max_ms));
            }
        }
        if *shutdown.borrow() {
            return Ok(());
        }
    }
}

/// Declares the durable purchase queue (idempotent; both sides do it).
pub async fn declare_queue(channel: &Channel, queue: &str) -> lapin::Result<()> {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map(|_| ())
}

/// How one delivery ended.
enum Disposition {
    /// Replied (or no reply wanted) and confirmed: acknowledge.
    Done(u64),
    /// Not answered: hand back to the broker for another try.
    Requeue(u64),
}

/// One connection's life: consume, work, reply, acknowledge, until the connection fails or the
/// worker is shut down (then in-flight batches finish first).
async fn session(
    config: &WorkerConfig,
    api: &Arc<ApiTarget>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let url = redact(&config.amqp_url);
    let broker = |source| WorkerError::Broker {
        url: url.clone(),
        source,
    };
    let connect_timeout_ms = 10_000;
    let connection = tokio::time::timeout(
        Duration::from_millis(connect_timeout_ms),
        Connection::connect(
            &config.amqp_url,
            ConnectionProperties::default().with_connection_name("tix-worker".into()),
        ),
    )
    .await
    .map_err(|_| WorkerError::BrokerTimeout(url.clone(), connect_timeout_ms))?
    .map_err(broker)?;
    let channel = connection.create_channel().await.map_err(broker)?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await
        .map_err(broker)?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(broker)?;
    declare_queue(&channel, &config.queue)
        .await
        .map_err(broker)?;
    let mut consumer = channel
        .basic_consume(
            config.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
    tracing::info!(broker = %url, queue = %config.queue, echo = config.echo, "worker consuming");

    let mut tracker = AckTracker::new();
    let mut batches: JoinSet<Result<Vec<Disposition>, lapin::Error>> = JoinSet::new();
    let mut draining = false;
    loop {
        if draining && batches.is_empty() {
            let _ = channel.close(200, "worker shutting down".into()).await;
            let _ = connection.close(200, "worker shutting down".into()).await;
            return Ok(());
        }
        let room = !draining && batches.len() < config.batches_in_flight_max;
        tokio::select! {
            _ = shutdown.changed(), if !draining => {
                draining = true;
            }
            Some(done) = batches.join_next(), if !batches.is_empty() => {
                let dispositions = done
                    .map_err(|e| WorkerError::Config(format!("a batch task failed: {e}")))?
                    .map_err(broker)?;
                for d in dispositions {
                    match d {
                        Disposition::Done(tag) => tracker.finished(tag),
                        Disposition::Requeue(tag) => {
                            channel
                                .basic_nack(tag, BasicNackOptions { multiple: false, requeue: true })
                                .await
                                .map_err(broker)?;
                            tracker.finished(tag);
                        }
                    }
                }
                if let Some(upto) = tracker.ackable() {
                    channel
                        .basic_ack(upto, BasicAckOptions { multiple: true })
                        .await
                        .map_err(broker)?;
                }
            }
            first = consumer.next(), if room => {
                let first = match first {
                    Some(delivery) => delivery.map_err(broker)?,
                    None => return Err(WorkerError::ConsumerCancelled),
                };
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now()
                    + Duration::from_millis(config.batch_wait_ms);
                while batch.len() < config.batch_max {
                    let next = if config.batch_wait_ms == 0 {
                        match consumer.next().now_or_never() {
                            Some(next) => next,
                            None => break,
                        }
                    } else {
                        match tokio::time::timeout_at(deadline, consumer.next()).await {
                            Ok(next) => next,
                            Err(_) => break,
                        }
                    };
                    match next {
                        Some(delivery) => batch.push(delivery.map_err(broker)?),
                        None => break,
                    }
                }
                for d in &batch {
                    tracker.received(d.delivery_tag);
                }
                metrics_batch(batch.len());
                let span = tracing::debug_span!("worker_step", deliveries = batch.len());
                batches.spawn(
                    work(config.clone(), api.clone(), channel.clone(), batch).instrument(span),
                );
            }
        }
    }
}

fn metrics_batch(len: usize) {
    tracing::trace!(len, "batch taken");
}

/// Answers one batch: commit (or echo), publish the replies with confirms, and say how each
/// delivery ended.
async fn work(
    config: WorkerConfig,
    api: Arc<ApiTarget>,
    channel: Channel,
    batch: Vec<Delivery>,
) -> Result<Vec<Disposition>, lapin::Error> {
    // None: the cluster gave no definite answer; the delivery goes back to the broker.
    let mut answers: Vec<Option<Value>> = vec![None; batch.len()];
    let mut requests = Vec::new();
    for (i, delivery) in batch.iter().enumerate() {
        match PurchaseMessage::decode(&delivery.data) {
            Ok(m) if config.echo => {
                answers[i] = Some(json!({
                    "status": 201, "outcome": "echo",
                    "client_id": m.client_id, "request_id": m.request_id,
                }));
            }
            Ok(m) => requests.push((i, m)),
            Err(detail) => answers[i] = Some(malformed_reply(&detail)),
        }
    }
    if !requests.is_empty() {
        for (i, answer) in api.commit(&config, &requests).await {
            answers[i] = answer;
        }
    }
    let mut confirms = Vec::new();
    let mut dispositions = Vec::with_capacity(batch.len());
    for (delivery, answer) in batch.iter().zip(answers) {
        let tag = delivery.delivery_tag;
        let Some(answer) = answer else {
            dispositions.push(Disposition::Requeue(tag));
            continue;
        };
        let Some(reply_to) = delivery.properties.reply_to().clone() else {
            dispositions.push(Disposition::Done(tag));
            continue;
        };
        let mut properties =
            BasicProperties::default().with_content_type("application/json".into());
        if let Some(correlation) = delivery.properties.correlation_id() {
            properties = properties.with_correlation_id(correlation.clone());
        }
        let body = answer.to_string();
        let confirm = channel
            .basic_publish(
                "".into(),
                reply_to,
                BasicPublishOptions::default(),
                body.as_bytes(),
                properties,
            )
            .await?;
        confirms.push((tag, confirm));
        dispositions.push(Disposition::Done(tag));
    }
    for (tag, confirm) in confirms {
        if matches!(confirm.await?, Confirmation::Nack(_)) {
            // The broker lost the reply: let the request come back; the retry replays the
            // recorded answer.
            if let Some(d) = dispositions
                .iter_mut()
                .find(|d| matches!(d, Disposition::Done(t) if *t == tag))
            {
                *d = Disposition::Requeue(tag);
            }
        }
    }
    Ok(dispositions)
}

/// The cluster as a worker sees it: an HTTP client, the configured addresses, the leader it
/// last heard of, and a session token.
struct ApiTarget {
    http: reqwest::Client,
    urls: Vec<String>,
    username: String,
    password: String,
    current: Mutex<ApiCurrent>,
}

struct ApiCurrent {
    /// Where the next batch goes.
    base: String,
    /// Index into `urls` of the last configured address tried.
    index: usize,
    /// The bearer token.
    token: String,
}

/// How a batch request went.
enum BatchCall {
    /// Answers, in order.
    Answered(Vec<Value>),
    /// Try again (unreachable, 5xx, timeout).
    Retry(String),
    /// The token expired: log in again, then retry.
    Unauthenticated,
    /// A refusal of the whole batch that a retry will not change (answered to every item).
    Refused(Value),
}

impl ApiTarget {
    fn new(config: &WorkerConfig) -> Result<ApiTarget, WorkerError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.api_timeout_ms))
            .pool_max_idle_per_host(config.batches_in_flight_max.max(1) * 2)
            .build()
            .map_err(|e| WorkerError::Config(format!("HTTP client: {e}")))?;
        let urls: Vec<String> = config
            .api_urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        Ok(ApiTarget {
            http,
            current: Mutex::new(ApiCurrent {
                base: urls.first().cloned().unwrap_or_default(),
                index: 0,
                token: String::new(),
            }),
            urls,
            username: config.username.clone(),
            password: config.password.clone(),
        })
    }

    fn base(&self) -> (String, String) {
        let c = self.current.lock().expect("not poisoned");
        (c.base.clone(), c.token.clone())
    }

    /// Moves to the next configured address (the current one failed).
    fn rotate(&self, failed: &str) {
        let mut c = self.current.lock().expect("not poisoned");
        if c.base == failed && !self.urls.is_empty() {
            c.index = (c.index + 1) % self.urls.len();
            c.base = self.urls[c.index].clone();
        }
    }

    /// Follows the leader a node named.
    fn follow(&self, leader_api_addr: &str) {
        let mut c = self.current.lock().expect("not poisoned");
        let base = format!("http://{leader_api_addr}");
        if c.base != base {
            tracing::debug!(%base, "following the leader");
            c.base = base;
        }
    }

    /// Logs in, trying each configured address, until one answers; wrong credentials are final.
    async fn login(&self) -> Result<(), WorkerError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (base, _) = self.base();
            let sent = self
                .http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": self.username, "password": self.password}))
                .send()
                .await;
            let failure = match sent {
                Ok(r) if r.status().is_success() => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    let token = body["token"].as_str().unwrap_or_default().to_owned();
                    if token.is_empty() {
                        return Err(WorkerError::Login("the login answer has no token".into()));
                    }
                    self.current.lock().expect("not poisoned").token = token;
                    return Ok(());
                }
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    return Err(WorkerError::Login(format!("{base}: {status}: {body}")));
                }
                Ok(r) => format!("{base}: {}", r.status()),
                Err(e) => format!("{base}: {e}"),
            };
            if Instant::now() > deadline {
                return Err(WorkerError::Login(format!(
                    "no tix node answered: {failure}"
                )));
            }
            tracing::warn!(%failure, "login failed; retrying");
            self.rotate(&base);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn call(&self, body: &Value) -> BatchCall {
        let (base, token) = self.base();
        let sent = self
            .http
            .post(format!("{base}/api/v1/purchases/batch"))
            .bearer_auth(&token)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.rotate(&base);
                return BatchCall::Retry(format!("{base}: {e}"));
            }
        };
        let status = response.status().as_u16();
        if let Some(leader) = response
            .headers()
            .get("tix-leader")
            .and_then(|v| v.to_str().ok())
        {
            self.follow(leader);
        }
        let answer: Value = match response.json().await {
            Ok(v) => v,
            Err(e) => {
                return BatchCall::Retry(format!("{base}: unreadable answer ({status}): {e}"));
            }
        };
        match status {
            200 => match answer["results"].as_array() {
                Some(results) => BatchCall::Answered(results.clone()),
                None => BatchCall::Retry(format!("{base}: an answer without results")),
            },
            401 => BatchCall::Unauthenticated,
            s if s >= 500 || s == 429 => {
                if s == 502 || s == 504 {
                    self.rotate(&base);
                }
                BatchCall::Retry(format!("{base}: {s}: {}", answer["detail"]))
            }
            s => {
                let mut problem = answer;
                problem["status"] = json!(s);
                BatchCall::Refused(problem)
            }
        }
    }

    /// Commits `requests` (index into the batch, message) and returns each one's answer, or
    /// `None` where the cluster gave no definite answer within `api_retry_ms`.
    async fn commit(
        &self,
        config: &WorkerConfig,
        requests: &[(usize, PurchaseMessage)],
    ) -> Vec<(usize, Option<Value>)> {
        let deadline = Instant::now() + Duration::from_millis(config.api_retry_ms);
        let mut pending: Vec<(usize, &PurchaseMessage)> =
            requests.iter().map(|(i, m)| (*i, m)).collect();
        let mut answered = Vec::with_capacity(requests.len());
        let mut backoff = Duration::from_millis(20);
        while !pending.is_empty() {
            let body = json!({ "purchases": pending.iter().map(|(_, m)| m).collect::<Vec<_>>() });
            let mut retry = Vec::new();
            match self.call(&body).await {
                BatchCall::Answered(results) if results.len() == pending.len() => {
                    for ((i, m), result) in pending.iter().zip(results) {
                        if result["status"].as_u64() == Some(503) {
                            retry.push((*i, *m));
                        } else {
                            answered.push((*i, Some(result)));
                        }
                    }
                }
                BatchCall::Answered(results) => {
                    tracing::warn!(
                        sent = pending.len(),
                        got = results.len(),
                        "answer count mismatch"
                    );
                    retry = pending.clone();
                }
                BatchCall::Refused(problem) => {
                    tracing::warn!(%problem, "the API refused a whole batch");
                    answered.extend(pending.iter().map(|(i, _)| (*i, Some(problem.clone()))));
                }
                BatchCall::Unauthenticated => {
                    if let Err(e) = self.login().await {
                        tracing::error!(error = %e, "cannot log in again");
                    }
                    retry = pending.clone();
                }
                BatchCall::Retry(why) => {
                    tracing::debug!(%why, "batch not answered; retrying");
                    retry = pending.clone();
                }
            }
            pending = retry;
            if pending.is_empty() {
                break;
            }
            if Instant::now() + backoff > deadline {
                tracing::warn!(
                    requests = pending.len(),
                    "no definite answer in time; handing back to the broker"
                );
                answered.extend(pending.iter().map(|(i, _)| (*i, None)));
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Passwords never reach a log line.
    #[test]
    fn redacts_the_password_only() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(redact("amqp://user@host"), "amqp://user@host");
    }

    // Each limit is checked with a message naming the flag.
    #[test]
    fn validates_limits() {
        assert!(WorkerConfig::default().validate().is_ok());
        let with = |f: fn(&mut WorkerConfig)| {
            let mut c = WorkerConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(with(|c| c.batch_max = 513).contains("--batch-max"));
        assert!(with(|c| c.batch_max = 0).contains("--batch-max"));
        assert!(with(|c| c.prefetch = 0).contains("--prefetch"));
        assert!(with(|c| c.batches_in_flight_max = 0).contains("--batches-in-flight"));
        assert!(with(|c| c.api_urls.clear()).contains("--api"));
    }
}
