//! `PUT …/billing/seats`: per-seat quantity, exact under concurrency across
//! instances, refused before Stripe when it cannot apply.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use stripe_sim::{Fault, FaultKind};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    assert_problem, spawn_app, spawn_instance, start_sim, Backend, TestApp, TestDatabase,
};

const SUBSCRIPTION_UPDATE: &str = "POST /v1/subscriptions/{id}";
const SUBSCRIPTION_READ: &str = "GET /v1/subscriptions/{id}";

async fn put_seats(app: &TestApp, tenant: &str, role: Role, body: Value) -> reqwest::Response {
    let token = app.token(tenant, role);
    app.client
        .put(app.url(&format!("/v1/tenants/{tenant}/billing/seats")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

/// `tenant` on team with `seats`, active (not trialing: a trial prorates
/// nothing), reached as an upgrade from pro.
async fn team_active(app: &TestApp, tenant: &str, seats: u64) -> Value {
    let subscription = app.subscribed(tenant, "pro", None).await;
    let answer = app
        .subscription(
            tenant,
            "change",
            Some(json!({"plan": "team", "quantity": seats})),
        )
        .await;
    assert_eq!(answer.status(), 200);
    app.await_webhooks().await;
    let state = app.billing_state(tenant).await;
    assert_eq!(state["subscription_status"], "active", "{state}");
    assert_eq!(state["seats"], seats);
    subscription
}

fn stripe_quantity(app: &TestApp, subscription: &Value) -> Value {
    let id = subscription["id"].as_str().unwrap();
    app.sim.object(id).unwrap()["items"]["data"][0]["quantity"].clone()
}

async fn a_seat_change_is_prorated_at_once_and_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = team_active(&app, "acme", 3).await;
    let customer = subscription["customer"].as_str().unwrap();
    let upgrades = app.invoices_for(customer, "subscription_update").len();
    let answer = put_seats(&app, "acme", Role::Admin, json!({"quantity": 5})).await;
    assert_eq!(answer.status(), 200);
    let state: Value = answer.json().await.unwrap();
    assert_eq!(state["seats"], 5, "{state}");
    assert_eq!(state["plan"], "team");
    assert_eq!(stripe_quantity(&app, &subscription), 5);
    let prorations = app.invoices_for(customer, "subscription_update");
    assert_eq!(
        prorations.len(),
        upgrades + 1,
        "one proration invoice: {prorations:?}"
    );
    // Two more seats for the whole period: 2 × 12 USD, charged at once.
    assert_eq!(prorations[0]["amount_due"], 2400, "{:?}", prorations[0]);
    assert_eq!(prorations[0]["status"], "paid");
    assert!(app
        .audit("acme")
        .contains(&"subscription.seats:ok".to_owned()));

    // The same count again sends no write (a retry is harmless).
    let updates = app.stripe_requests(SUBSCRIPTION_UPDATE);
    let again = put_seats(&app, "acme", Role::Admin, json!({"quantity": 5})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(app.stripe_requests(SUBSCRIPTION_UPDATE), updates);
    app.await_webhooks().await;
    assert_eq!(app.billing_state("acme").await["seats"], 5);
}

/// Acceptance: 24 concurrent seat changes with distinct quantities over two
/// instances, then one final change: Stripe's quantity, the stored seats
/// and the final request agree; no 5xx.
async fn concurrent_seat_changes_over_two_instances_end_exact(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let other = spawn_instance(database.shared(), sim.clone(), &[]).await;
    let app = spawn_instance(database, sim, &[]).await;
    let subscription = app.subscribed("acme", "team", Some(1)).await;
    app.sim.set_latency_ms(5);
    let before = app.stripe_requests_total();
    let calls = (0..24u64).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &other };
        put_seats(instance, "acme", Role::Admin, json!({"quantity": 2 + i}))
    });
    let answers = join_all(calls).await;
    let mut last_seen = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 200, "no call fails");
        let state: Value = answer.json().await.unwrap();
        last_seen.push(state["seats"].as_u64().unwrap());
    }
    let burst = app.stripe_requests_total() - before;
    let stored = app.billing_state("acme").await["seats"].clone();
    assert_eq!(stripe_quantity(&app, &subscription), stored);
    let final_answer = put_seats(&other, "acme", Role::Admin, json!({"quantity": 40})).await;
    assert_eq!(final_answer.status(), 200);
    assert_eq!(final_answer.json::<Value>().await.unwrap()["seats"], 40);
    app.await_webhooks().await;
    assert_eq!(stripe_quantity(&app, &subscription), 40);
    assert_eq!(app.billing_state("acme").await["seats"], 40);
    assert_eq!(other.billing_state("acme").await["seats"], 40);
    eprintln!(
        "[{backend:?}] 24 concurrent seat changes over two instances: {burst} Stripe requests, {} subscription updates in all",
        app.stripe_requests(SUBSCRIPTION_UPDATE)
    );
}

/// Acceptance: bad input is 422 naming `quantity`, and nothing reaches Stripe.
async fn bad_quantities_are_422_and_reach_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = app.subscribed("acme", "team", Some(3)).await;
    let before = app.stripe_requests_total();
    for body in [
        json!({"quantity": 0}),
        json!({"quantity": -2}),
        json!({"quantity": 51}),
        json!({"quantity": "7"}),
        json!({"quantity": 2.5}),
        json!({"quantity": 1e30}),
        json!({"quantity": 18446744073709551615u64}),
        json!({}),
    ] {
        let answer = put_seats(&app, "acme", Role::Admin, body.clone()).await;
        let problem = assert_problem(answer, 422).await;
        assert_eq!(
            problem["errors"][0]["field"], "quantity",
            "{body}: {problem}"
        );
    }
    assert_eq!(
        app.stripe_requests_total(),
        before,
        "nothing sent to Stripe"
    );
    assert_eq!(stripe_quantity(&app, &subscription), 3);
    assert_eq!(app.billing_state("acme").await["seats"], 3);
}

