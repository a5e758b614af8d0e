//! The verdict of a chaos run: a pure function of the history (what clients invoked and heard,
//! which faults were injected) and the final state (the linearizable sales export and
//! availability of each event, and each replica's applied index and state digest).
//!
//! A purchase completed `ok` was acknowledged and must be in the final state exactly as the
//! answer named it; one completed `fail` was definitely refused and must not be; an
//! `indeterminate` one may or may not be. There are no refunds, so a seat once sold stays sold:
//! that lets each refusal be explained by the final state, and lets real time order the tickets
//! (ticket ids come from one counter, in log order).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::history::{AttemptResult, Completion, History, OpRecord, RequestKey, Ticket};

/// The most violations listed per check (the count is always complete).
const EXAMPLES_MAX: usize = 10;

/// One line of `GET /api/v1/events/{id}/sales`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SaleLine {
    /// The ticket.
    pub ticket_id: u64,
    /// The buyer's client id.
    pub client_id: String,
    /// The request that bought it.
    pub request_id: String,
    /// The seat, for a numbered event.
    pub seat: Option<u32>,
}

impl SaleLine {
    /// Returns the idempotency key that bought this ticket.
    pub fn key(&self) -> RequestKey {
        RequestKey {
            client_id: self.client_id.clone(),
            request_id: self.request_id.clone(),
        }
    }

    fn ticket(&self) -> Ticket {
        Ticket {
            ticket_id: self.ticket_id,
            seat: self.seat,
        }
    }
}

/// `GET /api/v1/events/{id}/availability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Availability {
    /// Tickets that can ever be sold.
    pub capacity: u32,
    /// Sold and not refunded.
    pub sold: u32,
    /// In active holds.
    pub held: u32,
    /// On sale now.
    pub available: u32,
}

/// One event as the run created it and as the cluster ended.
#[derive(Debug, Clone)]
pub struct EventState {
    /// The event id.
    pub event_id: u64,
    /// A label for the report (`unnumbered`, `numbered`).
    pub label: String,
    /// True for numbered seats (every ticket has a seat).
    pub numbered: bool,
    /// The capacity the run created it with.
    pub capacity: u32,
    /// Its final availability.
    pub availability: Availability,
    /// Its final sales export.
    pub sales: Vec<SaleLine>,
}

/// One replica's final position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// The node id.
    pub node: u64,
    /// Its last applied log index, if it answered.
    pub last_applied: Option<u64>,
    /// Its state digest, if it answered.
    pub digest: Option<String>,
}

/// The state of the cluster after the run, read through the leader once every node converged.
#[derive(Debug, Clone)]
pub struct FinalState {
    /// The events of the run.
    pub events: Vec<EventState>,
    /// Every replica.
    pub replicas: Vec<ReplicaState>,
}

/// The result of one check: passed if it found no violation.
#[derive(Debug, Clone)]
pub struct Check {
    /// What it checks.
    pub name: &'static str,
    /// What it saw, in one line.
    pub summary: String,
    /// How many violations it found.
    pub violations_total: usize,
    /// The first violations, described.
    pub examples: Vec<String>,
}

impl Check {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            summary: String::new(),
            violations_total: 0,
            examples: Vec::new(),
        }
    }

    fn violation(&mut self, description: String) {
        self.violations_total += 1;
        if self.examples.len() < EXAMPLES_MAX {
            self.examples.push(description);
        }
    }

    /// Returns true if no violation was found.
    pub fn passed(&self) -> bool {
        self.violations_total == 0
    }
}

/// Every check of a run.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The checks, in report order.
    pub checks: Vec<Check>,
}

impl Verdict {
    /// Returns true if every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(Check::passed)
    }

    /// Returns the check called `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Names of the checks, as printed.
