//! JWKS (README.md, "Configuration"): tokens from an identity provider's
//! published keys, by `kid`; rotation, an unknown-kid flood, the provider down
//! (at startup and later), algorithm confusion, and the claim shapes of Clerk,
//! Auth0 and Keycloak. The local provider is tests/api/jwks_server.rs.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::auth::{
    assert_every_bad_token_is_a_401, assert_unauthorized, b64, claims, hs256, now,
    unsigned_none_token, Signers,
};
use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app_with, Backend, TestApp, TestDatabase};
use crate::jwks_server::JwksServer;

const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa_public.pem");
const RSA2_PRIVATE: &str = include_str!("../fixtures/rsa2_private.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/ec_private.pem");
const ED_PRIVATE: &str = include_str!("../fixtures/ed25519_private.pem");
const ED_PUBLIC: &str = include_str!("../fixtures/ed25519_public.pem");

/// A signing key of the stand-in provider and its public JWK.
struct Signer {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl Signer {
    fn rsa(kid: &str, pem: &str) -> Signer {
        Signer::from_key(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
    }

    fn ec(kid: &str) -> Signer {
        Signer::from_key(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        )
    }

    fn ed(kid: &str) -> Signer {
        // jsonwebtoken cannot derive an OKP JWK: x is the last 32 bytes of
        // the public key's SubjectPublicKeyInfo.
        let der = pem_body(ED_PUBLIC);
        Signer {
            kid: kid.into(),
            algorithm: Algorithm::EdDSA,
            key: EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid, "x": b64(&der[der.len() - 32..])}),
        }
    }

    fn from_key(kid: &str, algorithm: Algorithm, key: EncodingKey) -> Signer {
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).unwrap();
        jwk.common.key_id = Some(kid.into());
        Signer {
            kid: kid.into(),
            algorithm,
            key,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// Signs with this key but names `kid` in the header.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(kid.into());
        encode(&header, claims, &self.key).unwrap()
    }
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

async fn jwks_app(backend: Backend, server: &JwksServer, extra: &[(&str, &str)]) -> TestApp {
    let mut overrides = vec![
        ("JWT_JWKS_URL", server.url.as_str()),
        ("APP__JOBS__ENABLED", "false"),
    ];
    overrides.extend_from_slice(extra);
    spawn_app_with(TestDatabase::migrated(backend), &overrides).await
}

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get_billing("acme", token).await.status().as_u16()
}

/// PUT profile: an admin-only route that calls no Stripe with jobs off.
async fn put_profile(app: &TestApp, tenant: &str, token: &str) -> u16 {
    app.put_profile(tenant, token, json!({"billing_email": "b@example.com"}))
        .await
        .status()
        .as_u16()
}

async fn rs256_es256_and_eddsa_keys_pass_the_401_403_matrix(backend: Backend) {
    let (rsa, ec, ed) = (
        Signer::rsa("rsa-1", RSA_PRIVATE),
        Signer::ec("ec-1"),
        Signer::ed("ed-1"),
    );
    let server = JwksServer::start(vec![rsa.jwk.clone(), ec.jwk.clone(), ed.jwk.clone()]);
    let app = jwks_app(backend, &server, &[]).await;
    for signer in [&rsa, &ec, &ed] {
        assert_eq!(
            status(&app, &signer.sign(&claims("acme"))).await,
            200,
            "{:?}",
            signer.algorithm
        );
    }
    // The HS256 run's cases, with the provider's keys.
    let stranger = Signer::rsa("rsa-1", RSA2_PRIVATE);
    let signers = Signers {
        trusted: &|c| rsa.sign(c),
        untrusted: &|c| stranger.sign(c),
        foreign: ("HS256 under a JWKS", &|c| {
            hs256(
                c,
                "tenant-billing-development-secret-do-not-use-in-production",
            )
        }),
    };
    assert_every_bad_token_is_a_401(&app, &signers).await;
    let mut globex = claims("globex");
    globex["role"] = json!("admin");
    assert_problem(app.get_billing("acme", &ed.sign(&globex)).await, 403).await;
    // `claims` makes a member: admin routes are 403, admin tokens pass.
    assert_eq!(
        put_profile(&app, "acme", &ec.sign(&claims("acme"))).await,
        403
    );
    let mut admin = claims("acme");
    admin["role"] = json!("admin");
    assert_eq!(put_profile(&app, "acme", &rsa.sign(&admin)).await, 200);
}

async fn a_rotated_key_is_picked_up_without_a_restart(backend: Backend) {
    let (old, new) = (
        Signer::rsa("2026-01", RSA_PRIVATE),
        Signer::rsa("2026-02", RSA2_PRIVATE),
    );
    let server = JwksServer::start(vec![old.jwk.clone()]);
    let app = jwks_app(backend, &server, &[]).await;
    assert_eq!(server.fetches(), 1, "one fetch at startup");
    assert_eq!(status(&app, &old.sign(&claims("acme"))).await, 200);
    assert_eq!(server.fetches(), 1, "a known kid is served from the cache");
    // The provider starts signing with a new key and publishes both.
    server.publish(vec![old.jwk.clone(), new.jwk.clone()]);
    assert_eq!(status(&app, &new.sign(&claims("acme"))).await, 200);
    assert_eq!(server.fetches(), 2, "the unknown kid caused one refetch");
    assert_eq!(status(&app, &old.sign(&claims("acme"))).await, 200);
    assert_eq!(status(&app, &new.sign(&claims("acme"))).await, 200);
    assert_eq!(server.fetches(), 2);
}

