//! `GET …/billing/plans` and `GET …/billing/entitlements`: what a tenant can
//! buy, and what it may use now. Any member may read both.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{TenantPath, TenantProblems};
use crate::auth::TenantCtx;
use crate::billing::{Billing, PlanView};
use crate::error::ApiError;

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
    Ok(HttpResponse::Ok().json(PlansAnswer { plans }))
}

/// `GET …/billing/entitlements`' answer (documentation of the shape that
/// `billing::Entitlements` serialises to without copying the plan's lists).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EntitlementsAnswer {
    tenant_id: String,
    /// The plan whose features apply now (`free` when access lapsed).
    plan: String,
    /// `paying`, `trialing`, `grace` (past due, within the grace period) or `free`.
    #[schema(pattern = "^(paying|trialing|grace|free)$")]
    reason: String,
    features: Vec<String>,
    limits: BTreeMap<String, i64>,
    /// While in grace: when the plan's features end unless the invoice is paid.
    grace_until: Option<DateTime<Utc>>,
    /// Each meter's standing in the current period, as `GET …/usage` has it.
    usage: Vec<MeterStandingDoc>,
}

/// One meter in the entitlements answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MeterStandingDoc {
    meter: String,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    used: i64,
    limit: Option<i64>,
    remaining: Option<i64>,
    overage: String,
}

/// The features and limits that apply now: as cheap as `GET …/billing`
/// (same per-instance cache), since a host app may call it per request.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/billing/entitlements", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    responses(
        (status = 200, description = "What the tenant may use now (SPEC §7's rule)", body = EntitlementsAnswer),
        TenantProblems,
    ))]
pub async fn get_entitlements(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let entitlements = billing.entitlements(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(entitlements))
}
