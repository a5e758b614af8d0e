//! A whole replica in memory: the hot [`State`] and its [`MemoryHistory`], written together
//! after every batch. This is what the tests, the model and the property tests drive; the Raft
//! layer does the same with history in redb.

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::command::{Batch, Command};
use crate::history::{History, MemoryHistory};
use crate::ids::{EventId, OrderId, TicketId, UserId};
use crate::invariants::InvariantViolation;
use crate::limits::Limits;
use crate::outcome::Outcome;
use crate::state::{Order, State, Ticket};

/// The hot state plus its history, kept in step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    state: State,
    history: MemoryHistory,
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new(Limits::default())
    }
}

impl Replica {
    /// An empty replica enforcing `limits`.
    pub fn new(limits: Limits) -> Replica {
        Replica {
            state: State::new(limits),
            history: MemoryHistory::default(),
        }
    }

    /// Applies a batch and writes its history changes.
    pub fn apply_batch(&mut self, batch: &Batch) -> Vec<Outcome> {
        let outcomes = self.state.apply_batch(batch, &self.history);
        self.history.write(self.state.take_changes());
        outcomes
    }

    /// Applies one command at the current log time and writes its history changes.
    pub fn apply(&mut self, command: &Command) -> Outcome {
        let outcome = self.state.apply(command, &self.history);
        self.history.write(self.state.take_changes());
        outcome
    }

    /// Checks the invariants of the state and its history.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.state.check_invariants(&self.history)
    }

    /// Returns the history.
    pub fn history(&self) -> &MemoryHistory {
        &self.history
    }

    /// Returns a ticket.
    pub fn ticket(&self, id: TicketId) -> Option<Ticket> {
        self.history.ticket(id)
    }

    /// Returns an order.
    pub fn order(&self, id: OrderId) -> Option<Order> {
        self.history.order(id)
    }

    /// Returns an event's active tickets in sale order.
    pub fn sales(&self, event_id: EventId) -> impl Iterator<Item = Ticket> {
        self.history.sales(event_id).into_iter()
    }

    /// Returns a customer's tickets (active and refunded), oldest first.
    pub fn tickets_of(&self, customer: UserId) -> impl Iterator<Item = Ticket> {
        self.history.tickets_of(customer).into_iter()
    }

    /// Returns how many idempotency records are kept.
    pub fn record_count(&self) -> usize {
        self.history.record_count()
    }
}

impl Deref for Replica {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}
