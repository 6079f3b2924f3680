//! `[plans.*]`: the plan catalog (README, Configuration). Stripe owns prices; configuration
//! names them and says what each plan grants.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::SettingsError;
use crate::domain::{Aggregation, Meter, Overage, Plan, PlanCatalog, PlanPrice};

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
    /// `block` (default) refuses usage past a meter's limit; `allow` records it.
    #[serde(default)]
    pub overage: Option<String>,
    /// Meter id → the metered Stripe price billing that meter's usage on this
    /// plan (Checkout and plan changes add it as a subscription item).
    #[serde(default)]
    pub metered_prices: BTreeMap<String, String>,
    /// Meter id → cents per unit, seeding the in-process simulator's metered
    /// price (with the plan's limit free when `overage = "allow"`).
    #[serde(default)]
    pub metered_unit_amounts: BTreeMap<String, i64>,
    /// Seeds the in-process simulator's price and is shown until Stripe's
    /// price has been read; Stripe stays the source of truth.
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    /// A price of its own per other currency: `prices = { eur = "price_…" }`.
    #[serde(default)]
    pub prices: BTreeMap<String, String>,
    /// Amounts in other currencies (of `prices`, or of `price_id`'s
    /// `currency_options`): seed the simulator, shown until Stripe's are read.
    #[serde(default)]
    pub currency_amounts: BTreeMap<String, i64>,
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

/// One `[meters.ID]` table: something plans meter, each plan's limit for it
/// being `limits.ID`.
#[derive(Debug, Clone, Deserialize)]
pub struct MeterSettings {
    /// Shown on the settings page.
    pub name: String,
    /// What one unit is ("calls", "GB"), shown beside the numbers.
    #[serde(default)]
    pub unit: String,
    /// `sum` of the events' quantities, or `count` of the events.
    #[serde(default = "default_aggregation")]
    pub aggregation: String,
    /// The `event_name` of the Stripe meter (a `sum` meter) this meter's usage
    /// is forwarded to; absent: never sent to Stripe.
    #[serde(default)]
    pub stripe_meter: Option<String>,
}

fn default_aggregation() -> String {
    "sum".into()
}

/// Builds and validates the catalog; the error names the key to fix.
pub(super) fn catalog(
    plans: &BTreeMap<String, PlanSettings>,
    meters: &BTreeMap<String, MeterSettings>,
) -> Result<PlanCatalog, SettingsError> {
    let meters = meters
        .iter()
        .map(|(id, meter)| {
            let aggregation = Aggregation::parse(&meter.aggregation).ok_or_else(|| {
                SettingsError::invalid(format!("meters.{id}.aggregation"), "must be sum or count")
            })?;
            Ok(Meter {
                id: id.clone(),
                name: meter.name.clone(),
                unit: meter.unit.clone(),
                aggregation,
                stripe_meter: meter.stripe_meter.clone().filter(|s| !s.trim().is_empty()),
            })
        })
        .collect::<Result<Vec<_>, SettingsError>>()?;
    let plans = plans
        .iter()
        .map(|(id, plan)| {
            let overage = match plan.overage.as_deref() {
                None => Overage::Block,
                Some(value) => Overage::parse(value).ok_or_else(|| {
                    SettingsError::invalid(format!("plans.{id}.overage"), "must be block or allow")
                })?,
            };
            Ok(Plan {
                id: id.clone(),
                name: plan.name.clone(),
                price_id: plan.price_id.clone().filter(|p| !p.trim().is_empty()),
                rank: plan.rank,
                trial_days: plan.trial_days,
                per_seat: plan.per_seat,
                features: plan.features.clone(),
                limits: plan.limits.clone(),
                overage,
                configured_price: match (&plan.unit_amount, &plan.currency, &plan.interval) {
                    (Some(amount), Some(currency), Some(interval)) => Some(PlanPrice {
                        amount: *amount,
                        currency: currency.clone(),
                        interval: interval.clone(),
                    }),
                    _ => None,
                },
                prices: plan.prices.clone(),
                currency_amounts: plan.currency_amounts.clone(),
                metered_prices: plan.metered_prices.clone(),
                metered_unit_amounts: plan.metered_unit_amounts.clone(),
            })
        })
        .collect::<Result<Vec<_>, SettingsError>>()?;
    PlanCatalog::with_meters(plans, meters).map_err(|e| {
        SettingsError::invalid(format!("{}.{}.{}", e.section, e.plan, e.key), e.problem)
    })
}
