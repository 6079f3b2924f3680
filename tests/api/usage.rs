//! Usage metering (issue 19): events recorded exactly once per key, limits
//! checked and consumed atomically across instances, the period following
//! the subscription, and bad input refused before anything is recorded.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{
    assert_problem, sim_config, spawn_instance, start_sim, Backend, TestApp, TestDatabase,
};

/// Free meters 60 API calls a month (blocking); pro 10 exports, team 20.
const LIMITS: [(&str, &str); 3] = [
    ("APP__PLANS__FREE__LIMITS__API_CALLS", "60"),
    ("APP__PLANS__PRO__LIMITS__EXPORTS", "10"),
    ("APP__PLANS__TEAM__LIMITS__EXPORTS", "20"),
];

async fn two_instances(backend: Backend, overrides: &[(&str, &str)]) -> (TestApp, TestApp) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let first = spawn_instance(database.shared(), sim.clone(), overrides).await;
    let second = spawn_instance(database, sim, overrides).await;
    (first, second)
}

/// `POST …/usage` with a service token.
async fn record(app: &TestApp, tenant: &str, event: Value) -> reqwest::Response {
    let token = app.token(tenant, Role::Service);
    app.client
        .post(app.url(&format!("/v1/tenants/{tenant}/usage")))
        .bearer_auth(token)
        .json(&event)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST …/usage: {error:?}"))
}

fn event(key: &str, meter: &str, quantity: i64) -> Value {
    json!({ "idempotency_key": key, "meter": meter, "quantity": quantity })
}