pub mod names {
    /// No event sold more than its capacity, no seat twice; counters agree with the export.
    pub const NOT_OVERSOLD: &str = "not oversold";
    /// Every acknowledged sale is in the final state with the acknowledged ticket and seat.
    pub const NO_LOST_SALE: &str = "no acknowledged sale lost";
    /// No request produced two tickets, no ticket id appears twice.
    pub const NO_DOUBLE_SALE: &str = "no request sold twice";
    /// Every sold seat's owner was not refused; every refusal is explained by the final state.
    pub const LINEARIZABLE: &str = "per-seat history linearizable";
    /// A sale acknowledged before another was invoked has the smaller ticket id.
    pub const REAL_TIME_ORDER: &str = "tickets in real-time order";
    /// Every replica at the same applied index with the same state digest.
    pub const REPLICAS_IDENTICAL: &str = "replicas identical";
    /// A leader and every node back after each fault; some sales acknowledged.
    pub const RECOVERED: &str = "recovered after every fault";
}

/// Checks a history against the final state.
pub fn check(history: &History, state: &FinalState) -> Verdict {
    let ops = ops_by_key(history);
    Verdict {
        checks: vec![
            not_oversold(state),
            no_lost_sale(history, state),
            no_double_sale(state),
            linearizable(history, &ops, state),
            real_time_order(history, &ops, state),
            replicas_identical(state),
            recovered(history),
        ],
    }
}

/// Indexes the operations by idempotency key. Keys are unique in a run by construction.
fn ops_by_key(history: &History) -> BTreeMap<&RequestKey, &OpRecord> {
    let mut ops = BTreeMap::new();
    for record in &history.ops {
        let previous = ops.insert(&record.op.key, record);
        assert!(
            previous.is_none(),
            "the workload reused the key {:?}",
            record.op.key
        );
    }
    ops
}

/// Returns the final sales of every event by (event, key); a key sold twice keeps its first line.
fn sales_by_key(state: &FinalState) -> BTreeMap<(u64, RequestKey), &SaleLine> {
    let mut sales = BTreeMap::new();
    for event in &state.events {
        for line in &event.sales {
            sales.entry((event.event_id, line.key())).or_insert(line);
        }
    }
    sales
}

fn seconds(ms: u64) -> String {
    format!("{:.3} s", ms as f64 / 1000.0)
}

fn describe_key(key: &RequestKey) -> String {
    format!("{}/{}", key.client_id, key.request_id)
}

fn describe_ticket(ticket: Ticket) -> String {
    match ticket.seat {
        Some(seat) => format!("ticket {} (seat {seat})", ticket.ticket_id),
        None => format!("ticket {}", ticket.ticket_id),
    }
}

fn not_oversold(state: &FinalState) -> Check {
    let mut check = Check::new(names::NOT_OVERSOLD);
    let mut summaries = Vec::new();
    for event in &state.events {
        let (id, sold) = (event.event_id, event.sales.len() as u64);
        let a = event.availability;
        summaries.push(format!(
            "{} #{id} {sold}/{} sold",
            event.label, event.capacity
        ));
        if sold > u64::from(event.capacity) {
            check.violation(format!(
                "event {id} sold {sold} tickets, capacity {}",
                event.capacity
            ));
        }
        if u64::from(a.sold) != sold || a.capacity != event.capacity {
            check.violation(format!(
                "event {id}: availability says {} of {} sold, the export has {sold} of {}",
                a.sold, a.capacity, event.capacity
            ));
        }
        if u64::from(a.sold) + u64::from(a.held) + u64::from(a.available) != u64::from(a.capacity) {
            check.violation(format!(
                "event {id}: sold + held + available != capacity: {a:?}"
            ));
        }
        check_seats(&mut check, event);
    }
    check.summary = summaries.join("; ");
    check
}

