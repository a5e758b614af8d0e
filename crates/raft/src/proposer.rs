//! The proposer gathers concurrent commands into one Raft log entry, so that the cost of
//! consensus, replication and fsync is shared by every command in the batch.
//!
//! Batching is natural first: a loop takes the first waiting command, waits for a free in-flight
//! slot (at most `in_flight_max` batches are being committed at once), then takes every other
//! command already waiting, up to `batch_commands_max`. At low load a command goes out alone at
//! once; under load, commands pile up while the slots are busy and leave together.
//!
//! **Linger.** Most of a log entry's cost does not depend on how many commands it carries (an
//! fsync and a history transaction on every node, four Raft RPCs), so under load fewer, fuller
//! entries sell more per CPU second. When the previous batch carried more than one command and
//! the waiting ones are fewer, the proposer waits up to `batch_linger_us` for as many as the
//! previous batch had ([`linger_target`]). A lone buyer (previous batch of one) is never kept
//! waiting; a crowd's batches keep their size instead of shrinking to whatever arrived in the
//! gap between two commits. Measured in docs/PERFORMANCE.md.
//!
//! The proposer stamps the batch with this node's clock: the state machine never reads a clock
//! of its own.

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
    /// How long a batch may wait to grow to the previous batch's size (zero: never wait).
    pub batch_linger_us: u64,
    /// The most commands waiting for a batch.
    pub queue_commands_max: usize,
}

impl Default for ProposerConfig {
    fn default() -> Self {
        Self {
            batch_commands_max: crate::node::defaults::BATCH_COMMANDS_MAX,
            in_flight_max: crate::node::defaults::BATCHES_IN_FLIGHT_MAX,
            batch_linger_us: crate::node::defaults::BATCH_LINGER_US,
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
    let slots = Arc::new(Semaphore::new(config.in_flight_max.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut previous_len = 0;
    while let Some(first) = rx.recv().await {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let pending = gather(&mut rx, first, previous_len, &config).await;
        previous_len = pending.len();
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

/// How many commands a batch should wait for, given the previous batch's size and how many it
/// has: `None` when it should leave at once (lingering is off, the previous batch was a lone
/// command, or this one is already as large).
pub fn linger_target(
    previous_len: usize,
    len: usize,
    batch_commands_max: usize,
    batch_linger_us: u64,
) -> Option<usize> {
    let target = previous_len.min(batch_commands_max);
    (batch_linger_us > 0 && previous_len > 1 && len < target).then_some(target)
}

/// Takes `first` and every command already waiting (up to `batch_commands_max`), then, if
/// [`linger_target`] says so, waits for more until the target or `batch_linger_us` is reached.
async fn gather<T>(
    rx: &mut mpsc::Receiver<T>,
    first: T,
    previous_len: usize,
    config: &ProposerConfig,
) -> Vec<T> {
    let max = config.batch_commands_max.max(1);
    let mut pending = vec![first];
    take_waiting(rx, &mut pending, max);
    let Some(target) = linger_target(previous_len, pending.len(), max, config.batch_linger_us)
    else {
        return pending;
    };
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_micros(config.batch_linger_us);
    while pending.len() < target {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(next)) => {
                pending.push(next);
                take_waiting(rx, &mut pending, max);
            }
            // The linger is over, or every handle is gone: leave with what there is.
            Ok(None) | Err(_) => break,
        }
    }
    metrics::histogram!("tix_batch_linger_seconds").record(started.elapsed().as_secs_f64());
    pending
}

/// Moves the commands already queued into `pending`, up to `max` in all.
fn take_waiting<T>(rx: &mut mpsc::Receiver<T>, pending: &mut Vec<T>, max: usize) {
    while pending.len() < max {
        match rx.try_recv() {
            Ok(next) => pending.push(next),
            Err(_) => break,
        }
    }
}

/// Commits one batch (here or through the leader) and hands each command its outcome.
async fn commit_batch(writer: &Writer, pending: Vec<Pending>) {
    let (commands, replies): (Vec<_>, Vec<_>) =
        pending.into_iter().map(|p| (p.command, p.reply)).unzip();
    metrics::histogram!("tix_batch_commands").record(commands.len() as f64);
    let started = std::time::Instant::now();
    let written = writer.write(commands).await;
    metrics::histogram!("tix_batch_commit_seconds").record(started.elapsed().as_secs_f64());
    match written {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(batch_commands_max: usize, batch_linger_us: u64) -> ProposerConfig {
        ProposerConfig {
            batch_commands_max,
            batch_linger_us,
            ..ProposerConfig::default()
        }
    }

    /// Asserts that the (paused) time since `started` is at least `from` and below `below`.
    fn assert_waited(started: tokio::time::Instant, from: Duration, below: Duration) {
        let waited = started.elapsed();
        assert!(waited >= from && waited < below, "{waited:?}");
    }

    #[test]
    fn lingers_only_after_a_batch_of_several_and_only_up_to_its_size() {
        assert_eq!(linger_target(0, 1, 2048, 2000), None, "first batch");
        assert_eq!(linger_target(1, 1, 2048, 2000), None, "a lone buyer");
        assert_eq!(linger_target(30, 1, 2048, 0), None, "linger off");
        assert_eq!(linger_target(30, 30, 2048, 2000), None, "already as large");
        assert_eq!(linger_target(30, 12, 2048, 2000), Some(30));
        assert_eq!(
            linger_target(30, 2, 16, 2000),
            Some(16),
            "capped by the batch size"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_command_leaves_at_once() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(2).await.unwrap();
        let started = tokio::time::Instant::now();
        let batch = gather(&mut rx, 1, 1, &config(2048, 2000)).await;
        assert_eq!(batch, vec![1, 2]);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_previous_size_then_leaves_without_the_rest_of_the_linger() {
        let (tx, mut rx) = mpsc::channel(16);
        let sender = tokio::spawn(async move {
            for i in 2..=5 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tx.send(i).await.unwrap();
            }
            tx
        });
        let started = tokio::time::Instant::now();
        let batch = gather(&mut rx, 1, 3, &config(2048, 5000)).await;
        assert_eq!(batch, vec![1, 2, 3], "stops at the previous batch's size");
        assert_waited(started, Duration::from_millis(2), Duration::from_millis(5));
        drop(sender);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_no_longer_than_the_linger() {
        let (tx, mut rx) = mpsc::channel::<u32>(16);
        let started = tokio::time::Instant::now();
        let batch = gather(&mut rx, 1, 30, &config(2048, 2000)).await;
        assert_eq!(batch, vec![1]);
        assert_waited(
            started,
            Duration::from_micros(2000),
            Duration::from_micros(4000),
        );
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn never_takes_more_than_the_batch_limit() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 2..=10 {
            tx.send(i).await.unwrap();
        }
        let batch = gather(&mut rx, 1, 30, &config(4, 2000)).await;
        assert_eq!(batch, vec![1, 2, 3, 4]);
        assert_eq!(
            rx.try_recv().unwrap(),
            5,
            "the rest waits for the next batch"
        );
    }
}
