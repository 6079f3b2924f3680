//! `[auth]`: how bearer tokens are verified and minted.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{AppEnv, SettingsError, DEVELOPMENT_JWT_SECRET};

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: SecretString,
    pub algorithms: Vec<String>,
    pub public_key_pem: Option<String>,
    pub public_key_path: Option<PathBuf>,
    pub tenant_claim: String,
    pub leeway_seconds: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub default_token_ttl_seconds: u64,
}

impl AuthSettings {
    pub(super) fn validate(&self, env: AppEnv) -> Result<(), SettingsError> {
        if self.algorithms.is_empty() {
            return Err(SettingsError::invalid(
                "APP__AUTH__ALGORITHMS",
                "must name at least one of HS256, RS256, ES256",
            ));
        }
        for algorithm in &self.algorithms {
            if !matches!(algorithm.as_str(), "HS256" | "RS256" | "ES256") {
                return Err(SettingsError::invalid(
                    "APP__AUTH__ALGORITHMS",
                    "accepts only HS256, RS256 and ES256",
                ));
            }
        }
        let wants_public_key = self.algorithms.iter().any(|a| a == "RS256" || a == "ES256");
        if wants_public_key && self.public_key_pem.is_none() && self.public_key_path.is_none() {
            return Err(SettingsError::invalid(
                "APP__AUTH__PUBLIC_KEY_PATH",
                "is required when RS256 or ES256 is configured",
            ));
        }
        let uses_hs256 = self.algorithms.iter().any(|a| a == "HS256");
        if uses_hs256 && self.jwt_secret.expose_secret().len() < 32 {
            return Err(SettingsError::invalid(
                "JWT_SECRET",
                "must be at least 32 characters",
            ));
        }
        if env == AppEnv::Production
            && uses_hs256
            && self.jwt_secret.expose_secret() == DEVELOPMENT_JWT_SECRET
        {
            return Err(SettingsError::invalid(
                "JWT_SECRET",
                "is the development secret; set a strong secret for production",
            ));
        }
        Ok(())
    }
}
