//! `GET/POST …/billing/tax-ids` and `DELETE …/billing/tax-ids/{tax_id}`: the
//! tenant's VAT numbers and other tax ids, kept at Stripe on its customer
//! (admin only). Each is format-checked here before Stripe sees it.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Actor;
use super::problems::{BodyProblems, StripeProblems, TenantPath, TenantProblems};
use crate::auth::AdminCtx;
use crate::billing::Billing;
use crate::domain::{TaxIdKind, TaxIdNumber};
use crate::error::{ApiError, FieldError};

/// One tax id as Stripe has it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaxIdView {
    #[schema(example = "txi_1")]
    pub id: String,
    /// Stripe's type: `eu_vat`, `gb_vat`, `ch_vat`, `no_vat`, `us_ein`, `au_abn`.
    #[serde(rename = "type")]
    #[schema(example = "eu_vat")]
    pub kind: String,
    #[schema(example = "DE123456789")]
    pub value: String,
    /// The country the number belongs to, when Stripe knows it.
    pub country: Option<String>,
    /// Stripe's check with the tax authority: `pending`, `verified`,
    /// `unverified` or `unavailable` (not checked for this type).
    #[schema(example = "verified")]
    pub verification: String,
}

impl From<crate::billing::TaxId> for TaxIdView {
    fn from(t: crate::billing::TaxId) -> Self {
        TaxIdView {
            id: t.id,
            kind: t.kind,
            value: t.value,
            country: t.country,
            verification: t.verification,
        }
    }
}

/// `GET …/billing/tax-ids`' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaxIdsAnswer {
    /// Oldest first.
    pub tax_ids: Vec<TaxIdView>,
}

/// The tenant's tax ids, read from Stripe (none without a customer).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/billing/tax-ids", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    responses(
        (status = 200, description = "The tax ids on the tenant's Stripe customer", body = TaxIdsAnswer),
        StripeProblems, TenantProblems,
    ))]
pub async fn get_tax_ids(
    ctx: AdminCtx,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let ids = billing.tax_ids(&ctx.tenant_id).await?;
    Ok(HttpResponse::Ok().json(TaxIdsAnswer {
        tax_ids: ids.into_iter().map(TaxIdView::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxIdBody {
    /// `eu_vat`, `gb_vat`, `ch_vat`, `no_vat`, `us_ein` or `au_abn`.
    #[serde(rename = "type")]
    #[schema(example = "eu_vat")]
    kind: String,
    /// The number; spaces, dots and dashes are ignored.
    #[schema(example = "DE123456789", max_length = 64)]
    value: String,
}

/// Adds a tax id to the tenant's customer (201; 200 when the same number is
/// already there). Malformed, or of a type not supported: 422, and nothing
/// is sent to Stripe.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/billing/tax-ids", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = TaxIdBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Added; Stripe's verification usually starts `pending`", body = TaxIdView),
        (status = 200, description = "The tenant already had this number", body = TaxIdView),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
pub async fn post_tax_id(
    actor: Actor,
    billing: web::Data<Billing>,
    body: web::Json<TaxIdBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = TaxIdKind::parse(&body.kind).map_err(|e| FieldError::new("type", e.to_string()))?;
    let number = TaxIdNumber::parse(kind, &body.value)
        .map_err(|e| FieldError::new("value", e.to_string()))?;
    let (tax_id, created) = billing
        .add_tax_id(actor.tenant(), &number, &actor.audit())
        .await?;
    let view = TaxIdView::from(tax_id);
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// `{tax_id}` of a tax id route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TaxIdPath {
    /// The tenant; must be the verified token's.
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$", example = "acme")]
    pub tenant_id: String,
    /// A tax id of the tenant's (`txi_…`).
    #[param(pattern = r"^txi_[A-Za-z0-9]{1,64}$", example = "txi_1")]
    pub tax_id: String,
}

/// Removes one of the tenant's tax ids; 404 when it has no such id.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/billing/tax-ids/{tax_id}", tag = "billing",
    params(TaxIdPath), security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The tenant has no such tax id", content_type = "application/problem+json", body = crate::error::Problem),
        StripeProblems, TenantProblems,
    ))]
pub async fn delete_tax_id(
    actor: Actor,
    billing: web::Data<Billing>,
    path: web::Path<TaxIdPath>,
) -> Result<HttpResponse, ApiError> {
    let well_formed = path.tax_id.strip_prefix("txi_").is_some_and(|rest| {
        (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !well_formed {
        return Err(ApiError::NotFound);
    }
    billing
        .remove_tax_id(actor.tenant(), &path.tax_id, &actor.audit())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
