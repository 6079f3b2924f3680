//! The billing state as the API shows it: `GET …/billing` and every
//! subscription write answer with it, and the settings page reads exactly
//! these names.

use std::future::Future;

use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::billing::{BillingError, BillingState, MeterUsage};
use crate::error::ApiError;

/// What `GET …/billing` answers: the tenant's plan as last reported by
/// Stripe (README, Endpoints; the settings page reads exactly these names).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BillingState)]
pub struct BillingStateView<'a> {
    pub tenant_id: &'a str,
    pub stripe_customer_id: Option<&'a str>,
    pub billing_email: Option<&'a str>,
    pub billing_name: Option<&'a str>,
    pub plan: &'a str,
    pub subscription_status: Option<&'a str>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<DateTime<Utc>>,
    pub seats: Option<i32>,
    pub pending_plan: Option<&'a str>,
    pub pending_plan_at: Option<DateTime<Utc>>,
    /// Set only while past_due: when the plan's entitlements end.
    pub grace_until: Option<DateTime<Utc>>,
}

impl<'a> From<&'a BillingState> for BillingStateView<'a> {
    fn from(state: &'a BillingState) -> Self {
        BillingStateView {
            tenant_id: &state.tenant_id,
            stripe_customer_id: state.stripe_customer_id.as_deref(),
            billing_email: state.billing_email.as_deref(),
            billing_name: state.billing_name.as_deref(),
            plan: &state.plan,
            subscription_status: state.subscription_status.as_deref(),
            current_period_end: state.current_period_end,
            cancel_at_period_end: state.cancel_at_period_end,
            trial_end: state.trial_end,
            seats: state.seats,
            pending_plan: state.pending_plan.as_deref(),
            pending_plan_at: state.pending_plan_at,
            grace_until: state.grace_until,
        }
    }
}

/// 200 with `state`.
pub fn ok(state: &BillingState) -> HttpResponse {
    HttpResponse::Ok().json(BillingStateView::from(state))
}

/// Waits for a billing write and answers 200 with the state it left (or
/// the write's error).
pub async fn answer(
    write: impl Future<Output = Result<BillingState, BillingError>>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok(&write.await?))
}

/// One meter's standing in the current period: `GET …/usage` lists them,
/// and the entitlements answer carries the same.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeterView {
    #[schema(example = "api_calls")]
    pub meter: String,
    pub name: String,
    pub unit: String,
    /// `sum` of quantities or `count` of events.
    pub aggregation: &'static str,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub used: i64,
    /// `null`: unlimited; 0: not included in the plan.
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    /// `block` (past the limit: 402) or `allow`.
    pub overage: &'static str,
}

impl From<&MeterUsage> for MeterView {
    fn from(usage: &MeterUsage) -> Self {
        MeterView {
            meter: usage.meter.id.clone(),
            name: usage.meter.name.clone(),
            unit: usage.meter.unit.clone(),
            aggregation: usage.meter.aggregation.as_str(),
            period_start: usage.period.start.and_utc(),
            period_end: usage.period.end.and_utc(),
            used: usage.used,
            limit: usage.allowance.limit,
            remaining: usage.remaining(),
            overage: usage.allowance.overage.as_str(),
        }
    }
}
