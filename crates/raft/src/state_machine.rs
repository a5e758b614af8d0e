//! The state machine: applies committed batches to the hot [`tix_core::State`] in memory and to
//! history in redb (`state.redb`), checkpoints, and builds, sends and installs snapshots as
//! files, streamed.
//!
//! **Apply.** One redb write transaction per group of entries openraft hands over: the core reads
//! history through the transaction's tables, then the group's [`tix_core::Changes`] and the
//! applied log id are written in the same transaction. These commits are not durable (no fsync):
//! the Raft log is, and recovery replays it.
//!
//! **Checkpoints.** A checkpoint is the hot state's encoding plus the applied log id and
//! membership, written in a durable transaction. redb keeps non-durable commits only until a
//! crash, so after a crash the store is back at its last checkpoint with history of exactly the
//! same index, and openraft replays the log from there. A checkpoint is taken for every snapshot
//! and when the state machine is dropped (clean shutdown). Should the store ever be found ahead of
//! its checkpoint, it is rebuilt from the newest snapshot file (or from empty) and the log
//! replayed: history that a replay would read must never be from the future.
//!
//! **Snapshots.** Building one takes a checkpoint, then opens a read transaction on it (MVCC):
//! applies go on while a background task writes the snapshot file from that view. The file is
//! what followers receive in chunks and what a follower installs, streamed from disk into a fresh
//! set of tables in one transaction; nothing holds a whole snapshot in memory. Invariants are
//! checked over the whole state after an install.

use std::fs;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};
use serde::{Deserialize, Serialize};
use tix_core::State;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::history_store::{
    self, HistoryReader, RecordIndex, StoreError, WriteTables, db_err, encode,
};
use crate::types::{
    Entry, LogId, Outcomes, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// Small records: `format`, `applied` (every apply), `checkpoint` (durable points).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The store's format; a different value is refused.
const STORE_FORMAT: u8 = 1;
/// The first bytes of a snapshot file: name and format version.
const SNAPSHOT_MAGIC: &[u8; 8] = b"TIXSNAP1";
/// Rows per frame in a snapshot file.
const ROWS_PER_FRAME: usize = 1024;
/// The largest frame a snapshot file may contain (guards against a damaged length prefix).
const FRAME_BYTES_MAX: u64 = 64 << 20;
/// The largest header (snapshot meta and the hot state) a snapshot file may contain.
const HEADER_BYTES_MAX: u64 = 256 << 20;
/// redb's page cache for `state.redb`.
const STATE_CACHE_BYTES: usize = 32 << 20;

/// The applied position: last applied log id and membership.
type Applied = (Option<LogId>, StoredMembership);

/// The hot state at a durable point.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    applied: Applied,
    state: Vec<u8>,
}

/// A snapshot file's header, after the magic bytes.
#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    meta: SnapshotMeta,
    state: Vec<u8>,
}

/// A group of rows in a snapshot file.
#[derive(Serialize, Deserialize)]
enum Frame {
    Tickets(Vec<Vec<u8>>),
    Orders(Vec<Vec<u8>>),
    Records(Vec<((u64, u128), Vec<u8>)>),
    Counts(Vec<((u64, u128), u32)>),
    /// The last frame, with row totals to check the file is whole.
    End {
        rows: u64,
    },
    /// Event images, `(event id, bytes)`: few to a frame (an image is up to
    /// `tix_core::EVENT_IMAGE_BYTES_MAX`). Appended after `End` so that the earlier frames keep
    /// their encoding and a snapshot without images reads as before.
    Images(Vec<(u64, Vec<u8>)>),
}

/// Images per frame of a snapshot file: at most 16 × 512 KiB = 8 MiB, well below
/// [`FRAME_BYTES_MAX`].
const IMAGES_PER_FRAME: usize = 16;

/// The applied state and what Raft knows about it, shared between the state machine and readers.
pub struct SharedState {
    state: RwLock<State>,
    applied: RwLock<Applied>,
    /// Carries the last applied log index; readers wait on it for fresh data (live pages).
    applied_index: watch::Sender<u64>,
    db: Arc<Database>,
    db_path: PathBuf,
    /// Why this replica stopped, once it has (see [`FailStop`]).
    failure: OnceLock<String>,
    /// What happens when it does.
    fail_stop: FailStop,
    /// Commands applied per second (the sale rate this cluster has shown it can commit).
    pub throughput: crate::meter::ThroughputMeter,
}

