use stripe_billing::invoice::ListInvoice;

use super::{StripeFailure, StripeGateway};

/// An invoice as the admin sees it in the settings page's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeInvoice {
    pub id: String,
    pub number: Option<String>,
    pub status: Option<String>,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
}

/// One page of a customer's invoices, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePage {
    pub invoices: Vec<StripeInvoice>,
    pub has_more: bool,
}

impl StripeGateway {
    /// Up to `limit` invoices of `customer_id` after `starting_after`, as
    /// Stripe lists them (newest first). Read straight from Stripe: a local
    /// copy would drift from what the portal and the emails show.
    pub async fn list_invoices(
        &self,
        customer_id: &str,
        limit: u8,
        starting_after: Option<&str>,
    ) -> Result<InvoicePage, StripeFailure> {
        let mut request = ListInvoice::new()
            .customer(customer_id.to_owned())
            .limit(i64::from(limit));
        if let Some(cursor) = starting_after {
            request = request.starting_after(cursor.to_owned());
        }
        let page = self
            .policy
            .run("list_invoices", || request.send(&self.client))
            .await?;
        let invoices = page
            .data
            .into_iter()
            .filter_map(|invoice| {
                Some(StripeInvoice {
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
        Ok(InvoicePage {
            invoices,
            has_more: page.has_more,
        })
    }
}
