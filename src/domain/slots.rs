//! The send slots of a requests-per-second budget: `per_second` slots in
//! every whole second, slot `j` of second `s` at `s + floor(j / per_second)`.
//! Slots are numbered across seconds (`s * per_second + j`), so a budget
//! shared by many processes is one counter: the next slot nobody booked.
//!
//! Aligned on whole seconds, no second holds more than `per_second` slots,
//! and the last slot of a second is a whole slot's width before the next
//! second begins: a request sent a little late still falls in its second.
//! Consecutive slots are at least `1 / per_second` apart, so there is never
//! a burst either.

/// What a process asks of the shared timeline in one booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAsk {
    /// The earliest slot the caller can still use.
    pub earliest: i64,
    pub want: u32,
    /// Background work books only slots nobody booked ahead of `earliest`.
    pub background: bool,
    /// Interactive callers wait at most this many slots past `earliest`.
    pub max_ahead: i64,
}

/// What a booking got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking {
    /// Slots `first .. first + count` are the caller's.
    Granted { first: i64, count: u32 },
    /// Background work may not book now: slots are booked up to `free_at`.
    Busy { free_at: i64 },
    /// The first free slot, `free_at`, is further ahead than the caller
    /// would wait.
    TooFar { free_at: i64 },
}

/// Slot arithmetic for one rate (> 0), in Unix microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotClock {
    per_second: i64,
}

const MICROS: i64 = 1_000_000;

impl SlotClock {
    /// Slots for `per_second` requests per second (at least 1).
    pub fn new(per_second: u32) -> SlotClock {
        SlotClock {
            per_second: i64::from(per_second.max(1)),
        }
    }

    pub fn per_second(self) -> u32 {
        u32::try_from(self.per_second).unwrap_or(u32::MAX)
    }

    /// The width of one slot, rounded down (microseconds).
    pub fn width_us(self) -> i64 {
        MICROS / self.per_second
    }

    /// When slot `n` begins (Unix microseconds).
    pub fn time_us(self, n: i64) -> i64 {
        let second = n.div_euclid(self.per_second);
        let index = n.rem_euclid(self.per_second);
        second * MICROS + index * MICROS / self.per_second
    }

    /// The last slot beginning at or before `t_us`.
    pub fn at_or_before(self, t_us: i64) -> i64 {
        let second = t_us.div_euclid(MICROS);
        let into = t_us - second * MICROS;
        let mut n = second * self.per_second + into * self.per_second / MICROS;
        while self.time_us(n + 1) <= t_us {
            n += 1;
        }
        while self.time_us(n) > t_us {
            n -= 1;
        }
        n
    }

    /// The first slot beginning at or after `t_us`.
    pub fn at_or_after(self, t_us: i64) -> i64 {
        let n = self.at_or_before(t_us);
        if self.time_us(n) < t_us {
            n + 1
        } else {
            n
        }
    }

    /// Slot `n` of a clock of another rate, as the first slot of this one
    /// that does not begin before it.
    pub fn convert(self, n: i64, from: SlotClock) -> i64 {
        self.at_or_after(from.time_us(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_second_holds_more_than_the_rate_and_slots_never_bunch() {
        for rate in [1, 3, 7, 20, 30, 80, 1000] {
            let clock = SlotClock::new(rate);
            let first = clock.at_or_after(1_700_000_000 * MICROS);
            let times: Vec<i64> = (first..first + 3 * i64::from(rate))
                .map(|n| clock.time_us(n))
                .collect();
            for pair in times.windows(2) {
                assert!(pair[1] - pair[0] >= clock.width_us(), "rate {rate}");
            }
            let mut per_second = std::collections::BTreeMap::new();
            for t in &times {
                *per_second.entry(t / MICROS).or_insert(0) += 1;
            }
            assert!(per_second.values().all(|n| *n == rate), "rate {rate}");
            // The last slot leaves a slot's width before the next second.
            let last = clock.time_us(first + i64::from(rate) - 1);
            assert!(last + clock.width_us() <= (last / MICROS + 1) * MICROS);
        }
    }

    #[test]
    fn rounding_to_slots() {
        let clock = SlotClock::new(20);
        let t = 1_700_000_000 * MICROS + 120_000; // 120 ms into a second
        let before = clock.at_or_before(t);
        assert_eq!(clock.time_us(before), t - 20_000);
        assert_eq!(clock.at_or_after(t), before + 1);
        assert_eq!(clock.at_or_after(clock.time_us(before)), before);
        let fast = SlotClock::new(80);
        let n = fast.convert(before + 1, clock);
        assert_eq!(fast.time_us(n), clock.time_us(before + 1));
    }
}
