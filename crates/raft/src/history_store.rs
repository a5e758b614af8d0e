//! History in redb: the tables behind [`tix_core::History`], written by apply and read by pages
//! and the API.
//!
//! Apply opens one write transaction per group of committed entries, reads history through
//! [`HistoryView`] over that transaction's tables (the core reads its own pending changes
//! first), then writes the group's [`Changes`] and the applied log id into the same
//! transaction. Rows are postcard: tickets and orders by id, idempotency records by
//! `(recorded_at_ms, key hash)` — time first, so records are appended at the end of their table
//! and expire from its front, never scattered by their random hashes — with a [`RecordIndex`] in
//! memory (hash → time) to find one, per-customer counts by `(event, customer hash)`, and the
//! bytes of event images by event (raw, not postcard: the edge serves them as they are; the hot
//! state keeps their descriptors). Secondary
//! indexes serve listings: an event's active tickets in sale order (`/sales`, dashboards), a
//! user's tickets and orders.
//!
//! Why the index: a table keyed by the random hash turned every sale into a random B-tree
//! insert; once the table outgrew the page cache, a node with a million records sold at 0.67×
//! the rate of a fresh one. Time-ordered rows keep writes on one hot page; the index costs
//! about 35 bytes per record in retention and is rebuilt from the table when the store opens.
//!
//! Readers get a [`HistoryReader`]: a read transaction, so a listing sees one consistent applied
//! state however long it takes, while apply goes on (MVCC).

use std::borrow::Borrow;

use redb::{
    AccessGuard, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use tix_core::{
    Changes, CountKey, CustomerKey, EventId, History, HistoryScan, Order, OrderId, Record,
    RecordChange, RecordKey, Ticket, TicketId, TicketStatus, UserId,
};

/// Tickets by id.
pub(crate) const TICKETS: TableDefinition<u64, &[u8]> = TableDefinition::new("tickets");
/// Orders by id.
pub(crate) const ORDERS: TableDefinition<u64, &[u8]> = TableDefinition::new("orders");
/// Event images by event id: the image's bytes as uploaded.
pub(crate) const EVENT_IMAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("event_images");
/// Idempotency records by `(recorded_at_ms, key hash)`.
pub(crate) const RECORDS: TableDefinition<(u64, u128), &[u8]> = TableDefinition::new("records");

/// Where each stored record is: key hash → `recorded_at_ms`, the first half of its row key.
pub type RecordIndex = std::collections::BTreeMap<u128, u64>;

/// What a view knows about where records are.
pub(crate) trait RecordLocator {
    /// `Some(Some(at))`: stored at `at`; `Some(None)`: not stored; `None`: no index (scan).
    fn locate(&self, key: u128) -> Option<Option<u64>>;
}

impl RecordLocator for &mut RecordIndex {
    fn locate(&self, key: u128) -> Option<Option<u64>> {
        Some(self.get(&key).copied())
    }
}

/// Read views have no index; they never look records up on a hot path.
pub(crate) struct NoIndex;

impl RecordLocator for NoIndex {
    fn locate(&self, _key: u128) -> Option<Option<u64>> {
        None
    }
}
/// Per-customer counts, `(event, customer hash)` → tickets plus held units.
pub(crate) const COUNTS: TableDefinition<(u64, u128), u32> = TableDefinition::new("counts");
/// `(event, ticket)` for every active ticket: an event's sales in sale order.
pub(crate) const EVENT_TICKETS: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("event_tickets");
/// `(user, ticket)` for every ticket a shop user bought.
pub(crate) const USER_TICKETS: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("user_tickets");
/// `(user, order)` for every order.
pub(crate) const USER_ORDERS: TableDefinition<(u64, u64), ()> = TableDefinition::new("user_orders");

/// Every history table, for creating, wiping and copying them.
pub(crate) const ALL_U64_BYTES: [TableDefinition<u64, &[u8]>; 3] = [TICKETS, ORDERS, EVENT_IMAGES];
/// The index tables keyed by two u64s.
pub(crate) const ALL_PAIR_INDEXES: [TableDefinition<(u64, u64), ()>; 3] =
    [EVENT_TICKETS, USER_TICKETS, USER_ORDERS];

/// A storage failure inside history; the state machine turns it into openraft's error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("history store: {0}")]
    Db(String),
    /// A stored row did not decode: the store is damaged or from another format.
    #[error("history store: undecodable {what}: {detail}")]
    Corrupt {
        /// Which kind of row.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
}

pub(crate) fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(crate) fn encode(value: &impl serde::Serialize) -> Vec<u8> {
    postcard::to_stdvec(value).expect("history rows serialize")
}

/// Reads history through six tables of one transaction. `History` cannot return errors (the
/// core is pure), so a read failure panics: a replica that cannot read its own history must
/// stop rather than decide a sale without it.
pub(crate) struct HistoryView<T, O, R, C, E, G, Ix> {
    pub tickets: T,
    pub orders: O,
    pub records: R,
    pub counts: C,
    pub event_tickets: E,
    pub images: G,
    pub index: Ix,
}

fn must<T>(what: &str, r: Result<T, StoreError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("reading {what} from history failed: {e}"),
    }
}

