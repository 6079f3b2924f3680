//! Tenant billing endpoints. Handlers parse bodies into domain types (422 on
//! anything invalid, before any side effect) and hand over to `Billing`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use validator::Validate;

use super::openapi::{BodyProblems, StripeProblems, TenantPath, TenantProblems};
use super::validation::{
    optional_json, parse_email, parse_plan, parse_quantity, parse_redirect_or_default, validated,
};
use crate::auth::{AdminCtx, Identity, TenantCtx};
use crate::billing::{
    Actor, Billing, BillingState, CheckoutRequest, CustomerHints, ProfileSync, ProfileUpdate,
};
use crate::error::{ApiError, FieldError};

pub(super) fn actor<'a>(identity: &'a Identity, request_id: &'a str) -> Actor<'a> {
    Actor {
        user_id: &identity.user_id,
        request_id: Some(request_id),
        email: identity.email.as_ref(),
    }
}

/// `GET …/billing`: any member may read the tenant's plan.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/billing", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    responses((status = 200, description = "The tenant's billing state (free when never billed)", body = BillingState), TenantProblems))]
pub async fn get_billing(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let state = billing.state(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(&*state))
}

/// Optional: the customer's email falls back to the profile's, then the token's.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    #[schema(format = Email)]
    email: Option<String>,
    #[validate(length(min = 1, max = 256, message = "must be 1-256 characters"))]
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
}

/// `POST …/billing/customer`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerAnswer {
    pub tenant_id: String,
    pub stripe_customer_id: String,
    /// True when this call created (or recovered) the customer.
    pub created: bool,
}

/// `POST …/billing/customer`: 201 when this call created the customer, else 200.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/customer", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = Option<CustomerBody>, content_type = "application/json", description = "Optional; an empty body uses the profile"),
    responses(
        (status = 201, description = "This call created the tenant's Stripe customer", body = CustomerAnswer),
        (status = 200, description = "The tenant already had its customer", body = CustomerAnswer),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
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
    let body = CustomerAnswer {
        tenant_id: ctx.tenant_id.to_string(),
        stripe_customer_id: ensured.customer_id,
        created: ensured.created,
    };
    Ok(if ensured.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    #[schema(format = Email)]
    billing_email: String,
    #[validate(length(min = 1, max = 256, message = "must be 1-256 characters"))]
    #[schema(min_length = 1, max_length = 256)]
    billing_name: Option<String>,
}

/// `PUT …/billing/profile`'s answer: the state plus where Stripe stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileAnswer {
    #[serde(flatten)]
    pub state: BillingState,
    pub profile_sync: ProfileSync,
}

/// `PUT …/billing/profile`: stores the profile, then syncs Stripe if linked.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/billing/profile", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = ProfileBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored; `profile_sync` says whether Stripe already has it", body = ProfileAnswer),
        BodyProblems, TenantProblems,
    ))]
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
    Ok(HttpResponse::Ok().json(ProfileAnswer {
        state,
        profile_sync: sync,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// A configured plan id (`pro`).
    #[schema(example = "pro")]
    plan: String,
    /// Seats, for a per-seat plan (default 1); within the plan's `limits.seats`.
    #[schema(value_type = Option<u64>, minimum = 1)]
    quantity: Option<serde_json::Value>,
    /// Where Stripe sends the payer back; on `billing.allowed_redirect_origins`.
    success_url: Option<String>,
    cancel_url: Option<String>,
}

/// `POST …/billing/checkout`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutAnswer {
    pub checkout_session_id: String,
    /// Stripe's hosted Checkout page: send the payer there.
    pub url: String,
}

/// `POST …/billing/checkout`: the Upgrade button.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/checkout", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = CheckoutBody, content_type = "application/json"),
    responses(
        (status = 201, description = "A Stripe Checkout session", body = CheckoutAnswer),
        (status = 409, description = "The tenant already pays for a plan (use the portal)", content_type = "application/problem+json", body = crate::error::Problem),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
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
    Ok(HttpResponse::Created().json(CheckoutAnswer {
        checkout_session_id: session.id,
        url: session.url,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalBody {
    /// Where the portal's back link goes; on `billing.allowed_redirect_origins`.
    return_url: Option<String>,
}

/// `POST …/billing/portal`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalAnswer {
    /// Stripe's billing portal for this tenant's customer.
    pub url: String,
}

/// `POST …/billing/portal`: a Stripe billing portal link.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/portal", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = Option<PortalBody>, content_type = "application/json", description = "Optional"),
    responses(
        (status = 201, description = "A billing portal session", body = PortalAnswer),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
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
    Ok(HttpResponse::Created().json(PortalAnswer { url }))
}
