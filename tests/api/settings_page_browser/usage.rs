//! Usage on the page: a bar per meter, a warning from 80 % of the limit, the
//! limit reached with the Upgrade that lifts it, and a plan not metering a
//! meter at all.

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use super::{open_loaded, pay_on_the_hosted_checkout, SHORT};
use crate::browser::Browser;
use crate::helpers::{spawn_app_with, Backend, TestApp, TestDatabase};

/// Records `quantity` API calls for acme, as the host's backend would.
async fn record(app: &TestApp, key: &str, quantity: i64) {
    let response = app
        .client
        .post(app.url("/v1/tenants/acme/usage"))
        .bearer_auth(app.token("acme", Role::Service))
        .json(&json!({ "meter": "api_calls", "quantity": quantity, "idempotency_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// The bar's `[value, max]`.
async fn bar(browser: &Browser, meter: &str) -> Value {
    browser
        .js(
            "const bar = document.querySelector(`[data-testid=usage-bar-${arguments[0]}]`); \
             return bar ? [Number(bar.value), Number(bar.max)] : null",
            json!([meter]),
        )
        .await
}

#[actix_web::test]
async fn usage_bars_warn_at_80_percent_and_offer_the_upgrade_that_lifts_the_limit() {
    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Sqlite),
        &[("APP__PLANS__FREE__LIMITS__API_CALLS", "10")],
    )
    .await;
    record(&app, "first", 7).await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Admin)).await;
    browser.wait_visible("usage-meter-api_calls", SHORT).await;
    assert_eq!(bar(&browser, "api_calls").await, json!([7, 10]));
    let text = browser.text("usage-meter-api_calls").await;
    assert!(text.contains("7 of 10 calls used"), "{text}");
    assert!(text.contains("Resets on"), "{text}");
    assert!(
        !browser.visible("usage-warning-api_calls").await,
        "no warning at 70 %"
    );
    // Exports are not in the free plan: said, without a bar.
    let exports = browser.text("usage-meter-exports").await;
    assert!(
        exports.contains("Not included in Free. Available on Pro."),
        "{exports}"
    );
    assert!(!browser.visible("usage-warning-exports").await);
    assert_eq!(bar(&browser, "exports").await, Value::Null);

    record(&app, "second", 1).await;
    browser.goto(&browser.current_url().await).await;
    browser.wait_visible("usage-warning-api_calls", SHORT).await;
    let warning = browser.text("usage-warning-api_calls").await;
    assert!(warning.contains("80% of your calls"), "{warning}");
    browser.screenshots("usage-warning").await;

    record(&app, "third", 2).await;
    browser.goto(&browser.current_url().await).await;
    browser.wait_visible("usage-upgrade-api_calls", SHORT).await;
    let reached = browser.text("usage-warning-api_calls").await;
    assert!(
        reached.starts_with("Limit reached: new calls are refused until"),
        "{reached}"
    );
    assert_eq!(
        browser.text("usage-upgrade-api_calls").await,
        "Upgrade to Pro"
    );
    browser.screenshots("usage-limit-reached").await;

    // The Upgrade on the bar is the plan card's: Checkout, then Pro's limit.
    browser.click("usage-upgrade-api_calls").await;
    pay_on_the_hosted_checkout(&browser, &app.sim.base_url(), None).await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    browser
        .wait_js(
            "Pro's limit on the bar",
            "const bar = document.querySelector('[data-testid=usage-bar-api_calls]'); \
             return !!bar && Number(bar.max) === 100000",
            json!([]),
            SHORT,
        )
        .await;
    assert!(!browser.visible("usage-warning-api_calls").await);
    browser.screenshots("usage-after-upgrade").await;
}

#[actix_web::test]
async fn a_member_sees_the_bars_but_no_upgrade() {
    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Sqlite),
        &[("APP__PLANS__FREE__LIMITS__API_CALLS", "10")],
    )
    .await;
    record(&app, "all", 10).await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Member)).await;
    browser.wait_visible("usage-warning-api_calls", SHORT).await;
    assert!(!browser.visible("usage-upgrade-api_calls").await);
    let text = browser.text("usage-meter-api_calls").await;
    assert!(
        text.contains("An admin can upgrade to Pro to raise it."),
        "{text}"
    );
}
