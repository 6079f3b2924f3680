//! Simulator time: wall time plus an offset that only ever grows, so tests can jump
//! past search lag, idempotency-key expiry and subscription periods without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock that reads `start` (Unix seconds) now and runs from there, like
    /// a Stripe test clock created with a `frozen_time` in the past: objects
    /// made now are dated then, and advancing it replays what followed.
    pub(crate) fn starting_at(start: Option<i64>) -> Clock {
        let clock = Clock::default();
        if let Some(start) = start {
            let offset = start.saturating_mul(1000) - clock.now_ms();
            clock.offset_ms.store(offset, Ordering::Relaxed);
        }
        clock
    }

    /// Simulator time in milliseconds since the Unix epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        wall + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Simulator time in whole seconds, the unit of every Stripe timestamp.
    pub(crate) fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Moves time forward (negative values are ignored: time never runs backwards).
    pub(crate) fn advance(&self, seconds: i64) {
        if seconds > 0 {
            self.offset_ms
                .fetch_add(seconds.saturating_mul(1000), Ordering::Relaxed);
        }
    }
}
