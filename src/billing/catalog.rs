//! `GET …/billing/plans` and the startup check of the configured prices.
//!
//! Prices belong to Stripe: the amounts shown are Stripe's once read (a
//! price's amount never changes at Stripe, so one read at startup is enough),
//! the configured seed values until then.

use std::collections::HashMap;
use std::sync::RwLock;

use super::Billing;
use crate::db::DbError;
use crate::domain::{Plan, PlanChange, PlanPrice, TenantId};

/// Stripe's prices for the configured plans, as read at startup.
#[derive(Debug, Default)]
pub struct PriceBook {
    prices: RwLock<HashMap<String, PlanPrice>>,
}

impl PriceBook {
    fn get(&self, price_id: &str) -> Option<PlanPrice> {
        let prices = self.prices.read().unwrap_or_else(|e| e.into_inner());
        prices.get(price_id).cloned()
    }

    fn insert(&self, price_id: String, price: PlanPrice) {
        let mut prices = self.prices.write().unwrap_or_else(|e| e.into_inner());
        prices.insert(price_id, price);
    }
}

/// One plan as this tenant sees it (a row of `GET …/billing/plans`; README,
/// Endpoints): the plan, its price and where it stands against the
/// tenant's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOffer {
    pub plan: Plan,
    /// Stripe's price once read, else the configured seed; none for `free`.
    pub price: Option<PlanPrice>,
    /// By rank against the tenant's current plan.
    pub change: PlanChange,
    /// The plan has a trial and this tenant never had one.
    pub trial_available: bool,
}

/// A configured plan whose price Stripe does not have (reported at startup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceProblem {
    pub plan: String,
    pub price_id: String,
}

impl Billing {
    /// Every plan, lowest rank first, as this tenant sees it.
    pub async fn plans(&self, tenant: &TenantId) -> Result<Vec<PlanOffer>, DbError> {
        let state = self.state(tenant).await?;
        let catalog = self.catalog();
        Ok(catalog
            .plans()
            .iter()
            .map(|plan| PlanOffer {
                price: plan
                    .price_id
                    .as_deref()
                    .and_then(|id| self.prices.get(id))
                    .or_else(|| plan.configured_price.clone()),
                change: catalog.change(&state.plan, &plan.id),
                trial_available: plan.trial_days > 0 && !state.trial_used,
                plan: plan.clone(),
            })
            .collect())
    }

    /// Reads every configured price from Stripe: logs (and returns) the ones
    /// Stripe does not have, and remembers the amounts of the others. Run in
    /// the background at startup: it never blocks serving, and Stripe being
    /// unreachable is a warning, not a failure.
    pub async fn check_prices(&self) -> Vec<PriceProblem> {
        let mut missing = Vec::new();
        for plan in self.catalog().plans() {
            let Some(price_id) = &plan.price_id else {
                continue;
            };
            match self.stripe.retrieve_price(price_id).await {
                Ok(Some(price)) => {
                    if let (Some(amount), Some(interval)) = (price.unit_amount, price.interval) {
                        self.prices.insert(
                            price_id.clone(),
                            PlanPrice {
                                amount,
                                currency: price.currency,
                                interval,
                            },
                        );
                    }
                }
                Ok(None) => {
                    tracing::error!(
                        plan = %plan.id,
                        price_id = %price_id,
                        "the configured price does not exist at Stripe: Checkout and changes to this plan will fail; fix plans.{}.price_id",
                        plan.id
                    );
                    missing.push(PriceProblem {
                        plan: plan.id.clone(),
                        price_id: price_id.clone(),
                    });
                }
                Err(error) => {
                    tracing::warn!(
                        plan = %plan.id,
                        price_id = %price_id,
                        error = %error,
                        "could not check the configured price at Stripe"
                    );
                }
            }
        }
        missing
    }
}
