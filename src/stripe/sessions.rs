use std::collections::HashMap;

use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionCustomerUpdateName,
    CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionSubscriptionData, CreateCheckoutSessionTaxIdCollection,
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
    /// The currency to bill in (a price's own or one of its
    /// `currency_options`); `None`: the price's own.
    pub currency: Option<String>,
    /// Stripe Tax: automatic tax, tax id collection, a required billing
    /// address, and the customer's address and name kept up to date from
    /// what the buyer enters.
    pub automatic_tax: bool,
    /// The promotion-code field on the Checkout page.
    pub allow_promotion_codes: bool,
    /// A promotion code (its id) applied from the start.
    pub promotion_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

/// Currency, tax and discount options of a Checkout.
fn with_billing_options(
    mut request: CreateCheckoutSession,
    params: &CheckoutParams,
) -> CreateCheckoutSession {
    if let Some(currency) = &params.currency {
        let Ok(currency) = currency.parse::<stripe_types::Currency>();
        request = request.currency(currency);
    }
    if params.automatic_tax {
        let mut update = CreateCheckoutSessionCustomerUpdate::new();
        update.address = Some(CreateCheckoutSessionCustomerUpdateAddress::Auto);
        update.name = Some(CreateCheckoutSessionCustomerUpdateName::Auto);
        request = request
            .automatic_tax(CreateCheckoutSessionAutomaticTax::new(true))
            .tax_id_collection(CreateCheckoutSessionTaxIdCollection::new(true))
            .billing_address_collection(
                stripe_checkout::CheckoutSessionBillingAddressCollection::Required,
            )
            .customer_update(update);
    }
    match &params.promotion_code {
        Some(id) => {
            let mut discount = CreateCheckoutSessionDiscounts::new();
            discount.promotion_code = Some(id.clone());
            request = request.discounts(vec![discount]);
        }
        // Stripe refuses both at once: a code given up front wins.
        None if params.allow_promotion_codes => request = request.allow_promotion_codes(true),
        None => {}
    }
    request
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
        let request = with_billing_options(request, params);
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
