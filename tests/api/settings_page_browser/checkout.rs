//! The way in: Upgrade through the simulator's hosted Checkout and back to a
//! page that confirms (on both backends), a double click, Stripe failing, and
//! a Checkout left with its Cancel link.

use std::time::Duration;

use serde_json::json;
use stripe_sim::{Fault, FaultKind};
use tenant_billing::domain::Role;

use super::{open_loaded, pay_on_the_hosted_checkout, SHORT};
use crate::backend_tests;
use crate::browser::Browser;
use crate::dev_server::DevServer;
use crate::helpers::{spawn_app, Backend, TestApp};

/// The page shows the plan bought within 30 s of the return
/// (`CONFIRM_LIMIT_MS` in assets/settings/billing.js).
const CONFIRM_LIMIT: Duration = Duration::from_secs(30);

/// Holds Stripe's subscription reads for `ms`: the webhook handler (and a
/// sync) re-read the subscription, so the tenant turns paying that much later.
fn slow_subscription_reads(app: &TestApp, ms: u64) {
    for path in ["/v1/subscriptions/{id}", "/v1/subscriptions"] {
        app.sim.add_fault(Fault {
            method: "GET".into(),
            path: path.into(),
            count: 20,
            kind: FaultKind::DelayMs(ms),
        });
    }
}

/// The tenant's current plan (by `subscription_status` and `plan`), as the API says.
async fn plan_and_status(app: &TestApp) -> (String, String) {
    let state = app.billing_state("acme").await;
    (
        state["plan"].as_str().unwrap_or_default().to_owned(),
        state["subscription_status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The Upgrade click: Free → Upgrade on Pro → the simulator's hosted Checkout
/// → Pay → back on the page, confirming, then Pro within 30 s.
async fn upgrade_pays_on_the_hosted_checkout_and_returns_to_a_confirming_page_then_pro(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_visible("plan-card-pro", SHORT).await;
    assert_eq!(browser.text("plan-name").await, "Free");
    assert_eq!(browser.text("choose-plan-free").await, "Current");
    assert_eq!(browser.text("choose-plan-pro").await, "Upgrade");
    assert_eq!(browser.text("choose-plan-team").await, "Upgrade");
    browser.screenshots("free").await;

    // Stripe is slow to show the subscription, so the confirming state lasts.
    slow_subscription_reads(&app, 1500);
    browser.click("choose-plan-pro").await;
    pay_on_the_hosted_checkout(&browser, &app.sim.base_url(), Some("checkout")).await;

    browser.wait_visible("confirming", SHORT).await;
    assert!(browser.current_url().await.starts_with(&app.address));
    browser.screenshots("confirming").await;
    browser.wait_text("plan-name", "Pro", CONFIRM_LIMIT).await;
    browser
        .wait_js(
            "the confirming state to end",
            "return document.querySelector('[data-testid=confirming]').hidden",
            json!([]),
            SHORT,
        )
        .await;
    assert_eq!(browser.text("subscription-status").await, "Active");
    assert!(browser.text("period-end").await.starts_with("Renews on"));
    assert_eq!(browser.text("choose-plan-pro").await, "Current");
    assert_eq!(browser.text("choose-plan-free").await, "Downgrade");
    // The address bar no longer says ?checkout=success (a reload would not
    // confirm again) and never showed the token after the first load.
    assert_eq!(
        browser.current_url().await,
        format!("{}/settings/billing", app.address)
    );
    assert_eq!(
        plan_and_status(&app).await,
        ("pro".to_owned(), "active".to_owned())
    );
    browser.screenshots("pro").await;
    app.sim.clear_faults();
}

backend_tests!(upgrade_pays_on_the_hosted_checkout_and_returns_to_a_confirming_page_then_pro);

/// The "done when": `cargo run`, open the link from the log, click
/// Upgrade, pay on the simulator's page, see Pro; nothing else.
#[actix_web::test]
async fn a_newcomer_opens_the_logged_link_upgrades_pays_and_sees_pro() {
    let server = DevServer::start(&[]);
    let browser = Browser::start().await;
    browser.goto(&server.link).await;
    browser.wait_text("plan-name", "Free", SHORT).await;
    browser.click("choose-plan-pro").await;
    // The in-process simulator's hosted page, on its own port.
    browser
        .wait_js(
            "the hosted checkout",
            "return location.origin !== arguments[0] && !!document.getElementById('pay')",
            json!([server.origin]),
            SHORT,
        )
        .await;
    browser.click_css("#pay").await;
    browser.wait_text("plan-name", "Pro", CONFIRM_LIMIT).await;
    assert_eq!(
        browser.current_url().await,
        format!("{}/settings/billing", server.origin)
    );
}

#[actix_web::test]
async fn double_clicking_upgrade_opens_one_checkout_session() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_visible("choose-plan-pro", SHORT).await;
    // The first click's request is still running when the second lands.
    app.sim.add_fault(Fault {
        method: "POST".into(),
        path: "/v1/checkout/sessions".into(),
        count: 2,
        kind: FaultKind::DelayMs(800),
    });
    browser.double_click("choose-plan-pro").await;
    let disabled = browser
        .js(
            "return document.querySelector('[data-testid=choose-plan-pro]').disabled",
            json!([]),
        )
        .await;
    assert_eq!(
        disabled,
        json!(true),
        "the button is enabled while its request runs"
    );
    pay_on_the_hosted_checkout(&browser, &app.sim.base_url(), None).await;
    let stats = app.sim.stats();
    assert_eq!(
        stats.requests.get("POST /v1/checkout/sessions").copied(),
        Some(1),
        "{:?}",
        stats.requests
    );
    assert_eq!(stats.objects.get("checkout_sessions").copied(), Some(1));
    app.sim.clear_faults();
}

/// Stripe failing reads as the problem's own sentence and the button works
/// again; leaving Checkout with its Cancel link comes back to a page that
/// says nothing was charged.
#[actix_web::test]
async fn a_failed_or_cancelled_checkout_reads_as_a_sentence() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_visible("choose-plan-pro", SHORT).await;
    app.sim.add_fault(Fault {
        method: "POST".into(),
        path: "/v1/checkout/sessions".into(),
        count: 10,
        kind: FaultKind::Status(500),
    });
    browser.click("choose-plan-pro").await;
    browser.wait_visible("error", SHORT).await;
    assert_eq!(
        browser.text("error").await,
        "The payment provider failed; nothing was changed, try again."
    );
    browser
        .wait_js(
            "the button to work again",
            "return !document.querySelector('[data-testid=choose-plan-pro]').disabled",
            json!([]),
            SHORT,
        )
        .await;
    browser.screenshots("stripe-failed").await;

    app.sim.clear_faults();
    browser.click("choose-plan-pro").await;
    browser
        .wait_js(
            "the hosted checkout",
            "return !!document.getElementById('cancel')",
            json!([]),
            SHORT,
        )
        .await;
    browser.click_css("#cancel").await;
    browser
        .wait_js(
            "the cancelled notice",
            "return document.getElementById('notice')?.textContent === 'Checkout was cancelled. Nothing was charged.'",
            json!([]),
            SHORT,
        )
        .await;
    assert_eq!(browser.text("plan-name").await, "Free");
    assert!(!browser.visible("confirming").await);
    assert_eq!(
        browser.current_url().await,
        format!("{}/settings/billing", app.address)
    );
}
