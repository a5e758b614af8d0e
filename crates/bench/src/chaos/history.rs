//! The history of a chaos run: every purchase a client invoked, each attempt it made (which node,
//! when, what it heard) and how the operation completed, plus every fault the nemesis injected.
//!
//! Times are milliseconds since the run started, from one monotonic clock in this process, so
//! "A completed before B was invoked" can be compared across clients. The checker reads nothing
//! else about the run: it is a pure function of this history and the final state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Milliseconds since the start of a run, from a monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Starts a clock at zero now.
    pub fn start() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Returns the milliseconds elapsed since the clock started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Returns the instant `ms` milliseconds after the clock started.
    pub fn instant_at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }
}

/// The idempotency key of a purchase: a retry reuses it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RequestKey {
    /// The buyer's client id.
    pub client_id: String,
    /// The client's id for this request.
    pub request_id: String,
}

/// One purchase a client wants to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Op {
    /// Its idempotency key, unique in the run.
    pub key: RequestKey,
    /// The event it buys for.
    pub event_id: u64,
    /// The seat asked for (numbered events); `None` takes any ticket.
    pub seat: Option<u32>,
}

/// A ticket as a 201 answer or a sales-export line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ticket {
    /// The ticket id (assigned from one counter, in log order).
    pub ticket_id: u64,
    /// The seat, for a numbered event.
    pub seat: Option<u32>,
}

/// What one HTTP attempt of a purchase heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttemptResult {
    /// 201: sold; `replayed` is the `Idempotent-Replayed` header.
    Sold {
        /// The ticket named by the answer.
        ticket: Ticket,
        /// True if the node answered from the idempotency record.
        replayed: bool,
    },
    /// 409: a definite refusal (`sold_out`, `seat_taken`).
    Refused {
        /// The rejection's stable code.
        reason: String,
    },
    /// 503: no leader, overloaded or timed out inside the node; the outcome is unknown.
    Unavailable,
    /// No answer within the attempt's time limit; the outcome is unknown.
    Timeout,
    /// The connection was refused or broke; the outcome is unknown.
    ConnectionError,
    /// Any other status (401/404 from a follower that has not applied the session or event
    /// yet, 5xx...); the outcome is unknown.
    OtherStatus {
        /// The HTTP status.
        status: u16,
    },
    /// A 201 whose body does not name this request or has no ticket: a protocol violation.
    Malformed {
        /// What was wrong.
        detail: String,
    },
}

impl AttemptResult {
    /// Returns true if this answer settles the operation (sold or refused).
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            AttemptResult::Sold { .. } | AttemptResult::Refused { .. }
        )
    }

    /// Returns a short label for tallies: `201`, `409`, `503`, `timeout`, `connection`...
    pub fn label(&self) -> String {
        match self {
            AttemptResult::Sold {
                replayed: false, ..
            } => "201".into(),
            AttemptResult::Sold { replayed: true, .. } => "201 replayed".into(),
            AttemptResult::Refused { .. } => "409".into(),
            AttemptResult::Unavailable => "503".into(),
            AttemptResult::Timeout => "timeout".into(),
            AttemptResult::ConnectionError => "connection error".into(),
            AttemptResult::OtherStatus { status } => status.to_string(),
            AttemptResult::Malformed { .. } => "malformed 201".into(),
        }
    }
}

/// One HTTP attempt of a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The node it was sent to.
    pub node: u64,
    /// When it was sent.
    pub started_ms: u64,
    /// When its answer (or error) arrived.
    pub finished_ms: u64,
    /// What it heard.
    pub result: AttemptResult,
}

/// How an operation ended: what its last attempt said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Completion {
    /// Acknowledged with a ticket (201).
    Ok {
        /// The ticket named by the answer.
        ticket: Ticket,
    },
    /// Definitely refused (409).
    Fail {
        /// The rejection's stable code (`sold_out`, `seat_taken`).
        reason: String,
    },
    /// No definite answer within the retry bound: it may or may not have been sold.
    Indeterminate,
}

