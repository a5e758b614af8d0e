//! The client side of the indirect architecture: publishes purchase requests to
//! [`PURCHASE_QUEUE`] and awaits each reply on a private reply queue, matched by
//! `correlation_id`.
//!
//! Requests are persistent messages on a durable queue, published with confirms: once the broker
//! confirms one, it survives a broker restart. Replies come back on an exclusive, server-named
//! queue, which does not survive the connection. So after any reconnect the requester publishes
//! every request still unanswered again — same body, same request id — and whichever answer
//! arrives first wins; the cluster's idempotency turns the repeat into a replay of the recorded
//! answer. A request unanswered for `resend_after_ms` is published again too (its reply may have
//! been lost with a worker's connection).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::{PURCHASE_QUEUE, PurchaseMessage};
use crate::worker::{declare_queue, redact};

/// Where to publish and how patient to be.
#[derive(Debug, Clone)]
pub struct RequesterConfig {
    /// The broker.
    pub amqp_url: String,
    /// The request queue.
    pub queue: String,
    /// Publish a request again when it has had no reply for this long.
    pub resend_after_ms: u64,
    /// First pause before reconnecting; doubles up to `reconnect_backoff_max_ms`.
    pub reconnect_backoff_first_ms: u64,
    /// Longest pause before reconnecting.
    pub reconnect_backoff_max_ms: u64,
}

impl Default for RequesterConfig {
    fn default() -> Self {
        Self {
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            queue: PURCHASE_QUEUE.into(),
            resend_after_ms: 30_000,
            reconnect_backoff_first_ms: 100,
            reconnect_backoff_max_ms: 2_000,
        }
    }
}

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No reply within the caller's timeout.
    #[error("no reply within {0} ms")]
    Timeout(u64),
    /// The requester was shut down.
    #[error("the requester stopped")]
    Stopped,
}

struct Entry {
    body: Arc<Vec<u8>>,
    reply: Option<oneshot::Sender<Value>>,
    sent_at: Instant,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<HashMap<String, Entry>>,
    next_id: AtomicU64,
    reconnects: AtomicU64,
    resends: AtomicU64,
}

/// Publishes requests and awaits replies. Cheap to clone; the connection lives in a background
/// task that stops when the last clone is dropped.
#[derive(Clone)]
pub struct Requester {
    shared: Arc<Shared>,
    publish: mpsc::UnboundedSender<String>,
}

impl Requester {
    /// Starts the background connection task. Connection problems are retried forever; a
    /// request waits (up to its timeout) until the broker is back.
    pub fn start(config: RequesterConfig) -> Requester {
        let shared = Arc::new(Shared::default());
        let (publish, rx) = mpsc::unbounded_channel();
        tokio::spawn(drive(config, shared.clone(), rx));
        Requester { shared, publish }
    }

    /// Publishes `message` and returns the reply's JSON body (with `status`).
    pub async fn request(
        &self,
        message: &PurchaseMessage,
        timeout: Duration,
    ) -> Result<Value, RequestError> {
        let body = serde_json::to_vec(message).expect("a message serializes");
        self.request_body(body, timeout).await
    }

    /// Publishes `body` as it is (tests send malformed ones) and returns the reply's JSON body.
    pub async fn request_body(
        &self,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Value, RequestError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let correlation = format!("c{id}");
        let (reply, answer) = oneshot::channel();
        self.shared.pending.lock().expect("not poisoned").insert(
            correlation.clone(),
            Entry {
                body: Arc::new(body),
                reply: Some(reply),
                sent_at: Instant::now(),
            },
        );
        self.publish
            .send(correlation.clone())
            .map_err(|_| RequestError::Stopped)?;
        let result = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(RequestError::Stopped),
            Err(_) => Err(RequestError::Timeout(timeout.as_millis() as u64)),
        };
        self.shared
            .pending
            .lock()
            .expect("not poisoned")
            .remove(&correlation);
        result
    }

    /// Returns how many times the connection was re-established and requests published again
    /// because their reply was overdue.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.shared.reconnects.load(Ordering::Relaxed),
            self.shared.resends.load(Ordering::Relaxed),
        )
    }
}

async fn drive(
    config: RequesterConfig,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Duration::from_millis(config.reconnect_backoff_first_ms);
    let mut first = true;
    loop {
        if !first {
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        match session(&config, &shared, &mut rx).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(broker = %redact(&config.amqp_url), error = %e, "requester connection lost; reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(config.reconnect_backoff_max_ms));
            }
        }
    }
}

