//! `GET …/billing/plans` and `GET …/billing/entitlements`: what a tenant can
//! buy, and what it may use now. Any member may read both.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::TenantCtx;
use crate::billing::Billing;
use crate::error::ApiError;

/// Every plan, ordered by rank, marked against the tenant's current plan.
pub async fn get_plans(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let plans = billing.plans(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "plans": plans })))
}

/// The features and limits that apply now: as cheap as `GET …/billing`
/// (same per-instance cache), since a host app may call it per request.
pub async fn get_entitlements(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let entitlements = billing.entitlements(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(entitlements))
}
