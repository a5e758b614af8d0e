//! The log store on disk: what it writes it reads back after a reopen; it moves a redb log of an
//! earlier version into segment files without losing a record (and survives being interrupted
//! while doing so); it refuses a log of a still earlier version (JSON records) with a message
//! that tells the operator what to do, and never opens it as if it were empty. (That a purge
//! deletes the segment files it frees is a unit test of `log_store`.)

use std::path::Path;

use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftLogReader, Vote};
use redb::{Database, ReadableDatabase, TableDefinition};
use tempfile::TempDir;
use tix_core::Batch;
use tix_raft::log_store::{LEGACY_LOG_REFUSAL, LEGACY_REDB_FILE, LOG_DIR, LogStore};
use tix_raft::types::Entry;

mod common;
use common::reopen;

/// The log store's tables, spelled out here as an earlier version wrote them.
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The refusal, word for word, as the operator reads it.
const EXPECTED: &str = "the data directory was written by an earlier tix version (JSON log); \
    tix does not migrate it; start with an empty --data-dir (a single node), or wipe this \
    node's data directory and add it back as a new node (cluster)";

fn json_entry(index: u64) -> Vec<u8> {
    let entry = Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Batch {
            time_ms: 1_700_000_000_000,
            commands: Vec::new(),
        }),
    };
    serde_json::to_vec(&entry).expect("json")
}

/// Writes `logs` and `meta` records into a fresh redb file, as raw bytes.
fn write_raw(path: &Path, logs: &[(u64, Vec<u8>)], meta: &[(&str, Vec<u8>)]) {
    let db = Database::create(path).expect("db");
    let txn = db.begin_write().expect("txn");
    {
        let mut table = txn.open_table(LOGS).expect("logs");
        for (index, bytes) in logs {
            table.insert(*index, bytes.as_slice()).expect("insert");
        }
        let mut table = txn.open_table(META).expect("meta");
        for (key, bytes) in meta {
            table.insert(*key, bytes.as_slice()).expect("insert");
        }
    }
    txn.commit().expect("commit");
}

/// Opens the log store of the data directory holding `path` and returns its error message,
/// failing if it opens; checks that the refusal changed nothing (no segment log was left).
fn refusal(path: &Path) -> String {
    let dir = path.parent().expect("data dir");
    let message = match LogStore::open(dir) {
        Ok(_) => panic!("a JSON log was opened"),
        Err(e) => e.to_string(),
    };
    assert!(path.exists(), "the redb log is kept");
    assert!(!dir.join(LOG_DIR).exists(), "no segment log was made of it");
    message
}

/// Checks the refusal of a log whose only record is one JSON entry: the message says exactly
/// what to do, and the entry is still there afterwards (nothing was dropped).
#[test]
fn json_entry_is_refused_with_instructions() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("tix.redb");
    let entry = json_entry(1);
    write_raw(&path, &[(1, entry.clone())], &[]);

    let message = refusal(&path);
    assert_eq!(LEGACY_LOG_REFUSAL, EXPECTED);
    assert!(message.contains(EXPECTED), "refusal was: {message}");

    let db = Database::open(&path).expect("db");
    let txn = db.begin_read().expect("txn");
    let table = txn.open_table(LOGS).expect("logs");
    let kept = table
        .get(1)
        .expect("get")
        .expect("the entry is still stored");
    assert_eq!(kept.value(), entry.as_slice());
}

/// Checks the refusal of a log that an earlier version compacted: no entries, a JSON vote and
/// last purged id, and a `null` committed index.
#[test]
fn json_metadata_is_refused_with_instructions() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("tix.redb");
    let vote = serde_json::to_vec(&Vote::new_committed(2, 1_u64)).expect("json");
    let purged =
        serde_json::to_vec(&LogId::new(CommittedLeaderId::new(2, 1_u64), 9)).expect("json");
    write_raw(
        &path,
        &[],
        &[
            ("vote", vote),
            ("last_purged", purged),
            ("committed", b"null".to_vec()),
        ],
    );
    let message = refusal(&path);
    assert!(message.contains(EXPECTED), "refusal was: {message}");
}

/// Checks that a record in an unknown future format is refused by its version, not mistaken
/// for the old format and not dropped.
#[test]
fn unknown_version_is_refused_by_number() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("tix.redb");
    write_raw(&path, &[(1, vec![2, 0, 0])], &[]);
    let message = refusal(&path);
    assert!(
        message.contains("entry 1") && message.contains("unknown format version 2"),
        "refusal was: {message}"
    );
    assert!(!message.contains(EXPECTED), "refusal was: {message}");
}

/// Checks that what the store writes in the binary format it reads back after a reopen: the
/// vote, the committed index and the last purged id.
#[tokio::test]
async fn binary_records_survive_reopen() {
    let dir = TempDir::new().expect("temp dir");
    let purged = LogId::new(CommittedLeaderId::new(3, 1_u64), 4);
    {
        let mut store = LogStore::open(dir.path()).expect("open");
        store.save_vote(&Vote::new(3, 1)).await.expect("vote");
        store.save_committed(Some(purged)).await.expect("committed");
        store.purge(purged).await.expect("purge");
        // A vote waits for its commit, and the queue is ordered: this one flushes the rest.
        store
            .save_vote(&Vote::new_committed(3, 1))
            .await
            .expect("vote");
    }
    let mut store = reopen(dir.path());
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new_committed(3, 1))
    );
    assert_eq!(
        store.read_committed().await.expect("committed"),
        Some(purged)
    );
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(purged));
    assert_eq!(state.last_log_id, Some(purged));
}

