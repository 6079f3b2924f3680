//! `[plans.*]`: the plan catalog. Stripe owns prices; configuration names them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::SettingsError;

/// A sellable plan. Stripe owns the price; configuration only names it.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanSettings {
    pub name: String,
    pub price_id: String,
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
}

/// `free` is implicit (the plan of a tenant without a subscription).
pub(super) fn validate(plans: &BTreeMap<String, PlanSettings>) -> Result<(), SettingsError> {
    if plans.contains_key("free") {
        return Err(SettingsError::invalid(
            "plans.free",
            "is implicit (the plan of a tenant without a subscription); remove it",
        ));
    }
    Ok(())
}
