//! Identifier newtypes. Numeric ids are assigned by the state machine from counters, so every
//! replica assigns the same id to the same command; string keys come from clients.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

numeric_id!(
    /// Identifies an account.
    UserId
);
numeric_id!(
    /// Identifies an event.
    EventId
);
numeric_id!(
    /// Identifies a hold on inventory.
    HoldId
);
numeric_id!(
    /// Identifies a confirmed order.
    OrderId
);
numeric_id!(
    /// Identifies a ticket; unique across all events.
    TicketId
);

/// The idempotency key of a request: a client and its own request id. Keys are scoped per event,
/// so the same workload file can be replayed against a fresh event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// Who sent the request (a box-office client, a shop user, a worker's client).
    pub client_id: String,
    /// The client's own id for this request; a retry reuses it.
    pub request_id: String,
}

impl IdempotencyKey {
    /// Returns a key from its two parts.
    pub fn new(client_id: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            request_id: request_id.into(),
        }
    }
}

/// Who a purchase or hold counts against for per-customer caps and ownership.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CustomerKey {
    /// A signed-in shop user.
    User(UserId),
    /// A box-office client identified only by its client id.
    Client(String),
}
