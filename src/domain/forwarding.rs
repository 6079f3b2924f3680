//! Usage forwarding's pure rules: what a batch is called at Stripe, which
//! timestamp it is sent with, and Stripe's windows. No I/O.
//!
//! A batch is a run of one tenant's events of one meter, in ledger order,
//! within one period; it becomes one Stripe meter event of their total. Its
//! identifier is derived from the ledger range it covers, so every attempt at
//! it (after a crash, a lost answer, another instance's takeover) sends the
//! same one and Stripe counts it once.

use chrono::{DateTime, Duration, NaiveDateTime};

use super::UsagePeriod;

/// How far back Stripe accepts a meter event's timestamp.
pub const STRIPE_WINDOW: Duration = Duration::days(35);
/// Kept clear of Stripe's window edge (its clock and ours may differ).
const WINDOW_MARGIN: Duration = Duration::minutes(10);
/// Stripe keeps an identifier unique for at least 24 hours. A batch first
/// tried longer ago than this, its outcome still unknown, is not sent again
/// (Stripe may have forgotten the identifier and would count it twice): it is
/// left to `reconcile --usage`, which compares totals.
pub const IDENTIFIER_WINDOW: Duration = Duration::hours(23);

/// A stable 64-bit FNV-1a of the tenant and meter: keeps identifiers short
/// (Stripe allows 100 characters; tenant and meter ids may take 64 each).
fn tag(tenant: &str, meter: &str) -> u64 {
    tenant
        .bytes()
        .chain(std::iter::once(0))
        .chain(meter.bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The identifier of the batch of `tenant`'s `meter` events with ledger ids
/// `first..=last`.
pub fn batch_identifier(tenant: &str, meter: &str, first: i64, last: i64) -> String {
    format!("u{first}-{last}.{:016x}", tag(tenant, meter))
}

/// The identifier of a correction found by `reconcile --usage`: named after
/// what it saw (the period, the ledger's total and Stripe's), so running the
/// fix again before Stripe shows it sends the same identifier, counted once.
pub fn fix_identifier(
    tenant: &str,
    meter: &str,
    period_start: NaiveDateTime,
    ledger: i64,
    stripe: i64,
) -> String {
    format!(
        "fix{}.{ledger}.{stripe}.{:016x}",
        period_start.and_utc().timestamp(),
        tag(tenant, meter)
    )
}

/// The whole minutes covering `period` (unix seconds, `[start, end)` rounded
/// out): Stripe's event summaries take minute-aligned bounds, so a summary
/// over these holds the period's batches, and those of its neighbours stamped
/// in the partial minutes at either edge (`reconcile --usage` knows which).
pub fn summary_bounds(period: &UsagePeriod) -> (i64, i64) {
    let start = period.start.and_utc().timestamp();
    let end = period.end.and_utc().timestamp();
    (
        start - start.rem_euclid(60),
        end + (60 - end.rem_euclid(60)) % 60,
    )
}

/// The timestamp a batch is sent with: its latest event's, to the second,
/// kept inside its period (`[start, end)`), so it lands in that period at
/// Stripe, on that period's invoice.
pub fn stamp(period: &UsagePeriod, latest: NaiveDateTime) -> NaiveDateTime {
    let at = latest.and_utc().timestamp();
    let start = period.start.and_utc().timestamp();
    let end = period.end.and_utc().timestamp();
    let clamped = at.min(end - 1).max(start);
    DateTime::from_timestamp(clamped, 0)
        .map(|t| t.naive_utc())
        .unwrap_or(latest)
}

/// Whether a batch stamped `stamp` is past Stripe's window at `now`.
pub fn outside_stripe_window(stamp: NaiveDateTime, now: NaiveDateTime) -> bool {
    stamp < now - STRIPE_WINDOW + WINDOW_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn period(start: &str, end: &str) -> UsagePeriod {
        UsagePeriod {
            start: at(start),
            end: at(end),
        }
    }

    #[test]
    fn identifiers_name_the_range_and_fit_stripes_limit() {
        let long = "t".repeat(64);
        let id = batch_identifier(&long, &"m".repeat(64), 9_000_000_000, 9_000_000_123);
        assert!(id.len() <= 100, "{id}");
        assert_eq!(
            id,
            batch_identifier(&long, &"m".repeat(64), 9_000_000_000, 9_000_000_123)
        );
        assert_ne!(
            id,
            batch_identifier("acme", "api_calls", 9_000_000_000, 9_000_000_123)
        );
        assert_ne!(
            batch_identifier("acme", "api_calls", 1, 2),
            batch_identifier("acme", "exports", 1, 2)
        );
        let start = at("2026-12-05 10:00:00");
        let fix = fix_identifier(&long, "api_calls", start, i64::MAX, i64::MIN);
        assert!(fix.len() <= 100, "{fix}");
        assert_ne!(fix, fix_identifier(&long, "api_calls", start, 10, 9));
    }

    #[test]
    fn batches_are_stamped_inside_their_period_and_summaries_round_out() {
        let p = period("2026-12-05 10:00:30", "2027-01-05 10:00:30");
        assert_eq!(
            summary_bounds(&p),
            (
                at("2026-12-05 10:00:00").and_utc().timestamp(),
                at("2027-01-05 10:01:00").and_utc().timestamp()
            )
        );
        assert_eq!(
            stamp(&p, at("2027-01-05 10:00:29")),
            at("2027-01-05 10:00:29")
        );
        // Late events of the period keep to its last second; none before it.
        assert_eq!(
            stamp(&p, at("2027-01-05 10:00:40")),
            at("2027-01-05 10:00:29")
        );
        assert_eq!(
            stamp(&p, at("2026-12-05 10:00:10")),
            at("2026-12-05 10:00:30")
        );
        let aligned = period("2026-12-01 00:00:00", "2027-01-01 00:00:00");
        assert_eq!(
            summary_bounds(&aligned),
            (
                at("2026-12-01 00:00:00").and_utc().timestamp(),
                at("2027-01-01 00:00:00").and_utc().timestamp()
            )
        );
    }

    #[test]
    fn stripe_takes_35_days_back_with_a_margin() {
        let now = at("2026-12-05 12:00:00");
        assert!(!outside_stripe_window(now - Duration::days(34), now));
        assert!(outside_stripe_window(now - Duration::days(35), now));
        assert!(outside_stripe_window(
            now - Duration::days(35) + Duration::minutes(5),
            now
        ));
    }
}