fn get_row<K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    what: &'static str,
    key: impl for<'a> Borrow<K::SelfType<'a>>,
) -> Result<Option<T>, StoreError>
where
    K: redb::Key + 'static,
    T: DeserializeOwned,
{
    let guard: Option<AccessGuard<'_, &[u8]>> = table.get(key).map_err(db_err)?;
    guard.map(|g| decode(what, g.value())).transpose()
}

impl<T, O, R, C, E, G, Ix> History for HistoryView<T, O, R, C, E, G, Ix>
where
    T: ReadableTable<u64, &'static [u8]>,
    O: ReadableTable<u64, &'static [u8]>,
    R: ReadableTable<(u64, u128), &'static [u8]>,
    C: ReadableTable<(u64, u128), u32>,
    E: ReadableTable<(u64, u64), ()>,
    G: ReadableTable<u64, &'static [u8]>,
    Ix: RecordLocator,
{
    fn ticket(&self, id: TicketId) -> Option<Ticket> {
        must("a ticket", get_row(&self.tickets, "ticket", id.0))
    }

    fn order(&self, id: OrderId) -> Option<Order> {
        must("an order", get_row(&self.orders, "order", id.0))
    }

    fn record(&self, key: RecordKey) -> Option<Record> {
        match self.index.locate(key.0) {
            Some(Some(at)) => must("a record", get_row(&self.records, "record", (at, key.0))),
            Some(None) => None,
            None => {
                let rows = must("records", self.records.iter().map_err(db_err));
                let found = rows
                    .map(|row| must("a record", row.map_err(db_err)))
                    .find(|(k, _)| k.value().1 == key.0);
                found.map(|(_, v)| must("a record", decode("record", v.value())))
            }
        }
    }

    fn customer_count(&self, key: CountKey) -> u32 {
        let got = self.counts.get((key.event_id.0, key.customer));
        must("a count", got.map_err(db_err)).map_or(0, |g| g.value())
    }

    fn records_due(&self, recorded_at_or_before_ms: u64, max: usize) -> Vec<(u64, RecordKey)> {
        let range = self
            .records
            .range((0, 0)..=(recorded_at_or_before_ms, u128::MAX));
        let range = must("record times", range.map_err(db_err));
        let mut due = Vec::new();
        for row in range.take(max) {
            let (key, _) = must("a record time", row.map_err(db_err));
            let (at, hash) = key.value();
            due.push((at, RecordKey(hash)));
        }
        due
    }

    fn for_each_active_ticket(&self, event_id: EventId, f: &mut dyn FnMut(&Ticket)) {
        let range = self
            .event_tickets
            .range((event_id.0, 0)..=(event_id.0, u64::MAX));
        for row in must("an event's tickets", range.map_err(db_err)) {
            let (key, _) = must("an event's ticket", row.map_err(db_err));
            let id = TicketId(key.value().1);
            if let Some(ticket) = self.ticket(id) {
                f(&ticket);
            }
        }
    }
}

