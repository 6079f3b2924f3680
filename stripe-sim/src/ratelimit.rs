//! A token bucket for `--rate-limit`: a burst of one second's worth of requests,
//! refilled continuously (wall time, since it models Stripe's real-time limiter).

use std::time::Instant;

#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        TokenBucket {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// Takes one token if available.
    pub(crate) fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