/// The meter's row in `GET …/usage`.
async fn meter(app: &TestApp, tenant: &str, meter: &str) -> Value {
    let usage = app
        .get(
            &format!("/v1/tenants/{tenant}/usage"),
            Some(&app.token(tenant, Role::Member)),
        )
        .await;
    assert_eq!(usage.status(), 200);
    let usage: Value = usage.json().await.unwrap();
    usage["meters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == meter)
        .cloned()
        .expect("the meter is listed")
}

fn ledger_rows(app: &TestApp) -> i64 {
    use diesel::{QueryDsl, RunQueryDsl};
    tenant_billing::db::schema::usage_events::table
        .count()
        .get_result(&mut app.db())
        .unwrap()
}

async fn an_event_is_recorded_once_and_its_retry_answers_the_same(backend: Backend) {
    let (app, _second) = two_instances(backend, &LIMITS).await;
    let first = record(&app, "acme", event("req-1", "api_calls", 3)).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["duplicate"], false);
    assert_eq!(
        (first["used"].as_i64(), first["limit"].as_i64()),
        (Some(3), Some(60))
    );
    assert_eq!(first["remaining"], 57);

    record(&app, "acme", event("req-2", "api_calls", 4)).await;
    // The retry of the first, later and with another timestamp: the first's answer.
    let mut retry = event("req-1", "api_calls", 3);
    retry["timestamp"] = json!((Utc::now() - chrono::Duration::hours(1)).to_rfc3339());
    let again = record(&app, "acme", retry).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    for field in [
        "used",
        "limit",
        "remaining",
        "timestamp",
        "period_start",
        "period_end",
    ] {
        assert_eq!(again[field], first[field], "{field}");
    }
    // The same key for another quantity or meter is not the same event.
    for other in [event("req-1", "api_calls", 4), event("req-1", "exports", 3)] {
        assert_problem(record(&app, "acme", other).await, 409).await;
    }
    let meter = meter(&app, "acme", "api_calls").await;
    assert_eq!(
        (meter["used"].as_i64(), meter["remaining"].as_i64()),
        (Some(7), Some(53))
    );
    assert_eq!(ledger_rows(&app), 2);
    // Free's period is the calendar month.
    let start: DateTime<Utc> = meter["period_start"].as_str().unwrap().parse().unwrap();
    assert_eq!(start.format("%d %H:%M:%S").to_string(), "01 00:00:00");
    // And the entitlements answer carries the same standing.
    let entitlements = app.read("acme", "entitlements").await;
    let listed = entitlements["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["meter"] == "api_calls")
        .cloned()
        .unwrap();
    for field in [
        "used",
        "limit",
        "remaining",
        "period_start",
        "period_end",
        "overage",
    ] {
        assert_eq!(listed[field], meter[field], "{field}");
    }
}

/// Acceptance: the same 1,000 keys sent twice, concurrently, over two
/// instances: exactly 1,000 counted.
async fn the_same_keys_sent_twice_over_two_instances_count_once(backend: Backend) {
    let limits = [("APP__PLANS__FREE__LIMITS__API_CALLS", "1000000")];
    let (first, second) = two_instances(backend, &limits).await;
    let sends = (0..1000)
        .flat_map(|i| [(i, &first), (i, &second)])
        .map(|(i, app)| async move {
            let response = record(app, "acme", event(&format!("k{i}"), "api_calls", 1)).await;
            response.status().as_u16()
        });
    let statuses: Vec<u16> = stream::iter(sends).buffer_unordered(64).collect().await;
    let recorded = statuses.iter().filter(|s| **s == 201).count();
    let duplicates = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!((recorded, duplicates), (1000, 1000), "{statuses:?}");
    assert_eq!(meter(&second, "acme", "api_calls").await["used"], 1000);
    assert_eq!(ledger_rows(&first), 1000);
}

/// Acceptance: 200 concurrent events of 1 against a remaining 50, over two
/// instances: exactly 50 accepted, 150 refused with 402, total = the limit.
async fn a_limit_is_never_overshot_and_nothing_that_fits_is_refused(backend: Backend) {
    let (first, second) = two_instances(backend, &LIMITS).await;
    let batch = first
        .client
        .post(first.url("/v1/tenants/acme/usage/batch"))
        .bearer_auth(first.token("acme", Role::Service))
        .json(&json!({ "events": (0..10).map(|i| event(&format!("warm{i}"), "api_calls", 1)).collect::<Vec<_>>() }))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    assert_eq!(meter(&first, "acme", "api_calls").await["remaining"], 50);

    let sends = (0..200).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        async move { record(app, "acme", event(&format!("c{i}"), "api_calls", 1)).await }
    });
    let responses: Vec<reqwest::Response> =
        stream::iter(sends).buffer_unordered(50).collect().await;
    let mut accepted = 0;
    let mut refused = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => accepted += 1,
            402 => {
                let problem = assert_problem(response, 402).await;
                assert_eq!(problem["type"], "/problems/limit-reached");
                assert_eq!(
                    (problem["limit"].as_i64(), problem["remaining"].as_i64()),
                    (Some(60), Some(0))
                );
                assert_eq!(problem["used"], 60);
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((accepted, refused), (50, 150));
    assert_eq!(meter(&second, "acme", "api_calls").await["used"], 60);
    assert_eq!(ledger_rows(&first), 60);
    // A refused event was not recorded: its key is free for a later try.
    let check = first
        .client
        .post(first.url("/v1/tenants/acme/usage/check"))
        .bearer_auth(first.token("acme", Role::Service))
        .json(&json!({ "meter": "api_calls", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    let check: Value = check.json().await.unwrap();
    assert_eq!(check["allowed"], false);
    assert_eq!(
        (check["used"].as_i64(), check["remaining"].as_i64()),
        (Some(60), Some(0))
    );
    let metrics = first.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("usage_events_total{result=\"refused\"}"),
        "{metrics}"
    );
}

/// A batch: in order, each event admitted if it fits whatever came before;
/// duplicates within it and across batches count once.
async fn a_batch_admits_in_order_what_fits(backend: Backend) {
    let (app, _second) = two_instances(backend, &LIMITS).await;
    let send = |events: Vec<Value>| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/v1/tenants/acme/usage/batch"))
                .bearer_auth(app.token("acme", Role::Service))
                .json(&json!({ "events": events }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let answer = send(vec![
        event("b1", "api_calls", 50),
        event("b2", "api_calls", 20),
        event("b3", "api_calls", 10),
        event("b1", "api_calls", 50),
        event("b4", "api_calls", 1),
    ])
    .await;
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["recorded", "refused", "recorded", "duplicate", "refused"]
    );
    assert_eq!(
        (
            answer["recorded"].as_i64(),
            answer["refused"].as_i64(),
            answer["duplicates"].as_i64()
        ),
        (Some(2), Some(2), Some(1))
    );
    let again = send(vec![
        event("b3", "api_calls", 10),
        event("b5", "exports", 1),
    ])
    .await;
    assert_eq!(again["results"][0]["status"], "duplicate");
    // Exports are not included in free (limit 0).
    assert_eq!(again["results"][1]["status"], "refused");
    assert_eq!(meter(&app, "acme", "api_calls").await["used"], 60);
}

/// Acceptance: bad input is 422 (or 403 for a member) and records nothing.
async fn bad_usage_is_refused_and_records_nothing(backend: Backend) {
    let (app, _second) = two_instances(backend, &LIMITS).await;
    let now = Utc::now();
    let at = |offset: chrono::Duration| json!((now + offset).to_rfc3339());
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": 1, "timestamp": at(-chrono::Duration::days(36))}),
            "timestamp",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": 1, "timestamp": at(chrono::Duration::minutes(6))}),
            "timestamp",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": 1, "timestamp": "yesterday"}),
            "timestamp",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": 0}),
            "quantity",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": -1}),
            "quantity",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": 2.5}),
            "quantity",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": "7"}),
            "quantity",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": 1e30}),
            "quantity",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls"}),
            "quantity",
        ),
        (
            json!({"idempotency_key": "x", "meter": "storage", "quantity": 1}),
            "meter",
        ),
        (
            json!({"idempotency_key": "k".repeat(101), "meter": "api_calls", "quantity": 1}),
            "idempotency_key",
        ),
        (
            json!({"idempotency_key": "", "meter": "api_calls", "quantity": 1}),
            "idempotency_key",
        ),
        (
            json!({"idempotency_key": "a\u{0}b", "meter": "api_calls", "quantity": 1}),
            "idempotency_key",
        ),
        (
            json!({"meter": "api_calls", "quantity": 1}),
            "idempotency_key",
        ),
        (
            json!({"idempotency_key": "x", "meter": "api_calls", "quantity": 1, "tenant_id": "globex"}),
            "tenant_id",
        ),
    ];
    for (body, field) in cases {
        let problem = assert_problem(record(&app, "acme", body.clone()).await, 422).await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
        assert!(
            !problem.to_string().contains("yesterday"),
            "a value was echoed"
        );
    }
    // One bad event fails its whole batch, naming it.
    let batch = app
        .client
        .post(app.url("/v1/tenants/acme/usage/batch"))
        .bearer_auth(app.token("acme", Role::Service))
        .json(&json!({ "events": [event("ok", "api_calls", 1), event("bad", "api_calls", 0)] }))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(batch, 422).await;
    assert_eq!(problem["errors"][0]["field"], "events[1].quantity");
    let too_many: Vec<Value> = (0..1001)
        .map(|i| event(&format!("m{i}"), "api_calls", 1))
        .collect();
    let batch = app
        .client
        .post(app.url("/v1/tenants/acme/usage/batch"))
        .bearer_auth(app.token("acme", Role::Service))
        .json(&json!({ "events": too_many }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(batch, 422).await["errors"][0]["field"],
        "events"
    );
    // A member reads usage but may not record it; another tenant's token is 403.
    let member = app
        .client
        .post(app.url("/v1/tenants/acme/usage"))
        .bearer_auth(app.token("acme", Role::Member))
        .json(&event("m", "api_calls", 1))
        .send()
        .await
        .unwrap();
    assert_problem(member, 403).await;
    let foreign = app
        .client
        .post(app.url("/v1/tenants/acme/usage"))
        .bearer_auth(app.token("globex", Role::Service))
        .json(&event("f", "api_calls", 1))
        .send()
        .await
        .unwrap();
    assert_problem(foreign, 403).await;
    assert_eq!(ledger_rows(&app), 0);
    assert_eq!(meter(&app, "acme", "api_calls").await["used"], 0);
}

/// Acceptance: an upgrade raises the limit at once, within the period.
async fn an_upgrade_raises_the_limit_at_once(backend: Backend) {
    let (app, _second) = two_instances(backend, &LIMITS).await;
    app.subscribed("acme", "pro", None).await;
    let exports = |i: usize| event(&format!("e{i}"), "exports", 1);
    for i in 0..10 {
        assert_eq!(record(&app, "acme", exports(i)).await.status(), 201);
    }
    let refused = assert_problem(record(&app, "acme", exports(10)).await, 402).await;
    assert_eq!(
        (refused["limit"].as_i64(), refused["used"].as_i64()),
        (Some(10), Some(10))
    );
    let before = meter(&app, "acme", "exports").await;

    app.change_plan("acme", "team").await;
    let accepted = record(&app, "acme", exports(10)).await;
    assert_eq!(accepted.status(), 201);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(
        (accepted["used"].as_i64(), accepted["limit"].as_i64()),
        (Some(11), Some(20))
    );
    // The same period: an upgrade does not start a new one.
    let after = meter(&app, "acme", "exports").await;
    assert_eq!(after["period_start"], before["period_start"]);
    assert_eq!(after["period_end"], before["period_end"]);
}

/// Acceptance: the subscription's renewal (the simulator's clock) starts a
/// new period whose total starts from 0; the old period keeps its own.
async fn a_renewal_starts_the_next_period_from_zero(backend: Backend) {
    // A subscription bought 33 days ago: its first period ended days ago,
    // and events from its first hours are still within the 35-day window.
    let started = Utc::now() - chrono::Duration::days(33);
    let sim = stripe_sim::SimHandle::start(stripe_sim::SimConfig {
        clock_start: Some(started.timestamp()),
        ..sim_config()
    })
    .unwrap();
    let app = spawn_instance(TestDatabase::migrated(backend), sim, &LIMITS).await;
    app.subscribed("acme", "pro", None).await;
    let first_end: DateTime<Utc> = app.billing_state("acme").await["current_period_end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first_end < Utc::now());

    let mut early = event("early", "exports", 1);
    early["timestamp"] = json!((started + chrono::Duration::hours(1)).to_rfc3339());
    let early = record(&app, "acme", early).await;
    assert_eq!(early.status(), 201);
    let early: Value = early.json().await.unwrap();
    assert_eq!(
        early["period_end"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(first_end)
    );
    for i in 0..9 {
        let mut late = event(&format!("late{i}"), "exports", 1);
        late["timestamp"] = json!((first_end - chrono::Duration::minutes(1)).to_rfc3339());
        assert_eq!(record(&app, "acme", late).await.status(), 201);
    }

    // Stripe renews at the period's end.
    app.sim
        .advance_clock(first_end.timestamp() - app.sim.now() + 60);
    app.await_webhooks().await;
    let renewed = app.billing_state("acme").await;
    let second_end: DateTime<Utc> = renewed["current_period_end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(second_end > first_end);

    let now = record(&app, "acme", event("now", "exports", 1)).await;
    assert_eq!(now.status(), 201);
    let now: Value = now.json().await.unwrap();
    assert_eq!(now["used"], 1, "the new period starts from 0");
    assert_eq!(
        now["period_start"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(first_end)
    );
    assert_eq!(
        now["period_end"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(second_end)
    );
    let standing = meter(&app, "acme", "exports").await;
    assert_eq!(
        (standing["used"].as_i64(), standing["remaining"].as_i64()),
        (Some(1), Some(9))
    );
    // The old period is full: one more event dated in it is refused.
    let mut old = event("old", "exports", 1);
    old["timestamp"] = json!((first_end - chrono::Duration::minutes(2)).to_rfc3339());
    let refused = assert_problem(record(&app, "acme", old).await, 402).await;
    assert_eq!(refused["used"], 10);
}

/// Acceptance: kill -9 of an instance during a 10,000-event run whose client
/// retries on the other: the total is exactly what the client sent once per
/// key, nothing lost and nothing doubled.
async fn a_killed_instance_loses_and_doubles_nothing(backend: Backend) {
    use crate::child::ChildService;
    let limits = [("APP__PLANS__FREE__LIMITS__API_CALLS", "100000000")];
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let survivor = spawn_instance(database.shared(), sim.clone(), &limits).await;
    let mut doomed = ChildService::start(&database.url, &sim, &limits).await;
    let token = survivor.token("acme", Role::Service);
    let quantity = |i: usize| (i % 7 + 1) as i64;
    let expected: i64 = (0..10_000).map(quantity).sum();

    // 100 batches of 100; each goes to the doomed instance until it is
    // gone, then (and on any failure) to the survivor, until answered.
    let acked = std::sync::atomic::AtomicUsize::new(0);
    let doomed_base = doomed.base.clone();
    let send_batch = |n: usize| {
        let (survivor, doomed_base, token, acked) =
            (&survivor, doomed_base.clone(), &token, &acked);
        async move {
            let events: Vec<Value> = (n * 100..n * 100 + 100)
                .map(|i| event(&format!("ev{i}"), "api_calls", quantity(i)))
                .collect();
            let body = json!({ "events": events });
            let mut base = doomed_base;
            loop {
                let sent = survivor
                    .client
                    .post(format!("{base}/v1/tenants/acme/usage/batch"))
                    .bearer_auth(token)
                    .json(&body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        let answer: Value = response.json().await.unwrap();
                        assert_eq!(answer["refused"], 0);
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        return answer["results"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r["idempotency_key"].as_str().unwrap().to_owned())
                            .collect::<Vec<_>>();
                    }
                    _ => base = survivor.address.clone(),
                }
            }
        }
    };
    let run = stream::iter((0..100).map(send_batch))
        .buffer_unordered(4)
        .collect::<Vec<_>>();
    let killer = async {
        while acked.load(std::sync::atomic::Ordering::SeqCst) < 30 {
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        doomed.kill();
    };
    let (answered, ()) = futures_util::join!(run, killer);
    let keys: HashSet<String> = answered.into_iter().flatten().collect();
    assert_eq!(keys.len(), 10_000);
    assert_eq!(
        meter(&survivor, "acme", "api_calls").await["used"],
        expected
    );
    assert_eq!(ledger_rows(&survivor), 10_000);
}

backend_tests!(
    an_event_is_recorded_once_and_its_retry_answers_the_same,
    the_same_keys_sent_twice_over_two_instances_count_once,
    a_limit_is_never_overshot_and_nothing_that_fits_is_refused,
    a_batch_admits_in_order_what_fits,
    bad_usage_is_refused_and_records_nothing,
    an_upgrade_raises_the_limit_at_once,
    a_renewal_starts_the_next_period_from_zero,
    a_killed_instance_loses_and_doubles_nothing,
);
