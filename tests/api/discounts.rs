//! Issue 21: promotion codes. A code on the checkout request is looked up at
//! Stripe before the session is created (unknown or expired: 422), and its
//! discount shows on the first invoice; `billing.allow_promotion_codes` puts
//! the field on Checkout.

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, TestApp, TestDatabase};

/// A 20 % `once` coupon and a promotion code `code` for it (expiring at
/// `expires_at` if given), made the way a merchant would at Stripe.
async fn twenty_percent_code(app: &TestApp, code: &str, expires_at: Option<i64>) -> Value {
    let coupon = app
        .stripe_post(
            "/v1/coupons",
            &[
                ("percent_off", "20"),
                ("duration", "once"),
                ("name", "Launch"),
            ],
        )
        .await;
    let expires = expires_at.map(|t| t.to_string());
    let mut form = vec![
        ("promotion[type]", "coupon"),
        ("promotion[coupon]", coupon["id"].as_str().unwrap()),
        ("code", code),
    ];
    if let Some(t) = &expires {
        form.push(("expires_at", t));
    }
    app.stripe_post("/v1/promotion_codes", &form).await
}

async fn checkout_with(app: &TestApp, tenant: &str, code: &str) -> reqwest::Response {
    let token = app.token(tenant, Role::Admin);
    app.post(
        tenant,
        "checkout",
        &token,
        Some(json!({"plan": "pro", "promotion_code": code})),
    )
    .await
}

async fn a_promotion_code_discounts_the_first_invoice(backend: Backend) {
    let app = spawn_app(backend).await;
    let promo = twenty_percent_code(&app, "SPRING20", None).await;
    let answer = checkout_with(&app, "acme", "spring20").await;
    assert_eq!(answer.status(), 201, "codes match in any case");
    let session_id = answer.json::<Value>().await.unwrap()["checkout_session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = app.sim.object(&session_id).unwrap();
    assert_eq!(session["discounts"][0]["promotion_code"], promo["id"]);
    assert_eq!(session["amount_total"], 2320);
    let subscription = app.sim.complete_checkout(&session_id).unwrap();
    app.await_webhooks().await;
    let token = app.token("acme", Role::Admin);
    let page: Value = app
        .get("/v1/tenants/acme/billing/invoices", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let first = &page["invoices"][0];
    assert_eq!(
        (
            first["subtotal"].as_i64(),
            first["discount"].as_i64(),
            first["total"].as_i64()
        ),
        (Some(2900), Some(580), Some(2320)),
        "{first}"
    );
    assert_eq!(first["amount_paid"], 2320);
    let invoice = app
        .sim
        .object(subscription["latest_invoice"].as_str().unwrap())
        .unwrap();
    assert_eq!(invoice["total_discount_amounts"][0]["amount"], 580);
}

async fn unknown_expired_and_malformed_codes_are_422(backend: Backend) {
    let app = spawn_app(backend).await;
    twenty_percent_code(&app, "SOON", Some(app.sim.now() + 60)).await;
    app.sim.advance_clock(61);
    let expired = assert_problem(checkout_with(&app, "acme", "SOON").await, 422).await;
    assert_eq!(expired["errors"][0]["field"], "promotion_code");
    assert!(expired["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
    let unknown = assert_problem(checkout_with(&app, "acme", "NOPE").await, 422).await;
    assert_eq!(unknown["errors"][0]["field"], "promotion_code");
    assert_eq!(app.stripe_requests("POST /v1/checkout/sessions"), 0);
    let before = app.stripe_requests_total();
    let malformed = assert_problem(checkout_with(&app, "acme", "no spaces!").await, 422).await;
    assert_eq!(malformed["errors"][0]["field"], "promotion_code");
    assert_eq!(
        app.stripe_requests_total(),
        before,
        "a malformed code is not looked up"
    );
}

async fn allow_promotion_codes_puts_the_field_on_checkout(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__BILLING__ALLOW_PROMOTION_CODES", "true")],
    )
    .await;
    let answer = app.checkout("acme", "pro", None).await;
    assert_eq!(answer.status(), 201);
    let id = answer.json::<Value>().await.unwrap()["checkout_session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.sim.object(&id).unwrap()["allow_promotion_codes"], true);
    // The buyer types a code on Stripe's page.
    twenty_percent_code(&app, "TYPED", None).await;
    let subscription = app
        .sim
        .complete_checkout_with(&id, json!({"promotion_code": "TYPED"}))
        .unwrap();
    let invoice = app
        .sim
        .object(subscription["latest_invoice"].as_str().unwrap())
        .unwrap();
    assert_eq!(invoice["total"], 2320);
}

backend_tests!(
    a_promotion_code_discounts_the_first_invoice,
    unknown_expired_and_malformed_codes_are_422,
    allow_promotion_codes_puts_the_field_on_checkout,
);
