use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, Backend};
use tenant_billing::domain::Role;

async fn healthz_answers_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

async fn readyz_answers_ok_when_the_database_is_up(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

async fn unknown_route_is_a_problem_404(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_problem(app.get("/v2/nothing-here", None).await, 404).await;
}

async fn a_tenant_without_a_row_is_on_the_free_plan(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Member);
    let response = app.get_billing("acme", &token).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "billing_address": null,
            "currency": null,
            "tenant_id": "acme",
            "stripe_customer_id": null,
            "billing_email": null,
            "billing_name": null,
            "plan": "free",
            "subscription_status": null,
            "current_period_end": null,
            "cancel_at_period_end": false,
            "trial_end": null,
            "seats": null,
            "pending_plan": null,
            "pending_plan_at": null,
            "grace_until": null
        })
    );
    // Reading is free of side effects: no row appears for the tenant.
    let tenant = tenant_billing::domain::TenantId::parse("acme").unwrap();
    let row = tenant_billing::db::tenants::find(&mut app.db(), &tenant).unwrap();
    assert!(row.is_none());
}

backend_tests!(
    healthz_answers_ok,
    readyz_answers_ok_when_the_database_is_up,
    unknown_route_is_a_problem_404,
    a_tenant_without_a_row_is_on_the_free_plan,
);