/// Checks that a committed index saved on its own (which writes no transaction of its own: it
/// waits for the next write) is not lost: it reaches disk with the next append, and the newest
/// one held back reaches disk when the store is dropped.
#[tokio::test]
async fn a_held_back_committed_index_reaches_disk() {
    let dir = TempDir::new().expect("temp dir");
    let at = |index| LogId::new(CommittedLeaderId::new(1, 1_u64), index);
    {
        let mut store = LogStore::open(dir.path()).expect("open");
        store.save_committed(Some(at(3))).await.expect("committed");
        // A vote waits for its commit: the held-back index goes with it.
        store.save_vote(&Vote::new(1, 1)).await.expect("vote");
    }
    let mut store = reopen(dir.path());
    assert_eq!(
        store.read_committed().await.expect("committed"),
        Some(at(3))
    );
    // Saved alone, then the store dropped: the writer records it as it stops.
    store.save_committed(Some(at(7))).await.expect("committed");
    drop(store);
    let mut store = reopen(dir.path());
    assert_eq!(
        store.read_committed().await.expect("committed"),
        Some(at(7))
    );
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new(1, 1))
    );
}

/// An entry at `index` of term 2 whose batch carries `index` as its time, so a mix-up shows.
fn entry(index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(2, 1_u64), index),
        payload: EntryPayload::Normal(Batch {
            time_ms: index,
            commands: Vec::new(),
        }),
    }
}

/// `value` in the cluster's binary format (a version byte of 1, then postcard), as the redb log
/// of the previous version held it.
fn binary<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, vec![1]).expect("postcard")
}

/// Checks the move from the previous version's redb log: every entry, the vote, the committed
/// and the last purged log id read back from the segment log; `tix.redb` is gone; and the log
/// takes appends and reopens afterwards.
#[tokio::test]
async fn a_redb_log_of_the_previous_version_moves_into_segment_files() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join(LEGACY_REDB_FILE);
    let purged = LogId::new(CommittedLeaderId::new(2, 1_u64), 4);
    let committed = Some(LogId::new(CommittedLeaderId::new(2, 1_u64), 9));
    let logs: Vec<(u64, Vec<u8>)> = (5..=12).map(|i| (i, binary(&entry(i)))).collect();
    write_raw(
        &path,
        &logs,
        &[
            ("vote", binary(&Vote::new_committed(2, 1_u64))),
            ("committed", binary(&committed)),
            ("last_purged", binary(&purged)),
        ],
    );
    let mut store = LogStore::open(dir.path()).expect("migrates");
    assert!(
        !path.exists(),
        "tix.redb is removed once the segment log is in place"
    );
    assert!(dir.path().join(LOG_DIR).is_dir());
    assert!(!dir.path().join(format!("{LOG_DIR}.tmp")).exists());
    let read = store.try_get_log_entries(..).await.expect("entries");
    assert_eq!(read, (5..=12).map(entry).collect::<Vec<_>>());
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new_committed(2, 1))
    );
    assert_eq!(store.read_committed().await.expect("committed"), committed);
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(purged));

    store.truncate(entry(11).log_id).await.expect("truncate");
    store.save_vote(&Vote::new(3, 1)).await.expect("vote");
    drop(store);
    let mut store = reopen(dir.path());
    let read = store.try_get_log_entries(..).await.expect("entries");
    assert_eq!(read, (5..=10).map(entry).collect::<Vec<_>>());
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new(3, 1))
    );
}

/// Checks the two states a crash can leave a move in: a half-written `log.tmp/` beside the redb
/// log (the move starts again from the redb log) and a finished `log/` beside a `tix.redb` not
/// yet removed (the segment log wins and `tix.redb` goes).
#[tokio::test]
async fn an_interrupted_move_is_finished_on_the_next_start() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join(LEGACY_REDB_FILE);
    let logs: Vec<(u64, Vec<u8>)> = (1..=3).map(|i| (i, binary(&entry(i)))).collect();
    write_raw(&path, &logs, &[]);
    let tmp = dir.path().join(format!("{LOG_DIR}.tmp"));
    std::fs::create_dir(&tmp).expect("tmp");
    std::fs::write(tmp.join("00000000000000000001.seg"), b"TIXSEG").expect("half a segment");
    let mut store = LogStore::open(dir.path()).expect("migrates");
    let read = store.try_get_log_entries(..).await.expect("entries");
    assert_eq!(read, (1..=3).map(entry).collect::<Vec<_>>());
    drop(store);

    write_raw(&path, &[(1, binary(&entry(99)))], &[]);
    let mut store = reopen(dir.path());
    assert!(!path.exists(), "the leftover tix.redb is removed");
    let read = store.try_get_log_entries(..).await.expect("entries");
    assert_eq!(read, (1..=3).map(entry).collect::<Vec<_>>(), "log/ wins");
}
