//! The openraft type configuration: a log entry carries one [`tix_core::Batch`] and its response
//! is one [`tix_core::Outcome`] per command in the batch.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's id in the cluster.
pub type NodeId = u64;

/// How to reach a node: its public API address and its internal Raft RPC address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TixNode {
    /// `host:port` of the public HTTP listener (API and pages).
    pub api_addr: String,
    /// `host:port` of the internal Raft RPC listener.
    pub raft_addr: String,
}

impl fmt::Display for TixNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "api={} raft={}", self.api_addr, self.raft_addr)
    }
}

/// Responses to the commands of one log entry, in order.
pub type Outcomes = Vec<tix_core::Outcome>;

openraft::declare_raft_types!(
    /// The type configuration of tix's Raft group.
    pub TypeConfig:
        D = tix_core::Batch,
        R = Outcomes,
        NodeId = NodeId,
        Node = TixNode,
        SnapshotData = tokio::fs::File,
);

/// The Raft handle of a tix node.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A storage error.
pub type StorageError = openraft::StorageError<NodeId>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, TixNode>;
/// Membership as stored with its log id.
pub type StoredMembership = openraft::StoredMembership<NodeId, TixNode>;
