//! `GET …/billing/entitlements`: the rule for each status (README.md,
//! "Endpoints", Entitlements), the grace period of a past_due subscription, and
//! the billing state's `grace_until`.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp, TestDatabase};

/// Subscribes `tenant` to pro and waits until the service shows it.
async fn paying_pro(app: &TestApp, tenant: &str) -> String {
    let subscription = app.subscribed(tenant, "pro", None).await;
    subscription["id"].as_str().unwrap().to_owned()
}

async fn set_status(app: &TestApp, subscription: &str, status: &str) {
    app.sim
        .set_subscription_status(subscription, status)
        .unwrap();
    app.await_webhooks().await;
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn a_tenant_never_billed_has_frees(backend: Backend) {
    let app = spawn_app(backend).await;
    let entitlements = app.read("acme", "entitlements").await;
    // Free meters by the calendar month; exports are not included.
    let month = tenant_billing::domain::UsagePeriod::calendar_month(Utc::now().naive_utc());
    let standing = |meter: &str, name: &str, unit: &str, aggregation: &str, limit: i64| {
        json!({
            "meter": meter,
            "name": name,
            "unit": unit,
            "aggregation": aggregation,
            "period_start": month.start.and_utc(),
            "period_end": month.end.and_utc(),
            "used": 0,
            "limit": limit,
            "remaining": limit,
            "overage": "block",
        })
    };
    let usage = json!([
        standing("api_calls", "API calls", "calls", "sum", 1000),
        standing("exports", "Exports", "exports", "count", 0),
    ]);
    assert_eq!(
        entitlements,
        json!({
            "tenant_id": "acme",
            "plan": "free",
            "reason": "free",
            "features": [],
            "limits": {"projects": 3, "api_calls": 1000, "exports": 0},
            "grace_until": null,
            "usage": usage,
        })
    );
}

async fn a_paying_tenant_has_its_plans(backend: Backend) {
    let app = spawn_app(backend).await;
    paying_pro(&app, "acme").await;
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["plan"], "pro");
    assert_eq!(entitlements["reason"], "paying");
    assert_eq!(entitlements["features"], json!(["api", "exports"]));
    assert_eq!(
        entitlements["limits"],
        json!({"projects": 50, "api_calls": 100000, "exports": 200})
    );
    assert_eq!(entitlements["grace_until"], Value::Null);
}

async fn past_due_keeps_the_plan_for_the_grace_period(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = paying_pro(&app, "acme").await;
    let before = Utc::now();
    set_status(&app, &subscription, "past_due").await;
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["plan"], "pro", "{entitlements}");
    assert_eq!(entitlements["reason"], "grace");
    assert_eq!(entitlements["features"], json!(["api", "exports"]));
    // Seven days (billing.past_due_grace_days) from Stripe's time of the failure.
    let grace_until = time(&entitlements["grace_until"]);
    let seven_days = chrono::Duration::days(7);
    let slack = chrono::Duration::seconds(60);
    assert!(
        grace_until >= before + seven_days - slack
            && grace_until <= Utc::now() + seven_days + slack,
        "{grace_until}"
    );
    let state = app.billing_state("acme").await;
    assert_eq!(state["grace_until"], entitlements["grace_until"]);
    assert_eq!(state["plan"], "pro");

    // Paid again: the grace period is over for good.
    set_status(&app, &subscription, "active").await;
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["reason"], "paying");
    assert_eq!(entitlements["grace_until"], Value::Null);
    assert_eq!(app.billing_state("acme").await["grace_until"], Value::Null);
}

/// A renewal the card declines: the grace period counts from Stripe's time
/// of that first failed payment, and a failed retry does not move it.
async fn grace_counts_from_the_first_failed_payment(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = app.subscribe("acme", "pro", None).await;
    app.await_webhooks().await;
    let period_end = subscription["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();
    let customer = subscription["customer"].as_str().unwrap();
    app.sim.set_card_declines(customer, true).unwrap();
    app.sim.advance_clock(period_end - app.sim.now() + 60);
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "past_due", "{state}");
    let grace_until = time(&state["grace_until"]).timestamp();
    assert_eq!(grace_until, period_end + 7 * 24 * 3600, "{state}");
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["reason"], "grace");
    assert_eq!(entitlements["grace_until"], state["grace_until"]);

    // The first retry (three days later) fails too: same grace period.
    app.sim.advance_clock(3 * 24 * 3600);
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "past_due");
    assert_eq!(time(&state["grace_until"]).timestamp(), grace_until);
}

async fn past_due_after_the_grace_period_is_free(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__BILLING__PAST_DUE_GRACE_DAYS", "0")],
    )
    .await;
    let subscription = paying_pro(&app, "acme").await;
    set_status(&app, &subscription, "past_due").await;
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["plan"], "free", "{entitlements}");
    assert_eq!(entitlements["reason"], "free");
    assert_eq!(
        entitlements["limits"],
        json!({"projects": 3, "api_calls": 1000, "exports": 0})
    );
    assert!(entitlements["grace_until"].is_string());
    // The billing state still names the subscription's plan and status.
    let state = app.billing_state("acme").await;
    assert_eq!(state["plan"], "pro");
    assert_eq!(state["subscription_status"], "past_due");
}

async fn ended_and_unpaid_subscriptions_are_free(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = paying_pro(&app, "acme").await;
    set_status(&app, &subscription, "unpaid").await;
    assert_eq!(app.read("acme", "entitlements").await["reason"], "free");
    set_status(&app, &subscription, "canceled").await;
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["plan"], "free");
    assert_eq!(entitlements["reason"], "free");
}

backend_tests!(
    a_tenant_never_billed_has_frees,
    a_paying_tenant_has_its_plans,
    past_due_keeps_the_plan_for_the_grace_period,
    grace_counts_from_the_first_failed_payment,
    past_due_after_the_grace_period_is_free,
    ended_and_unpaid_subscriptions_are_free,
);
