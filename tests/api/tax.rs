//! Issue 21: billing address, tax ids and automatic tax. Amounts are checked
//! to the cent at the simulator (an Irish seller, its default): a German
//! business with a VAT id is reverse-charged, a German consumer pays 19 %, a
//! US tenant 0 %. Bad input and a missing address are 422s that name the
//! field, with no Stripe request.

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_app, spawn_app_with, Backend, TestApp, TestDatabase};

const TAX_ON: (&str, &str) = ("APP__BILLING__TAX__AUTOMATIC", "true");

async fn tax_app(backend: Backend) -> TestApp {
    spawn_app_with(TestDatabase::migrated(backend), &[TAX_ON]).await
}

async fn put_address(app: &TestApp, tenant: &str, address: Value) -> reqwest::Response {
    let token = app.token(tenant, Role::Admin);
    app.put_profile(
        tenant,
        &token,
        json!({"billing_email": format!("billing@{tenant}.test"), "billing_address": address}),
    )
    .await
}

async fn tax_ids(app: &TestApp, tenant: &str, role: Role) -> reqwest::Response {
    let token = app.token(tenant, role);
    app.get(
        &format!("/v1/tenants/{tenant}/billing/tax-ids"),
        Some(&token),
    )
    .await
}

async fn add_tax_id(app: &TestApp, tenant: &str, kind: &str, value: &str) -> reqwest::Response {
    let token = app.token(tenant, Role::Admin);
    app.post(
        tenant,
        "tax-ids",
        &token,
        Some(json!({"type": kind, "value": value})),
    )
    .await
}