/// One operation from invocation to completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpRecord {
    /// What was asked.
    pub op: Op,
    /// When the client invoked it (before its first attempt).
    pub invoked_ms: u64,
    /// When the client stopped waiting for it (after its last attempt).
    pub completed_ms: u64,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// How it ended.
    pub completion: Completion,
}

impl OpRecord {
    /// Returns the completion the attempts imply: the last attempt's definite answer, or
    /// indeterminate if the last attempt had none.
    pub fn completion_of(attempts: &[Attempt]) -> Completion {
        match attempts.last().map(|a| &a.result) {
            Some(AttemptResult::Sold { ticket, .. }) => Completion::Ok { ticket: *ticket },
            Some(AttemptResult::Refused { reason }) => Completion::Fail {
                reason: reason.clone(),
            },
            _ => Completion::Indeterminate,
        }
    }
}

/// The kinds of fault the nemesis injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL of the leader, restarted after a while.
    KillLeader,
    /// SIGKILL of a random minority, restarted after a while.
    KillMinority,
    /// SIGSTOP of the leader for longer than the election timeout, then SIGCONT.
    PauseLeader,
    /// The leader cut off in a minority, then healed.
    PartitionLeader,
    /// Every node restarted in turn (SIGKILL and start), waiting for a leader in between.
    RollingRestart,
    /// SIGKILL of every node, then all started again.
    FullCrash,
}

impl FaultKind {
    /// Every kind, in report order.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::KillLeader,
        FaultKind::KillMinority,
        FaultKind::PauseLeader,
        FaultKind::PartitionLeader,
        FaultKind::RollingRestart,
        FaultKind::FullCrash,
    ];

    /// Returns the kind's name as printed.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillLeader => "kill-leader",
            FaultKind::KillMinority => "kill-minority",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::RollingRestart => "rolling-restart",
            FaultKind::FullCrash => "full-crash",
        }
    }
}

/// One fault as it was injected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// What kind of fault.
    pub kind: FaultKind,
    /// The nodes it hit (the leader, the minority, every node...).
    pub nodes: Vec<u64>,
    /// When it started.
    pub started_ms: u64,
    /// When the nemesis began to heal it.
    pub healing_ms: u64,
    /// When a leader was agreed and every node answered again, if that happened in time.
    pub recovered_ms: Option<u64>,
    /// Why the fault could not be injected as planned (no leader to target, a restarted node
    /// that did not come back in time...), if it could not.
    pub error: Option<String>,
}

/// Everything a run recorded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    /// Every operation, in invocation order.
    pub ops: Vec<OpRecord>,
    /// Every fault, in order.
    pub faults: Vec<FaultRecord>,
}

/// Operation counts by completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// All operations.
    pub total: usize,
    /// Acknowledged (201).
    pub ok: usize,
    /// Definitely refused (409).
    pub fail: usize,
    /// Unknown outcome.
    pub indeterminate: usize,
}

impl History {
    /// Counts the operations by how they completed.
    pub fn counts(&self) -> OpCounts {
        let mut counts = OpCounts {
            total: self.ops.len(),
            ..OpCounts::default()
        };
        for record in &self.ops {
            match record.completion {
                Completion::Ok { .. } => counts.ok += 1,
                Completion::Fail { .. } => counts.fail += 1,
                Completion::Indeterminate => counts.indeterminate += 1,
            }
        }
        counts
    }

    /// Counts every attempt by what it heard (`201`, `503`, `timeout`...).
    pub fn attempt_tally(&self) -> BTreeMap<String, usize> {
        let mut tally = BTreeMap::new();
        for attempt in self.ops.iter().flat_map(|r| &r.attempts) {
            *tally.entry(attempt.result.label()).or_default() += 1;
        }
        tally
    }

    /// Counts the faults by kind.
    pub fn fault_counts(&self) -> BTreeMap<FaultKind, usize> {
        let mut counts = BTreeMap::new();
        for fault in &self.faults {
            *counts.entry(fault.kind).or_default() += 1;
        }
        counts
    }

