//! The proposer gathers concurrent commands into one Raft log entry, so that the cost of
//! consensus, replication and fsync is shared by every command in the batch.
//!
//! Batching is natural rather than timed: a loop takes the first waiting command, waits for a
//! free in-flight slot (at most `in_flight_max` batches are being committed at once), then takes
//! every other command already waiting, up to `batch_commands_max`. At low load a command goes
//! out alone at once; under load, commands pile up while the slots are busy and leave together.
//! An optional `batch_window` waits a little longer for more. The proposer stamps the batch with
//! this node's clock: the state machine never reads a clock of its own.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tix_core::{Command, Outcome};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::types::{NodeId, TixNode};
use crate::writer::Writer;

/// Why a command could not be committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ProposeError {
    /// This node is not the leader; `leader` says who is, when known.
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader's id and address, if known.
        leader: Option<(NodeId, TixNode)>,
    },
    /// Raft is shutting down or failed; the command may or may not have been committed.
    #[error("the replicated log is unavailable: {0}")]
    Unavailable(String),
    /// The queue to the proposer is full: too many commands are waiting.
    #[error("too many commands are waiting to be proposed")]
    Overloaded,
}

/// Limits of the proposer.
#[derive(Debug, Clone)]
pub struct ProposerConfig {
    /// The most commands in one log entry.
    pub batch_commands_max: usize,
    /// The most batches being committed at once.
    pub in_flight_max: usize,
    /// How long to wait for more commands after the first one of a batch (zero: do not wait).
    pub batch_window: Duration,
    /// The most commands waiting for a batch.
    pub queue_commands_max: usize,
}

impl Default for ProposerConfig {
    fn default() -> Self {
        Self {
            batch_commands_max: crate::node::defaults::BATCH_COMMANDS_MAX,
            in_flight_max: crate::node::defaults::BATCHES_IN_FLIGHT_MAX,
            batch_window: Duration::ZERO,
            queue_commands_max: 65_536,
        }
    }
}

struct Pending {
    command: Command,
    reply: oneshot::Sender<Result<Outcome, ProposeError>>,
}

/// A handle to submit commands; cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Pending>,
}

impl Proposer {
    /// Starts the batching loop on the current Tokio runtime. It stops when every handle is
    /// dropped and the queue is empty.
    pub fn start(writer: Writer, config: ProposerConfig) -> Proposer {
        let (queue, rx) = mpsc::channel(config.queue_commands_max);
        tokio::spawn(batch_loop(writer, config, rx));
        Proposer { queue }
    }

    /// Commits one command (in a batch with others) and returns its outcome.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .try_send(Pending { command, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => {
                    ProposeError::Unavailable("proposer stopped".into())
                }
            })?;
        outcome
            .await
            .unwrap_or_else(|_| Err(ProposeError::Unavailable("batch dropped".into())))
    }
}

async fn batch_loop(writer: Writer, config: ProposerConfig, mut rx: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(config.in_flight_max));
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(first) = rx.recv().await {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        if !config.batch_window.is_zero() {
            tokio::time::sleep(config.batch_window).await;
        }
        let mut pending = vec![first];
        while pending.len() < config.batch_commands_max {
            match rx.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
        let writer = writer.clone();
        let span = tracing::debug_span!("propose", commands = pending.len());
        tasks.spawn(
            async move {
                commit_batch(&writer, pending).await;
                drop(permit);
            }
            .instrument(span),
        );
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Commits one batch (here or through the leader) and hands each command its outcome.
async fn commit_batch(writer: &Writer, pending: Vec<Pending>) {
    let (commands, replies): (Vec<_>, Vec<_>) =
        pending.into_iter().map(|p| (p.command, p.reply)).unzip();
    metrics::histogram!("tix_batch_commands").record(commands.len() as f64);
    match writer.write(commands).await {
        Ok(outcomes) => {
            assert_eq!(outcomes.len(), replies.len(), "one outcome per command");
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Returns this node's wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
