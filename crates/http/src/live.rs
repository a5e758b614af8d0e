//! Live availability for the event pages (`/events/{id}/live`, Server-Sent Events), built so
//! that many viewers cost little and a viewer that stops reading costs no more over time.
//!
//! - **Caps**: [`LiveHub`] counts subscribers per node and per client (a signed-in user, or the
//!   peer address: IPv4 exactly, IPv6 by its /64) and refuses the excess before anything is
//!   rendered; a [`Subscription`] is the slot, released when the stream is dropped.
//! - **Shared state, no queues**: one [`Feed`] per event with subscribers holds what viewers see
//!   (counts, one letter per seat) and a short ring of recent changes. The first subscriber to
//!   wake after an applied entry brings the feed up to date (one diff per entry, not one per
//!   viewer); every subscriber remembers only the feed version it last sent, and renders its
//!   next message from the feed when the connection asks for one. Changes a slow viewer has not
//!   taken are coalesced into one message, never queued.
//! - **Deltas**: the first message of a connection is the full state; later ones carry the
//!   counts and the seats that changed ([`encode_update`]), or the full state again when that is
//!   smaller or the ring no longer reaches back to the viewer's version.
//! - **Send timeout**: a viewer that had a change waiting for longer than the send timeout
//!   before its connection asked for it is dropped (its browser reconnects and starts afresh).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tix_core::{EventId, Inventory, SeatState, State};
use tokio::sync::watch;

/// The most versions a feed keeps in its change ring; a viewer further behind gets the full
/// state.
const FEED_VERSIONS_MAX: usize = 1024;

/// Who a subscriber counts against for the per-client cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A signed-in user: all their sessions together (sessions are cheap to mint).
    User(u64),
    /// An anonymous client, by peer address (IPv6 by its /64: one host owns a whole /64).
    Address(IpAddr),
}

impl ClientKey {
    /// Returns the key of an anonymous client at `ip`.
    pub fn address(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ClientKey::Address(IpAddr::V6(prefix.into()))
            }
            v4 => ClientKey::Address(v4),
        }
    }
}

/// The peer address of the connection, when the listener recorded it (`ConnectInfo`); router
/// tests without it get `None`.
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        Ok(PeerAddr(addr))
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The node has `sse_subscribers_max` subscribers.
    #[error("this node has as many live subscribers as it serves")]
    NodeFull,
    /// This client has `sse_subscribers_per_client_max` subscribers.
    #[error("this client has as many live subscribers as one client may have")]
    ClientFull,
}

impl Refused {
    /// A stable name for the metrics label.
    fn label(self) -> &'static str {
        match self {
            Refused::NodeFull => "node",
            Refused::ClientFull => "client",
        }
    }
}

/// The counts a live message carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tickets sold.
    pub sold: u32,
    /// Tickets in active holds.
    pub held: u32,
    /// Tickets on sale.
    pub available: u32,
}

/// The subscriber registry of one node: caps, counts and the feeds of events being watched.
/// Cheap to clone.
#[derive(Clone)]
pub struct LiveHub(Arc<HubShared>);

struct HubShared {
    subscribers_max: u32,
    per_client_max: u32,
    send_timeout: Duration,
    update_interval: Duration,
    inner: Mutex<HubInner>,
}

#[derive(Default)]
struct HubInner {
    subscribers: u32,
    per_client: HashMap<ClientKey, u32>,
    /// Each watched event's feed and how many subscribers it has.
    feeds: HashMap<EventId, (Arc<FeedShared>, u32)>,
}

/// Subscribers of one feed are woken in this many groups, one after the other with a yield in
/// between, so 2,000 viewers of a sale do not queue 2,000 tasks ahead of the next purchase.
const FEED_SHARDS: usize = 16;

/// One event's feed and the signals its subscribers wait on.
struct FeedShared {
    feed: Mutex<Feed>,
    /// Held by every subscriber: closed when the last one is gone.
    alive: watch::Sender<()>,
    /// The feed's version, per group of subscribers.
    shards: Vec<watch::Sender<u64>>,
    /// The group the next subscriber joins.
    next_shard: std::sync::atomic::AtomicUsize,
}

