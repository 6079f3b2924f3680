//! `GET …/billing/invoices`: the tenant's invoices as Stripe lists them (no
//! local copy to drift from the portal and Stripe's emails), each page kept
//! a short time (`invoice_cache`) so reloads cost Stripe nothing.

use super::invoice_cache::PageKey;
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
        let key = PageKey {
            limit,
            starting_after: starting_after.map(str::to_owned),
        };
        let Some(pages) = self.invoice_cache.pages(tenant) else {
            return self.list_invoices(tenant, &key).await;
        };
        if let Some(page) = pages.get(&key) {
            return Ok(page);
        }
        // One read of this tenant at a time here: the others wait for it.
        let _filling = pages.filling.lock().await;
        if let Some(page) = pages.get(&key) {
            return Ok(page);
        }
        let ticket = self.invoice_cache.ticket();
        let page = self.list_invoices(tenant, &key).await?;
        self.invoice_cache.fill(ticket, &pages, key, page.clone());
        Ok(page)
    }

    async fn list_invoices(
        &self,
        tenant: &TenantId,
        key: &PageKey,
    ) -> Result<InvoicePage, BillingError> {
        let customer = self
            .read_row(tenant)
            .await?
            .and_then(|row| row.stripe_customer_id);
        let Some(customer) = customer else {
            return Ok(InvoicePage::default());
        };
        self.stripe
            .list_invoices(&customer, key.limit, key.starting_after.as_deref())
            .await?
            .ok_or(BillingError::UnknownInvoice)
    }
}
