//! Limits the state machine enforces. They are part of the replicated state so that every replica
//! applies the same bounds; the edges validate against the same numbers first to give field-level
//! errors.

use serde::{Deserialize, Serialize};

/// Bounds on what one command may ask for and how long records are kept, in log time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// How long an idempotency record is kept after the request it answers, by log time.
    pub idempotency_retention_ms: u64,
    /// The longest hold a command may ask for.
    pub hold_ttl_ms_max: u64,
    /// The most tickets one hold (and so one order) may cover.
    pub seats_per_order_max: u32,
    /// The most active holds one customer may have at once.
    pub holds_per_customer_max: u32,
    /// The largest inventory an event may have (capacity or seats).
    pub event_capacity_max: u32,
    /// The longest client id or request id, in bytes.
    pub key_bytes_max: u32,
    /// The highest ticket price, in minor units; with `seats_per_order_max` it bounds every
    /// order total far below `u64::MAX`, so money arithmetic cannot overflow.
    #[serde(default = "default_price_cents_max")]
    pub price_cents_max: u64,
}

fn default_price_cents_max() -> u64 {
    10_000_000_000
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idempotency_retention_ms: 24 * 60 * 60 * 1000,
            hold_ttl_ms_max: 30 * 60 * 1000,
            seats_per_order_max: 10,
            holds_per_customer_max: 5,
            event_capacity_max: 1_000_000,
            key_bytes_max: 128,
            price_cents_max: default_price_cents_max(),
        }
    }
}