/// Every ticket of a numbered event has a distinct seat in range; unnumbered tickets have none.
fn check_seats(check: &mut Check, event: &EventState) {
    let mut seats = BTreeSet::new();
    for line in &event.sales {
        match (event.numbered, line.seat) {
            (true, Some(seat)) if seat == 0 || seat > event.capacity => check.violation(format!(
                "event {}: ticket {} has seat {seat}, outside 1..={}",
                event.event_id, line.ticket_id, event.capacity
            )),
            (true, Some(seat)) if !seats.insert(seat) => check.violation(format!(
                "event {}: seat {seat} sold twice (again as ticket {})",
                event.event_id, line.ticket_id
            )),
            (true, None) => check.violation(format!(
                "event {}: ticket {} of a numbered event has no seat",
                event.event_id, line.ticket_id
            )),
            (false, Some(seat)) => check.violation(format!(
                "event {}: ticket {} of an unnumbered event has seat {seat}",
                event.event_id, line.ticket_id
            )),
            _ => {}
        }
    }
}

fn no_lost_sale(history: &History, state: &FinalState) -> Check {
    let mut check = Check::new(names::NO_LOST_SALE);
    let sales = sales_by_key(state);
    let mut acknowledged = 0;
    for record in &history.ops {
        let Completion::Ok { ticket } = record.completion else {
            continue;
        };
        acknowledged += 1;
        let key = &record.op.key;
        let found = sales.get(&(record.op.event_id, key.clone()));
        match found {
            Some(line) if line.ticket() == ticket => {}
            Some(line) => check.violation(format!(
                "{} was acknowledged {} at {}, but the final state has {}",
                describe_key(key),
                describe_ticket(ticket),
                seconds(record.completed_ms),
                describe_ticket(line.ticket())
            )),
            None => check.violation(format!(
                "{} was acknowledged {} at {}, but it is not in the final state",
                describe_key(key),
                describe_ticket(ticket),
                seconds(record.completed_ms)
            )),
        }
    }
    check.summary = if check.passed() {
        format!("{acknowledged} acknowledged sales, all in the final state")
    } else {
        format!(
            "{} of {acknowledged} acknowledged sales lost or changed",
            check.violations_total
        )
    };
    check
}

fn no_double_sale(state: &FinalState) -> Check {
    let mut check = Check::new(names::NO_DOUBLE_SALE);
    let mut keys = BTreeSet::new();
    let mut ticket_ids = BTreeSet::new();
    let mut lines = 0;
    for event in &state.events {
        for line in &event.sales {
            lines += 1;
            if !keys.insert((event.event_id, line.key())) {
                check.violation(format!(
                    "event {}: request {} produced a second ticket {}",
                    event.event_id,
                    describe_key(&line.key()),
                    line.ticket_id
                ));
            }
            if !ticket_ids.insert(line.ticket_id) {
                check.violation(format!("ticket id {} appears twice", line.ticket_id));
            }
        }
    }
    check.summary = format!("{lines} tickets from {} distinct requests", keys.len());
    check
}

/// Per event: who owns each sold seat, and when the owners of its tickets were invoked.
struct Owners<'a> {
    /// (event, seat) to the line that holds it.
    seats: BTreeMap<(u64, u32), &'a SaleLine>,
    /// Per event, the sorted invocation times of the operations its tickets belong to.
    invoked_ms: BTreeMap<u64, Vec<u64>>,
}

impl<'a> Owners<'a> {
    fn new(state: &'a FinalState, ops: &BTreeMap<&RequestKey, &OpRecord>) -> Self {
        let mut seats = BTreeMap::new();
        let mut invoked_ms: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for event in &state.events {
            let times = invoked_ms.entry(event.event_id).or_default();
            for line in &event.sales {
                if let Some(seat) = line.seat {
                    seats.entry((event.event_id, seat)).or_insert(line);
                }
                if let Some(record) = ops.get(&line.key()) {
                    times.push(record.invoked_ms);
                }
            }
            times.sort_unstable();
        }
        Self { seats, invoked_ms }
    }

    /// Returns how many tickets of `event` belong to operations invoked before `ms`.
    fn sold_invoked_before(&self, event: u64, ms: u64) -> usize {
        self.invoked_ms
            .get(&event)
            .map_or(0, |times| times.partition_point(|t| *t < ms))
    }
}

