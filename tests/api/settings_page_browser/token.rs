//! The token: moved from the fragment to session storage, refused or expired
//! tokens read as sentences, a member's token shows the page read-only, and no
//! request or log line leaks it.

use serde_json::json;
use tenant_billing::domain::Role;

use super::{open, open_loaded, SHORT};
use crate::browser::Browser;
use crate::dev_server::DevServer;
use crate::helpers::{spawn_app, Backend};
use crate::me::{badly_signed_token, expired_token};

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
    // Told apart from an expired sign-in by the 401's challenge.
    assert!(text.contains("is not valid"), "{text}");
    assert!(!text.contains("expired"), "{text}");
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
    assert!(text.contains("Your sign-in has expired"), "{text}");
    assert!(!text.contains("not valid"), "{text}");
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
