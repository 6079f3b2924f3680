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

/// The database flavour behind a `DATABASE_URL`, read from its scheme. It is
/// configuration, so it lives here: the pool opens connections of this kind
/// and the service asks it (LISTEN only on PostgreSQL) without depending on
/// the database module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// `None` for a scheme that is neither PostgreSQL's nor SQLite's.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }

    /// How logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl DatabaseSettings {
    pub fn connection_timeout(&self) -> Duration {
        Duration::from_millis(self.connection_timeout_ms)
    }

    /// The backend the URL names; `None` only for settings that did not
    /// pass validation.
    pub fn backend(&self) -> Option<Backend> {
        Backend::from_url(self.url.expose_secret())
    }
}

impl DatabaseSettings {
    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        self.backend().ok_or_else(|| {
            SettingsError::invalid(
                "DATABASE_URL",
                "must start with sqlite:// or postgres:// (or postgresql://)",
            )
        })?;
        Ok(())
    }
}