fn linearizable(
    history: &History,
    ops: &BTreeMap<&RequestKey, &OpRecord>,
    state: &FinalState,
) -> Check {
    let mut check = Check::new(names::LINEARIZABLE);
    let owners = Owners::new(state, ops);
    for event in &state.events {
        for line in &event.sales {
            check_owner(&mut check, ops, event.event_id, line);
        }
    }
    let capacities: BTreeMap<u64, (u32, usize)> = state
        .events
        .iter()
        .map(|e| (e.event_id, (e.capacity, e.sales.len())))
        .collect();
    for record in &history.ops {
        check_answers(&mut check, record);
        check_refusal(&mut check, record, &owners, ops, &capacities);
    }
    let sold_seats = owners.seats.len();
    check.summary = if check.passed() {
        format!(
            "{sold_seats} sold seats owned by acknowledged or indeterminate requests; \
             every refusal explained by the final state"
        )
    } else {
        format!("{} violations", check.violations_total)
    };
    check
}

/// The ticket belongs to a request that was sent, for this event and seat, and not refused.
fn check_owner(
    check: &mut Check,
    ops: &BTreeMap<&RequestKey, &OpRecord>,
    event_id: u64,
    line: &SaleLine,
) {
    let key = line.key();
    let Some(record) = ops.get(&key) else {
        check.violation(format!(
            "event {event_id}: {} belongs to {}, a request never sent",
            describe_ticket(line.ticket()),
            describe_key(&key)
        ));
        return;
    };
    if record.op.event_id != event_id || record.op.seat.is_some() && record.op.seat != line.seat {
        check.violation(format!(
            "event {event_id}: {} went to {}, which asked for event {} seat {:?}",
            describe_ticket(line.ticket()),
            describe_key(&key),
            record.op.event_id,
            record.op.seat
        ));
    }
    if let Completion::Fail { reason } = &record.completion {
        check.violation(format!(
            "event {event_id}: {} belongs to {}, which was told {reason} at {}",
            describe_ticket(line.ticket()),
            describe_key(&key),
            seconds(record.completed_ms)
        ));
    }
}

/// Every 201 names this request and the seat it asked for.
fn check_answers(check: &mut Check, record: &OpRecord) {
    for attempt in &record.attempts {
        if let AttemptResult::Malformed { detail } = &attempt.result {
            check.violation(format!(
                "{} via node {} at {}: malformed 201: {detail}",
                describe_key(&record.op.key),
                attempt.node,
                seconds(attempt.finished_ms)
            ));
        }
    }
    if let Completion::Ok { ticket } = record.completion
        && record.op.seat.is_some()
        && ticket.seat != record.op.seat
    {
        check.violation(format!(
            "{} asked for seat {:?} and was acknowledged {}",
            describe_key(&record.op.key),
            record.op.seat,
            describe_ticket(ticket)
        ));
    }
}

