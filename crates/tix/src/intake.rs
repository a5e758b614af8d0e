//! The node's RabbitMQ intake (`tix serve --amqp-url`): the purchase consumer of
//! [`tix_amqp::consumer`] running inside the node, committing through the node's own proposer
//! instead of a `tix worker` process and an HTTP hop.
//!
//! [`NodeCommitter`] sells each batch through `tix_http::sales::purchase_items` — the very code
//! behind `POST /purchases/batch` — as the account `--amqp-seller` names (`admin` by default):
//! the same authorization (organizer of the event or admin), the same rules for keys and seats,
//! the same answers. All items of a batch go to the proposer at once, so a batch of deliveries
//! (with whatever HTTP purchases wait beside them) usually becomes one log entry. On a follower
//! the proposer forwards to the leader exactly as it does for HTTP purchases. Items without a
//! definite answer (503: no leader, outcome unknown) are retried with backoff for
//! `retry_ms`, then handed back to the broker. Whoever may publish to the queue may buy as the
//! seller: the broker's credentials are the intake's authentication, as they were for the
//! workers (which log in as that account).
//!
//! The consumer subscribes with a higher priority while this node leads (see
//! `tix_amqp::consumer`, "Leader affinity"), so with the intake on every node the requests are
//! proposed on the leader, and the followers' consumers take what the leader's prefetch window
//! cannot hold, and everything after a failover until the new leader's consumer subscribes again.
//!
//! The consumer acknowledges only after the outcome is committed and its reply published, so a
//! node killed at any moment loses nothing: the broker redelivers what was unacknowledged, to
//! another node's intake or to this one restarted, and the request id replays the recorded
//! answer. While the broker is away the intake reconnects with backoff; the node keeps serving
//! HTTP meanwhile (the intake is a task of its own).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tix_amqp::{Committer, ConsumerConfig, PurchaseMessage};
use tix_http::AppState;
use tix_http::sales::{BatchItem, Seller, purchase_items};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first pause before retrying items the cluster could not answer; doubles per retry.
const RETRY_BACKOFF_FIRST_MS: u64 = 20;

/// The longest pause between retries.
const RETRY_BACKOFF_MAX_MS: u64 = 1_000;

/// How long [`Intake::stop`] waits for in-flight batches to finish before it abandons them
/// (unacknowledged: the broker redelivers them).
const STOP_WAIT_MS: u64 = 5_000;

/// Sells purchase requests on this node as one account.
pub struct NodeCommitter {
    state: AppState,
    seller: String,
    retry_ms: u64,
    leading: watch::Receiver<bool>,
}

impl NodeCommitter {
    /// Returns a committer selling as the account `seller`, retrying unanswered items for
    /// `retry_ms`.
    pub fn new(
        state: AppState,
        seller: String,
        retry_ms: u64,
        leading: watch::Receiver<bool>,
    ) -> NodeCommitter {
        NodeCommitter {
            state,
            seller,
            retry_ms,
            leading,
        }
    }

    /// Returns the seller's account as the sales code sees it, reading the state fresh when
    /// the account is not known locally yet (a follower just started).
    async fn seller(&self) -> Option<Seller> {
        let name = self.seller.as_str();
        self.state
            .read_fresh(|s| {
                s.user_by_name(name).map(|u| Seller {
                    user_id: u.id,
                    admin: u.role == tix_core::Role::Admin,
                })
            })
            .await
    }
}

impl Committer for NodeCommitter {
    fn preferred(&self) -> Option<watch::Receiver<bool>> {
        Some(self.leading.clone())
    }

    async fn commit(&self, requests: Vec<PurchaseMessage>) -> Vec<Option<Value>> {
        let deadline = Instant::now() + Duration::from_millis(self.retry_ms);
        let mut answers: Vec<Option<Value>> = vec![None; requests.len()];
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        let mut backoff = Duration::from_millis(RETRY_BACKOFF_FIRST_MS);
        loop {
            match self.seller().await {
                Some(seller) => {
                    let items = pending.iter().map(|&i| item(&requests[i])).collect();
                    let results = purchase_items(&self.state, seller, items, false).await;
                    let mut retry = Vec::new();
                    for (i, result) in pending.into_iter().zip(results) {
                        if result["status"].as_u64() == Some(503) {
                            retry.push(i);
                        } else {
                            answers[i] = Some(result);
                        }
                    }
                    pending = retry;
                }
                None => {
                    tracing::warn!(seller = %self.seller, "the intake's seller account is unknown; retrying")
                }
            }
            if pending.is_empty() {
                return answers;
            }
            if Instant::now() + backoff > deadline {
                tracing::warn!(
                    requests = pending.len(),
                    "no definite answer in time; handing back to the broker"
                );
                return answers;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(RETRY_BACKOFF_MAX_MS));
        }
    }
}

/// Returns the batch item of a message (the same fields, checked by the sales code).
fn item(m: &PurchaseMessage) -> BatchItem {
    BatchItem {
        event_id: m.event_id,
        client_id: m.client_id.clone(),
        request_id: m.request_id.clone(),
        seat: m.seat,
        admission: m.admission.clone(),
    }
}

/// Returns a watch of whether this node leads, fed from openraft's metrics by a task that
/// ends with them (when Raft stops) or when the returned handle is aborted.
fn leading(state: &AppState) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let id = state.node.id;
    let mut metrics = state.node.raft.metrics();
    let (tx, rx) = watch::channel(metrics.borrow_and_update().current_leader == Some(id));
    let task = tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let now = metrics.borrow_and_update().current_leader == Some(id);
            tx.send_if_modified(|leading| std::mem::replace(leading, now) != now);
        }
    });
    (rx, task)
}

/// The running intake: its task, the task that watches leadership, and the switch that stops
/// it.
pub struct Intake {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    leadership: JoinHandle<()>,
}

impl Intake {
    /// Starts consuming with `config`, selling through `state` as `seller`; the consumer is
    /// preferred by the broker while this node leads.
    pub fn start(config: ConsumerConfig, state: AppState, seller: String, retry_ms: u64) -> Intake {
        let (stop, stopped) = watch::channel(false);
        let (leading, leadership) = leading(&state);
        let committer = Arc::new(NodeCommitter::new(state, seller, retry_ms, leading));
        let task = tokio::spawn(async move {
            if let Err(e) = tix_amqp::consumer::run(config, committer, stopped).await {
                tracing::error!(error = %e, "the RabbitMQ intake stopped");
            }
        });
        Intake {
            stop,
            task,
            leadership,
        }
    }

    /// Stops taking deliveries, lets the batches in flight finish (committed, replied,
    /// acknowledged) for up to [`STOP_WAIT_MS`], then closes the connection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_millis(STOP_WAIT_MS), &mut task)
            .await
            .is_err()
        {
            tracing::warn!("the RabbitMQ intake did not stop in time; abandoning its batches");
            task.abort();
        }
        self.leadership.abort();
    }
}