/// Acceptance: a flat plan or no subscription is 409, a member 403.
async fn seats_need_a_per_seat_subscription_and_an_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let none = put_seats(&app, "acme", Role::Admin, json!({"quantity": 2})).await;
    assert_problem(none, 409).await;
    app.subscribed("flat", "pro", None).await;
    let before = app.stripe_requests_total();
    let flat = put_seats(&app, "flat", Role::Admin, json!({"quantity": 2})).await;
    assert_problem(flat, 409).await;
    assert_eq!(app.stripe_requests_total(), before);
    app.subscribed("acme", "team", Some(2)).await;
    let member = put_seats(&app, "acme", Role::Member, json!({"quantity": 4})).await;
    assert_problem(member, 403).await;
    assert_eq!(app.billing_state("acme").await["seats"], 2);
}

/// Calls on different instances are combined too: while one write is at
/// Stripe, 20 calls arrive (10 on each instance); the next lock holder sends
/// only the newest count and answers all of them. Two writes in all, where
/// per-instance combining needs at least one more per instance.
async fn a_burst_is_combined_across_instances(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let other = spawn_instance(database.shared(), sim.clone(), &[]).await;
    let app = spawn_instance(database, sim, &[]).await;
    let subscription = team_active(&app, "acme", 1).await;
    let (updates, reads) = (
        app.stripe_requests(SUBSCRIPTION_UPDATE),
        app.stripe_requests(SUBSCRIPTION_READ),
    );
    // Stripe is slow, so the burst lands while the first write is there.
    app.sim.set_latency_ms(300);
    let first = put_seats(&app, "acme", Role::Admin, json!({"quantity": 2}));
    let burst = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.stripe_requests(SUBSCRIPTION_READ) == reads {
            assert!(
                Instant::now() < deadline,
                "the first call never reached Stripe"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let calls = (0..20u64).map(|i| {
            let instance = if i % 2 == 0 { &app } else { &other };
            put_seats(instance, "acme", Role::Admin, json!({"quantity": 10 + i}))
        });
        join_all(calls).await
    };
    let (first, answers) = futures_util::join!(first, burst);
    assert_eq!(first.status(), 200);
    let mut shown = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 200, "no call fails");
        let state: Value = answer.json().await.unwrap();
        shown.push(state["seats"].as_u64().unwrap());
    }
    app.sim.set_latency_ms(0);
    let writes = app.stripe_requests(SUBSCRIPTION_UPDATE) - updates;
    eprintln!("[{backend:?}] 1 + 20 seat calls over two instances: {writes} subscription updates");
    assert_eq!(writes, 2, "the burst was not combined across instances");
    // Every call of the burst answered the one count sent for all of them.
    let sent = stripe_quantity(&app, &subscription);
    assert!(
        shown.iter().all(|seats| json!(seats) == sent),
        "{shown:?} vs {sent}"
    );
    assert_eq!(app.billing_state("acme").await["seats"], sent);
    assert_eq!(other.billing_state("acme").await["seats"], sent);
    // Each call is audited, those carried by another call with their count.
    let audited = app
        .audit("acme")
        .iter()
        .filter(|a| *a == "subscription.seats:ok")
        .count();
    assert_eq!(audited, 21);
}

/// A seat write whose answer is lost is retried under the same idempotency
/// key (the lock's token): Stripe replays it, so one proration, not two;
/// the admin's audit entry records the count set.
async fn a_lost_answer_is_replayed_not_applied_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let subscription = team_active(&app, "acme", 3).await;
    let customer = subscription["customer"].as_str().unwrap();
    let (updates, prorations) = (
        app.stripe_requests(SUBSCRIPTION_UPDATE),
        app.invoices_for(customer, "subscription_update").len(),
    );
    app.sim.add_fault(Fault {
        method: "POST".into(),
        path: "/v1/subscriptions/{id}".into(),
        count: 1,
        kind: FaultKind::Drop,
    });
    let answer = put_seats(&app, "acme", Role::Admin, json!({"quantity": 9})).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["seats"], 9);
    assert_eq!(
        app.stripe_requests(SUBSCRIPTION_UPDATE) - updates,
        2,
        "sent, then replayed"
    );
    assert_eq!(
        app.invoices_for(customer, "subscription_update").len(),
        prorations + 1
    );
    assert_eq!(stripe_quantity(&app, &subscription), 9);
    let entry = app
        .audit_records("acme")
        .into_iter()
        .rfind(|a| a.action == "subscription.seats")
        .expect("audited");
    let detail: Value = serde_json::from_str(entry.detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["requested"]["seats"], 9, "{detail}");
}

backend_tests!(
    a_burst_is_combined_across_instances,
    a_lost_answer_is_replayed_not_applied_twice,
    a_seat_change_is_prorated_at_once_and_stored,
    concurrent_seat_changes_over_two_instances_end_exact,
    bad_quantities_are_422_and_reach_nothing,
    seats_need_a_per_seat_subscription_and_an_admin,
);