impl FeedShared {
    fn lock(&self) -> MutexGuard<'_, Feed> {
        self.feed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The limits of the live streams.
#[derive(Debug, Clone, Copy)]
pub struct LiveLimits {
    /// Subscribers this node serves at once.
    pub subscribers_max: u32,
    /// Subscribers one client (user or address) may have at once.
    pub per_client_max: u32,
    /// How long a change may wait for a connection to take it before the viewer is dropped.
    pub send_timeout: Duration,
    /// The shortest time between two messages of one event's feed (changes in between are
    /// coalesced).
    pub update_interval: Duration,
}

impl LiveHub {
    /// Creates a hub with these limits.
    pub fn new(limits: LiveLimits) -> LiveHub {
        LiveHub(Arc::new(HubShared {
            subscribers_max: limits.subscribers_max,
            per_client_max: limits.per_client_max,
            send_timeout: limits.send_timeout,
            update_interval: limits.update_interval,
            inner: Mutex::new(HubInner::default()),
        }))
    }

    fn inner(&self) -> MutexGuard<'_, HubInner> {
        // The counters stay consistent even if a holder panicked: every update is one step.
        self.0.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a subscriber of `event` (counted against `client`, when known), or
    /// says which cap is full. Nothing is rendered here. When the subscriber is the event's
    /// first, the feed's [`FeedDriver`] comes with it: the caller spawns it once the first
    /// message showed that the event exists.
    pub fn subscribe(
        &self,
        client: Option<ClientKey>,
        event: EventId,
    ) -> Result<(Subscription, Option<FeedDriver>), Refused> {
        let mut inner = self.inner();
        let refused = if inner.subscribers >= self.0.subscribers_max {
            Some(Refused::NodeFull)
        } else if client.is_some_and(|key| {
            inner.per_client.get(&key).copied().unwrap_or(0) >= self.0.per_client_max
        }) {
            Some(Refused::ClientFull)
        } else {
            None
        };
        if let Some(refused) = refused {
            drop(inner);
            metrics::counter!("tix_sse_refused_total", "cap" => refused.label()).increment(1);
            return Err(refused);
        }
        inner.subscribers += 1;
        if let Some(key) = client {
            *inner.per_client.entry(key).or_insert(0) += 1;
        }
        let mut created = false;
        let (feed, watchers) = inner.feeds.entry(event).or_insert_with(|| {
            created = true;
            let feed = FeedShared {
                feed: Mutex::new(Feed::default()),
                alive: watch::channel(()).0,
                shards: (0..FEED_SHARDS).map(|_| watch::channel(0).0).collect(),
                next_shard: 0.into(),
            };
            (Arc::new(feed), 0)
        });
        *watchers += 1;
        let feed = feed.clone();
        // Subscribed under the hub's lock: a feed in the map always has a receiver, so its
        // driver stops only when the last subscriber is gone.
        let alive = feed.alive.subscribe();
        let shard = feed.next_shard.fetch_add(1, Ordering::Relaxed) % FEED_SHARDS;
        let version_rx = feed.shards[shard].subscribe();
        let subscribers = inner.subscribers;
        drop(inner);
        metrics::gauge!("tix_sse_subscribers").set(f64::from(subscribers));
        let driver = created.then(|| FeedDriver {
            feed: feed.clone(),
            event,
            interval: self.0.update_interval,
        });
        let subscription = Subscription {
            hub: self.clone(),
            client,
            event,
            feed,
            version_rx,
            _alive: alive,
            sent: None,
        };
        Ok((subscription, driver))
    }

    /// Returns how many subscribers this node has now.
    pub fn subscribers(&self) -> u32 {
        self.inner().subscribers
    }