async fn delete_tax_id(app: &TestApp, tenant: &str, id: &str) -> reqwest::Response {
    let token = app.token(tenant, Role::Admin);
    app.client
        .delete(app.url(&format!("/v1/tenants/{tenant}/billing/tax-ids/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

/// The fields a 422 names, in order.
async fn fields(response: reqwest::Response) -> (Vec<String>, String) {
    let body = assert_problem(response, 422).await;
    let names = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    (names, body.to_string())
}

/// The tenant's latest invoice as `GET …/billing/invoices` shows it.
async fn latest_invoice(app: &TestApp, tenant: &str) -> Value {
    let token = app.token(tenant, Role::Admin);
    let response = app
        .get(
            &format!("/v1/tenants/{tenant}/billing/invoices?limit=1"),
            Some(&token),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["invoices"][0].clone()
}

async fn bad_input_is_a_422_naming_the_field_and_nothing_reaches_stripe(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.stripe_requests_total();
    let city = "x".repeat(2048);
    // A control character is refused by the service-wide check first.
    let (names, _) = fields(
        put_address(
            &app,
            "acme",
            json!({"country": "DE", "city": "Berlin", "line1": "Main\u{7}"}),
        )
        .await,
    )
    .await;
    assert_eq!(names, ["billing_address.line1"]);
    let (names, text) = fields(
        put_address(
            &app,
            "acme",
            json!({"country": "ZZ", "city": city, "line1": "Main"}),
        )
        .await,
    )
    .await;
    assert_eq!(names, ["billing_address.city", "billing_address.country"]);
    assert!(
        !text.contains("ZZ") && !text.contains("xxxx"),
        "no echo: {text}"
    );
    let (names, text) = fields(add_tax_id(&app, "acme", "eu_vat", "DE12345").await).await;
    assert_eq!(names, ["value"]);
    assert!(!text.contains("DE12345"), "no echo: {text}");
    let (names, _) = fields(add_tax_id(&app, "acme", "in_gst", "22AAAAA0000A1Z5").await).await;
    assert_eq!(names, ["type"]);
    let (names, _) = fields(put_address(&app, "acme", json!("Berlin")).await).await;
    assert_eq!(names, ["billing_address"]);
    assert_eq!(app.stripe_requests_total(), before, "no Stripe request");
    assert!(app.row("acme").is_none(), "nothing stored either");
}

async fn the_address_is_stored_shown_and_synced_to_the_customer(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = put_address(
        &app,
        "acme",
        json!({"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "de"}),
    )
    .await;
    assert_eq!(answer.status(), 200);
    let state = app.billing_state("acme").await;
    assert_eq!(state["billing_address"]["country"], "DE", "{state}");
    assert_eq!(state["billing_address"]["line2"], Value::Null);
    // The customer (provisioned in the background, or now) has the address.
    let token = app.token("acme", Role::Admin);
    let ensured: Value = app
        .post("acme", "customer", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let customer = ensured["stripe_customer_id"].as_str().expect("a customer");
    let at_stripe = app.sim.object(customer).unwrap();
    assert_eq!(at_stripe["address"]["city"], "Berlin");
    assert_eq!(at_stripe["address"]["country"], "DE");
    // A profile update without an address keeps it; a new one is pushed.
    let kept = app
        .put_profile("acme", &token, json!({"billing_email": "new@acme.test"}))
        .await;
    assert_eq!(kept.status(), 200);
    assert_eq!(
        app.billing_state("acme").await["billing_address"]["city"],
        "Berlin"
    );
    let moved = put_address(&app, "acme", json!({"city": "Paris", "country": "FR"})).await;
    assert_eq!(
        moved.json::<Value>().await.unwrap()["profile_sync"],
        "synced"
    );
    assert_eq!(
        app.sim.object(customer).unwrap()["address"]["country"],
        "FR"
    );
}

async fn tax_ids_are_added_listed_verified_and_removed(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        tax_ids(&app, "acme", Role::Admin)
            .await
            .json::<Value>()
            .await
            .unwrap(),
        json!({"tax_ids": []}),
        "no customer, no Stripe call"
    );
    let added = add_tax_id(&app, "acme", "eu_vat", "de 123 456 789").await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["value"], "DE123456789");
    assert_eq!(added["country"], "DE");
    assert_eq!(added["verification"], "pending");
    let again = add_tax_id(&app, "acme", "eu_vat", "DE123456789").await;
    assert_eq!(again.status(), 200, "the same number is one tax id");
    let id = added["id"].as_str().unwrap();
    app.sim.set_tax_id_verification(id, "verified").unwrap();
    let listed: Value = tax_ids(&app, "acme", Role::Admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tax_ids"].as_array().unwrap().len(), 1);
    assert_eq!(listed["tax_ids"][0]["verification"], "verified");
    assert_eq!(tax_ids(&app, "acme", Role::Member).await.status(), 403);
    assert_eq!(delete_tax_id(&app, "acme", id).await.status(), 204);
    assert_problem(delete_tax_id(&app, "acme", id).await, 404).await;
    assert_problem(delete_tax_id(&app, "acme", "not-an-id").await, 404).await;
    let listed: Value = tax_ids(&app, "acme", Role::Admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tax_ids"], json!([]));
}

/// `tenant` located at `address`, subscribed to pro by Checkout (tax on).
async fn taxed_pro(app: &TestApp, tenant: &str, address: Value) -> Value {
    assert_eq!(put_address(app, tenant, address).await.status(), 200);
    let subscription = app.subscribed(tenant, "pro", None).await;
    let session = app
        .sim
        .object(subscription["latest_invoice"].as_str().unwrap())
        .unwrap();
    assert_eq!(session["automatic_tax"]["enabled"], true);
    subscription
}

async fn checkout_taxes_a_business_a_consumer_and_a_us_tenant_to_the_cent(backend: Backend) {
    let app = tax_app(backend).await;
    // A German business with a verified VAT id: 0 %, reverse charge.
    assert_eq!(
        put_address(&app, "gmbh", json!({"city": "Berlin", "country": "DE"}))
            .await
            .status(),
        200
    );
    let vat: Value = add_tax_id(&app, "gmbh", "eu_vat", "DE123456789")
        .await
        .json()
        .await
        .unwrap();
    app.sim
        .set_tax_id_verification(vat["id"].as_str().unwrap(), "verified")
        .unwrap();
    let checkout = app.checkout("gmbh", "pro", None).await;
    assert_eq!(checkout.status(), 201);
    let session_id = checkout.json::<Value>().await.unwrap()["checkout_session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = app.sim.object(&session_id).unwrap();
    assert_eq!(session["automatic_tax"]["enabled"], true);
    assert_eq!(session["tax_id_collection"]["enabled"], true);
    assert_eq!(session["billing_address_collection"], "required");
    assert_eq!(session["currency"], "eur", "a German tenant pays in euros");
    assert_eq!(session["amount_total"], 2700);
    let subscription = app.sim.complete_checkout(&session_id).unwrap();
    app.await_webhooks().await;
    let invoice = app
        .sim
        .object(subscription["latest_invoice"].as_str().unwrap())
        .unwrap();
    assert_eq!(invoice["total"], 2700);
    assert_eq!(
        invoice["total_taxes"][0]["taxability_reason"],
        "reverse_charge"
    );
    assert_eq!(invoice["customer_tax_ids"][0]["value"], "DE123456789");
    let row = latest_invoice(&app, "gmbh").await;
    assert_eq!(
        (
            row["tax"].as_i64(),
            row["total"].as_i64(),
            row["tax_reason"].as_str()
        ),
        (Some(0), Some(2700), Some("reverse_charge"))
    );

    // A German consumer: 27.00 EUR + 19 % = 32.13 EUR.
    let subscription = taxed_pro(&app, "verbraucher", json!({"country": "DE"})).await;
    let invoice = app
        .sim
        .object(subscription["latest_invoice"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (invoice["subtotal"].as_i64(), invoice["total"].as_i64()),
        (Some(2700), Some(3213))
    );
    let row = latest_invoice(&app, "verbraucher").await;
    assert_eq!(
        (
            row["subtotal"].as_i64(),
            row["tax"].as_i64(),
            row["total"].as_i64()
        ),
        (Some(2700), Some(513), Some(3213))
    );
    assert_eq!(row["currency"], "eur");
    assert_eq!(row["tax_reason"], "standard_rated");

    // A US tenant: 29.00 USD, 0 % (the seller collects no US tax).
    let subscription = taxed_pro(
        &app,
        "us-corp",
        json!({"city": "San Francisco", "postal_code": "94107", "state": "CA", "country": "US"}),
    )
    .await;
    let invoice = app
        .sim
        .object(subscription["latest_invoice"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (invoice["currency"].as_str(), invoice["total"].as_i64()),
        (Some("usd"), Some(2900))
    );
    let row = latest_invoice(&app, "us-corp").await;
    assert_eq!(
        (row["tax"].as_i64(), row["tax_reason"].as_str()),
        (Some(0), Some("not_collecting"))
    );
}

async fn without_a_usable_address_tax_on_is_a_422_before_any_stripe_call(backend: Backend) {
    let app = tax_app(backend).await;
    let before = app.stripe_requests_total();
    let (names, text) = fields(app.checkout("acme", "pro", None).await).await;
    assert_eq!(names, ["billing_address.country"]);
    assert!(text.contains("required to calculate tax"), "{text}");
    // A US address needs its ZIP code; the profile says so first.
    let (names, _) = fields(put_address(&app, "acme", json!({"country": "US"})).await).await;
    assert_eq!(names, ["billing_address.postal_code"]);
    assert_eq!(app.stripe_requests_total(), before, "no Stripe request");
    assert_eq!(app.stripe_requests("POST /v1/checkout/sessions"), 0);
}

async fn plan_and_seat_changes_keep_automatic_tax(backend: Backend) {
    let app = tax_app(backend).await;
    let subscription = taxed_pro(&app, "acme", json!({"country": "FR"})).await;
    let id = subscription["id"].as_str().unwrap();
    let customer = subscription["customer"].as_str().unwrap();
    let answer = app
        .subscription(
            "acme",
            "change",
            Some(json!({"plan": "team", "quantity": 2})),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let at_stripe = app.sim.object(id).unwrap();
    assert_eq!(at_stripe["automatic_tax"]["enabled"], true);
    assert_eq!(at_stripe["currency"], "eur");
    let upgrade = &app.invoices_for(customer, "subscription_update")[0];
    let tax: i64 = upgrade["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["taxes"][0]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(
        upgrade["total"].as_i64().unwrap(),
        upgrade["subtotal"].as_i64().unwrap() + tax
    );
    assert_eq!(
        upgrade["total_taxes"][0]["taxability_reason"],
        "standard_rated"
    );
    let token = app.token("acme", Role::Admin);
    let seats = app
        .client
        .put(app.url("/v1/tenants/acme/billing/seats"))
        .bearer_auth(token)
        .json(&json!({"quantity": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(seats.status(), 200);
    let seat_invoice = &app.invoices_for(customer, "subscription_update")[0];
    // Two more seats at 11.00 EUR for the whole period, plus 20 % French VAT.
    assert_eq!(seat_invoice["subtotal"], 2200, "{seat_invoice}");
    assert_eq!(seat_invoice["total"], 2640);
}

backend_tests!(
    bad_input_is_a_422_naming_the_field_and_nothing_reaches_stripe,
    the_address_is_stored_shown_and_synced_to_the_customer,
    tax_ids_are_added_listed_verified_and_removed,
    checkout_taxes_a_business_a_consumer_and_a_us_tenant_to_the_cent,
    without_a_usable_address_tax_on_is_a_422_before_any_stripe_call,
    plan_and_seat_changes_keep_automatic_tax,
);
