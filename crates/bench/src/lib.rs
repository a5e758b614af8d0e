//! Load generation and measurement against the tix HTTP API: a quick purchase benchmark
//! ([`quick`]), a Jepsen-style fault run ([`chaos`]) and the helpers they are built from
//! ([`client`], [`spawn`], [`cluster`], [`proxy`]).

pub mod chaos;
pub mod charts;
pub mod client;
pub mod cluster;
pub mod failover;
pub mod markdown;
pub mod nginx;
pub mod noop;
pub mod proxy;
pub mod quick;
pub mod replay;
pub mod results;
pub mod run;
pub mod setup;
pub mod spawn;
pub mod sweep;
pub mod workload;