/// A refusal must be explained by sales that stay: `seat_taken` by an owner invoked before the
/// refusal arrived, `sold_out` by `capacity` tickets whose requests were invoked before it.
fn check_refusal(
    check: &mut Check,
    record: &OpRecord,
    owners: &Owners,
    ops: &BTreeMap<&RequestKey, &OpRecord>,
    capacities: &BTreeMap<u64, (u32, usize)>,
) {
    let Completion::Fail { reason } = &record.completion else {
        return;
    };
    let (event, key) = (record.op.event_id, describe_key(&record.op.key));
    let at = seconds(record.completed_ms);
    match (reason.as_str(), record.op.seat) {
        ("seat_taken", Some(seat)) => match owners.seats.get(&(event, seat)) {
            None => check.violation(format!(
                "{key} was told seat {seat} was taken at {at}, but it is not sold"
            )),
            Some(line) => {
                let owner_invoked = ops.get(&line.key()).map(|r| r.invoked_ms);
                if owner_invoked.is_some_and(|t| t >= record.completed_ms) {
                    check.violation(format!(
                        "{key} was told seat {seat} was taken at {at}, but its owner {} was \
                         only invoked at {}",
                        describe_key(&line.key()),
                        seconds(owner_invoked.unwrap_or_default())
                    ));
                }
            }
        },
        ("sold_out", None) => {
            let (capacity, sold) = capacities.get(&event).copied().unwrap_or_default();
            let before = owners.sold_invoked_before(event, record.completed_ms);
            if sold < capacity as usize || before < capacity as usize {
                check.violation(format!(
                    "{key} was told sold out at {at}, but only {before} of the {sold} tickets \
                     sold (capacity {capacity}) had been asked for by then"
                ));
            }
        }
        (reason, seat) => check.violation(format!(
            "{key} (event {event}, seat {seat:?}) was refused with an unexpected reason {reason}"
        )),
    }
}

/// Ticket ids come from one counter in log order, and a request is committed after it is
/// invoked: if A was acknowledged before B was invoked, B's ticket id must be larger.
fn real_time_order(
    history: &History,
    ops: &BTreeMap<&RequestKey, &OpRecord>,
    state: &FinalState,
) -> Check {
    let mut check = Check::new(names::REAL_TIME_ORDER);
    // Acknowledged sales by completion time, with the largest ticket id acknowledged so far.
    let mut acknowledged: Vec<(u64, u64, &RequestKey)> = history
        .ops
        .iter()
        .filter_map(|r| match r.completion {
            Completion::Ok { ticket } => Some((r.completed_ms, ticket.ticket_id, &r.op.key)),
            _ => None,
        })
        .collect();
    acknowledged.sort_unstable();
    let mut running_max: Vec<(u64, &RequestKey)> = Vec::with_capacity(acknowledged.len());
    for &(_, ticket_id, key) in &acknowledged {
        let best = match running_max.last() {
            Some(&(max, max_key)) if max >= ticket_id => (max, max_key),
            _ => (ticket_id, key),
        };
        running_max.push(best);
    }
    let mut compared = 0;
    for line in state.events.iter().flat_map(|e| &e.sales) {
        let key = line.key();
        let Some(record) = ops.get(&key) else {
            continue; // reported by the linearizability check
        };
        let earlier = acknowledged.partition_point(|(done, _, _)| *done < record.invoked_ms);
        let Some(&(max, max_key)) = earlier.checked_sub(1).map(|i| &running_max[i]) else {
            continue;
        };
        compared += 1;
        if max >= line.ticket_id && *max_key != key {
            check.violation(format!(
                "{} (invoked at {}) got ticket {}, but ticket {max} of {} had been acknowledged \
                 before",
                describe_key(&key),
                seconds(record.invoked_ms),
                line.ticket_id,
                describe_key(max_key)
            ));
        }
    }
    check.summary = format!("{compared} tickets ordered after the acknowledgements before them");
    check
}

fn replicas_identical(state: &FinalState) -> Check {
    let mut check = Check::new(names::REPLICAS_IDENTICAL);
    let first = state.replicas.first();
    for replica in &state.replicas {
        let same = first
            .is_some_and(|f| f.last_applied == replica.last_applied && f.digest == replica.digest);
        if replica.last_applied.is_none() || replica.digest.is_none() || !same {
            check.violation(format!(
                "node {} at applied index {:?} with digest {:?}, node {} at {:?} with {:?}",
                replica.node,
                replica.last_applied,
                replica.digest,
                first.map_or(0, |f| f.node),
                first.and_then(|f| f.last_applied),
                first.and_then(|f| f.digest.clone())
            ));
        }
    }
    if state.replicas.is_empty() {
        check.violation("no replica answered".into());
    }
    check.summary = match first {
        Some(f) if check.passed() => format!(
            "{} nodes at applied index {} with digest {}",
            state.replicas.len(),
            f.last_applied.unwrap_or_default(),
            f.digest.clone().unwrap_or_default()
        ),
        _ => "the replicas differ".into(),
    };
    check
}

