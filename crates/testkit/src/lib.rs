//! What tests need to run tix for real, and what the benchmarks reuse to start their setups:
//! a `tix serve` child on free ports ([`spawn`]), a local cluster of them with a fault proxy
//! in front of each Raft listener ([`cluster`], [`proxy`]), an nginx child ([`nginx`]), a
//! typed client for the public API ([`client`]), the skip-unless-services helpers
//! ([`require`]), an SMTP sink ([`smtp`]), real PNG files ([`png`]) and the operating-system
//! helpers tests share ([`sys`]).
//!
//! Everything here drives processes and the public API (the cluster's operator calls go
//! through `tix_raft`'s signing `ClusterClient`); `anyhow` is its error type, as in the tests.

pub mod client;
pub mod cluster;
pub mod http1;
pub mod nginx;
pub mod png;
pub mod proxy;
pub mod require;
pub mod smtp;
pub mod spawn;
pub mod sys;