    fn release(&self, client: Option<ClientKey>, event: EventId) {
        let mut inner = self.inner();
        inner.subscribers -= 1;
        if let Some(key) = client
            && let Some(count) = inner.per_client.get_mut(&key)
        {
            *count -= 1;
            if *count == 0 {
                inner.per_client.remove(&key);
            }
        }
        if let Some((_, watchers)) = inner.feeds.get_mut(&event) {
            *watchers -= 1;
            if *watchers == 0 {
                inner.feeds.remove(&event);
            }
        }
        let subscribers = inner.subscribers;
        drop(inner);
        metrics::gauge!("tix_sse_subscribers").set(f64::from(subscribers));
    }
}

/// Keeps one event's feed up to date: wakes on every applied log entry, diffs the event into
/// the feed, and wakes the feed's subscribers when what they see changed — at most once per
/// update interval. Ends when the feed's last subscriber is gone or the node stops.
pub struct FeedDriver {
    feed: Arc<FeedShared>,
    event: EventId,
    interval: Duration,
}

impl FeedDriver {
    /// Runs until the feed has no subscribers (spawn it).
    pub async fn run(self, shared: Arc<tix_raft::SharedState>) {
        let mut applied_rx = shared.subscribe();
        let mut notified = self.feed.lock().version;
        loop {
            tokio::select! {
                changed = applied_rx.changed() => if changed.is_err() { return },
                () = self.feed.alive.closed() => return,
            }
            let applied = *applied_rx.borrow_and_update();
            let (version, gone) = {
                let mut feed = self.feed.lock();
                let state = shared.read();
                feed.refresh(&state, self.event, applied, Instant::now());
                (feed.version, feed.gone)
            };
            if version != notified || gone {
                notified = version;
                for shard in &self.feed.shards {
                    shard.send_replace(version);
                    tokio::task::yield_now().await;
                }
            }
            if gone {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {},
                () = self.feed.alive.closed() => return,
            }
        }
    }
}

/// What a subscriber does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this message (shared by every viewer it is the same for).
    Send(Arc<str>),
    /// Nothing changed for this viewer: wait for the feed's next version.
    Wait,
    /// The event is gone: end the stream.
    Gone,
    /// A change waited longer than the send timeout: end the stream.
    TooSlow,
}

/// One subscriber's slot and position in its event's feed; dropping it frees the slot.
pub struct Subscription {
    hub: LiveHub,
    client: Option<ClientKey>,
    event: EventId,
    feed: Arc<FeedShared>,
    version_rx: watch::Receiver<u64>,
    _alive: watch::Receiver<()>,
    /// The feed version last sent; `None` before the first (full) message.
    sent: Option<u64>,
}

impl Subscription {
    /// Returns the first message (the full state), bringing the feed up to the applied state
    /// first if it is behind, so the stream never starts older than the page it belongs to.
    pub fn first(&mut self, shared: &tix_raft::SharedState, now: Instant) -> Next {
        let applied = *shared.subscribe().borrow();
        let feed = self.feed.clone();
        let mut feed = feed.lock();
        if feed.applied.is_none_or(|seen| seen < applied) {
            let state = shared.read();
            feed.refresh(&state, self.event, applied, now);
        }
        self.next_from(&mut feed, now)
    }

    /// Waits until the feed has a version this subscriber has not been woken for; false when
    /// the feed's driver is gone (the node stops or the event is gone).
    pub async fn changed(&mut self) -> bool {
        self.version_rx.changed().await.is_ok()
    }

    /// Returns what to send this viewer now, from the feed as its driver left it.
    pub fn next(&mut self, now: Instant) -> Next {
        let feed = self.feed.clone();
        let mut feed = feed.lock();
        self.next_from(&mut feed, now)
    }

    fn next_from(&mut self, feed: &mut Feed, now: Instant) -> Next {
        if feed.gone {
            return Next::Gone;
        }
        let next = feed.next_for(self.sent, now, self.hub.0.send_timeout);
        if matches!(next, Next::Send(_)) {
            self.sent = Some(feed.version);
        }
        next
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.release(self.client, self.event);
    }
}

/// The seats that changed in one feed version.
#[derive(Debug)]
struct Change {
    version: u64,
    at: Instant,
    /// Seat indexes (0-based), in the order the diff found them.
    seats: Vec<u32>,
}

