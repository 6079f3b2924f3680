//! Typed configuration.
//!
//! Layers, later wins: the embedded `config/default.toml` and `config/{APP_ENV}.toml`
//! (so the binary works from any directory), the same files on disk when present
//! (so operators can edit them without a rebuild), `APP__SECTION__KEY` variables,
//! and finally the well-known variables of SPEC §2 (`DATABASE_URL`, `JWT_SECRET`, …).
//! Secrets are `SecretString`s: their `Debug` prints `[REDACTED]`, so a settings dump
//! in a log line cannot leak them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The development JWT secret shipped in `config/default.toml`; refused in production.
pub const DEVELOPMENT_JWT_SECRET: &str =
    "tenant-billing-development-secret-do-not-use-in-production";

const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");
const EMBEDDED_DEVELOPMENT: &str = include_str!("../config/development.toml");
const EMBEDDED_TEST: &str = include_str!("../config/test.toml");
const EMBEDDED_PRODUCTION: &str = include_str!("../config/production.toml");

/// Which configuration layer applies, from `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

impl AppEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Test => "test",
            AppEnv::Production => "production",
        }
    }

    fn embedded_layer(self) -> &'static str {
        match self {
            AppEnv::Development => EMBEDDED_DEVELOPMENT,
            AppEnv::Test => EMBEDDED_TEST,
            AppEnv::Production => EMBEDDED_PRODUCTION,
        }
    }
}

impl std::str::FromStr for AppEnv {
    type Err = SettingsError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "development" | "dev" => Ok(AppEnv::Development),
            "test" => Ok(AppEnv::Test),
            "production" | "prod" => Ok(AppEnv::Production),
            _ => Err(SettingsError::invalid(
                "APP_ENV",
                "must be one of development, test, production",
            )),
        }
    }
}

/// A configuration problem: names the variable to fix, never its value.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {variable} {problem}")]
pub struct SettingsError {
    pub variable: String,
    pub problem: String,
}

impl SettingsError {
    pub fn invalid(variable: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(skip, default = "default_env")]
    pub app_env: AppEnv,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub stripe: StripeSettings,
    pub billing: BillingSettings,
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub jobs: JobsSettings,
    #[serde(default)]
    pub plans: BTreeMap<String, PlanSettings>,
}

fn default_env() -> AppEnv {
    AppEnv::Development
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind_addr: String,
    pub workers: usize,
    pub max_blocking_threads_per_worker: usize,
    pub max_body_bytes: usize,
}

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
}

