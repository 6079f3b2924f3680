//! Typed configuration.
//!
//! Layers, later wins: the embedded `config/default.toml` and `config/{APP_ENV}.toml`
//! (so the binary works from any directory), the same files on disk when present
//! (so operators can edit them without a rebuild), `APP__SECTION__KEY` variables,
//! and finally the well-known variables of README, Configuration (`DATABASE_URL`,
//! `JWT_SECRET`, …).
//! Secrets are `SecretString`s: their `Debug` prints `[REDACTED]`, so a settings dump
//! in a log line cannot leak them.

mod auth;
mod billing;
mod database;
mod jobs;
mod metrics;
mod plans;
mod rate_limit;
mod server;
mod stripe;
mod telemetry;
mod usage;
mod webhooks;

pub use auth::AuthSettings;
pub use billing::{local_origins, BillingSettings, SETTINGS_PAGE_PATH};
pub use database::{Backend, DatabaseSettings};
pub use jobs::JobsSettings;
pub use metrics::MetricsSettings;
pub use plans::{MeterSettings, PlanSettings};
pub use rate_limit::RateLimitSettings;
pub use server::ServerSettings;
pub use stripe::StripeSettings;
pub use telemetry::{LogFormat, TelemetrySettings};
pub use usage::UsageSettings;
pub use webhooks::WebhooksSettings;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::PlanCatalog;

/// The development JWT secret shipped in `config/default.toml`; refused in production.
pub const DEVELOPMENT_JWT_SECRET: &str =
    "tenant-billing-development-secret-do-not-use-in-production";

const EMBEDDED_DEFAULT: &str = include_str!("../../config/default.toml");
const EMBEDDED_DEVELOPMENT: &str = include_str!("../../config/development.toml");
const EMBEDDED_TEST: &str = include_str!("../../config/test.toml");
const EMBEDDED_PRODUCTION: &str = include_str!("../../config/production.toml");

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
    /// `[plans.*]` as written; use `catalog` to look plans up.
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    #[serde(default)]
    pub webhooks: WebhooksSettings,
    #[serde(default)]
    pub plans: BTreeMap<String, PlanSettings>,
    /// `[meters.*]` as written: what plans meter (their limits name them).
    #[serde(default)]
    pub meters: BTreeMap<String, MeterSettings>,
    #[serde(default)]
    pub usage: UsageSettings,
    /// The validated plan catalog built from `plans` when settings load.
    #[serde(skip)]
    pub catalog: PlanCatalog,
}

fn default_env() -> AppEnv {
    AppEnv::Development
}

/// Maps the well-known variables (README, Configuration) onto configuration keys.
const WELL_KNOWN: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("BIND_ADDR", "server.bind_addr"),
    ("JWT_SECRET", "auth.jwt_secret"),
    ("JWT_JWKS_URL", "auth.jwks_url"),
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
                .with_list_parse_key("auth.admin_roles")
                .with_list_parse_key("auth.usage_roles")
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
        settings.catalog = plans::catalog(&settings.plans, &settings.meters)?;
        Ok(settings)
    }

    /// Refuses configurations that would run insecurely or cannot work; each
    /// section checks its own keys.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.database.validate()?;
        self.auth.validate(self.app_env)?;
        plans::catalog(&self.plans, &self.meters)?;
        self.usage.validate()?;
        self.billing.validate()?;
        self.stripe.validate(self.app_env)?;
        self.webhooks.validate()?;
        Ok(())
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
    use secrecy::ExposeSecret;

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
        let ids: Vec<&str> = settings
            .catalog
            .plans()
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(ids, ["free", "pro", "team"]);
        let team = settings.catalog.get("team").unwrap();
        assert_eq!(team.price_id.as_deref(), Some("price_team_monthly"));
        assert!(team.per_seat);
        assert_eq!(team.trial_days, 14);
        assert!(settings.catalog.get("pro").unwrap().trial_days == 0);
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
            &vars(&[
                ("STRIPE_SECRET_KEY", "sk_test_supersecretvalue"),
                ("APP__METRICS__BEARER_TOKEN", "scrape-token-supersecret"),
            ]),
            None,
        )
        .unwrap();
        let dump = format!("{settings:?}");
        assert!(!dump.contains("sk_test_supersecretvalue"));
        assert!(!dump.contains("scrape-token-supersecret"));
        assert!(!dump.contains(DEVELOPMENT_JWT_SECRET));
    }

    #[test]
    fn a_ledger_shorter_than_stripes_redelivery_window_is_refused() {
        let error =
            Settings::load_from(&vars(&[("APP__WEBHOOKS__RETAIN_DAYS", "2")]), None).unwrap_err();
        assert_eq!(error.variable, "webhooks.retain_days");
        let settings =
            Settings::load_from(&vars(&[("APP__WEBHOOKS__RETAIN_DAYS", "3")]), None).unwrap();
        assert_eq!(settings.webhooks.retain_days, 3);
    }

    #[test]
    fn jwks_url_and_admin_roles_come_from_the_environment() {
        let settings = Settings::load_from(
            &vars(&[
                ("JWT_JWKS_URL", "https://idp.example/.well-known/jwks.json"),
                ("APP__AUTH__ADMIN_ROLES", "owner,org:admin"),
                ("APP__AUTH__ROLE_CLAIM", "o.rol"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            settings.auth.jwks_url.as_deref(),
            Some("https://idp.example/.well-known/jwks.json")
        );
        assert_eq!(settings.auth.admin_roles, ["owner", "org:admin"]);
        assert_eq!(settings.auth.role_claim, "o.rol");
        let error = Settings::load_from(
            &vars(&[
                ("APP_ENV", "production"),
                ("JWT_JWKS_URL", "http://idp.example/jwks.json"),
                ("STRIPE_SECRET_KEY", "sk_live_x"),
                ("STRIPE_WEBHOOK_SECRET", "whsec_x"),
            ]),
            None,
        )
        .unwrap_err();
        assert_eq!(error.variable, "JWT_JWKS_URL");
    }

    #[test]
    fn plans_can_be_set_from_the_environment() {
        let settings = Settings::load_from(
            &vars(&[
                ("APP__PLANS__PRO__FEATURES", "api, exports"),
                ("APP__PLANS__TEAM__LIMITS__SEATS", "7"),
            ]),
            None,
        )
        .unwrap();
        let pro = settings.catalog.get("pro").unwrap();
        assert_eq!(pro.features, ["api", "exports"]);
        assert_eq!(settings.catalog.get("team").unwrap().max_seats(), Some(7));
    }

    #[test]
    fn a_priced_free_plan_is_a_configuration_error() {
        let error =
            Settings::load_from(&vars(&[("APP__PLANS__FREE__PRICE_ID", "price_free")]), None)
                .unwrap_err();
        assert_eq!(error.variable, "plans.free.price_id");
    }

    #[test]
    fn unknown_database_scheme_is_a_configuration_error() {
        let error = Settings::load_from(&vars(&[("DATABASE_URL", "mysql://x")]), None).unwrap_err();
        assert_eq!(error.variable, "DATABASE_URL");
    }
}
