//! `[metrics]`: the Prometheus endpoint.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `GET /metrics` on the main listener. A scrape reveals traffic shapes
/// (routes, error rates), not tenant data; the optional bearer token keeps
/// it for the monitoring system when the listener is public.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Off: `/metrics` answers 404 and nothing is recorded.
    pub enabled: bool,
    /// When set, a scrape must send `Authorization: Bearer <token>`.
    pub bearer_token: Option<SecretString>,
}

impl MetricsSettings {
    /// The token scrapes must send; a blank one counts as none (it would
    /// otherwise match a request that sends no token at all).
    pub fn token(&self) -> Option<&SecretString> {
        self.bearer_token
            .as_ref()
            .filter(|token| !token.expose_secret().trim().is_empty())
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            bearer_token: None,
        }
    }
}
