//! `[usage]`: how long the usage ledger keeps its events.

use serde::Deserialize;

use super::SettingsError;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UsageSettings {
    /// Ledger rows are deleted this many days after they were recorded. A
    /// key is recognised as a retry only while its row is kept, and usage is
    /// forwarded to Stripe for up to 35 days, so the floor is 35.
    pub retain_days: u64,
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings { retain_days: 400 }
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
        Ok(())
    }
}
