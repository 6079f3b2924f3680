use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::tenants::TenantRecord;
use crate::domain::TenantId;

/// What `GET …/billing` answers: the tenant's plan as last reported by Stripe.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BillingState {
    pub tenant_id: String,
    pub stripe_customer_id: Option<String>,
    pub billing_email: Option<String>,
    pub billing_name: Option<String>,
    pub plan: String,
    pub subscription_status: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
}

impl BillingState {
    /// The state of a tenant we have never billed.
    pub fn free(tenant: &TenantId) -> BillingState {
        BillingState {
            tenant_id: tenant.to_string(),
            stripe_customer_id: None,
            billing_email: None,
            billing_name: None,
            plan: "free".into(),
            subscription_status: None,
            current_period_end: None,
            cancel_at_period_end: false,
        }
    }
}

impl From<TenantRecord> for BillingState {
    fn from(record: TenantRecord) -> Self {
        BillingState {
            tenant_id: record.tenant_id,
            stripe_customer_id: record.stripe_customer_id,
            billing_email: record.billing_email,
            billing_name: record.billing_name,
            plan: record.plan,
            subscription_status: record.subscription_status,
            current_period_end: record.current_period_end.map(|t| t.and_utc()),
            cancel_at_period_end: record.cancel_at_period_end,
        }
    }
}
