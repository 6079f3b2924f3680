//! `[database]`: where the data lives and how the pool waits for it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::SettingsError;

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// May carry a password, hence secret.
    pub url: SecretString,
    pub pool_size: u32,
    pub connection_timeout_ms: u64,
    pub sqlite_busy_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn connection_timeout(&self) -> Duration {
        Duration::from_millis(self.connection_timeout_ms)
    }
}

impl DatabaseSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        crate::db::Backend::from_url(self.url.expose_secret()).map_err(|_| {
            SettingsError::invalid(
                "DATABASE_URL",
                "must start with sqlite:// or postgres:// (or postgresql://)",
            )
        })?;
        Ok(())
    }
}
