//! The purchase consumer both intakes share — `tix worker` (commits over HTTP) and a node's
//! in-process intake (`tix serve --amqp-url`, proposes to its own log) — around a
//! [`Committer`], the one thing that differs between them.
//!
//! One session is one connection and one channel with a prefetch window. Deliveries are grouped
//! naturally (the first one waits; every delivery already buffered joins it, up to
//! `batch_max`), and up to `batches_in_flight_max` batches are worked on at once. The committer
//! answers a batch; each answer is published to its `reply_to` under the request's
//! `correlation_id` (the batch's replies handed to the connection together, then awaited
//! together), and only then is the request acknowledged — in bulk, up to the highest
//! delivery below which everything has finished ([`AckTracker`]). A body that is not a purchase
//! request is answered with a 400 naming what is wrong ([`malformed_reply`]) and acknowledged:
//! it never reaches the committer and never comes back.
//!
//! **Replies and publisher confirms.** With `reply_confirms` off (the default) a reply is
//! published and the request acknowledged without waiting for the broker to confirm the reply.
//! That is safe because a reply is only a copy of an answer the log has already recorded: the
//! sale and the idempotency record were committed in one entry before the reply was written.
//! The reply and the acknowledgement travel in order on one channel, so the broker has the
//! reply before it sees the ack; if the broker loses it anyway (it crashes, the reply queue is
//! gone), the requester never hears back, publishes the request again under the same request
//! id after a reconnect or its resend timeout, and the repeat is answered from the record —
//! the same ticket, nothing sold twice. A confirm would only say the broker *received* the
//! reply, never that the client read it, so it buys no guarantee the resend does not already
//! give, and it costs a broker round trip per batch. `reply_confirms: true` keeps the earlier
//! behaviour (a nacked reply sends its request back to the queue).
//!
//! **Leader affinity.** A committer may say it is preferred ([`Committer::preferred`]: a node's
//! intake while its node leads). The consumer then subscribes with a consumer priority
//! (`x-priority` [`PRIORITY_PREFERRED`], else 0): the broker gives deliveries to the preferred
//! consumer while it has room in its prefetch window, and to the others only beyond that — so
//! requests are proposed where they commit, without a forwarding hop, and when leadership
//! moves the consumer finishes its batches in flight and subscribes again with its new
//! priority. Every consumer stays subscribed, so nothing waits for an election to be consumed
//! somewhere, and any of them may take any request.
//!
//! Requests the committer cannot answer definitely (`None`: no leader, outcome unknown) are
//! handed back to the broker (`basic.nack` with requeue). A lost broker connection ends the
//! session; [`run`] reconnects with exponential backoff, and the broker redelivers whatever
//! was not acknowledged.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::ack::AckTracker;
use crate::protocol::{PURCHASE_QUEUE, PurchaseMessage, malformed_reply};

/// The largest batch a consumer takes (the batch endpoint's limit, and the proposer's).
pub const BATCH_MAX_LIMIT: usize = 512;

/// The most batches a consumer works on at once.
pub const BATCHES_IN_FLIGHT_MAX_LIMIT: usize = 64;

/// The consumer priority (`x-priority`) of a preferred consumer; others have 0.
pub const PRIORITY_PREFERRED: i32 = 10;

/// How long connecting to the broker may take.
const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// A session that lasted this long resets the reconnect backoff.
const SESSION_HEALTHY_MS: u64 = 10_000;

/// How a consumer connects and how much it takes on at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The broker, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// The queue to consume.
    pub queue: String,
    /// Unacknowledged deliveries the broker may send ahead (`basic.qos`).
    pub prefetch: u16,
    /// The most requests in one batch.
    pub batch_max: usize,
    /// How long to wait for more deliveries after the first of a batch (zero: do not wait).
    pub batch_wait_ms: u64,
    /// Batches being committed at once.
    pub batches_in_flight_max: usize,
    /// First pause before reconnecting to the broker; doubles up to `reconnect_backoff_max_ms`.
    pub reconnect_backoff_first_ms: u64,
    /// Longest pause before reconnecting.
    pub reconnect_backoff_max_ms: u64,
    /// Wait for the broker's confirm of each reply before acknowledging its request (see the
    /// module comment for why the default is not to).
    pub reply_confirms: bool,
    /// The connection's name in the broker's management view.
    pub connection_name: String,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            queue: PURCHASE_QUEUE.into(),
            prefetch: 1024,
            batch_max: 256,
            batch_wait_ms: 0,
            batches_in_flight_max: 4,
            reconnect_backoff_first_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            reply_confirms: false,
            connection_name: "tix-consumer".into(),
        }
    }
}

