//! Tokens (README.md, "Configuration" and "Errors"): every way a token can be
//! wrong is a 401 with `WWW-Authenticate: Bearer`; a good token for another
//! tenant is a 403; a good one is a 200.

use crate::helpers::TEST_JWT_SECRET;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, TestApp, TestDatabase};

const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa_public.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../fixtures/ec_public.pem");

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn claims(tenant: &str) -> Value {
    json!({"sub": "user-1", "tenant_id": tenant, "role": "member", "exp": now() + 600})
}

pub(crate) fn hs256(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn rs256(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn es256(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::ES256),
        claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unsigned_none_token(claims: &Value) -> String {
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims.to_string().as_bytes());
    format!("{header}.{payload}.")
}

/// What a 401's `WWW-Authenticate` says (RFC 6750, section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No bearer token was sent: no error code.
    NoToken,
    /// `error="invalid_token"`, the token is not valid.
    Invalid,
    /// `error="invalid_token"`, the token expired.
    Expired,
}

impl Challenge {
    pub(crate) fn header(self) -> &'static str {
        match self {
            Challenge::NoToken => r#"Bearer realm="tenant-billing""#,
            Challenge::Invalid => {
                r#"Bearer realm="tenant-billing", error="invalid_token", error_description="the token is not valid""#
            }
            Challenge::Expired => {
                r#"Bearer realm="tenant-billing", error="invalid_token", error_description="the token expired""#
            }
        }
    }
}

/// A 401 problem whose challenge is `expected`.
pub(crate) async fn assert_challenge(response: reqwest::Response, expected: Challenge, case: &str) {
    assert_eq!(response.status(), 401, "case {case:?} was not a 401");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(challenge, expected.header(), "case {case:?}");
    assert_problem(response, 401).await;
}

pub(crate) async fn assert_unauthorized(app: &TestApp, authorization: Option<String>, case: &str) {
    let expected = match case {
        "no header" | "basic scheme" | "token without scheme" => Challenge::NoToken,
        "expired" => Challenge::Expired,
        _ => Challenge::Invalid,
    };
    let mut request = app.client.get(app.url("/v1/tenants/acme/billing"));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.unwrap();
    assert_challenge(response, expected, case).await;
}

/// How one run of the 401 matrix signs tokens: with the key the service
/// trusts, with a key of the same kind it does not, and with an algorithm
/// it does not accept. The HS256 run and the JWKS run share the cases.
pub(crate) struct Signers<'a> {
    pub trusted: &'a dyn Fn(&Value) -> String,
    pub untrusted: &'a dyn Fn(&Value) -> String,
    pub foreign: (&'a str, &'a dyn Fn(&Value) -> String),
}

/// Every way a token can be wrong, each a 401 for tenant `acme`.
pub(crate) async fn assert_every_bad_token_is_a_401(app: &TestApp, signers: &Signers<'_>) {
    let sign = signers.trusted;
    let mut expired = claims("acme");
    expired["exp"] = json!(now() - 120);
    let mut no_tenant = claims("acme");
    no_tenant.as_object_mut().unwrap().remove("tenant_id");
    let mut no_exp = claims("acme");
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut no_sub = claims("acme");
    no_sub.as_object_mut().unwrap().remove("sub");
    let mut bad_tenant = claims("acme");
    bad_tenant["tenant_id"] = json!("acme corp/..");
    let mut numeric_tenant = claims("acme");
    numeric_tenant["tenant_id"] = json!(42);
    let good = sign(&claims("acme"));
    let mut tampered = good.clone();
    tampered.insert(good.rfind('.').unwrap() + 2, 'x');
    let (foreign_case, foreign) = signers.foreign;

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("basic scheme", Some(format!("Basic {}", b64(b"user:pass")))),
        ("token without scheme", Some(good.clone())),
        ("empty bearer", Some("Bearer ".into())),
        ("garbage", Some("Bearer not.a.jwt".into())),
        (
            "bad signature",
            Some(format!("Bearer {}", (signers.untrusted)(&claims("acme")))),
        ),
        ("tampered signature", Some(format!("Bearer {tampered}"))),
        ("expired", Some(format!("Bearer {}", sign(&expired)))),
        (
            "alg none",
            Some(format!("Bearer {}", unsigned_none_token(&claims("acme")))),
        ),
        (
            foreign_case,
            Some(format!("Bearer {}", foreign(&claims("acme")))),
        ),
        (
            "no tenant claim",
            Some(format!("Bearer {}", sign(&no_tenant))),
        ),
        ("no exp", Some(format!("Bearer {}", sign(&no_exp)))),
        ("no sub", Some(format!("Bearer {}", sign(&no_sub)))),
        (
            "malformed tenant id",
            Some(format!("Bearer {}", sign(&bad_tenant))),
        ),
        (
            "non-string tenant id",
            Some(format!("Bearer {}", sign(&numeric_tenant))),
        ),
    ];
    for (case, authorization) in cases {
        assert_unauthorized(app, authorization, case).await;
    }
}

