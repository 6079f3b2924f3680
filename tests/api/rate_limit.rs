//! Rate limits (README.md, "Rate limits"): per tenant (from the verified
//! token), 429 problem+json with Retry-After over the limit, other tenants
//! unaffected, the Stripe webhook never limited.

use serde_json::json;
use stripe_sim::signature_header;
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app_with, Backend, TestApp, TestDatabase};

async fn limited_app(backend: Backend, writes: &str, reads: &str) -> TestApp {
    spawn_app_with(
        TestDatabase::migrated(backend),
        &[
            ("APP__RATE_LIMIT__TENANT_WRITES_PER_MINUTE", writes),
            ("APP__RATE_LIMIT__TENANT_READS_PER_MINUTE", reads),
            // No background Stripe work: only the requests below count.
            ("APP__JOBS__ENABLED", "false"),
        ],
    )
    .await
}

async fn put_profile(app: &TestApp, tenant: &str) -> reqwest::Response {
    let token = app.token(tenant, Role::Admin);
    app.put_profile(tenant, &token, json!({"billing_email": "b@example.com"}))
        .await
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds")
}

async fn writes_over_the_limit_get_429_with_retry_after(backend: Backend) {
    let app = limited_app(backend, "3", "0").await;
    for _ in 0..3 {
        assert_eq!(put_profile(&app, "acme").await.status(), 200);
    }
    let refused = put_profile(&app, "acme").await;
    // 3 per minute: the next write is allowed within 20 s.
    let wait = retry_after(&refused);
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    let body = assert_problem(refused, 429).await;
    assert_eq!(body["title"], "Too many requests");
    // Reads are not limited by default; another tenant has its own budget.
    let member = app.token("acme", Role::Member);
    assert_eq!(app.get_billing("acme", &member).await.status(), 200);
    assert_eq!(put_profile(&app, "globex").await.status(), 200);
}

async fn reads_are_limited_when_configured(backend: Backend) {
    let app = limited_app(backend, "100", "2").await;
    let member = app.token("acme", Role::Member);
    for _ in 0..2 {
        assert_eq!(app.get_billing("acme", &member).await.status(), 200);
    }
    let refused = app.get_billing("acme", &member).await;
    assert!(retry_after(&refused) >= 1);
    assert_problem(refused, 429).await;
    // Writes draw on their own budget; another tenant reads on.
    assert_eq!(put_profile(&app, "acme").await.status(), 200);
    let other = app.token("globex", Role::Member);
    assert_eq!(app.get_billing("globex", &other).await.status(), 200);
}

async fn webhooks_are_never_limited(backend: Backend) {
    // One write and one read per minute: the Upgrade click spends the writes.
    let app = limited_app(backend, "1", "1").await;
    app.upgrade_and_pay("acme").await;
    let admin = app.token("acme", Role::Admin);
    assert_problem(app.post("acme", "portal", &admin, None).await, 429).await;
    app.await_webhooks().await;
    // Stripe's deliveries for the tenant all landed (the state is pro), and
    // replaying them many times over is still answered, never 429.
    let events: Vec<String> = app.sim.events().iter().map(|e| e.to_string()).collect();
    assert!(events.len() >= 2);
    for payload in events.iter().cycle().take(20) {
        let signature = signature_header(
            &app.sim.webhook_secret(),
            chrono::Utc::now().timestamp(),
            payload,
        );
        let response = app
            .client
            .post(app.url("/v1/stripe/webhook"))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let member = app.token("acme", Role::Member);
    let state: serde_json::Value = app.get_billing("acme", &member).await.json().await.unwrap();
    assert_eq!(state["plan"], "pro");
}

/// Acceptance (issue 22): a member's 100 refused writes (403: admins only)
/// leave the admins' write budget untouched; only authorized requests count.
async fn a_members_refused_writes_leave_the_admins_budget_untouched(backend: Backend) {
    let app = limited_app(backend, "3", "0").await;
    let member = app.token("acme", Role::Member);
    for _ in 0..100 {
        let refused = app
            .post("acme", "checkout", &member, Some(json!({"plan": "pro"})))
            .await;
        assert_problem(refused, 403).await;
    }
    for _ in 0..3 {
        assert_eq!(put_profile(&app, "acme").await.status(), 200);
    }
    // The admins' own fourth write is the one over the limit.
    assert_problem(put_profile(&app, "acme").await, 429).await;
}

/// Invoices cost a Stripe request: they draw on their own per-tenant budget
/// (`tenant_stripe_reads_per_minute`), even with reads unlimited; a member's
/// refused reads do not count, and another tenant reads on.
async fn invoices_draw_on_the_stripe_reads_budget(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[
            ("APP__RATE_LIMIT__TENANT_STRIPE_READS_PER_MINUTE", "2"),
            ("APP__JOBS__ENABLED", "false"),
        ],
    )
    .await;
    let path = |tenant: &str| format!("/v1/tenants/{tenant}/billing/invoices");
    let member = app.token("acme", Role::Member);
    for _ in 0..5 {
        assert_problem(app.get(&path("acme"), Some(&member)).await, 403).await;
    }
    let admin = app.token("acme", Role::Admin);
    for _ in 0..2 {
        assert_eq!(app.get(&path("acme"), Some(&admin)).await.status(), 200);
    }
    let refused = app.get(&path("acme"), Some(&admin)).await;
    assert!(retry_after(&refused) >= 1);
    assert_problem(refused, 429).await;
    // Other reads are not limited; another tenant has its own budget.
    assert_eq!(app.get_billing("acme", &member).await.status(), 200);
    let other = app.token("globex", Role::Admin);
    assert_eq!(app.get(&path("globex"), Some(&other)).await.status(), 200);
}

backend_tests!(
    a_members_refused_writes_leave_the_admins_budget_untouched,
    invoices_draw_on_the_stripe_reads_budget,
    writes_over_the_limit_get_429_with_retry_after,
    reads_are_limited_when_configured,
    webhooks_are_never_limited,
);
