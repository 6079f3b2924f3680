//! Stripe webhooks: the upgrade becomes visible, duplicates and late events
//! change nothing, events cannot cross tenants, and only genuine deliveries
//! are accepted.

use futures_util::future::join_all;
use serde_json::{json, Value};
use stripe_sim::{signature_header, Fault, FaultKind};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, Backend, TestApp, TestDatabase};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs `payload` as Stripe would, `skew` seconds from now.
async fn deliver_signed(
    app: &TestApp,
    payload: &str,
    secret: &str,
    skew: i64,
) -> reqwest::Response {
    deliver(
        app,
        payload,
        Some(signature_header(secret, now() + skew, payload)),
    )
    .await
}

async fn deliver(app: &TestApp, payload: &str, signature: Option<String>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/stripe/webhook"))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    request.send().await.unwrap()
}

/// The newest simulator event of `kind`, as the exact JSON Stripe would send.
fn event(app: &TestApp, kind: &str) -> String {
    app.sim
        .events()
        .into_iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event"))
        .to_string()
}

/// Clicks Upgrade and pays; returns the subscription id. Webhooks are only
/// delivered by the simulator when `deliver` is true.
async fn upgrade_and_pay(app: &TestApp, tenant: &str, deliver: bool) -> String {
    if !deliver {
        app.sim.set_webhook_url(None);
    }
    app.upgrade_and_pay(tenant).await
}

async fn an_upgrade_makes_the_tenant_pro_and_a_cancellation_free(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = upgrade_and_pay(&app, "acme", true).await;
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["plan"], "pro", "{state}");
    assert_eq!(state["subscription_status"], "active");
    assert!(state["current_period_end"].as_str().unwrap().contains('T'));
    assert_eq!(state["cancel_at_period_end"], false);

    app.sim
        .set_subscription_status(&subscription, "canceled")
        .unwrap();
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["plan"], "free", "{state}");
    assert_eq!(state["subscription_status"], "canceled");
    assert!(app
        .audit("acme")
        .iter()
        .any(|a| a.starts_with("subscription.sync")));
}

async fn five_concurrent_deliveries_have_one_effect(backend: Backend) {
    let app = spawn_app(backend).await;
    upgrade_and_pay(&app, "acme", false).await;
    let payload = event(&app, "customer.subscription.created");
    let secret = app.sim.webhook_secret();
    let answers = join_all((0..5).map(|_| deliver_signed(&app, &payload, &secret, 0))).await;
    assert!(answers.iter().all(|r| r.status() == 200));
    assert_eq!(app.billing_state("acme").await["plan"], "pro");
    let ledger = app.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].status, "applied");
    let syncs = app
        .audit("acme")
        .iter()
        .filter(|a| a.starts_with("subscription.sync"))
        .count();
    assert_eq!(syncs, 1, "the effect was applied more than once");
}

async fn an_older_event_after_the_cancellation_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = upgrade_and_pay(&app, "acme", false).await;
    let secret = app.sim.webhook_secret();
    let created = event(&app, "customer.subscription.created");
    let completed = event(&app, "checkout.session.completed");
    assert_eq!(
        deliver_signed(&app, &completed, &secret, 0).await.status(),
        200
    );
    assert_eq!(app.billing_state("acme").await["plan"], "pro");

    app.sim.advance_clock(60);
    app.sim
        .set_subscription_status(&subscription, "canceled")
        .unwrap();
    let deleted = event(&app, "customer.subscription.deleted");
    assert_eq!(
        deliver_signed(&app, &deleted, &secret, 0).await.status(),
        200
    );
    assert_eq!(app.billing_state("acme").await["plan"], "free");

    // Validly signed, never seen before, but older than the state we hold.
    assert_eq!(
        deliver_signed(&app, &created, &secret, 0).await.status(),
        200
    );
    let state = app.billing_state("acme").await;
    assert_eq!(state["plan"], "free", "{state}");
    assert_eq!(state["subscription_status"], "canceled");
}

