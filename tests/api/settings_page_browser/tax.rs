//! Issue 21 on the page: the billing address form, the tax id list (add,
//! verification status, remove), prices in the tenant's currency, and an
//! upgrade whose invoice row shows its tax. Automatic tax is on.

use serde_json::json;
use tenant_billing::domain::Role;

use super::{open_loaded, pay_on_the_hosted_checkout, SHORT};
use crate::browser::Browser;
use crate::helpers::{spawn_app_with, Backend, TestDatabase};

async fn wait_notice(browser: &Browser, text: &str) {
    browser
        .wait_js(
            "the notice",
            "return document.getElementById('notice').textContent.includes(arguments[0])",
            json!([text]),
            SHORT,
        )
        .await;
}

#[actix_web::test]
async fn address_tax_ids_and_a_taxed_upgrade() {
    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Sqlite),
        &[("APP__BILLING__TAX__AUTOMATIC", "true")],
    )
    .await;
    let token = app.token("acme", Role::Admin);
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &token).await;
    browser.wait_visible("address-country", SHORT).await;
    browser.wait_visible("tax-ids", SHORT).await;

    // A country that is not one is explained, field by field.
    browser.fill("profile-email", "billing@acme.test").await;
    browser.fill("address-country", "ZZ").await;
    browser.click("profile-save").await;
    browser.wait_text("error", "Country", SHORT).await;
    assert!(!browser.text("error").await.contains('{'));

    browser.fill("address-line1", "Unter den Linden 1").await;
    browser.fill("address-city", "Berlin").await;
    browser.fill("address-postal-code", "10117").await;
    browser.fill("address-country", "de").await;
    browser.click("profile-save").await;
    wait_notice(&browser, "saved").await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["billing_address"]["country"], "DE", "{state}");
    // Prices show in the country's currency before anything is paid.
    browser
        .wait_js(
            "euro prices",
            "return document.querySelector('[data-testid=plan-card-pro]').textContent.includes('€')",
            json!([]),
            SHORT,
        )
        .await;

    // A malformed VAT number never leaves the page's billing server.
    browser.fill("tax-id-value", "DE12").await;
    browser.click("tax-id-add").await;
    browser.wait_text("error", "tax id", SHORT).await;
    browser.fill("tax-id-value", "DE 123 456 789").await;
    browser.click("tax-id-add").await;
    browser.wait_visible("tax-id-row", SHORT).await;
    assert_eq!(browser.text("tax-id-status").await, "Checking");
    let customer = app.billing_state("acme").await["stripe_customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = app.sim.tax_ids(&customer)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.sim.set_tax_id_verification(&id, "verified").unwrap();
    // Stripe verified it: a reload shows so (the token stays in the tab).
    browser
        .js("location.reload(); return true", json!([]))
        .await;
    browser.wait_text("tax-id-status", "Verified", SHORT).await;
    browser.screenshots("tax-ids").await;

    // Remove it: this tenant buys as a consumer and pays German VAT.
    browser.click("tax-id-remove").await;
    wait_notice(&browser, "removed").await;
    assert!(!browser.visible("tax-id-row").await);

    browser.click("choose-plan-pro").await;
    pay_on_the_hosted_checkout(&browser, &app.sim.base_url(), Some("tax-checkout")).await;
    browser.wait_text("plan-name", "Pro", SHORT * 3).await;
    browser.wait_visible("invoice-row", SHORT).await;
    let tax = browser.text("invoice-tax").await;
    assert!(tax.contains("5.13"), "27.00 EUR at 19 %: {tax}");
    browser.screenshots("taxed-invoice").await;
}
