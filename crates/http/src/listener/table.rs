//! The connection table of one listener and its eviction policy, as pure logic (no sockets, no
//! clock): which connections are open, which of them are idle (no request dispatched: waiting
//! for the first request, between keep-alive requests, or in the middle of a request head), in
//! the order they became idle, and what to do with a new connection when the cap is reached.
//!
//! The policy: below `connections_max` a new connection is admitted. At the cap, the connection
//! that has been idle the longest is evicted to make room, so a flood of idle sockets pushes out
//! its own oldest members and never locks out a client that connects to send a request. Victims
//! still count until their task has closed them; at most `evictions_in_flight_max` may be
//! closing at once (beyond that the new connection waits for one of them), so the listener
//! never holds more than `connections_max + evictions_in_flight_max` sockets. With nothing to
//! evict (every connection is in the middle of a request), the new connection is refused.

use std::collections::{BTreeMap, HashMap};

/// What to do with a new connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission<T> {
    /// Serve it.
    Admit,
    /// Serve it after telling `victim` (the longest-idle connection) to close.
    AdmitEvicting {
        /// The handle of the connection to close.
        victim: T,
    },
    /// Ask again once an evicted connection has closed: the cap is reached and
    /// `evictions_in_flight_max` victims are still closing.
    Wait,
    /// Refuse it: the cap is reached and no connection is idle.
    Refuse,
}

/// One open connection.
#[derive(Debug)]
struct Entry<T> {
    /// How the listener reaches the connection's task (to evict it or shut it down).
    handle: T,
    /// Its key in the idle order while no request is dispatched on it.
    idle_seq: Option<u64>,
    /// Told to close; counted until its task ends.
    evicted: bool,
}

/// The open connections of one listener (see the module documentation).
#[derive(Debug)]
pub(crate) struct ConnectionTable<T> {
    connections_max: usize,
    evictions_in_flight_max: usize,
    entries: HashMap<u64, Entry<T>>,
    /// Idle connections by the sequence number of the moment they became idle: oldest first.
    idle: BTreeMap<u64, u64>,
    evicting: usize,
    next_seq: u64,
}

impl<T: Clone> ConnectionTable<T> {
    /// Returns an empty table for a listener that serves at most `connections_max` connections
    /// and lets at most `evictions_in_flight_max` evicted ones be closing at once.
    pub(crate) fn new(connections_max: usize, evictions_in_flight_max: usize) -> Self {
        assert!(
            connections_max >= 1,
            "a listener serves at least one connection"
        );
        ConnectionTable {
            connections_max,
            evictions_in_flight_max,
            entries: HashMap::new(),
            idle: BTreeMap::new(),
            evicting: 0,
            next_seq: 0,
        }
    }

    /// Decides about a new connection `id` (unique among the open ones); an admitted one starts
    /// idle (it has sent no request).
    pub(crate) fn admit(&mut self, id: u64, handle: T) -> Admission<T> {
        let live = self.entries.len() - self.evicting;
        let victim = if live < self.connections_max {
            None
        } else if self.idle.is_empty() {
            return Admission::Refuse;
        } else if self.evicting >= self.evictions_in_flight_max {
            return Admission::Wait;
        } else {
            self.evict_oldest_idle()
        };
        self.entries.insert(
            id,
            Entry {
                handle,
                idle_seq: None,
                evicted: false,
            },
        );
        self.idle(id);
        match victim {
            None => Admission::Admit,
            Some(victim) => Admission::AdmitEvicting { victim },
        }
    }

    /// Marks the longest-idle connection evicted and returns its handle, if any is idle.
    pub(crate) fn evict_oldest_idle(&mut self) -> Option<T> {
        let (_, id) = self.idle.pop_first()?;
        let entry = self
            .entries
            .get_mut(&id)
            .expect("every idle connection is in the table");
        entry.idle_seq = None;
        entry.evicted = true;
        self.evicting += 1;
        Some(entry.handle.clone())
    }

    /// A request was dispatched on `id`: it is no longer idle. Returns false if it had been
    /// evicted already (the request is still served; the connection closes after it).
    pub(crate) fn busy(&mut self, id: u64) -> bool {
        let Some(entry) = self.entries.get_mut(&id) else {
            return false;
        };
        if let Some(seq) = entry.idle_seq.take() {
            self.idle.remove(&seq);
        }
        !entry.evicted
    }

    /// The request on `id` is answered: it is idle again, as the newest idle connection.
    pub(crate) fn idle(&mut self, id: u64) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if entry.evicted || entry.idle_seq.is_some() {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        entry.idle_seq = Some(seq);
        self.idle.insert(seq, id);
    }

    /// The task of `id` has ended and its socket is closed. Returns whether it had been
    /// evicted (a waiting admission may then go ahead).
    pub(crate) fn close(&mut self, id: u64) -> bool {
        let Some(entry) = self.entries.remove(&id) else {
            return false;
        };
        if let Some(seq) = entry.idle_seq {
            self.idle.remove(&seq);
        }
        if entry.evicted {
            self.evicting -= 1;
        }
        // After a flood, give the memory back instead of keeping room for the peak.
        if self.entries.capacity() > 1024 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        entry.evicted
    }

    /// Returns the handles of every open connection (to shut them all down).
    pub(crate) fn handles(&self) -> Vec<T> {
        self.entries.values().map(|e| e.handle.clone()).collect()
    }

