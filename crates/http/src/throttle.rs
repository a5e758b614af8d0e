//! Login and sign-up throttling that an attacker cannot turn against an account's owner.
//!
//! Failed logins are counted per client address, per account, and per (address, account) pair,
//! each with an exponential backoff: after `failures_free` failures the next attempt must wait
//! `base`, and every further failure doubles the wait, up to `max`. Counts decay — they halve
//! for every `half_life` without a failure — so an address that stops failing is forgiven. An
//! address waits for its own backoff; it waits for the account's backoff only if it has itself
//! failed for that account. So a password guesser slows down itself (and, through the account,
//! every other address guessing the same account), but the owner logging in from an address that
//! has not been failing is never refused. A refusal says how long to wait, truthfully.
//!
//! Sign-ups are limited per address: at most `per_window_max` in a fixed window.
//!
//! The tables live in memory on each node (a limit, not a ledger), are capped at
//! `entries_max` each with the least recently changed entry evicted first, and take the time as
//! an argument so tests can drive them. An IPv6 client counts as its /64 network: one host
//! usually holds a whole /64.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Returns the key a client address is counted under: an IPv4 address (IPv4-mapped IPv6
/// included) as it is, an IPv6 address as its /64 network.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Returns whole seconds for a `Retry-After`, rounded up (never 0 for a real wait).
pub fn seconds_rounded_up(wait: Duration) -> u64 {
    wait.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

/// A map of at most `capacity` entries; inserting into a full map evicts the entry changed
/// longest ago.
struct BoundedMap<K, V> {
    entries: HashMap<K, (u64, V)>,
    /// Change sequence number → key, oldest first.
    order: BTreeMap<u64, K>,
    next_sequence: u64,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    fn new(capacity: usize) -> Self {
        BoundedMap {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_sequence: 0,
            capacity: capacity.max(1),
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// Replaces the value of `key` with `change(old value)` and marks it the newest entry.
    fn update(&mut self, key: K, change: impl FnOnce(Option<V>) -> V) {
        let old = self.entries.remove(&key).map(|(sequence, value)| {
            self.order.remove(&sequence);
            value
        });
        if old.is_none()
            && self.entries.len() >= self.capacity
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.order.insert(sequence, key.clone());
        self.entries.insert(key, (sequence, change(old)));
    }

    fn remove(&mut self, key: &K) {
        if let Some((sequence, _)) = self.entries.remove(key) {
            self.order.remove(&sequence);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The shape of one backoff: free failures, then a wait that doubles per failure.
#[derive(Debug, Clone, Copy)]
pub struct BackoffPolicy {
    /// Failures that cost nothing; the next failure starts the backoff at `base`.
    pub failures_free: u32,
    /// The first wait.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// The count halves for every this long without a failure.
    pub half_life: Duration,
}

/// A failure count and when the last failure was.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl BackoffPolicy {
    /// Returns the wait after `count` failures: none below `failures_free`, then `base`,
    /// doubling per failure, at most `max`.
    pub fn delay(&self, count: u32) -> Duration {
        if count < self.failures_free {
            return Duration::ZERO;
        }
        let doublings = count - self.failures_free;
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Returns the count left of `f` at `now`, after halving once per `half_life`.
    fn decayed(&self, f: &Failures, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(f.last);
        let half_lives = elapsed.as_nanos() / self.half_life.as_nanos().max(1);
        if half_lives >= 32 {
            0
        } else {
            f.count >> half_lives
        }
    }

    /// Returns how much longer the next attempt must wait, if at all.
    fn remaining(&self, f: &Failures, now: Instant) -> Option<Duration> {
        let until = f.last + self.delay(f.count);
        let left = until.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    /// Returns `f` with one more failure at `now`.
    fn add_failure(&self, f: Option<Failures>, now: Instant) -> Failures {
        let before = f.map_or(0, |f| self.decayed(&f, now));
        Failures {
            count: before.saturating_add(1),
            last: now,
        }
    }
}

/// The login throttle's settings.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// The backoff of one client address (all accounts together).
    pub address: BackoffPolicy,
    /// The backoff of one account (all addresses together), applied only to addresses that
    /// have failed for it.
    pub account: BackoffPolicy,
    /// The most entries in each table.
    pub entries_max: usize,
}

struct LoginTables {
    by_address: BoundedMap<IpAddr, Failures>,
    by_account: BoundedMap<String, Failures>,
    by_pair: BoundedMap<(IpAddr, String), Failures>,
}

/// Counts failed logins and says when a login may not be tried yet.
pub struct LoginThrottle {
    policy: LoginPolicy,
    tables: Mutex<LoginTables>,
}

impl LoginThrottle {
    /// Returns an empty throttle.
    pub fn new(policy: LoginPolicy) -> LoginThrottle {
        let n = policy.entries_max;
        LoginThrottle {
            policy,
            tables: Mutex::new(LoginTables {
                by_address: BoundedMap::new(n),
                by_account: BoundedMap::new(n),
                by_pair: BoundedMap::new(n),
            }),
        }
    }

    /// Returns how long `client` must still wait before trying `account`, if at all. The
    /// account's backoff counts only when this client has failed for this account.
    pub fn check(&self, client: IpAddr, account: &str, now: Instant) -> Result<(), Duration> {
        let client = client_key(client);
        let t = self.tables.lock().expect("poisoned");
        let address_wait = t
            .by_address
            .get(&client)
            .and_then(|f| self.policy.address.remaining(f, now));
        let has_failed_here = t
            .by_pair
            .get(&(client, account.to_owned()))
            .is_some_and(|f| self.policy.address.decayed(f, now) > 0);
        let account_wait = has_failed_here
            .then(|| t.by_account.get(&account.to_owned()))
            .flatten()
            .and_then(|f| self.policy.account.remaining(f, now));
        match address_wait.max(account_wait) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Records a failed login of `client` for `account` at `now`.
    pub fn failed(&self, client: IpAddr, account: &str, now: Instant) {
        let client = client_key(client);
        let mut t = self.tables.lock().expect("poisoned");
        let (address, account_policy) = (self.policy.address, self.policy.account);
        t.by_address.update(client, |f| address.add_failure(f, now));
        t.by_account
            .update(account.to_owned(), |f| account_policy.add_failure(f, now));
        t.by_pair.update((client, account.to_owned()), |f| {
            address.add_failure(f, now)
        });
    }

    /// Records a successful login: `client` is no longer one that fails for `account`. The
    /// address's own count stays (logging in to one's own account must not buy more guesses
    /// at another), and so does the account's (only addresses that fail for it feel it).
    pub fn succeeded(&self, client: IpAddr, account: &str) {
        let client = client_key(client);
        let mut t = self.tables.lock().expect("poisoned");
        t.by_pair.remove(&(client, account.to_owned()));
    }

    /// Returns how many entries each table holds (address, account, pair).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let t = self.tables.lock().expect("poisoned");
        (t.by_address.len(), t.by_account.len(), t.by_pair.len())
    }
}

/// Limits sign-ups per client address: at most `per_window_max` in each fixed window.
pub struct SignupLimiter {
    per_window_max: u32,
    window: Duration,
    /// Client → (window start, sign-ups in it).
    table: Mutex<BoundedMap<IpAddr, (Instant, u32)>>,
}

impl SignupLimiter {
    /// Returns a limiter allowing `per_window_max` sign-ups per `window`, tracking at most
    /// `entries_max` addresses.
    pub fn new(per_window_max: u32, window: Duration, entries_max: usize) -> SignupLimiter {
        SignupLimiter {
            per_window_max,
            window,
            table: Mutex::new(BoundedMap::new(entries_max)),
        }
    }

    /// Counts a sign-up attempt of `client` at `now`, or returns how long until the window
    /// ends when it is used up (a refused attempt is not counted).
    pub fn attempt(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let client = client_key(client);
        let mut table = self.table.lock().expect("poisoned");
        let (start, count) = match table.get(&client) {
            Some(&(start, count)) if now.saturating_duration_since(start) < self.window => {
                (start, count)
            }
            _ => (now, 0),
        };
        if count >= self.per_window_max {
            return Err((start + self.window).saturating_duration_since(now));
        }
        table.update(client, |_| (start, count + 1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn policy() -> LoginPolicy {
        LoginPolicy {
            address: BackoffPolicy {
                failures_free: 3,
                base: SECOND,
                max: 8 * SECOND,
                half_life: 60 * SECOND,
            },
            account: BackoffPolicy {
                failures_free: 5,
                base: SECOND,
                max: 8 * SECOND,
                half_life: 60 * SECOND,
            },
            entries_max: 1000,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // The wait is 0 below the free failures, then base, doubling per failure, capped at max.
    #[test]
    fn delay_doubles_from_the_free_failures_and_is_capped() {
        let p = policy().address;
        let waits: Vec<u64> = (0..10).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2, 4, 8, 8, 8, 8]);
        assert_eq!(p.delay(u32::MAX), 8 * SECOND);
    }

    // An address that keeps failing waits 1, 2, 4 s (truthfully: the remaining time from now),
    // while another address logs in to the same account at once; the attacker's own pair also
    // makes it feel the account's backoff, the other address never does.
    #[test]
    fn the_failing_address_waits_and_another_does_not() {
        let throttle = LoginThrottle::new(policy());
        let (attacker, owner) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.check(attacker, "admin", t0), Ok(()));
            throttle.failed(attacker, "admin", t0);
        }
        assert_eq!(throttle.check(attacker, "admin", t0), Err(SECOND));
        let half = t0 + SECOND / 2;
        assert_eq!(throttle.check(attacker, "admin", half), Err(SECOND / 2));
        assert_eq!(throttle.check(attacker, "bob", half), Err(SECOND / 2));
        assert_eq!(throttle.check(owner, "admin", half), Ok(()));
        let t1 = t0 + SECOND;
        assert_eq!(throttle.check(attacker, "admin", t1), Ok(()));
        throttle.failed(attacker, "admin", t1);
        assert_eq!(throttle.check(attacker, "admin", t1), Err(2 * SECOND));
        let t2 = t1 + 2 * SECOND;
        throttle.failed(attacker, "admin", t2);
        assert_eq!(throttle.check(attacker, "admin", t2), Err(4 * SECOND));
        // Five failures for the account: its backoff (1 s) applies to the attacker only.
        assert_eq!(throttle.check(owner, "admin", t2), Ok(()));
        throttle.succeeded(owner, "admin");
        assert_eq!(throttle.sizes(), (1, 1, 1));
    }

    // Many addresses guessing one account: past the account's free failures each of them,
    // once it has failed, waits for the account's backoff; an address that has not failed for
    // the account still gets in; a success forgets only that address's pair.
    #[test]
    fn a_distributed_guess_is_slowed_by_the_account_backoff() {
        let throttle = LoginThrottle::new(policy());
        let t0 = Instant::now();
        for i in 1..=6 {
            throttle.failed(ip(&format!("10.0.1.{i}")), "admin", t0);
        }
        assert_eq!(
            throttle.check(ip("10.0.1.1"), "admin", t0),
            Err(2 * SECOND),
            "6 account failures: 2 s"
        );
        assert_eq!(throttle.check(ip("10.0.1.1"), "bob", t0), Ok(()));
        assert_eq!(throttle.check(ip("10.0.2.1"), "admin", t0), Ok(()));
        throttle.succeeded(ip("10.0.1.1"), "admin");
        assert_eq!(throttle.check(ip("10.0.1.1"), "admin", t0), Ok(()));
    }

    // Counts halve per half-life without failures: after two half-lives 4 failures are 1, so
    // the next failure makes 2 — below the 3 free ones, no wait.
    #[test]
    fn counts_decay() {
        let throttle = LoginThrottle::new(policy());
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for _ in 0..4 {
            throttle.failed(a, "x", t0);
        }
        assert!(throttle.check(a, "x", t0).is_err());
        let later = t0 + 120 * SECOND;
        throttle.failed(a, "x", later);
        assert_eq!(throttle.check(a, "x", later), Ok(()));
    }

    // The tables never hold more than entries_max; the least recently changed entry goes.
    #[test]
    fn tables_are_bounded_and_evict_the_oldest() {
        let mut p = policy();
        p.entries_max = 4;
        let throttle = LoginThrottle::new(p);
        let t0 = Instant::now();
        for _ in 0..3 {
            throttle.failed(ip("10.9.9.9"), "victim", t0);
        }
        for i in 0..100 {
            throttle.failed(ip(&format!("10.0.0.{i}")), &format!("user{i}"), t0);
        }
        assert_eq!(throttle.sizes(), (4, 4, 4));
        assert_eq!(throttle.check(ip("10.9.9.9"), "victim", t0), Ok(()));
    }

    // IPv6 clients count per /64; IPv4-mapped addresses count as IPv4.
    #[test]
    fn ipv6_counts_per_network() {
        assert_eq!(client_key(ip("2001:db8:1:2:aa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    // Sign-ups from both sides of the limit: `per_window_max` pass, one more waits for the end
    // of the window (and is not counted), another address is not affected, a new window opens.
    #[test]
    fn signups_per_window_from_both_sides() {
        let limiter = SignupLimiter::new(3, 60 * SECOND, 100);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.attempt(a, t0), Ok(()));
        }
        assert_eq!(limiter.attempt(a, t0 + SECOND), Err(59 * SECOND));
        assert_eq!(limiter.attempt(b, t0 + SECOND), Ok(()));
        assert_eq!(limiter.attempt(a, t0 + 60 * SECOND), Ok(()));
    }

    // Retry-After is whole seconds rounded up.
    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(seconds_rounded_up(Duration::from_millis(1)), 1);
        assert_eq!(seconds_rounded_up(SECOND), 1);
        assert_eq!(seconds_rounded_up(Duration::from_millis(1001)), 2);
    }
}
