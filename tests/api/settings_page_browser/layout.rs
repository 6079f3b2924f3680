//! Reachable by keyboard alone, and readable at 375 px without scrolling
//! sideways.

use serde_json::json;
use tenant_billing::domain::Role;

use super::{open_loaded, SHORT};
use crate::browser::Browser;
use crate::helpers::{spawn_app, Backend};

#[actix_web::test]
async fn keyboard_alone_reaches_and_presses_manage_billing() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    let mut reached = false;
    for _ in 0..20 {
        browser.keys("\u{E004}").await; // Tab
        let focused = browser
            .js(
                "return document.activeElement?.dataset?.testid ?? null",
                json!([]),
            )
            .await;
        if focused == json!("manage-billing") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached Manage billing");
    // Focus is visible: the focused button draws an outline.
    let outline = browser
        .js(
            "const s = getComputedStyle(document.activeElement); \
             return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2",
            json!([]),
        )
        .await;
    assert_eq!(outline, json!(true));
    browser.screenshots("keyboard-focus").await;
    browser.keys("\u{E007}").await; // Enter
    let portal = format!("{}/billing_portal/", app.sim.base_url());
    browser
        .wait_js(
            "the portal, opened with Enter",
            "return location.href.startsWith(arguments[0])",
            json!([portal]),
            SHORT,
        )
        .await;
}

#[actix_web::test]
async fn at_375_px_the_page_does_not_scroll_sideways() {
    let app = spawn_app(Backend::Sqlite).await;
    app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    let token = app.token("acme", Role::Admin);
    app.put_profile(
        "acme",
        &token,
        json!({"billing_email": "a-rather-long-billing-address@accounts-payable.acme.test",
               "billing_name": "Acme Incorporated International Holdings"}),
    )
    .await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &token).await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    assert!(!browser.scrolls_sideways_at(375, 812).await);
    assert!(!browser.scrolls_sideways_at(1280, 800).await);
}
