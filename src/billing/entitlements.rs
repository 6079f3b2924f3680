//! `GET …/billing/entitlements`: the call a host app gates features on, on
//! every request. It answers from the same per-instance cache as
//! `GET …/billing` and computes the rule against the current time on each
//! call, so a cached state never outlives a grace period's end.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Billing, BillingState};
use crate::db::DbError;
use crate::domain::{access, AccessReason, PlanCatalog, TenantId};

/// The tenant's state and the time the rule was applied at; serialises to
/// `{tenant_id, plan, reason, features, limits, grace_until}` without
/// copying the plan's lists.
pub struct Entitlements {
    catalog: PlanCatalog,
    state: Arc<BillingState>,
    now: DateTime<Utc>,
}

#[derive(Serialize)]
struct Body<'a> {
    tenant_id: &'a str,
    plan: &'a str,
    reason: AccessReason,
    features: &'a [String],
    limits: &'a BTreeMap<String, i64>,
    grace_until: Option<DateTime<Utc>>,
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
        })
    }
}
