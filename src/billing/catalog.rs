//! `GET …/billing/plans` and the startup check of the configured prices.
//!
//! Prices belong to Stripe: the amounts shown are Stripe's once read (a
//! price's amount never changes at Stripe, so one read at startup is enough),
//! the configured seed values until then.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::Billing;
use crate::db::DbError;
use crate::domain::{PlanPrice, TenantId};

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

/// One plan as this tenant sees it: its price and where it stands against
/// the tenant's plan (a row of `GET …/billing/plans`; README, Endpoints).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub id: String,
    pub name: String,
    /// The price per interval (per seat for a per-seat plan), in the currency's minor unit.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    pub per_seat: bool,
    pub trial_days: u32,
    /// The plan has a trial and this tenant never had one.
    pub trial_available: bool,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, i64>,
    pub current: bool,
    /// `current`, `upgrade` or `downgrade`, by rank against the current plan.
    pub change: &'static str,
}

/// A configured plan whose price Stripe does not have (reported at startup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceProblem {
    pub plan: String,
    pub price_id: String,
}

impl Billing {
    /// Every plan, lowest rank first, as this tenant sees it.
    pub async fn plans(&self, tenant: &TenantId) -> Result<Vec<PlanView>, DbError> {
        let state = self.state(tenant).await?;
        let catalog = self.catalog();
        Ok(catalog
            .plans()
            .iter()
            .map(|plan| {
                let price = plan
                    .price_id
                    .as_deref()
                    .and_then(|id| self.prices.get(id))
                    .or_else(|| plan.configured_price.clone());
                let change = catalog.change(&state.plan, &plan.id);
                PlanView {
                    id: plan.id.clone(),
                    name: plan.name.clone(),
                    amount: price.as_ref().map(|p| p.amount),
                    currency: price.as_ref().map(|p| p.currency.clone()),
                    interval: price.map(|p| p.interval),
                    per_seat: plan.per_seat,
                    trial_days: plan.trial_days,
                    trial_available: plan.trial_days > 0 && !state.trial_used,
                    features: plan.features.clone(),
                    limits: plan.limits.clone(),
                    current: change == crate::domain::PlanChange::Current,
                    change: change.as_str(),
                }
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
