//! Usage metering: recording events exactly once against the plan's limits,
//! checking whether usage would fit, and reading each meter's period total.
//!
//! The plan and period an event counts against are decided from the
//! tenant's subscription as stored, read in the same transaction that
//! records the event (db/usage.rs), never from the display cache: the
//! entitlements rule picks the plan whose limits apply (a lapsed grace
//! period meters against free's), and the subscription's current period
//! (the calendar month without a paying subscription) is the period.

use chrono::{Duration, DurationRound, NaiveDateTime, Utc};

use super::Billing;
use crate::db::subscriptions::SubscriptionRecord;
use crate::db::usage::{self, Placement, UsageInput};
use crate::db::{self, DbError};
use crate::domain::{
    access, is_paying, Allowance, Meter, Overage, PlanCatalog, TenantId, UsageKey, UsagePeriod,
};

pub use crate::db::usage::{LedgerEvent, Recorded};

/// One usage event, validated at the edge: its meter exists, its quantity is
/// 1..=`MAX_QUANTITY`, its timestamp (if any) is within the accepted window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    pub meter: String,
    pub quantity: i64,
    pub key: UsageKey,
    /// When it happened; `None` means now.
    pub timestamp: Option<NaiveDateTime>,
}

/// A meter's standing in the period holding a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterUsage {
    pub meter: Meter,
    pub period: UsagePeriod,
    pub used: i64,
    pub allowance: Allowance,
}

impl MeterUsage {
    pub fn remaining(&self) -> Option<i64> {
        self.allowance.remaining(self.used)
    }
}

/// Whether `quantity` more would be admitted now, without recording it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCheck {
    pub allowed: bool,
    pub usage: MeterUsage,
}

/// The plan's metering rule for a tenant at one moment: the allowances of
/// the plan the entitlements rule grants, and the tenant's periods.
struct MeteringRule<'a> {
    catalog: &'a PlanCatalog,
    plan: String,
    overage: Overage,
    /// The subscription's current period, while it pays.
    subscription_period: Option<UsagePeriod>,
}

impl<'a> MeteringRule<'a> {
    fn of(
        catalog: &'a PlanCatalog,
        grace: Duration,
        subscription: &SubscriptionRecord,
        now: NaiveDateTime,
    ) -> MeteringRule<'a> {
        let status = subscription.status.as_deref();
        let grace_until = subscription
            .past_due_since
            .filter(|_| status == Some("past_due"))
            .map(|since| (since + grace).and_utc());
        let granted = access(
            catalog,
            &subscription.plan,
            status,
            grace_until,
            now.and_utc(),
        );
        let plan = catalog.get(granted.plan).unwrap_or_else(|| catalog.free());
        let subscription_period = match (
            status.is_some_and(is_paying),
            subscription.current_period_start,
            subscription.current_period_end,
        ) {
            (true, Some(start), Some(end)) if start < end => Some(UsagePeriod { start, end }),
            _ => None,
        };
        MeteringRule {
            catalog,
            plan: plan.id.clone(),
            overage: plan.overage,
            subscription_period,
        }
    }

    /// The period holding `at`, and whether it is known exactly (the
    /// stored current period or a calendar month) rather than laid end to
    /// end from the stored one.
    fn period_at(&self, at: NaiveDateTime) -> (UsagePeriod, bool) {
        match self.subscription_period {
            Some(current) if current.contains(at) => (current, true),
            Some(current) => (UsagePeriod::of_subscription(current, at), false),
            None => (UsagePeriod::calendar_month(at), true),
        }
    }

    fn allowance(&self, meter: &str) -> Allowance {
        let plan = self
            .catalog
            .get(&self.plan)
            .unwrap_or_else(|| self.catalog.free());
        Allowance {
            limit: plan.limits.get(meter).copied(),
            overage: self.overage,
        }
    }
}

