//! The Raft log: kept whole in memory for reads, made durable in append-only segment files
//! ([`crate::segment_log`]) by one writer thread that writes many operations per `fdatasync`
//! (group commit: one write and one sync for many entries).
//!
//! `append` records entries in memory at once (openraft may read them back before they are
//! durable, e.g. to replicate them) and queues them for the writer; the flush callback fires only
//! after the writer's group carrying them is synced. Truncations, purges and votes go through the
//! same queue, so the disk sees operations in the order openraft issued them. `save_vote` waits
//! for its sync, as Raft requires. The in-memory log is bounded by log compaction: entries below
//! the last snapshot are purged, and so are the segment files that held only them.
//!
//! Records are in the versioned binary format of [`crate::codec`]. **Migration:** tix versions
//! before the segment log kept the log in redb (`tix.redb`, tables `logs` and `meta`). Opening a
//! data directory that has `tix.redb` and no `log/` copies that log into a new segment log
//! written aside (`log.tmp/`), synced and renamed into place in one step, and only then removes
//! `tix.redb`; a crash at any point leaves either the old log or the whole new one. A redb log
//! written by a still earlier version (JSON records) is refused with a message that says what to
//! do: tix does not migrate it, and never drops it silently.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, CodecError};
use crate::segment_log::{Record, Recovered, SEGMENT_BYTES_TARGET, SegmentLog};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// Log entries by index, in the codec's binary format (the redb log of earlier versions).
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// Small records: `vote`, `committed`, `last_purged` (the redb log of earlier versions).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The folder of the segment log inside the data directory.
pub const LOG_DIR: &str = "log";
/// The redb file earlier versions kept the log in.
pub const LEGACY_REDB_FILE: &str = "tix.redb";

/// The most queued operations one writer group takes.
const GROUP_OPS_MAX: usize = 4096;
/// Capacity of the queue to the writer thread.
const QUEUE_CAPACITY: usize = 8192;

/// Why a log written by an earlier tix version is refused, and what the operator can do.
pub const LEGACY_LOG_REFUSAL: &str = "the data directory was written by an earlier tix version \
    (JSON log); tix does not migrate it; start with an empty --data-dir (a single node), or wipe \
    this node's data directory and add it back as a new node (cluster)";

/// What the writer thread persists.
enum WriteOp {
    Append {
        entries: Vec<(u64, Vec<u8>)>,
        /// Openraft's callback; `None` only in tests, which wait for a later vote instead.
        done: Option<LogFlushed<TypeConfig>>,
    },
    Truncate {
        from_index: u64,
    },
    Purge {
        upto: LogId,
    },
    Vote {
        vote: Vec<u8>,
        done: oneshot::Sender<io::Result<()>>,
    },
    Committed {
        committed: Vec<u8>,
    },
}

/// The log as openraft sees it, mirrored in memory.
#[derive(Default)]
struct LogMem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId>,
}

/// The durable Raft log. Cheap to clone: clones share the memory mirror and the writer.
#[derive(Clone)]
pub struct LogStore {
    mem: Arc<Mutex<LogMem>>,
    writer: mpsc::Sender<WriteOp>,
}

impl LogStore {
    /// Opens the log of the data directory `data_dir` (migrating a redb log of an earlier
    /// version), loads it into memory and starts the writer thread. The thread ends, and
    /// releases the log's lock, when every clone of the store has been dropped.
    pub fn open(data_dir: &Path) -> Result<LogStore, StorageError> {
        LogStore::open_with(data_dir, SEGMENT_BYTES_TARGET)
    }

    /// [`open`](LogStore::open) with segments of `segment_bytes_target` bytes (tests use small
    /// ones to exercise rolling and deletion).
    pub fn open_with(data_dir: &Path, segment_bytes_target: u64) -> Result<LogStore, StorageError> {
        migrate_redb_log(data_dir)?;
        let (log, recovered) =
            SegmentLog::open(&data_dir.join(LOG_DIR), segment_bytes_target).map_err(read_error)?;
        let mem = load(recovered)?;
        let (writer, queue) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("tix-log-writer".into())
            .spawn(move || write_loop(log, queue))
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(LogStore {
            mem: Arc::new(Mutex::new(mem)),
            writer,
        })
    }

