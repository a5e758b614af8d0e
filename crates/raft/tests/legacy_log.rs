//! The log store refuses a log written by an earlier tix version (JSON records) with a message
//! that tells the operator what to do, and never opens it as if it were empty.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};
use redb::{Database, ReadableDatabase, TableDefinition};
use tempfile::TempDir;
use tix_core::Batch;
use tix_raft::log_store::{LEGACY_LOG_REFUSAL, LogStore};
use tix_raft::types::Entry;

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

/// Opens the log store on `path` and returns its error message, failing if it opens.
fn refusal(path: &Path) -> String {
    let db = Arc::new(Database::open(path).expect("db"));
    match LogStore::open(db) {
        Ok(_) => panic!("a JSON log was opened"),
        Err(e) => e.to_string(),
    }
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

/// Opens `path` again once the previous store's writer thread has let go of it (it ends
/// shortly after the last clone of the store is dropped), polling with a deadline.
fn reopen(path: &Path) -> Arc<Database> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Database::open(path) {
            Ok(db) => return Arc::new(db),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("database still held after 10 s: {e}"),
        }
    }
}

/// Checks that what the store writes in the binary format it reads back after a reopen: the
/// vote, the committed index and the last purged id.
#[tokio::test]
async fn binary_records_survive_reopen() {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("tix.redb");
    let purged = LogId::new(CommittedLeaderId::new(3, 1_u64), 4);
    {
        let db = Arc::new(Database::create(&path).expect("db"));
        let mut store = LogStore::open(db).expect("open");
        store.save_vote(&Vote::new(3, 1)).await.expect("vote");
        store.save_committed(Some(purged)).await.expect("committed");
        store.purge(purged).await.expect("purge");
        // A vote waits for its commit, and the queue is ordered: this one flushes the rest.
        store
            .save_vote(&Vote::new_committed(3, 1))
            .await
            .expect("vote");
    }
    let mut store = LogStore::open(reopen(&path)).expect("reopen");
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
    let path = dir.path().join("tix.redb");
    let at = |index| LogId::new(CommittedLeaderId::new(1, 1_u64), index);
    {
        let db = Arc::new(Database::create(&path).expect("db"));
        let mut store = LogStore::open(db).expect("open");
        store.save_committed(Some(at(3))).await.expect("committed");
        // A vote waits for its commit: the held-back index goes with it.
        store.save_vote(&Vote::new(1, 1)).await.expect("vote");
    }
    let mut store = LogStore::open(reopen(&path)).expect("reopen");
    assert_eq!(
        store.read_committed().await.expect("committed"),
        Some(at(3))
    );
    // Saved alone, then the store dropped: the writer records it as it stops.
    store.save_committed(Some(at(7))).await.expect("committed");
    drop(store);
    let mut store = LogStore::open(reopen(&path)).expect("reopen");
    assert_eq!(
        store.read_committed().await.expect("committed"),
        Some(at(7))
    );
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new(1, 1))
    );
}