/// The exit code of a replica that stopped itself (`EX_SOFTWARE`): apply panicked, an invariant
/// broke, or storage failed under the state machine.
pub const FAIL_STOP_EXIT_CODE: i32 = 70;

/// What a replica does when it can no longer trust its own state: a panic or a broken invariant
/// in apply, a storage error under the state machine, a fatal Raft error. It never goes on
/// serving — a replica that disagrees with itself must not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailStop {
    /// Log the cause and exit the process with [`FAIL_STOP_EXIT_CODE`]; the supervisor (systemd,
    /// `tix cluster up`) restarts it, and it recovers from its durable log like after a crash.
    #[default]
    ExitProcess,
    /// Log the cause, mark the replica failed and stop Raft, but keep the process (in-process
    /// tests): `/healthz` answers 503 and the HTTP edge refuses every request.
    MarkFailed,
}

impl SharedState {
    /// Returns a read guard on the hot state. Hold it briefly: apply waits for it.
    ///
    /// A poisoned lock means an apply panicked half-way: the replica fail-stops (under
    /// [`FailStop::MarkFailed`] the guard is still returned, and the edge refuses requests).
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| {
            self.fail("the state lock is poisoned: an apply panicked".into());
            poisoned.into_inner()
        })
    }

    /// Returns why this replica stopped, if it has. Readers and `/healthz` check it.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Stops this replica for `reason` (logged once), as its [`FailStop`] policy says.
    pub fn fail(&self, reason: String) {
        if self.failure.set(reason.clone()).is_ok() {
            tracing::error!(
                %reason,
                "fail-stop: this replica can no longer trust its state and stops serving"
            );
        }
        if self.fail_stop == FailStop::ExitProcess {
            std::process::exit(FAIL_STOP_EXIT_CODE);
        }
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| {
            self.fail("the state lock is poisoned: an apply panicked".into());
            poisoned.into_inner()
        })
    }

    fn write_applied(&self) -> RwLockWriteGuard<'_, Applied> {
        self.applied.write().unwrap_or_else(|poisoned| {
            self.fail("the applied-position lock is poisoned: an apply panicked".into());
            poisoned.into_inner()
        })
    }

    fn applied_position(&self) -> Applied {
        self.applied
            .read()
            .unwrap_or_else(|poisoned| {
                self.fail("the applied-position lock is poisoned: an apply panicked".into());
                poisoned.into_inner()
            })
            .clone()
    }

    /// Returns a consistent view of history (tickets, orders) as of the last applied entry.
    /// Take it after [`SharedState::read`] when both must agree.
    pub fn history(&self) -> Result<HistoryReader, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        HistoryReader::open(&txn)
    }

    /// Checks every invariant of the applied state and its history (a full scan: tests and
    /// tools, not the hot path).
    pub fn check_invariants(&self) -> Result<(), String> {
        let state = self.read();
        let history = self.history().map_err(|e| e.to_string())?;
        state
            .check_invariants(&history.view)
            .map_err(|v| v.to_string())
    }

    /// Returns the last applied log id.
    pub fn last_applied(&self) -> Option<LogId> {
        self.applied_position().0
    }

    /// Returns a receiver that changes whenever new entries are applied.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }

    /// Returns the size of `state.redb` on disk, in bytes.
    pub fn store_bytes(&self) -> u64 {
        fs::metadata(&self.db_path).map_or(0, |m| m.len())
    }
}

/// openraft's state machine over [`SharedState`], `state.redb` and the snapshot files.
pub struct StateMachineStore {
    shared: Arc<SharedState>,
    db: Arc<Database>,
    snapshot_dir: PathBuf,
    /// The file `begin_receiving_snapshot` created last.
    receiving: Option<PathBuf>,
    snapshots_built: u64,
    /// The applied log id of the last durable checkpoint.
    checkpointed: Option<LogId>,
    /// Where each idempotency record is in `state.redb` (see `history_store`).
    index: RecordIndex,
    /// How this replica stops when it cannot trust its state.
    options: StateMachineOptions,
}

