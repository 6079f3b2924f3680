use actix_web::{web, HttpResponse};

use crate::auth::TenantCtx;
use crate::billing::Billing;
use crate::error::ApiError;

/// `GET /v1/tenants/{t}/billing`: any member may read the tenant's plan.
pub async fn get_billing(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let state = billing.state(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(state))
}
