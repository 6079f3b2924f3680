//! A subscribed tenant's plan: changed in place, downgraded or cancelled only
//! after a question, and its trial or failed payment said on the page.

use serde_json::json;
use tenant_billing::domain::Role;

use super::{open_loaded, SHORT};
use crate::browser::Browser;
use crate::helpers::{spawn_app, Backend};

/// A tenant on Pro: Downgrade (to Free) and Cancel ask in the page first; No
/// (or Escape) changes nothing; Yes cancels at the period's end; Resume undoes it.
#[actix_web::test]
async fn downgrade_and_cancel_ask_first_and_resume_undoes_a_cancel() {
    let app = spawn_app(Backend::Sqlite).await;
    app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    let updates = || {
        app.sim
            .stats()
            .requests
            .get("POST /v1/subscriptions/{id}")
            .copied()
            .unwrap_or(0)
    };
    let before = updates();

    assert_eq!(browser.text("choose-plan-free").await, "Downgrade");
    browser.click("choose-plan-free").await;
    browser.wait_visible("confirm-yes", SHORT).await;
    assert!(browser.text("confirm-no").await.len() > 1);
    let question = browser
        .js(
            "return document.getElementById('confirm-text').textContent",
            json!([]),
        )
        .await;
    assert!(question.as_str().unwrap().contains("Free"), "{question}");
    // Focus waits on the safe answer.
    let focused = browser
        .js("return document.activeElement.dataset.testid", json!([]))
        .await;
    assert_eq!(focused, json!("confirm-no"));
    browser.screenshots("confirm-downgrade").await;
    browser.click("confirm-no").await;
    assert!(!browser.visible("confirm-yes").await);

    browser.click("cancel-subscription").await;
    browser.wait_visible("confirm-yes", SHORT).await;
    browser.screenshots("confirm-cancel").await;
    browser.keys("\u{E00C}").await; // Escape
    assert!(!browser.visible("confirm-yes").await);
    assert_eq!(updates(), before, "a declined question reached Stripe");
    assert_eq!(
        app.billing_state("acme").await["cancel_at_period_end"],
        false
    );

    browser.click("cancel-subscription").await;
    browser.wait_visible("confirm-yes", SHORT).await;
    browser.click("confirm-yes").await;
    browser.wait_text("cancel-notice", "Ends on", SHORT).await;
    assert!(browser.visible("resume-subscription").await);
    assert!(!browser.visible("cancel-subscription").await);
    assert!(!browser.visible("period-end").await);
    assert_eq!(
        app.billing_state("acme").await["cancel_at_period_end"],
        true
    );
    browser.screenshots("cancelled").await;

    browser.click("resume-subscription").await;
    browser.wait_text("period-end", "Renews on", SHORT).await;
    assert!(!browser.visible("cancel-notice").await);
    assert_eq!(
        app.billing_state("acme").await["cancel_at_period_end"],
        false
    );

    browser.click("choose-plan-free").await;
    browser.wait_visible("confirm-yes", SHORT).await;
    browser.click("confirm-yes").await;
    browser.wait_text("cancel-notice", "Ends on", SHORT).await;
    assert_eq!(
        app.billing_state("acme").await["cancel_at_period_end"],
        true
    );
}

/// A paying tenant changes plan without Checkout: an upgrade applies at
/// once, a downgrade is scheduled for the period's end (asked first), and
/// "Keep this plan" withdraws it. Team shows its seats.
#[actix_web::test]
async fn a_paying_tenant_changes_plan_in_place() {
    let app = spawn_app(Backend::Sqlite).await;
    app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    let sessions = app.sim.stats().objects.get("checkout_sessions").copied();

    browser.click("choose-plan-team").await;
    browser.wait_text("plan-name", "Team", SHORT).await;
    assert_eq!(
        app.sim.stats().objects.get("checkout_sessions").copied(),
        sessions
    );
    assert!(browser.current_url().await.starts_with(&app.address));
    browser.wait_visible("seats-input", SHORT).await;
    let seats = browser
        .js(
            "return document.querySelector('[data-testid=seats-input]').value",
            json!([]),
        )
        .await;
    assert_eq!(seats, json!("1"));
    browser.screenshots("team").await;

    assert_eq!(browser.text("choose-plan-pro").await, "Downgrade");
    browser.click("choose-plan-pro").await;
    browser.wait_visible("confirm-yes", SHORT).await;
    browser.click("confirm-yes").await;
    browser
        .wait_js(
            "the scheduled change",
            "return document.getElementById('pending-notice').textContent.startsWith('Changes to Pro on')",
            json!([]),
            SHORT,
        )
        .await;
    assert_eq!(browser.text("choose-plan-pro").await, "Scheduled");
    assert_eq!(browser.text("choose-plan-team").await, "Keep this plan");
    assert_eq!(app.billing_state("acme").await["pending_plan"], "pro");
    browser.screenshots("downgrade-scheduled").await;

    browser.click("choose-plan-team").await;
    browser
        .wait_js(
            "the scheduled change to go",
            "return document.getElementById('pending-notice').hidden",
            json!([]),
            SHORT,
        )
        .await;
    assert_eq!(browser.text("choose-plan-team").await, "Current");
    assert_eq!(app.billing_state("acme").await["pending_plan"], json!(null));
}

/// Team through Checkout starts with its 14-day trial: the page says when
/// the trial ends.
#[actix_web::test]
async fn a_trial_shows_when_it_ends() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token("acme", Role::Admin);
    let session: serde_json::Value = app
        .post(
            "acme",
            "checkout",
            &token,
            Some(json!({"plan": "team", "quantity": 3})),
        )
        .await
        .json()
        .await
        .unwrap();
    app.sim
        .complete_checkout(session["checkout_session_id"].as_str().unwrap())
        .unwrap();
    app.await_webhooks().await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &token).await;
    browser.wait_text("plan-name", "Team", SHORT).await;
    assert_eq!(browser.text("subscription-status").await, "Trial");
    assert!(browser.text("trial-end").await.starts_with("Trial ends on"));
    assert!(!browser.visible("period-end").await);
    let seats = browser
        .js(
            "return document.querySelector('[data-testid=seats-input]').value",
            json!([]),
        )
        .await;
    assert_eq!(seats, json!("3"));
    browser.screenshots("trial").await;
}

#[actix_web::test]
async fn past_due_shows_a_banner() {
    let app = spawn_app(Backend::Sqlite).await;
    let subscription = app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    app.sim
        .set_subscription_status(&subscription, "past_due")
        .unwrap();
    app.await_webhooks().await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_visible("past-due-banner", SHORT).await;
    let banner = browser.text("past-due-banner").await;
    assert!(banner.contains("payment failed"), "{banner}");
    assert!(banner.contains("Manage billing"), "{banner}");
    // The plan's grace period (billing.past_due_grace_days) is named.
    assert!(banner.contains("Pro stays active until"), "{banner}");
    assert_eq!(browser.text("subscription-status").await, "Past due");
    browser.screenshots("past-due").await;
}
