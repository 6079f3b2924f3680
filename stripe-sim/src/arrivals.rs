//! When `/v1` requests arrived, for "how many requests per second did Stripe
//! see" (a client's shared rate budget is judged by this). Kept apart from the
//! per-endpoint counters: a bounded ring of arrival times (wall clock, the
//! clients' clock on this machine), counted per whole second on demand.

use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// The most arrivals remembered (older ones are forgotten first).
const KEEP: usize = 200_000;

#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    times_us: Mutex<VecDeque<i64>>,
}

impl Arrivals {
    /// Notes one request arriving now.
    pub(crate) fn record(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let mut times = self.times_us.lock();
        if times.len() == KEEP {
            times.pop_front();
        }
        times.push_back(now);
    }

    /// Arrival times (Unix microseconds), oldest first.
    pub(crate) fn times_us(&self) -> Vec<i64> {
        self.times_us.lock().iter().copied().collect()
    }

    /// Requests per whole Unix second (only seconds with at least one).
    pub(crate) fn per_second(&self) -> BTreeMap<i64, u64> {
        let mut counts = BTreeMap::new();
        for t in self.times_us.lock().iter() {
            *counts.entry(t.div_euclid(1_000_000)).or_insert(0) += 1;
        }
        counts
    }

    pub(crate) fn clear(&self) {
        self.times_us.lock().clear();
    }
}
