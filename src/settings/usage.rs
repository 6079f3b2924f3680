//! `[usage]`: how long the usage ledger keeps its events, and how usage is
//! forwarded to Stripe's meters.

use std::time::Duration;

use serde::Deserialize;

use super::SettingsError;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UsageSettings {
    /// Ledger rows are deleted this many days after they were recorded. A
    /// key is recognised as a retry only while its row is kept, and usage is
    /// forwarded to Stripe for up to 35 days, so the floor is 35.
    pub retain_days: u64,
    /// At most one meter event per tenant and meter per this many ms: the
    /// usage recorded meanwhile goes in one batch (Stripe allows one
    /// concurrent call per customer and meter).
    pub forward_interval_ms: u64,
    /// The most ledger events cut into batches in one transaction.
    pub forward_batch_events: i64,
    /// Stripe's 429 slows a tenant's forwarding: the wait doubles from
    /// `forward_interval_ms` up to this.
    pub forward_backoff_max_ms: u64,
    /// Stripe's invoice finalization grace period, as configured in the
    /// Dashboard (Invoice settings; default one hour, at most 72): usage of a
    /// period must reach Stripe within it to be on that period's invoice.
    /// `reconcile --usage` warns about periods past it; the in-process
    /// simulator uses it.
    pub stripe_grace_seconds: u64,
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings {
            retain_days: 400,
            forward_interval_ms: 1000,
            forward_batch_events: 50_000,
            forward_backoff_max_ms: 60_000,
            stripe_grace_seconds: 3600,
        }
    }
}

impl UsageSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        if self.retain_days < 35 {
            return Err(SettingsError::invalid(
                "usage.retain_days",
                "must be at least 35: events may be dated 35 days back, and a ledger \
                 that forgot a key would count its retry again",
            ));
        }
        if self.forward_interval_ms == 0 {
            return Err(SettingsError::invalid(
                "usage.forward_interval_ms",
                "must be at least 1: Stripe takes one meter event per customer and meter at a time",
            ));
        }
        if self.forward_batch_events < 1 {
            return Err(SettingsError::invalid(
                "usage.forward_batch_events",
                "must be at least 1",
            ));
        }
        if self.stripe_grace_seconds > 72 * 3600 {
            return Err(SettingsError::invalid(
                "usage.stripe_grace_seconds",
                "must be at most 259200: Stripe's grace period is at most 72 hours",
            ));
        }
        Ok(())
    }

    pub fn forward_interval(&self) -> Duration {
        Duration::from_millis(self.forward_interval_ms.max(1))
    }

    pub fn forward_backoff_max(&self) -> Duration {
        Duration::from_millis(self.forward_backoff_max_ms.max(self.forward_interval_ms))
    }
}
