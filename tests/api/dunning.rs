//! Failed payments, driven by the simulator's clock: a declined renewal makes
//! the subscription past_due with the plan kept for the grace period; paying
//! the open invoice restores it; declines through every retry end on free.
//! Late, repeated and out-of-order invoice events change nothing.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use stripe_sim::FailedPaymentAction;

use crate::backend_tests;
use crate::helpers::{spawn_app, Backend, TestApp};

const DAY: i64 = 86_400;

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// Moves the simulator's clock a minute past the current period's end;
/// answers that end.
async fn to_renewal(app: &TestApp, tenant: &str) -> DateTime<Utc> {
    let end = time(&app.billing_state(tenant).await["current_period_end"]);
    app.sim.advance_clock(end.timestamp() - app.sim.now() + 60);
    app.await_webhooks().await;
    end
}

fn events_of(app: &TestApp, kind: &str) -> Vec<String> {
    app.events_oldest_first()
        .into_iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e.to_string())
        .collect()
}

/// Acceptance: declines at renewal → past_due with grace and banner data;
/// card fixed and invoice paid → active; a replayed failure changes nothing.
async fn a_declined_renewal_keeps_the_plan_for_the_grace_period_until_paid(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = app.subscribe("acme", "pro", None).await;
    let customer = subscription["customer"].as_str().unwrap().to_owned();
    app.await_webhooks().await;
    app.sim.set_card_declines(&customer, true).unwrap();
    let renewal = to_renewal(&app, "acme").await;

    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "past_due", "{state}");
    assert_eq!(state["plan"], "pro");
    // The banner's data: the plan is kept for 7 days (billing.past_due_grace_days)
    // from the failed renewal, by Stripe's clock.
    let grace = time(&state["grace_until"]) - renewal;
    assert!(
        grace >= Duration::days(7) && grace <= Duration::days(7) + Duration::minutes(1),
        "{state}"
    );
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["plan"], "pro");
    assert_eq!(entitlements["reason"], "grace");
    assert_eq!(entitlements["grace_until"], state["grace_until"]);
    let failures = events_of(&app, "invoice.payment_failed");
    assert_eq!(failures.len(), 1);
    assert!(app
        .audit("acme")
        .iter()
        .any(|a| a.starts_with("subscription.")));

    // The admin fixes the card in the portal and the open invoice is paid.
    app.sim.set_card_declines(&customer, false).unwrap();
    let (paid, still_open) = app.sim.pay_open_invoices(&customer);
    assert_eq!((paid.len(), still_open.len()), (1, 0));
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "active", "{state}");
    assert_eq!(state["grace_until"], Value::Null);
    assert_eq!(app.read("acme", "entitlements").await["reason"], "paying");

    // The failure again, late and twice: nothing changes.
    for _ in 0..2 {
        let answer = app.deliver_event(&failures[0]).await;
        assert!(answer.status().is_success(), "{}", answer.status());
    }
    assert_eq!(app.billing_state("acme").await, state);
}

/// Acceptance: declines through every retry (3, 5 and 7 days after the first
/// failure) → the subscription is cancelled and the tenant is on free; the
/// failure events replayed afterwards in any order change nothing.
async fn declines_through_every_retry_end_on_free(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sim
        .set_after_failed_payments(FailedPaymentAction::Cancel);
    let subscription = app.subscribe("acme", "pro", None).await;
    let customer = subscription["customer"].as_str().unwrap().to_owned();
    app.await_webhooks().await;
    app.sim.set_card_declines(&customer, true).unwrap();
    to_renewal(&app, "acme").await;
    assert_eq!(
        app.billing_state("acme").await["subscription_status"],
        "past_due"
    );
    let grace_until = app.billing_state("acme").await["grace_until"].clone();

    // Two retries later (day 5), still past due, still in grace, same end.
    app.sim.advance_clock(5 * DAY + 60);
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "past_due", "{state}");
    assert_eq!(
        state["grace_until"], grace_until,
        "grace counts from the first failure"
    );
    assert_eq!(app.read("acme", "entitlements").await["reason"], "grace");

    // The last retry (day 7) fails too: cancelled, free.
    app.sim.advance_clock(2 * DAY + 60);
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "canceled", "{state}");
    assert_eq!(state["plan"], "free");
    assert_eq!(state["grace_until"], Value::Null);
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(
        (entitlements["plan"].clone(), entitlements["reason"].clone()),
        ("free".into(), "free".into())
    );
    let failures = events_of(&app, "invoice.payment_failed");
    assert_eq!(failures.len(), 4, "the renewal and its three retries");

    // Replayed newest first, then oldest first: nothing changes.
    for payload in failures.iter().rev().chain(failures.iter()) {
        assert!(app.deliver_event(payload).await.status().is_success());
    }
    assert_eq!(app.billing_state("acme").await, state);
}

/// With `--after-failed-payments unpaid` the subscription stays, `unpaid`, on
/// free's entitlements (README.md, "Endpoints": anything but active, trialing
/// or a past_due in grace is free); paying the open invoice brings the plan
/// back. Each status move is audited once.
async fn unpaid_is_free_until_the_invoice_is_paid(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sim
        .set_after_failed_payments(FailedPaymentAction::Unpaid);
    let subscription = app.subscribe("acme", "pro", None).await;
    let customer = subscription["customer"].as_str().unwrap();
    app.await_webhooks().await;
    app.sim.set_card_declines(customer, true).unwrap();
    to_renewal(&app, "acme").await;
    app.sim.advance_clock(7 * DAY + 120);
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "unpaid", "{state}");
    assert_eq!(state["plan"], "free");
    assert!(state["grace_until"].is_null());
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["plan"], "free", "{entitlements}");

    app.sim.set_card_declines(customer, false).unwrap();
    let (paid, _) = app.sim.pay_open_invoices(customer);
    assert!(!paid.is_empty());
    app.await_webhooks().await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["subscription_status"], "active", "{state}");
    assert_eq!(state["plan"], "pro");
    assert_eq!(app.read("acme", "entitlements").await["reason"], "paying");
    for (from, to) in [
        ("active", "past_due"),
        ("past_due", "unpaid"),
        ("unpaid", "active"),
    ] {
        let needle = format!("\"subscription_status\":[\"{from}\",\"{to}\"]");
        let moves = app
            .audit_records("acme")
            .iter()
            .filter(|a| a.detail.as_deref().is_some_and(|d| d.contains(&needle)))
            .count();
        assert_eq!(moves, 1, "{from} -> {to}");
    }
}

backend_tests!(
    a_declined_renewal_keeps_the_plan_for_the_grace_period_until_paid,
    declines_through_every_retry_end_on_free,
    unpaid_is_free_until_the_invoice_is_paid,
);