/// A publish awaiting the broker's confirmation.
type PendingConfirm = BoxFuture<'static, (String, lapin::Result<Confirmation>)>;

/// Publishes the request `correlation` (if still unanswered) and returns its confirmation.
async fn publish(
    channel: &Channel,
    config: &RequesterConfig,
    shared: &Shared,
    reply_to: &str,
    correlation: String,
) -> lapin::Result<Option<PendingConfirm>> {
    let body = {
        let mut pending = shared.pending.lock().expect("not poisoned");
        match pending.get_mut(&correlation) {
            Some(entry) => {
                entry.sent_at = Instant::now();
                entry.body.clone()
            }
            None => return Ok(None),
        }
    };
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_reply_to(reply_to.into())
        .with_correlation_id(correlation.as_str().into());
    let confirm = channel
        .basic_publish(
            "".into(),
            config.queue.as_str().into(),
            BasicPublishOptions::default(),
            &body,
            properties,
        )
        .await?;
    Ok(Some(Box::pin(async move { (correlation, confirm.await) })))
}

async fn session(
    config: &RequesterConfig,
    shared: &Shared,
    rx: &mut mpsc::UnboundedReceiver<String>,
) -> lapin::Result<()> {
    let connection = Connection::connect(
        &config.amqp_url,
        ConnectionProperties::default().with_connection_name("tix-requester".into()),
    )
    .await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    declare_queue(&channel, &config.queue).await?;
    let reply_queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let reply_to = reply_queue.name().as_str().to_owned();
    let mut replies = channel
        .basic_consume(
            reply_to.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    // Whatever was queued while disconnected is covered by publishing everything pending.
    while rx.try_recv().is_ok() {}
    let mut confirms = FuturesUnordered::new();
    let unanswered: Vec<String> = shared
        .pending
        .lock()
        .expect("not poisoned")
        .keys()
        .cloned()
        .collect();
    for correlation in unanswered {
        if let Some(confirm) = publish(&channel, config, shared, &reply_to, correlation).await? {
            confirms.push(confirm);
        }
    }
    let mut tick = tokio::time::interval(Duration::from_millis(
        config.resend_after_ms.clamp(100, 5_000),
    ));
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(correlation) = next else { return Ok(()) };
                if let Some(confirm) = publish(&channel, config, shared, &reply_to, correlation).await? {
                    confirms.push(confirm);
                }
            }
            Some((correlation, confirmation)) = confirms.next(), if !confirms.is_empty() => {
                if let Confirmation::Nack(_) = confirmation? {
                    tracing::warn!(%correlation, "the broker refused a request; publishing it again");
                    if let Some(confirm) = publish(&channel, config, shared, &reply_to, correlation).await? {
                        confirms.push(confirm);
                    }
                }
            }
            delivery = replies.next() => {
                let delivery = match delivery {
                    Some(d) => d?,
                    None => return Err(lapin::ErrorKind::InvalidChannelState(
                        lapin::ChannelState::Closed, "reply consumer cancelled").into()),
                };
                let Some(correlation) = delivery.properties.correlation_id() else { continue };
                let reply = shared
                    .pending
                    .lock()
                    .expect("not poisoned")
                    .get_mut(correlation.as_str())
                    .and_then(|entry| entry.reply.take());
                if let Some(reply) = reply {
                    let value = serde_json::from_slice(&delivery.data).unwrap_or_else(|e| {
                        serde_json::json!({"status": 0, "detail": format!("unreadable reply: {e}")})
                    });
                    let _ = reply.send(value);
                }
            }
            _ = tick.tick() => {
                let overdue: Vec<String> = {
                    let pending = shared.pending.lock().expect("not poisoned");
                    let limit = Duration::from_millis(config.resend_after_ms);
                    pending
                        .iter()
                        .filter(|(_, e)| e.reply.is_some() && e.sent_at.elapsed() >= limit)
                        .map(|(c, _)| c.clone())
                        .collect()
                };
                for correlation in overdue {
                    shared.resends.fetch_add(1, Ordering::Relaxed);
                    if let Some(confirm) = publish(&channel, config, shared, &reply_to, correlation).await? {
                        confirms.push(confirm);
                    }
                }
            }
        }
    }
}
