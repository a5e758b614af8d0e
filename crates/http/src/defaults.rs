//! The defaults of the HTTP edge's limits and timings, written once: [`crate::HttpConfig`] and
//! [`crate::listener::ListenerConfig`] start from these, and so do `tix serve`'s flags (through
//! `tix::app::defaults`).

/// The largest request body accepted.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
/// Time limit of one request.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How long a shop hold lasts.
pub const HOLD_TTL_MS: u64 = 10 * 60 * 1000;
/// Requests one node works on at once; more are answered 503 + `Retry-After` unread (see
/// [`crate::shed`]). About what one node on a small machine commits in 10 ms: enough to keep
/// the proposer's batches full (64 clients already reach the unloaded maximum), short enough
/// that an admitted purchase does not queue long. Measured with `tix bench overload` on 2 cores
/// at 5× the cap: 128 kept admitted p99 at 17 ms with goodput 1.02 of unloaded; 256 let it grow
/// to 92 ms (docs/PERFORMANCE.md). Raise it on machines that commit more per millisecond.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 128;
/// Live-availability streams one node serves at once.
pub const SSE_SUBSCRIBERS_MAX: u32 = 4096;
/// Live streams one client may hold at once.
pub const SSE_SUBSCRIBERS_PER_CLIENT_MAX: u32 = 32;
/// How long a live stream's connection may take to take a change.
pub const SSE_SEND_TIMEOUT_MS: u64 = 30_000;
/// The shortest time between two live messages about one event.
pub const SSE_UPDATE_INTERVAL_MS: u64 = 250;
/// How long a request head may take.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// How long a keep-alive connection may wait for its next request.
pub const IDLE_TIMEOUT_MS: u64 = 120_000;
/// How long a request body may take after its head.
pub const BODY_READ_TIMEOUT_MS: u64 = 5_000;
/// The most connections open at once on the public listener.
pub const CONNECTIONS_MAX: usize = 10_000;
/// The most connections open at once on the Raft listener.
pub const RAFT_CONNECTIONS_MAX: usize = 256;
/// The largest request head (request line and headers).
pub const REQUEST_HEAD_BYTES_MAX: usize = 64 * 1024;
/// The longest request target (path and query).
pub const URI_BYTES_MAX: usize = 8 * 1024;

/// Joins of a waiting room that may wait for their turn at one node (beyond the ones being
/// proposed); past it a join is refused with 503 + `Retry-After`. About 1 KiB each while waiting.
pub const JOINS_WAITING_MAX: usize = 20_000;

/// A waiting room without an organizer's admission rate admits visitors at a rate derived from
/// the busiest second of commands the cluster has applied (`tix_raft::meter`): this share of it
/// goes to admitted visitors, the rest is headroom for retries, joins and everyone else.
pub const DERIVED_ADMISSION_SHARE_OF_PEAK: f64 = 0.5;
/// Commands an admitted visitor sends, for the derived rate: their join, a hold and its payment
/// (the shop's flow; an API purchase is one).
pub const COMMANDS_PER_ADMITTED_VISITOR: u64 = 3;
/// The derived rate when the cluster has not yet shown more (a node just started, no sales
/// yet): 10 visitors a second, which every deployment we measured serves with ease.
pub const DERIVED_ADMIT_PER_MIN_MIN: u32 = 600;
