//! Runs openraft's storage conformance suite against tix's redb log store and state machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;
use tix_raft::log_store::LogStore;
use tix_raft::state_machine::StateMachineStore;
use tix_raft::types::{StorageError, TypeConfig};

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let db = Arc::new(redb::Database::create(dir.path().join("tix.redb")).expect("db"));
        let log = LogStore::open(db.clone())?;
        let sm = StateMachineStore::open(dir.path())?;
        Ok((dir, log, sm))
    }
}

/// Checks every case of openraft's suite (votes, appends, truncation, purge, snapshots, apply)
/// against fresh stores in temporary directories.
#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(RedbBuilder) {
        panic!("storage suite failed: {e}");
    }
}
