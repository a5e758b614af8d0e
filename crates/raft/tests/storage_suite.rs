//! Runs openraft's storage conformance suite against tix's segment-file log store and redb state machine.

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;
use tix_raft::log_store::LogStore;
use tix_raft::state_machine::StateMachineStore;
use tix_raft::types::{StorageError, TypeConfig};

struct DiskBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for DiskBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = TempDir::new().expect("temp dir");
        let log = LogStore::open(dir.path())?;
        let sm = StateMachineStore::open(dir.path())?;
        Ok((dir, log, sm))
    }
}

/// Checks every case of openraft's suite (votes, appends, truncation, purge, snapshots, apply)
/// against fresh stores in temporary directories.
#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(DiskBuilder) {
        panic!("storage suite failed: {e}");
    }
}
