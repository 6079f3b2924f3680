use chrono::{DateTime, NaiveDateTime, Utc};

use crate::db::tenants::TenantRecord;
use crate::domain::TenantId;

/// The tenant's plan as last reported by Stripe, as the service shows and
/// decides on it (`routes::state` is its JSON; README, Endpoints).
#[derive(Debug, Clone, PartialEq)]
pub struct BillingState {
    pub tenant_id: String,
    pub stripe_customer_id: Option<String>,
    pub billing_email: Option<String>,
    pub billing_name: Option<String>,
    pub plan: String,
    pub subscription_status: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<DateTime<Utc>>,
    pub seats: Option<i32>,
    pub pending_plan: Option<String>,
    pub pending_plan_at: Option<DateTime<Utc>>,
    /// Set only while past_due: when the plan's entitlements end.
    pub grace_until: Option<DateTime<Utc>>,
    /// Whether the tenant ever had a trial (Checkout gives one trial, ever);
    /// not shown.
    pub trial_used: bool,
}

fn utc(time: Option<NaiveDateTime>) -> Option<DateTime<Utc>> {
    time.map(|t| t.and_utc())
}

impl BillingState {
    /// The state of a tenant we have never billed.
    pub fn free(tenant: &TenantId) -> BillingState {
        BillingState {
            tenant_id: tenant.to_string(),
            stripe_customer_id: None,
            billing_email: None,
            billing_name: None,
            plan: crate::domain::FREE.into(),
            subscription_status: None,
            current_period_end: None,
            cancel_at_period_end: false,
            trial_end: None,
            seats: None,
            pending_plan: None,
            pending_plan_at: None,
            grace_until: None,
            trial_used: false,
        }
    }

    /// The stored row as shown; `grace` is `billing.past_due_grace_days`.
    pub fn from_record(record: TenantRecord, grace: chrono::Duration) -> BillingState {
        let subscription = record.subscription();
        let past_due = subscription.status.as_deref() == Some("past_due");
        let grace_until = subscription
            .past_due_since
            .filter(|_| past_due)
            .map(|since| (since + grace).and_utc());
        BillingState {
            plan: subscription.plan.clone(),
            subscription_status: subscription.status.clone(),
            current_period_end: utc(subscription.current_period_end),
            cancel_at_period_end: subscription.cancel_at_period_end,
            trial_end: utc(subscription.trial_end),
            seats: subscription.seats,
            pending_plan: subscription.pending_plan.clone(),
            pending_plan_at: utc(subscription.pending_plan_at),
            grace_until,
            trial_used: subscription.trial_used_at.is_some(),
            tenant_id: record.tenant_id,
            stripe_customer_id: record.stripe_customer_id,
            billing_email: record.billing_email,
            billing_name: record.billing_name,
        }
    }

    /// Whether the tenant has a live subscription (one Checkout would duplicate).
    pub fn is_paying(&self) -> bool {
        self.subscription_status
            .as_deref()
            .is_some_and(crate::domain::is_paying)
    }
}