    /// Records `entries` in memory and queues them for the writer, which calls `done` once they
    /// are durable.
    async fn append_with(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        done: Option<LogFlushed<TypeConfig>>,
    ) -> Result<(), StorageError> {
        let mut encoded = Vec::new();
        {
            let mut mem = self.mem();
            for entry in entries {
                encoded.push((entry.log_id.index, codec::encode(&entry)));
                mem.entries.insert(entry.log_id.index, entry);
            }
        }
        metrics::counter!("tix_log_entries_appended_total").increment(encoded.len() as u64);
        self.send(WriteOp::Append {
            entries: encoded,
            done,
        })
        .await
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, LogMem> {
        self.mem.lock().expect("log mirror lock poisoned")
    }

    async fn send(&self, op: WriteOp) -> Result<(), StorageError> {
        self.writer.send(op).await.map_err(|_| {
            let e = io::Error::other("log writer stopped");
            StorageError::from(StorageIOError::write_logs(&e))
        })
    }
}

fn read_error(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_logs(AnyError::error(e)).into()
}

/// Decodes the record `what`; JSON from an earlier tix version is refused with
/// [`LEGACY_LOG_REFUSAL`], anything else undecodable names the record and the cause.
fn decode_record<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StorageError> {
    codec::decode(bytes).map_err(|e| match e {
        CodecError::LegacyJson => read_error(LEGACY_LOG_REFUSAL),
        other => read_error(format!("cannot decode the log's {what}: {other}")),
    })
}

/// Decodes what the segment log replayed into the memory mirror.
fn load(recovered: Recovered) -> Result<LogMem, StorageError> {
    let mut mem = LogMem::default();
    if let Some(bytes) = &recovered.vote {
        mem.vote = Some(decode_record("vote", bytes)?);
    }
    if let Some(bytes) = &recovered.committed {
        mem.committed = decode_record("committed index", bytes)?;
    }
    if let Some((_, bytes)) = &recovered.last_purged {
        mem.last_purged = Some(decode_record("last purged log id", bytes)?);
    }
    for (index, bytes) in recovered.entries {
        let entry: Entry = decode_record(&format!("entry {index}"), &bytes)?;
        if entry.log_id.index != index {
            return Err(read_error(format!(
                "the log record of entry {index} holds entry {}",
                entry.log_id.index
            )));
        }
        mem.entries.insert(index, entry);
    }
    Ok(mem)
}

/// Reads the log an earlier version kept in redb, as the records it replays to (checking every
/// record decodes, so a JSON log is refused before anything is written).
fn read_redb_log(path: &Path) -> Result<Recovered, StorageError> {
    let db = Database::open(path).map_err(read_error)?;
    let txn = db.begin_read().map_err(read_error)?;
    let mut recovered = Recovered::default();
    let meta = match txn.open_table(META) {
        Ok(meta) => Some(meta),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(read_error(e)),
    };
    if let Some(meta) = meta {
        let get = |key: &str| -> Result<Option<Vec<u8>>, StorageError> {
            Ok(meta
                .get(key)
                .map_err(read_error)?
                .map(|v| v.value().to_vec()))
        };
        if let Some(bytes) = get("vote")? {
            decode_record::<Vote<NodeId>>("vote", &bytes)?;
            recovered.vote = Some(bytes);
        }
        if let Some(bytes) = get("committed")? {
            decode_record::<Option<LogId>>("committed index", &bytes)?;
            recovered.committed = Some(bytes);
        }
        if let Some(bytes) = get("last_purged")? {
            let upto: LogId = decode_record("last purged log id", &bytes)?;
            recovered.last_purged = Some((upto.index, bytes));
        }
    }
    let logs = match txn.open_table(LOGS) {
        Ok(logs) => Some(logs),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(read_error(e)),
    };
    if let Some(logs) = logs {
        for row in logs.iter().map_err(read_error)? {
            let (index, bytes) = row.map_err(read_error)?;
            let index = index.value();
            decode_record::<Entry>(&format!("entry {index}"), bytes.value())?;
            recovered.entries.insert(index, bytes.value().to_vec());
        }
    }
    Ok(recovered)
}

/// Moves a redb log of an earlier version into a segment log (see the module's documentation):
/// nothing to do when `log/` exists (a `tix.redb` left beside it by a migration interrupted
/// after the rename is removed) or when there is no `tix.redb`.
fn migrate_redb_log(data_dir: &Path) -> Result<(), StorageError> {
    let redb_path = data_dir.join(LEGACY_REDB_FILE);
    let log_dir = data_dir.join(LOG_DIR);
    let write_error = |e: io::Error| StorageError::from(StorageIOError::write_logs(&e));
    if log_dir.exists() {
        if redb_path.exists() {
            std::fs::remove_file(&redb_path).map_err(write_error)?;
        }
        return Ok(());
    }
    if !redb_path.exists() {
        return Ok(());
    }
    let recovered = read_redb_log(&redb_path)?;
    let tmp = data_dir.join(format!("{LOG_DIR}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(write_error)?;
    }
    {
        let (mut log, _) = SegmentLog::open(&tmp, SEGMENT_BYTES_TARGET).map_err(write_error)?;
        for record in recovered.records() {
            log.push(record);
        }
        log.commit().map_err(write_error)?;
    }
    std::fs::rename(&tmp, &log_dir).map_err(write_error)?;
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error)?;
    std::fs::remove_file(&redb_path).map_err(write_error)?;
    tracing::info!(
        entries = recovered.entries.len(),
        from = %redb_path.display(),
        to = %log_dir.display(),
        "moved the Raft log from redb to segment files"
    );
    Ok(())
}

/// The writer thread: takes every queued operation (up to a bound), writes them as one group
/// (one write, one `fdatasync`), then completes their callbacks.
///
/// The committed index is advisory: it only spares a restarted node re-applying entries the
/// cluster had already committed, and a value older than the truth is always safe (the node
/// learns the rest from the leader, or, alone, commits its log again when it leads). So a group
/// that carries nothing but committed indexes writes nothing: the newest index waits in memory
/// and goes to disk with the next group that has to be written anyway (an append, at most one
/// batch later under load), or when the writer stops.
fn write_loop(mut log: SegmentLog, mut queue: mpsc::Receiver<WriteOp>) {
    let mut pending_committed: Option<Vec<u8>> = None;
    while let Some(first) = queue.blocking_recv() {
        let mut ops = vec![first];
        while ops.len() < GROUP_OPS_MAX {
            match queue.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        if ops.iter().all(|op| matches!(op, WriteOp::Committed { .. })) {
            if let Some(WriteOp::Committed { committed }) = ops.pop() {
                pending_committed = Some(committed);
            }
            continue;
        }
        let started = Instant::now();
        let result = write_group(&mut log, pending_committed.take(), &ops);
        metrics::histogram!("tix_log_fsync_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("tix_log_group_ops").record(ops.len() as f64);
        if let Err(e) = &result {
            tracing::error!(error = %e, "log write failed; Raft will stop this node");
        }
        for op in ops {
            let result = result
                .as_ref()
                .map(|_| ())
                .map_err(|e| io::Error::new(e.kind(), e.to_string()));
            match op {
                WriteOp::Append { done, .. } => {
                    if let Some(done) = done {
                        done.log_io_completed(result);
                    }
                }
                WriteOp::Vote { done, .. } => {
                    let _ = done.send(result);
                }
                WriteOp::Truncate { .. } | WriteOp::Purge { .. } | WriteOp::Committed { .. } => {}
            }
        }
        if result.is_err() {
            // The segment's tail is unknown after a failed write or sync: write nothing more
            // (every later append fails too, and Raft stops this node).
            return;
        }
    }
    if let Some(committed) = pending_committed
        && let Err(e) = write_group(&mut log, Some(committed), &[])
    {
        tracing::warn!(error = %e, "could not record the committed index at shutdown");
    }
}

/// Writes `ops` (and first a `committed` index held back from earlier groups) as one group: one
/// write, one `fdatasync`.
fn write_group(
    log: &mut SegmentLog,
    committed: Option<Vec<u8>>,
    ops: &[WriteOp],
) -> io::Result<()> {
    if let Some(committed) = &committed {
        log.push(Record::Committed(committed));
    }
    for op in ops {
        match op {
            WriteOp::Append { entries, .. } => {
                for (index, bytes) in entries {
                    log.push(Record::Entry {
                        index: *index,
                        bytes,
                    });
                }
            }
            WriteOp::Truncate { from_index } => log.push(Record::Truncate {
                from_index: *from_index,
            }),
            WriteOp::Purge { upto } => log.push(Record::Purge {
                index: upto.index,
                log_id: &codec::encode(upto),
            }),
            WriteOp::Vote { vote, .. } => log.push(Record::Vote(vote)),
            WriteOp::Committed { committed } => log.push(Record::Committed(committed)),
        }
    }
    log.commit()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let mem = self.mem();
        Ok(mem.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.mem();
        let last = mem
            .entries
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or(mem.last_purged);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = codec::encode(vote);
        self.mem().vote = Some(*vote);
        let (done, wait) = oneshot::channel();
        self.send(WriteOp::Vote { vote: bytes, done }).await?;
        let result = wait
            .await
            .unwrap_or_else(|_| Err(io::Error::other("log writer stopped")));
        result.map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.mem().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let bytes = codec::encode(&committed);
        self.mem().committed = committed;
        self.send(WriteOp::Committed { committed: bytes }).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.mem().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_with(entries, Some(callback)).await
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.mem().entries.split_off(&log_id.index);
        self.send(WriteOp::Truncate {
            from_index: log_id.index,
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut mem = self.mem();
            let kept = mem.entries.split_off(&(log_id.index + 1));
            mem.entries = kept;
            mem.last_purged = Some(log_id);
        }
        self.send(WriteOp::Purge { upto: log_id }).await
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};
    use tix_core::Batch;

    use super::*;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
            payload: EntryPayload::Normal(Batch {
                time_ms: index,
                commands: Vec::new(),
            }),
        }
    }

    fn segment_files(dir: &Path) -> usize {
        crate::segment_log::segment_numbers(&dir.join(LOG_DIR))
            .expect("log dir")
            .len()
    }

    fn reopen(dir: &Path, segment_bytes_target: u64) -> LogStore {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match LogStore::open_with(dir, segment_bytes_target) {
                Ok(store) => return store,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("log still held after 10 s: {e}"),
            }
        }
    }

    /// The disk holds about what openraft keeps: with small segments, appends roll over many
    /// files, a purge deletes those that held only purged entries, and the rest reopens to
    /// exactly the unpurged entries.
    #[tokio::test]
    async fn a_purge_deletes_the_segment_files_it_frees() {
        let dir = tempfile::tempdir().expect("dir");
        // About one group of 20 entries per segment.
        let mut store = LogStore::open_with(dir.path(), 300).expect("open");
        for start in (1..=400).step_by(20) {
            store
                .append_with((start..start + 20).map(entry), None)
                .await
                .expect("append");
            // A vote waits for its sync, and the queue is ordered: the appends are written.
            store.save_vote(&Vote::new(2, 1)).await.expect("vote");
        }
        let before = segment_files(dir.path());
        assert!(before >= 15, "{before} segment files");
        store.purge(entry(350).log_id).await.expect("purge");
        store.save_vote(&Vote::new(2, 1)).await.expect("vote");
        let after = segment_files(dir.path());
        assert!(
            after <= 4,
            "{before} segment files before the purge, {after} after"
        );
        drop(store);
        let mut store = reopen(dir.path(), 300);
        let read = store.try_get_log_entries(..).await.expect("entries");
        assert_eq!(read, (351..=400).map(entry).collect::<Vec<_>>());
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(entry(350).log_id));
        assert_eq!(
            store.read_vote().await.expect("vote"),
            Some(Vote::new(2, 1))
        );
    }
}
