//! The Raft log: kept whole in memory for reads, made durable in redb by one writer thread that
//! commits many operations per transaction (group commit: one fsync for many entries).
//!
//! `append` records entries in memory at once (openraft may read them back before they are
//! durable, e.g. to replicate them) and queues them for the writer; the flush callback fires only
//! after the writer's transaction carrying them has committed. Truncations, purges and votes go
//! through the same queue, so the disk sees operations in the order openraft issued them.
//! `save_vote` waits for its commit, as Raft requires. The in-memory log is bounded by log
//! compaction: entries below the last snapshot are purged.
//!
//! Records are in the versioned binary format of [`crate::codec`]. A log written by an earlier
//! tix version (JSON records) is refused when opened, with a message that says what to do: tix
//! does not migrate it, and never drops it silently.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, CodecError};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// Log entries by index, in the codec's binary format.
pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// Small records: `vote`, `committed`, `last_purged`, in the codec's binary format.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The most queued operations one writer transaction takes.
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
        done: LogFlushed<TypeConfig>,
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
    /// Opens the log in `db`, loads it into memory and starts the writer thread. The thread ends
    /// when every clone of the store has been dropped.
    pub fn open(db: Arc<Database>) -> Result<LogStore, StorageError> {
        let mem = load(&db)?;
        let (writer, queue) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("tix-log-writer".into())
            .spawn(move || write_loop(&db, queue))
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(LogStore {
            mem: Arc::new(Mutex::new(mem)),
            writer,
        })
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

fn to_io(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
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

/// Reads the whole log and its metadata from redb.
fn load(db: &Database) -> Result<LogMem, StorageError> {
    let txn = db.begin_write().map_err(read_error)?;
    txn.open_table(LOGS).map_err(read_error)?;
    txn.open_table(META).map_err(read_error)?;
    txn.commit().map_err(read_error)?;

    let txn = db.begin_read().map_err(read_error)?;
    let meta = txn.open_table(META).map_err(read_error)?;
    let get = |key: &str| -> Result<Option<Vec<u8>>, StorageError> {
        Ok(meta
            .get(key)
            .map_err(read_error)?
            .map(|v| v.value().to_vec()))
    };
    let mut mem = LogMem::default();
    if let Some(bytes) = get("vote")? {
        mem.vote = Some(decode_record("vote", &bytes)?);
    }
    if let Some(bytes) = get("committed")? {
        mem.committed = decode_record("committed index", &bytes)?;
    }
    if let Some(bytes) = get("last_purged")? {
        mem.last_purged = Some(decode_record("last purged log id", &bytes)?);
    }
    let logs = txn.open_table(LOGS).map_err(read_error)?;
    for row in logs.iter().map_err(read_error)? {
        let (index, bytes) = row.map_err(read_error)?;
        let entry: Entry = decode_record(&format!("entry {}", index.value()), bytes.value())?;
        // Checked after decoding: the key and the entry's own index must agree.
        assert_eq!(
            entry.log_id.index,
            index.value(),
            "log entry stored under the wrong index"
        );
        mem.entries.insert(index.value(), entry);
    }
    Ok(mem)
}

/// The writer thread: takes every queued operation (up to a bound), writes them in one
/// transaction, commits once (one fsync), then completes their callbacks.
///
/// The committed index is advisory: it only spares a restarted node re-applying entries the
/// cluster had already committed, and a value older than the truth is always safe (the node
/// learns the rest from the leader, or, alone, commits its log again when it leads). So a group
/// that carries nothing but committed indexes writes no transaction at all: the newest index
/// waits in memory and goes to disk with the next group that has to be written anyway (an
/// append, at most one batch later under load), or when the writer stops. Before, every
/// batch's commit cost each node one more redb transaction of its own.
fn write_loop(db: &Database, mut queue: mpsc::Receiver<WriteOp>) {
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
        let result = write_group(db, pending_committed.take(), &ops);
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
                WriteOp::Append { done, .. } => done.log_io_completed(result),
                WriteOp::Vote { done, .. } => {
                    let _ = done.send(result);
                }
                WriteOp::Truncate { .. } | WriteOp::Purge { .. } | WriteOp::Committed { .. } => {}
            }
        }
    }
    if let Some(committed) = pending_committed
        && let Err(e) = write_group(db, Some(committed), &[])
    {
        tracing::warn!(error = %e, "could not record the committed index at shutdown");
    }
}

/// Writes `ops` (and first a `committed` index held back from earlier groups) in one durable
/// transaction: one fsync.
fn write_group(db: &Database, committed: Option<Vec<u8>>, ops: &[WriteOp]) -> io::Result<()> {
    let txn = db.begin_write().map_err(to_io)?;
    {
        let mut logs = txn.open_table(LOGS).map_err(to_io)?;
        let mut meta = txn.open_table(META).map_err(to_io)?;
        if let Some(committed) = committed {
            meta.insert("committed", committed.as_slice())
                .map_err(to_io)?;
        }
        for op in ops {
            match op {
                WriteOp::Append { entries, .. } => {
                    for (index, bytes) in entries {
                        logs.insert(*index, bytes.as_slice()).map_err(to_io)?;
                    }
                }
                WriteOp::Truncate { from_index } => {
                    logs.retain_in(*from_index.., |_, _| false).map_err(to_io)?;
                }
                WriteOp::Purge { upto } => {
                    logs.retain_in(..=upto.index, |_, _| false).map_err(to_io)?;
                    let bytes = codec::encode(upto);
                    meta.insert("last_purged", bytes.as_slice())
                        .map_err(to_io)?;
                }
                WriteOp::Vote { vote, .. } => {
                    meta.insert("vote", vote.as_slice()).map_err(to_io)?;
                }
                WriteOp::Committed { committed } => {
                    meta.insert("committed", committed.as_slice())
                        .map_err(to_io)?;
                }
            }
        }
    }
    txn.commit().map_err(to_io)
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
            done: callback,
        })
        .await
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