/// Times are kept to the microsecond, PostgreSQL's precision, so an answer
/// replayed from the ledger reads exactly as it was first given.
fn to_micros(at: NaiveDateTime) -> NaiveDateTime {
    at.duration_trunc(Duration::microseconds(1)).unwrap_or(at)
}

impl Billing {
    fn grace(&self) -> Duration {
        self.settings.billing.past_due_grace()
    }

    /// Records `events` in order, exactly once per key, each admitted only
    /// if it fits its meter's limit (see db/usage.rs); committed before this
    /// returns.
    pub async fn record_usage(
        &self,
        tenant: &TenantId,
        events: Vec<UsageEvent>,
    ) -> Result<Vec<Recorded>, DbError> {
        let now = to_micros(Utc::now().naive_utc());
        let inputs: Vec<UsageInput> = events
            .into_iter()
            .map(|event| {
                let aggregation = self
                    .catalog()
                    .meter(&event.meter)
                    .map(|meter| meter.aggregation)
                    .expect("usage events name configured meters");
                UsageInput {
                    key: event.key.as_str().to_owned(),
                    value: aggregation.value_of(event.quantity),
                    meter: event.meter,
                    quantity: event.quantity,
                    occurred_at: event.timestamp.map_or(now, to_micros),
                }
            })
            .collect();
        let (catalog, grace, key) = (self.catalog().clone(), self.grace(), tenant.clone());
        let forwarded: Vec<String> = catalog.billed_meters().map(|m| m.id.clone()).collect();
        let recorded = db::interact(&self.pool, move |conn| {
            let place = |subscription: &SubscriptionRecord, event: &UsageInput| {
                let rule = MeteringRule::of(&catalog, grace, subscription, now);
                let (period, exact) = rule.period_at(event.occurred_at);
                Placement {
                    period,
                    allowance: rule.allowance(&event.meter),
                    exact,
                }
            };
            Ok(usage::record(conn, &key, now, &inputs, &place, &forwarded)?)
        })
        .await?;
        for outcome in &recorded {
            self.metrics.usage_event(match outcome {
                Recorded::Accepted(_) => "recorded",
                Recorded::Duplicate(_) => "duplicate",
                Recorded::KeyConflict(_) => "conflict",
                Recorded::Refused { .. } => "refused",
            });
        }
        Ok(recorded)
    }

    /// Every meter's total in the current period, with the plan's allowance.
    pub async fn usage(&self, tenant: &TenantId) -> Result<Vec<MeterUsage>, DbError> {
        let now = Utc::now().naive_utc();
        let (catalog, grace, key) = (self.catalog().clone(), self.grace(), tenant.clone());
        db::interact(&self.pool, move |conn| {
            let subscription = usage::subscription(conn, &key)?;
            let rule = MeteringRule::of(&catalog, grace, &subscription, now);
            let period = match rule.period_at(now) {
                (period, true) => period,
                (guessed, false) => usage::recorded_period_at(conn, &key, now)?.unwrap_or(guessed),
            };
            let totals = usage::totals(conn, &key, period.start)?;
            Ok(catalog
                .meters()
                .iter()
                .map(|meter| MeterUsage {
                    used: totals.get(&meter.id).copied().unwrap_or(0),
                    allowance: rule.allowance(&meter.id),
                    meter: meter.clone(),
                    period,
                })
                .collect())
        })
        .await
    }

    /// Whether `quantity` more of `meter` would be admitted now. Advisory:
    /// only recording consumes the limit, so a check may be overtaken.
    pub async fn check_usage(
        &self,
        tenant: &TenantId,
        meter: &str,
        quantity: i64,
    ) -> Result<UsageCheck, DbError> {
        let usage = self
            .usage(tenant)
            .await?
            .into_iter()
            .find(|usage| usage.meter.id == meter)
            .expect("checks name configured meters");
        let value = usage.meter.aggregation.value_of(quantity);
        Ok(UsageCheck {
            allowed: usage.allowance.admits(usage.used, value),
            usage,
        })
    }
}