/// How a state machine reacts to faults.
#[derive(Debug, Clone, Default)]
pub struct StateMachineOptions {
    /// What a fault does to the process.
    pub fail_stop: FailStop,
    /// Test-only fault injection: when this file exists, the next apply panics under the state
    /// lock exactly as a broken invariant in the core does (`TIX_TEST_FAIL_APPLY_FILE`).
    pub fail_apply_file: Option<PathBuf>,
}

/// The message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}

fn to_io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(&to_io(e)).into()
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&to_io(e)).into()
}

/// Why the data directory cannot be used as it is.
fn refuse(detail: &str) -> StorageError {
    read_err(format!(
        "{detail}; tix does not migrate it: start with an empty --data-dir (a single node), or \
         wipe this node's data directory and add it back as a new node (cluster)"
    ))
}

impl StateMachineStore {
    /// Opens the state machine in `data_dir`: `state.redb` (hot state checkpoint and history)
    /// and `snapshots/`. Refuses a data directory of the earlier JSON format.
    pub fn open(data_dir: &Path) -> Result<StateMachineStore, StorageError> {
        Self::open_with(data_dir, StateMachineOptions::default())
    }

    /// Like [`StateMachineStore::open`], with the given fault policy.
    pub fn open_with(
        data_dir: &Path,
        options: StateMachineOptions,
    ) -> Result<StateMachineStore, StorageError> {
        if data_dir.join("snapshots.redb").exists() {
            return Err(refuse(
                "the data directory was written by an earlier tix version (JSON snapshots)",
            ));
        }
        let snapshot_dir = data_dir.join("snapshots");
        fs::create_dir_all(&snapshot_dir).map_err(read_err)?;
        remove_unfinished(&snapshot_dir);
        let db = redb::Builder::new()
            .set_cache_size(STATE_CACHE_BYTES)
            .create(data_dir.join("state.redb"))
            .map_err(read_err)?;
        let db = Arc::new(db);
        prepare_tables(&db).map_err(|e| match e {
            PrepareError::Format(found) => refuse(&format!(
                "state.redb has store format {found}, not {STORE_FORMAT}"
            )),
            PrepareError::Store(e) => read_err(e),
        })?;
        let (checkpoint, applied) = read_positions(&db).map_err(read_err)?;
        let checkpoint = match checkpoint {
            Some(c) if c.applied.0 == applied.as_ref().and_then(|a| a.0) => Some(c),
            None if applied.is_none() => None,
            _ => {
                tracing::warn!(
                    "history is ahead of its checkpoint; rebuilding from the newest snapshot"
                );
                recover(&db, &snapshot_dir).map_err(read_err)?
            }
        };
        let (state, applied) = match checkpoint {
            Some(c) => (State::decode(&c.state).map_err(read_err)?, c.applied),
            None => (State::default(), (None, StoredMembership::default())),
        };
        let checkpointed = applied.0;
        let applied_index = applied.0.map(|l| l.index).unwrap_or(0);
        let txn = db.begin_read().map_err(read_err)?;
        let index = HistoryReader::open(&txn)
            .and_then(|reader| reader.record_index())
            .map_err(read_err)?;
        drop(txn);
        let shared = Arc::new(SharedState {
            state: RwLock::new(state),
            applied: RwLock::new(applied),
            applied_index: watch::channel(applied_index).0,
            db: db.clone(),
            db_path: data_dir.join("state.redb"),
            failure: OnceLock::new(),
            fail_stop: options.fail_stop,
            throughput: crate::meter::ThroughputMeter::new(),
        });
        Ok(StateMachineStore {
            shared,
            db,
            snapshot_dir,
            receiving: None,
            snapshots_built: 0,
            checkpointed,
            index,
            options,
        })
    }

    /// Returns the state shared with readers.
    pub fn shared(&self) -> Arc<SharedState> {
        self.shared.clone()
    }