fn recovered(history: &History) -> Check {
    let mut check = Check::new(names::RECOVERED);
    let mut slowest_ms = 0;
    for fault in &history.faults {
        if let Some(error) = &fault.error {
            check.violation(format!(
                "{} at {} failed: {error}",
                fault.kind.name(),
                seconds(fault.started_ms)
            ));
        }
        match fault.recovered_ms {
            Some(ms) => slowest_ms = slowest_ms.max(ms.saturating_sub(fault.healing_ms)),
            None => check.violation(format!(
                "{} of nodes {:?} at {} did not recover",
                fault.kind.name(),
                fault.nodes,
                seconds(fault.started_ms)
            )),
        }
    }
    let ok = history.counts().ok;
    if ok == 0 {
        check.violation("no sale was acknowledged during the run".into());
    }
    check.summary = format!(
        "{} faults healed (slowest recovery {}); {ok} sales acknowledged",
        history.faults.len(),
        seconds(slowest_ms)
    );
    check
}

#[cfg(test)]
mod tests {
    //! Small hand-made histories: a clean one passes every check, and each kind of anomaly
    //! (lost ack, double sale, oversold event, refused-but-sold, unexplained refusal, stale
    //! ticket order, diverged replicas) fails exactly the check meant to catch it.

    use super::*;
    use crate::chaos::history::{Attempt, FaultKind, FaultRecord, Op};

    const GA: u64 = 1;
    const SEATED: u64 = 2;

    fn key(client: &str, request: &str) -> RequestKey {
        RequestKey {
            client_id: client.into(),
            request_id: request.into(),
        }
    }

    /// An operation with one attempt from `invoked_ms` to `completed_ms` that heard `result`.
    fn op(
        k: RequestKey,
        event_id: u64,
        seat: Option<u32>,
        times: (u64, u64),
        result: AttemptResult,
    ) -> OpRecord {
        let attempts = vec![Attempt {
            node: 1,
            started_ms: times.0,
            finished_ms: times.1,
            result,
        }];
        OpRecord {
            op: Op {
                key: k,
                event_id,
                seat,
            },
            invoked_ms: times.0,
            completed_ms: times.1,
            completion: OpRecord::completion_of(&attempts),
            attempts,
        }
    }

    fn sold(ticket_id: u64, seat: Option<u32>) -> AttemptResult {
        AttemptResult::Sold {
            ticket: Ticket { ticket_id, seat },
            replayed: false,
        }
    }

    fn refused(reason: &str) -> AttemptResult {
        AttemptResult::Refused {
            reason: reason.into(),
        }
    }

    fn line(k: &RequestKey, ticket_id: u64, seat: Option<u32>) -> SaleLine {
        SaleLine {
            ticket_id,
            client_id: k.client_id.clone(),
            request_id: k.request_id.clone(),
            seat,
        }
    }

    fn event(event_id: u64, numbered: bool, capacity: u32, sales: Vec<SaleLine>) -> EventState {
        let sold = sales.len() as u32;
        EventState {
            event_id,
            label: if numbered { "numbered" } else { "unnumbered" }.into(),
            numbered,
            capacity,
            availability: Availability {
                capacity,
                sold,
                held: 0,
                available: capacity.saturating_sub(sold),
            },
            sales,
        }
    }

    fn replicas() -> Vec<ReplicaState> {
        (1..=3)
            .map(|node| ReplicaState {
                node,
                last_applied: Some(40),
                digest: Some("abc".into()),
            })
            .collect()
    }

