use std::collections::BTreeMap;

use stripe_product::price::RetrievePrice;

use super::{StripeFailure, StripeGateway};

/// A price as Stripe bills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePrice {
    pub id: String,
    pub unit_amount: Option<i64>,
    pub currency: String,
    pub interval: Option<String>,
    /// Amounts in other currencies (`currency_options`), its own included.
    pub currency_options: BTreeMap<String, i64>,
    /// The meter a metered price bills (`recurring.usage_type = metered`).
    pub meter: Option<String>,
    pub metered: bool,
}

impl StripeGateway {
    /// The price, or `None` when Stripe does not know it (404).
    pub async fn retrieve_price(&self, id: &str) -> Result<Option<StripePrice>, StripeFailure> {
        let request = RetrievePrice::new(id).expand(vec!["currency_options".to_owned()]);
        match self
            .policy
            .run("retrieve_price", || request.send(&self.client))
            .await
        {
            Ok(price) => Ok(Some(StripePrice {
                id: price.id.to_string(),
                unit_amount: price.unit_amount,
                currency: price.currency.to_string(),
                interval: price
                    .recurring
                    .as_ref()
                    .map(|r| r.interval.as_str().to_owned()),
                currency_options: price
                    .currency_options
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(currency, option)| {
                        Some((currency.to_string(), option.unit_amount?))
                    })
                    .collect(),
                meter: price.recurring.as_ref().and_then(|r| r.meter.clone()),
                metered: price
                    .recurring
                    .is_some_and(|r| r.usage_type == stripe_product::RecurringUsageType::Metered),
            })),
            Err(StripeFailure::Rejected { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}
