//! `[billing]`: redirect rules, customer provisioning, the state cache and the
//! subscription's life (grace period, serialised writes), and the settings page.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use super::SettingsError;

/// Where the service serves its billing settings page (README, Endpoints).
pub const SETTINGS_PAGE_PATH: &str = "/settings/billing";

#[derive(Debug, Clone, Deserialize)]
pub struct BillingSettings {
    pub create_customer_on_signup: bool,
    pub allowed_redirect_origins: Vec<String>,
    /// Unset: the service's own settings page when `own_origin_redirects` is
    /// on (filled in by `adopt_own_origin`); otherwise a request must name one.
    pub default_success_url: Option<String>,
    pub default_cancel_url: Option<String>,
    pub default_return_url: Option<String>,
    /// Whether the service's own origin (as bound) is an allowed redirect
    /// origin and the default redirect target. On in development, so that
    /// `cargo run` with any `BIND_ADDR` ends on a page that answers; off in
    /// production, where the public origin is not the bound address.
    pub own_origin_redirects: bool,
    /// Serve `GET /settings/billing`; off answers 404.
    pub settings_page: bool,
    pub customer_claim_ttl_seconds: u64,
    /// How long another instance's write may take to show in `GET …/billing`
    /// here (this instance's own writes show at once); 0 turns the cache off.
    pub state_cache_ttl_ms: u64,
    /// Most tenants whose state one instance keeps in memory.
    pub state_cache_capacity: u64,
    /// Days a past_due subscription keeps its plan's entitlements after its
    /// first failed payment (README, Endpoints: "Failed payments").
    #[serde(default = "default_grace_days")]
    pub past_due_grace_days: u32,
    /// How long a subscription write waits for another one of the same
    /// tenant to finish before answering 409.
    #[serde(default = "default_write_wait_ms")]
    pub subscription_write_wait_ms: u64,
}

fn default_grace_days() -> u32 {
    7
}

fn default_write_wait_ms() -> u64 {
    10_000
}

impl BillingSettings {
    pub fn state_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.state_cache_ttl_ms)
    }

    pub fn past_due_grace(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.past_due_grace_days))
    }

    pub fn subscription_write_wait(&self) -> Duration {
        Duration::from_millis(self.subscription_write_wait_ms)
    }

    /// With `own_origin_redirects`, makes the settings page on `bound` the
    /// default success, cancel and return URL (unless configured) and allows
    /// the origins a browser on this machine reaches it by. Called once the
    /// listener is bound, so that port 0 and any `BIND_ADDR` give real URLs.
    pub fn adopt_own_origin(&mut self, bound: SocketAddr) {
        if !self.own_origin_redirects {
            return;
        }
        let origins = local_origins(bound);
        let page = format!("{}{SETTINGS_PAGE_PATH}", origins[0]);
        self.default_success_url
            .get_or_insert_with(|| format!("{page}?checkout=success"));
        self.default_cancel_url
            .get_or_insert_with(|| format!("{page}?checkout=cancel"));
        self.default_return_url.get_or_insert(page);
        for origin in origins {
            if !self.allowed_redirect_origins.contains(&origin) {
                self.allowed_redirect_origins.push(origin);
            }
        }
    }

    pub(super) fn validate(&self) -> Result<(), SettingsError> {
        for origin in &self.allowed_redirect_origins {
            url::Url::parse(origin).map_err(|_| {
                SettingsError::invalid(
                    "billing.allowed_redirect_origins",
                    "must hold absolute origins such as https://app.example.com",
                )
            })?;
        }
        for (key, value) in [
            ("billing.default_success_url", &self.default_success_url),
            ("billing.default_cancel_url", &self.default_cancel_url),
            ("billing.default_return_url", &self.default_return_url),
        ] {
            let absolute = |v: &String| {
                url::Url::parse(v).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            };
            if value.as_ref().is_some_and(|v| !absolute(v)) {
                return Err(SettingsError::invalid(
                    key,
                    "must be an absolute http(s) URL (or unset)",
                ));
            }
        }
        Ok(())
    }
}

/// The origins a browser on this machine reaches a listener bound to `bound`
/// by, the one to print first: an unspecified address (`0.0.0.0`, `[::]`) is
/// reached through loopback, and loopback also by the name `localhost`.
pub fn local_origins(bound: SocketAddr) -> Vec<String> {
    let port = bound.port();
    let ip = match bound.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut origins = vec![format!("http://{host}:{port}")];
    if ip.is_loopback() {
        origins.push(format!("http://localhost:{port}"));
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(own: bool) -> BillingSettings {
        BillingSettings {
            create_customer_on_signup: true,
            allowed_redirect_origins: vec!["https://app.example.com".into()],
            default_success_url: None,
            default_cancel_url: None,
            default_return_url: Some("https://app.example.com/billing".into()),
            own_origin_redirects: own,
            settings_page: true,
            customer_claim_ttl_seconds: 30,
            state_cache_ttl_ms: 0,
            state_cache_capacity: 1,
            past_due_grace_days: 7,
            subscription_write_wait_ms: 0,
        }
    }

    #[test]
    fn the_bound_address_becomes_the_default_redirect_target() {
        let mut billing = settings(true);
        billing.adopt_own_origin("0.0.0.0:4321".parse().unwrap());
        assert_eq!(
            billing.default_success_url.as_deref(),
            Some("http://127.0.0.1:4321/settings/billing?checkout=success")
        );
        assert_eq!(
            billing.default_cancel_url.as_deref(),
            Some("http://127.0.0.1:4321/settings/billing?checkout=cancel")
        );
        // A configured URL stays.
        assert_eq!(
            billing.default_return_url.as_deref(),
            Some("https://app.example.com/billing")
        );
        assert_eq!(
            billing.allowed_redirect_origins,
            [
                "https://app.example.com",
                "http://127.0.0.1:4321",
                "http://localhost:4321"
            ]
        );
    }

    #[test]
    fn without_own_origin_redirects_nothing_is_implied() {
        let mut billing = settings(false);
        billing.adopt_own_origin("127.0.0.1:8080".parse().unwrap());
        assert_eq!(billing.default_success_url, None);
        assert_eq!(
            billing.allowed_redirect_origins,
            ["https://app.example.com"]
        );
    }

    #[test]
    fn local_origins_reach_the_listener() {
        assert_eq!(
            local_origins("[::]:80".parse().unwrap()),
            ["http://[::1]:80", "http://localhost:80"]
        );
        assert_eq!(
            local_origins("192.0.2.7:8080".parse().unwrap()),
            ["http://192.0.2.7:8080"]
        );
    }
}
