//! The API contract (README.md, "API contract"): the committed
//! `docs/openapi.json` is what the code generates, it documents every
//! registered route (and nothing else), and the service serves it with an
//! offline reference page.
//!
//! Regenerate the snapshot after an API change: `just openapi` (or
//! `UPDATE_OPENAPI=1 cargo test --test api openapi`).

use std::collections::BTreeSet;

use serde_json::Value;
use tenant_billing::routes::{openapi::spec_json, registered, TENANT_SCOPE};

use crate::helpers::{spawn_app, Backend};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

#[test]
fn the_committed_snapshot_is_what_the_code_generates() {
    let generated = spec_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(SNAPSHOT, &generated).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the generated document: run `just openapi` \
         (UPDATE_OPENAPI=1 cargo test --test api openapi) and commit the result"
    );
}

/// `{file:.*}` (actix) is `{file}` (OpenAPI).
fn openapi_path(actix: &str) -> String {
    let mut out = String::new();
    let mut in_regex = false;
    for c in actix.chars() {
        match c {
            ':' if out.rfind('{') > out.rfind('}') => in_regex = true,
            '}' => {
                in_regex = false;
                out.push(c);
            }
            _ if in_regex => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn every_registered_route_is_documented_and_nothing_else() {
    let spec: Value = serde_json::from_str(&spec_json()).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let routes: BTreeSet<(String, String)> = registered()
        .into_iter()
        .map(|(method, path)| (method.to_string(), openapi_path(&path)))
        .collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unregistered: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(
        unregistered.is_empty(),
        "documented but not registered: {unregistered:?}"
    );

    // Every tenant route names the bearer scheme and its refusals.
    for (method, path) in &routes {
        if !path.starts_with(TENANT_SCOPE) {
            continue;
        }
        let operation = &spec["paths"][path][method.to_lowercase()];
        assert_eq!(
            operation["security"][0]["bearer"],
            serde_json::json!([]),
            "{method} {path}"
        );
        for status in ["401", "403", "429", "503"] {
            let problem = &operation["responses"][status]["content"]["application/problem+json"];
            assert!(
                problem.is_object(),
                "{method} {path} does not document {status} as problem+json"
            );
        }
    }
    assert!(spec["components"]["schemas"]["Problem"].is_object());
}

#[actix_web::test]
async fn the_document_and_its_reference_page_are_served() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), spec_json());

    let docs = app.get("/docs", None).await;
    assert_eq!(docs.status(), 308);
    assert_eq!(docs.headers()["location"], "/docs/");
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    // Every asset the page loads is served by the binary itself.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "the page no longer loads {asset}");
        let response = app.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(response.status(), 200, "{asset}");
        let body = response.text().await.unwrap();
        if asset == "swagger-initializer.js" {
            assert!(
                body.contains("/openapi.json"),
                "the page does not load our document"
            );
        }
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads something from elsewhere"
    );
    assert_eq!(app.get("/docs/nothing.js", None).await.status(), 404);
}
