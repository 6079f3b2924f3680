//! Exactly one Stripe customer per tenant: concurrency across instances,
//! Stripe faults, a crash between Stripe's answer and the database write.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use stripe_sim::{Fault, FaultKind};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    assert_problem, binary, spawn_app, spawn_instance, start_sim, Backend, TestApp, TestDatabase,
};

fn requests(app: &TestApp, key: &str) -> u64 {
    app.sim.stats().requests.get(key).copied().unwrap_or(0)
}

fn fault(method: &str, path: &str, count: u32, kind: FaultKind) -> Fault {
    Fault {
        method: method.into(),
        path: path.into(),
        count,
        kind,
    }
}

/// Fires `n` concurrent first clicks, alternating between the instances.
async fn concurrent_clicks(instances: &[&TestApp], tenant: &str, n: usize) -> Vec<(u16, String)> {
    let token = instances[0].token(tenant, Role::Admin);
    let calls = (0..n).map(|i| {
        let app = instances[i % instances.len()];
        let token = token.clone();
        async move {
            let response = app.post(tenant, "customer", &token, None).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (
                status,
                body["stripe_customer_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    });
    join_all(calls).await
}

fn assert_one_customer(answers: &[(u16, String)], app: &TestApp) {
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "not every answer succeeded: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    let ids: HashSet<&str> = answers.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), 1, "different ids: {ids:?}");
    let customers = app.sim.customers();
    assert_eq!(
        customers.len(),
        1,
        "Stripe holds {} customers",
        customers.len()
    );
    assert_eq!(customers[0]["id"].as_str(), ids.into_iter().next());
    assert_eq!(customers[0]["metadata"]["tenant_id"], "acme");
}

async fn sixty_four_clicks_on_two_instances_make_one_customer(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    sim.set_latency_ms(150);
    let first = spawn_instance(database.shared(), sim.clone(), &[]).await;
    let second = spawn_instance(database, sim, &[]).await;
    let answers = concurrent_clicks(&[&first, &second], "acme", 64).await;
    assert_one_customer(&answers, &first);
    assert_eq!(requests(&first, "POST /v1/customers"), 1);
    let row = first.row("acme").unwrap();
    assert_eq!(
        row.stripe_customer_id.as_deref(),
        Some(answers[0].1.as_str())
    );
    assert!(
        first.customer_claim("acme").is_none(),
        "the claim was not cleared"
    );
}

async fn faults_at_stripe_still_make_one_customer(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    sim.set_latency_ms(50);
    // In order: two 500s, an answer dropped after Stripe created the customer,
    // and an answer held past the client's timeout.
    sim.add_fault(fault("POST", "/v1/customers", 2, FaultKind::Status(500)));
    sim.add_fault(fault("POST", "/v1/customers", 1, FaultKind::Drop));
    sim.add_fault(fault("POST", "/v1/customers", 1, FaultKind::DelayMs(1500)));
    let overrides = [
        ("APP__STRIPE__REQUEST_TIMEOUT_MS", "500"),
        ("APP__STRIPE__MAX_ATTEMPTS", "6"),
    ];
    let first = spawn_instance(database.shared(), sim.clone(), &overrides).await;
    let second = spawn_instance(database, sim, &overrides).await;
    let answers = concurrent_clicks(&[&first, &second], "acme", 64).await;
    assert_one_customer(&answers, &first);
    assert!(
        requests(&first, "POST /v1/customers") >= 5,
        "the faults were not all exercised"
    );
}

async fn a_crash_after_stripe_created_the_customer_is_recovered(backend: Backend) {
    crash_between_stripe_and_the_database(backend, 0).await;
}

/// Past 24 h Stripe forgets the idempotency key: only the list-based
/// recovery can find the orphaned customer then.
async fn a_crash_recovered_after_the_idempotency_key_expired(backend: Backend) {
    crash_between_stripe_and_the_database(backend, 25).await;
}

async fn crash_between_stripe_and_the_database(backend: Backend, hours_until_recovery: i64) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    // Stripe creates the customer, then holds the answer: the process dies
    // before it can write the id.
    sim.add_fault(fault(
        "POST",
        "/v1/customers",
        1,
        FaultKind::DelayMs(60_000),
    ));
    let port = crate::pg::free_port();
    let mut child = Command::new(binary())
        .env("APP_ENV", "test")
        .env("JWT_SECRET", crate::helpers::TEST_JWT_SECRET)
        .env("DATABASE_URL", &database.url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("STRIPE_SECRET_KEY", "sk_test_crash")
        .env("STRIPE_API_BASE", sim.base_url())
        .env("STRIPE_WEBHOOK_SECRET", sim.webhook_secret())
        .env("APP__STRIPE__REQUEST_TIMEOUT_MS", "120000")
        .env("APP__BILLING__CUSTOMER_CLAIM_TTL_SECONDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the child did not start");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let token = crate::helpers::test_settings(&database.url, &[]);
    let token = tenant_billing::auth::TokenIssuer::from_settings(&token.auth).mint(
        &tenant_billing::auth::MintRequest {
            tenant: "acme",
            role: Role::Admin,
            sub: "user-1",
            email: None,
            ttl_seconds: 600,
        },
    );
    let click = {
        let client = client.clone();
        let url = format!("{base}/v1/tenants/acme/billing/customer");
        let token = token.clone();
        actix_web::rt::spawn(async move { client.post(url).bearer_auth(token).send().await })
    };
    while sim.customers().is_empty() {
        assert!(Instant::now() < deadline, "Stripe never saw the create");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    assert!(click.await.unwrap().is_err(), "the dying process answered");
    let created_id = sim.customers()[0]["id"].as_str().unwrap().to_owned();
    sim.advance_clock(hours_until_recovery * 3600);

    let app = spawn_instance(
        database,
        sim,
        &[("APP__BILLING__CUSTOMER_CLAIM_TTL_SECONDS", "1")],
    )
    .await;
    let row = app.row("acme").unwrap();
    assert!(
        row.stripe_customer_id.is_none(),
        "the crash happened after the write"
    );
    assert!(app.customer_claim("acme").is_some());
    let response = app.post("acme", "customer", &token, None).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["stripe_customer_id"], created_id.as_str());
    assert_eq!(
        app.sim.customers().len(),
        1,
        "recovery created a second customer"
    );
    assert!(app
        .audit("acme")
        .contains(&"customer.adopted:ok".to_owned()));
    assert_eq!(
        requests(&app, "GET /v1/customers/search"),
        0,
        "recovery used search"
    );
}

async fn the_first_upgrade_click_costs_two_stripe_requests_and_the_second_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    let before = app.stripe_requests_total();
    let first = app
        .post("acme", "checkout", &token, Some(json!({"plan": "pro"})))
        .await;
    assert_eq!(first.status(), 201);
    let body: Value = first.json().await.unwrap();
    assert!(body["checkout_session_id"]
        .as_str()
        .unwrap()
        .starts_with("cs_"));
    assert!(body["url"].as_str().unwrap().starts_with("http"));
    let stats = app.sim.stats().requests;
    assert_eq!(stats.values().sum::<u64>() - before, 2, "{stats:?}");
    assert_eq!(stats.get("POST /v1/customers"), Some(&1));
    assert_eq!(stats.get("POST /v1/checkout/sessions"), Some(&1));

    let second = app
        .post("acme", "checkout", &token, Some(json!({"plan": "pro"})))
        .await;
    assert_eq!(second.status(), 201);
    let stats = app.sim.stats().requests;
    assert_eq!(stats.values().sum::<u64>() - before, 3, "{stats:?}");
    assert_eq!(stats.get("POST /v1/checkout/sessions"), Some(&2));
    assert!(!stats.keys().any(|k| k.contains("search")));

    // The session carries the tenant and plan for the webhook cross-checks.
    let session = app
        .sim
        .object(body["checkout_session_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(session["client_reference_id"], "acme");
    assert_eq!(session["metadata"]["tenant_id"], "acme");
    assert_eq!(session["metadata"]["plan"], "pro");
    let audit = app.audit("acme");
    assert!(
        audit.contains(&"customer.created:ok".to_owned()),
        "{audit:?}"
    );
    assert!(
        audit.contains(&"checkout.create:ok".to_owned()),
        "{audit:?}"
    );
}

async fn members_and_other_tenants_cannot_act(backend: Backend) {
    let app = spawn_app(backend).await;
    let member = app.token("acme", Role::Member);
    for route in ["customer", "checkout", "portal"] {
        let response = app
            .post("acme", route, &member, Some(json!({"plan": "pro"})))
            .await;
        assert_problem(response, 403).await;
    }
    assert_problem(
        app.put_profile("acme", &member, json!({"billing_email": "a@example.com"}))
            .await,
        403,
    )
    .await;
    let other = app.token("globex", Role::Admin);
    assert_problem(app.post("acme", "customer", &other, None).await, 403).await;
    assert!(app.row("acme").is_none());
    assert!(app.sim.customers().is_empty());
}

async fn invalid_input_is_422_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    let unknown_plan = app
        .post(
            "acme",
            "checkout",
            &token,
            Some(json!({"plan": "enterprise"})),
        )
        .await;
    let body = assert_problem(unknown_plan, 422).await;
    assert_eq!(body["errors"][0]["field"], "plan");
    let evil = app
        .post(
            "acme",
            "checkout",
            &token,
            Some(json!({"plan": "pro", "success_url": "https://evil.example.com/phish"})),
        )
        .await;
    let body = assert_problem(evil, 422).await;
    assert_eq!(body["errors"][0]["field"], "success_url");
    let portal = app
        .post(
            "acme",
            "portal",
            &token,
            Some(json!({"return_url": "https://evil.example.com/"})),
        )
        .await;
    assert_problem(portal, 422).await;
    let secret_looking = "not-an-email-SECRET123";
    let bad_email = app
        .put_profile("acme", &token, json!({"billing_email": secret_looking}))
        .await;
    let text = bad_email.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], 422);
    assert_eq!(body["errors"][0]["field"], "billing_email");
    assert!(
        !text.contains(secret_looking),
        "the value was echoed: {text}"
    );
    let bad_customer_email = app
        .post(
            "acme",
            "customer",
            &token,
            Some(json!({"email": secret_looking})),
        )
        .await;
    let text = bad_customer_email.text().await.unwrap();
    assert!(text.contains("\"field\":\"email\""), "{text}");
    assert!(!text.contains(secret_looking));
    // Malformed JSON, wrong content type, oversized body.
    let malformed = app
        .client
        .post(app.url("/v1/tenants/acme/billing/checkout"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"plan\": ")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400).await;
    let wrong_type = app
        .client
        .post(app.url("/v1/tenants/acme/billing/checkout"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{\"plan\": \"pro\"}")
        .send()
        .await
        .unwrap();
    assert_problem(wrong_type, 400).await;
    let huge = json!({"plan": "pro", "success_url": "x".repeat(70 * 1024)});
    assert_problem(app.post("acme", "checkout", &token, Some(huge)).await, 413).await;
    // Nothing happened anywhere.
    assert!(app.row("acme").is_none(), "a row was written");
    assert_eq!(app.stripe_requests_total(), 0, "Stripe was called");
}

async fn stripe_down_is_a_bounded_502_and_nothing_half_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    app.sim
        .add_fault(fault("POST", "/v1/customers", 1000, FaultKind::Status(500)));
    let started = Instant::now();
    let response = app
        .post("acme", "checkout", &token, Some(json!({"plan": "pro"})))
        .await;
    let elapsed = started.elapsed();
    assert_problem(response, 502).await;
    // The budget: max_attempts × request timeout plus the backoff between them.
    let budget = Duration::from_millis(
        app.settings.stripe.max_attempts as u64
            * (app.settings.stripe.request_timeout_ms + app.settings.stripe.retry_max_delay_ms),
    );
    assert!(elapsed < budget, "took {elapsed:?}, budget {budget:?}");
    assert_eq!(
        requests(&app, "POST /v1/customers"),
        app.settings.stripe.max_attempts as u64
    );
    assert_eq!(requests(&app, "POST /v1/checkout/sessions"), 0);
    let row = app.row("acme").unwrap();
    assert!(row.stripe_customer_id.is_none());
    assert!(
        app.customer_claim("acme")
            .and_then(|claim| claim.expires_at)
            .is_none(),
        "the lease was not released"
    );
    assert!(app
        .audit("acme")
        .contains(&"customer.create:failed".to_owned()));

    // Stripe is back: the next click recovers under the same claim.
    app.sim.clear_faults();
    let retry = app
        .post("acme", "checkout", &token, Some(json!({"plan": "pro"})))
        .await;
    assert_eq!(retry.status(), 201);
    assert_eq!(app.sim.customers().len(), 1);
}

async fn a_stripe_timeout_is_a_504(backend: Backend) {
    let app = spawn_app_with_timeout(backend).await;
    let token = app.token("acme", Role::Admin);
    app.sim.add_fault(fault(
        "POST",
        "/v1/customers",
        1000,
        FaultKind::DelayMs(1000),
    ));
    assert_problem(app.post("acme", "customer", &token, None).await, 504).await;
    assert!(app.row("acme").unwrap().stripe_customer_id.is_none());
}

async fn spawn_app_with_timeout(backend: Backend) -> TestApp {
    crate::helpers::spawn_app_with(
        TestDatabase::migrated(backend),
        &[
            ("APP__STRIPE__REQUEST_TIMEOUT_MS", "200"),
            ("APP__STRIPE__MAX_ATTEMPTS", "2"),
        ],
    )
    .await
}

async fn the_portal_opens_for_an_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.token("acme", Role::Admin);
    let response = app
        .post(
            "acme",
            "portal",
            &token,
            Some(json!({"return_url": "http://localhost:3000/settings"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["url"].as_str().unwrap().starts_with("http"));
    assert!(app.audit("acme").contains(&"portal.create:ok".to_owned()));
}

backend_tests!(
    sixty_four_clicks_on_two_instances_make_one_customer,
    faults_at_stripe_still_make_one_customer,
    a_crash_after_stripe_created_the_customer_is_recovered,
    a_crash_recovered_after_the_idempotency_key_expired,
    the_first_upgrade_click_costs_two_stripe_requests_and_the_second_one,
    members_and_other_tenants_cannot_act,
    invalid_input_is_422_and_changes_nothing,
    stripe_down_is_a_bounded_502_and_nothing_half_written,
    a_stripe_timeout_is_a_504,
    the_portal_opens_for_an_admin,
);
