//! Issue 10's "Done when": an admin walks a tenant free → team (trial) → pro
//! (scheduled downgrade) → team (immediate upgrade) → cancel → resume → free
//! through the API, each step checked in the billing state and the
//! entitlements, with Stripe's clock moving the scheduled steps on.

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{spawn_app, Backend, TestApp};

const DAY: i64 = 24 * 3600;

/// The state and entitlements now, after every webhook owed was delivered.
async fn settled(app: &TestApp) -> (Value, Value) {
    app.await_webhooks().await;
    (
        app.billing_state("acme").await,
        app.read("acme", "entitlements").await,
    )
}

fn check(state: &Value, expected: Value) {
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&state[key], value, "{key} in {state}");
    }
}

async fn free_team_trial_pro_team_cancel_resume_free(backend: Backend) {
    let app = spawn_app(backend).await;

    // free
    let (state, entitlements) = settled(&app).await;
    check(&state, json!({"plan": "free", "subscription_status": null}));
    check(&entitlements, json!({"plan": "free", "reason": "free"}));

    // → team, with its 14-day trial, 3 seats
    app.subscribe("acme", "team", Some(3)).await;
    let (state, entitlements) = settled(&app).await;
    check(
        &state,
        json!({"plan": "team", "subscription_status": "trialing", "seats": 3,
               "pending_plan": null, "cancel_at_period_end": false}),
    );
    assert!(state["trial_end"].is_string());
    check(&entitlements, json!({"plan": "team", "reason": "trialing"}));
    let trial_end = state["trial_end"].clone();

    // → pro: a downgrade, scheduled for the end of the current period (the trial's)
    let state = app.change_plan("acme", "pro").await;
    check(
        &state,
        json!({"plan": "team", "pending_plan": "pro", "pending_plan_at": trial_end}),
    );
    let (_, entitlements) = settled(&app).await;
    check(&entitlements, json!({"plan": "team", "reason": "trialing"}));
    app.sim.advance_clock(15 * DAY);
    let (state, entitlements) = settled(&app).await;
    check(
        &state,
        json!({"plan": "pro", "subscription_status": "active", "seats": null,
               "pending_plan": null, "pending_plan_at": null}),
    );
    check(&entitlements, json!({"plan": "pro", "reason": "paying"}));
    assert_eq!(entitlements["features"], json!(["api", "exports"]));

    // → team: an upgrade, at once, with its prorated difference invoiced
    let state = app
        .subscription(
            "acme",
            "change",
            Some(json!({"plan": "team", "quantity": 3})),
        )
        .await;
    assert_eq!(state.status(), 200);
    let (state, entitlements) = settled(&app).await;
    check(
        &state,
        json!({"plan": "team", "subscription_status": "active", "seats": 3,
               "pending_plan": null}),
    );
    check(&entitlements, json!({"plan": "team", "reason": "paying"}));
    let customer = state["stripe_customer_id"].as_str().unwrap();
    assert_eq!(app.invoices_for(customer, "subscription_update").len(), 1);

    // → cancel: at the period's end; access continues
    let response = app.subscription("acme", "cancel", None).await;
    assert_eq!(response.status(), 200);
    let (state, entitlements) = settled(&app).await;
    check(
        &state,
        json!({"plan": "team", "cancel_at_period_end": true, "pending_plan": "free",
               "pending_plan_at": state["current_period_end"]}),
    );
    check(&entitlements, json!({"plan": "team", "reason": "paying"}));

    // → resume
    let response = app.subscription("acme", "resume", None).await;
    assert_eq!(response.status(), 200);
    let (state, entitlements) = settled(&app).await;
    check(
        &state,
        json!({"plan": "team", "cancel_at_period_end": false, "pending_plan": null}),
    );
    check(&entitlements, json!({"plan": "team", "reason": "paying"}));

    // → free: cancels at the period's end, then the clock gets there
    let state = app.change_plan("acme", "free").await;
    check(
        &state,
        json!({"plan": "team", "cancel_at_period_end": true, "pending_plan": "free"}),
    );
    app.sim.advance_clock(32 * DAY);
    let (state, entitlements) = settled(&app).await;
    check(
        &state,
        json!({"plan": "free", "subscription_status": "canceled", "pending_plan": null,
               "seats": null}),
    );
    check(
        &entitlements,
        json!({"plan": "free", "reason": "free", "features": [], "grace_until": null}),
    );
}

backend_tests!(free_team_trial_pro_team_cancel_resume_free);
