//! JWT verification with an explicit `Validation` per algorithm: only the
//! configured algorithms are accepted (never `none`), `exp` and `sub` are
//! required, and `iss`/`aud` are checked when configured. Keys come from the
//! configuration (a shared secret or a PEM key) or from an identity
//! provider's JWKS, where each key verifies the one algorithm of its type.

use std::sync::Arc;

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::claims::ClaimRules;
use super::jwks::{JwksCache, KeyEntry, KeyLookup};
use super::Identity;
use crate::domain::Role;
use crate::settings::AuthSettings;

/// Why a token was refused. Deliberately coarse: the client learns only that
/// the token is unacceptable, the log learns which rule it broke.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    Algorithm,
    #[error("token signature or claims are invalid")]
    Invalid,
    #[error("token has no valid tenant claim")]
    Tenant,
    #[error("token key id is not in the identity provider's key set")]
    UnknownKey,
    /// Not the token's fault: the JWKS was never fetched (503, not 401).
    #[error("the identity provider's keys are not available yet")]
    KeysUnavailable,
}

enum KeySource {
    /// The shared secret and/or PEM key, one per configured algorithm.
    Configured(Vec<Arc<KeyEntry>>),
    Jwks(Arc<JwksCache>),
}

pub struct JwtVerifier {
    source: KeySource,
    /// One `Validation` per accepted algorithm, built once.
    validations: Vec<(Algorithm, jsonwebtoken::Validation)>,
    rules: ClaimRules,
}

impl JwtVerifier {
    /// Builds the verifier; with `auth.jwks_url` the keys start empty (see
    /// `start_jwks`).
    pub fn from_settings(settings: &AuthSettings) -> Result<JwtVerifier, String> {
        let rules = ClaimRules::from_settings(settings);
        if let Some(url) = &settings.jwks_url {
            let validations = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
                .into_iter()
                .map(|alg| (alg, validation(settings, alg)))
                .collect();
            return Ok(JwtVerifier {
                source: KeySource::Jwks(Arc::new(JwksCache::new(url)?)),
                validations,
                rules,
            });
        }
        let public_pem = match (&settings.public_key_pem, &settings.public_key_path) {
            (Some(pem), _) => Some(pem.clone().into_bytes()),
            (None, Some(path)) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("cannot read auth.public_key_path: {e}"))?,
            ),
            (None, None) => None,
        };
        let mut keys = Vec::new();
        let mut validations = Vec::new();
        for name in &settings.algorithms {
            let (algorithm, key) = match name.as_str() {
                "HS256" => (
                    Algorithm::HS256,
                    DecodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes()),
                ),
                "RS256" => (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_pem(public_pem.as_deref().unwrap_or_default())
                        .map_err(|_| "auth public key is not an RSA PEM public key".to_owned())?,
                ),
                "ES256" => (
                    Algorithm::ES256,
                    DecodingKey::from_ec_pem(public_pem.as_deref().unwrap_or_default())
                        .map_err(|_| "auth public key is not an EC PEM public key".to_owned())?,
                ),
                other => return Err(format!("unsupported JWT algorithm {other}")),
            };
            keys.push(Arc::new(KeyEntry { algorithm, key }));
            validations.push((algorithm, validation(settings, algorithm)));
        }
        Ok(JwtVerifier {
            source: KeySource::Configured(keys),
            validations,
            rules,
        })
    }

    /// With a JWKS: fetches it once now (a failure is logged, not fatal: the
    /// service starts and answers 503 on token routes until keys arrive) and
    /// starts the background refresher. Without one: nothing to do.
    pub async fn start_jwks(&self) -> Option<tokio::task::JoinHandle<()>> {
        let KeySource::Jwks(cache) = &self.source else {
            return None;
        };
        if let Err(error) = cache.refresh().await {
            tracing::warn!(error = %error, "JWKS not available at startup; token-protected routes answer 503 until it is");
        }
        Some(cache.clone().spawn_refresher())
    }

    /// False while a configured JWKS has never been fetched (`/readyz`).
    pub fn ready(&self) -> bool {
        match &self.source {
            KeySource::Configured(_) => true,
            KeySource::Jwks(cache) => cache.has_keys(),
        }
    }

    /// Verifies a compact JWS and returns the identity it proves.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        // An `alg` outside jsonwebtoken's enum (such as "none") fails here.
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        let entry = match &self.source {
            KeySource::Configured(keys) => keys
                .iter()
                .find(|entry| entry.algorithm == header.alg)
                .cloned()
                .ok_or(TokenError::Algorithm)?,
            KeySource::Jwks(cache) => {
                // Checked before the lookup, so that tokens of a refused
                // algorithm cannot trigger refetches.
                if !self.validations.iter().any(|(alg, _)| *alg == header.alg) {
                    return Err(TokenError::Algorithm);
                }
                let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
                match cache.key(kid).await {
                    KeyLookup::Found(entry) => entry,
                    KeyLookup::Unknown => return Err(TokenError::UnknownKey),
                    KeyLookup::NoKeys => return Err(TokenError::KeysUnavailable),
                }
            }
        };
        // A key verifies only the algorithm of its type: an HS256 token
        // "signed" with an RSA public key, or an ES256 header on an RSA key,
        // stops here.
        if entry.algorithm != header.alg {
            return Err(TokenError::Algorithm);
        }
        let (_, validation) = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == entry.algorithm)
            .ok_or(TokenError::Algorithm)?;
        let data = decode::<Map<String, Value>>(token, &entry.key, validation)
            .map_err(|_| TokenError::Invalid)?;
        self.rules.identity(&data.claims)
    }
}