async fn every_bad_token_is_a_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = TEST_JWT_SECRET;
    let signers = Signers {
        trusted: &|c| hs256(c, secret),
        untrusted: &|c| hs256(c, "another-secret-another-secret-xx"),
        foreign: ("RS256 when only HS256 is configured", &rs256),
    };
    assert_every_bad_token_is_a_401(&app, &signers).await;
}

async fn expiry_has_thirty_seconds_of_leeway(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut recently_expired = claims("acme");
    recently_expired["exp"] = json!(now() - 10);
    let token = hs256(&recently_expired, TEST_JWT_SECRET);
    assert_eq!(app.get_billing("acme", &token).await.status(), 200);
}

async fn a_token_for_another_tenant_is_a_403(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("globex", Role::Admin);
    assert_problem(app.get_billing("acme", &token).await, 403).await;
}

async fn a_valid_token_is_a_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Member);
    assert_eq!(app.get_billing("acme", &token).await.status(), 200);
}

async fn rs256_only_accepts_rs256(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[
            ("APP__AUTH__ALGORITHMS", "RS256"),
            ("APP__AUTH__PUBLIC_KEY_PEM", RSA_PUBLIC),
        ],
    )
    .await;
    assert_eq!(
        app.get_billing("acme", &rs256(&claims("acme")))
            .await
            .status(),
        200
    );
    // HS256 signed with the dev secret, and the classic confusion attack: HS256
    // keyed with the RSA public key.
    for token in [
        hs256(&claims("acme"), TEST_JWT_SECRET),
        hs256(&claims("acme"), RSA_PUBLIC),
    ] {
        assert_unauthorized(&app, Some(format!("Bearer {token}")), "HS256 under RS256").await;
    }
}

async fn es256_is_accepted_when_configured(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[
            ("APP__AUTH__ALGORITHMS", "ES256"),
            ("APP__AUTH__PUBLIC_KEY_PEM", EC_PUBLIC),
        ],
    )
    .await;
    assert_eq!(
        app.get_billing("acme", &es256(&claims("acme")))
            .await
            .status(),
        200
    );
    let forged = rs256(&claims("acme"));
    assert_unauthorized(&app, Some(format!("Bearer {forged}")), "RS256 under ES256").await;
}

async fn issuer_and_audience_are_checked_when_configured(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[
            ("APP__AUTH__ISSUER", "https://auth.example.com/"),
            ("APP__AUTH__AUDIENCE", "tenant-billing"),
        ],
    )
    .await;
    let mut good = claims("acme");
    good["iss"] = json!("https://auth.example.com/");
    good["aud"] = json!("tenant-billing");
    let secret = TEST_JWT_SECRET;
    assert_eq!(
        app.get_billing("acme", &hs256(&good, secret))
            .await
            .status(),
        200
    );
    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = json!("https://evil.example.com/");
    let mut wrong_audience = good.clone();
    wrong_audience["aud"] = json!("another-service");
    for (case, token) in [
        ("wrong issuer", hs256(&wrong_issuer, secret)),
        ("wrong audience", hs256(&wrong_audience, secret)),
        ("no issuer or audience", hs256(&claims("acme"), secret)),
    ] {
        assert_unauthorized(&app, Some(format!("Bearer {token}")), case).await;
    }
}

backend_tests!(
    every_bad_token_is_a_401,
    expiry_has_thirty_seconds_of_leeway,
    a_token_for_another_tenant_is_a_403,
    a_valid_token_is_a_200,
    rs256_only_accepts_rs256,
    es256_is_accepted_when_configured,
    issuer_and_audience_are_checked_when_configured,
);