impl ConsumerConfig {
    /// Checks the limits before anything connects; the message names the flag (`prefix` is
    /// `--` for `tix worker`, `--amqp-` for `tix serve`).
    pub fn validate(&self, prefix: &str) -> Result<(), ConsumerError> {
        let bad = |what: String| Err(ConsumerError::Config(what));
        if self.prefetch == 0 {
            return bad(format!("{prefix}prefetch must be at least 1"));
        }
        if !(1..=BATCH_MAX_LIMIT).contains(&self.batch_max) {
            return bad(format!("{prefix}batch-max must be 1..={BATCH_MAX_LIMIT}"));
        }
        if !(1..=BATCHES_IN_FLIGHT_MAX_LIMIT).contains(&self.batches_in_flight_max) {
            return bad(format!(
                "{prefix}batches-in-flight must be 1..={BATCHES_IN_FLIGHT_MAX_LIMIT}"
            ));
        }
        if self.batch_wait_ms > 1000 {
            return bad(format!("{prefix}batch-wait-ms must be at most 1000"));
        }
        if self.queue.is_empty() || self.queue.len() > 255 {
            return bad(format!("{prefix}queue must be 1 to 255 bytes"));
        }
        if self.reconnect_backoff_first_ms == 0
            || self.reconnect_backoff_first_ms > self.reconnect_backoff_max_ms
        {
            return bad("the reconnect backoff must be positive and first ≤ max".into());
        }
        Ok(())
    }
}

/// Why a consumer stopped or a session ended.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The configuration is unusable.
    #[error("invalid consumer configuration: {0}")]
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
    /// A batch's task panicked or was cancelled.
    #[error("a batch task failed: {0}")]
    Task(String),
}

/// What answers the purchase requests of one batch.
pub trait Committer: Send + Sync + 'static {
    /// Commits `requests` and returns one answer per request, in order: the reply body
    /// (`status` plus what the HTTP API would answer), or `None` when there is no definite
    /// answer (not committed, or the outcome unknown), and the request goes back to the broker.
    fn commit(
        &self,
        requests: Vec<PurchaseMessage>,
    ) -> impl Future<Output = Vec<Option<Value>>> + Send;

    /// Returns whether this consumer should be preferred by the broker now, and its changes
    /// (a node's intake: while the node leads); `None` (the default): no preference.
    fn preferred(&self) -> Option<watch::Receiver<bool>> {
        None
    }
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

