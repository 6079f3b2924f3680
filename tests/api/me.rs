//! `GET /v1/me` (README.md, "Endpoints") answers who a valid token says the
//! caller is, for any tenant (the settings page learns its tenant and role
//! here), and refuses every bad token as `auth.rs` shows. No database is
//! involved: SQLite only.

use crate::auth::{assert_challenge, Challenge};
use crate::helpers::TEST_JWT_SECRET;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::Role;

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestDatabase};

/// A token the API refuses: signed with another secret.
pub fn badly_signed_token(tenant: &str) -> String {
    hs256(
        &json!({"sub": "user-1", "tenant_id": tenant, "role": "admin", "exp": now() + 600}),
        "not-the-configured-secret-0123456789abcdef",
    )
}

/// A well-signed admin token that expired two minutes ago (beyond the leeway).
pub fn expired_token(tenant: &str) -> String {
    hs256(
        &json!({"sub": "user-1", "tenant_id": tenant, "role": "admin", "exp": now() - 120}),
        TEST_JWT_SECRET,
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hs256(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[actix_web::test]
async fn me_names_the_tokens_tenant_user_role_and_email() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.token("acme", Role::Admin);
    let response = app.get("/v1/me", Some(&admin)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"tenant_id": "acme", "user_id": "user-1", "role": "admin", "email": "owner@example.com"})
    );

    // Any tenant's token: there is no tenant in the path to disagree with.
    let member = TokenIssuer::from_settings(&app.settings.auth).mint(&MintRequest {
        tenant: "globex",
        role: Role::Member,
        sub: "someone",
        email: None,
        ttl_seconds: 60,
    });
    let body: Value = app.get("/v1/me", Some(&member)).await.json().await.unwrap();
    assert_eq!(
        body,
        json!({"tenant_id": "globex", "user_id": "someone", "role": "member", "email": null})
    );
}

#[actix_web::test]
async fn me_refuses_a_missing_expired_or_badly_signed_token() {
    let app = spawn_app(Backend::Sqlite).await;
    for (case, token, challenge) in [
        ("missing", None, Challenge::NoToken),
        ("garbage", Some("not-a-jwt".to_owned()), Challenge::Invalid),
        (
            "bad signature",
            Some(badly_signed_token("acme")),
            Challenge::Invalid,
        ),
        ("expired", Some(expired_token("acme")), Challenge::Expired),
    ] {
        let response = app.get("/v1/me", token.as_deref()).await;
        assert_challenge(response, challenge, case).await;
    }
}

#[actix_web::test]
async fn me_reads_the_configured_tenant_claim() {
    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Sqlite),
        &[("APP__AUTH__TENANT_CLAIM", "org_id")],
    )
    .await;
    let token = hs256(
        &json!({"sub": "u", "org_id": "initech", "role": "admin", "exp": now() + 60}),
        TEST_JWT_SECRET,
    );
    let body: Value = app.get("/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(body["tenant_id"], "initech");
    assert_eq!(body["role"], "admin");
}
