//! Usage metering's pure rules: what a meter adds up, which period an event
//! counts in, which timestamps and keys are accepted, and what a limit
//! admits. No I/O: the ledger (db/usage.rs) applies these in one transaction.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

/// How a meter turns an event into the amount it adds to the period's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// The event's quantity (API calls, tokens, GB-hours).
    Sum,
    /// One per event, whatever its quantity (builds, exports).
    Count,
}

impl Aggregation {
    pub fn parse(value: &str) -> Option<Aggregation> {
        match value {
            "sum" => Some(Aggregation::Sum),
            "count" => Some(Aggregation::Count),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Count => "count",
        }
    }

    /// What an event of `quantity` adds to the total.
    pub fn value_of(self, quantity: i64) -> i64 {
        match self {
            Aggregation::Sum => quantity,
            Aggregation::Count => 1,
        }
    }
}

/// What happens to an event that would take the total past the plan's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overage {
    /// Refused (402) and not recorded: the limit is a hard cap.
    #[default]
    Block,
    /// Recorded beyond the limit (billed as overage, or merely reported).
    Allow,
}

impl Overage {
    pub fn parse(value: &str) -> Option<Overage> {
        match value {
            "block" => Some(Overage::Block),
            "allow" => Some(Overage::Allow),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Overage::Block => "block",
            Overage::Allow => "allow",
        }
    }
}

/// Something a plan meters (`[meters.<id>]`). Its limit on a plan is the
/// plan's `limits.<id>`: absent means unlimited, 0 means not included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub id: String,
    pub name: String,
    pub unit: String,
    pub aggregation: Aggregation,
    /// The `event_name` of the Stripe meter its usage is forwarded to
    /// (`None`: recorded here, never billed through Stripe).
    pub stripe_meter: Option<String>,
}

/// The billing period an event counts in: `[start, end)`, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsagePeriod {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl UsagePeriod {
    pub fn contains(&self, at: NaiveDateTime) -> bool {
        self.start <= at && at < self.end
    }

    /// The calendar month (UTC) holding `at`: the period of a tenant
    /// without a paying subscription.
    pub fn calendar_month(at: NaiveDateTime) -> UsagePeriod {
        let first = |year: i32, month: u32| {
            NaiveDate::from_ymd_opt(year, month, 1)
                .expect("the first of a month exists")
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
        };
        let (year, month) = (at.year(), at.month());
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        UsagePeriod {
            start: first(year, month),
            end: first(next_year, next_month),
        }
    }

    /// The period of a paying tenant holding `at`, from its subscription's
    /// current period as last stored. Outside it (Stripe's renewal not seen
    /// yet, or an event dated back before it), periods of the same length
    /// are laid end to end from it: the next period starts exactly where the
    /// stored one ends, as Stripe's renewal does; a later read of Stripe
    /// corrects the end.
    pub fn of_subscription(current: UsagePeriod, at: NaiveDateTime) -> UsagePeriod {
        let length = current.end - current.start;
        if current.contains(at) || length <= Duration::zero() {
            return current;
        }
        let steps = if at >= current.end {
            (at - current.start).num_seconds() / length.num_seconds()
        } else {
            -((current.start - at).num_seconds() + length.num_seconds() - 1) / length.num_seconds()
        };
        let start = current.start + length * steps as i32;
        UsagePeriod {
            start,
            end: start + length,
        }
    }
}

/// A tenant's key for one usage event, chosen by the host application so that
/// a retry is recognised: 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsageKey(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 100 characters without control characters")]
pub struct InvalidUsageKey;

impl UsageKey {
    pub fn parse(value: &str) -> Result<UsageKey, InvalidUsageKey> {
        let length = value.chars().count();
        if (1..=100).contains(&length) && !value.chars().any(char::is_control) {
            Ok(UsageKey(value.to_owned()))
        } else {
            Err(InvalidUsageKey)
        }
    }
}

validated_text!(UsageKey);

/// The most one event may carry: far above any real event, far below where a
/// period's total could overflow.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000;

/// How far back an event's timestamp may be: Stripe's meter window, so that
/// everything recorded can still be billed.
pub const MAX_AGE: Duration = Duration::days(35);
/// How far ahead of this service's clock a timestamp may be (clock skew).
pub const MAX_AHEAD: Duration = Duration::minutes(5);

/// Why a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("must be at most 35 days in the past")]
    TooOld,
    #[error("must be at most 5 minutes in the future")]
    TooFarAhead,
}

/// Accepts timestamps from 35 days back to 5 minutes ahead of `now`.
pub fn check_timestamp(at: NaiveDateTime, now: NaiveDateTime) -> Result<(), TimestampError> {
    if at < now - MAX_AGE {
        Err(TimestampError::TooOld)
    } else if at > now + MAX_AHEAD {
        Err(TimestampError::TooFarAhead)
    } else {
        Ok(())
    }
}

