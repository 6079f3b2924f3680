//! An identity provider's JWKS: fetched, cached and refreshed (README, Configuration: `JWT_JWKS_URL`).
//!
//! Policy, since jsonwebtoken only parses key sets:
//! - keys are kept for the response's `Cache-Control: max-age`, clamped to
//!   [1 min, 24 h] (5 min without one), then refreshed in the background;
//! - a token whose `kid` is unknown triggers at most one refetch per 30 s,
//!   and concurrent misses share it (single flight), so a flood of forged
//!   kids cannot turn into a flood of requests to the provider;
//! - a failed fetch keeps the last good keys; until the first success the
//!   verifier reports "no keys" (503, not 401: the token may well be valid)
//!   and the refresher retries with backoff;
//! - only signing keys of the three accepted types are kept: RSA (RS256),
//!   P-256 (ES256) and Ed25519 (EdDSA), each usable with that one algorithm.
//!   Symmetric (`oct`) keys are never taken from a key set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A key and the one algorithm it may verify.
pub struct KeyEntry {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// What a `kid` lookup found.
pub enum KeyLookup {
    Found(Arc<KeyEntry>),
    /// Keys are loaded but none has this id (even after a refetch, if one was due).
    Unknown,
    /// No key set was ever fetched successfully.
    NoKeys,
}

struct KeySet {
    keys: HashMap<String, Arc<KeyEntry>>,
    ttl: Duration,
}

/// At most one refetch for unknown kids per this interval.
pub const MISS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_TTL: Duration = Duration::from_secs(300);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the JWKS endpoint answered {0}")]
    Status(u16),
    #[error("the JWKS response is not a key set")]
    NotAKeySet,
    #[error("the JWKS has no usable signing key (RS256, ES256 or EdDSA with a kid)")]
    NoUsableKey,
}

pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching: concurrent fetches queue here and find the result.
    fetching: tokio::sync::Mutex<()>,
    /// Bumped by every successful fetch.
    generation: AtomicU64,
    last_miss_fetch: Mutex<Option<Instant>>,
}

impl JwksCache {
    pub fn new(url: &str) -> Result<JwksCache, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the JWKS HTTP client: {e}"))?;
        Ok(JwksCache {
            url: url.to_owned(),
            client,
            keys: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            last_miss_fetch: Mutex::new(None),
        })
    }

    pub fn has_keys(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lookup(&self, kid: &str) -> Option<KeyLookup> {
        let set = self.current()?;
        Some(match set.keys.get(kid) {
            Some(entry) => KeyLookup::Found(entry.clone()),
            None => KeyLookup::Unknown,
        })
    }

    /// The key with id `kid`, refetching the set once if it is unknown and
    /// a refetch is due.
    pub async fn key(&self, kid: &str) -> KeyLookup {
        if let Some(KeyLookup::Found(entry)) = self.lookup(kid) {
            return KeyLookup::Found(entry);
        }
        self.refetch_on_miss().await;
        self.lookup(kid).unwrap_or(KeyLookup::NoKeys)
    }

    async fn refetch_on_miss(&self) {
        let seen = self.generation.load(Ordering::SeqCst);
        let _fetching = self.fetching.lock().await;
        if self.generation.load(Ordering::SeqCst) != seen {
            // Keys arrived while this request waited: look there first.
            return;
        }
        {
            let mut last = self
                .last_miss_fetch
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < MISS_REFETCH_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(error) = self.fetch_locked().await {
            tracing::warn!(error = %error, "JWKS refetch for an unknown kid failed; keeping the last keys");
        }
    }

    /// Fetches now (waiting for a fetch under way); returns how long to keep the keys.
    pub async fn refresh(&self) -> Result<Duration, JwksError> {
        let _fetching = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<Duration, JwksError> {
        let response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| JwksError::Unreachable(without_url(&e)))?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        let ttl = cache_ttl(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let body: serde_json::Value = response.json().await.map_err(|_| JwksError::NotAKeySet)?;
        let keys = parse_key_set(&body)?;
        tracing::info!(
            keys = keys.len(),
            ttl_seconds = ttl.as_secs(),
            "JWKS fetched"
        );
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::new(KeySet { keys, ttl }));
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(ttl)
    }

    /// Refreshes when the keys expire, and retries with backoff (from 250 ms
    /// to 30 s) while fetches fail, keeping the last good keys meanwhile.
    /// Runs until the returned task is aborted or its runtime stops.
    pub fn spawn_refresher(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut backoff = FIRST_RETRY;
        let mut next = self.current().map_or(FIRST_RETRY, |set| set.ttl);
        actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(next).await;
                next = match self.refresh().await {
                    Ok(ttl) => {
                        backoff = FIRST_RETRY;
                        ttl
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, has_keys = self.has_keys(), "JWKS refresh failed");
                        let wait = backoff;
                        backoff = (backoff * 2).min(MAX_RETRY);
                        wait
                    }
                };
            }
        })
    }
}