    /// A clean run: two general-admission tickets (capacity 2, then sold out), seat 7 contended
    /// by three clients (one ok, one refused, one indeterminate that did not happen), seat 8
    /// sold to an indeterminate request, one fault that recovered.
    fn clean() -> (History, FinalState) {
        let (a, b, c) = (key("a", "1"), key("b", "1"), key("c", "1"));
        let (d, e, f, g) = (key("d", "1"), key("e", "1"), key("f", "1"), key("g", "1"));
        let ops = vec![
            op(a.clone(), GA, None, (0, 10), sold(1, None)),
            op(b.clone(), GA, None, (5, 20), sold(2, None)),
            op(c.clone(), GA, None, (25, 30), refused("sold_out")),
            op(d.clone(), SEATED, Some(7), (40, 50), sold(3, Some(7))),
            op(e.clone(), SEATED, Some(7), (45, 60), refused("seat_taken")),
            op(f.clone(), SEATED, Some(7), (46, 80), AttemptResult::Timeout),
            op(
                g.clone(),
                SEATED,
                Some(8),
                (70, 90),
                AttemptResult::Unavailable,
            ),
        ];
        let faults = vec![FaultRecord {
            kind: FaultKind::KillLeader,
            nodes: vec![2],
            started_ms: 55,
            healing_ms: 70,
            recovered_ms: Some(85),
            error: None,
        }];
        let state = FinalState {
            events: vec![
                event(GA, false, 2, vec![line(&a, 1, None), line(&b, 2, None)]),
                event(
                    SEATED,
                    true,
                    10,
                    vec![line(&d, 3, Some(7)), line(&g, 4, Some(8))],
                ),
            ],
            replicas: replicas(),
        };
        (History { ops, faults }, state)
    }

