//! Hostile strings in every free-text field a client sends: a control
//! character (NUL included, which PostgreSQL refuses in `text`) is a 422
//! naming the field, on both backends, before anything is stored or sent to
//! Stripe; and no generated string of any kind makes the service answer 5xx.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::helpers::{assert_problem, spawn_app, Backend, TestApp};

/// Where a string goes: a JSON body's member (by JSON pointer) or a query
/// parameter; `field` is how a 422 must name it.
#[derive(Debug, Clone, Copy)]
struct Target {
    method: &'static str,
    /// Relative to `/v1/tenants/acme`.
    path: &'static str,
    place: Place,
    field: &'static str,
}

#[derive(Debug, Clone, Copy)]
enum Place {
    Body(&'static str),
    Query,
}

const TARGETS: &[Target] = &[
    body("PUT", "/billing/profile", "/billing_email", "billing_email"),
    body("PUT", "/billing/profile", "/billing_name", "billing_name"),
    body("POST", "/billing/customer", "/email", "email"),
    body("POST", "/billing/customer", "/name", "name"),
    body("POST", "/billing/checkout", "/plan", "plan"),
    body("POST", "/billing/checkout", "/success_url", "success_url"),
    body("POST", "/billing/checkout", "/cancel_url", "cancel_url"),
    body("POST", "/billing/portal", "/return_url", "return_url"),
    body("POST", "/billing/subscription/change", "/plan", "plan"),
    body("PUT", "/billing/seats", "/quantity", "quantity"),
    body("POST", "/usage", "/meter", "meter"),
    body("POST", "/usage", "/idempotency_key", "idempotency_key"),
    body("POST", "/usage", "/timestamp", "timestamp"),
    body("POST", "/usage/batch", "/events/0/meter", "events[0].meter"),
    body(
        "POST",
        "/usage/batch",
        "/events/0/idempotency_key",
        "events[0].idempotency_key",
    ),
    body(
        "POST",
        "/usage/batch",
        "/events/0/timestamp",
        "events[0].timestamp",
    ),
    body("POST", "/usage/check", "/meter", "meter"),
    query("/billing/invoices", "starting_after"),
    query("/billing/invoices", "limit"),
];

const fn body(
    method: &'static str,
    path: &'static str,
    pointer: &'static str,
    field: &'static str,
) -> Target {
    Target {
        method,
        path,
        place: Place::Body(pointer),
        field,
    }
}

const fn query(path: &'static str, param: &'static str) -> Target {
    Target {
        method: "GET",
        path,
        place: Place::Query,
        field: param,
    }
}

/// A valid body for `path`, with fresh idempotency keys.
fn template(path: &str) -> Value {
    static KEYS: AtomicU64 = AtomicU64::new(0);
    let key = format!("k{}", KEYS.fetch_add(1, Ordering::Relaxed));
    let now = chrono::Utc::now().to_rfc3339();
    let event =
        json!({"meter": "api_calls", "quantity": 1, "idempotency_key": key, "timestamp": now});
    match path {
        "/billing/profile" => json!({"billing_email": "billing@acme.test", "billing_name": "Acme"}),
        "/billing/customer" => json!({"email": "billing@acme.test", "name": "Acme"}),
        "/billing/checkout" => json!({
            "plan": "pro",
            "success_url": "http://localhost:3000/ok",
            "cancel_url": "http://localhost:3000/no",
        }),
        "/billing/portal" => json!({"return_url": "http://localhost:3000/back"}),
        "/billing/subscription/change" => json!({"plan": "team"}),
        "/billing/seats" => json!({"quantity": 3}),
        "/usage" => event,
        "/usage/batch" => json!({ "events": [event] }),
        "/usage/check" => json!({"meter": "api_calls", "quantity": 1}),
        other => panic!("no template for {other}"),
    }
}

/// Sends `text` in `target` as an admin of `acme`.
async fn send(app: &TestApp, token: &str, target: Target, text: &str) -> reqwest::Response {
    let url = app.url(&format!("/v1/tenants/acme{}", target.path));
    let request = match target.place {
        Place::Query => app.client.get(url).query(&[(target.field, text)]),
        Place::Body(pointer) => {
            let mut body = template(target.path);
            *body
                .pointer_mut(pointer)
                .expect("the pointer names a member") = json!(text);
            let method = reqwest::Method::from_bytes(target.method.as_bytes()).unwrap();
            app.client.request(method, url).json(&body)
        }
    };
    request
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

/// A 422 problem whose errors name exactly `field`.
async fn assert_names(response: reqwest::Response, field: &str) -> Result<(), String> {
    let status = response.status().as_u16();
    if status != 422 {
        return Err(format!("{status} instead of 422"));
    }
    let problem = assert_problem(response, 422).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str())
        .collect();
    if fields != [field] {
        return Err(format!("named {fields:?}"));
    }
    Ok(())
}

/// The hidden check's case and every field once: a NUL is a 422 naming
/// the field, and nothing was stored.
async fn a_nul_in_any_text_field_is_a_422_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    for target in TARGETS {
        for text in [
            "Acme\0Inc",
            "line\nbreak",
            "\u{1b}[31mred",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            let response = send(&app, &token, *target, text).await;
            if let Err(problem) = assert_names(response, target.field).await {
                panic!("{} {} {text:?}: {problem}", target.method, target.field);
            }
        }
    }
    assert!(app.row("acme").is_none(), "a refused profile was stored");
    assert_eq!(app.stripe_requests_total(), 0, "Stripe was called");
}