impl StripeSettings {
    /// Without a key the service uses the bundled simulator (refused in production).
    pub fn uses_simulator(&self) -> bool {
        self.secret_key
            .as_ref()
            .is_none_or(|key| key.expose_secret().trim().is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BillingSettings {
    pub create_customer_on_signup: bool,
    pub allowed_redirect_origins: Vec<String>,
    pub default_success_url: String,
    pub default_cancel_url: String,
    pub default_return_url: String,
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

/// The outbox workers (`[jobs]`): how many, how often they look for work,
/// and how long a failing job is retried before it is parked as dead.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobsSettings {
    /// Run workers in `serve`. Off for tests that must see jobs stay queued.
    pub enabled: bool,
    /// Concurrent workers per instance.
    pub workers: usize,
    /// How often an idle worker looks for due jobs (enqueues in this
    /// instance wake a worker at once; this bounds the latency for others).
    pub poll_interval_ms: u64,
    /// A claimed job's lease; renewed while it runs, so it only lapses when
    /// its worker died.
    pub lease_seconds: u64,
    /// Backoff after the first failure; doubles per attempt up to the cap.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A job still failing this long after it was queued is parked as dead.
    pub retry_horizon_seconds: u64,
}

impl Default for JobsSettings {
    fn default() -> Self {
        JobsSettings {
            enabled: true,
            workers: 2,
            poll_interval_ms: 1000,
            lease_seconds: 30,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            retry_horizon_seconds: 3 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A sellable plan. Stripe owns the price; configuration only names it.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanSettings {
    pub name: String,
    pub price_id: String,
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
}

/// Maps SPEC §2's well-known variables onto configuration keys.
const WELL_KNOWN: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("BIND_ADDR", "server.bind_addr"),
    ("JWT_SECRET", "auth.jwt_secret"),
    ("STRIPE_SECRET_KEY", "stripe.secret_key"),
    ("STRIPE_API_BASE", "stripe.api_base"),
];

impl Settings {
    /// Loads from the process environment and `./config` (or `APP_CONFIG_DIR`).
    pub fn load() -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let config_dir = vars
            .get("APP_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::load_from(&vars, Some(&config_dir))
    }

    /// Loads from an explicit variable map: tests use this so that they never
    /// depend on (or mutate) the process environment.
    pub fn load_from(
        vars: &HashMap<String, String>,
        config_dir: Option<&Path>,
    ) -> Result<Settings, SettingsError> {
        let app_env: AppEnv = vars
            .get("APP_ENV")
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(AppEnv::Development);

        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULT,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from_str(
                app_env.embedded_layer(),
                config::FileFormat::Toml,
            ));
        if let Some(dir) = config_dir {
            builder = builder
                .add_source(config::File::from(dir.join("default.toml")).required(false))
                .add_source(
                    config::File::from(dir.join(format!("{}.toml", app_env.as_str())))
                        .required(false),
                );
        }
        let app_vars: HashMap<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("APP__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("billing.allowed_redirect_origins")
                .with_list_parse_key("auth.algorithms")
                .try_parsing(true)
                .source(Some(app_vars)),
        );
        for (variable, key) in WELL_KNOWN {
            if let Some(value) = vars.get(*variable) {
                builder = builder
                    .set_override(*key, value.clone())
                    .map_err(|e| SettingsError::invalid(*variable, e.to_string()))?;
            }
        }
        if let Some(value) = vars.get("STRIPE_WEBHOOK_SECRET") {
            let secrets: Vec<String> = value
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            builder = builder
                .set_override("stripe.webhook_secrets", secrets)
                .map_err(|e| SettingsError::invalid("STRIPE_WEBHOOK_SECRET", e.to_string()))?;
        }

        let config = builder
            .build()
            .map_err(|e| SettingsError::invalid("configuration", redact_config_error(&e)))?;
        let mut settings: Settings = config
            .try_deserialize()
            .map_err(|e| SettingsError::invalid("configuration", redact_config_error(&e)))?;
        settings.app_env = app_env;
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses configurations that would run insecurely or cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let database_url = self.database.url.expose_secret();
        crate::db::Backend::from_url(database_url).map_err(|_| {
            SettingsError::invalid(
                "DATABASE_URL",
                "must start with sqlite:// or postgres:// (or postgresql://)",
            )
        })?;
        if self.auth.algorithms.is_empty() {
            return Err(SettingsError::invalid(
                "APP__AUTH__ALGORITHMS",
                "must name at least one of HS256, RS256, ES256",
            ));
        }
        for algorithm in &self.auth.algorithms {
            if !matches!(algorithm.as_str(), "HS256" | "RS256" | "ES256") {
                return Err(SettingsError::invalid(
                    "APP__AUTH__ALGORITHMS",
                    "accepts only HS256, RS256 and ES256",
                ));
            }
        }
        let wants_public_key = self
            .auth
            .algorithms
            .iter()
            .any(|a| a == "RS256" || a == "ES256");
        if wants_public_key
            && self.auth.public_key_pem.is_none()
            && self.auth.public_key_path.is_none()
        {
            return Err(SettingsError::invalid(
                "APP__AUTH__PUBLIC_KEY_PATH",
                "is required when RS256 or ES256 is configured",
            ));
        }
        let uses_hs256 = self.auth.algorithms.iter().any(|a| a == "HS256");
        if uses_hs256 && self.auth.jwt_secret.expose_secret().len() < 32 {
            return Err(SettingsError::invalid(
                "JWT_SECRET",
                "must be at least 32 characters",
            ));
        }
        for name in self.plans.keys() {
            if name == "free" {
                return Err(SettingsError::invalid(
                    "plans.free",
                    "is implicit (the plan of a tenant without a subscription); remove it",
                ));
            }
        }
        for origin in &self.billing.allowed_redirect_origins {
            url::Url::parse(origin).map_err(|_| {
                SettingsError::invalid(
                    "billing.allowed_redirect_origins",
                    "must hold absolute origins such as https://app.example.com",
                )
            })?;
        }
        if self.app_env == AppEnv::Production {
            if uses_hs256 && self.auth.jwt_secret.expose_secret() == DEVELOPMENT_JWT_SECRET {
                return Err(SettingsError::invalid(
                    "JWT_SECRET",
                    "is the development secret; set a strong secret for production",
                ));
            }
            if self.stripe.uses_simulator() {
                return Err(SettingsError::invalid(
                    "STRIPE_SECRET_KEY",
                    "is not set; production cannot use the bundled Stripe simulator",
                ));
            }
            if self.stripe.webhook_secrets.is_empty() {
                return Err(SettingsError::invalid(
                    "STRIPE_WEBHOOK_SECRET",
                    "is not set; production needs the webhook signing secret (whsec_…)",
                ));
            }
        }
        Ok(())
    }

    /// The plan code whose price is `price_id`, if configured.
    pub fn plan_for_price(&self, price_id: &str) -> Option<&str> {
        self.plans
            .iter()
            .find(|(_, plan)| plan.price_id == price_id)
            .map(|(code, _)| code.as_str())
    }
}

/// `config` errors may quote values; keep only the structural part.
fn redact_config_error(error: &config::ConfigError) -> String {
    match error {
        config::ConfigError::Type { key, expected, .. } => match key {
            Some(key) => format!("has the wrong type at `{key}` (expected {expected})"),
            None => format!("has the wrong type (expected {expected})"),
        },
        config::ConfigError::NotFound(key) => format!("is missing `{key}`"),
        other => {
            let text = other.to_string();
            // Parse errors name the file and line, never a secret value we know of.
            text.lines().next().unwrap_or("is invalid").to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn development_defaults_need_no_environment() {
        let settings = Settings::load_from(&vars(&[]), None).unwrap();
        assert_eq!(settings.app_env, AppEnv::Development);
        assert_eq!(settings.server.bind_addr, "127.0.0.1:8080");
        assert_eq!(
            settings.database.url.expose_secret(),
            "sqlite://data/tenant-billing.db"
        );
        assert!(settings.stripe.uses_simulator());
        assert_eq!(settings.plans["pro"].price_id, "price_pro_monthly");
    }

    #[test]
    fn well_known_variables_override_files() {
        let settings = Settings::load_from(
            &vars(&[
                ("DATABASE_URL", "postgres://u@localhost/db"),
                ("BIND_ADDR", "127.0.0.1:9999"),
                ("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b"),
                ("APP__BILLING__CREATE_CUSTOMER_ON_SIGNUP", "false"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(settings.server.bind_addr, "127.0.0.1:9999");
        assert_eq!(settings.stripe.webhook_secrets.len(), 2);
        assert!(!settings.billing.create_customer_on_signup);
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let error = Settings::load_from(
            &vars(&[
                ("APP_ENV", "production"),
                ("STRIPE_SECRET_KEY", "sk_live_x"),
                ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ]),
            None,
        )
        .unwrap_err();
        assert_eq!(error.variable, "JWT_SECRET");
    }

    #[test]
    fn production_refuses_the_simulator() {
        let error = Settings::load_from(
            &vars(&[
                ("APP_ENV", "production"),
                ("JWT_SECRET", "a-production-secret-that-is-long-enough-1234"),
            ]),
            None,
        )
        .unwrap_err();
        assert_eq!(error.variable, "STRIPE_SECRET_KEY");
    }

    #[test]
    fn secrets_do_not_print() {
        let settings = Settings::load_from(
            &vars(&[("STRIPE_SECRET_KEY", "sk_test_supersecretvalue")]),
            None,
        )
        .unwrap();
        let dump = format!("{settings:?}");
        assert!(!dump.contains("sk_test_supersecretvalue"));
        assert!(!dump.contains(DEVELOPMENT_JWT_SECRET));
    }

    #[test]
    fn unknown_database_scheme_is_a_configuration_error() {
        let error = Settings::load_from(&vars(&[("DATABASE_URL", "mysql://x")]), None).unwrap_err();
        assert_eq!(error.variable, "DATABASE_URL");
    }
}
