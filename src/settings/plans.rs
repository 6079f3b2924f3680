//! `[plans.*]`: the plan catalog (README, Configuration). Stripe owns prices; configuration
//! names them and says what each plan grants.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::SettingsError;
use crate::domain::{Plan, PlanCatalog, PlanPrice};

/// One `[plans.ID]` table as written. `free` may be omitted (its defaults:
/// no features, no limits) but never has a price.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanSettings {
    pub name: String,
    #[serde(default)]
    pub price_id: Option<String>,
    #[serde(default)]
    pub rank: i64,
    #[serde(default)]
    pub trial_days: u32,
    #[serde(default)]
    pub per_seat: bool,
    /// A list, or a comma-separated string (`APP__PLANS__PRO__FEATURES=a,b`).
    #[serde(default, deserialize_with = "list_or_commas")]
    pub features: Vec<String>,
    #[serde(default)]
    pub limits: BTreeMap<String, i64>,
    /// Seeds the in-process simulator's price and is shown until Stripe's
    /// price has been read; Stripe stays the source of truth.
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
}

/// Environment variables cannot hold a TOML list; accept "a,b" as well.
fn list_or_commas<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    Ok(match ListOrString::deserialize(deserializer)? {
        ListOrString::List(list) => list,
        ListOrString::String(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Builds and validates the catalog; the error names the key to fix.
pub(super) fn catalog(
    plans: &BTreeMap<String, PlanSettings>,
) -> Result<PlanCatalog, SettingsError> {
    let plans = plans
        .iter()
        .map(|(id, plan)| Plan {
            id: id.clone(),
            name: plan.name.clone(),
            price_id: plan.price_id.clone().filter(|p| !p.trim().is_empty()),
            rank: plan.rank,
            trial_days: plan.trial_days,
            per_seat: plan.per_seat,
            features: plan.features.clone(),
            limits: plan.limits.clone(),
            configured_price: match (&plan.unit_amount, &plan.currency, &plan.interval) {
                (Some(amount), Some(currency), Some(interval)) => Some(PlanPrice {
                    amount: *amount,
                    currency: currency.clone(),
                    interval: interval.clone(),
                }),
                _ => None,
            },
        })
        .collect();
    PlanCatalog::new(plans)
        .map_err(|e| SettingsError::invalid(format!("plans.{}.{}", e.plan, e.key), e.problem))
}