impl<T, O, R, C, E, G, Ix> HistoryScan for HistoryView<T, O, R, C, E, G, Ix>
where
    T: ReadableTable<u64, &'static [u8]>,
    O: ReadableTable<u64, &'static [u8]>,
    R: ReadableTable<(u64, u128), &'static [u8]>,
    C: ReadableTable<(u64, u128), u32>,
    E: ReadableTable<(u64, u64), ()>,
    G: ReadableTable<u64, &'static [u8]>,
    Ix: RecordLocator,
{
    fn for_each_ticket(&self, f: &mut dyn FnMut(&Ticket)) {
        let rows = must("tickets", self.tickets.iter().map_err(db_err));
        for row in rows {
            let (_, v) = must("a ticket", row.map_err(db_err));
            f(&must("a ticket", decode("ticket", v.value())));
        }
    }

    fn for_each_order(&self, f: &mut dyn FnMut(&Order)) {
        let rows = must("orders", self.orders.iter().map_err(db_err));
        for row in rows {
            let (_, v) = must("an order", row.map_err(db_err));
            f(&must("an order", decode("order", v.value())));
        }
    }

    fn for_each_count(&self, f: &mut dyn FnMut(CountKey, u32)) {
        let rows = must("counts", self.counts.iter().map_err(db_err));
        for row in rows {
            let (k, v) = must("a count", row.map_err(db_err));
            let (event, customer) = k.value();
            let key = CountKey {
                event_id: EventId(event),
                customer,
            };
            f(key, v.value());
        }
    }

    fn for_each_image(&self, f: &mut dyn FnMut(EventId, &[u8])) {
        let rows = must("images", self.images.iter().map_err(db_err));
        for row in rows {
            let (k, v) = must("an image", row.map_err(db_err));
            f(EventId(k.value()), v.value());
        }
    }
}

/// The history tables of a write transaction, as the core reads them.
pub(crate) type WriteView<'t> = HistoryView<
    Table<'t, u64, &'static [u8]>,
    Table<'t, u64, &'static [u8]>,
    Table<'t, (u64, u128), &'static [u8]>,
    Table<'t, (u64, u128), u32>,
    Table<'t, (u64, u64), ()>,
    Table<'t, u64, &'static [u8]>,
    &'t mut RecordIndex,
>;

/// The history tables of a write transaction: read while applying, then written.
pub(crate) struct WriteTables<'t> {
    pub view: WriteView<'t>,
    user_tickets: Table<'t, (u64, u64), ()>,
    user_orders: Table<'t, (u64, u64), ()>,
}

