//! `POST …/billing/subscription/{change,cancel,resume}` and
//! `POST …/billing/sync`: admin-only writes to the tenant's subscription.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Actor, OptionalJson};
use super::problems::{BodyProblems, StripeProblems, TenantPath, TenantProblems};
use super::state::{self, BillingStateView};
use super::validation::{parse_plan, parse_quantity};
use crate::billing::{Billing, PlanChangeRequest};
use crate::error::ApiError;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// A configured plan id; `free` cancels at the period's end.
    #[schema(example = "team")]
    plan: String,
    /// Seats, for a per-seat plan; within the plan's `limits.seats`.
    #[schema(value_type = Option<u64>, minimum = 1)]
    quantity: Option<serde_json::Value>,
}

/// Upgrade now (prorated, invoiced at once), downgrade at the period's end,
/// `free` = cancel at the period's end. 200 with the billing state, also when
/// nothing had to change.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/subscription/change", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = ChangeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The billing state after the change (also when nothing had to change)", body = BillingStateView),
        (status = 409, description = "No subscription to change: use Checkout", content_type = "application/problem+json", body = crate::error::Problem),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
pub async fn post_change(
    actor: Actor,
    billing: web::Data<Billing>,
    body: web::Json<ChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let settings = billing.settings();
    let plan = parse_plan(&body.plan, settings)?;
    let quantity = parse_quantity(body.quantity.as_ref(), settings.catalog.get(plan.as_str()))?;
    let change = PlanChangeRequest { plan, quantity };
    state::answer(billing.change_plan(actor.tenant(), change, &actor.audit())).await
}

/// No body is expected; an empty object is accepted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// Cancel at the period's end (access continues until then); repeatable.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/subscription/cancel", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = Option<EmptyBody>, content_type = "application/json", description = "No body, or `{}`"),
    responses(
        (status = 200, description = "The billing state, `cancel_at_period_end: true`", body = BillingStateView),
        (status = 409, description = "No subscription to cancel", content_type = "application/problem+json", body = crate::error::Problem),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
pub async fn post_cancel(
    actor: Actor,
    billing: web::Data<Billing>,
    _: OptionalJson<EmptyBody>,
) -> Result<HttpResponse, ApiError> {
    state::answer(billing.cancel_subscription(actor.tenant(), &actor.audit())).await
}

/// Undo a cancel; 409 once the subscription has ended.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/subscription/resume", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = Option<EmptyBody>, content_type = "application/json", description = "No body, or `{}`"),
    responses(
        (status = 200, description = "The billing state, `cancel_at_period_end: false`", body = BillingStateView),
        (status = 409, description = "The subscription has ended (or there is none)", content_type = "application/problem+json", body = crate::error::Problem),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
pub async fn post_resume(
    actor: Actor,
    billing: web::Data<Billing>,
    _: OptionalJson<EmptyBody>,
) -> Result<HttpResponse, ApiError> {
    state::answer(billing.resume_subscription(actor.tenant(), &actor.audit())).await
}

/// Re-read the tenant from Stripe (repairs a missed webhook; the settings
/// page calls it on return from Checkout).
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/sync", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = Option<EmptyBody>, content_type = "application/json", description = "No body, or `{}`"),
    responses(
        (status = 200, description = "The billing state as Stripe has it now", body = BillingStateView),

        BodyProblems, StripeProblems, TenantProblems,
    ))]
pub async fn post_sync(
    actor: Actor,
    billing: web::Data<Billing>,
    _: OptionalJson<EmptyBody>,
) -> Result<HttpResponse, ApiError> {
    state::answer(billing.sync(actor.tenant(), &actor.audit())).await
}
