//! Usage metering: recording events exactly once against the plan's limits,
//! checking whether usage would fit, and reading each meter's period total.
//!
//! The plan and period an event counts against are decided from the
//! tenant's subscription as stored, read in the same transaction that
//! records the event (db/usage.rs), never from the display cache: the
//! entitlements rule picks the plan whose limits apply (a lapsed grace
//! period meters against free's), and the subscription's current period
//! (the calendar month without a paying subscription) is the period.

use std::collections::HashMap;

use chrono::{Duration, DurationRound, NaiveDateTime, Utc};

use super::Billing;
use crate::db::subscriptions::SubscriptionRecord;
use crate::db::usage::{self, CounterRow, Placement, UsageInput};
use crate::db::{self, DbConnection, DbError};
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
pub(super) fn to_micros(at: NaiveDateTime) -> NaiveDateTime {
    at.duration_trunc(Duration::microseconds(1)).unwrap_or(at)
}

/// What metering needs of the configuration, shared by the direct path (a
/// batch of events) and the batched ones (billing/usage_batches.rs).
#[derive(Clone)]
pub(super) struct Metering {
    catalog: PlanCatalog,
    grace: Duration,
    /// The meters billed through Stripe (noted for the usage forwarder).
    forwarded: Vec<String>,
}

impl Metering {
    pub(super) fn new(catalog: &PlanCatalog, grace: Duration) -> Metering {
        Metering {
            forwarded: catalog.billed_meters().map(|m| m.id.clone()).collect(),
            catalog: catalog.clone(),
            grace,
        }
    }

    fn inputs(&self, events: Vec<UsageEvent>, now: NaiveDateTime) -> Vec<UsageInput> {
        events
            .into_iter()
            .map(|event| {
                let aggregation = self
                    .catalog
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
            .collect()
    }

    /// Records `inputs` for `tenant` in one transaction (db/usage.rs).
    pub(super) fn record(
        &self,
        conn: &mut DbConnection,
        tenant: &TenantId,
        now: NaiveDateTime,
        inputs: &[UsageInput],
    ) -> Result<Vec<Recorded>, DbError> {
        let place = |subscription: &SubscriptionRecord, event: &UsageInput| {
            let rule = MeteringRule::of(&self.catalog, self.grace, subscription, now);
            let (period, exact) = rule.period_at(event.occurred_at);
            Placement {
                period,
                allowance: rule.allowance(&event.meter),
                exact,
            }
        };
        Ok(usage::record(
            conn,
            tenant,
            now,
            inputs,
            &place,
            &self.forwarded,
        )?)
    }

    /// Every meter's standing at `now` for each of `tenants`, in two
    /// queries whatever their number.
    pub(super) fn read(
        &self,
        conn: &mut DbConnection,
        tenants: &[TenantId],
        now: NaiveDateTime,
    ) -> Result<Vec<Vec<MeterUsage>>, DbError> {
        let ids: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
        let subscriptions = usage::subscriptions_of(conn, &ids)?;
        let rules: Vec<(MeteringRule<'_>, (UsagePeriod, bool))> = ids
            .iter()
            .map(|id| {
                let subscription = subscriptions
                    .get(*id)
                    .unwrap_or_else(|| SubscriptionRecord::none());
                let rule = MeteringRule::of(&self.catalog, self.grace, subscription, now);
                let period = rule.period_at(now);
                (rule, period)
            })
            .collect();
        let exact_starts: Vec<NaiveDateTime> = rules
            .iter()
            .filter(|(_, (_, exact))| *exact)
            .map(|(_, (period, _))| period.start)
            .collect();
        let counters = usage::counters_at(conn, &ids, now, &exact_starts)?;
        let mut by_tenant: HashMap<&str, Vec<&CounterRow>> = HashMap::new();
        for counter in &counters {
            by_tenant
                .entry(counter.tenant_id.as_str())
                .or_default()
                .push(counter);
        }
        Ok(ids
            .iter()
            .zip(rules)
            .map(|(id, (rule, (guessed, exact)))| {
                let mine = by_tenant.get(id).map_or(&[][..], Vec::as_slice);
                let own = || mine.iter().copied();
                // An inexact period yields to the latest recorded one holding
                // now (any meter), so a read agrees with where events went.
                let period = if exact {
                    guessed
                } else {
                    own()
                        .filter(|c| c.period_end > now)
                        .max_by_key(|c| c.period_start)
                        .map_or(guessed, |c| UsagePeriod {
                            start: c.period_start,
                            end: c.period_end,
                        })
                };
                self.catalog
                    .meters()
                    .iter()
                    .map(|meter| MeterUsage {
                        used: own()
                            .find(|c| c.meter == meter.id && c.period_start == period.start)
                            .map_or(0, |c| c.used),
                        allowance: rule.allowance(&meter.id),
                        meter: meter.clone(),
                        period,
                    })
                    .collect()
            })
            .collect())
    }
}

impl Billing {
    /// Records `events` in order, exactly once per key, each admitted only
    /// if it fits its meter's limit (see db/usage.rs); committed before this
    /// returns. A single event is recorded with whatever other single events
    /// are waiting (one transaction per tenant: billing/usage_batches.rs).
    pub async fn record_usage(
        &self,
        tenant: &TenantId,
        events: Vec<UsageEvent>,
    ) -> Result<Vec<Recorded>, DbError> {
        let now = to_micros(Utc::now().naive_utc());
        let mut inputs = self.usage_batches.metering.inputs(events, now);
        let recorded = if inputs.len() == 1 {
            let input = inputs.pop().expect("one event");
            vec![self.usage_batches.record(&self.pool, tenant, input).await?]
        } else {
            let (metering, key) = (self.usage_batches.metering.clone(), tenant.clone());
            db::interact(&self.pool, move |conn| {
                metering.record(conn, &key, now, &inputs)
            })
            .await?
        };
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

    /// Every meter's total in the current period, with the plan's allowance
    /// (read with whatever other usage reads are waiting).
    pub async fn usage(&self, tenant: &TenantId) -> Result<Vec<MeterUsage>, DbError> {
        self.usage_batches.read(&self.pool, tenant).await
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
