use std::collections::HashMap;

use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};

use super::{StripeFailure, StripeGateway};

/// A subscription Checkout for one plan price.
#[derive(Debug, Clone)]
pub struct CheckoutParams {
    pub tenant_id: String,
    pub customer_id: String,
    pub plan: String,
    pub price_id: String,
    /// Seats for a per-seat plan, else 1.
    pub quantity: u64,
    /// The plan's metered prices: line items without a quantity (their
    /// usage is billed in arrears from the meter).
    pub metered_prices: Vec<String>,
    /// The plan's trial, only for a tenant that never had one.
    pub trial_days: Option<u32>,
    pub success_url: String,
    pub cancel_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

impl StripeGateway {
    /// Opens a subscription Checkout. The session and the subscription it
    /// creates both carry the tenant and plan, so webhooks can be cross-checked.
    pub async fn create_checkout_session(
        &self,
        params: &CheckoutParams,
        key_parts: &[&str],
    ) -> Result<CheckoutSession, StripeFailure> {
        let metadata = HashMap::from([
            ("tenant_id".to_owned(), params.tenant_id.clone()),
            ("plan".to_owned(), params.plan.clone()),
        ]);
        let mut line_item = CreateCheckoutSessionLineItems::new();
        line_item.price = Some(params.price_id.clone());
        line_item.quantity = Some(params.quantity);
        let mut line_items = vec![line_item];
        for price in &params.metered_prices {
            let mut metered = CreateCheckoutSessionLineItems::new();
            metered.price = Some(price.clone());
            line_items.push(metered);
        }
        let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(metadata.clone());
        subscription_data.trial_period_days = params.trial_days;
        let request = CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Subscription)
            .customer(params.customer_id.clone())
            .client_reference_id(params.tenant_id.clone())
            .line_items(line_items)
            .metadata(metadata)
            .subscription_data(subscription_data)
            .success_url(params.success_url.clone())
            .cancel_url(params.cancel_url.clone());
        let session = self
            .send_idempotent("create_checkout_session", &request, key_parts)
            .await?;
        let url = session
            .url
            .ok_or_else(|| StripeFailure::Protocol("checkout session without url".into()))?;
        Ok(CheckoutSession {
            id: session.id.to_string(),
            url,
        })
    }

    /// A billing portal session for the customer; returns its URL.
    pub async fn create_portal_session(
        &self,
        customer_id: &str,
        return_url: &str,
        key_parts: &[&str],
    ) -> Result<String, StripeFailure> {
        let request = CreateBillingPortalSession::new()
            .customer(customer_id.to_owned())
            .return_url(return_url.to_owned());
        let session = self
            .send_idempotent("create_portal_session", &request, key_parts)
            .await?;
        Ok(session.url)
    }
}
