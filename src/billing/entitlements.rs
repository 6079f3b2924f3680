//! `GET …/billing/entitlements`: the call a host app gates features on, on
//! every request. It answers from the same per-instance cache as
//! `GET …/billing` and computes the rule against the current time on each
//! call, so a cached state never outlives a grace period's end.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::usage::MeterUsage;
use super::{Billing, BillingState};
use crate::db::DbError;
use crate::domain::{access, Access, PlanCatalog, TenantId};

/// The tenant's state and the time the rule is applied at. The grant
/// borrows the plan's lists, so answering copies none of them.
pub struct Entitlements {
    catalog: PlanCatalog,
    state: Arc<BillingState>,
    now: DateTime<Utc>,
    usage: Vec<MeterUsage>,
}

impl Entitlements {
    /// Whose entitlements these are (the answer names the tenant).
    pub fn tenant_id(&self) -> &str {
        &self.state.tenant_id
    }

    /// The features and limits that apply at the time this was read.
    pub fn granted(&self) -> Access<'_> {
        access(
            &self.catalog,
            &self.state.plan,
            self.state.subscription_status.as_deref(),
            self.state.grace_until,
            self.now,
        )
    }

    /// Each meter's standing in the current period (as `GET …/usage`).
    pub fn usage(&self) -> &[MeterUsage] {
        &self.usage
    }
}

impl Billing {
    /// What the tenant may use now (README, Endpoints: "Entitlements").
    pub async fn entitlements(&self, tenant: &TenantId) -> Result<Entitlements, DbError> {
        Ok(Entitlements {
            catalog: self.catalog().clone(),
            state: self.state(tenant).await?,
            now: Utc::now(),
            usage: self.usage(tenant).await?,
        })
    }
}
