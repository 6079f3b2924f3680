//! `/metrics` (README.md, "Metrics"): every family after real traffic, route
//! templates as labels (no tenant id anywhere), the optional bearer token, the
//! switch.

use std::time::{Duration, Instant};

use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, TestApp, TestDatabase};

/// A tenant id no metric name or fixed label could contain by accident.
const TENANT: &str = "tenant-7f3c9a";

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// Scrapes until `line` shows (counters updated by background work).
async fn scrape_until(app: &TestApp, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(app).await;
        if text.contains(line) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{line} never appeared in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn every_family_is_scraped_after_traffic(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token(TENANT, Role::Admin);
    // A read (cache miss, then hit), a signup (a job creates the customer at
    // Stripe), an Upgrade paid at the simulator (webhooks), a forged webhook,
    // an unknown route under the tenant and a refused token.
    app.billing_state(TENANT).await;
    app.billing_state(TENANT).await;
    let response = app
        .put_profile(
            TENANT,
            &admin,
            serde_json::json!({"billing_email": "b@example.com"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    scrape_until(
        &app,
        r#"jobs_processed_total{kind="ensure_customer",outcome="succeeded"} 1"#,
    )
    .await;
    app.upgrade_and_pay(TENANT).await;
    app.await_webhooks().await;
    let forged = app
        .client
        .post(app.url("/v1/stripe/webhook"))
        .header("stripe-signature", "t=1,v1=00")
        .body(format!(r#"{{"type":"{TENANT}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let unknown = app
        .get(&format!("/v1/tenants/{TENANT}/nothing-here"), Some(&admin))
        .await;
    assert_eq!(unknown.status(), 404);
    let refused = app
        .get(&format!("/v1/tenants/{TENANT}/billing"), Some("x"))
        .await;
    assert_eq!(refused.status(), 401);

    let text = scrape(&app).await;
    for expected in [
        r#"http_requests_total{method="GET",route="/v1/tenants/{tenant_id}/billing",status="200"} 2"#,
        r#"http_requests_total{method="GET",route="/v1/tenants/{tenant_id}/billing",status="401"} 1"#,
        r#"http_requests_total{method="PUT",route="/v1/tenants/{tenant_id}/billing/profile",status="200"} 1"#,
        r#"http_requests_total{method="POST",route="/v1/tenants/{tenant_id}/billing/checkout",status="201"} 1"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"http_request_duration_seconds_count{method="GET",route="/v1/tenants/{tenant_id}/billing"} 3"#,
        r#"stripe_requests_total{operation="create_customer",outcome="ok"}"#,
        r#"stripe_request_duration_seconds_count{operation="create_customer"}"#,
        r#"stripe_requests_total{operation="retrieve_subscription",outcome="ok"}"#,
        r#"webhook_events_total{type="unverified",outcome="rejected"} 1"#,
        r#"jobs{state="succeeded"} 1"#,
        r#"jobs{state="queued"} 0"#,
        r#"jobs_processed_total{kind="ensure_customer",outcome="succeeded"} 1"#,
        r#"billing_state_cache_requests_total{result="miss"}"#,
        r#"billing_state_cache_requests_total{result="hit"}"#,
        r#"db_pool_connections{state="idle"}"#,
        r#"db_pool_connections{state="in_use"}"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // Which of Checkout's events applies the change and which find it already
    // stored depends on their delivery order; one of them applies it.
    assert!(
        text.lines()
            .any(|l| l.starts_with("webhook_events_total{") && l.contains(r#"outcome="applied""#)),
        "no applied webhook in:\n{text}"
    );
    let leaks: Vec<&str> = text.lines().filter(|l| l.contains(TENANT)).collect();
    assert!(leaks.is_empty(), "tenant id in metrics: {leaks:?}");
}

async fn a_configured_bearer_token_is_required(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__METRICS__BEARER_TOKEN", "scrape-secret-123")],
    )
    .await;
    assert_problem(app.get("/metrics", None).await, 401).await;
    assert_problem(app.get("/metrics", Some("scrape-secret-12")).await, 401).await;
    let response = app.get("/metrics", Some("scrape-secret-123")).await;
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("# TYPE http_requests counter"));
}

async fn metrics_can_be_switched_off(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__METRICS__ENABLED", "false")],
    )
    .await;
    assert_problem(app.get("/metrics", None).await, 404).await;
}

backend_tests!(
    every_family_is_scraped_after_traffic,
    a_configured_bearer_token_is_required,
    metrics_can_be_switched_off,
);
