//! Tenant billing endpoints. Handlers parse bodies into domain types (422 on
//! anything invalid, before any side effect) and hand over to `Billing`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tracing_actix_web::RequestId;
use validator::Validate;

use super::validation::{
    optional_json, parse_email, parse_plan, parse_quantity, parse_redirect_or_default, validated,
};
use crate::auth::{AdminCtx, Identity, TenantCtx};
use crate::billing::{Actor, Billing, CheckoutRequest, CustomerHints, ProfileUpdate};
use crate::error::{ApiError, FieldError};

pub(super) fn actor<'a>(identity: &'a Identity, request_id: &'a str) -> Actor<'a> {
    Actor {
        user_id: &identity.user_id,
        request_id: Some(request_id),
        email: identity.email.as_ref(),
    }
}

/// `GET …/billing`: any member may read the tenant's plan.
pub async fn get_billing(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let state = billing.state(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(&*state))
}

#[derive(Debug, Default, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    email: Option<String>,
    #[validate(length(min = 1, max = 256, message = "must be 1-256 characters"))]
    name: Option<String>,
}

/// `POST …/billing/customer`: 201 when this call created the customer, else 200.
pub async fn ensure_customer(
    ctx: AdminCtx,
    request_id: RequestId,
    billing: web::Data<Billing>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // The body is optional: an empty one means "use the profile".
    let body: CustomerBody = optional_json(&req, &body)?;
    validated(&body)?;
    let hints = CustomerHints {
        email: body
            .email
            .as_deref()
            .map(|e| parse_email("email", e))
            .transpose()?,
        name: body.name.clone(),
    };
    let request_id = request_id.to_string();
    let ensured = billing
        .ensure_customer(&ctx.tenant_id, &hints, &actor(&ctx, &request_id))
        .await?;
    let body = json!({
        "tenant_id": ctx.tenant_id.as_str(),
        "stripe_customer_id": ensured.customer_id,
        "created": ensured.created,
    });
    Ok(if ensured.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    billing_email: String,
    #[validate(length(min = 1, max = 256, message = "must be 1-256 characters"))]
    billing_name: Option<String>,
}

/// `PUT …/billing/profile`: stores the profile, then syncs Stripe if linked.
pub async fn put_profile(
    ctx: AdminCtx,
    request_id: RequestId,
    billing: web::Data<Billing>,
    body: web::Json<ProfileBody>,
) -> Result<HttpResponse, ApiError> {
    validated(&*body)?;
    let update = ProfileUpdate {
        email: parse_email("billing_email", &body.billing_email)?,
        name: body.billing_name.clone(),
    };
    let request_id = request_id.to_string();
    let (state, sync) = billing
        .update_profile(&ctx.tenant_id, &update, &actor(&ctx, &request_id))
        .await?;
    let mut body = serde_json::to_value(state).map_err(ApiError::internal)?;
    body["profile_sync"] = serde_json::to_value(sync).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    plan: String,
    /// Seats, for a per-seat plan; checked against the plan's limit.
    quantity: Option<serde_json::Value>,
    success_url: Option<String>,
    cancel_url: Option<String>,
}

/// `POST …/billing/checkout`: the Upgrade button.
pub async fn post_checkout(
    ctx: AdminCtx,
    request_id: RequestId,
    billing: web::Data<Billing>,
    body: web::Json<CheckoutBody>,
) -> Result<HttpResponse, ApiError> {
    let settings = billing.settings();
    let origins = &settings.billing.allowed_redirect_origins;
    let mut errors = Vec::new();
    let plan = parse_plan(&body.plan, settings)
        .and_then(|plan| match plan.is_free() {
            true => Err(FieldError::new("plan", "is free: nothing to pay for")),
            false => Ok(plan),
        })
        .map_err(|e| errors.push(e))
        .ok();
    let quantity = parse_quantity(
        body.quantity.as_ref(),
        plan.as_ref().and_then(|p| settings.catalog.get(p.as_str())),
    )
    .map_err(|e| errors.push(e))
    .ok()
    .flatten();
    let success_url = parse_redirect_or_default(
        "success_url",
        body.success_url.as_deref(),
        origins,
        settings.billing.default_success_url.as_ref(),
    )
    .map_err(|e| errors.push(e))
    .ok()
    .flatten();
    let cancel_url = parse_redirect_or_default(
        "cancel_url",
        body.cancel_url.as_deref(),
        origins,
        settings.billing.default_cancel_url.as_ref(),
    )
    .map_err(|e| errors.push(e))
    .ok()
    .flatten();
    let Some(plan) = plan.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let request = CheckoutRequest {
        plan,
        quantity,
        success_url,
        cancel_url,
    };
    let request_id = request_id.to_string();
    let session = billing
        .start_checkout(&ctx.tenant_id, &request, &actor(&ctx, &request_id))
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "checkout_session_id": session.id,
        "url": session.url,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalBody {
    return_url: Option<String>,
}

/// `POST …/billing/portal`: a Stripe billing portal link.
pub async fn post_portal(
    ctx: AdminCtx,
    request_id: RequestId,
    billing: web::Data<Billing>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: PortalBody = optional_json(&req, &body)?;
    let settings = &billing.settings().billing;
    let return_url = parse_redirect_or_default(
        "return_url",
        body.return_url.as_deref(),
        &settings.allowed_redirect_origins,
        settings.default_return_url.as_ref(),
    )
    .map_err(|e| ApiError::Validation(vec![e]))?;
    let request_id = request_id.to_string();
    let url = billing
        .open_portal(
            &ctx.tenant_id,
            return_url.as_ref(),
            &actor(&ctx, &request_id),
        )
        .await?;
    Ok(HttpResponse::Created().json(json!({ "url": url })))
}