    /// Returns when the first sale sent after `since_ms` was acknowledged (strictly after: an
    /// attempt sent within the same millisecond may have beaten the fault).
    pub fn first_sale_sent_after(&self, since_ms: u64) -> Option<u64> {
        self.ops
            .iter()
            .flat_map(|r| &r.attempts)
            .filter(|a| a.started_ms > since_ms && matches!(a.result, AttemptResult::Sold { .. }))
            .map(|a| a.finished_ms)
            .min()
    }

    /// Returns, per fault kind, how long after each fault started the first sale sent after it
    /// was acknowledged (the window in which no new purchase could succeed).
    pub fn failover_times(&self) -> BTreeMap<FaultKind, Vec<Duration>> {
        let mut times: BTreeMap<FaultKind, Vec<Duration>> = BTreeMap::new();
        for fault in &self.faults {
            if let Some(sold_ms) = self.first_sale_sent_after(fault.started_ms) {
                let delay = Duration::from_millis(sold_ms - fault.started_ms);
                times.entry(fault.kind).or_default().push(delay);
            }
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(started_ms: u64, finished_ms: u64, result: AttemptResult) -> Attempt {
        Attempt {
            node: 1,
            started_ms,
            finished_ms,
            result,
        }
    }

    fn sold(ticket_id: u64) -> AttemptResult {
        AttemptResult::Sold {
            ticket: Ticket {
                ticket_id,
                seat: None,
            },
            replayed: false,
        }
    }

    /// The completion is what the last attempt said; an unknown last attempt is indeterminate.
    #[test]
    fn completion_is_the_last_attempts_answer() {
        let timeout = attempt(0, 5, AttemptResult::Timeout);
        assert_eq!(OpRecord::completion_of(&[]), Completion::Indeterminate);
        assert_eq!(
            OpRecord::completion_of(std::slice::from_ref(&timeout)),
            Completion::Indeterminate
        );
        let ok = OpRecord::completion_of(&[timeout.clone(), attempt(6, 7, sold(3))]);
        assert!(matches!(ok, Completion::Ok { ticket } if ticket.ticket_id == 3));
        let refused = AttemptResult::Refused {
            reason: "seat_taken".into(),
        };
        let fail = OpRecord::completion_of(&[timeout, attempt(6, 7, refused)]);
        assert_eq!(
            fail,
            Completion::Fail {
                reason: "seat_taken".into()
            }
        );
    }

    /// Failover is measured to the first 201 of an attempt sent after the fault, not to a 201
    /// that was already on its way.
    #[test]
    fn failover_counts_only_attempts_sent_after_the_fault() {
        let op = |attempts: Vec<Attempt>| OpRecord {
            op: Op {
                key: RequestKey {
                    client_id: "c".into(),
                    request_id: "r".into(),
                },
                event_id: 1,
                seat: None,
            },
            invoked_ms: attempts[0].started_ms,
            completed_ms: attempts.last().unwrap().finished_ms,
            completion: OpRecord::completion_of(&attempts),
            attempts,
        };
        let history = History {
            ops: vec![
                op(vec![attempt(90, 120, sold(1))]),
                op(vec![
                    attempt(100, 110, AttemptResult::Unavailable),
                    attempt(300, 2100, sold(2)),
                ]),
                op(vec![attempt(2500, 2600, sold(3))]),
            ],
            faults: vec![FaultRecord {
                kind: FaultKind::KillLeader,
                nodes: vec![1],
                started_ms: 100,
                healing_ms: 1000,
                recovered_ms: Some(1500),
                error: None,
            }],
        };
        assert_eq!(history.first_sale_sent_after(100), Some(2100));
        let times = history.failover_times();
        assert_eq!(
            times[&FaultKind::KillLeader],
            vec![Duration::from_millis(2000)]
        );
        assert_eq!(history.counts().ok, 3);
    }
}