    /// Asserts that exactly the named checks failed.
    fn assert_failed(verdict: &Verdict, failed: &[&str]) {
        let actual: Vec<&str> = verdict
            .checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.name)
            .collect();
        assert_eq!(actual, failed, "{verdict:#?}");
    }

    /// A consistent history passes every check.
    #[test]
    fn a_clean_history_passes() {
        let (history, state) = clean();
        let verdict = check(&history, &state);
        assert!(verdict.passed(), "{verdict:#?}");
        assert_eq!(verdict.checks.len(), 7);
    }

    /// An acknowledged sale missing from the final state is a lost ack.
    #[test]
    fn a_lost_ack_fails() {
        let (history, mut state) = clean();
        state.events[1].sales.remove(0); // d's seat 7
        state.events[1].availability.sold -= 1;
        state.events[1].availability.available += 1;
        let verdict = check(&history, &state);
        // Seat 7 was also refused to e as taken, which the final state no longer explains.
        assert_failed(&verdict, &[names::NO_LOST_SALE, names::LINEARIZABLE]);
        let lost = verdict.check(names::NO_LOST_SALE).unwrap();
        assert_eq!(lost.violations_total, 1);
        assert!(lost.examples[0].contains("d/1"), "{lost:?}");
    }

    /// An acknowledged sale whose ticket changed (another id) is a lost ack too.
    #[test]
    fn a_changed_ticket_fails() {
        let (history, mut state) = clean();
        state.events[0].sales[0].ticket_id = 9;
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::NO_LOST_SALE]);
    }

    /// One request id producing two tickets is a double sale.
    #[test]
    fn a_double_sale_fails() {
        let (history, mut state) = clean();
        let g = key("g", "1");
        state.events[1].sales.push(line(&g, 5, Some(8)));
        state.events[1].availability.sold += 1;
        state.events[1].availability.available -= 1;
        let verdict = check(&history, &state);
        // The second ticket also takes seat 8 again.
        assert_failed(&verdict, &[names::NOT_OVERSOLD, names::NO_DOUBLE_SALE]);
        let double = verdict.check(names::NO_DOUBLE_SALE).unwrap();
        assert_eq!(double.violations_total, 1);
    }

    /// More tickets than capacity is an oversold event, even if the counters agree.
    #[test]
    fn an_oversold_event_fails() {
        let (mut history, mut state) = clean();
        let h = key("h", "1");
        history
            .ops
            .push(op(h.clone(), GA, None, (91, 95), sold(5, None)));
        state.events[0].sales.push(line(&h, 5, None));
        state.events[0].availability = Availability {
            capacity: 2,
            sold: 3,
            held: 0,
            available: 0,
        };
        let verdict = check(&history, &state);
        // c was told "sold out" at 30 ms, before h was invoked: still explained (a and b).
        assert_failed(&verdict, &[names::NOT_OVERSOLD]);
        let oversold = verdict.check(names::NOT_OVERSOLD).unwrap();
        assert!(
            oversold.examples[0].contains("sold 3 tickets, capacity 2"),
            "{oversold:?}"
        );
    }

    /// A seat sold to a request that was definitely refused breaks the per-seat history.
    #[test]
    fn a_sale_to_a_refused_request_fails() {
        let (history, mut state) = clean();
        let e = key("e", "1");
        state.events[1].sales[0] = line(&e, 3, Some(7));
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::NO_LOST_SALE, names::LINEARIZABLE]);
    }

    /// "Seat taken" for a seat nobody bought, and "sold out" with room left, are unexplained.
    #[test]
    fn unexplained_refusals_fail() {
        let (mut history, state) = clean();
        history.ops.push(op(
            key("x", "1"),
            SEATED,
            Some(9),
            (100, 110),
            refused("seat_taken"),
        ));
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::LINEARIZABLE]);

        let (history, mut state) = clean();
        state.events[0].capacity = 3;
        state.events[0].availability.capacity = 3;
        state.events[0].availability.available = 1;
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::LINEARIZABLE]);
    }

    /// "Seat taken" must be explained by an owner invoked before the refusal arrived.
    #[test]
    fn a_refusal_before_the_owner_was_invoked_fails() {
        let (mut history, state) = clean();
        // e heard "seat taken" at 60 ms; make d (the owner) start only at 61 ms.
        history.ops[3].invoked_ms = 61;
        history.ops[3].attempts[0].started_ms = 61;
        history.ops[3].completed_ms = 70;
        history.ops[3].attempts[0].finished_ms = 70;
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::LINEARIZABLE]);
    }

    /// A ticket older than one acknowledged before its request was invoked is out of order.
    #[test]
    fn a_ticket_out_of_real_time_order_fails() {
        let (mut history, mut state) = clean();
        // g was invoked at 70 ms, after d's ticket 3 was acknowledged at 50 ms; give it 2.5.
        history.ops[1].completion = Completion::Indeterminate; // free ticket id 2 for g
        state.events[0].sales.remove(1);
        state.events[0].availability.sold = 1;
        state.events[0].availability.available = 1;
        state.events[1].sales[1].ticket_id = 2;
        let verdict = check(&history, &state);
        let failed: Vec<&str> = verdict
            .checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.name)
            .collect();
        assert!(failed.contains(&names::REAL_TIME_ORDER), "{verdict:#?}");
    }

    /// Replicas at different indexes or digests fail; so does a fault that never recovered.
    #[test]
    fn diverged_replicas_and_unrecovered_faults_fail() {
        let (mut history, mut state) = clean();
        state.replicas[2].digest = Some("abd".into());
        history.faults[0].recovered_ms = None;
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::REPLICAS_IDENTICAL, names::RECOVERED]);

        let (mut history, state) = clean();
        history.faults[0].error = Some("no leader within 10s".into());
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::RECOVERED]);
    }

    /// A ticket for a request nobody sent is a phantom sale.
    #[test]
    fn a_phantom_ticket_fails() {
        let (history, mut state) = clean();
        state.events[1]
            .sales
            .push(line(&key("ghost", "1"), 6, Some(9)));
        state.events[1].availability.sold += 1;
        state.events[1].availability.available -= 1;
        let verdict = check(&history, &state);
        assert_failed(&verdict, &[names::LINEARIZABLE]);
    }
}
