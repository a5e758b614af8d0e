//! The Raft layer of tix: openraft 0.9 configured with tix's command batches as log entries.
//!
//! - [`types`] declares the openraft type configuration and node addresses.
//! - [`log_store`] keeps the log in memory for reads and in segment files for durability
//!   ([`segment_log`]), with one writer thread that syncs many appends at once (group commit).
//! - [`state_machine`] applies batches to the hot [`tix_core::State`] in memory and to history
//!   in redb ([`history_store`]), checkpoints, and builds and installs snapshot files.
//! - [`proposer`] gathers concurrent client commands into one log entry.
//! - [`network`] carries Raft RPCs over HTTP between nodes.
//! - [`peer_auth`] authenticates every request to the internal listener with the cluster
//!   secret (HMAC-SHA256, replay window, nonces).
//! - [`node`] opens the storage, starts Raft and ties the pieces together.

// openraft's `StorageError` is large and its traits return it; boxing it here would only add
// conversions at every trait boundary.
#![allow(clippy::result_large_err)]

pub mod cluster;
mod codec;
pub mod history_store;
pub mod log_store;
pub mod meter;
pub mod network;
pub mod node;
pub mod peer_auth;
pub mod proposer;
pub mod segment_log;
pub mod state_machine;
pub mod types;
pub mod writer;

pub use history_store::{HistoryReader, StoreError};
pub use node::{Node, NodeConfig, NodeError};
pub use proposer::{ProposeError, Proposer};
pub use state_machine::{FAIL_STOP_EXIT_CODE, FailStop, SharedState, StateMachineOptions};
pub use types::{NodeId, TixNode, TypeConfig};