async fn an_unknown_kid_flood_makes_one_fetch(backend: Backend) {
    let (old, new) = (
        Signer::rsa("k1", RSA_PRIVATE),
        Signer::rsa("k2", RSA2_PRIVATE),
    );
    let server = JwksServer::start(vec![old.jwk.clone()]);
    let mut app = jwks_app(backend, &server, &[]).await;
    // A fresh connection per request: no keep-alive race with the server
    // closing an idle pooled connection as the next flood goes out.
    app.client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(server.fetches(), 1);
    server.publish(vec![old.jwk.clone(), new.jwk.clone()]);
    // 40 concurrent requests with the new kid share one refetch.
    let token = new.sign(&claims("acme"));
    let answers = join_all((0..40).map(|_| status(&app, &token))).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(server.fetches(), 2, "concurrent misses share one fetch");
    // Forged kids within 30 s of that refetch cause none at all.
    let forged: Vec<String> = (0..40)
        .map(|n| old.sign_as(&format!("forged-{n}"), &claims("acme")))
        .collect();
    let answers = join_all(forged.iter().map(|t| status(&app, t))).await;
    assert!(answers.iter().all(|s| *s == 401), "{answers:?}");
    assert_eq!(
        server.fetches(),
        2,
        "unknown kids refetch at most once per 30 s"
    );
}

