//! Checkout for the subscription's life: a plan's trial only for a tenant
//! that never had one (remembered after the subscription and even the
//! customer are gone), seats for a per-seat plan, and 409 while a
//! subscription is live (active, trialing, past_due).

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_problem, plan_row, spawn_app, Backend, TestApp};

const DAY: i64 = 24 * 3600;

async fn subscribed(app: &TestApp, plan: &str, quantity: Option<u64>) -> Value {
    let subscription = app.subscribe("acme", plan, quantity).await;
    app.await_webhooks().await;
    subscription
}

async fn a_trial_is_given_once_per_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        plan_row(&app.read("acme", "plans").await, "team")["trial_available"],
        true
    );

    let first = subscribed(&app, "team", Some(2)).await;
    assert_eq!(first["status"], "trialing");
    let state = app.billing_state("acme").await;
    assert_eq!(state["plan"], "team", "{state}");
    assert_eq!(state["subscription_status"], "trialing");
    assert_eq!(state["seats"], 2);
    let trial_end: chrono::DateTime<chrono::Utc> =
        state["trial_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(trial_end.timestamp(), first["trial_end"].as_i64().unwrap());
    assert_eq!(
        first["trial_end"].as_i64().unwrap() - first["trial_start"].as_i64().unwrap(),
        14 * DAY
    );
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["reason"], "trialing");
    assert_eq!(entitlements["plan"], "team");
    assert_eq!(
        plan_row(&app.read("acme", "plans").await, "team")["trial_available"],
        false
    );

    // Three days before the end Stripe warns; the service audits it.
    app.sim.advance_clock(12 * DAY);
    app.await_webhooks().await;
    assert!(
        app.audit("acme")
            .contains(&"subscription.trial_will_end:ok".to_owned()),
        "{:?}",
        app.audit("acme")
    );

    // The subscription ends, then even the customer is deleted at Stripe.
    app.sim
        .set_subscription_status(first["id"].as_str().unwrap(), "canceled")
        .unwrap();
    app.await_webhooks().await;
    let customer = first["customer"].as_str().unwrap();
    let deleted = reqwest::Client::new()
        .delete(format!("{}/v1/customers/{customer}", app.sim.base_url()))
        .bearer_auth("sk_test_operator")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    app.await_webhooks().await;
    assert_eq!(
        app.billing_state("acme").await["stripe_customer_id"],
        Value::Null
    );
    assert_eq!(
        plan_row(&app.read("acme", "plans").await, "team")["trial_available"],
        false
    );

    // No second trial.
    let second = subscribed(&app, "team", Some(2)).await;
    assert_ne!(second["customer"], first["customer"]);
    assert_eq!(second["status"], "active", "{second}");
    assert_eq!(second["trial_end"], Value::Null);
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "active");
    assert_eq!(state["trial_end"], Value::Null);
}

async fn checkout_takes_seats_for_a_per_seat_plan(backend: Backend) {
    let app = spawn_app(backend).await;
    for (plan, quantity) in [
        ("pro", json!(2)),
        ("team", json!(0)),
        ("team", json!(51)),
        ("team", json!("7")),
    ] {
        let response = app
            .post(
                "acme",
                "checkout",
                &app.token("acme", tenant_billing::domain::Role::Admin),
                Some(json!({"plan": plan, "quantity": quantity})),
            )
            .await;
        let problem = assert_problem(response, 422).await;
        assert_eq!(
            problem["errors"][0]["field"], "quantity",
            "{plan} {quantity}"
        );
    }
    let problem = assert_problem(app.checkout("acme", "free", None).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "plan");
    assert_eq!(app.stripe_requests("POST /v1/checkout/sessions"), 0);

    let subscription = subscribed(&app, "team", Some(7)).await;
    assert_eq!(subscription["items"]["data"][0]["quantity"], 7);
    assert_eq!(app.billing_state("acme").await["seats"], 7);
}

async fn checkout_is_refused_while_a_subscription_is_live(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = subscribed(&app, "team", None).await;
    let id = subscription["id"].as_str().unwrap();
    assert_eq!(
        app.billing_state("acme").await["subscription_status"],
        "trialing"
    );
    assert_problem(app.checkout("acme", "pro", None).await, 409).await;
    for (status, refused) in [("active", true), ("past_due", true), ("canceled", false)] {
        app.sim.set_subscription_status(id, status).unwrap();
        app.await_webhooks().await;
        let answer = app.checkout("acme", "pro", None).await;
        match refused {
            true => {
                assert_problem(answer, 409).await;
            }
            false => assert_eq!(answer.status(), 201, "after {status}"),
        }
    }
}

backend_tests!(
    a_trial_is_given_once_per_tenant,
    checkout_takes_seats_for_a_per_seat_plan,
    checkout_is_refused_while_a_subscription_is_live,
);
