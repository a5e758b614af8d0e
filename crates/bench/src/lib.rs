//! Load generation and measurement against the tix HTTP API: a quick purchase benchmark
//! ([`quick`]) and the helpers it is built from ([`client`], [`spawn`]).

pub mod client;
pub mod cluster;
pub mod failover;
pub mod proxy;
pub mod quick;
pub mod spawn;