impl<'t> WriteTables<'t> {
    /// Opens (creating when missing) every history table in `txn`; `index` must describe the
    /// records table as `txn` sees it, and is kept in step with what is written.
    pub fn open(
        txn: &'t WriteTransaction,
        index: &'t mut RecordIndex,
    ) -> Result<WriteTables<'t>, StoreError> {
        Ok(WriteTables {
            view: HistoryView {
                tickets: txn.open_table(TICKETS).map_err(db_err)?,
                orders: txn.open_table(ORDERS).map_err(db_err)?,
                records: txn.open_table(RECORDS).map_err(db_err)?,
                counts: txn.open_table(COUNTS).map_err(db_err)?,
                event_tickets: txn.open_table(EVENT_TICKETS).map_err(db_err)?,
                images: txn.open_table(EVENT_IMAGES).map_err(db_err)?,
                index,
            },
            user_tickets: txn.open_table(USER_TICKETS).map_err(db_err)?,
            user_orders: txn.open_table(USER_ORDERS).map_err(db_err)?,
        })
    }

    /// Writes one group of changes, keeping the indexes in step.
    pub fn write(&mut self, changes: Changes) -> Result<(), StoreError> {
        for ticket in changes.tickets.into_values() {
            self.put_ticket(&ticket)?;
        }
        for order in changes.orders.into_values() {
            let (id, user) = (order.id.0, order.customer.0);
            let bytes = encode(&order);
            self.view
                .orders
                .insert(id, bytes.as_slice())
                .map_err(db_err)?;
            self.user_orders.insert((user, id), ()).map_err(db_err)?;
        }
        for (key, change) in changes.records {
            self.change_record(key, change)?;
        }
        for (key, count) in changes.counts {
            let row = (key.event_id.0, key.customer);
            if count == 0 {
                self.view.counts.remove(row).map_err(db_err)?;
            } else {
                self.view.counts.insert(row, count).map_err(db_err)?;
            }
        }
        for (event_id, image) in changes.images {
            match image {
                Some(bytes) => self.put_image(event_id.0, &bytes)?,
                None => {
                    self.view.images.remove(event_id.0).map_err(db_err)?;
                }
            }
        }
        Ok(())
    }

    /// Stores an event's image bytes (applied, or as they come from a snapshot).
    pub fn put_image(&mut self, event_id: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.view.images.insert(event_id, bytes).map_err(db_err)?;
        Ok(())
    }

    /// Inserts a row as it comes from a snapshot, indexes included.
    pub fn put_ticket(&mut self, ticket: &Ticket) -> Result<(), StoreError> {
        let (id, event) = (ticket.id.0, ticket.event_id.0);
        let bytes = encode(ticket);
        self.view
            .tickets
            .insert(id, bytes.as_slice())
            .map_err(db_err)?;
        if ticket.status == TicketStatus::Active {
            self.view
                .event_tickets
                .insert((event, id), ())
                .map_err(db_err)?;
        } else {
            self.view
                .event_tickets
                .remove((event, id))
                .map_err(db_err)?;
        }
        if let CustomerKey::User(user) = ticket.customer {
            self.user_tickets.insert((user.0, id), ()).map_err(db_err)?;
        }
        Ok(())
    }

    fn change_record(&mut self, key: RecordKey, change: RecordChange) -> Result<(), StoreError> {
        // The stored row under this key, whatever its time, goes first: a `Put` may replace a
        // record that expired and was recorded again within one group.
        if let Some(at) = self.view.index.remove(&key.0) {
            self.view.records.remove((at, key.0)).map_err(db_err)?;
        }
        if let RecordChange::Put(record) = change {
            let at = record.recorded_at_ms;
            let bytes = encode(&record);
            self.view
                .records
                .insert((at, key.0), bytes.as_slice())
                .map_err(db_err)?;
            self.view.index.insert(key.0, at);
        }
        Ok(())
    }

    /// Inserts a record row as it comes from a snapshot.
    pub fn put_record(&mut self, key: (u64, u128), bytes: &[u8]) -> Result<(), StoreError> {
        let _: Record = decode("record", bytes)?;
        self.view.records.insert(key, bytes).map_err(db_err)?;
        self.view.index.insert(key.1, key.0);
        Ok(())
    }

    /// Inserts an order row as it comes from a snapshot.
    pub fn put_order(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let order: Order = decode("order", bytes)?;
        let (id, user) = (order.id.0, order.customer.0);
        self.view.orders.insert(id, bytes).map_err(db_err)?;
        self.user_orders.insert((user, id), ()).map_err(db_err)?;
        Ok(())
    }
}

/// Deletes every history table in `txn` (before a snapshot is installed).
pub(crate) fn wipe(txn: &WriteTransaction) -> Result<(), StoreError> {
    for t in ALL_U64_BYTES {
        txn.delete_table(t).map_err(db_err)?;
    }
    for t in ALL_PAIR_INDEXES {
        txn.delete_table(t).map_err(db_err)?;
    }
    txn.delete_table(RECORDS).map_err(db_err)?;
    txn.delete_table(COUNTS).map_err(db_err)?;
    Ok(())
}

