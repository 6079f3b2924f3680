//! `GET …/billing/invoices`: the tenant's invoices, read from Stripe on each
//! call (no local copy to drift from the portal and Stripe's emails).

use super::{Billing, BillingError};
use crate::domain::TenantId;
use crate::stripe::{InvoicePage, StripeFailure};

impl Billing {
    /// One page of the tenant's invoices, newest first; an empty page for a
    /// tenant without a Stripe customer. A Stripe failure is an error, never
    /// an empty list.
    pub async fn invoices(
        &self,
        tenant: &TenantId,
        limit: u8,
        starting_after: Option<&str>,
    ) -> Result<InvoicePage, BillingError> {
        let customer = self
            .read_row(tenant)
            .await?
            .and_then(|row| row.stripe_customer_id);
        let Some(customer) = customer else {
            return Ok(InvoicePage {
                invoices: Vec::new(),
                has_more: false,
            });
        };
        match self
            .stripe
            .list_invoices(&customer, limit, starting_after)
            .await
        {
            // Stripe knows no such invoice (400 `resource_missing` naming the
            // parameter): the cursor is the caller's mistake, not an outage.
            Err(StripeFailure::Rejected { status, param, .. })
                if starting_after.is_some()
                    && (status == 404 || param.as_deref() == Some("starting_after")) =>
            {
                Err(BillingError::UnknownInvoice)
            }
            answer => Ok(answer?),
        }
    }
}
