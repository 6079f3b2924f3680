//! JWT verification with an explicit `Validation` per algorithm: only the
//! configured algorithms are accepted (never `none`), `exp` and `sub` are
//! required, and `iss`/`aud` are checked when configured.

use std::collections::HashMap;

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::Identity;
use crate::domain::{Email, Role, TenantId};
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
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
}

pub struct JwtVerifier {
    keys: Vec<(Algorithm, DecodingKey, jsonwebtoken::Validation)>,
    tenant_claim: String,
}

impl JwtVerifier {
    pub fn from_settings(settings: &AuthSettings) -> Result<JwtVerifier, String> {
        let public_pem = match (&settings.public_key_pem, &settings.public_key_path) {
            (Some(pem), _) => Some(pem.clone().into_bytes()),
            (None, Some(path)) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("cannot read auth.public_key_path: {e}"))?,
            ),
            (None, None) => None,
        };
        let mut keys = Vec::new();
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
            keys.push((algorithm, key, validation));
        }
        Ok(JwtVerifier {
            keys,
            tenant_claim: settings.tenant_claim.clone(),
        })
    }

    /// Verifies a compact JWS and returns the identity it proves.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        // An `alg` outside jsonwebtoken's enum (such as "none") fails here.
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        let (_, key, validation) = self
            .keys
            .iter()
            .find(|(algorithm, _, _)| *algorithm == header.alg)
            .ok_or(TokenError::Algorithm)?;
        let data = decode::<RawClaims>(token, key, validation).map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        let tenant = claims
            .rest
            .get(&self.tenant_claim)
            .and_then(|value| value.as_str())
            .ok_or(TokenError::Tenant)?;
        let tenant_id = TenantId::parse(tenant).map_err(|_| TokenError::Tenant)?;
        if claims.sub.is_empty() {
            return Err(TokenError::Invalid);
        }
        Ok(Identity {
            tenant_id,
            user_id: claims.sub,
            role: claims.role.unwrap_or_default(),
            email: claims.email.as_deref().and_then(|e| Email::parse(e).ok()),
            email_verified: claims.email_verified.unwrap_or(false),
        })
    }
}

/// Mints HS256 tokens for development and tests (the `token` command).
pub struct TokenIssuer {
    key: EncodingKey,
    tenant_claim: String,
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
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    pub fn mint(&self, request: &TokenRequest<'_>) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), request.sub.into());
        claims.insert(self.tenant_claim.clone(), request.tenant.into());
        claims.insert("role".into(), request.role.as_str().into());
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
