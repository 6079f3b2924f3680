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
    /// The claim naming the tenant: a top-level name (`tenant_id`,
    /// `https://app.example/tenant`) or a dotted path (`o.id`).
    pub tenant_claim: String,
    /// The claim naming the role, same forms; a string or a list of strings.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Role values that make a user an admin (`org:admin` for Clerk, …);
    /// any other value, or none, is a member.
    #[serde(default = "default_admin_roles")]
    pub admin_roles: Vec<String>,
    /// Role values that may record usage (`POST …/usage`): the host
    /// application's backend, which meters its tenants.
    #[serde(default = "default_usage_roles")]
    pub usage_roles: Vec<String>,
    /// The identity provider's JWKS (`JWT_JWKS_URL`): when set, tokens are
    /// verified with its RS256/ES256/EdDSA keys by `kid`, and `algorithms`,
    /// the secret and the PEM key are not used.
    #[serde(default)]
    pub jwks_url: Option<String>,
    pub leeway_seconds: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub default_token_ttl_seconds: u64,
}

fn default_role_claim() -> String {
    "role".into()
}

fn default_admin_roles() -> Vec<String> {
    vec!["admin".into()]
}

fn default_usage_roles() -> Vec<String> {
    vec!["service".into(), "admin".into()]
}

impl AuthSettings {
    pub(super) fn validate(&self, env: AppEnv) -> Result<(), SettingsError> {
        if self.admin_roles.iter().all(|r| r.trim().is_empty()) {
            return Err(SettingsError::invalid(
                "APP__AUTH__ADMIN_ROLES",
                "must name at least one role",
            ));
        }
        if let Some(url) = &self.jwks_url {
            let parsed = url::Url::parse(url)
                .map_err(|_| SettingsError::invalid("JWT_JWKS_URL", "is not a URL"))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(SettingsError::invalid(
                    "JWT_JWKS_URL",
                    "must be an http(s) URL",
                ));
            }
            if env == AppEnv::Production && parsed.scheme() != "https" {
                return Err(SettingsError::invalid(
                    "JWT_JWKS_URL",
                    "must use https in production",
                ));
            }
            // The JWKS is the only key source: the rest does not apply.
            return Ok(());
        }
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
