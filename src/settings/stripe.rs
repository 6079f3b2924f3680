//! `[stripe]`: the Stripe account (or the bundled simulator) and the retry budget.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{AppEnv, SettingsError};

#[derive(Debug, Clone, Deserialize)]
pub struct StripeSettings {
    pub secret_key: Option<SecretString>,
    pub api_base: String,
    #[serde(default)]
    pub webhook_secrets: Vec<SecretString>,
    pub request_timeout_ms: u64,
    pub max_attempts: u32,
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// Read every configured plan's price from Stripe when serving starts
    /// (in the background) and log the ones Stripe does not have.
    #[serde(default = "enabled")]
    pub check_prices_on_startup: bool,
}

fn enabled() -> bool {
    true
}

impl StripeSettings {
    /// Without a key the service uses the bundled simulator (refused in production).
    pub fn uses_simulator(&self) -> bool {
        self.secret_key
            .as_ref()
            .is_none_or(|key| key.expose_secret().trim().is_empty())
    }
}

impl StripeSettings {
    pub(super) fn validate(&self, env: AppEnv) -> Result<(), SettingsError> {
        if env != AppEnv::Production {
            return Ok(());
        }
        if self.uses_simulator() {
            return Err(SettingsError::invalid(
                "STRIPE_SECRET_KEY",
                "is not set; production cannot use the bundled Stripe simulator",
            ));
        }
        if self.webhook_secrets.is_empty() {
            return Err(SettingsError::invalid(
                "STRIPE_WEBHOOK_SECRET",
                "is not set; production needs the webhook signing secret (whsec_…)",
            ));
        }
        Ok(())
    }
}
