/// An invoice as the tenant's admin sees it in the settings page's list:
/// read from Stripe on each call, never stored. Amounts in the currency's
/// smallest unit; times in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: Option<String>,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub created: i64,
    pub period_start: i64,
    pub period_end: i64,
    /// Stripe's page to view and pay the invoice.
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
}

/// One page of a customer's invoices, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoicePage {
    pub invoices: Vec<Invoice>,
    /// More after the last one: ask again starting after its id.
    pub has_more: bool,
}
