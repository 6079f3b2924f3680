//! `GET …/billing/plans` and the plan catalog: ordered by rank, marked
//! against the current plan, prices as Stripe has them, a price no plan
//! names shown by its id, a configured price Stripe lacks reported at startup.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::child::command;
use crate::helpers::{
    plan_row, spawn_app, spawn_app_with, start_sim, Backend, TestApp, TestDatabase,
};

fn field(plans: &Value, key: &str) -> Vec<Value> {
    plans["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[key].clone())
        .collect()
}

async fn a_free_tenant_sees_every_plan_by_rank(backend: Backend) {
    let app = spawn_app(backend).await;
    let plans = app.read("acme", "plans").await;
    assert_eq!(
        field(&plans, "id"),
        [json!("free"), json!("pro"), json!("team")]
    );
    assert_eq!(
        field(&plans, "change"),
        [json!("current"), json!("upgrade"), json!("upgrade")]
    );
    assert_eq!(
        field(&plans, "current"),
        [json!(true), json!(false), json!(false)]
    );
    let free = plan_row(&plans, "free");
    assert_eq!(free["amount"], Value::Null);
    assert_eq!(free["currency"], Value::Null);
    assert_eq!(free["trial_available"], false);
    assert_eq!(
        free["limits"],
        json!({"projects": 3, "api_calls": 1000, "exports": 0})
    );
    let pro = plan_row(&plans, "pro");
    assert_eq!(
        (&pro["amount"], &pro["currency"], &pro["interval"]),
        (&json!(2900), &json!("usd"), &json!("month"))
    );
    assert_eq!(pro["per_seat"], false);
    assert_eq!(pro["trial_days"], 0);
    assert_eq!(pro["trial_available"], false);
    assert_eq!(pro["features"], json!(["api", "exports"]));
    let team = plan_row(&plans, "team");
    assert_eq!(team["amount"], 1200);
    assert_eq!(team["per_seat"], true);
    assert_eq!(team["trial_days"], 14);
    assert_eq!(team["trial_available"], true);
    assert_eq!(team["limits"]["seats"], 50);
}

async fn plans_are_marked_against_the_current_plan(backend: Backend) {
    let app = spawn_app(backend).await;
    app.subscribe("acme", "pro", None).await;
    app.await_webhooks().await;
    let plans = app.read("acme", "plans").await;
    assert_eq!(
        field(&plans, "change"),
        [json!("downgrade"), json!("current"), json!("upgrade")]
    );
    assert_eq!(plan_row(&plans, "pro")["current"], true);
}

/// The configured amount seeds the simulator, but the one shown is Stripe's.
async fn amounts_are_stripes(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[
            ("APP__PLANS__PRO__UNIT_AMOUNT", "1"),
            ("APP__STRIPE__CHECK_PRICES_ON_STARTUP", "true"),
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let plans = app.read("acme", "plans").await;
        if plan_row(&plans, "pro")["amount"] == 2900 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still the configured amount: {plans}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A subscription at Stripe on a price no plan configures (made in Stripe's
/// dashboard, say) for the tenant's customer.
async fn subscribe_to_an_unconfigured_price(app: &TestApp, tenant: &str) -> String {
    let admin = app.token(tenant, Role::Admin);
    let customer: Value = app
        .post(tenant, "customer", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    let price = app
        .stripe_post(
            "/v1/prices",
            &[
                ("currency", "usd"),
                ("unit_amount", "9900"),
                ("recurring[interval]", "month"),
                ("product_data[name]", "Legacy"),
            ],
        )
        .await;
    let price_id = price["id"].as_str().unwrap().to_owned();
    let session = app
        .stripe_post(
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("customer", customer["stripe_customer_id"].as_str().unwrap()),
                ("line_items[0][price]", price_id.as_str()),
                ("line_items[0][quantity]", "1"),
                ("success_url", "http://localhost:3000/ok"),
            ],
        )
        .await;
    app.sim
        .complete_checkout(session["id"].as_str().unwrap())
        .unwrap();
    app.await_webhooks().await;
    price_id
}

async fn a_price_no_plan_names_is_shown_by_its_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let price_id = subscribe_to_an_unconfigured_price(&app, "acme").await;
    let state = app.billing_state("acme").await;
    assert_eq!(state["plan"], price_id.as_str(), "{state}");
    assert_eq!(state["subscription_status"], "active");
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(entitlements["plan"], price_id.as_str());
    assert_eq!(entitlements["reason"], "paying");
    // Granted nothing beyond free's until an operator configures it.
    assert_eq!(entitlements["features"], json!([]));
    assert_eq!(
        entitlements["limits"],
        json!({"projects": 3, "api_calls": 1000, "exports": 0})
    );
    let plans = app.read("acme", "plans").await;
    assert_eq!(
        field(&plans, "current"),
        [json!(false), json!(false), json!(false)]
    );
    assert_eq!(
        field(&plans, "change"),
        [json!("downgrade"), json!("upgrade"), json!("upgrade")]
    );
}

async fn members_may_read_plans_but_not_another_tenants(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.token("globex", Role::Member);
    for resource in ["plans", "entitlements"] {
        let response = app
            .get(
                &format!("/v1/tenants/acme/billing/{resource}"),
                Some(&other),
            )
            .await;
        crate::helpers::assert_problem(response, 403).await;
        let response = app
            .get(&format!("/v1/tenants/acme/billing/{resource}"), None)
            .await;
        crate::helpers::assert_problem(response, 401).await;
    }
}

backend_tests!(
    a_free_tenant_sees_every_plan_by_rank,
    plans_are_marked_against_the_current_plan,
    amounts_are_stripes,
    a_price_no_plan_names_is_shown_by_its_id,
    members_may_read_plans_but_not_another_tenants,
);

/// `serve` with a plan whose price Stripe lacks: it serves at once and logs
/// the plan and the key to fix.
#[actix_web::test]
async fn a_configured_price_missing_at_stripe_is_reported_at_startup() {
    let database = TestDatabase::migrated(Backend::Sqlite);
    let sim = start_sim();
    let port = crate::pg::free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = command(
        &database.url,
        &sim,
        &["serve"],
        &[
            ("BIND_ADDR", bind.as_str()),
            ("APP__PLANS__ENTERPRISE__NAME", "Enterprise"),
            (
                "APP__PLANS__ENTERPRISE__PRICE_ID",
                "price_enterprise_missing",
            ),
            ("APP__PLANS__ENTERPRISE__RANK", "30"),
            ("APP__STRIPE__CHECK_PRICES_ON_STARTUP", "true"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (lines, log) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("http://{bind}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the service did not start");
        actix_web::rt::time::sleep(Duration::from_millis(30)).await;
    }
    let mut seen = Vec::new();
    let report = loop {
        match log.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("price_enterprise_missing") => break line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no report of the missing price in:\n{}", seen.join("\n")),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(report.contains("does not exist at Stripe"), "{report}");
    assert!(report.contains("plans.enterprise.price_id"), "{report}");
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("price_pro_monthly") || l.contains("price_team_monthly")),
        "a seeded price was reported:\n{}",
        seen.join("\n")
    );
}
