//! `[billing]`: redirect rules, customer provisioning, the state cache and the
//! settings page.

use std::time::Duration;

use serde::Deserialize;

use super::SettingsError;

#[derive(Debug, Clone, Deserialize)]
pub struct BillingSettings {
    pub create_customer_on_signup: bool,
    pub allowed_redirect_origins: Vec<String>,
    pub default_success_url: String,
    pub default_cancel_url: String,
    pub default_return_url: String,
    /// Serve `GET /settings/billing`; off answers 404.
    pub settings_page: bool,
    pub customer_claim_ttl_seconds: u64,
    /// How long another instance's write may take to show in `GET …/billing`
    /// here (this instance's own writes show at once); 0 turns the cache off.
    pub state_cache_ttl_ms: u64,
    /// Most tenants whose state one instance keeps in memory.
    pub state_cache_capacity: u64,
}

impl BillingSettings {
    pub fn state_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.state_cache_ttl_ms)
    }
}

impl BillingSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        for origin in &self.allowed_redirect_origins {
            url::Url::parse(origin).map_err(|_| {
                SettingsError::invalid(
                    "billing.allowed_redirect_origins",
                    "must hold absolute origins such as https://app.example.com",
                )
            })?;
        }
        Ok(())
    }
}
