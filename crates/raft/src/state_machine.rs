//! The state machine: applies committed batches to the in-memory [`tix_core::State`] and keeps
//! the latest snapshot in redb.
//!
//! The state is shared with readers (HTTP handlers) through [`SharedState`]; apply takes the
//! write lock once per group of entries. A snapshot is the JSON of the state plus its Raft
//! metadata, written in one redb transaction, so a crash leaves either the old or the new one.
//! Invariants are checked before a snapshot is built and after one is installed: a replica whose
//! state disagrees with itself stops rather than serve it.

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use tix_core::State;
use tokio::sync::watch;

use crate::types::{
    Entry, LogId, Outcomes, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The current snapshot: key `current` holds a [`StoredSnapshot`] as JSON.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

/// A snapshot as stored: metadata plus the state's JSON.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The applied state and what Raft knows about it, shared between the state machine and readers.
pub struct SharedState {
    state: RwLock<State>,
    applied: RwLock<(Option<LogId>, StoredMembership)>,
    /// Carries the last applied log index; readers wait on it for fresh data (live pages).
    applied_index: watch::Sender<u64>,
}

impl SharedState {
    /// Returns a read guard on the applied state. Hold it briefly: apply waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("state lock poisoned")
    }

    /// Returns the last applied log id.
    pub fn last_applied(&self) -> Option<LogId> {
        self.applied.read().expect("applied lock poisoned").0
    }

    /// Returns a receiver that changes whenever new entries are applied.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }
}

/// openraft's state machine over [`SharedState`] and the snapshot table.
pub struct StateMachineStore {
    shared: Arc<SharedState>,
    db: Arc<Database>,
    snapshots_built: u64,
}

fn to_io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl StateMachineStore {
    /// Opens the state machine: restores the last snapshot from `db`, if any.
    pub fn open(db: Arc<Database>) -> Result<StateMachineStore, StorageError> {
        let stored = read_snapshot(&db).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let (state, applied) = match stored {
            Some(snap) => {
                let state = decode_state(&snap)?;
                (
                    state,
                    (snap.meta.last_log_id, snap.meta.last_membership.clone()),
                )
            }
            None => (State::default(), (None, StoredMembership::default())),
        };
        let index = applied.0.map(|l| l.index).unwrap_or(0);
        let shared = Arc::new(SharedState {
            state: RwLock::new(state),
            applied: RwLock::new(applied),
            applied_index: watch::channel(index).0,
        });
        Ok(StateMachineStore {
            shared,
            db,
            snapshots_built: 0,
        })
    }

    /// Returns the state shared with readers.
    pub fn shared(&self) -> Arc<SharedState> {
        self.shared.clone()
    }
}

fn read_snapshot(db: &Database) -> std::io::Result<Option<StoredSnapshot>> {
    let txn = db.begin_write().map_err(to_io)?;
    txn.open_table(SNAPSHOT).map_err(to_io)?;
    txn.commit().map_err(to_io)?;
    let txn = db.begin_read().map_err(to_io)?;
    let table = txn.open_table(SNAPSHOT).map_err(to_io)?;
    let Some(bytes) = table.get("current").map_err(to_io)? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(bytes.value())?))
}

fn write_snapshot(db: &Database, snap: &StoredSnapshot) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(snap)?;
    let txn = db.begin_write().map_err(to_io)?;
    {
        let mut table = txn.open_table(SNAPSHOT).map_err(to_io)?;
        table.insert("current", bytes.as_slice()).map_err(to_io)?;
    }
    txn.commit().map_err(to_io)
}

/// Decodes a snapshot's state and checks its invariants (after decoding, as on every boundary).
fn decode_state(snap: &StoredSnapshot) -> Result<State, StorageError> {
    let state: State = serde_json::from_slice(&snap.data)
        .map_err(|e| StorageIOError::read_snapshot(Some(snap.meta.signature()), &e))?;
    if let Err(violation) = state.check_invariants() {
        panic!(
            "snapshot {} breaks an invariant: {violation}",
            snap.meta.snapshot_id
        );
    }
    Ok(state)
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok(self
            .shared
            .applied
            .read()
            .expect("applied lock poisoned")
            .clone())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcomes>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let mut last = None;
        let mut membership = None;
        {
            let mut state = self.shared.state.write().expect("state lock poisoned");
            for entry in entries {
                last = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => replies.push(Vec::new()),
                    EntryPayload::Normal(batch) => replies.push(state.apply_batch(&batch)),
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(entry.log_id), m));
                        replies.push(Vec::new());
                    }
                }
            }
        }
        let mut applied = self.shared.applied.write().expect("applied lock poisoned");
        if let Some(last) = last {
            applied.0 = Some(last);
            self.shared.applied_index.send_replace(last.index);
        }
        if let Some(m) = membership {
            applied.1 = m;
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        // Serialized here, while apply cannot run, so the data matches `last_applied` exactly.
        let state = self.shared.read();
        if let Err(violation) = state.check_invariants() {
            panic!("state breaks an invariant before a snapshot: {violation}");
        }
        let data = serde_json::to_vec(&*state).expect("state serializes");
        drop(state);
        let (last_log_id, last_membership) = self.shared.applied.read().expect("poisoned").clone();
        let snapshot_id = match last_log_id {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshots_built),
            None => format!("--{}", self.snapshots_built),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        SnapshotBuilder {
            db: self.db.clone(),
            snapshot: Some(StoredSnapshot { meta, data }),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let snap = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let state = decode_state(&snap)?;
        let db = self.db.clone();
        let snap = tokio::task::spawn_blocking(move || write_snapshot(&db, &snap).map(|_| snap))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &to_io(e)))?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *self.shared.state.write().expect("state lock poisoned") = state;
        let mut applied = self.shared.applied.write().expect("applied lock poisoned");
        *applied = (snap.meta.last_log_id, snap.meta.last_membership.clone());
        self.shared
            .applied_index
            .send_replace(snap.meta.last_log_id.map(|l| l.index).unwrap_or(0));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored =
            read_snapshot(&self.db).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Writes a snapshot prepared by [`StateMachineStore::get_snapshot_builder`].
pub struct SnapshotBuilder {
    db: Arc<Database>,
    snapshot: Option<StoredSnapshot>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let snap = self.snapshot.take().expect("a builder builds one snapshot");
        let db = self.db.clone();
        let signature = snap.meta.signature();
        let snap = tokio::task::spawn_blocking(move || write_snapshot(&db, &snap).map(|_| snap))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &to_io(e)))?
            .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e))?;
        metrics::counter!("tix_snapshots_built_total").increment(1);
        Ok(Snapshot {
            meta: snap.meta,
            snapshot: Box::new(Cursor::new(snap.data)),
        })
    }
}