/// What every viewer of one event sees, and the recent changes to it.
#[derive(Debug, Default)]
pub struct Feed {
    /// The applied index the feed was last brought up to.
    applied: Option<u64>,
    /// Bumped whenever what a viewer sees changed.
    version: u64,
    counts: Counts,
    /// One letter per seat (`F`, `H`, `S`, `B`) of a numbered event.
    letters: Option<Vec<u8>>,
    /// Newest last; at most [`FEED_VERSIONS_MAX`] versions and about a quarter of the seats.
    changes: VecDeque<Change>,
    /// Seat entries in `changes`.
    changed_seats: usize,
    /// The event no longer exists.
    gone: bool,
    /// The full message of a version: rendered once, sent to every new viewer.
    full_cache: Option<(u64, Arc<str>)>,
    /// The delta from one version to another: most viewers are at the same version.
    delta_cache: Option<(u64, u64, Arc<str>)>,
}

/// Returns the letter of a seat on the live map.
fn letter(seat: &SeatState) -> u8 {
    match seat {
        SeatState::Free => b'F',
        SeatState::Held(_) => b'H',
        SeatState::Sold(_) => b'S',
        SeatState::Blocked => b'B',
    }
}

impl Feed {
    /// Reads the event from the applied state into the feed.
    fn refresh(&mut self, state: &State, event: EventId, applied: u64, now: Instant) {
        self.applied = Some(applied);
        let Some(e) = state.event(event) else {
            self.gone = true;
            return;
        };
        self.gone = false;
        let a = crate::views::availability(e);
        let counts = Counts {
            sold: a.sold,
            held: a.held,
            available: a.available,
        };
        match &e.inventory {
            Inventory::Numbered { seats, .. } => {
                self.update(counts, Some(seats.iter().map(letter)), now)
            }
            Inventory::Unnumbered { .. } => self.update(counts, None::<std::iter::Empty<u8>>, now),
        }
    }

    /// Applies the current counts and seat letters; records a new version when they differ.
    pub fn update<I>(&mut self, counts: Counts, letters: Option<I>, now: Instant)
    where
        I: ExactSizeIterator<Item = u8>,
    {
        let seats = match (letters, &mut self.letters) {
            (Some(letters), Some(old)) if old.len() == letters.len() => diff_into(old, letters),
            (Some(letters), _) => {
                // First sight (or the map changed shape): everything is new.
                let fresh: Vec<u8> = letters.collect();
                let all = (0..fresh.len() as u32).collect();
                let first = self.letters.is_none() && self.version == 0;
                self.letters = Some(fresh);
                if first { Vec::new() } else { all }
            }
            (None, _) => {
                self.letters = None;
                Vec::new()
            }
        };
        if seats.is_empty() && counts == self.counts && self.version > 0 {
            return;
        }
        self.counts = counts;
        self.version += 1;
        debug_assert!(
            self.changes
                .back()
                .is_none_or(|c| c.version + 1 == self.version),
            "feed versions are consecutive"
        );
        self.changed_seats += seats.len();
        self.changes.push_back(Change {
            version: self.version,
            at: now,
            seats,
        });
        self.trim();
    }

    /// Drops the oldest changes past the ring's bounds (always keeping the newest).
    fn trim(&mut self) {
        let seat_bound = self.letters.as_ref().map_or(0, |l| l.len() / 4) + 16;
        while self.changes.len() > 1
            && (self.changes.len() > FEED_VERSIONS_MAX || self.changed_seats > seat_bound)
        {
            if let Some(old) = self.changes.pop_front() {
                self.changed_seats -= old.seats.len();
            }
        }
    }

