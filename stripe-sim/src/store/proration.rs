//! Proration arithmetic, as Stripe does it: a change at time `at` inside the period
//! `[start, end)` credits the unused time on the old price and quantity and charges
//! the remaining time on the new ones, each by seconds of the period:
//!
//! ```text
//! credit = -round(old_unit_amount × old_quantity × (end − at) / (end − start))
//! charge = +round(new_unit_amount × new_quantity × (end − at) / (end − start))
//! ```
//!
//! Each line is rounded on its own, half away from zero, in exact integer
//! arithmetic, so the same inputs always give the same cents.

/// `amount × remaining / total`, rounded half away from zero.
pub(crate) fn prorate(amount: i64, remaining: i64, total: i64) -> i64 {
    if total <= 0 || remaining <= 0 {
        return 0;
    }
    let remaining = remaining.min(total);
    let num = i128::from(amount) * i128::from(remaining);
    let den = i128::from(total);
    let rounded = (2 * num.abs() + den) / (2 * den);
    let signed = if num < 0 { -rounded } else { rounded };
    signed as i64
}

/// The credit for the unused time of `[at, end)` out of `[start, end)` (negative).
pub(crate) fn unused_credit(amount: i64, period: (i64, i64), at: i64) -> i64 {
    -prorate(amount, period.1 - at, period.1 - period.0)
}

/// The charge for the remaining time of `[at, end)` out of `[start, end)`.
pub(crate) fn remaining_charge(amount: i64, period: (i64, i64), at: i64) -> i64 {
    prorate(amount, period.1 - at, period.1 - period.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(prorate(2900, 15, 30), 1450);
        assert_eq!(prorate(1, 1, 2), 1);
        assert_eq!(prorate(-1, 1, 2), -1);
        assert_eq!(prorate(100, 1, 3), 33);
        assert_eq!(prorate(200, 1, 3), 67);
        assert_eq!(prorate(100, 0, 3), 0);
        assert_eq!(prorate(100, 5, 3), 100, "never more than the whole period");
    }

    #[test]
    fn upgrade_from_pro_to_team_mid_period() {
        // A 31-day period, change after 10 days: 21 days left.
        let day = 86_400;
        let period = (0, 31 * day);
        let at = 10 * day;
        assert_eq!(unused_credit(2900, period, at), -1965); // 2900 × 21/31 = 1964.5 → 1965
        assert_eq!(remaining_charge(3 * 1200, period, at), 2439); // 3600 × 21/31 = 2438.7
    }
}
