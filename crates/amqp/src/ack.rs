//! Acknowledges deliveries in bulk. A channel numbers its deliveries 1, 2, 3, ...; batches of
//! them finish in any order. The tracker finds the highest tag below which every delivery has
//! finished, so one `basic.ack` with `multiple = true` acknowledges them all and never one that
//! is still being worked on.

use std::collections::BTreeSet;

/// Delivery tags received and not yet finished, and how far they have been acknowledged.
#[derive(Debug, Default)]
pub struct AckTracker {
    outstanding: BTreeSet<u64>,
    received_max: u64,
    acked: u64,
}

impl AckTracker {
    /// Returns an empty tracker (for a new channel).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a delivery that is now being worked on.
    pub fn received(&mut self, tag: u64) {
        self.outstanding.insert(tag);
        self.received_max = self.received_max.max(tag);
    }

    /// Records a delivery as finished: acknowledged by a later bulk ack, or already rejected.
    pub fn finished(&mut self, tag: u64) {
        self.outstanding.remove(&tag);
    }

    /// Returns the tag to acknowledge with `multiple = true`, if it moved forward.
    pub fn ackable(&mut self) -> Option<u64> {
        let upto = match self.outstanding.first() {
            Some(&first) => first - 1,
            None => self.received_max,
        };
        (upto > self.acked).then(|| {
            self.acked = upto;
            upto
        })
    }

    /// Returns how many deliveries are being worked on.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A bulk ack never covers a delivery that is still outstanding.
    #[test]
    fn acks_only_the_finished_prefix() {
        let mut t = AckTracker::new();
        for tag in 1..=6 {
            t.received(tag);
        }
        assert_eq!(t.ackable(), None);
        t.finished(2);
        t.finished(3);
        assert_eq!(t.ackable(), None, "1 is still outstanding");
        t.finished(1);
        assert_eq!(t.ackable(), Some(3));
        assert_eq!(t.ackable(), None, "nothing new");
        t.finished(6);
        assert_eq!(t.ackable(), None, "4 and 5 are outstanding");
        t.finished(5);
        t.finished(4);
        assert_eq!(t.ackable(), Some(6));
        assert_eq!(t.outstanding(), 0);
        t.received(7);
        assert_eq!(t.ackable(), None);
        t.finished(7);
        assert_eq!(t.ackable(), Some(7));
    }
}