    /// Returns what a viewer that last got `version` should be sent now.
    fn next_for(&mut self, version: Option<u64>, now: Instant, send_timeout: Duration) -> Next {
        let Some(version) = version else {
            return Next::Send(self.full_message());
        };
        if version >= self.version {
            return Next::Wait;
        }
        // Versions in the ring are consecutive, so the first change this viewer has not seen
        // is found by position (or the oldest kept, if the viewer is further behind). How long
        // it has waited for the connection to take it decides whether the viewer is too slow.
        let Some(front) = self.changes.front().map(|c| c.version) else {
            return Next::Send(self.full_message());
        };
        let first_unseen = (version + 1).max(front);
        let from = (first_unseen - front) as usize;
        let waiting_since = self.changes[from].at;
        if now.saturating_duration_since(waiting_since) > send_timeout {
            return Next::TooSlow;
        }
        if version + 1 < front {
            return Next::Send(self.full_message());
        }
        if let Some((cached_from, cached_to, message)) = &self.delta_cache
            && (*cached_from, *cached_to) == (version, self.version)
        {
            return Next::Send(message.clone());
        }
        let mut changed: Vec<u32> = self
            .changes
            .range(from..)
            .flat_map(|c| c.seats.iter().copied())
            .collect();
        changed.sort_unstable();
        changed.dedup();
        let message: Arc<str> =
            encode_update(self.counts, self.letters.as_deref(), Some(&changed)).into();
        self.delta_cache = Some((version, self.version, message.clone()));
        Next::Send(message)
    }

    /// Returns the full message of the current version, rendered once per version.
    fn full_message(&mut self) -> Arc<str> {
        if let Some((version, message)) = &self.full_cache
            && *version == self.version
        {
            return message.clone();
        }
        let message: Arc<str> = encode_update(self.counts, self.letters.as_deref(), None).into();
        self.full_cache = Some((self.version, message.clone()));
        message
    }
}

/// Writes `new` over `old` and returns the indexes that differed.
fn diff_into(old: &mut [u8], new: impl Iterator<Item = u8>) -> Vec<u32> {
    let mut changed = Vec::new();
    for (i, (old, new)) in old.iter_mut().zip(new).enumerate() {
        if *old != new {
            *old = new;
            changed.push(i as u32);
        }
    }
    changed
}

