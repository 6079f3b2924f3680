//! `GET …/billing/plans` and the startup check of the configured prices.
//!
//! Prices belong to Stripe: the amounts shown are Stripe's once read (a
//! price's amount never changes at Stripe, so one read at startup is enough),
//! the configured seed values until then.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use super::{Billing, BillingState};
use crate::db::DbError;
use crate::domain::{Plan, PlanChange, PlanPrice, TenantId};
use crate::stripe::Priority;

/// A price as Stripe has it: its own currency and amount, and its amounts
/// in other currencies (`currency_options`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownPrice {
    price: PlanPrice,
    options: BTreeMap<String, i64>,
}

/// Stripe's prices for the configured plans, as read at startup.
#[derive(Debug, Default)]
pub struct PriceBook {
    prices: RwLock<HashMap<String, KnownPrice>>,
}

impl PriceBook {
    fn get(&self, price_id: &str) -> Option<KnownPrice> {
        let prices = self.prices.read().unwrap_or_else(|e| e.into_inner());
        prices.get(price_id).cloned()
    }

    fn insert(&self, price_id: String, price: KnownPrice) {
        let mut prices = self.prices.write().unwrap_or_else(|e| e.into_inner());
        prices.insert(price_id, price);
    }
}

/// A plan's price in one currency: the price to bill and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChoice {
    pub price_id: String,
    pub currency: String,
    /// Stripe's amount once read, else the configured one (none if neither).
    pub amount: Option<i64>,
    pub interval: Option<String>,
}

/// One plan as this tenant sees it (a row of `GET …/billing/plans`; README,
/// Endpoints): the plan, its price and where it stands against the
/// tenant's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOffer {
    pub plan: Plan,
    /// In the tenant's currency: Stripe's price once read, else the
    /// configured seed; none for `free` (or a plan not sold in that currency).
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
    /// `plan`'s main price, its currency, amount and interval (Stripe's once
    /// read, else configured).
    fn main_price(&self, plan: &Plan) -> Option<(String, Option<KnownPrice>)> {
        let id = plan.price_id.clone()?;
        let known = self.prices.get(&id);
        Some((id, known))
    }

    /// The currencies `plan` is sold in, its main price's first.
    pub fn plan_currencies(&self, plan: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, known)) = self.main_price(plan) {
            let own = known
                .as_ref()
                .map(|k| k.price.currency.clone())
                .or_else(|| plan.configured_price.as_ref().map(|p| p.currency.clone()));
            out.extend(own);
            if let Some(k) = &known {
                out.extend(k.options.keys().cloned());
            }
        }
        out.extend(plan.prices.keys().cloned());
        out.extend(plan.currency_amounts.keys().cloned());
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert(c.clone()));
        out
    }

    /// What `plan` costs in `currency` and which price bills it: the plan's
    /// own price in that currency, else its main price when that currency is
    /// the main price's or one of its `currency_options`. `None`: not sold
    /// in that currency.
    pub fn price_in(&self, plan: &Plan, currency: &str) -> Option<PriceChoice> {
        let configured_interval = plan.configured_price.as_ref().map(|p| p.interval.clone());
        if let Some(id) = plan.prices.get(currency) {
            let known = self.prices.get(id);
            return Some(PriceChoice {
                price_id: id.clone(),
                currency: currency.to_owned(),
                amount: known
                    .as_ref()
                    .map(|k| k.price.amount)
                    .or_else(|| plan.currency_amounts.get(currency).copied()),
                interval: known.map(|k| k.price.interval).or(configured_interval),
            });
        }
        let (id, known) = self.main_price(plan)?;
        let own = known
            .as_ref()
            .map(|k| k.price.clone())
            .or_else(|| plan.configured_price.clone());
        let amount = match own.as_ref() {
            Some(p) if p.currency == currency => Some(Some(p.amount)),
            _ => known
                .as_ref()
                .and_then(|k| k.options.get(currency).copied())
                .or_else(|| plan.currency_amounts.get(currency).copied())
                .map(Some),
        }?;
        Some(PriceChoice {
            price_id: id,
            currency: currency.to_owned(),
            amount,
            interval: own.map(|p| p.interval).or(configured_interval),
        })
    }

    /// The currency `state`'s tenant pays `plan` in: the one fixed by its
    /// first subscription, else its country's when the plan is sold in it,
    /// else the plan's main one.
    pub fn tenant_currency(&self, state: &BillingState, plan: &Plan) -> Option<String> {
        if let Some(fixed) = &state.currency {
            return Some(fixed.clone());
        }
        let offered = self.plan_currencies(plan);
        state
            .billing_address
            .country
            .and_then(|c| c.default_currency())
            .filter(|c| offered.iter().any(|o| o == c))
            .map(str::to_owned)
            .or_else(|| offered.first().cloned())
    }

    /// `plan`'s price as `state`'s tenant would pay it (none for `free`).
    pub fn price_for_tenant(&self, state: &BillingState, plan: &Plan) -> Option<PlanPrice> {
        let currency = self.tenant_currency(state, plan)?;
        let choice = self.price_in(plan, &currency)?;
        Some(PlanPrice {
            amount: choice.amount?,
            currency: choice.currency,
            interval: choice.interval.unwrap_or_else(|| "month".into()),
        })
    }

    /// Every plan, lowest rank first, as this tenant sees it, priced in its
    /// currency.
    pub async fn plans(&self, tenant: &TenantId) -> Result<Vec<PlanOffer>, DbError> {
        let state = self.state(tenant).await?;
        let catalog = self.catalog();
        Ok(catalog
            .plans()
            .iter()
            .map(|plan| PlanOffer {
                price: self.price_for_tenant(&state, plan),
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
        Priority::Background.scope(self.read_prices()).await
    }

    async fn read_prices(&self) -> Vec<PriceProblem> {
        let mut missing = Vec::new();
        for plan in self.catalog().plans() {
            for price_id in plan.price_ids() {
                match self.stripe.retrieve_price(price_id).await {
                    Ok(Some(price)) => {
                        if let (Some(amount), Some(interval)) = (price.unit_amount, price.interval)
                        {
                            self.prices.insert(
                                price_id.clone(),
                                KnownPrice {
                                    price: PlanPrice {
                                        amount,
                                        currency: price.currency,
                                        interval,
                                    },
                                    options: price.currency_options,
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
        }
        missing
    }
}
