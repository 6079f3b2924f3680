//! Tenant billing endpoints. Handlers parse bodies into domain types (422 on
//! anything invalid, before any side effect) and hand over to `Billing`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::extract::{Actor, OptionalJson};
use super::problems::{BodyProblems, StripeProblems, TenantPath, TenantProblems};
use super::state::{self, BillingStateView};
use super::validation::{
    parse_email, parse_plan, parse_quantity, parse_redirect_or_default, validated,
};
use crate::auth::TenantCtx;
use crate::billing::{Billing, CheckoutRequest, CustomerHints, ProfileSync, ProfileUpdate};
use crate::error::{ApiError, FieldError};

/// `GET …/billing`: any member may read the tenant's plan.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/billing", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    responses((status = 200, description = "The tenant's billing state (free when never billed)", body = BillingStateView), TenantProblems))]
pub async fn get_billing(
    ctx: TenantCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    Ok(state::ok(&*billing.state(&ctx.tenant_id).await?))
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
    actor: Actor,
    billing: web::Data<Billing>,
    // The body is optional: an empty one means "use the profile".
    OptionalJson(body): OptionalJson<CustomerBody>,
) -> Result<HttpResponse, ApiError> {
    validated(&body)?;
    let hints = CustomerHints {
        email: body
            .email
            .as_deref()
            .map(|e| parse_email("email", e))
            .transpose()?,
        name: body.name,
    };
    let ensured = billing
        .ensure_customer(actor.tenant(), &hints, &actor.audit())
        .await?;
    let body = CustomerAnswer {
        tenant_id: actor.tenant().to_string(),
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

/// Where the profile stands relative to Stripe after an update.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ProfileSync)]
pub enum ProfileSyncView {
    Synced,
    Pending,
    Provisioning,
    NotLinked,
}

impl From<ProfileSync> for ProfileSyncView {
    fn from(sync: ProfileSync) -> Self {
        match sync {
            ProfileSync::Synced => ProfileSyncView::Synced,
            ProfileSync::Pending => ProfileSyncView::Pending,
            ProfileSync::Provisioning => ProfileSyncView::Provisioning,
            ProfileSync::NotLinked => ProfileSyncView::NotLinked,
        }
    }
}

/// `PUT …/billing/profile`'s answer: the state plus where Stripe stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileAnswer<'a> {
    #[serde(flatten)]
    pub state: BillingStateView<'a>,
    pub profile_sync: ProfileSyncView,
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
    actor: Actor,
    billing: web::Data<Billing>,
    body: web::Json<ProfileBody>,
) -> Result<HttpResponse, ApiError> {
    validated(&*body)?;
    let update = ProfileUpdate {
        email: parse_email("billing_email", &body.billing_email)?,
        name: body.billing_name.clone(),
    };
    let (state, sync) = billing
        .update_profile(actor.tenant(), &update, &actor.audit())
        .await?;
    Ok(HttpResponse::Ok().json(ProfileAnswer {
        state: BillingStateView::from(&state),
        profile_sync: sync.into(),
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
    actor: Actor,
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
    let session = billing
        .start_checkout(actor.tenant(), &request, &actor.audit())
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
    actor: Actor,
    billing: web::Data<Billing>,
    OptionalJson(body): OptionalJson<PortalBody>,
) -> Result<HttpResponse, ApiError> {
    let settings = &billing.settings().billing;
    let return_url = parse_redirect_or_default(
        "return_url",
        body.return_url.as_deref(),
        &settings.allowed_redirect_origins,
        settings.default_return_url.as_ref(),
    )?;
    let url = billing
        .open_portal(actor.tenant(), return_url.as_ref(), &actor.audit())
        .await?;
    Ok(HttpResponse::Created().json(PortalAnswer { url }))
}
