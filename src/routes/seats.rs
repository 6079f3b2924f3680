//! `PUT …/billing/seats` and `GET …/billing/invoices`: the per-seat count
//! and the invoice list of the tenant's subscription (admin only).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Actor;
use super::problems::{BodyProblems, StripeProblems, TenantPath, TenantProblems};
use super::state::{self, BillingStateView};
use super::validation::parse_quantity;
use crate::auth::AdminCtx;
use crate::billing::Billing;
use crate::domain::Invoice;
use crate::error::{ApiError, FieldError};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatsBody {
    /// The absolute seat count, from 1 to the plan's `limits.seats`.
    #[schema(value_type = u64, minimum = 1, example = 5)]
    quantity: Option<serde_json::Value>,
}

/// Sets the seat count of a per-seat plan, prorated and invoiced at once.
/// Absolute: a retry is harmless, and after concurrent calls Stripe's
/// quantity and the stored `seats` equal the call answered last.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/billing/seats", tag = "billing",
    params(TenantPath), security(("bearer" = [])),
    request_body(content = SeatsBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The billing state with the new `seats`", body = BillingStateView),
        (status = 409, description = "No subscription, or the plan is not billed per seat", content_type = "application/problem+json", body = crate::error::Problem),
        BodyProblems, StripeProblems, TenantProblems,
    ))]
pub async fn put_seats(
    actor: Actor,
    billing: web::Data<Billing>,
    body: web::Json<SeatsBody>,
) -> Result<HttpResponse, ApiError> {
    let quantity = parse_quantity(body.quantity.as_ref(), None)?
        .ok_or_else(|| ApiError::invalid_field("quantity", "is required"))?;
    state::answer(billing.set_seats(actor.tenant(), quantity, &actor.audit())).await
}

/// `GET …/billing/invoices`' query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// Invoices per page, 1 to 100 (default 10).
    #[param(value_type = Option<u8>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The last invoice id of the previous page (`in_…`).
    #[param(value_type = Option<String>, pattern = r"^in_[A-Za-z0-9]{1,250}$")]
    starting_after: Option<String>,
}

/// One invoice as the settings page lists it. Amounts in the currency's
/// smallest unit; times in Unix seconds.
// Borrows the page billing read: answering copies no string.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView<'a> {
    #[schema(example = "in_1")]
    pub id: &'a str,
    pub number: Option<&'a str>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: Option<&'a str>,
    pub amount_due: i64,
    pub amount_paid: i64,
    #[schema(example = "usd")]
    pub currency: &'a str,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
    /// Stripe's page to view and pay the invoice.
    pub hosted_invoice_url: Option<&'a str>,
    pub invoice_pdf: Option<&'a str>,
}

impl<'a> From<&'a Invoice> for InvoiceView<'a> {
    fn from(invoice: &'a Invoice) -> Self {
        InvoiceView {
            id: &invoice.id,
            number: invoice.number.as_deref(),
            status: invoice.status.as_deref(),
            amount_due: invoice.amount_due,
            amount_paid: invoice.amount_paid,
            currency: &invoice.currency,
            created: invoice.created,
            period_start: invoice.period_start,
            period_end: invoice.period_end,
            hosted_invoice_url: invoice.hosted_invoice_url.as_deref(),
            invoice_pdf: invoice.invoice_pdf.as_deref(),
        }
    }
}

/// `GET …/billing/invoices`' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicesAnswer<'a> {
    /// Newest first.
    pub invoices: Vec<InvoiceView<'a>>,
    /// More after the last one: ask again with `starting_after` = its id.
    pub has_more: bool,
}

/// The tenant's invoices, newest first, read from Stripe (a Stripe failure
/// is a 502, never an empty list).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/billing/invoices", tag = "billing",
    params(TenantPath, InvoiceQuery), security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of invoices, newest first", body = InvoicesAnswer),
        (status = 400, description = "A query string that is not well-formed", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 422, description = "A bad `limit` or `starting_after`", content_type = "application/problem+json", body = crate::error::Problem),
        StripeProblems, TenantProblems,
    ))]
pub async fn get_invoices(
    ctx: AdminCtx,
    billing: web::Data<Billing>,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let limit = match query.limit.as_deref().map(str::parse::<u8>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            ));
            10
        }
    };
    let cursor = query.starting_after.as_deref();
    let well_formed = |id: &str| {
        id.strip_prefix("in_").is_some_and(|rest| {
            (1..=250).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    };
    if cursor.is_some_and(|id| !well_formed(id)) {
        errors.push(FieldError::new(
            "starting_after",
            "must be an invoice id (in_…) from a previous page",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let page = billing.invoices(&ctx.tenant_id, limit, cursor).await?;
    Ok(HttpResponse::Ok().json(InvoicesAnswer {
        invoices: page.invoices.iter().map(InvoiceView::from).collect(),
        has_more: page.has_more,
    }))
}
