//! `GET …/billing/invoices`: the tenant's invoices from Stripe's list, paged
//! newest first; a Stripe failure is a 502, never an empty list.

use std::collections::HashSet;

use serde_json::Value;
use stripe_sim::{Fault, FaultKind};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    assert_problem, spawn_app, spawn_instance, start_sim, Backend, TestApp, TestDatabase,
};

const DAY: i64 = 86_400;

async fn invoices(app: &TestApp, tenant: &str, role: Role, query: &str) -> reqwest::Response {
    let token = app.token(tenant, role);
    app.get(
        &format!("/v1/tenants/{tenant}/billing/invoices{query}"),
        Some(&token),
    )
    .await
}

/// Acceptance: 25 invoices paged 10 at a time: each once, newest first.
async fn paging_returns_each_invoice_once_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = app.subscribe("acme", "pro", None).await;
    let customer = subscription["customer"].as_str().unwrap().to_owned();
    // 24 renewals after the first invoice.
    app.sim.advance_clock(24 * 31 * DAY - DAY);
    app.await_webhooks().await;
    let at_stripe: Vec<String> = app
        .sim
        .invoices(&customer)
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(at_stripe.len(), 25);

    let mut seen: Vec<Value> = Vec::new();
    let mut pages = Vec::new();
    let mut query = "?limit=10".to_owned();
    loop {
        let answer = invoices(&app, "acme", Role::Admin, &query).await;
        assert_eq!(answer.status(), 200);
        let page: Value = answer.json().await.unwrap();
        let rows = page["invoices"].as_array().unwrap().clone();
        pages.push((rows.len(), page["has_more"].as_bool().unwrap()));
        seen.extend(rows);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        let last = seen.last().unwrap()["id"].as_str().unwrap();
        query = format!("?limit=10&starting_after={last}");
    }
    assert_eq!(pages, [(10, true), (10, true), (5, false)]);
    let ids: Vec<String> = seen
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25, "each once");
    assert_eq!(ids, at_stripe, "Stripe's order: newest first");
    assert!(seen
        .windows(2)
        .all(|w| w[0]["created"].as_i64() >= w[1]["created"].as_i64()));
    let newest = &seen[0];
    assert_eq!(newest["status"], "paid");
    assert_eq!(newest["amount_paid"], 2900);
    assert_eq!(newest["currency"], "usd");
    for field in ["number", "hosted_invoice_url", "invoice_pdf"] {
        assert!(newest[field].is_string(), "{field}: {newest}");
    }
    assert!(newest["period_end"].as_i64() >= newest["period_start"].as_i64());
    // The default page is 10.
    let default: Value = invoices(&app, "acme", Role::Admin, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(default["invoices"].as_array().unwrap().len(), 10);
}

/// A Stripe outage is a 502 problem, not an empty list (which would read as
/// "no invoices").
async fn a_stripe_failure_is_a_502_not_an_empty_list(backend: Backend) {
    let app = spawn_app(backend).await;
    app.subscribe("acme", "pro", None).await;
    app.sim.add_fault(Fault {
        method: "GET".into(),
        path: "/v1/invoices".into(),
        count: 100,
        kind: FaultKind::Status(500),
    });
    let answer = invoices(&app, "acme", Role::Admin, "").await;
    assert_problem(answer, 502).await;
    app.sim.clear_faults();
    let answer = invoices(&app, "acme", Role::Admin, "").await;
    assert_eq!(answer.status(), 200);
}

async fn invoices_are_for_admins_and_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    // No Stripe customer yet: nothing to list, and nothing asked of Stripe.
    let answer = invoices(&app, "acme", Role::Admin, "").await;
    assert_eq!(answer.status(), 200);
    let page: Value = answer.json().await.unwrap();
    assert_eq!(page["invoices"], serde_json::json!([]));
    assert_eq!(page["has_more"], false);
    app.subscribe("acme", "pro", None).await;
    let member = invoices(&app, "acme", Role::Member, "").await;
    assert_problem(member, 403).await;
    let listed = app.stripe_requests("GET /v1/invoices");
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=ten",
        "?starting_after=cus_1",
        "?starting_after=in_%20x",
        "?starting_after=in_0",
    ] {
        let answer = invoices(&app, "acme", Role::Admin, query).await;
        assert_problem(answer, 422).await;
    }
    // Only the well-formed unknown cursor was asked of Stripe.
    assert_eq!(app.stripe_requests("GET /v1/invoices"), listed + 1);
}

/// Acceptance (issue 22): reloading the invoices costs Stripe nothing once
/// a page is read, while nothing changes; an invoice webhook (here a
/// renewal, received by the other instance) shows the new invoice on the
/// next read: at once on PostgreSQL (NOTIFY), within the TTL on SQLite.
async fn invoice_pages_are_cached_until_an_invoice_webhook(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let ttl = [
        ("APP__BILLING__INVOICE_CACHE_TTL_MS", "2000"),
        ("APP__RATE_LIMIT__TENANT_STRIPE_READS_PER_MINUTE", "100000"),
    ];
    let reader = spawn_instance(database.shared(), sim.clone(), &ttl).await;
    // The last instance spawned receives the webhooks.
    let app = spawn_instance(database, sim, &ttl).await;
    app.subscribed("acme", "pro", None).await;
    // Notifications of the checkout's writes may still be on their way to
    // the reader: read until a read costs nothing.
    let started = std::time::Instant::now();
    loop {
        let listed = app.stripe_requests("GET /v1/invoices");
        invoices(&reader, "acme", Role::Admin, "").await;
        if app.stripe_requests("GET /v1/invoices") == listed {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    let listed = app.stripe_requests("GET /v1/invoices");
    for _ in 0..5 {
        let page: Value = invoices(&reader, "acme", Role::Admin, "")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["invoices"].as_array().unwrap().len(), 1);
    }
    assert_eq!(
        app.stripe_requests("GET /v1/invoices"),
        listed,
        "served from memory"
    );
    // Another page is another request.
    invoices(&reader, "acme", Role::Admin, "?limit=5").await;
    assert_eq!(app.stripe_requests("GET /v1/invoices"), listed + 1);

    app.sim.advance_clock(31 * DAY);
    app.await_webhooks().await;
    let started = std::time::Instant::now();
    loop {
        let page: Value = invoices(&reader, "acme", Role::Admin, "")
            .await
            .json()
            .await
            .unwrap();
        if page["invoices"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the renewal's invoice never showed"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let waited = started.elapsed();
    eprintln!("[{backend:?}] the renewal's invoice showed on the other instance after {waited:?}");
    if backend == Backend::Postgres {
        assert!(
            waited < std::time::Duration::from_millis(1000),
            "{waited:?}"
        );
    }
}

backend_tests!(
    invoice_pages_are_cached_until_an_invoice_webhook,
    paging_returns_each_invoice_once_newest_first,
    a_stripe_failure_is_a_502_not_an_empty_list,
    invoices_are_for_admins_and_checked,
);
