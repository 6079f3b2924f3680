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
    /// The Stripe requests per second every instance and command sharing the
    /// database may send together (one budget, kept through the database).
    /// Unset: 20 in test mode and 80 in live mode, below Stripe's 25 and 100.
    #[serde(default)]
    pub max_requests_per_second: Option<u32>,
    /// How long an interactive request waits for a place in that budget
    /// before it is answered 503 with `Retry-After` (nothing sent).
    #[serde(default = "budget_wait_ms")]
    pub budget_wait_ms: u64,
}

fn budget_wait_ms() -> u64 {
    10_000
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
    /// `live` for a live-mode key (`sk_live_…`, `rk_live_…`), else `test`
    /// (test keys and the simulator): Stripe limits each mode apart.
    pub fn mode(&self) -> &'static str {
        let live = self.secret_key.as_ref().is_some_and(|key| {
            let key = key.expose_secret().trim();
            key.starts_with("sk_live_") || key.starts_with("rk_live_")
        });
        if live {
            "live"
        } else {
            "test"
        }
    }

    /// The shared budget in requests per second (see `max_requests_per_second`).
    pub fn requests_per_second(&self) -> u32 {
        self.max_requests_per_second
            .unwrap_or(if self.mode() == "live" { 80 } else { 20 })
            .max(1)
    }

    pub fn budget_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.budget_wait_ms)
    }

    pub(super) fn validate(&self, env: AppEnv) -> Result<(), SettingsError> {
        if self.max_requests_per_second == Some(0) {
            return Err(SettingsError::invalid(
                "APP__STRIPE__MAX_REQUESTS_PER_SECOND",
                "must be at least 1 (Stripe calls cannot be unlimited)",
            ));
        }
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
