//! `POST …/billing/subscription/change|cancel|resume`: the refusals (bad
//! input, no subscription, members), each before anything reaches Stripe.

use serde_json::json;
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, Backend, TestApp};

/// Stripe requests that write a subscription or schedule.
fn subscription_writes(app: &TestApp) -> u64 {
    app.sim
        .stats()
        .requests
        .iter()
        .filter(|(key, _)| key.starts_with("POST /v1/subscription"))
        .map(|(_, n)| n)
        .sum()
}

async fn bad_input_is_refused_before_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    app.subscribe("acme", "pro", None).await;
    app.await_webhooks().await;
    let cases = [
        (json!({"plan": "enterprise"}), "plan"),
        (json!({"plan": ""}), "plan"),
        (json!({"plan": "pro", "quantity": 2}), "quantity"),
        (json!({"plan": "team", "quantity": 0}), "quantity"),
        (json!({"plan": "team", "quantity": -3}), "quantity"),
        (json!({"plan": "team", "quantity": 51}), "quantity"),
        (json!({"plan": "team", "quantity": 2.5}), "quantity"),
        (json!({"plan": "team", "quantity": "4"}), "quantity"),
        (json!({"plan": "team", "quantity": 1e30}), "quantity"),
        (json!({"quantity": 2}), "plan"),
        (json!({"plan": "team", "seats": 2}), "seats"),
    ];
    for (body, field) in cases {
        let response = app.subscription("acme", "change", Some(body.clone())).await;
        let problem = assert_problem(response, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        let text = problem.to_string();
        assert!(
            !text.contains("enterprise") && !text.contains("1e30"),
            "echoed: {text}"
        );
    }
    assert_eq!(subscription_writes(&app), 0);
    assert_eq!(app.billing_state("acme").await["plan"], "pro");
}

async fn without_a_subscription_every_change_is_409(backend: Backend) {
    let app = spawn_app(backend).await;
    // A tenant with no row, and one with a customer but no subscription.
    for tenant in ["ghost", "acme"] {
        if tenant == "acme" {
            let admin = app.token(tenant, Role::Admin);
            app.post(tenant, "customer", &admin, None).await;
        }
        for (action, body) in [
            ("change", Some(json!({"plan": "pro"}))),
            ("change", Some(json!({"plan": "free"}))),
            ("cancel", None),
            ("resume", None),
        ] {
            let response = app.subscription(tenant, action, body).await;
            let problem = assert_problem(response, 409).await;
            assert!(problem["detail"].as_str().unwrap().contains("Checkout"));
        }
    }
    assert_eq!(subscription_writes(&app), 0);
}

async fn members_may_not_change_the_subscription(backend: Backend) {
    let app = spawn_app(backend).await;
    app.subscribe("acme", "pro", None).await;
    app.await_webhooks().await;
    let member = app.token("acme", Role::Member);
    for (action, body) in [
        ("change", Some(json!({"plan": "team"}))),
        ("cancel", None),
        ("resume", None),
    ] {
        let response = app
            .post("acme", &format!("subscription/{action}"), &member, body)
            .await;
        assert_problem(response, 403).await;
    }
    assert_eq!(subscription_writes(&app), 0);
}

backend_tests!(
    bad_input_is_refused_before_stripe,
    without_a_subscription_every_change_is_409,
    members_may_not_change_the_subscription,
);
