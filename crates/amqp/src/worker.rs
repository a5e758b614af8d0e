//! `tix worker`: consumes purchase requests from [`PURCHASE_QUEUE`] and commits them to the
//! cluster in batches over HTTP — [`crate::consumer`] with an HTTP [`Committer`].
//!
//! A batch goes to the cluster as one `POST /api/v1/purchases/batch`, which the node turns into
//! (usually) one log entry; the worker follows the `Tix-Leader` header so later batches skip the
//! follower's forwarding hop. Replies, acknowledgements, reconnects and redelivery are the
//! consumer's (see there, also for why replies are not confirmed by default).
//!
//! So a worker killed at any moment loses nothing: whatever it had not acknowledged is delivered
//! again, to it or to another worker, and the request id makes the repeat return the recorded
//! answer instead of selling twice. Requests the cluster cannot answer now (503: no leader, the
//! outcome unknown) are retried with backoff for `api_retry_ms`, then handed back to the broker
//! (`basic.nack` with requeue). A node can run the same consumer in-process instead
//! (`tix serve --amqp-url`), saving this process and its HTTP hop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::consumer::{self, Committer, ConsumerConfig, ConsumerError};
use crate::protocol::{PURCHASE_QUEUE, PurchaseMessage};

pub use crate::consumer::{declare_queue, redact};

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
    /// Wait for the broker to confirm each reply before acknowledging its request.
    pub reply_confirms: bool,
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
            reply_confirms: false,
        }
    }
}

impl WorkerConfig {
    /// Checks the limits before anything connects.
    pub fn validate(&self) -> Result<(), WorkerError> {
        if self.api_urls.is_empty() && !self.echo {
            return Err(WorkerError::Config(
                "at least one --api URL is needed".to_owned(),
            ));
        }
        self.consumer().validate("--")?;
        Ok(())
    }

    /// Returns the consumer's part of the configuration.
    pub fn consumer(&self) -> ConsumerConfig {
        ConsumerConfig {
            amqp_url: self.amqp_url.clone(),
            queue: self.queue.clone(),
            prefetch: self.prefetch,
            batch_max: self.batch_max,
            batch_wait_ms: self.batch_wait_ms,
            batches_in_flight_max: self.batches_in_flight_max,
            reconnect_backoff_first_ms: self.reconnect_backoff_first_ms,
            reconnect_backoff_max_ms: self.reconnect_backoff_max_ms,
            reply_confirms: self.reply_confirms,
            connection_name: "tix-worker".into(),
        }
    }
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration is unusable.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The consumer stopped for a reason reconnecting cannot fix.
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// Logging in to the API failed for a reason a retry will not fix.
    #[error("the tix API refused the worker's login: {0}")]
    Login(String),
}

/// Runs the worker until `shutdown` turns true: sessions with reconnects in between. Returns an
/// error only for a problem that reconnecting cannot fix.
pub async fn run(config: WorkerConfig, shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
    config.validate()?;
    if config.echo {
        consumer::run(config.consumer(), Arc::new(Echo), shutdown).await?;
        return Ok(());
    }
    let api = Arc::new(ApiTarget::new(&config)?);
    api.login().await?;
    consumer::run(config.consumer(), api, shutdown).await?;
    Ok(())
}

/// Answers every request with a fixed reply without touching the cluster: the broker path's
/// ceiling.
struct Echo;

impl Committer for Echo {
    async fn commit(&self, requests: Vec<PurchaseMessage>) -> Vec<Option<Value>> {
        requests
            .into_iter()
            .map(|m| {
                Some(json!({
                    "status": 201, "outcome": "echo",
                    "client_id": m.client_id, "request_id": m.request_id,
                }))
            })
            .collect()
    }
}

impl Committer for ApiTarget {
    async fn commit(&self, requests: Vec<PurchaseMessage>) -> Vec<Option<Value>> {
        let indexed: Vec<(usize, PurchaseMessage)> = requests.into_iter().enumerate().collect();
        let mut answers = vec![None; indexed.len()];
        for (i, answer) in self.commit_batch(&indexed).await {
            answers[i] = answer;
        }
        answers
    }
}

/// The cluster as a worker sees it: an HTTP client, the configured addresses, the leader it
/// last heard of, and a session token.
struct ApiTarget {
    http: reqwest::Client,
    urls: Vec<String>,
    username: String,
    password: String,
    api_retry_ms: u64,
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
            api_retry_ms: config.api_retry_ms,
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
    async fn commit_batch(
        &self,
        requests: &[(usize, PurchaseMessage)],
    ) -> Vec<(usize, Option<Value>)> {
        let deadline = Instant::now() + Duration::from_millis(self.api_retry_ms);
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