/// The history tables of a read transaction.
pub(crate) type ReadView = HistoryView<
    ReadOnlyTable<u64, &'static [u8]>,
    ReadOnlyTable<u64, &'static [u8]>,
    ReadOnlyTable<(u64, u128), &'static [u8]>,
    ReadOnlyTable<(u64, u128), u32>,
    ReadOnlyTable<(u64, u64), ()>,
    ReadOnlyTable<u64, &'static [u8]>,
    NoIndex,
>;

/// A consistent read-only view of history for pages, the API and snapshots.
pub struct HistoryReader {
    pub(crate) view: ReadView,
    user_tickets: ReadOnlyTable<(u64, u64), ()>,
    user_orders: ReadOnlyTable<(u64, u64), ()>,
}

impl HistoryReader {
    /// Opens every history table of a read transaction (the tables exist: the store creates
    /// them when it opens).
    pub(crate) fn open(txn: &ReadTransaction) -> Result<HistoryReader, StoreError> {
        Ok(HistoryReader {
            view: HistoryView {
                tickets: txn.open_table(TICKETS).map_err(db_err)?,
                orders: txn.open_table(ORDERS).map_err(db_err)?,
                records: txn.open_table(RECORDS).map_err(db_err)?,
                counts: txn.open_table(COUNTS).map_err(db_err)?,
                event_tickets: txn.open_table(EVENT_TICKETS).map_err(db_err)?,
                images: txn.open_table(EVENT_IMAGES).map_err(db_err)?,
                index: NoIndex,
            },
            user_tickets: txn.open_table(USER_TICKETS).map_err(db_err)?,
            user_orders: txn.open_table(USER_ORDERS).map_err(db_err)?,
        })
    }

    /// Returns a ticket.
    pub fn ticket(&self, id: TicketId) -> Option<Ticket> {
        self.view.ticket(id)
    }

    /// Returns an order.
    pub fn order(&self, id: OrderId) -> Option<Order> {
        self.view.order(id)
    }

    /// Returns the bytes of an event's image, if it has one. Read it after taking the state
    /// (`SharedState::read`) that gave its descriptor, so that both are of one applied index.
    pub fn event_image(&self, event_id: EventId) -> Option<Vec<u8>> {
        let got = self.view.images.get(event_id.0).map_err(db_err);
        must("an image", got).map(|g| g.value().to_vec())
    }

    /// Returns a shop user's tickets (active and refunded), oldest first.
    pub fn tickets_of(&self, user: UserId) -> Vec<Ticket> {
        let ids = pair_range(&self.user_tickets, user.0);
        ids.filter_map(|id| self.ticket(TicketId(id))).collect()
    }

    /// Returns a shop user's orders, oldest first.
    pub fn orders_of(&self, user: UserId) -> Vec<Order> {
        let ids = pair_range(&self.user_orders, user.0);
        ids.filter_map(|id| self.order(OrderId(id))).collect()
    }

    /// Returns an event's active tickets in sale order, one row at a time (an export of a
    /// million tickets never holds them all).
    pub fn sales(&self, event_id: EventId) -> impl Iterator<Item = Ticket> + '_ {
        let ids = pair_range(&self.view.event_tickets, event_id.0);
        ids.filter_map(|id| self.ticket(TicketId(id)))
    }

    /// Builds the record index from the records table (when the store opens or after an
    /// install).
    pub(crate) fn record_index(&self) -> Result<RecordIndex, StoreError> {
        let mut index = RecordIndex::new();
        for row in self.view.records.iter().map_err(db_err)? {
            let (k, _) = row.map_err(db_err)?;
            let (at, key) = k.value();
            index.insert(key, at);
        }
        Ok(index)
    }
}

/// The second halves of the `(first, second)` keys whose first half is `first`.
fn pair_range(
    table: &ReadOnlyTable<(u64, u64), ()>,
    first: u64,
) -> impl Iterator<Item = u64> + 'static {
    let range = must(
        "an index",
        table.range((first, 0)..=(first, u64::MAX)).map_err(db_err),
    );
    range.map(|row| must("an index row", row.map_err(db_err)).0.value().1)
}
