//! SPEC §8 in a real browser: headless Chromium over WebDriver (see
//! `browser.rs`), against the real service and the simulator's hosted pages.
//! Each scenario writes screenshots of its states at 1280×800 and 375×812 to
//! `target/e2e/`.
//!
//! The paid flow through Checkout runs on both backends (webhooks and the
//! stored state matter there). The other scenarios run on SQLite only: what
//! they check is the page's own behaviour over API answers that the API
//! tests already prove on both backends, and each Chromium costs seconds.

use std::time::Duration;

use serde_json::json;
use stripe_sim::{Fault, FaultKind};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::browser::Browser;
use crate::dev_server::DevServer;
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::me::{badly_signed_token, expired_token};

const SHORT: Duration = Duration::from_secs(10);
/// SPEC §8: the page shows the plan bought within 30 s of the return.
const CONFIRM_LIMIT: Duration = Duration::from_secs(30);

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

/// Buttons a person could press right now.
async fn visible_buttons(browser: &Browser) -> Vec<String> {
    let value = browser
        .js(
            "return [...document.querySelectorAll('button')].filter((b) => b.checkVisibility()) \
             .map((b) => b.dataset.testid ?? b.textContent)",
            json!([]),
        )
        .await;
    serde_json::from_value(value).unwrap()
}

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

/// Waits for the simulator's hosted Checkout page and presses Pay.
async fn pay_on_the_hosted_checkout(browser: &Browser, sim_base: &str, screenshot: Option<&str>) {
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
async fn a_member_sees_the_page_read_only() {
    let app = spawn_app(Backend::Sqlite).await;
    app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    let browser = Browser::start().await;
    open_loaded(&browser, &app, &app.token("acme", Role::Member)).await;
    browser.wait_text("plan-name", "Pro", SHORT).await;
    browser.wait_visible("read-only-notice", SHORT).await;
    assert!(browser
        .text("read-only-notice")
        .await
        .contains("Only an admin"));
    assert_eq!(visible_buttons(&browser).await, Vec::<String>::new());
    for id in [
        "manage-billing",
        "cancel-subscription",
        "profile-save",
        "seats-save",
    ] {
        assert!(!browser.visible(id).await, "{id} is shown to a member");
    }
    // The profile is shown, but cannot be edited.
    let read_only = browser
        .js(
            "return document.querySelector('[data-testid=profile-email]').readOnly",
            json!([]),
        )
        .await;
    assert_eq!(read_only, json!(true));
    browser.screenshots("member").await;
}

#[actix_web::test]
async fn a_token_the_api_refuses_reads_as_a_sentence() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::start().await;
    open(&browser, &app.address, &badly_signed_token("acme")).await;
    browser.wait_visible("error", SHORT).await;
    let text = browser.text("error").await;
    assert!(text.contains("Sign in again"), "{text}");
    assert!(text.ends_with('.'), "not a sentence: {text}");
    for json_ish in ['{', '}', '"'] {
        assert!(!text.contains(json_ish), "raw JSON shown: {text}");
    }
    // Nothing the token would have unlocked is shown, and the token is gone.
    assert_eq!(browser.visible_test_ids().await, ["error"]);
    let stored = browser
        .js(
            "return sessionStorage.getItem('tenant-billing.token')",
            json!([]),
        )
        .await;
    assert_eq!(stored, json!(null));
    browser.screenshots("refused-token").await;
}

#[actix_web::test]
async fn an_expired_token_asks_to_sign_in_again() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::start().await;
    open(&browser, &app.address, &expired_token("acme")).await;
    browser.wait_visible("error", SHORT).await;
    let text = browser.text("error").await;
    assert!(text.to_lowercase().contains("sign in again"), "{text}");
    assert!(!text.contains('{'), "{text}");
    browser.screenshots("expired-token").await;
}

#[actix_web::test]
async fn the_token_moves_from_the_fragment_to_session_storage() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::start().await;
    let token = app.token("acme", Role::Admin);
    open_loaded(&browser, &app, &token).await;
    assert_eq!(
        browser.current_url().await,
        format!("{}/settings/billing", app.address)
    );
    let stored = browser
        .js(
            "return sessionStorage.getItem('tenant-billing.token')",
            json!([]),
        )
        .await;
    assert_eq!(stored, json!(token));
    // A reload (no fragment any more) still knows who is signed in.
    browser
        .goto(&format!("{}/settings/billing", app.address))
        .await;
    browser.wait_visible("plan-name", SHORT).await;
    assert!(!browser.visible("error").await);
}

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

/// The newcomer's page (the binary in development, opened from the link in
/// its log) loads nothing from another origin, sends no Referer, breaks no
/// CSP rule, and its token is in no request URL and nowhere in the log.
#[actix_web::test]
async fn the_page_requests_nothing_elsewhere_and_never_leaks_its_token() {
    let server = DevServer::start(&[]);
    // A token of its own, so that the ready link's (logged on purpose)
    // cannot be mistaken for a leak.
    let token = server.token("admin");
    assert!(!server.log().contains(&token));
    let browser = Browser::start().await;
    open(&browser, &server.origin, &token).await;
    browser.wait_visible("plan-name", SHORT).await;
    // A request that fails, so that the log records its URL.
    browser.fill("profile-email", "not-an-email").await;
    browser.click("profile-save").await;
    browser.wait_visible("error", SHORT).await;
    browser.fill("profile-email", "billing@acme.test").await;
    browser.click("profile-save").await;
    browser
        .wait_js(
            "the saved notice",
            "return document.getElementById('notice').textContent.includes('saved')",
            json!([]),
            SHORT,
        )
        .await;

    let requests = browser.requests().await;
    let urls: Vec<&str> = requests.iter().map(|r| r.url.as_str()).collect();
    for expected in [
        "/settings/billing",
        "/settings/assets/billing.js",
        "/settings/assets/billing.css",
        "/v1/me",
        "/v1/tenants/acme/billing",
        "/v1/tenants/acme/billing/profile",
    ] {
        assert!(
            urls.iter().any(|url| url.contains(expected)),
            "no request for {expected}: {urls:#?}"
        );
    }
    for request in &requests {
        assert!(
            request.url.starts_with(&format!("{}/", server.origin)),
            "a request to another origin: {}",
            request.url
        );
        assert!(
            !request.url.contains(&token),
            "the token in {}",
            request.url
        );
        // Chrome's log lists the header even when the policy empties it.
        let referer = request.referer.as_deref().unwrap_or_default();
        assert_eq!(referer, "", "a Referer on {}", request.url);
    }
    let console = browser.console().await;
    assert!(
        !console
            .iter()
            .any(|line| line.contains("Content Security Policy")),
        "CSP violations: {console:#?}"
    );

    let log = server.log();
    assert!(
        log.contains("/v1/tenants/acme/billing/profile"),
        "the failed request's URL is not in the log, so this check proves nothing:\n{log}"
    );
    assert!(!log.contains(&token), "the token is in the server's log");
}

#[test]
fn without_chromium_the_tests_fail_naming_the_install_script() {
    let empty = tempfile::tempdir().unwrap();
    let hint = crate::browser::find_tools(empty.path().as_os_str()).unwrap_err();
    assert!(hint.contains("scripts/install-browser.sh"), "{hint}");
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