/// reqwest's errors name the URL; keep the kind of failure only.
fn without_url(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// How long a key set stays fresh: `max-age` (or 0 for `no-store` /
/// `no-cache`), clamped to [1 min, 24 h]; 5 min when not stated.
pub fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let Some(header) = cache_control else {
        return DEFAULT_TTL;
    };
    let header = header.to_ascii_lowercase();
    let directives: Vec<&str> = header.split(',').map(str::trim).collect();
    let seconds = if directives
        .iter()
        .any(|d| *d == "no-store" || *d == "no-cache")
    {
        Some(0)
    } else {
        directives.iter().find_map(|d| {
            d.strip_prefix("max-age=")
                .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
        })
    };
    seconds.map_or(DEFAULT_TTL, |s| {
        Duration::from_secs(s).clamp(MIN_TTL, MAX_TTL)
    })
}

/// The usable signing keys of a JWKS document, by `kid`. Entries of other
/// shapes are skipped one by one (a provider may publish encryption keys
/// beside them); a set with none usable is an error, so it never replaces
/// good keys.
fn parse_key_set(body: &serde_json::Value) -> Result<HashMap<String, Arc<KeyEntry>>, JwksError> {
    let entries = body
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or(JwksError::NotAKeySet)?;
    let keys: HashMap<String, Arc<KeyEntry>> = entries
        .iter()
        .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
        .filter_map(|jwk| usable_key(&jwk))
        .collect();
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(keys)
}

fn usable_key(jwk: &Jwk) -> Option<(String, Arc<KeyEntry>)> {
    let kid = jwk.common.key_id.clone()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return None;
    }
    let (algorithm, declared) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        _ => return None,
    };
    if jwk.common.key_algorithm.is_some_and(|alg| alg != declared) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Arc::new(KeyEntry { algorithm, key })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cache_control_is_clamped_to_a_minute_and_a_day() {
        let secs = |h: Option<&str>| cache_ttl(h).as_secs();
        assert_eq!(secs(Some("public, max-age=600")), 600);
        assert_eq!(secs(Some("max-age=15, stale-while-revalidate=15")), 60);
        assert_eq!(secs(Some("max-age=31536000")), 86_400);
        assert_eq!(secs(Some("no-store")), 60);
        assert_eq!(secs(Some("Max-Age=120")), 120);
        assert_eq!(secs(Some("public")), 300);
        assert_eq!(secs(None), 300);
    }

    #[test]
    fn only_signing_keys_of_accepted_types_are_kept() {
        let set = json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "nokid-below", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "weird", "kid": "x"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]});
        let keys = parse_key_set(&set).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, ["ed", "nokid-below"]);
        assert_eq!(keys["ed"].algorithm, Algorithm::EdDSA);
        assert_eq!(keys["nokid-below"].algorithm, Algorithm::RS256);
        assert!(matches!(
            parse_key_set(&json!({"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]})),
            Err(JwksError::NoUsableKey)
        ));
    }
}