/// Creates a subscription at the simulator for `customer` whose metadata names `claimed_tenant`.
async fn paid_subscription_naming(app: &TestApp, customer: &str, claimed_tenant: &str) {
    let form = [
        ("mode", "subscription"),
        ("customer", customer),
        ("line_items[0][price]", "price_pro_monthly"),
        ("line_items[0][quantity]", "1"),
        ("success_url", "http://localhost:3000/ok"),
        ("client_reference_id", claimed_tenant),
        ("metadata[tenant_id]", claimed_tenant),
        ("subscription_data[metadata][tenant_id]", claimed_tenant),
    ];
    let session: Value = reqwest::Client::new()
        .post(format!("{}/v1/checkout/sessions", app.sim.base_url()))
        .bearer_auth("sk_test_forger")
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.sim
        .complete_checkout(session["id"].as_str().unwrap())
        .unwrap();
}

async fn an_event_naming_another_tenant_changes_neither(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sim.set_webhook_url(None);
    let a = app.token("tenant-a", Role::Admin);
    let b = app.token("tenant-b", Role::Admin);
    assert_eq!(
        app.post("tenant-a", "customer", &a, None).await.status(),
        201
    );
    let response = app.post("tenant-b", "customer", &b, None).await;
    let customer_b: Value = response.json().await.unwrap();
    let before_a = app.billing_state("tenant-a").await;
    let before_b = app.billing_state("tenant-b").await;

    paid_subscription_naming(
        &app,
        customer_b["stripe_customer_id"].as_str().unwrap(),
        "tenant-a",
    )
    .await;
    let secret = app.sim.webhook_secret();
    for kind in [
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ] {
        let payload = event(&app, kind);
        assert_eq!(
            deliver_signed(&app, &payload, &secret, 0).await.status(),
            200
        );
    }
    assert_eq!(app.billing_state("tenant-a").await, before_a);
    assert_eq!(app.billing_state("tenant-b").await, before_b);
    let ledger = app.ledger();
    assert!(
        ledger.iter().all(|row| row.status == "rejected"),
        "{ledger:?}"
    );
}

async fn only_genuine_deliveries_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    upgrade_and_pay(&app, "acme", false).await;
    let payload = event(&app, "customer.subscription.created");
    let secret = app.sim.webhook_secret();
    let forged_secret = "whsec_forged_by_someone_else";
    let mut tampered = payload.replacen("\"active\"", "\"trialing\"", 1);
    if tampered == payload {
        tampered = payload.replacen('{', "{ ", 1);
    }
    let cases: Vec<(&str, reqwest::Response)> = vec![
        (
            "forged",
            deliver_signed(&app, &payload, forged_secret, 0).await,
        ),
        ("stale", deliver_signed(&app, &payload, &secret, -600).await),
        (
            "from the future",
            deliver_signed(&app, &payload, &secret, 600).await,
        ),
        (
            "tampered",
            deliver(
                &app,
                &tampered,
                Some(signature_header(&secret, now(), &payload)),
            )
            .await,
        ),
        ("unsigned", deliver(&app, &payload, None).await),
        (
            "garbage header",
            deliver(&app, &payload, Some("t=abc,v1=zz".into())).await,
        ),
        (
            "non-JSON",
            deliver_signed(&app, "this is not json", &secret, 0).await,
        ),
    ];
    for (case, response) in cases {
        assert_eq!(response.status(), 400, "{case} was accepted");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 400, "{case}: {body}");
    }
    assert!(app.ledger().is_empty(), "a refused delivery was stored");
    assert_eq!(app.billing_state("acme").await["plan"], "free");
}

async fn a_rotated_secret_is_accepted(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = crate::helpers::start_sim();
    let secrets = format!(
        "whsec_the_new_secret_after_rotation,{}",
        sim.webhook_secret()
    );
    let app = crate::helpers::spawn_instance(
        database,
        sim,
        &[("STRIPE_WEBHOOK_SECRET", secrets.as_str())],
    )
    .await;
    upgrade_and_pay(&app, "acme", true).await;
    app.await_webhooks().await;
    assert_eq!(app.billing_state("acme").await["plan"], "pro");
    let payload = event(&app, "invoice.paid");
    let signed_with_new =
        deliver_signed(&app, &payload, "whsec_the_new_secret_after_rotation", 0).await;
    assert_eq!(signed_with_new.status(), 200);
}

