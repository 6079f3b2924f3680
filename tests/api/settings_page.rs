//! SPEC §8 over plain HTTP: the page and its assets (headers, caching, no
//! inline script or style, `billing.settings_page`). No database is
//! involved: SQLite only.

use tenant_billing::domain::Role;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, TestDatabase};

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The `?v=…` asset URLs the page names.
fn asset_urls(html: &str) -> Vec<String> {
    html.split("\"/settings/assets/")
        .skip(1)
        .map(|rest| format!("/settings/assets/{}", rest.split('"').next().unwrap()))
        .collect()
}

#[actix_web::test]
async fn the_page_is_served_with_a_strict_policy_and_no_inline_code() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/settings/billing", None).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/html"));
    let csp = header(&response, "content-security-policy");
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for required in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(directives.contains(&required), "{required} missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    assert_eq!(header(&response, "cache-control"), "no-cache");

    let html = response.text().await.unwrap();
    let lower = html.to_lowercase();
    // Every script has a src, there is no <style> and no style="" or on…=""
    // attribute: what the policy would block, the page does not contain.
    assert_eq!(
        lower.matches("<script").count(),
        lower
            .matches("<script type=\"module\" src=\"/settings/assets/")
            .count()
    );
    assert!(!lower.contains("<style"), "an inline <style>");
    assert!(!lower.contains(" style="), "an inline style attribute");
    for handler in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onerror=",
        "javascript:",
    ] {
        assert!(!lower.contains(handler), "inline handler {handler}");
    }
    // No other origin is named anywhere.
    assert!(!lower.contains("http://") && !lower.contains("https://") && !lower.contains("//cdn"));
    for id in [
        "plan-name",
        "subscription-status",
        "period-end",
        "trial-end",
        "cancel-notice",
        "confirm-yes",
        "confirm-no",
        "manage-billing",
        "cancel-subscription",
        "resume-subscription",
        "seats-input",
        "seats-save",
        "invoices",
        "profile-email",
        "profile-name",
        "profile-save",
        "confirming",
        "past-due-banner",
        "read-only-notice",
        "error",
    ] {
        assert!(
            html.contains(&format!("data-testid=\"{id}\"")),
            "no data-testid {id}"
        );
    }
}

#[actix_web::test]
async fn assets_are_versioned_immutable_and_revalidated_otherwise() {
    let app = spawn_app(Backend::Sqlite).await;
    let html = app
        .get("/settings/billing", None)
        .await
        .text()
        .await
        .unwrap();
    let urls = asset_urls(&html);
    assert_eq!(urls.len(), 3, "{urls:?}");
    for url in &urls {
        let response = app.get(url, None).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert!(header(&response, "etag").starts_with('"'));
    }
    let script = app.get("/settings/assets/billing.js", None).await;
    assert_eq!(
        header(&script, "content-type"),
        "text/javascript; charset=utf-8"
    );
    // Asked for without (or with another) version: kept only until revalidated.
    assert_eq!(header(&script, "cache-control"), "no-cache");
    let etag = header(&script, "etag");
    let revalidated = app
        .client
        .get(app.url("/settings/assets/billing.js?v=old"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    let styles = app.get("/settings/assets/billing.css", None).await;
    assert_eq!(header(&styles, "content-type"), "text/css; charset=utf-8");

    assert_problem(app.get("/settings/assets/secret.toml", None).await, 404).await;
    assert_problem(app.get("/settings/assets/..%2FCargo.toml", None).await, 404).await;
}

#[actix_web::test]
async fn settings_page_false_turns_the_page_off() {
    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Sqlite),
        &[("APP__BILLING__SETTINGS_PAGE", "false")],
    )
    .await;
    assert_problem(app.get("/settings/billing", None).await, 404).await;
    assert_problem(app.get("/settings/assets/billing.js", None).await, 404).await;
    // The API itself is unaffected.
    let token = app.token("acme", Role::Member);
    assert_eq!(app.get("/v1/me", Some(&token)).await.status(), 200);
}
