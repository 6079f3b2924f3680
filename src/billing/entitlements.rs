//! `GET …/billing/entitlements`: the call a host app gates features on, on
//! every request. It answers from the same per-instance cache as
//! `GET …/billing` and computes the rule against the current time on each
//! call, so a cached state never outlives a grace period's end.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::usage::MeterUsage;
use super::{Billing, BillingState};
use crate::db::DbError;
use crate::domain::{access, AccessReason, PlanCatalog, TenantId};

/// The tenant's state and the time the rule was applied at; serialises to
/// `{tenant_id, plan, reason, features, limits, grace_until, usage}` without
/// copying the plan's lists.
pub struct Entitlements {
    catalog: PlanCatalog,
    state: Arc<BillingState>,
    now: DateTime<Utc>,
    usage: Arc<Vec<MeterUsage>>,
}

#[derive(Serialize)]
struct Body<'a> {
    tenant_id: &'a str,
    plan: &'a str,
    reason: AccessReason,
    features: &'a [String],
    limits: &'a BTreeMap<String, i64>,
    grace_until: Option<DateTime<Utc>>,
    usage: Vec<MeterStanding<'a>>,
}

/// A meter's standing, as `GET …/usage` shows it.
#[derive(Serialize)]
struct MeterStanding<'a> {
    meter: &'a str,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    used: i64,
    limit: Option<i64>,
    remaining: Option<i64>,
    overage: &'static str,
}

impl Serialize for Entitlements {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let granted = access(
            &self.catalog,
            &self.state.plan,
            self.state.subscription_status.as_deref(),
            self.state.grace_until,
            self.now,
        );
        Body {
            tenant_id: &self.state.tenant_id,
            plan: granted.plan,
            reason: granted.reason,
            features: granted.features,
            limits: granted.limits,
            grace_until: granted.grace_until,
            usage: self
                .usage
                .iter()
                .map(|usage| MeterStanding {
                    meter: &usage.meter.id,
                    period_start: usage.period.start.and_utc(),
                    period_end: usage.period.end.and_utc(),
                    used: usage.used,
                    limit: usage.allowance.limit,
                    remaining: usage.remaining(),
                    overage: usage.allowance.overage.as_str(),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

impl Billing {
    /// What the tenant may use now (SPEC §7's rule).
    pub async fn entitlements(&self, tenant: &TenantId) -> Result<Entitlements, DbError> {
        Ok(Entitlements {
            catalog: self.catalog().clone(),
            state: self.state(tenant).await?,
            now: Utc::now(),
            usage: Arc::new(self.usage(tenant).await?),
        })
    }
}