async fn unhandled_types_are_acknowledged(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sim.set_webhook_url(None);
    let token = app.token("acme", Role::Admin);
    app.post("acme", "customer", &token, None).await;
    let payload = event(&app, "customer.created");
    let response = deliver_signed(&app, &payload, &app.sim.webhook_secret(), 0).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"received": true}));
    assert_eq!(app.ledger()[0].status, "ignored");
}

async fn a_deleted_customer_is_unlinked_and_replaced_on_the_next_upgrade(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    let first: Value = app
        .post("acme", "customer", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let first_id = first["stripe_customer_id"].as_str().unwrap().to_owned();
    let deleted = reqwest::Client::new()
        .delete(format!("{}/v1/customers/{first_id}", app.sim.base_url()))
        .bearer_auth("sk_test_operator")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    app.await_webhooks().await;
    assert!(app.billing_state("acme").await["stripe_customer_id"].is_null());
    let second = app
        .post("acme", "checkout", &token, Some(json!({"plan": "pro"})))
        .await;
    assert_eq!(second.status(), 201);
    let linked = app.billing_state("acme").await["stripe_customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(linked, first_id);
    assert!(app
        .audit("acme")
        .contains(&"customer.unlinked:ok".to_owned()));
}

async fn a_failed_event_is_kept_and_processed_on_redelivery(backend: Backend) {
    let app = spawn_app(backend).await;
    upgrade_and_pay(&app, "acme", false).await;
    app.sim.add_fault(Fault {
        method: "GET".into(),
        path: "/v1/subscriptions/{id}".into(),
        count: 1000,
        kind: FaultKind::Status(500),
    });
    let payload = event(&app, "customer.subscription.created");
    let secret = app.sim.webhook_secret();
    assert_eq!(
        deliver_signed(&app, &payload, &secret, 0).await.status(),
        500
    );
    let ledger = app.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].status, "failed");
    assert!(ledger[0].last_error.is_some());
    assert_eq!(app.billing_state("acme").await["plan"], "free");

    app.sim.clear_faults();
    assert_eq!(
        deliver_signed(&app, &payload, &secret, 0).await.status(),
        200
    );
    let ledger = app.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].status, "applied");
    assert_eq!(ledger[0].attempts, 2);
    assert_eq!(app.billing_state("acme").await["plan"], "pro");
}

/// A genuine event far over the API's 64 KiB (Stripe's events carry whole
/// objects: an invoice with hundreds of lines, a customer with much
/// metadata) is processed; one refused would be refused on every
/// redelivery. Past the webhook's own 1 MiB: 413 problem+json.
async fn a_large_genuine_event_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    upgrade_and_pay(&app, "acme", false).await;
    let mut event: Value =
        serde_json::from_str(&event(&app, "customer.subscription.created")).unwrap();
    event["data"]["object"]["metadata"]["notes"] = json!("x".repeat(300 * 1024));
    let payload = event.to_string();
    assert!(payload.len() > 300 * 1024);
    let response = deliver_signed(&app, &payload, &app.sim.webhook_secret(), 0).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(app.billing_state("acme").await["plan"], "pro");
    assert_eq!(app.ledger()[0].status, "applied");

    let too_large = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024));
    let response = deliver_signed(&app, &too_large, &app.sim.webhook_secret(), 0).await;
    let problem = assert_problem(response, 413).await;
    assert_eq!(problem["type"], "/problems/payload-too-large");
}

backend_tests!(
    a_large_genuine_event_is_accepted,
    an_upgrade_makes_the_tenant_pro_and_a_cancellation_free,
    five_concurrent_deliveries_have_one_effect,
    an_older_event_after_the_cancellation_changes_nothing,
    an_event_naming_another_tenant_changes_neither,
    only_genuine_deliveries_are_accepted,
    a_rotated_secret_is_accepted,
    unhandled_types_are_acknowledged,
    a_deleted_customer_is_unlinked_and_replaced_on_the_next_upgrade,
    a_failed_event_is_kept_and_processed_on_redelivery,
);