async fn the_last_good_keys_survive_a_provider_outage(backend: Backend) {
    let (known, unknown) = (
        Signer::rsa("k1", RSA_PRIVATE),
        Signer::rsa("k2", RSA2_PRIVATE),
    );
    let server = JwksServer::start(vec![known.jwk.clone()]);
    let app = jwks_app(backend, &server, &[]).await;
    server.set_available(false);
    // An unknown kid makes the service try the provider, which fails: the
    // token is refused (401: keys exist, this one is not among them) ...
    assert_unauthorized(
        &app,
        Some(format!("Bearer {}", unknown.sign(&claims("acme")))),
        "unknown kid",
    )
    .await;
    assert_eq!(server.fetches(), 2, "the refetch was attempted");
    // ... and the keys fetched before the outage still verify.
    assert_eq!(status(&app, &known.sign(&claims("acme"))).await, 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

async fn a_provider_down_at_startup_means_503_until_keys_arrive(backend: Backend) {
    let signer = Signer::rsa("k1", RSA_PRIVATE);
    let server = JwksServer::start(vec![signer.jwk.clone()]);
    server.set_available(false);
    let app = jwks_app(backend, &server, &[]).await;
    let token = signer.sign(&claims("acme"));
    // The service started; it cannot check tokens yet, which is not the
    // token's fault: 503 problem+json, not 401. Not ready either.
    assert_problem(app.get_billing("acme", &token).await, 503).await;
    assert_eq!(app.get("/readyz", None).await.status(), 503);
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    // The provider comes back: the background retry finds the keys.
    server.set_available(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.get("/readyz", None).await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "never became ready after the JWKS came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(&app, &token).await, 200);
}

async fn algorithm_confusion_is_refused(backend: Backend) {
    let (rsa, ec) = (Signer::rsa("rsa", RSA_PRIVATE), Signer::ec("ec"));
    // A provider that (wrongly) also publishes a symmetric key.
    let hmac_secret = "a-shared-secret-published-in-the-jwks!";
    let oct =
        json!({"kty": "oct", "kid": "hmac", "alg": "HS256", "k": b64(hmac_secret.as_bytes())});
    let server = JwksServer::start(vec![rsa.jwk.clone(), ec.jwk.clone(), oct]);
    let app = jwks_app(backend, &server, &[]).await;
    assert_eq!(status(&app, &rsa.sign(&claims("acme"))).await, 200);
    let hs256_as = |kid: &str, secret: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        encode(&header, &claims("acme"), &EncodingKey::from_secret(secret)).unwrap()
    };
    let ps256 = {
        let mut header = Header::new(Algorithm::PS256);
        header.kid = Some("rsa".into());
        encode(&header, &claims("acme"), &rsa.key).unwrap()
    };
    let mut none = unsigned_none_token(&claims("acme"));
    none = none.replacen(
        &b64(br#"{"alg":"none","typ":"JWT"}"#),
        &b64(br#"{"alg":"none","typ":"JWT","kid":"rsa"}"#),
        1,
    );
    let cases = [
        (
            "HS256 keyed with the RSA public key PEM",
            hs256_as("rsa", RSA_PUBLIC.as_bytes()),
        ),
        (
            "HS256 keyed with the RSA JWK",
            hs256_as("rsa", rsa.jwk.to_string().as_bytes()),
        ),
        (
            "HS256 with the JWKS's own symmetric key",
            hs256_as("hmac", hmac_secret.as_bytes()),
        ),
        ("alg none naming a real kid", none),
        (
            "ES256 header on the RSA key",
            ec.sign_as("rsa", &claims("acme")),
        ),
        (
            "RS256 header on the EC key",
            rsa.sign_as("ec", &claims("acme")),
        ),
        ("PS256 on the RSA key", ps256),
    ];
    for (case, token) in cases {
        assert_unauthorized(&app, Some(format!("Bearer {token}")), case).await;
    }
}

/// One identity provider's token shape: settings, an admin's and a member's claims.
struct Shape {
    name: &'static str,
    settings: Vec<(&'static str, &'static str)>,
    admin: Value,
    member: Value,
}

fn shapes() -> Vec<Shape> {
    let exp = now() + 600;
    vec![
        Shape {
            name: "Clerk (session token v2: o.id / o.rol)",
            settings: vec![
                ("APP__AUTH__TENANT_CLAIM", "o.id"),
                ("APP__AUTH__ROLE_CLAIM", "o.rol"),
            ],
            admin: json!({"sub": "user_2x", "exp": exp, "sid": "sess_1", "o": {"id": "org_acme", "rol": "admin", "slg": "acme"}}),
            member: json!({"sub": "user_2y", "exp": exp, "o": {"id": "org_acme", "rol": "member"}}),
        },
        Shape {
            name: "Clerk (v1: org_id / org_role)",
            settings: vec![
                ("APP__AUTH__TENANT_CLAIM", "org_id"),
                ("APP__AUTH__ROLE_CLAIM", "org_role"),
                ("APP__AUTH__ADMIN_ROLES", "org:admin,org:billing_manager"),
            ],
            admin: json!({"sub": "user_2x", "exp": exp, "org_id": "org_acme", "org_role": "org:billing_manager"}),
            member: json!({"sub": "user_2y", "exp": exp, "org_id": "org_acme", "org_role": "org:member"}),
        },
        Shape {
            name: "Auth0 (URL-named custom claims, iss/aud)",
            settings: vec![
                ("APP__AUTH__TENANT_CLAIM", "https://app.example/tenant"),
                ("APP__AUTH__ROLE_CLAIM", "https://app.example/roles"),
                ("APP__AUTH__ISSUER", "https://example.eu.auth0.com/"),
                ("APP__AUTH__AUDIENCE", "https://billing.example"),
            ],
            admin: json!({"sub": "auth0|1", "exp": exp, "iss": "https://example.eu.auth0.com/", "aud": ["https://billing.example", "https://example.eu.auth0.com/userinfo"], "https://app.example/tenant": "org_acme", "https://app.example/roles": ["viewer", "admin"]}),
            member: json!({"sub": "auth0|2", "exp": exp, "iss": "https://example.eu.auth0.com/", "aud": "https://billing.example", "https://app.example/tenant": "org_acme", "https://app.example/roles": ["viewer"]}),
        },
        Shape {
            name: "Keycloak (realm_access.roles)",
            settings: vec![
                ("APP__AUTH__TENANT_CLAIM", "tenant"),
                ("APP__AUTH__ROLE_CLAIM", "realm_access.roles"),
                ("APP__AUTH__ADMIN_ROLES", "billing-admin"),
            ],
            admin: json!({"sub": "f1c2", "exp": exp, "azp": "web", "tenant": "org_acme", "realm_access": {"roles": ["offline_access", "billing-admin"]}}),
            member: json!({"sub": "f1c3", "exp": exp, "azp": "web", "tenant": "org_acme", "realm_access": {"roles": ["offline_access"]}}),
        },
    ]
}

async fn claims_of_clerk_auth0_and_keycloak(backend: Backend) {
    let signer = Signer::rsa("k1", RSA_PRIVATE);
    let server = JwksServer::start(vec![signer.jwk.clone()]);
    for shape in shapes() {
        let app = jwks_app(backend, &server, &shape.settings).await;
        let (admin, member) = (signer.sign(&shape.admin), signer.sign(&shape.member));
        let read = app.get_billing("org_acme", &member).await.status();
        assert_eq!(read, 200, "{}: member read", shape.name);
        assert_eq!(
            put_profile(&app, "org_acme", &member).await,
            403,
            "{}: member write",
            shape.name
        );
        assert_eq!(
            put_profile(&app, "org_acme", &admin).await,
            200,
            "{}: admin write",
            shape.name
        );
        assert_eq!(
            put_profile(&app, "globex", &admin).await,
            403,
            "{}: other tenant",
            shape.name
        );
    }
}

backend_tests!(
    rs256_es256_and_eddsa_keys_pass_the_401_403_matrix,
    a_rotated_key_is_picked_up_without_a_restart,
    an_unknown_kid_flood_makes_one_fetch,
    the_last_good_keys_survive_a_provider_outage,
    a_provider_down_at_startup_means_503_until_keys_arrive,
    algorithm_confusion_is_refused,
    claims_of_clerk_auth0_and_keycloak,
);
