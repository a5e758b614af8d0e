//! History: what tix remembers but a sale does not decide — tickets, orders, idempotency
//! records, per-customer counts and the bytes of event images — kept out of the in-memory
//! [`State`](crate::State).
//!
//! The core stays pure: it reads history through the [`History`] trait and writes it as
//! [`Changes`], an overlay the state collects while it applies commands. Reads see the overlay
//! first, so a ticket sold earlier in the same group of batches is found, and the answer never
//! depends on how many batches were applied before the overlay was written out. The Raft layer
//! implements `History` over redb tables and writes each overlay in the same transaction as the
//! applied log id; [`MemoryHistory`] is the reference implementation the tests and the model use.
//!
//! Records are compact: an idempotency key is stored as a 128-bit hash ([`RecordKey`]), the
//! parameters it was used with as a 64-bit fingerprint, and the answer as the few numbers a replay
//! returns. The key's original strings live on in the ticket it sold (for the sales export).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{CustomerKey, EventId, IdempotencyKey, OrderId, TicketId, UserId};
use crate::outcome::{HoldPlaced, Rejection, Sale};
use crate::state::{Order, Ticket, TicketStatus};

/// The hash of an idempotency key within its event: 128 bits of SHA-256 over the event id and
/// both strings (length-prefixed), so two keys collide only by a 2^-64 birthday chance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey(pub u128);

impl RecordKey {
    /// Hashes `(event, key)`.
    pub fn of(event_id: EventId, key: &IdempotencyKey) -> RecordKey {
        let mut h = Sha256::new();
        h.update(b"tix.record.v1");
        h.update(event_id.0.to_le_bytes());
        update_str(&mut h, &key.client_id);
        update_str(&mut h, &key.request_id);
        RecordKey(first_u128(&h.finalize()))
    }
}

/// The hash of a customer within an event, for the per-customer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CountKey {
    /// Which event.
    pub event_id: EventId,
    /// 128 bits of SHA-256 over the customer.
    pub customer: u128,
}

impl CountKey {
    /// Returns the key of `customer`'s count at `event_id`.
    pub fn of(event_id: EventId, customer: &CustomerKey) -> CountKey {
        CountKey {
            event_id,
            customer: customer_hash(customer),
        }
    }
}

/// Hashes a customer key (stable across releases and platforms).
pub fn customer_hash(customer: &CustomerKey) -> u128 {
    let mut h = Sha256::new();
    h.update(b"tix.customer.v1");
    match customer {
        CustomerKey::User(id) => {
            h.update([0]);
            h.update(id.0.to_le_bytes());
        }
        CustomerKey::Client(client) => {
            h.update([1]);
            update_str(&mut h, client);
        }
    }
    first_u128(&h.finalize())
}

/// Hashes bytes to 64 bits (SHA-256, truncated): fingerprints of request parameters.
pub(crate) fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let bytes = h.finalize();
    u64::from_le_bytes(bytes[..8].try_into().expect("32 bytes"))
}

fn update_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn first_u128(bytes: &[u8]) -> u128 {
    u128::from_le_bytes(bytes[..16].try_into().expect("32 bytes"))
}

/// The answer recorded for an idempotency key: exactly what a replay returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordedAnswer {
    /// A direct purchase.
    Purchase(Result<Sale, Rejection>),
    /// A hold (boxed: rare, and it carries its seats).
    Hold(Box<Result<HoldPlaced, Rejection>>),
}

/// One idempotency record: tens of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Hash of the parameters the key was first used with.
    pub fingerprint: u64,
    /// When, by log time; the record expires `idempotency_retention_ms` later.
    pub recorded_at_ms: u64,
    /// The answer.
    pub answer: RecordedAnswer,
}

/// A change to one idempotency record. The store finds the time index entry of the record it
/// replaces or forgets from the stored record itself: within one group of batches a key's record
/// may be stored, expire and be stored again, and only the last change reaches the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordChange {
    /// Store this record.
    Put(Record),
    /// Forget the record stored under the key, time index entry included.
    Expire,
}

