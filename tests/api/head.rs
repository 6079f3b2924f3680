//! `HEAD` wherever `GET` is: the same status and headers, no body
//! (RFC 9110, section 9.3.2), for every GET in the route table.

use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{spawn_app, Backend};

/// A concrete path for a route template.
fn concrete(template: &str) -> String {
    template
        .replace("{tenant_id}", "acme")
        .replace("{name}", "billing.js")
        .replace("{file:.*}", "index.css")
}

/// Headers that differ between any two answers.
const PER_ANSWER: &[&str] = &["date", "x-request-id"];

async fn every_get_answers_head_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    app.upgrade_and_pay("acme").await;
    app.await_webhooks().await;
    let token = app.token("acme", Role::Admin);
    let gets: Vec<String> = tenant_billing::routes::registered()
        .into_iter()
        .filter(|(method, _)| method == actix_web::http::Method::GET)
        .map(|(_, template)| concrete(&template))
        .collect();
    assert!(gets.len() > 10, "{gets:?}");
    for path in gets {
        let get = app
            .client
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let head = app
            .client
            .head(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert!(
            get.status().is_success() || get.status().is_redirection(),
            "GET {path}: {}",
            get.status()
        );
        let mut expected: Vec<(String, String)> = get
            .headers()
            .iter()
            .filter(|(name, _)| !PER_ANSWER.contains(&name.as_str()))
            // /metrics grows between two scrapes.
            .filter(|(name, _)| path != "/metrics" || name.as_str() != "content-length")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let mut got: Vec<(String, String)> = head
            .headers()
            .iter()
            .filter(|(name, _)| !PER_ANSWER.contains(&name.as_str()))
            .filter(|(name, _)| path != "/metrics" || name.as_str() != "content-length")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "HEAD {path} headers");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has a body"
        );
    }
    // A refusal is the same too: no token, 401 with its challenge.
    let head = app
        .client
        .head(app.url("/v1/tenants/acme/billing"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 401);
    assert!(head.headers().contains_key("www-authenticate"));
}

backend_tests!(every_get_answers_head_alike);
