//! Combinations of settings that each look fine alone but open a door
//! together. Checked after every section has validated itself, so that a
//! deploy that forgets one setting refuses to start (exit 2, one line
//! naming the variable) instead of serving.
//!
//! - The development JWT secret is compiled into the binary and printed in
//!   the repository: whoever reads it can mint an admin token for any
//!   tenant. It is accepted only in `development`, bound to loopback, with
//!   the simulator (or a Stripe on loopback with a test key).
//! - In production, a JWKS without both `audience` and `issuer` accepts a
//!   token the identity provider issued to any other application.
//! - In production, `/metrics` without a bearer token shows anyone the
//!   traffic of every route.

use std::net::{IpAddr, SocketAddr};

use secrecy::ExposeSecret;

use super::{AppEnv, Settings, SettingsError, DEVELOPMENT_JWT_SECRET};

pub(super) fn refuse_unsafe(settings: &Settings) -> Result<(), SettingsError> {
    refuse_public_secret(settings)?;
    if settings.app_env == AppEnv::Production {
        refuse_open_audience(settings)?;
        refuse_open_metrics(settings)?;
    }
    Ok(())
}

/// The compiled-in secret verifies tokens only where nobody else can reach
/// the service and no real Stripe account is behind it.
fn refuse_public_secret(settings: &Settings) -> Result<(), SettingsError> {
    if !uses_development_secret(settings) {
        return Ok(());
    }
    const FIX: &str = "set JWT_SECRET to a secret of your own (at least 32 characters)";
    if settings.app_env != AppEnv::Development {
        return Err(SettingsError::invalid(
            "JWT_SECRET",
            format!(
                "is the public development secret, accepted only with APP_ENV=development \
                 (APP_ENV is {}); {FIX}",
                settings.app_env.as_str()
            ),
        ));
    }
    if !is_loopback_bind(&settings.server.bind_addr) {
        return Err(SettingsError::invalid(
            "JWT_SECRET",
            format!(
                "is the public development secret, accepted only on a loopback BIND_ADDR \
                 (127.0.0.1, ::1 or localhost); {FIX}, or bind to loopback"
            ),
        ));
    }
    if has_real_stripe_key(settings) {
        return Err(SettingsError::invalid(
            "JWT_SECRET",
            format!(
                "is the public development secret, accepted only with the Stripe simulator, \
                 but STRIPE_SECRET_KEY is a real Stripe key; {FIX}, or unset STRIPE_SECRET_KEY"
            ),
        ));
    }
    Ok(())
}

/// Whether tokens are verified with the compiled-in secret: HS256 is
/// accepted and the secret is the shipped one (a JWKS replaces the secret).
fn uses_development_secret(settings: &Settings) -> bool {
    let auth = &settings.auth;
    auth.jwks_url.is_none()
        && auth.algorithms.iter().any(|a| a == "HS256")
        && auth.jwt_secret.expose_secret() == DEVELOPMENT_JWT_SECRET
}

/// A key that reaches a Stripe account: a live key anywhere, or any key sent
/// to an API base off this machine. A test key for a simulator on loopback
/// (`stripe-sim` run by hand) is not one.
fn has_real_stripe_key(settings: &Settings) -> bool {
    let stripe = &settings.stripe;
    let Some(key) = stripe
        .secret_key
        .as_ref()
        .filter(|_| !stripe.uses_simulator())
    else {
        return false;
    };
    let key = key.expose_secret().trim();
    let live = key.starts_with("sk_live_") || key.starts_with("rk_live_");
    live || !is_loopback_url(&stripe.api_base)
}

/// `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`. Anything else,
/// including a host name that might resolve to loopback, counts as public:
/// this check does no I/O and fails closed.
pub(super) fn is_loopback_bind(bind_addr: &str) -> bool {
    if let Ok(addr) = bind_addr.parse::<SocketAddr>() {
        return addr.ip().is_loopback();
    }
    bind_addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| host == "localhost" && port.parse::<u16>().is_ok())
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    }
}

/// A shared identity provider issues tokens to many applications; only
/// `aud` and `iss` tell ours apart.
fn refuse_open_audience(settings: &Settings) -> Result<(), SettingsError> {
    let auth = &settings.auth;
    if auth.jwks_url.is_none() {
        return Ok(());
    }
    for (value, variable, claim) in [
        (&auth.audience, "APP__AUTH__AUDIENCE", "aud"),
        (&auth.issuer, "APP__AUTH__ISSUER", "iss"),
    ] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            return Err(SettingsError::invalid(
                variable,
                format!(
                    "is not set; with JWT_JWKS_URL in production it is required, or a token \
                     the identity provider issued to another application would be accepted \
                     (set it to the `{claim}` your provider puts in this service's tokens)"
                ),
            ));
        }
    }
    Ok(())
}

fn refuse_open_metrics(settings: &Settings) -> Result<(), SettingsError> {
    let metrics = &settings.metrics;
    if metrics.enabled && metrics.token().is_none() {
        return Err(SettingsError::invalid(
            "APP__METRICS__BEARER_TOKEN",
            "is not set while /metrics is enabled in production; set it (scrapes then send \
             it as a bearer token) or set APP__METRICS__ENABLED=false",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_are_recognised_without_resolving_names() {
        for bind in [
            "127.0.0.1:8080",
            "127.0.0.1:0",
            "[::1]:8080",
            "localhost:8080",
        ] {
            assert!(is_loopback_bind(bind), "{bind}");
        }
        for bind in [
            "0.0.0.0:8080",
            "[::]:8080",
            "192.0.2.7:8080",
            "billing.internal:8080",
            "localhost",
            "",
        ] {
            assert!(!is_loopback_bind(bind), "{bind}");
        }
    }

    #[test]
    fn loopback_api_bases_are_recognised() {
        assert!(is_loopback_url("http://127.0.0.1:12111/"));
        assert!(is_loopback_url("http://[::1]:12111"));
        assert!(is_loopback_url("http://localhost:12111"));
        assert!(!is_loopback_url("https://api.stripe.com"));
        assert!(!is_loopback_url("not a url"));
    }
}
