//! `GET …/billing/plans` and `GET …/billing/entitlements`: what a tenant can
//! buy, and what it may use now. Any member may read both.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::problems::{TenantPath, TenantProblems};
use super::state::MeterView;
use crate::auth::TenantCtx;
use crate::billing::{Billing, PlanOffer};
use crate::domain::{AccessReason, PlanChange};
use crate::error::ApiError;

/// One row of `GET …/billing/plans` (README, Endpoints).
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    /// The price per interval (per seat for a per-seat plan), in the currency's minor unit.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    pub per_seat: bool,
    pub trial_days: u32,
    /// The plan has a trial and this tenant never had one.
    pub trial_available: bool,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, i64>,
    pub current: bool,
    /// `current`, `upgrade` or `downgrade`, by rank against the current plan.
    #[schema(value_type = String, pattern = "^(current|upgrade|downgrade)$")]
    pub change: &'static str,
}

impl From<PlanOffer> for PlanView {
    fn from(offer: PlanOffer) -> Self {
        let PlanOffer {
            plan,
            price,
            change,
            trial_available,
        } = offer;
        PlanView {
            id: plan.id,
            name: plan.name,
            amount: price.as_ref().map(|p| p.amount),
            currency: price.as_ref().map(|p| p.currency.clone()),
            interval: price.map(|p| p.interval),
            per_seat: plan.per_seat,
            trial_days: plan.trial_days,
            trial_available,
            features: plan.features,
            limits: plan.limits,
            current: change == PlanChange::Current,
            change: change.as_str(),
        }
    }
}

/// `GET …/billing/plans`' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlansAnswer {
    /// Ordered by rank, `free` first.
    pub plans: Vec<PlanView>,
}

/// Every plan, ordered by rank, marked against the tenant's current plan.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/billing/plans", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    responses(
        (status = 200, description = "The plan catalog, marked against the tenant's plan", body = PlansAnswer),
        TenantProblems,
    ))]
pub async fn get_plans(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let plans = billing.plans(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(PlansAnswer {
        plans: plans.into_iter().map(PlanView::from).collect(),
    }))
}

/// `GET …/billing/entitlements`' answer: the rule applied to the tenant's
/// state now.
// Borrows the plan's lists from the grant: answering copies none of them.
#[derive(Serialize, ToSchema)]
pub struct EntitlementsAnswer<'a> {
    tenant_id: &'a str,
    /// The plan whose features apply now (`free` when access lapsed).
    plan: &'a str,
    /// `paying`, `trialing`, `grace` (past due, within the grace period) or `free`.
    #[schema(value_type = String, pattern = "^(paying|trialing|grace|free)$")]
    reason: AccessReason,
    features: &'a [String],
    limits: &'a BTreeMap<String, i64>,
    /// While in grace: when the plan's features end unless the invoice is paid.
    grace_until: Option<DateTime<Utc>>,
    /// Each meter's standing in the current period, as `GET …/usage` has it.
    usage: Vec<MeterView>,
}

/// The features and limits that apply now: as cheap as `GET …/billing`
/// (same per-instance cache), since a host app may call it per request.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/billing/entitlements", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    responses(
        (status = 200, description = "What the tenant may use now (README, Endpoints: Entitlements)", body = EntitlementsAnswer),
        TenantProblems,
    ))]
pub async fn get_entitlements(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let entitlements = billing.entitlements(&ctx.tenant_id).await?;
    let granted = entitlements.granted();
    Ok(HttpResponse::Ok().json(EntitlementsAnswer {
        tenant_id: entitlements.tenant_id(),
        plan: granted.plan,
        reason: granted.reason,
        features: granted.features,
        limits: granted.limits,
        grace_until: granted.grace_until,
        usage: entitlements.usage().iter().map(MeterView::from).collect(),
    }))
}
