//! The sale rate this replica has seen: commands applied per wall-clock second, and the highest
//! such second since the process started. An organizer who opens a waiting room without an
//! admission rate gets one derived from it (`tix_http::queue`): what the cluster has shown it can
//! commit, not a guess. Every replica applies every entry, so every node measures the same
//! cluster-wide rate, whichever one the organizer's request reaches.
//!
//! Only the apply task records, once per applied group, so one mutex is never contended; the
//! clock is read there and never in the core.

use std::sync::Mutex;
use std::time::Instant;

/// Commands applied per second: the current second's count and the best whole second so far.
#[derive(Debug)]
pub struct ThroughputMeter {
    started: Instant,
    inner: Mutex<Seconds>,
}

#[derive(Debug, Default)]
struct Seconds {
    /// The second (since `started`) being counted.
    second: u64,
    /// Commands applied in it so far.
    count: u64,
    /// The most commands applied in one finished second.
    peak: u64,
}

impl Default for ThroughputMeter {
    fn default() -> Self {
        ThroughputMeter::new()
    }
}

impl ThroughputMeter {
    /// A meter that has seen nothing.
    pub fn new() -> ThroughputMeter {
        ThroughputMeter {
            started: Instant::now(),
            inner: Mutex::new(Seconds::default()),
        }
    }

    /// Counts `commands` applied now.
    pub fn record(&self, commands: usize) {
        self.record_at(self.started.elapsed().as_secs(), commands as u64);
    }

    /// Counts `commands` applied in `second` (since the meter started; never earlier than a
    /// second already recorded).
    fn record_at(&self, second: u64, commands: u64) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if second != s.second {
            s.peak = s.peak.max(s.count);
            s.second = second;
            s.count = 0;
        }
        s.count += commands;
    }

    /// The most commands applied in one second so far, the second under way included once
    /// it has beaten the best finished one.
    pub fn peak_per_s(&self) -> u64 {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.peak.max(s.count)
    }
}

#[cfg(test)]
mod tests {
    use super::ThroughputMeter;

    #[test]
    fn the_peak_is_the_busiest_second() {
        let meter = ThroughputMeter::new();
        assert_eq!(meter.peak_per_s(), 0);
        meter.record_at(0, 10);
        meter.record_at(0, 5);
        meter.record_at(1, 40);
        meter.record_at(1, 2);
        meter.record_at(5, 7);
        assert_eq!(meter.peak_per_s(), 42);
        // A quiet second later does not lower it; a busier one raises it while it runs.
        meter.record_at(9, 1);
        assert_eq!(meter.peak_per_s(), 42);
        meter.record_at(10, 50);
        assert_eq!(meter.peak_per_s(), 50);
    }
}