/// Renders one live message: the counts, then either the whole seat map
/// (`"seats":"FFSH…"`, one letter per seat, `null` for an unnumbered event) or, when `changed`
/// lists the seat indexes that changed and that is shorter, only those seats
/// (`"seats_changed":[[17,"S"],…]`, by seat number, 1-based).
pub fn encode_update(counts: Counts, letters: Option<&[u8]>, changed: Option<&[u32]>) -> String {
    let Counts {
        sold,
        held,
        available,
    } = counts;
    let mut out = format!(r#"{{"sold":{sold},"held":{held},"available":{available},"#);
    let delta = match (letters, changed) {
        (Some(letters), Some(changed)) if delta_len(changed) < letters.len() => {
            Some((letters, changed))
        }
        _ => None,
    };
    match (letters, delta) {
        (_, Some((letters, changed))) => {
            out.push_str(r#""seats_changed":["#);
            for (n, &i) in changed.iter().enumerate() {
                let seat = char::from(letters[i as usize]);
                let comma = if n == 0 { "" } else { "," };
                let _ = write!(out, r#"{comma}[{},"{seat}"]"#, i + 1);
            }
            out.push_str("]}");
        }
        (Some(letters), None) => {
            out.reserve(letters.len() + 12);
            out.push_str(r#""seats":""#);
            // Seat letters are ASCII by construction.
            out.push_str(std::str::from_utf8(letters).unwrap_or_default());
            out.push_str("\"}");
        }
        (None, None) => out.push_str(r#""seats":null}"#),
    }
    out
}

/// The length of the `seats_changed` array's contents for these indexes.
fn delta_len(changed: &[u32]) -> usize {
    // `[N,"X"]` is the seat number's digits plus 6, plus a comma between entries.
    changed
        .iter()
        .map(|&i| (i + 1).checked_ilog10().unwrap_or(0) as usize + 1 + 6)
        .sum::<usize>()
        + changed.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTS: Counts = Counts {
        sold: 1,
        held: 2,
        available: 7,
    };

    /// Applies a live message to a seat map the way `static/shop.js` does.
    fn apply(map: &mut Vec<u8>, message: &str) -> Counts {
        let value: serde_json::Value = serde_json::from_str(message).expect("JSON");
        if let Some(seats) = value["seats"].as_str() {
            *map = seats.as_bytes().to_vec();
        }
        if let Some(changed) = value["seats_changed"].as_array() {
            for entry in changed {
                let seat = entry[0].as_u64().expect("seat number") as usize;
                let letter = entry[1].as_str().expect("letter").as_bytes()[0];
                map[seat - 1] = letter;
            }
        }
        let count = |k: &str| value[k].as_u64().expect("count") as u32;
        Counts {
            sold: count("sold"),
            held: count("held"),
            available: count("available"),
        }
    }

    // Checks the full form of a message: counts and the letters, or null without seats.
    #[test]
    fn full_message_carries_counts_and_every_seat() {
        assert_eq!(
            encode_update(COUNTS, Some(b"FSHB"), None),
            r#"{"sold":1,"held":2,"available":7,"seats":"FSHB"}"#
        );
        assert_eq!(
            encode_update(COUNTS, None, None),
            r#"{"sold":1,"held":2,"available":7,"seats":null}"#
        );
        assert_eq!(
            encode_update(COUNTS, None, Some(&[])),
            r#"{"sold":1,"held":2,"available":7,"seats":null}"#
        );
    }

    // Checks the delta form: seat numbers are 1-based and carry the current letter; an empty
    // change list still carries the counts.
    #[test]
    fn delta_message_carries_only_changed_seats() {
        let letters =
            b"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";
        let mut letters = letters.to_vec();
        letters[0] = b'S';
        letters[41] = b'H';
        assert_eq!(
            encode_update(COUNTS, Some(&letters), Some(&[0, 41])),
            r#"{"sold":1,"held":2,"available":7,"seats_changed":[[1,"S"],[42,"H"]]}"#
        );
        assert_eq!(
            encode_update(COUNTS, Some(&letters), Some(&[])),
            r#"{"sold":1,"held":2,"available":7,"seats_changed":[]}"#
        );
    }

    // Checks the size rule from both sides: a delta as long as the map's letters is sent
    // whole instead; with one more seat on the map it stays a delta.
    #[test]
    fn delta_longer_than_the_map_becomes_a_full_message() {
        // Nine one-digit seats: 9 × 7 + 8 commas = 71 bytes of delta contents.
        let changed: Vec<u32> = (0..9).collect();
        assert_eq!(delta_len(&changed), 71);
        let as_long = vec![b'S'; 71];
        let message = encode_update(COUNTS, Some(&as_long), Some(&changed));
        assert!(message.contains(r#""seats":""#), "{message}");
        let longer = vec![b'S'; 72];
        let message = encode_update(COUNTS, Some(&longer), Some(&changed));
        assert!(message.contains("seats_changed"), "{message}");
        assert_eq!(delta_len(&[9, 99, 999]), 8 + 9 + 10 + 2);
    }

    // Checks that a viewer who applies the first message and then every delta, as shop.js does,
    // always holds the feed's current map and counts, across many random-ish changes.
    #[test]
    fn applying_deltas_reproduces_the_current_map() {
        let now = Instant::now();
        let timeout = Duration::from_secs(60);
        let mut feed = Feed::default();
        let mut truth = vec![b'F'; 500];
        feed.update(Counts::default(), Some(truth.iter().copied()), now);
        let mut viewer_map = Vec::new();
        let mut version = None;
        let Next::Send(first) = feed.next_for(version, now, timeout) else {
            panic!("the first message is sent")
        };
        assert!(first.contains(r#""seats":""#), "first message is full");
        apply(&mut viewer_map, &first);
        version = Some(feed.version);
        let mut deltas = 0;
        for step in 0u32..300 {
            let seat = (step * 7919 % 500) as usize;
            truth[seat] = [b'F', b'H', b'S'][(step % 3) as usize];
            let counts = Counts {
                sold: step,
                held: 1,
                available: 500 - step,
            };
            feed.update(counts, Some(truth.iter().copied()), now);
            // The viewer reads only every third step: the others are coalesced.
            if step % 3 != 0 {
                continue;
            }
            match feed.next_for(version, now, timeout) {
                Next::Send(message) => {
                    deltas += usize::from(message.contains("seats_changed"));
                    assert_eq!(apply(&mut viewer_map, &message), counts);
                    version = Some(feed.version);
                }
                other => panic!("expected a message, got {other:?}"),
            }
            assert_eq!(viewer_map, truth, "after step {step}");
        }
        assert!(deltas >= 99, "later messages are deltas ({deltas})");
        let Next::Send(last) = feed.next_for(version, now, timeout) else {
            panic!("the last two steps are still to be sent")
        };
        apply(&mut viewer_map, &last);
        assert_eq!(viewer_map, truth);
        assert_eq!(feed.next_for(Some(feed.version), now, timeout), Next::Wait);
    }

    // Checks the resync rule: a viewer behind the change ring gets the full map, and an applied
    // entry that changed nothing for the event makes no new version.
    #[test]
    fn viewer_behind_the_ring_gets_the_full_map() {
        let now = Instant::now();
        let timeout = Duration::from_secs(60);
        let mut feed = Feed::default();
        let mut map = [b'F'; 40];
        feed.update(Counts::default(), Some(map.iter().copied()), now);
        let start = feed.version;
        feed.update(Counts::default(), Some(map.iter().copied()), now);
        assert_eq!(feed.version, start, "nothing changed, no new version");
        // The ring keeps about a quarter of the seats plus 16: 40 changed seats push out the
        // oldest.
        for seat in 0..40 {
            map[seat] = b'S';
            feed.update(Counts::default(), Some(map.iter().copied()), now);
        }
        assert!(feed.changes.front().expect("ring").version > start + 1);
        match feed.next_for(Some(start), now, timeout) {
            Next::Send(message) => assert!(message.contains(r#""seats":"SSSS"#), "{message}"),
            other => panic!("expected a full resync, got {other:?}"),
        }
    }

    // Checks the send timeout from both sides: a change waiting exactly the timeout is still
    // sent; one millisecond more ends the stream.
    #[test]
    fn change_waiting_past_the_send_timeout_drops_the_viewer() {
        let start = Instant::now();
        let timeout = Duration::from_millis(500);
        let mut feed = Feed::default();
        feed.update(Counts::default(), None::<std::iter::Empty<u8>>, start);
        let seen = Some(feed.version);
        let counts = Counts {
            sold: 1,
            ..Counts::default()
        };
        feed.update(counts, None::<std::iter::Empty<u8>>, start);
        assert!(matches!(
            feed.next_for(seen, start + timeout, timeout),
            Next::Send(_)
        ));
        assert_eq!(
            feed.next_for(seen, start + timeout + Duration::from_millis(1), timeout),
            Next::TooSlow
        );
    }

    // Checks the caps from both sides (the maximum and one over) and that a dropped slot is
    // given back, per client and per node; anonymous clients without an address count only
    // against the node.
    #[test]
    fn caps_refuse_one_over_and_slots_come_back() {
        let hub = LiveHub::new(LiveLimits {
            subscribers_max: 3,
            per_client_max: 2,
            send_timeout: Duration::from_secs(1),
            update_interval: Duration::from_millis(1),
        });
        let sub = |client, event| hub.subscribe(client, event).map(|(s, _)| s);
        let alice = Some(ClientKey::User(7));
        let event = EventId(1);
        let a1 = sub(alice, event).expect("first");
        let a2 = sub(alice, event).expect("at the per-client cap");
        assert_eq!(sub(alice, event).err(), Some(Refused::ClientFull));
        drop(a1);
        let a3 = sub(alice, event).expect("the slot came back");
        let anonymous = sub(None, EventId(2)).expect("at the node cap");
        let bob = Some(ClientKey::address("10.0.0.1".parse().expect("ip")));
        assert_eq!(sub(bob, event).err(), Some(Refused::NodeFull));
        drop(anonymous);
        let b1 = sub(bob, event).expect("the node slot came back");
        assert_eq!(hub.subscribers(), 3);
        drop((a2, a3, b1));
        assert_eq!(hub.subscribers(), 0);
        assert!(
            hub.inner().feeds.is_empty(),
            "feeds of unwatched events are dropped"
        );
        assert!(hub.inner().per_client.is_empty());
    }

    // Checks that IPv6 clients are keyed by their /64 and IPv4-mapped addresses as IPv4.
    #[test]
    fn client_keys_group_an_ipv6_slash_64() {
        let key = |s: &str| ClientKey::address(s.parse().expect("ip"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
    }
}