    /// Writes a durable checkpoint of the hot state at the applied position. Applies cannot run
    /// meanwhile (the state machine is borrowed mutably), so state and history agree.
    fn checkpoint(&mut self) -> Result<Checkpoint, StoreError> {
        let applied = self.shared.applied_position();
        let state = self.shared.read().encode();
        let checkpoint = Checkpoint {
            applied: applied.clone(),
            state,
        };
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let bytes = encode(&checkpoint);
            meta.insert("checkpoint", bytes.as_slice())
                .map_err(db_err)?;
            let bytes = encode(&Some(applied.clone()));
            meta.insert("applied", bytes.as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        self.checkpointed = applied.0;
        metrics::gauge!("tix_checkpoint_state_bytes").set(checkpoint.state.len() as f64);
        Ok(checkpoint)
    }

    /// Applies a group of entries in one write transaction.
    fn apply_group(&mut self, entries: Vec<Entry>) -> Result<Vec<Outcomes>, StoreError> {
        let _span = tracing::debug_span!(
            "apply",
            entries = entries.len(),
            first_index = entries.first().map(|e| e.log_id.index),
        )
        .entered();
        let started = Instant::now();
        let mut replies = Vec::with_capacity(entries.len());
        let mut txn = self.db.begin_write().map_err(db_err)?;
        txn.set_durability(Durability::None).map_err(db_err)?;
        let mut state = self.shared.write_state();
        if let Some(path) = &self.options.fail_apply_file
            && path.exists()
        {
            // Test-only: behaves as a broken invariant does in the core, under the state lock.
            panic!(
                "invariant violated (injected for a test: {} exists)",
                path.display()
            );
        }
        let mut applied = self.shared.applied_position();
        let mut commands = 0;
        {
            let mut tables = WriteTables::open(&txn, &mut self.index)?;
            for entry in entries {
                applied.0 = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => replies.push(Vec::new()),
                    EntryPayload::Normal(batch) => {
                        commands += batch.commands.len();
                        replies.push(state.apply_batch(&batch, &tables.view))
                    }
                    EntryPayload::Membership(m) => {
                        applied.1 = StoredMembership::new(Some(entry.log_id), m);
                        replies.push(Vec::new());
                    }
                }
            }
            tables.write(state.take_changes())?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let bytes = encode(&Some(applied.clone()));
            meta.insert("applied", bytes.as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        // Published while the state lock is held: a reader that takes the state, then history,
        // sees both at this index.
        let index = applied.0.map(|l| l.index).unwrap_or(0);
        *self.shared.write_applied() = applied;
        drop(state);
        self.shared.applied_index.send_replace(index);
        self.shared.throughput.record(commands);
        metrics::histogram!("tix_apply_group_seconds").record(started.elapsed().as_secs_f64());
        Ok(replies)
    }

    fn snapshot_path(&self, meta: &SnapshotMeta) -> PathBuf {
        let index = meta.last_log_id.map(|l| l.index).unwrap_or(0);
        let name = format!(
            "snap-{index:020}-{}.bin",
            meta.snapshot_id.replace('/', "_")
        );
        self.snapshot_dir.join(name)
    }
}

impl Drop for StateMachineStore {
    /// A clean shutdown leaves a checkpoint at the last applied entry, so the next start replays
    /// nothing it already applied.
    fn drop(&mut self) {
        if self.checkpointed != self.shared.last_applied()
            && let Err(e) = self.checkpoint()
        {
            tracing::error!("final checkpoint failed: {e}");
        }
    }
}

#[derive(Debug)]
enum PrepareError {
    Format(u8),
    Store(StoreError),
}

/// Creates every table and records or checks the store format.
fn prepare_tables(db: &Database) -> Result<(), PrepareError> {
    fn store(e: impl std::fmt::Display) -> PrepareError {
        PrepareError::Store(db_err(e))
    }
    let txn = db.begin_write().map_err(store)?;
    {
        let _ = WriteTables::open(&txn, &mut RecordIndex::new()).map_err(PrepareError::Store)?;
        let mut meta = txn.open_table(META).map_err(store)?;
        let found = meta
            .get("format")
            .map_err(store)?
            .map(|g| g.value().to_vec());
        match found.as_deref() {
            None => {
                meta.insert("format", [STORE_FORMAT].as_slice())
                    .map_err(store)?;
            }
            Some([STORE_FORMAT]) => {}
            Some(other) => return Err(PrepareError::Format(other.first().copied().unwrap_or(0))),
        }
    }
    txn.commit().map_err(store)
}

/// Reads the checkpoint and the applied position of the last commit.
fn read_positions(db: &Database) -> Result<(Option<Checkpoint>, Option<Applied>), StoreError> {
    let txn = db.begin_read().map_err(db_err)?;
    let meta = txn.open_table(META).map_err(db_err)?;
    let decode_meta = |key: &str| -> Result<Option<Vec<u8>>, StoreError> {
        Ok(meta.get(key).map_err(db_err)?.map(|g| g.value().to_vec()))
    };
    let checkpoint = match decode_meta("checkpoint")? {
        Some(bytes) => Some(postcard::from_bytes(&bytes).map_err(db_err)?),
        None => None,
    };
    let applied: Option<Applied> = match decode_meta("applied")? {
        Some(bytes) => postcard::from_bytes(&bytes).map_err(db_err)?,
        None => None,
    };
    Ok((checkpoint, applied))
}

/// Rebuilds the store from the newest snapshot file, or empties it when there is none (the log
/// then still holds every entry: it is compacted only up to a snapshot).
fn recover(db: &Database, dir: &Path) -> Result<Option<Checkpoint>, StoreError> {
    match newest_snapshot(dir)? {
        Some(path) => {
            let file = fs::File::open(&path).map_err(db_err)?;
            let (meta, state, _) = install_from_file(db, file)?;
            Ok(Some(Checkpoint {
                applied: (meta.last_log_id, meta.last_membership),
                state: state.encode(),
            }))
        }
        None => {
            let txn = db.begin_write().map_err(db_err)?;
            history_store::wipe(&txn)?;
            {
                let _ = WriteTables::open(&txn, &mut RecordIndex::new())?;
                let mut meta = txn.open_table(META).map_err(db_err)?;
                meta.remove("checkpoint").map_err(db_err)?;
                meta.remove("applied").map_err(db_err)?;
            }
            txn.commit().map_err(db_err)?;
            Ok(None)
        }
    }
}

/// The newest complete snapshot file (names sort by index).
fn newest_snapshot(dir: &Path) -> Result<Option<PathBuf>, StoreError> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(db_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    files.sort();
    Ok(files.pop())
}

/// Copies a received snapshot to `path` (through a `.part` file, synced, renamed).
fn keep_as(file: &mut fs::File, path: &Path) -> Result<(), StoreError> {
    let partial = path.with_extension("part");
    let mut out = fs::File::create(&partial).map_err(db_err)?;
    std::io::copy(file, &mut out).map_err(db_err)?;
    out.sync_all().map_err(db_err)?;
    fs::rename(&partial, path).map_err(db_err)
}

/// Removes snapshot files a crash left unfinished (built or received).
fn remove_unfinished(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_some_and(|x| x == "part") {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Removes every complete snapshot file but `keep`.
fn remove_other_snapshots(dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let is_snapshot = path.extension().is_some_and(|x| x == "bin");
        if is_snapshot
            && path != keep
            && let Err(e) = fs::remove_file(&path)
        {
            tracing::warn!("cannot remove old snapshot {}: {e}", path.display());
        }
    }
}

/// Writes one length-prefixed value (the header or a frame): its size as a u64, then its
/// postcard bytes. Returns the bytes written.
fn write_sized(out: &mut impl Write, value: &impl Serialize) -> Result<u64, StoreError> {
    let bytes = encode(value);
    out.write_all(&(bytes.len() as u64).to_le_bytes())
        .map_err(db_err)?;
    out.write_all(&bytes).map_err(db_err)?;
    Ok(8 + bytes.len() as u64)
}

/// Reads one value written by [`write_sized`], refusing a size above `bytes_max` (a damaged
/// length prefix must not allocate gigabytes).
fn read_sized<T: serde::de::DeserializeOwned>(
    input: &mut impl Read,
    bytes_max: u64,
    what: &str,
) -> Result<T, StoreError> {
    let mut len = [0u8; 8];
    input.read_exact(&mut len).map_err(db_err)?;
    let len = u64::from_le_bytes(len);
    if len > bytes_max {
        return Err(db_err(format!("snapshot {what} of {len} bytes")));
    }
    let mut bytes = vec![0; len as usize];
    input.read_exact(&mut bytes).map_err(db_err)?;
    postcard::from_bytes(&bytes).map_err(db_err)
}

/// Writes a snapshot file from a read transaction: header, then every history row in frames.
/// Returns its size in bytes.
fn write_snapshot_file(
    path: &Path,
    txn: &ReadTransaction,
    header: &SnapshotHeader,
) -> Result<u64, StoreError> {
    let reader = HistoryReader::open(txn)?;
    let partial = path.with_extension("part");
    let file = fs::File::create(&partial).map_err(db_err)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(SNAPSHOT_MAGIC).map_err(db_err)?;
    let mut bytes = 8 + write_sized(&mut out, header)?;
    let mut rows = 0u64;
    let view = &reader.view;
    bytes += copy_rows(
        &mut out,
        &mut rows,
        view.tickets.iter().map_err(db_err)?,
        |k, v| {
            let _ = k;
            v.to_vec()
        },
        Frame::Tickets,
    )?;
    bytes += copy_rows(
        &mut out,
        &mut rows,
        view.orders.iter().map_err(db_err)?,
        |_, v| v.to_vec(),
        Frame::Orders,
    )?;
    bytes += copy_rows(
        &mut out,
        &mut rows,
        view.records.iter().map_err(db_err)?,
        |k, v| (k, v.to_vec()),
        Frame::Records,
    )?;
    bytes += copy_rows(
        &mut out,
        &mut rows,
        view.counts.iter().map_err(db_err)?,
        |k, v| (k, v),
        Frame::Counts,
    )?;
    bytes += copy_images(&mut out, &mut rows, view.images.iter().map_err(db_err)?)?;
    bytes += write_sized(&mut out, &Frame::End { rows })?;
    let file = out.into_inner().map_err(db_err)?;
    file.sync_all().map_err(db_err)?;
    fs::rename(&partial, path).map_err(db_err)?;
    Ok(bytes)
}

/// Copies the rows of one table into frames of [`ROWS_PER_FRAME`].
fn copy_rows<K, V, R>(
    out: &mut impl Write,
    rows: &mut u64,
    range: redb::Range<'_, K, V>,
    row: impl Fn(K::SelfType<'_>, V::SelfType<'_>) -> R,
    frame: impl Fn(Vec<R>) -> Frame,
) -> Result<u64, StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let mut bytes = 0;
    let mut chunk = Vec::with_capacity(ROWS_PER_FRAME);
    for item in range {
        let (k, v) = item.map_err(db_err)?;
        chunk.push(row(k.value(), v.value()));
        *rows += 1;
        if chunk.len() == ROWS_PER_FRAME {
            bytes += write_sized(out, &frame(std::mem::take(&mut chunk)))?;
        }
    }
    if !chunk.is_empty() {
        bytes += write_sized(out, &frame(chunk))?;
    }
    Ok(bytes)
}

/// Copies the event images into frames of [`IMAGES_PER_FRAME`].
fn copy_images(
    out: &mut impl Write,
    rows: &mut u64,
    range: redb::Range<'_, u64, &'static [u8]>,
) -> Result<u64, StoreError> {
    let mut bytes = 0;
    let mut chunk = Vec::with_capacity(IMAGES_PER_FRAME);
    for item in range {
        let (k, v) = item.map_err(db_err)?;
        chunk.push((k.value(), v.value().to_vec()));
        *rows += 1;
        if chunk.len() == IMAGES_PER_FRAME {
            bytes += write_sized(out, &Frame::Images(std::mem::take(&mut chunk)))?;
        }
    }
    if !chunk.is_empty() {
        bytes += write_sized(out, &Frame::Images(chunk))?;
    }
    Ok(bytes)
}

/// Reads a snapshot file's header.
fn read_header(input: &mut impl Read) -> Result<SnapshotHeader, StoreError> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(db_err)?;
    if &magic != SNAPSHOT_MAGIC {
        return Err(db_err("not a tix snapshot file of format 1"));
    }
    read_sized(input, HEADER_BYTES_MAX, "header")
}

/// Replaces the store's contents with a snapshot file, streamed, in one durable transaction.
/// Returns the snapshot's metadata and hot state.
fn install_from_file(
    db: &Database,
    file: fs::File,
) -> Result<(SnapshotMeta, State, RecordIndex), StoreError> {
    let mut index = RecordIndex::new();
    let mut input = BufReader::with_capacity(1 << 20, file);
    let header = read_header(&mut input)?;
    let state = State::decode(&header.state).map_err(db_err)?;
    let txn = db.begin_write().map_err(db_err)?;
    history_store::wipe(&txn)?;
    {
        let mut tables = WriteTables::open(&txn, &mut index)?;
        let mut rows = 0u64;
        loop {
            match read_sized::<Frame>(&mut input, FRAME_BYTES_MAX, "frame")? {
                Frame::Tickets(list) => {
                    for bytes in list {
                        let ticket = postcard::from_bytes(&bytes).map_err(db_err)?;
                        tables.put_ticket(&ticket)?;
                        rows += 1;
                    }
                }
                Frame::Orders(list) => {
                    for bytes in list {
                        tables.put_order(&bytes)?;
                        rows += 1;
                    }
                }
                Frame::Records(list) => {
                    for (key, bytes) in list {
                        tables.put_record(key, &bytes)?;
                        rows += 1;
                    }
                }
                Frame::Counts(list) => {
                    for (key, count) in list {
                        tables.view.counts.insert(key, count).map_err(db_err)?;
                        rows += 1;
                    }
                }
                Frame::Images(list) => {
                    for (event_id, bytes) in list {
                        tables.put_image(event_id, &bytes)?;
                        rows += 1;
                    }
                }
                Frame::End { rows: expected } if expected == rows => break,
                Frame::End { rows: expected } => {
                    return Err(db_err(format!(
                        "snapshot file has {rows} rows, its end says {expected}"
                    )));
                }
            }
        }
        let applied: Applied = (header.meta.last_log_id, header.meta.last_membership.clone());
        let checkpoint = Checkpoint {
            applied: applied.clone(),
            state: header.state.clone(),
        };
        let mut meta = txn.open_table(META).map_err(db_err)?;
        let bytes = encode(&checkpoint);
        meta.insert("checkpoint", bytes.as_slice())
            .map_err(db_err)?;
        let bytes = encode(&Some(applied));
        meta.insert("applied", bytes.as_slice()).map_err(db_err)?;
    }
    txn.commit().map_err(db_err)?;
    // Checked on this side of the boundary: the installed state must agree with itself.
    let read = db.begin_read().map_err(db_err)?;
    let reader = HistoryReader::open(&read)?;
    if let Err(violation) = state.check_invariants(&reader.view) {
        panic!(
            "snapshot {} breaks an invariant: {violation}",
            header.meta.snapshot_id
        );
    }
    Ok((header.meta, state, index))
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<Applied, StorageError> {
        Ok(self.shared.applied_position())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcomes>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        if let Some(reason) = self.shared.failure() {
            return Err(write_err(format!("this replica stopped: {reason}")));
        }
        let entries: Vec<Entry> = entries.into_iter().collect();
        let applied =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply_group(entries)));
        let reason = match applied {
            Ok(Ok(replies)) => return Ok(replies),
            // The hot state may have moved while its history write failed: they disagree.
            Ok(Err(e)) => format!("writing applied entries failed: {e}"),
            Err(panic) => format!("apply panicked: {}", panic_text(panic.as_ref())),
        };
        self.shared.fail(reason.clone());
        Err(write_err(reason))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        let started = Instant::now();
        let prepared = self.checkpoint().and_then(|checkpoint| {
            // A read transaction opened right after the checkpoint, before any further apply:
            // exactly the checkpoint's state, whatever is applied while the file is written.
            let txn = self.db.begin_read().map_err(db_err)?;
            Ok((checkpoint, txn))
        });
        metrics::histogram!("tix_checkpoint_seconds").record(started.elapsed().as_secs_f64());
        SnapshotBuilder {
            prepared: Some(prepared.map(|(checkpoint, txn)| {
                let (last_log_id, last_membership) = checkpoint.applied;
                let state = checkpoint.state;
                let snapshot_id = match last_log_id {
                    Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshots_built),
                    None => format!("--{}", self.snapshots_built),
                };
                let meta = SnapshotMeta {
                    last_log_id,
                    last_membership,
                    snapshot_id,
                };
                (SnapshotHeader { meta, state }, txn)
            })),
            dir: self.snapshot_dir.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self
            .snapshot_dir
            .join(format!("incoming-{}.part", std::process::id()));
        // Read and write: openraft writes the chunks, install reads them back.
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(write_err)?;
        self.receiving = Some(path);
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let started = Instant::now();
        let signature = meta.signature();
        let io = |e: StoreError| -> StorageError {
            StorageIOError::write_snapshot(Some(signature.clone()), &to_io(e)).into()
        };
        snapshot.flush().await.map_err(write_err)?;
        let mut file = snapshot.into_std().await;
        file.sync_all().map_err(write_err)?;
        std::io::Seek::rewind(&mut file).map_err(write_err)?;
        // The received data becomes the current snapshot file (to serve to others), then the
        // store is rebuilt from it.
        let db = self.db.clone();
        let path = self.snapshot_path(meta);
        let (_, state, index) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                keep_as(&mut file, &path)?;
                install_from_file(&db, fs::File::open(&path).map_err(db_err)?)
            })
            .await
            .map_err(|e| {
                // The install checks every invariant and panics on a violation.
                let reason = format!("installing snapshot {}: {e}", meta.snapshot_id);
                self.shared.fail(reason.clone());
                write_err(reason)
            })?
            .map_err(io)?
        };
        {
            let mut current = self.shared.write_state();
            *current = state;
            let mut applied = self.shared.write_applied();
            *applied = (meta.last_log_id, meta.last_membership.clone());
        }
        self.checkpointed = meta.last_log_id;
        self.index = index;
        self.shared
            .applied_index
            .send_replace(meta.last_log_id.map(|l| l.index).unwrap_or(0));
        if let Some(received) = self.receiving.take() {
            let _ = fs::remove_file(received);
        }
        remove_other_snapshots(&self.snapshot_dir, &path);
        metrics::histogram!("tix_snapshot_install_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(path) = newest_snapshot(&self.snapshot_dir).map_err(read_err)? else {
            return Ok(None);
        };
        let mut file = fs::File::open(&path).map_err(read_err)?;
        let header = read_header(&mut file).map_err(read_err)?;
        std::io::Seek::rewind(&mut file).map_err(read_err)?;
        Ok(Some(Snapshot {
            meta: header.meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}

/// Writes a snapshot file from the read transaction prepared by
/// [`StateMachineStore::get_snapshot_builder`], off the state machine's task.
pub struct SnapshotBuilder {
    prepared: Option<Result<(SnapshotHeader, ReadTransaction), StoreError>>,
    dir: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let prepared = self.prepared.take().expect("a builder builds one snapshot");
        let (header, txn) =
            prepared.map_err(|e| StorageIOError::write_snapshot(None, &to_io(e)))?;
        let signature = header.meta.signature();
        let index = header.meta.last_log_id.map(|l| l.index).unwrap_or(0);
        let name = format!(
            "snap-{index:020}-{}.bin",
            header.meta.snapshot_id.replace('/', "_")
        );
        let path = self.dir.join(name);
        let started = Instant::now();
        let (header, path, bytes) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let bytes = write_snapshot_file(&path, &txn, &header)?;
                Ok::<_, StoreError>((header, path, bytes))
            })
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &to_io(e)))?
            .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &to_io(e)))?
        };
        remove_other_snapshots(&self.dir, &path);
        metrics::counter!("tix_snapshots_built_total").increment(1);
        metrics::histogram!("tix_snapshot_build_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("tix_snapshot_bytes").set(bytes as f64);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(signature), &e))?;
        Ok(Snapshot {
            meta: header.meta,
            snapshot: Box::new(file),
        })
    }
}
