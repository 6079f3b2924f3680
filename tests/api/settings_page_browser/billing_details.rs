//! The tenant's billing details: the portal behind Manage billing, the profile
//! form, seats and invoices.

use serde_json::json;
use stripe_sim::{Fault, FaultKind};
use tenant_billing::domain::Role;

use super::{open_loaded, SHORT};
use crate::browser::Browser;
use crate::helpers::{spawn_app, Backend, TestApp};

#[actix_web::test]
async fn manage_billing_opens_the_portal_and_returns_to_the_page() {
    let app = spawn_app(Backend::Sqlite).await;
    app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    browser.screenshots("pro-admin").await;

    // While the portal session is being created the button is disabled.
    app.sim.add_fault(Fault {
        method: "POST".into(),
        path: "/v1/billing_portal/sessions".into(),
        count: 1,
        kind: FaultKind::DelayMs(1000),
    });
    browser.click("manage-billing").await;
    let busy = browser
        .js(
            "const b = document.querySelector('[data-testid=manage-billing]'); \
             return [b.disabled, b.getAttribute('aria-busy')]",
            json!([]),
        )
        .await;
    assert_eq!(busy, json!([true, "true"]));

    let portal = format!("{}/billing_portal/", app.sim.base_url());
    browser
        .wait_js(
            "the simulator's billing portal",
            "return location.href.startsWith(arguments[0]) && document.title === 'Billing portal'",
            json!([portal]),
            SHORT,
        )
        .await;
    browser.screenshots("portal").await;
    browser.click_css("#return").await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    assert!(browser.current_url().await.starts_with(&app.address));
}

#[actix_web::test]
async fn the_profile_form_saves_and_explains_what_is_wrong() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;

    browser.fill("profile-email", "not-an-email").await;
    browser.click("profile-save").await;
    browser.wait_visible("error", SHORT).await;
    let text = browser.text("error").await;
    assert!(text.starts_with("Billing email"), "{text}");
    assert!(!text.contains('{'), "{text}");
    browser.screenshots("profile-error").await;

    browser.fill("profile-email", "billing@acme.test").await;
    browser.fill("profile-name", "Acme Inc").await;
    browser.click("profile-save").await;
    browser
        .wait_js(
            "the saved notice",
            "return document.getElementById('notice').textContent.includes('saved')",
            json!([]),
            SHORT,
        )
        .await;
    assert!(!browser.visible("error").await);
    let state = app.billing_state("acme").await;
    assert_eq!(state["billing_email"], "billing@acme.test");
    assert_eq!(state["billing_name"], "Acme Inc");
}

/// Subscribes acme to Team with `seats` through Checkout (a 14-day trial).
async fn subscribe_to_team(app: &TestApp, seats: u32) {
    let token = app.token("acme", Role::Admin);
    let session: serde_json::Value = app
        .post(
            "acme",
            "checkout",
            &token,
            Some(json!({"plan": "team", "quantity": seats})),
        )
        .await
        .json()
        .await
        .unwrap();
    app.sim
        .complete_checkout(session["checkout_session_id"].as_str().unwrap())
        .unwrap();
    app.await_webhooks().await;
}

/// Seats of a per-seat plan are saved with `PUT …/billing/seats`: the new
/// count shows and Stripe's quantity follows. A count below one never leaves
/// the page.
#[actix_web::test]
async fn seats_are_saved_and_stripe_follows() {
    let app = spawn_app(Backend::Sqlite).await;
    subscribe_to_team(&app, 2).await;
    let token = app.token("acme", Role::Admin);
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &token).await;
    browser.wait_visible("seats-input", SHORT).await;
    let shown = browser
        .js(
            "return document.querySelector('[data-testid=seats-input]').value",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!("2"));

    let updates = app.stripe_requests("POST /v1/subscriptions/{id}");
    browser.fill("seats-input", "0").await;
    browser.click("seats-save").await;
    browser.wait_text("error", "at least 1", SHORT).await;
    assert_eq!(app.stripe_requests("POST /v1/subscriptions/{id}"), updates);

    browser.fill("seats-input", "5").await;
    browser.click("seats-save").await;
    browser
        .wait_js(
            "the new seat count",
            "return document.getElementById('notice').textContent.includes('5 seats')",
            json!([]),
            SHORT,
        )
        .await;
    assert_eq!(app.billing_state("acme").await["seats"], 5);
    let subscription = &app.sim.subscriptions()[0];
    assert_eq!(subscription["items"]["data"][0]["quantity"], 5);
    browser.screenshots("seats").await;
}

/// Invoices are listed, one row each, with links to Stripe's hosted page and
/// PDF (opened in a new tab, without a Referer).
#[actix_web::test]
async fn invoices_are_listed_with_their_links() {
    let app = spawn_app(Backend::Sqlite).await;
    app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    let token = app.token("acme", Role::Admin);
    let answer = app
        .get("/v1/tenants/acme/billing/invoices", Some(&token))
        .await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &token).await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    assert_eq!(answer.status(), 200);
    let listed: serde_json::Value = answer.json().await.unwrap();
    let count = listed["invoices"].as_array().map_or(0, Vec::len);
    assert!(count >= 1, "{listed}");
    browser.wait_visible("invoices", SHORT).await;
    let rows = browser
        .js(
            "return document.querySelectorAll('[data-testid=invoice-row]').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, json!(count));
    let links = browser
        .js(
            "return [...document.querySelectorAll('[data-testid=invoice-row] a')] \
             .map((a) => [a.href, a.rel, a.target])",
            json!([]),
        )
        .await;
    let links: Vec<(String, String, String)> = serde_json::from_value(links).unwrap();
    assert!(links.len() >= count, "{links:?}");
    for (href, rel, target) in links {
        assert!(href.starts_with(&app.sim.base_url()), "{href}");
        assert!(rel.contains("noreferrer") && target == "_blank");
    }
    browser.screenshots("invoices").await;
}
