//! A deploy that forgets a setting refuses to start (exit 2, one line naming
//! the variable and the fix) instead of opening a door; the safe
//! combinations start and serve (README, Configuration).

use std::process::{Output, Stdio};
use std::time::Duration;

use crate::backend_tests;
use crate::binary::{await_ok, bare_command, KillOnDrop};
use crate::helpers::{start_sim, Backend, TestDatabase, TEST_JWT_SECRET};

const LIVE_KEY: &str = "sk_live_not_a_real_key_0123456789";
const METRICS_TOKEN: &str = "scrape-token-not-a-real-one-0123";

/// Production as a careful operator sets it: own secret, a Stripe key and
/// webhook secret, `/metrics` behind a token.
fn production() -> Vec<(&'static str, String)> {
    vec![
        ("APP_ENV", "production".into()),
        ("JWT_SECRET", TEST_JWT_SECRET.into()),
        ("STRIPE_SECRET_KEY", LIVE_KEY.into()),
        ("STRIPE_WEBHOOK_SECRET", "whsec_not_a_real_secret".into()),
        ("APP__METRICS__BEARER_TOKEN", METRICS_TOKEN.into()),
    ]
}

/// `serve` with exactly `env` (and PATH) in an empty directory.
fn serve_refused(env: &[(&str, String)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    bare_command(dir.path())
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run serve")
}

/// Exit 2, one line on stderr that names `variable`, and no secret in it.
fn assert_refused(env: &[(&str, String)], variable: &str, also: &str) {
    let output = serve_refused(env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{env:?} started: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains(variable), "{variable} not named: {stderr}");
    assert!(stderr.contains(also), "{also:?} not said: {stderr}");
    for secret in [LIVE_KEY, METRICS_TOKEN, TEST_JWT_SECRET] {
        assert!(!stderr.contains(secret), "a secret leaked: {stderr}");
    }
    assert!(
        !stderr.contains(tenant_billing::settings::DEVELOPMENT_JWT_SECRET),
        "the development secret printed: {stderr}"
    );
}

fn set(env: &mut Vec<(&'static str, String)>, key: &'static str, value: &str) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value.into()));
}

#[test]
fn the_development_secret_outside_development_exits_2() {
    assert_refused(&[("APP_ENV", "test".into())], "JWT_SECRET", "APP_ENV");
}

#[test]
fn the_development_secret_on_a_public_bind_exits_2() {
    assert_refused(
        &[("BIND_ADDR", "0.0.0.0:8080".into())],
        "JWT_SECRET",
        "loopback",
    );
}

#[test]
fn the_development_secret_with_a_real_stripe_key_exits_2() {
    assert_refused(
        &[("STRIPE_SECRET_KEY", "sk_test_not_a_real_key_0123".into())],
        "JWT_SECRET",
        "STRIPE_SECRET_KEY",
    );
    assert_refused(
        &[
            ("STRIPE_SECRET_KEY", LIVE_KEY.into()),
            ("STRIPE_API_BASE", "http://127.0.0.1:9/".into()),
        ],
        "JWT_SECRET",
        "STRIPE_SECRET_KEY",
    );
}

#[test]
fn production_with_a_jwks_but_no_audience_or_issuer_exits_2() {
    let mut env = production();
    set(
        &mut env,
        "JWT_JWKS_URL",
        "https://idp.example/.well-known/jwks.json",
    );
    set(&mut env, "APP__AUTH__ISSUER", "https://idp.example/");
    assert_refused(&env, "APP__AUTH__AUDIENCE", "another application");
    env.retain(|(k, _)| *k != "APP__AUTH__ISSUER");
    set(&mut env, "APP__AUTH__AUDIENCE", "tenant-billing");
    assert_refused(&env, "APP__AUTH__ISSUER", "another application");
}

#[test]
fn production_with_open_metrics_exits_2() {
    let mut env = production();
    env.retain(|(k, _)| *k != "APP__METRICS__BEARER_TOKEN");
    assert_refused(
        &env,
        "APP__METRICS__BEARER_TOKEN",
        "APP__METRICS__ENABLED=false",
    );
}

/// Starts `serve` with `env` on `database` and a free loopback port; true
/// once `/healthz` answers.
async fn starts(database: &TestDatabase, env: &[(&str, String)]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::pg::free_port();
    let child = bare_command(dir.path())
        .arg("serve")
        .env("DATABASE_URL", &database.url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("APP__TELEMETRY__LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let _child = KillOnDrop(child);
    await_ok(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(30),
    )
    .await
}

/// Each safe combination starts: development with the simulator, the test
/// layer with its own secret, and production with a JWKS that names its
/// audience and issuer and `/metrics` behind a token (or off).
async fn the_safe_combinations_start(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    assert!(starts(&database, &[]).await, "development defaults");
    assert!(
        starts(
            &database,
            &[
                ("APP_ENV", "test".into()),
                ("JWT_SECRET", TEST_JWT_SECRET.into())
            ]
        )
        .await,
        "test layer with its own secret"
    );
    let mut env = production();
    set(&mut env, "STRIPE_API_BASE", &sim.base_url());
    // Unreachable at startup: the service starts and answers 503 on token
    // routes until the keys arrive.
    set(&mut env, "JWT_JWKS_URL", "https://127.0.0.1:9/jwks.json");
    set(&mut env, "APP__AUTH__AUDIENCE", "tenant-billing");
    set(&mut env, "APP__AUTH__ISSUER", "https://idp.example/");
    assert!(starts(&database, &env).await, "production with a JWKS");
    env.retain(|(k, _)| *k != "APP__METRICS__BEARER_TOKEN");
    set(&mut env, "APP__METRICS__ENABLED", "false");
    assert!(starts(&database, &env).await, "production without /metrics");
}

backend_tests!(the_safe_combinations_start);
