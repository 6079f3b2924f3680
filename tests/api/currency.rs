//! Issue 21: a tenant pays in one currency, fixed by its first paid
//! subscription (Stripe keeps one currency per customer). A EUR tenant's plan
//! change and seat change stay in EUR; asking for USD is a 409 with a sentence.

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, plan_row, spawn_app, Backend, TestApp};

async fn locate(app: &TestApp, tenant: &str, country: &str) {
    let token = app.token(tenant, Role::Admin);
    let answer = app
        .put_profile(
            tenant,
            &token,
            json!({"billing_email": format!("billing@{tenant}.test"), "billing_address": {"country": country}}),
        )
        .await;
    assert_eq!(answer.status(), 200);
}

async fn checkout_in(app: &TestApp, tenant: &str, plan: &str, currency: &str) -> reqwest::Response {
    let token = app.token(tenant, Role::Admin);
    app.post(
        tenant,
        "checkout",
        &token,
        Some(json!({"plan": plan, "currency": currency})),
    )
    .await
}

async fn a_eur_tenant_stays_in_eur_and_usd_is_a_409(backend: Backend) {
    let app = spawn_app(backend).await;
    locate(&app, "acme", "DE").await;
    // Before paying, prices show in the country's currency.
    let plans = app.read("acme", "plans").await;
    assert_eq!(plan_row(&plans, "pro")["currency"], "eur");
    assert_eq!(plan_row(&plans, "pro")["amount"], 2700);
    assert_eq!(app.billing_state("acme").await["currency"], Value::Null);

    let subscription = app.subscribed("acme", "pro", None).await;
    assert_eq!(subscription["currency"], "eur");
    let state = app.billing_state("acme").await;
    assert_eq!(state["currency"], "eur", "fixed from Stripe's subscription");
    let entitlements = app.read("acme", "entitlements").await;
    assert_eq!(
        entitlements["price"],
        json!({"amount": 2700, "currency": "eur", "interval": "month"})
    );

    // The plan change bills team's EUR price; the seat change stays in EUR.
    let changed = app
        .subscription(
            "acme",
            "change",
            Some(json!({"plan": "team", "quantity": 2})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let id = subscription["id"].as_str().unwrap();
    let customer = subscription["customer"].as_str().unwrap();
    let at_stripe = app.sim.object(id).unwrap();
    assert_eq!(
        at_stripe["items"]["data"][0]["price"]["id"],
        "price_team_monthly_eur"
    );
    let upgrade = &app.invoices_for(customer, "subscription_update")[0];
    assert_eq!(upgrade["currency"], "eur");
    let token = app.token("acme", Role::Admin);
    let seats = app
        .client
        .put(app.url("/v1/tenants/acme/billing/seats"))
        .bearer_auth(&token)
        .json(&json!({"quantity": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(seats.status(), 200);
    let seat_invoice = &app.invoices_for(customer, "subscription_update")[0];
    assert_eq!(seat_invoice["currency"], "eur");
    assert_eq!(seat_invoice["subtotal"], 1100, "one more seat at 11.00 EUR");
    app.await_webhooks().await;
    assert_eq!(
        plan_row(&app.read("acme", "plans").await, "team")["amount"],
        1100
    );

    // USD is refused before Stripe, with a sentence, whatever is asked.
    let before = app.stripe_requests_total();
    let refused = assert_problem(checkout_in(&app, "acme", "pro", "usd").await, 409).await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("pays in EUR") && detail.contains("USD"),
        "{detail}"
    );
    let refused = app
        .subscription(
            "acme",
            "change",
            Some(json!({"plan": "pro", "currency": "USD"})),
        )
        .await;
    assert_problem(refused, 409).await;
    assert_eq!(app.stripe_requests_total(), before);

    // Still so once the subscription has ended: the currency stays fixed.
    app.sim.set_subscription_status(id, "canceled").unwrap();
    app.await_webhooks().await;
    assert_eq!(app.billing_state("acme").await["plan"], "free");
    assert_problem(checkout_in(&app, "acme", "pro", "usd").await, 409).await;
    assert_eq!(checkout_in(&app, "acme", "pro", "eur").await.status(), 201);
}

async fn a_requested_currency_is_checked_and_priced(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = checkout_in(&app, "acme", "pro", "gbp").await;
    assert_eq!(answer.status(), 201);
    let session: Value = answer.json().await.unwrap();
    let at_stripe = app
        .sim
        .object(session["checkout_session_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (
            at_stripe["currency"].as_str(),
            at_stripe["amount_total"].as_i64()
        ),
        (Some("gbp"), Some(2400))
    );
    let before = app.stripe_requests_total();
    let bad = assert_problem(checkout_in(&app, "acme", "pro", "euro").await, 422).await;
    assert_eq!(bad["errors"][0]["field"], "currency");
    let unsold = assert_problem(checkout_in(&app, "acme", "pro", "jpy").await, 422).await;
    assert_eq!(unsold["errors"][0]["field"], "currency");
    assert!(unsold["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("JPY"));
    assert_eq!(app.stripe_requests_total(), before, "refused before Stripe");
}

backend_tests!(
    a_eur_tenant_stays_in_eur_and_usd_is_a_409,
    a_requested_currency_is_checked_and_priced,
);