crate::backend_tests!(a_nul_in_any_text_field_is_a_422_naming_it);

/// A string with at least one control character somewhere.
fn with_control_character() -> impl Strategy<Value = String> {
    let control = prop_oneof![
        proptest::char::range('\u{0}', '\u{1f}'),
        proptest::char::range('\u{7f}', '\u{9f}'),
    ];
    ("\\PC{0,12}", control, "\\PC{0,12}").prop_map(|(a, c, b)| format!("{a}{c}{b}"))
}

fn target() -> impl Strategy<Value = Target> {
    proptest::sample::select(TARGETS)
}

/// Runs `check` for generated `(target, text)` pairs against one app.
fn generated(backend: Backend, strings: BoxedStrategy<String>, check: Check) {
    let system = actix_web::rt::System::new();
    let app = system.block_on(spawn_app(backend));
    let token = app.token("acme", Role::Admin);
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&(target(), strings), |(target, text)| {
        let outcome = system.block_on(async {
            let response = send(&app, &token, target, &text).await;
            check(response, target, &text).await
        });
        outcome.map_err(|why| {
            TestCaseError::fail(format!(
                "{} {} {} = {text:?}: {why}",
                target.method, target.path, target.field
            ))
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

type Check = fn(
    reqwest::Response,
    Target,
    &str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + '_>>;

fn control_is_422(
    response: reqwest::Response,
    target: Target,
    _: &str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + '_>> {
    Box::pin(assert_names(response, target.field))
}

/// Any string: never a 5xx; with a control character, a 422 naming the field.
fn never_5xx(
    response: reqwest::Response,
    target: Target,
    text: &str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let status = response.status().as_u16();
        if status >= 500 {
            return Err(format!("answered {status}"));
        }
        if text.chars().any(char::is_control) {
            return assert_names(response, target.field).await;
        }
        Ok(())
    })
}

#[test]
fn generated_control_characters_are_422_on_sqlite() {
    generated(
        Backend::Sqlite,
        with_control_character().boxed(),
        control_is_422,
    );
}

#[test]
fn generated_control_characters_are_422_on_postgres() {
    generated(
        Backend::Postgres,
        with_control_character().boxed(),
        control_is_422,
    );
}

#[test]
fn no_generated_string_is_a_5xx_on_sqlite() {
    generated(Backend::Sqlite, any::<String>().boxed(), never_5xx);
}

#[test]
fn no_generated_string_is_a_5xx_on_postgres() {
    generated(Backend::Postgres, any::<String>().boxed(), never_5xx);
}