/// The checks every token must pass, for one algorithm.
fn validation(settings: &AuthSettings, algorithm: Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.leeway = settings.leeway_seconds;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    // jsonwebtoken checks iss/aud only when present: require them when configured.
    let mut required = vec!["exp", "sub"];
    if settings.issuer.is_some() {
        required.push("iss");
    }
    if settings.audience.is_some() {
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    match &settings.issuer {
        Some(issuer) => validation.set_issuer(&[issuer]),
        None => validation.iss = None,
    }
    match &settings.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation
}

/// Mints HS256 tokens for development and tests (the `token` command).
pub struct TokenIssuer {
    key: EncodingKey,
    tenant_claim: String,
    role_claim: String,
    /// The role value minted for an admin: the first of `auth.admin_roles`.
    admin_role: String,
    /// The role value minted for a service: the first of `auth.usage_roles`
    /// that is not an admin role.
    service_role: String,
    issuer: Option<String>,
    audience: Option<String>,
}

/// What a minted token asserts.
pub struct TokenRequest<'a> {
    pub tenant: &'a str,
    pub role: Role,
    pub sub: &'a str,
    pub email: Option<&'a str>,
    pub ttl_seconds: u64,
}

impl TokenIssuer {
    pub fn from_settings(settings: &AuthSettings) -> TokenIssuer {
        TokenIssuer {
            key: EncodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes()),
            tenant_claim: settings.tenant_claim.clone(),
            role_claim: settings.role_claim.clone(),
            admin_role: settings
                .admin_roles
                .first()
                .cloned()
                .unwrap_or_else(|| "admin".into()),
            service_role: settings
                .usage_roles
                .iter()
                .find(|role| !settings.admin_roles.contains(role))
                .cloned()
                .unwrap_or_else(|| Role::Service.as_str().into()),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    pub fn mint(&self, request: &TokenRequest<'_>) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), request.sub.into());
        claims.insert(self.tenant_claim.clone(), request.tenant.into());
        let role = match request.role {
            Role::Admin => self.admin_role.as_str(),
            Role::Member => Role::Member.as_str(),
            Role::Service => self.service_role.as_str(),
        };
        claims.insert(self.role_claim.clone(), role.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + request.ttl_seconds as i64).into());
        if let Some(email) = request.email {
            claims.insert("email".into(), email.into());
            claims.insert("email_verified".into(), true.into());
        }
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), issuer.clone().into());
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), audience.clone().into());
        }
        encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .expect("HS256 encoding of a JSON map cannot fail")
    }
}

pub use TokenRequest as MintRequest;
