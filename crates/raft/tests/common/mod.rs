//! Helpers shared by the raft crate's integration tests.

use std::path::Path;
use std::time::{Duration, Instant};

use tix_raft::log_store::LogStore;

/// Opens the log store of the data directory `dir` again once the previous store's writer
/// thread has let go of its lock (it ends shortly after the last clone of the store, or the
/// stopped node holding it, is dropped), polling with a deadline.
pub fn reopen(dir: &Path) -> LogStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match LogStore::open(dir) {
            Ok(store) => return store,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("log still held after 10 s: {e}"),
        }
    }
}
