//! Load generation and measurement against the tix HTTP API: a quick purchase benchmark
//! ([`quick`]), the workload replay and its sweep ([`run`], [`sweep`]), failover timing
//! ([`failover`]), a Jepsen-style fault run ([`chaos`]) and a simulated on-sale with a waiting
//! room ([`onsale`]). The processes they start — nodes,
//! clusters, fault proxies, nginx — and the API client come from `tix_testkit`; [`setup`]
//! composes them (with workers and the broker) into the benchmark's setups.

pub mod chaos;
pub mod charts;
pub mod cost;
pub mod failover;
pub mod generate;
pub mod markdown;
pub mod nginx;
pub mod noop;
pub mod onsale;
pub mod overload;
pub mod quick;
pub mod replay;
pub mod results;
pub mod run;
pub mod setup;
pub mod sweep;
pub mod workload;
