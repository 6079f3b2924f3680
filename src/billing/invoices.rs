//! `GET …/billing/invoices`: the tenant's invoices, read from Stripe on each
//! call (no local copy to drift from the portal and Stripe's emails).

use super::{Billing, BillingError};
use crate::domain::{InvoicePage, TenantId};

impl Billing {
    /// One page of the tenant's invoices, newest first; an empty page for a
    /// tenant without a Stripe customer. A Stripe failure is an error, never
    /// an empty list; a cursor Stripe does not know is `UnknownInvoice`.
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
            return Ok(InvoicePage::default());
        };
        self.stripe
            .list_invoices(&customer, limit, starting_after)
            .await?
            .ok_or(BillingError::UnknownInvoice)
    }
}
