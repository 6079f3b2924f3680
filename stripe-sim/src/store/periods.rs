//! Billing periods and trial timing, shared by everything that moves a
//! subscription through time: creation and updates (`subscriptions`, `changes`),
//! schedules and the clock. Kept apart so those modules depend on this one rather
//! than on each other.

use chrono::{DateTime, Months, Utc};
use serde_json::{json, Value};

/// Days before a trial's end at which `customer.subscription.trial_will_end` is sent.
pub(crate) const TRIAL_WILL_END_DAYS: i64 = 3;

/// `ts` plus `count` intervals, with calendar months like Stripe (Jan 31 + 1 month = Feb 28/29).
pub(crate) fn add_interval(ts: i64, interval: &str, count: u64) -> i64 {
    let count_i = count as i64;
    match interval {
        "day" => ts + 86_400 * count_i,
        "week" => ts + 7 * 86_400 * count_i,
        "month" | "year" => {
            let months = if interval == "year" {
                12 * count
            } else {
                count
            };
            DateTime::<Utc>::from_timestamp(ts, 0)
                .and_then(|d| d.checked_add_months(Months::new(months as u32)))
                .map(|d| d.timestamp())
                .unwrap_or(ts + 30 * 86_400 * months as i64)
        }
        _ => ts + 30 * 86_400,
    }
}

/// The current billing period (on the items in this API version).
pub(crate) fn period_of(sub: &Value) -> (i64, i64) {
    let item = &sub["items"]["data"][0];
    (
        item["current_period_start"].as_i64().unwrap_or(0),
        item["current_period_end"].as_i64().unwrap_or(0),
    )
}

/// Sets the billing period on every item.
pub(crate) fn set_period(sub: &mut Value, period: (i64, i64)) {
    for item in sub["items"]["data"].as_array_mut().into_iter().flatten() {
        item["current_period_start"] = json!(period.0);
        item["current_period_end"] = json!(period.1);
    }
}

/// `(interval, interval_count)` of a recurring price.
pub(crate) fn interval_of(price: &Value) -> (String, u64) {
    let r = &price["recurring"];
    (
        r["interval"].as_str().unwrap_or("month").to_string(),
        r["interval_count"].as_u64().unwrap_or(1),
    )
}

/// One period of `price` starting at `start`.
pub(crate) fn next_period(price: &Value, start: i64) -> (i64, i64) {
    let (interval, count) = interval_of(price);
    (start, add_interval(start, &interval, count))
}

/// The period after the one ending at `start`, kept on the billing cycle anchor's
/// day of the month like Stripe (anchor Jan 31: Feb 28/29, then Mar 31).
pub(crate) fn renewal_period(price: &Value, anchor: i64, start: i64) -> (i64, i64) {
    let (interval, count) = interval_of(price);
    if anchor > start || !matches!(interval.as_str(), "month" | "year") {
        return (start, add_interval(start, &interval, count));
    }
    let mut k = 1;
    loop {
        let end = add_interval(anchor, &interval, count * k);
        if end > start {
            return (start, end);
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::{add_interval, renewal_period};

    #[test]
    fn renewals_keep_the_anchor_day() {
        let price = serde_json::json!({"recurring": {"interval": "month", "interval_count": 1}});
        // Anchor 2024-01-31: Feb 29, then Mar 31 (not Mar 29).
        let anchor = 1_706_659_200;
        let feb = renewal_period(&price, anchor, anchor).1;
        assert_eq!(feb, 1_709_164_800);
        assert_eq!(renewal_period(&price, anchor, feb).1, 1_711_843_200);
    }

    #[test]
    fn calendar_months() {
        // 2024-01-31T00:00:00Z + 1 month = 2024-02-29 (leap year).
        assert_eq!(add_interval(1_706_659_200, "month", 1), 1_709_164_800);
        assert_eq!(add_interval(0, "day", 2), 172_800);
        assert_eq!(add_interval(0, "year", 1), 31_536_000);
    }
}
