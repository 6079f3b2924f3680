//! `PUT …/billing/profile`: stored first, pushed to Stripe when linked, a
//! customer provisioned without blocking a new tenant's signup.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stripe_sim::{Fault, FaultKind};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{spawn_app, Backend, TestApp};

/// Polls the stored row until `condition` holds (the provisioning is async).
async fn await_row(
    app: &TestApp,
    tenant: &str,
    condition: impl Fn(&tenant_billing::db::tenants::TenantRecord) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if app.row(tenant).as_ref().is_some_and(&condition) {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn a_new_tenant_profile_provisions_a_customer_in_the_background(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    let response = app
        .put_profile(
            "acme",
            &token,
            json!({"billing_email": "billing@acme.test", "billing_name": "Acme"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["billing_email"], "billing@acme.test");
    assert_eq!(body["billing_name"], "Acme");
    assert_eq!(body["profile_sync"], "provisioning");
    assert!(await_row(&app, "acme", |r| r.stripe_customer_id.is_some()).await);
    let customers = app.sim.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["email"], "billing@acme.test");
    assert_eq!(customers[0]["name"], "Acme");
}

async fn a_linked_profile_update_reaches_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    assert_eq!(
        app.post("acme", "customer", &token, None).await.status(),
        201
    );
    let response = app
        .put_profile(
            "acme",
            &token,
            json!({"billing_email": "new@acme.test", "billing_name": "Acme Ltd"}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["profile_sync"], "synced");
    let customer = &app.sim.customers()[0];
    assert_eq!(customer["email"], "new@acme.test");
    assert_eq!(customer["name"], "Acme Ltd");
    assert!(!app.row("acme").unwrap().profile_sync_pending);
}

async fn a_stripe_failure_keeps_the_local_change_and_says_pending(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    assert_eq!(
        app.post("acme", "customer", &token, None).await.status(),
        201
    );
    app.sim.add_fault(Fault {
        method: "POST".into(),
        path: "/v1/customers/{id}".into(),
        count: 1000,
        kind: FaultKind::Status(503),
    });
    let response = app
        .put_profile("acme", &token, json!({"billing_email": "later@acme.test"}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["profile_sync"], "pending");
    let row = app.row("acme").unwrap();
    assert_eq!(row.billing_email.as_deref(), Some("later@acme.test"));
    assert!(row.profile_sync_pending);
    assert!(app
        .audit("acme")
        .contains(&"profile.sync:pending".to_owned()));
}

async fn the_customer_email_falls_back_to_the_profile_then_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin); // carries owner@example.com
    let response = app.post("acme", "customer", &token, None).await;
    assert_eq!(response.status(), 201);
    assert_eq!(app.sim.customers()[0]["email"], "owner@example.com");
    // An explicit email wins for a new tenant.
    let response = app
        .post(
            "globex",
            "customer",
            &app.token("globex", Role::Admin),
            Some(json!({"email": "ap@globex.test", "name": "Globex"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let emails: Vec<Value> = app
        .sim
        .customers()
        .iter()
        .map(|c| c["email"].clone())
        .collect();
    assert!(emails.contains(&json!("ap@globex.test")), "{emails:?}");
}

backend_tests!(
    a_new_tenant_profile_provisions_a_customer_in_the_background,
    a_linked_profile_update_reaches_stripe,
    a_stripe_failure_keeps_the_local_change_and_says_pending,
    the_customer_email_falls_back_to_the_profile_then_the_token,
);
