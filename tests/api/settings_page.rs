//! The billing settings page (README.md, "Walk-through: an Upgrade click on the
//! billing settings page") over plain HTTP: the page and its assets (headers,
//! caching, no inline script or style, `billing.settings_page`), the
//! development redirect defaults on the service's own origin, and the ready
//! links of `serve` and `token --link`. The browser scenarios are in
//! `settings_page_browser/`.

use std::process::Command;

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::dev_server::DevServer;
use crate::helpers::{assert_problem, binary, spawn_app, spawn_app_with, Backend, TestDatabase};

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

/// With no URLs in the request, Checkout and the portal return to this
/// service's own settings page, on the port it actually bound.
async fn redirects_default_to_the_page_on_the_services_own_origin(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    let page = format!("{}/settings/billing", app.address);

    let response = app
        .post("acme", "checkout", &token, Some(json!({"plan": "pro"})))
        .await;
    assert_eq!(response.status(), 201);
    let session: Value = response.json().await.unwrap();
    let stored = app
        .sim
        .object(session["checkout_session_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(stored["success_url"], format!("{page}?checkout=success"));
    assert_eq!(stored["cancel_url"], format!("{page}?checkout=cancel"));

    // The same page reached as localhost (what the page itself sends).
    let port = app.address.rsplit(':').next().unwrap();
    let localhost = format!("http://localhost:{port}/settings/billing");
    let response = app
        .post(
            "acme",
            "checkout",
            &token,
            Some(
                json!({"plan": "pro", "success_url": format!("{localhost}?checkout=success"),
                        "cancel_url": format!("{localhost}?checkout=cancel")}),
            ),
        )
        .await;
    assert_eq!(response.status(), 201);

    let response = app.post("acme", "portal", &token, None).await;
    assert_eq!(response.status(), 201);
    let portal: Value = response.json().await.unwrap();
    let html = reqwest::get(portal["url"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("href=\"{page}\"")),
        "the portal does not return to {page}: {html}"
    );
}

/// Production keeps requiring explicit origins: the bound address is neither
/// allowed nor a default, and a request without a URL is refused before any
/// Stripe call rather than handing Stripe an empty one.
async fn without_own_origin_redirects_urls_must_be_configured(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__BILLING__OWN_ORIGIN_REDIRECTS", "false")],
    )
    .await;
    let token = app.token("acme", Role::Admin);
    let body = assert_problem(
        app.post("acme", "checkout", &token, Some(json!({"plan": "pro"})))
            .await,
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["success_url", "cancel_url"]);
    let own = format!("{}/settings/billing?checkout=success", app.address);
    let body = assert_problem(
        app.post(
            "acme",
            "checkout",
            &token,
            Some(json!({"plan": "pro", "success_url": own, "cancel_url": own})),
        )
        .await,
        422,
    )
    .await;
    assert!(!body.to_string().contains(&own), "the URL was echoed");
    assert_problem(app.post("acme", "portal", &token, None).await, 422).await;
    assert_eq!(
        app.sim
            .stats()
            .objects
            .get("checkout_sessions")
            .copied()
            .unwrap_or(0),
        0
    );
    // An allowed origin still works.
    let response = app
        .post(
            "acme",
            "checkout",
            &token,
            Some(
                json!({"plan": "pro", "success_url": "http://localhost:3000/ok",
                        "cancel_url": "http://localhost:3000/no"}),
            ),
        )
        .await;
    assert_eq!(response.status(), 201);
}

backend_tests!(
    redirects_default_to_the_page_on_the_services_own_origin,
    without_own_origin_redirects_urls_must_be_configured,
);

#[actix_web::test]
async fn serve_in_development_logs_a_ready_link_for_an_acme_admin() {
    let server = DevServer::start(&[]);
    assert!(
        server
            .link
            .starts_with(&format!("{}/settings/billing#token=", server.origin)),
        "{}",
        server.link
    );
    assert!(server.origin.starts_with("http://127.0.0.1:"));
    assert!(!server.origin.ends_with(":0"), "the link names port 0");
    let token = server.link.split("#token=").nth(1).unwrap();
    let client = reqwest::Client::new();
    let me: Value = client
        .get(format!("{}/v1/me", server.origin))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant_id"], "acme");
    assert_eq!(me["role"], "admin");
    // One link, logged once; `token` against the same defaults agrees.
    assert_eq!(server.log().matches("#token=").count(), 1);
    let member = server.token("member");
    let me: Value = client
        .get(format!("{}/v1/me", server.origin))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "member");
    let page = client
        .get(server.link.split('#').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
}

#[test]
fn token_link_prints_the_page_on_bind_addr() {
    let dir = tempfile::tempdir().unwrap();
    let run = |bind: Option<&str>| {
        let mut command = Command::new(binary());
        command
            .env_clear()
            .current_dir(dir.path())
            .args(["token", "--tenant", "acme", "--role", "admin", "--link"]);
        if let Some(bind) = bind {
            command.env("BIND_ADDR", bind);
            // Off loopback the development secret is refused.
            command.env("JWT_SECRET", crate::helpers::TEST_JWT_SECRET);
        }
        command.output().unwrap()
    };
    let output = run(None);
    assert!(output.status.success(), "{output:?}");
    let link = String::from_utf8(output.stdout).unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:8080/settings/billing#token=ey"),
        "{link}"
    );
    let output = run(Some("0.0.0.0:9123"));
    let link = String::from_utf8(output.stdout).unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:9123/settings/billing#token="),
        "{link}"
    );
    let output = run(Some("127.0.0.1:0"));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("BIND_ADDR"));
}