/// What applying commands changed in history, keyed so that a later change to the same item
/// replaces an earlier one. Written out as one unit (one transaction).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Tickets sold, refunded or checked in (the whole new row).
    pub tickets: BTreeMap<TicketId, Ticket>,
    /// Orders confirmed.
    pub orders: BTreeMap<OrderId, Order>,
    /// Idempotency records stored or expired.
    pub records: BTreeMap<RecordKey, RecordChange>,
    /// Per-customer counts (tickets plus held units) of events that keep them; 0 deletes the row.
    pub counts: BTreeMap<CountKey, u32>,
    /// Event images stored (their bytes) or removed (`None`); the hot state keeps their
    /// descriptors (`crate::image`).
    pub images: BTreeMap<EventId, Option<Vec<u8>>>,
}

impl Changes {
    /// Returns true when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.tickets.is_empty()
            && self.orders.is_empty()
            && self.records.is_empty()
            && self.counts.is_empty()
            && self.images.is_empty()
    }
}

/// Read access to history as of the last written [`Changes`]. Implementations must answer
/// exactly what was written: the core's decisions depend on it.
pub trait History {
    /// Returns a ticket.
    fn ticket(&self, id: TicketId) -> Option<Ticket>;
    /// Returns an order.
    fn order(&self, id: OrderId) -> Option<Order>;
    /// Returns the record stored under a key.
    fn record(&self, key: RecordKey) -> Option<Record>;
    /// Returns a customer's count at an event (0 when there is no row).
    fn customer_count(&self, key: CountKey) -> u32;
    /// Returns up to `max` records recorded at or before `recorded_at_or_before_ms`, oldest first
    /// (ties by key).
    fn records_due(&self, recorded_at_or_before_ms: u64, max: usize) -> Vec<(u64, RecordKey)>;
    /// Calls `f` for every active ticket of an event, in sale order (rare: an event's first cap,
    /// its cancellation).
    fn for_each_active_ticket(&self, event_id: EventId, f: &mut dyn FnMut(&Ticket));
}

/// Full scans of history, for the invariant checker (tests, snapshot install).
pub trait HistoryScan: History {
    /// Calls `f` for every ticket, in id order.
    fn for_each_ticket(&self, f: &mut dyn FnMut(&Ticket));
    /// Calls `f` for every order, in id order.
    fn for_each_order(&self, f: &mut dyn FnMut(&Order));
    /// Calls `f` for every per-customer count row.
    fn for_each_count(&self, f: &mut dyn FnMut(CountKey, u32));
    /// Calls `f` for every stored event image, in event order.
    fn for_each_image(&self, f: &mut dyn FnMut(EventId, &[u8]));
}

/// History in memory: the reference implementation (tests, the model, tools).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryHistory {
    tickets: BTreeMap<TicketId, Ticket>,
    orders: BTreeMap<OrderId, Order>,
    records: BTreeMap<RecordKey, Record>,
    record_times: BTreeSet<(u64, RecordKey)>,
    counts: BTreeMap<CountKey, u32>,
    images: BTreeMap<EventId, Vec<u8>>,
}

impl MemoryHistory {
    /// Writes a group of changes.
    pub fn write(&mut self, changes: Changes) {
        self.tickets.extend(changes.tickets);
        for order in changes.orders.into_values() {
            self.orders.insert(order.id, order);
        }
        for (key, change) in changes.records {
            match change {
                RecordChange::Put(record) => {
                    self.record_times.insert((record.recorded_at_ms, key));
                    if let Some(old) = self.records.insert(key, record) {
                        self.record_times.remove(&(old.recorded_at_ms, key));
                    }
                }
                RecordChange::Expire => {
                    if let Some(old) = self.records.remove(&key) {
                        self.record_times.remove(&(old.recorded_at_ms, key));
                    }
                }
            }
        }
        for (key, count) in changes.counts {
            if count == 0 {
                self.counts.remove(&key);
            } else {
                self.counts.insert(key, count);
            }
        }
        for (event_id, image) in changes.images {
            match image {
                Some(bytes) => self.images.insert(event_id, bytes),
                None => self.images.remove(&event_id),
            };
        }
    }

    /// Returns the bytes of an event's image.
    pub fn image(&self, event_id: EventId) -> Option<&[u8]> {
        self.images.get(&event_id).map(Vec::as_slice)
    }

