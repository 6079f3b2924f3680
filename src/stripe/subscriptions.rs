use std::collections::HashMap;

use stripe_billing::subscription::RetrieveSubscription;

use super::{StripeFailure, StripeGateway};

/// The part of a subscription the service caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSubscription {
    pub id: String,
    pub customer_id: String,
    pub status: String,
    pub price_id: Option<String>,
    /// Unix seconds; on the first item in current API versions.
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub metadata: HashMap<String, String>,
}

impl From<stripe_billing::Subscription> for StripeSubscription {
    fn from(subscription: stripe_billing::Subscription) -> Self {
        let first_item = subscription.items.data.first();
        StripeSubscription {
            id: subscription.id.to_string(),
            customer_id: subscription.customer.id().to_string(),
            status: subscription.status.as_str().to_owned(),
            price_id: first_item.map(|item| item.price.id.to_string()),
            current_period_end: first_item.map(|item| item.current_period_end),
            cancel_at_period_end: subscription.cancel_at_period_end,
            metadata: subscription.metadata,
        }
    }
}

impl StripeGateway {
    /// The subscription as Stripe has it now: webhooks re-read state instead of
    /// trusting a payload that may be late or out of order.
    pub async fn retrieve_subscription(
        &self,
        id: &str,
    ) -> Result<StripeSubscription, StripeFailure> {
        let request = RetrieveSubscription::new(id);
        self.policy
            .run("retrieve_subscription", || request.send(&self.client))
            .await
            .map(StripeSubscription::from)
    }
}