    /// Returns how many sockets the table holds, victims still closing included.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.entries.len()
    }

    /// Returns how many connections are idle.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admits `handle` under the next id and returns the id; panics unless it was admitted
    /// without an eviction.
    fn admitted(table: &mut ConnectionTable<&'static str>, handle: &'static str) -> u64 {
        let id = table.entries.keys().max().map_or(0, |max| max + 1);
        match table.admit(id, handle) {
            Admission::Admit => id,
            other => panic!("expected Admit, got {other:?}"),
        }
    }

    /// Admits `handle` under the next id.
    fn admit(
        table: &mut ConnectionTable<&'static str>,
        handle: &'static str,
    ) -> Admission<&'static str> {
        let id = table.entries.keys().max().map_or(0, |max| max + 1);
        table.admit(id, handle)
    }

    // Checks the cap from both sides: up to the cap every connection is admitted without
    // eviction; one over evicts the oldest idle one.
    #[test]
    fn admits_up_to_the_cap_then_evicts_the_oldest_idle() {
        let mut table = ConnectionTable::new(3, 8);
        let a = admitted(&mut table, "a");
        admitted(&mut table, "b");
        admitted(&mut table, "c");
        assert_eq!(table.open(), 3);
        match admit(&mut table, "d") {
            Admission::AdmitEvicting { victim, .. } => assert_eq!(victim, "a"),
            other => panic!("expected an eviction, got {other:?}"),
        }
        assert_eq!(
            table.open(),
            4,
            "the victim counts until its task closes it"
        );
        table.close(a);
        assert_eq!(table.open(), 3);
        assert_eq!(table.idle_count(), 3);
    }

    // Checks that a connection in the middle of a request is never evicted, and that one idle
    // again after its request goes to the back of the line.
    #[test]
    fn busy_connections_are_skipped_and_idle_again_ones_are_newest() {
        let mut table = ConnectionTable::new(3, 8);
        let a = admitted(&mut table, "a");
        let b = admitted(&mut table, "b");
        admitted(&mut table, "c");
        assert!(table.busy(a));
        assert!(table.busy(b));
        table.idle(b);
        // Idle order now: c, b. `a` is busy.
        let victims: Vec<_> = (0..2)
            .map(|_| match admit(&mut table, "new") {
                Admission::AdmitEvicting { victim, .. } => victim,
                other => panic!("expected an eviction, got {other:?}"),
            })
            .collect();
        assert_eq!(victims, ["c", "b"]);
    }

    // Checks that with every connection busy the new one is refused, and that the table is
    // unchanged by the refusal.
    #[test]
    fn refuses_when_nothing_is_idle() {
        let mut table = ConnectionTable::new(2, 8);
        let a = admitted(&mut table, "a");
        let b = admitted(&mut table, "b");
        assert!(table.busy(a));
        assert!(table.busy(b));
        assert_eq!(admit(&mut table, "c"), Admission::Refuse);
        assert_eq!(table.open(), 2);
        table.idle(a);
        assert!(matches!(
            admit(&mut table, "c"),
            Admission::AdmitEvicting { victim: "a", .. }
        ));
    }

    // Checks that the sockets held stay bounded by the cap plus the victims still closing:
    // once `evictions_in_flight_max` victims are closing, a new connection waits until one of
    // them is gone.
    #[test]
    fn victims_still_closing_are_bounded() {
        let mut table = ConnectionTable::new(4, 2);
        let ids: Vec<_> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|h| admitted(&mut table, h))
            .collect();
        assert!(matches!(
            admit(&mut table, "e"),
            Admission::AdmitEvicting { .. }
        ));
        assert!(matches!(
            admit(&mut table, "f"),
            Admission::AdmitEvicting { .. }
        ));
        assert_eq!(admit(&mut table, "g"), Admission::Wait);
        assert_eq!(table.open(), 6);
        assert!(table.close(ids[0]), "it was a victim");
        assert!(matches!(
            admit(&mut table, "g"),
            Admission::AdmitEvicting { .. }
        ));
        assert!(table.open() <= 4 + 2);
    }

    // Checks that a connection evicted while a request was being dispatched on it learns so
    // from `busy` (it finishes the request, then closes) and never becomes idle again.
    #[test]
    fn an_evicted_connection_stays_out_of_the_idle_order() {
        let mut table = ConnectionTable::new(1, 8);
        let a = admitted(&mut table, "a");
        assert_eq!(table.evict_oldest_idle(), Some("a"));
        assert!(!table.busy(a));
        table.idle(a);
        assert_eq!(table.idle_count(), 0);
        assert_eq!(table.evict_oldest_idle(), None);
        table.close(a);
        assert_eq!(table.open(), 0);
        admitted(&mut table, "b");
    }

    // Checks that a flood of idle connections, a hundred times the cap, keeps the table at the
    // cap (plus victims not yet closed), evicts oldest first, and never evicts a client that
    // connected in the middle of the flood and sent a request.
    #[test]
    fn a_flood_of_idle_connections_never_evicts_a_busy_client() {
        let mut table = ConnectionTable::new(100, 4);
        let mut victims = Vec::new();
        for i in 0..10_000u64 {
            match table.admit(i, i) {
                Admission::Admit => {}
                Admission::AdmitEvicting { victim } => victims.push(victim),
                Admission::Wait | Admission::Refuse => {
                    panic!("an idle victim was always available")
                }
            }
            if i == 5_000 {
                assert!(table.busy(i), "the client's request is dispatched");
            }
            // The victims' tasks close them soon after they are told.
            if table.evicting >= 4 {
                let ids: Vec<u64> = table
                    .entries
                    .iter()
                    .filter(|(_, e)| e.evicted)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    table.close(id);
                }
            }
            assert!(table.open() <= 104);
        }
        assert_eq!(victims.len(), 10_000 - 100);
        assert!(!victims.contains(&5_000));
        assert!(victims.windows(2).all(|w| w[0] < w[1]), "oldest first");
    }
}
