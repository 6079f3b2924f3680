//! The proof of issue 20 under failure: thousands of events over two
//! instances, Stripe failing and dropping answers, an instance killed -9
//! twice: Stripe's meter ends with the ledger's total exactly, billed once.

use std::time::Duration;

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{spawn_instance, Backend, TestDatabase};
use crate::usage_billing::{
    call, customer, forwarded, ledger_total, naive, period_of, reconcile, renewal_usage,
    settle_clock, sim_with_period_ending_in, BILLED,
};

/// Acceptance: 10,000 events over two instances, with Stripe failing 20 % of
/// meter-event calls and dropping 5 % of its answers, and one instance
/// killed -9 twice: Stripe's summary for the period equals the ledger's total
/// exactly, per tenant, and the renewal invoice charges it once.
async fn ten_thousand_events_survive_faults_and_two_kills_billed_once(backend: Backend) {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::stream::{self, StreamExt};

    use crate::child::ChildService;

    const TENANTS: [&str; 4] = ["t-alpha", "t-beta", "t-gamma", "t-delta"];
    let mut env: Vec<(&str, &str)> = BILLED.to_vec();
    env.extend([
        ("APP__USAGE__FORWARD_BACKOFF_MAX_MS", "1000"),
        ("APP__JOBS__LEASE_SECONDS", "2"),
    ]);
    let database = TestDatabase::migrated(backend);
    let sim = sim_with_period_ending_in(chrono::Duration::minutes(20));
    // The survivor takes usage but forwards none: every meter event comes
    // from the instance that is killed (twice) and restarted.
    let mut ingest_only = env.clone();
    ingest_only.push(("APP__JOBS__ENABLED", "false"));
    let survivor = spawn_instance(database.shared(), sim.clone(), &ingest_only).await;
    let mut subscriptions = Vec::new();
    for tenant in TENANTS {
        subscriptions.push(survivor.subscribed(tenant, "pro", None).await);
    }
    settle_clock(&sim);
    let (start, end) = period_of(&subscriptions[0]);
    for fault in [
        (20, stripe_sim::FaultKind::Status(500)),
        (5, stripe_sim::FaultKind::Drop),
    ] {
        sim.add_random_fault(stripe_sim::RandomFault {
            method: "POST".into(),
            path: "/v1/billing/meter_events".into(),
            percent: fault.0,
            kind: fault.1,
        });
    }
    let mut doomed = ChildService::start(&database.url, &sim, &env).await;

    // 100 batches of 100 events, spread over a few seconds so forwarding
    // runs meanwhile, each to the doomed instance while it is up, else (and
    // on any failure) to the survivor, until answered.
    let quantity = |i: usize| (i % 9 + 1) as i64;
    let tenant_of = |batch: usize| TENANTS[batch % TENANTS.len()];
    let acked = AtomicUsize::new(0);
    let doomed_base = std::sync::Mutex::new(Some(doomed.base.clone()));
    let send = |n: usize| {
        let (survivor, acked, doomed_base) = (&survivor, &acked, &doomed_base);
        async move {
            let tenant = tenant_of(n);
            let token = survivor.token(tenant, Role::Service);
            actix_web::rt::time::sleep(Duration::from_millis(40)).await;
            let events: Vec<Value> = (n * 100..n * 100 + 100)
                .map(|i| call(&format!("k{i}"), quantity(i)))
                .collect();
            loop {
                let base = doomed_base
                    .lock()
                    .unwrap()
                    .clone()
                    .unwrap_or_else(|| survivor.address.clone());
                let sent = survivor
                    .client
                    .post(format!("{base}/v1/tenants/{tenant}/usage/batch"))
                    .bearer_auth(&token)
                    .json(&json!({ "events": events }))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                if let Ok(response) = sent {
                    if response.status() == 200 {
                        let answer: Value = response.json().await.unwrap();
                        assert_eq!(answer["refused"], 0);
                        acked.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let run = stream::iter((0..100).map(send))
        .buffer_unordered(2)
        .collect::<Vec<()>>();
    let meter_calls = || {
        sim.stats()
            .requests
            .get("POST /v1/billing/meter_events")
            .copied()
            .unwrap_or(0)
    };
    let killer = async {
        let mut seen = 0;
        for kill_at in [30, 60] {
            // Killed while it forwards: it has sent since the last kill.
            while acked.load(Ordering::SeqCst) < kill_at || meter_calls() <= seen {
                actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            }
            seen = meter_calls();
            *doomed_base.lock().unwrap() = None;
            doomed.kill();
            doomed = ChildService::start(&database.url, &sim, &env).await;
            *doomed_base.lock().unwrap() = Some(doomed.base.clone());
        }
    };
    futures_util::join!(run, killer);

    forwarded(&survivor, Duration::from_secs(120)).await;
    let mut expected = std::collections::HashMap::new();
    for i in 0..10_000 {
        *expected.entry(tenant_of(i / 100)).or_insert(0_i64) += quantity(i);
    }
    for tenant in TENANTS {
        let cus = customer(&survivor, tenant);
        let ledger = ledger_total(&survivor, tenant, naive(start));
        assert_eq!(ledger, expected[tenant], "{tenant}: the ledger");
        assert_eq!(
            sim.meter_value("mtr_api_calls", &cus, start, end),
            ledger as f64,
            "{tenant}: Stripe's meter holds the ledger's total exactly"
        );
    }
    let report = reconcile(&survivor, false);
    assert!(
        report.contains("usage: 4 periods, 0 differ, 0 in flight"),
        "{report}"
    );

    // The period ends; after Stripe's grace period the renewal bills it once.
    sim.clear_faults();
    drop(doomed);
    sim.advance_clock(end - sim.now() + 3600);
    for tenant in TENANTS {
        let cus = customer(&survivor, tenant);
        let (invoice, lines) = renewal_usage(&sim, &cus, end, "price_pro_api_calls");
        assert_eq!(invoice["status"], "paid", "{tenant}");
        assert_eq!(lines.len(), 1, "{tenant}: one metered line");
        assert_eq!(lines[0]["quantity"], expected[tenant], "{tenant}");
        assert_eq!(lines[0]["amount"], (expected[tenant] - 100) * 2, "{tenant}");
    }
    let calls = meter_calls();
    eprintln!("[{backend:?}] 10,000 events forwarded in {calls} meter-event calls (with failures)");
}

backend_tests!(ten_thousand_events_survive_faults_and_two_kills_billed_once);