    /// Returns how many idempotency records are kept.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Returns a customer's tickets (active and refunded), oldest first.
    pub fn tickets_of(&self, customer: UserId) -> Vec<Ticket> {
        let key = CustomerKey::User(customer);
        let mine = self.tickets.values().filter(|t| t.customer == key);
        mine.cloned().collect()
    }

    /// Returns a customer's orders, oldest first.
    pub fn orders_of(&self, customer: UserId) -> Vec<Order> {
        let mine = self.orders.values().filter(|o| o.customer == customer);
        mine.cloned().collect()
    }

    /// Returns an event's active tickets in sale order.
    pub fn sales(&self, event_id: EventId) -> Vec<Ticket> {
        let active = self
            .tickets
            .values()
            .filter(|t| t.event_id == event_id && t.status == TicketStatus::Active);
        active.cloned().collect()
    }
}

impl History for MemoryHistory {
    fn ticket(&self, id: TicketId) -> Option<Ticket> {
        self.tickets.get(&id).cloned()
    }

    fn order(&self, id: OrderId) -> Option<Order> {
        self.orders.get(&id).cloned()
    }

    fn record(&self, key: RecordKey) -> Option<Record> {
        self.records.get(&key).cloned()
    }

    fn customer_count(&self, key: CountKey) -> u32 {
        self.counts.get(&key).copied().unwrap_or(0)
    }

    fn records_due(&self, recorded_at_or_before_ms: u64, max: usize) -> Vec<(u64, RecordKey)> {
        let due = self
            .record_times
            .iter()
            .take_while(|(at, _)| *at <= recorded_at_or_before_ms);
        due.take(max).copied().collect()
    }

    fn for_each_active_ticket(&self, event_id: EventId, f: &mut dyn FnMut(&Ticket)) {
        let active = self
            .tickets
            .values()
            .filter(|t| t.event_id == event_id && t.status == TicketStatus::Active);
        active.for_each(f);
    }
}

impl HistoryScan for MemoryHistory {
    fn for_each_ticket(&self, f: &mut dyn FnMut(&Ticket)) {
        self.tickets.values().for_each(f);
    }

    fn for_each_order(&self, f: &mut dyn FnMut(&Order)) {
        self.orders.values().for_each(f);
    }

    fn for_each_count(&self, f: &mut dyn FnMut(CountKey, u32)) {
        for (key, count) in &self.counts {
            f(*key, *count);
        }
    }

    fn for_each_image(&self, f: &mut dyn FnMut(EventId, &[u8])) {
        for (event_id, bytes) in &self.images {
            f(*event_id, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_separate_events_clients_and_request_ids() {
        let k = |e, c: &str, r: &str| RecordKey::of(EventId(e), &IdempotencyKey::new(c, r));
        assert_eq!(k(1, "a", "b"), k(1, "a", "b"));
        assert_ne!(k(1, "a", "b"), k(2, "a", "b"));
        assert_ne!(k(1, "a", "b"), k(1, "b", "a"));
        // Length prefixes: moving a character across the boundary is another key.
        assert_ne!(k(1, "ab", "c"), k(1, "a", "bc"));
    }

    #[test]
    fn customer_hashes_separate_users_from_clients() {
        let user = customer_hash(&CustomerKey::User(UserId(1)));
        let client = customer_hash(&CustomerKey::Client("1".into()));
        assert_ne!(user, client);
        assert_eq!(user, customer_hash(&CustomerKey::User(UserId(1))));
    }

    #[test]
    fn records_due_are_oldest_first_and_bounded() {
        let mut h = MemoryHistory::default();
        let mut changes = Changes::default();
        for (i, at) in [30u64, 10, 20].iter().enumerate() {
            let record = Record {
                fingerprint: 0,
                recorded_at_ms: *at,
                answer: RecordedAnswer::Purchase(Err(Rejection::SoldOut)),
            };
            changes
                .records
                .insert(RecordKey(i as u128), RecordChange::Put(record));
        }
        h.write(changes);
        let due: Vec<u64> = h.records_due(25, 10).iter().map(|(at, _)| *at).collect();
        assert_eq!(due, vec![10, 20]);
        assert_eq!(h.records_due(100, 1).len(), 1);
    }
}
