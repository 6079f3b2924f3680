use stripe_billing::invoice::ListInvoice;

use super::{StripeFailure, StripeGateway};
use crate::domain::{Invoice, InvoicePage};

impl StripeGateway {
    /// Up to `limit` invoices of `customer_id` after `starting_after`, as
    /// Stripe lists them (newest first). Read straight from Stripe: a local
    /// copy would drift from what the portal and the emails show. `None`
    /// when Stripe knows no invoice `starting_after` (a 404, or a 400
    /// `resource_missing` naming the parameter): the cursor is the caller's
    /// mistake, not an outage.
    pub async fn list_invoices(
        &self,
        customer_id: &str,
        limit: u8,
        starting_after: Option<&str>,
    ) -> Result<Option<InvoicePage>, StripeFailure> {
        let mut request = ListInvoice::new()
            .customer(customer_id.to_owned())
            .limit(i64::from(limit));
        if let Some(cursor) = starting_after {
            request = request.starting_after(cursor.to_owned());
        }
        let page = match self
            .policy
            .run("list_invoices", || request.send(&self.client))
            .await
        {
            Ok(page) => page,
            Err(StripeFailure::Rejected { status, param, .. })
                if starting_after.is_some()
                    && (status == 404 || param.as_deref() == Some("starting_after")) =>
            {
                return Ok(None)
            }
            Err(other) => return Err(other),
        };
        let invoices = page
            .data
            .into_iter()
            .filter_map(|invoice| {
                Some(Invoice {
                    id: invoice.id?.to_string(),
                    number: invoice.number,
                    status: invoice.status.map(|s| s.as_str().to_owned()),
                    amount_due: invoice.amount_due,
                    amount_paid: invoice.amount_paid,
                    currency: invoice.currency.to_string(),
                    created: invoice.created,
                    period_start: invoice.period_start,
                    period_end: invoice.period_end,
                    hosted_invoice_url: invoice.hosted_invoice_url,
                    invoice_pdf: invoice.invoice_pdf,
                })
            })
            .collect();
        Ok(Some(InvoicePage {
            invoices,
            has_more: page.has_more,
        }))
    }
}
