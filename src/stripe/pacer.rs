//! Client-side rate limiting for bulk work (`backfill-customers --rate`): a
//! token bucket of capacity one, i.e. a paced ticker. Requests never go out
//! faster than the rate, not even in a burst after an idle spell, and a 429
//! from Stripe slows the pace down until requests succeed again.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out one send slot per interval to any number of concurrent callers.
#[derive(Debug)]
pub struct Pacer {
    target: Duration,
    state: Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    /// The current interval: the target, or longer after 429s.
    interval: Duration,
    /// The earliest time the next slot may be used.
    next: Instant,
}

/// The slowest pace a run of 429s can push us to.
const SLOWEST: Duration = Duration::from_secs(2);

impl Pacer {
    /// A pacer for `per_second` requests per second (> 0).
    pub fn per_second(per_second: f64) -> Pacer {
        let target = Duration::from_secs_f64(1.0 / per_second.max(0.001));
        Pacer {
            target,
            state: Mutex::new(PacerState {
                interval: target,
                next: Instant::now(),
            }),
        }
    }

    /// Waits for this caller's slot. Slots are reserved in call order and are
    /// at least one interval apart, so there is never a burst above the rate.
    pub async fn acquire(&self) {
        let slot = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = state.next.max(now);
            state.next = slot + state.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Stripe said 429: halve the pace (down to one request per 2 s) and
    /// pause for one new interval before the next slot.
    pub fn throttled(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.interval = (state.interval * 2).min(SLOWEST).max(self.target);
        let pause_until = Instant::now() + state.interval;
        state.next = state.next.max(pause_until);
        tracing::warn!(
            interval_ms = state.interval.as_millis() as u64,
            "stripe rate limit hit (429); slowing down"
        );
    }

    /// A request went through: recover a tenth of the way back to the target pace.
    pub fn succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.interval > self.target {
            let excess = state.interval - self.target;
            state.interval = self.target + excess.mul_f64(0.9);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_one_interval_apart_even_after_idling() {
        let pacer = Pacer::per_second(10.0);
        tokio::time::sleep(Duration::from_secs(5)).await; // idle: no burst credit
        let start = tokio::time::Instant::now();
        for _ in 0..11 {
            pacer.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_slows_the_pace_and_successes_restore_it() {
        let pacer = Pacer::per_second(10.0);
        pacer.throttled();
        assert_eq!(
            pacer.state.lock().unwrap().interval,
            Duration::from_millis(200)
        );
        for _ in 0..100 {
            pacer.succeeded();
        }
        let interval = pacer.state.lock().unwrap().interval;
        assert!(interval < Duration::from_millis(101), "{interval:?}");
    }
}
