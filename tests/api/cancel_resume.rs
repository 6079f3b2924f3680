//! `POST …/billing/subscription/cancel` and `…/resume`, and a change to
//! `free`: access continues to the period's end, repeating changes nothing,
//! resume undoes it, and the subscription ends at the period's end.

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, Backend, TestApp};

const SUBSCRIPTION_UPDATE: &str = "POST /v1/subscriptions/{id}";

async fn answer(app: &TestApp, action: &str, body: Option<Value>) -> Value {
    let response = app.subscription("acme", action, body).await;
    assert_eq!(response.status(), 200, "{action}");
    response.json().await.unwrap()
}

async fn cancel_then_resume(backend: Backend) {
    let app = spawn_app(backend).await;
    app.subscribed("acme", "pro", None).await;
    let before = app.billing_state("acme").await;

    let cancelled = answer(&app, "cancel", None).await;
    assert_eq!(cancelled["cancel_at_period_end"], true, "{cancelled}");
    assert_eq!(cancelled["plan"], "pro");
    assert_eq!(cancelled["subscription_status"], "active");
    assert_eq!(cancelled["pending_plan"], "free");
    assert_eq!(cancelled["pending_plan_at"], before["current_period_end"]);
    // Access continues to the period's end.
    assert_eq!(app.read("acme", "entitlements").await["reason"], "paying");
    let plans = app.read("acme", "plans").await;
    assert_eq!(plans["plans"][1]["current"], true);

    // Repeating it changes nothing and sends nothing.
    assert_eq!(answer(&app, "cancel", None).await, cancelled);
    assert_eq!(app.stripe_requests(SUBSCRIPTION_UPDATE), 1);

    let resumed = answer(&app, "resume", None).await;
    assert_eq!(resumed["cancel_at_period_end"], false, "{resumed}");
    assert_eq!(resumed["pending_plan"], Value::Null);
    assert_eq!(resumed["pending_plan_at"], Value::Null);
    assert_eq!(answer(&app, "resume", None).await, resumed);
    assert_eq!(app.stripe_requests(SUBSCRIPTION_UPDATE), 2);
    app.await_webhooks().await;
    assert_eq!(app.billing_state("acme").await, resumed);
    let audit = app.audit("acme");
    for action in ["subscription.cancel:ok", "subscription.resume:ok"] {
        assert_eq!(
            audit.iter().filter(|a| *a == action).count(),
            1,
            "{audit:?}"
        );
    }
}

async fn a_cancelled_subscription_ends_at_the_period_end_and_cannot_resume(backend: Backend) {
    let app = spawn_app(backend).await;
    app.subscribed("acme", "pro", None).await;
    // `free` is the same as cancel.
    let state = answer(&app, "change", Some(json!({"plan": "free"}))).await;
    assert_eq!(state["cancel_at_period_end"], true);
    assert_eq!(state["pending_plan"], "free");

    app.sim.advance_clock(32 * 24 * 3600);
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["plan"], "free", "{state}");
    assert_eq!(state["subscription_status"], "canceled");
    assert_eq!(state["pending_plan"], Value::Null);
    assert_eq!(app.read("acme", "entitlements").await["reason"], "free");

    let problem = assert_problem(app.subscription("acme", "resume", None).await, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("ended"),
        "{problem}"
    );
    assert_problem(app.subscription("acme", "cancel", None).await, 409).await;
    // A new Checkout is open again.
    assert_eq!(app.checkout("acme", "pro", None).await.status(), 201);
}

/// A pending downgrade to a paid plan gives way to a cancel (Stripe refuses
/// to cancel a subscription a schedule manages: the schedule is released).
async fn cancel_replaces_a_pending_downgrade(backend: Backend) {
    let app = spawn_app(backend).await;
    app.subscribe("acme", "team", Some(2)).await;
    app.await_webhooks().await;
    assert_eq!(app.change_plan("acme", "pro").await["pending_plan"], "pro");
    let cancelled = answer(&app, "cancel", None).await;
    assert_eq!(cancelled["pending_plan"], "free", "{cancelled}");
    assert_eq!(cancelled["cancel_at_period_end"], true);
    let resumed = answer(&app, "resume", None).await;
    assert_eq!(resumed["pending_plan"], Value::Null, "{resumed}");
    assert_eq!(resumed["plan"], "team");
}

backend_tests!(
    cancel_then_resume,
    a_cancelled_subscription_ends_at_the_period_end_and_cannot_resume,
    cancel_replaces_a_pending_downgrade,
);