/// The plan's rule for one meter: the limit (`None`: unlimited) and what
/// happens past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: Option<i64>,
    pub overage: Overage,
}

impl Allowance {
    /// Whether a total of `used` may grow by `value`. Only a blocking limit
    /// refuses; an event that fits exactly is admitted.
    pub fn admits(&self, used: i64, value: i64) -> bool {
        match (self.limit, self.overage) {
            (Some(limit), Overage::Block) => used.saturating_add(value) <= limit,
            _ => true,
        }
    }

    /// What is left of the limit after `used` (never negative).
    pub fn remaining(&self, used: i64) -> Option<i64> {
        self.limit.map(|limit| (limit - used).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_calendar_month_runs_from_the_first_to_the_first() {
        let december = UsagePeriod::calendar_month(at("2026-12-31 23:59:59"));
        assert_eq!(december.start, at("2026-12-01 00:00:00"));
        assert_eq!(december.end, at("2027-01-01 00:00:00"));
        let february = UsagePeriod::calendar_month(at("2028-02-01 00:00:00"));
        assert_eq!(february.end, at("2028-03-01 00:00:00"));
    }

    #[test]
    fn a_subscription_period_is_kept_and_laid_end_to_end_around_it() {
        let current = UsagePeriod {
            start: at("2026-12-05 10:00:00"),
            end: at("2027-01-05 10:00:00"),
        };
        assert_eq!(
            UsagePeriod::of_subscription(current, at("2026-12-20 00:00:00")),
            current
        );
        // The renewal is not stored yet: the next period starts at the end.
        let next = UsagePeriod::of_subscription(current, at("2027-01-05 10:00:00"));
        assert_eq!(next.start, current.end);
        let after_next = UsagePeriod::of_subscription(current, at("2027-03-01 00:00:00"));
        assert_eq!(
            after_next.start,
            current.end + (current.end - current.start)
        );
        // Dated back before the stored period: the previous one ends at its start.
        let previous = UsagePeriod::of_subscription(current, at("2026-12-05 09:59:59"));
        assert_eq!(previous.end, current.start);
        assert!(previous.contains(at("2026-12-05 09:59:59")));
        let earlier = UsagePeriod::of_subscription(current, at("2026-10-20 00:00:00"));
        assert!(earlier.contains(at("2026-10-20 00:00:00")));
        assert_eq!(earlier.end - earlier.start, current.end - current.start);
    }

    #[test]
    fn keys_are_1_to_100_characters_without_control_characters() {
        assert!(UsageKey::parse("evt_1").is_ok());
        assert!(UsageKey::parse(&"k".repeat(100)).is_ok());
        assert!(UsageKey::parse(&"é".repeat(100)).is_ok());
        assert!(UsageKey::parse("").is_err());
        assert!(UsageKey::parse(&"k".repeat(101)).is_err());
        assert!(UsageKey::parse("a\u{0}b").is_err());
        assert!(UsageKey::parse("a\nb").is_err());
    }

    #[test]
    fn timestamps_are_accepted_from_35_days_back_to_5_minutes_ahead() {
        let now = at("2026-12-05 12:00:00");
        assert_eq!(check_timestamp(now, now), Ok(()));
        assert_eq!(check_timestamp(now - MAX_AGE, now), Ok(()));
        assert_eq!(check_timestamp(now + MAX_AHEAD, now), Ok(()));
        assert_eq!(
            check_timestamp(now - MAX_AGE - Duration::seconds(1), now),
            Err(TimestampError::TooOld)
        );
        assert_eq!(
            check_timestamp(now + MAX_AHEAD + Duration::seconds(1), now),
            Err(TimestampError::TooFarAhead)
        );
    }

    #[test]
    fn a_blocking_limit_admits_exactly_what_fits() {
        let block = Allowance {
            limit: Some(50),
            overage: Overage::Block,
        };
        assert!(block.admits(49, 1));
        assert!(block.admits(0, 50));
        assert!(!block.admits(50, 1));
        assert!(!block.admits(10, 41));
        assert_eq!(block.remaining(60), Some(0));
        let not_included = Allowance {
            limit: Some(0),
            overage: Overage::Block,
        };
        assert!(!not_included.admits(0, 1));
        let allow = Allowance {
            limit: Some(50),
            overage: Overage::Allow,
        };
        assert!(allow.admits(50, 1_000));
        let unlimited = Allowance {
            limit: None,
            overage: Overage::Block,
        };
        assert!(unlimited.admits(i64::MAX, 1));
        assert_eq!(unlimited.remaining(5), None);
    }

    #[test]
    fn count_meters_count_events_and_sum_meters_add_quantities() {
        assert_eq!(Aggregation::Count.value_of(40), 1);
        assert_eq!(Aggregation::Sum.value_of(40), 40);
    }
}
