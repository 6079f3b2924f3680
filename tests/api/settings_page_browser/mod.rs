//! The billing settings page (README.md, "Walk-through: an Upgrade click on
//! the billing settings page") in a real browser: headless Chromium over
//! WebDriver (see `browser.rs`), against the real service and the simulator's
//! hosted pages.
//! Each scenario writes screenshots of its states at 1280×800 and 375×812 to
//! `target/e2e/`.
//!
//! The paid flow through Checkout runs on both backends (webhooks and the
//! stored state matter there). The other scenarios run on SQLite only: what
//! they check is the page's own behaviour over API answers that the API
//! tests already prove on both backends, and each Chromium costs seconds.
//!
//! One file per part of the page; opening it with a token is shared here, and
//! each file keeps the helpers only it uses.

mod billing_details;
mod checkout;
mod layout;
mod plan_changes;
mod token;
mod usage;

use std::time::Duration;

use serde_json::json;

use crate::browser::Browser;
use crate::helpers::TestApp;

const SHORT: Duration = Duration::from_secs(10);

/// Opens the page with `token` in its fragment, as the ready link does.
async fn open(browser: &Browser, origin: &str, token: &str) {
    browser.requests().await; // start-up noise, not the page's
    browser
        .goto(&format!("{origin}/settings/billing#token={token}"))
        .await;
}

/// Opens the page and waits until it has rendered the billing state.
async fn open_loaded(browser: &Browser, app: &TestApp, token: &str) {
    open(browser, &app.address, token).await;
    browser.wait_visible("plan-name", SHORT).await;
}

/// Waits for the simulator's hosted Checkout page and presses Pay.
pub(super) async fn pay_on_the_hosted_checkout(
    browser: &Browser,
    sim_base: &str,
    screenshot: Option<&str>,
) {
    browser
        .wait_js(
            "the simulator's hosted checkout",
            "return location.href.startsWith(arguments[0]) && !!document.getElementById('pay')",
            json!([format!("{sim_base}/checkout/")]),
            SHORT,
        )
        .await;
    if let Some(name) = screenshot {
        browser.screenshots(name).await;
    }
    browser.click_css("#pay").await;
}

#[test]
fn without_chromium_the_tests_fail_naming_the_install_script() {
    let empty = tempfile::tempdir().unwrap();
    let hint = crate::browser::find_tools(empty.path().as_os_str()).unwrap_err();
    assert!(hint.contains("scripts/install-browser.sh"), "{hint}");
}