/// Runs the consumer until `shutdown` turns true: sessions with reconnects (exponential
/// backoff) in between. Returns an error only for a problem that reconnecting cannot fix.
pub async fn run<C: Committer>(
    config: ConsumerConfig,
    committer: Arc<C>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConsumerError> {
    config.validate("--")?;
    let backoff_first = Duration::from_millis(config.reconnect_backoff_first_ms);
    let mut backoff = backoff_first;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let started = Instant::now();
        match session(&config, &committer, &mut shutdown).await {
            Ok(SessionEnd::Shutdown) => return Ok(()),
            Ok(SessionEnd::Resubscribe) => backoff = backoff_first,
            Err(e @ (ConsumerError::Config(_) | ConsumerError::Task(_))) => return Err(e),
            Err(e) => {
                if started.elapsed() > Duration::from_millis(SESSION_HEALTHY_MS) {
                    backoff = backoff_first;
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "consumer session ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_millis(config.reconnect_backoff_max_ms));
            }
        }
    }
}

/// Why a session ended without an error.
enum SessionEnd {
    /// The consumer was shut down.
    Shutdown,
    /// The committer's preference changed: subscribe again with the new priority.
    Resubscribe,
}

/// Waits until the preference changes (forever when there is none, or its sender is gone).
async fn preference_changed(preferred: &mut Option<watch::Receiver<bool>>) -> bool {
    match preferred {
        Some(rx) => match rx.changed().await {
            Ok(()) => *rx.borrow_and_update(),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// How one delivery ended.
enum Disposition {
    /// Replied (or no reply wanted): acknowledge.
    Done(u64),
    /// Not answered: hand back to the broker for another try.
    Requeue(u64),
}

/// One connection's life: consume, work, reply, acknowledge, until the connection fails or the
/// consumer is shut down (then in-flight batches finish first).
async fn session<C: Committer>(
    config: &ConsumerConfig,
    committer: &Arc<C>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<SessionEnd, ConsumerError> {
    let url = redact(&config.amqp_url);
    let mut preferred = committer.preferred();
    let preferred_now = preferred.as_mut().map(|rx| *rx.borrow_and_update());
    let broker = |source| ConsumerError::Broker {
        url: url.clone(),
        source,
    };
    let connection = tokio::time::timeout(
        Duration::from_millis(CONNECT_TIMEOUT_MS),
        Connection::connect(
            &config.amqp_url,
            ConnectionProperties::default()
                .with_connection_name(config.connection_name.as_str().into()),
        ),
    )
    .await
    .map_err(|_| ConsumerError::BrokerTimeout(url.clone(), CONNECT_TIMEOUT_MS))?
    .map_err(broker)?;
    let channel = connection.create_channel().await.map_err(broker)?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await
        .map_err(broker)?;
    if config.reply_confirms {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker)?;
    }
    declare_queue(&channel, &config.queue)
        .await
        .map_err(broker)?;
    let mut arguments = FieldTable::default();
    if let Some(preferred) = preferred_now {
        let priority = if preferred { PRIORITY_PREFERRED } else { 0 };
        arguments.insert("x-priority".into(), AMQPValue::LongInt(priority));
    }
    let mut consumer = channel
        .basic_consume(
            config.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            arguments,
        )
        .await
        .map_err(broker)?;
    tracing::info!(broker = %url, queue = %config.queue, name = %config.connection_name,
        preferred = ?preferred_now, "consuming purchase requests");

    let mut tracker = AckTracker::new();
    let mut batches: JoinSet<Result<Vec<Disposition>, lapin::Error>> = JoinSet::new();
    let mut draining = false;
    let mut end = SessionEnd::Shutdown;
    loop {
        if draining && batches.is_empty() {
            // Deliveries taken but not started go back to the queue with the channel.
            let _ = channel.close(200, "consumer leaving".into()).await;
            let _ = connection.close(200, "consumer leaving".into()).await;
            return Ok(end);
        }
        let room = !draining && batches.len() < config.batches_in_flight_max;
        tokio::select! {
            _ = shutdown.changed(), if !draining => {
                draining = true;
                end = SessionEnd::Shutdown;
            }
            now = preference_changed(&mut preferred), if !draining => {
                if Some(now) != preferred_now {
                    tracing::info!(preferred = now, "preference changed; subscribing again");
                    draining = true;
                    end = SessionEnd::Resubscribe;
                }
            }
            Some(done) = batches.join_next(), if !batches.is_empty() => {
                let dispositions = done
                    .map_err(|e| ConsumerError::Task(e.to_string()))?
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
                    None => return Err(ConsumerError::ConsumerCancelled),
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
                let span = tracing::debug_span!("consumer_step", deliveries = batch.len());
                batches.spawn(
                    work(committer.clone(), channel.clone(), batch, config.reply_confirms)
                        .instrument(span),
                );
            }
        }
    }
}

/// Answers one batch: read each body, commit the readable ones, publish the replies, and say
/// how each delivery ended.
async fn work<C: Committer>(
    committer: Arc<C>,
    channel: Channel,
    batch: Vec<Delivery>,
    reply_confirms: bool,
) -> Result<Vec<Disposition>, lapin::Error> {
    let bodies: Vec<&[u8]> = batch.iter().map(|d| d.data.as_slice()).collect();
    let answers = answer_batch(committer.as_ref(), &bodies).await;
    let mut publishes = Vec::new();
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
        let channel = &channel;
        publishes.push(async move {
            let confirm = channel
                .basic_publish(
                    "".into(),
                    reply_to,
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    properties,
                )
                .await?;
            Ok::<_, lapin::Error>((tag, confirm))
        });
        dispositions.push(Disposition::Done(tag));
    }
    // Every reply of the batch is handed to the connection before any is waited for, so the
    // connection's I/O thread writes them together instead of waking once per reply. They
    // are all written before the batch's deliveries are acknowledged (by the caller).
    let published = futures::future::try_join_all(publishes).await?;
    if !reply_confirms {
        return Ok(dispositions);
    }
    for (tag, confirm) in published {
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

/// The step function: message bodies in, one answer each out (`None`: hand back). Malformed
/// bodies are answered here with a 400 naming what is wrong and never reach the committer;
/// tests call this without a broker.
pub async fn answer_batch<C: Committer>(committer: &C, bodies: &[&[u8]]) -> Vec<Option<Value>> {
    let mut answers: Vec<Option<Value>> = vec![None; bodies.len()];
    let mut readable = Vec::new();
    let mut requests = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        match PurchaseMessage::decode(body) {
            Ok(m) => {
                readable.push(i);
                requests.push(m);
            }
            Err(detail) => answers[i] = Some(malformed_reply(&detail)),
        }
    }
    if !requests.is_empty() {
        let count = requests.len();
        let committed = committer.commit(requests).await;
        assert_eq!(committed.len(), count, "a committer answers every request");
        for (i, answer) in readable.into_iter().zip(committed) {
            answers[i] = answer;
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Answers every request sold, or not at all for request ids starting with `unknown`.
    struct Fixed;

    impl Committer for Fixed {
        async fn commit(&self, requests: Vec<PurchaseMessage>) -> Vec<Option<Value>> {
            requests
                .into_iter()
                .map(|m| {
                    (!m.request_id.starts_with("unknown"))
                        .then(|| json!({"status": 201, "request_id": m.request_id}))
                })
                .collect()
        }
    }

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

    // A batch mixing good, malformed and unanswerable bodies gets each answer in its place:
    // the malformed ones a 400 naming the problem, without reaching the committer.
    #[tokio::test]
    async fn answers_each_body_in_place() {
        let bodies: [&[u8]; 4] = [
            br#"{"event_id":1,"client_id":"a","request_id":"r1"}"#,
            b"not json",
            br#"{"event_id":1,"client_id":"a","request_id":"unknown-2"}"#,
            br#"{"event_id":1,"client_id":"a"}"#,
        ];
        let answers = answer_batch(&Fixed, &bodies).await;
        assert_eq!(answers[0].as_ref().unwrap()["request_id"], "r1");
        assert_eq!(answers[1].as_ref().unwrap()["status"], 400);
        assert!(answers[2].is_none(), "no definite answer: handed back");
        let missing = answers[3].as_ref().unwrap();
        assert_eq!(missing["status"], 400);
        assert!(
            missing["detail"].as_str().unwrap().contains("request_id"),
            "{missing}"
        );
    }

    // Each limit is checked from both sides, with a message naming the flag.
    #[test]
    fn validates_limits() {
        let ok = ConsumerConfig::default();
        ok.validate("--").unwrap();
        let with = |f: fn(&mut ConsumerConfig)| {
            let mut c = ConsumerConfig::default();
            f(&mut c);
            c.validate("--amqp-").map_err(|e| e.to_string())
        };
        assert!(with(|c| c.batch_max = BATCH_MAX_LIMIT).is_ok());
        assert!(
            with(|c| c.batch_max = BATCH_MAX_LIMIT + 1)
                .unwrap_err()
                .contains("--amqp-batch-max")
        );
        assert!(with(|c| c.prefetch = 1).is_ok());
        assert!(
            with(|c| c.prefetch = 0)
                .unwrap_err()
                .contains("--amqp-prefetch")
        );
        assert!(with(|c| c.batches_in_flight_max = BATCHES_IN_FLIGHT_MAX_LIMIT).is_ok());
        assert!(
            with(|c| c.batches_in_flight_max = BATCHES_IN_FLIGHT_MAX_LIMIT + 1)
                .unwrap_err()
                .contains("--amqp-batches-in-flight")
        );
        assert!(with(|c| c.queue.clear()).unwrap_err().contains("queue"));
    }
}
