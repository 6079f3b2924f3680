//! What a tenant may use right now (README, Endpoints: "Entitlements"). A pure
//! function of the stored subscription state and the current time, so the
//! host app's per-request check never waits on Stripe or a database write.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::plan::PlanCatalog;

/// Why the tenant has what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessReason {
    Paying,
    Trialing,
    /// past_due, within the grace period after the first failed payment.
    Grace,
    Free,
}

/// The features and limits that apply now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access<'a> {
    /// The plan whose entitlements apply: the subscription's (a price's id if
    /// no plan names it) or `free`.
    pub plan: &'a str,
    pub reason: AccessReason,
    pub features: &'a [String],
    pub limits: &'a BTreeMap<String, i64>,
    /// Set while past_due: when the plan's entitlements end (or ended).
    pub grace_until: Option<DateTime<Utc>>,
}

/// The rule: `active` → the plan's (`paying`); `trialing` → the plan's;
/// `past_due` → the plan's until `grace_until`, then free's; anything else →
/// free's. A plan the catalog does not know (a price only Stripe knows) is
/// reported by name but grants free's entitlements: the operator is warned
/// in the log and adds it to the configuration.
pub fn access<'a>(
    catalog: &'a PlanCatalog,
    plan: &'a str,
    status: Option<&str>,
    grace_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Access<'a> {
    let reason = match status {
        Some("active") => AccessReason::Paying,
        Some("trialing") => AccessReason::Trialing,
        Some("past_due") if grace_until.is_some_and(|until| now < until) => AccessReason::Grace,
        _ => AccessReason::Free,
    };
    let grace_until = grace_until.filter(|_| status == Some("past_due"));
    let free = catalog.free();
    if reason == AccessReason::Free {
        return Access {
            plan: &free.id,
            reason,
            features: &free.features,
            limits: &free.limits,
            grace_until,
        };
    }
    let granted = catalog.get(plan).unwrap_or(free);
    Access {
        plan,
        reason,
        features: &granted.features,
        limits: &granted.limits,
        grace_until,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::domain::Plan;

    fn catalog() -> PlanCatalog {
        let mut free = Plan::bare("free", "Free");
        free.limits.insert("projects".into(), 3);
        let pro = Plan {
            price_id: Some("price_pro".into()),
            rank: 10,
            features: vec!["api".into()],
            ..Plan::bare("pro", "Pro")
        };
        PlanCatalog::new(vec![free, pro]).unwrap()
    }

    #[test]
    fn each_status_grants_what_the_rule_says() {
        let catalog = catalog();
        let now = Utc::now();
        let until = now + Duration::days(2);
        let cases = [
            (Some("active"), None, "pro", AccessReason::Paying),
            (Some("trialing"), None, "pro", AccessReason::Trialing),
            (Some("past_due"), Some(until), "pro", AccessReason::Grace),
            (Some("past_due"), Some(now), "free", AccessReason::Free),
            (Some("past_due"), None, "free", AccessReason::Free),
            (Some("canceled"), None, "free", AccessReason::Free),
            (Some("unpaid"), None, "free", AccessReason::Free),
            (Some("incomplete"), None, "free", AccessReason::Free),
            (None, None, "free", AccessReason::Free),
        ];
        for (status, grace, plan, reason) in cases {
            let access = access(&catalog, "pro", status, grace, now);
            assert_eq!((access.plan, access.reason), (plan, reason), "{status:?}");
            let expected = catalog.get(plan).unwrap();
            assert_eq!(access.features, expected.features.as_slice());
            assert_eq!(access.limits, &expected.limits);
        }
    }

    #[test]
    fn grace_until_shows_only_while_past_due() {
        let catalog = catalog();
        let now = Utc::now();
        let until = now - Duration::hours(1);
        assert_eq!(
            access(&catalog, "pro", Some("past_due"), Some(until), now).grace_until,
            Some(until)
        );
        assert_eq!(
            access(&catalog, "pro", Some("active"), Some(until), now).grace_until,
            None
        );
    }

    #[test]
    fn an_unknown_plan_is_named_but_grants_free() {
        let catalog = catalog();
        let access = access(&catalog, "price_legacy", Some("active"), None, Utc::now());
        assert_eq!(access.plan, "price_legacy");
        assert_eq!(access.reason, AccessReason::Paying);
        assert_eq!(access.limits, &catalog.free().limits);
    }
}
