//! `[webhooks]`: how long the Stripe event ledger keeps its rows.

use serde::Deserialize;

use super::SettingsError;

/// Stripe redelivers an event for up to three days; the ledger must remember
/// it at least that long, or a late redelivery would be applied again.
pub const STRIPE_REDELIVERY_DAYS: u64 = 3;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhooksSettings {
    /// Ledger rows are deleted this many days after they were received.
    pub retain_days: u64,
}

impl Default for WebhooksSettings {
    fn default() -> Self {
        WebhooksSettings { retain_days: 30 }
    }
}

impl WebhooksSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if self.retain_days < STRIPE_REDELIVERY_DAYS {
            return Err(SettingsError::invalid(
                "webhooks.retain_days",
                "must be at least 3: Stripe redelivers events for up to 3 days, and a \
                 ledger that forgot one would apply its redelivery again",
            ));
        }
        Ok(())
    }
}
