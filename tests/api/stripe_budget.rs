//! One Stripe budget for every instance (issue 22): what the simulator sees
//! per second stays within `stripe.max_requests_per_second` whatever the
//! tenants do, Upgrade clicks get through while a tenant loops on a read
//! that costs Stripe requests, and that tenant is the one refused.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{assert_problem, spawn_instance, start_sim, Backend, TestApp, TestDatabase};

const BUDGET: u64 = 10;

/// Loops on `GET …/invoices` with a different page size each time (so no
/// answer is cached) until `until`; returns (answered 200, refused 429).
async fn loop_on_invoices(app: &TestApp, until: Instant, offset: u32) -> (u32, u32) {
    let token = app.token("looper", Role::Admin);
    let (mut ok, mut refused) = (0, 0);
    let mut n = offset;
    while Instant::now() < until {
        n += 1;
        let path = format!("/v1/tenants/looper/billing/invoices?limit={}", n % 100 + 1);
        let answer = app.get(&path, Some(&token)).await;
        match answer.status().as_u16() {
            200 => ok += 1,
            429 => {
                let wait = answer.headers()["retry-after"].to_str().unwrap().to_owned();
                assert!(wait.parse::<u64>().unwrap() >= 1);
                assert_problem(answer, 429).await;
                refused += 1;
                // A polite loop would wait; this one just keeps going.
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            status => panic!("invoices answered {status}"),
        }
    }
    (ok, refused)
}

/// Acceptance: two instances, a tenant looping on invoices through both and
/// ten other tenants clicking Upgrade meanwhile: the simulator never sees
/// more than the budget in a second, every Upgrade succeeds, and the
/// looping tenant gets 429.
async fn one_budget_over_two_instances_and_upgrades_get_through(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let budget = BUDGET.to_string();
    let settings = [
        ("APP__STRIPE__MAX_REQUESTS_PER_SECOND", budget.as_str()),
        ("APP__JOBS__ENABLED", "false"),
        // A short test: a lower per-tenant Stripe reads budget than the 30.
        ("APP__RATE_LIMIT__TENANT_STRIPE_READS_PER_MINUTE", "6"),
    ];
    let a = spawn_instance(database.shared(), sim.clone(), &settings).await;
    let b = spawn_instance(database, sim.clone(), &settings).await;
    a.subscribed("looper", "pro", None).await;
    let started_at = chrono::Utc::now().timestamp();

    let until = Instant::now() + Duration::from_secs(4);
    let loops = join_all([
        loop_on_invoices(&a, until, 0),
        loop_on_invoices(&b, until, 50),
        loop_on_invoices(&a, until, 25),
        loop_on_invoices(&b, until, 75),
    ]);
    let clicks = join_all((0..10).map(|i| {
        let instance = if i % 2 == 0 { &a } else { &b };
        async move {
            actix_web::rt::time::sleep(Duration::from_millis(150 * i)).await;
            let clicked = Instant::now();
            let answer = instance
                .checkout(&format!("upgrader{i}"), "pro", None)
                .await;
            (answer.status().as_u16(), clicked.elapsed())
        }
    }));
    let (loops, clicks) = futures_util::join!(loops, clicks);

    for (status, took) in &clicks {
        assert_eq!(*status, 201, "an Upgrade click failed after {took:?}");
    }
    let slowest = clicks.iter().map(|(_, took)| *took).max().unwrap();
    let (ok, refused) = loops
        .iter()
        .fold((0, 0), |(o, r), (ok, refused)| (o + ok, r + refused));
    assert!(
        refused > 0,
        "the looping tenant was never refused ({ok} answered)"
    );

    let per_second = sim.requests_per_second();
    let window: Vec<u64> = per_second.range(started_at..).map(|(_, n)| *n).collect();
    eprintln!(
        "[{backend:?}] budget {BUDGET}/s: Stripe saw {window:?} per second; looper {ok} answered, \
         {refused} refused; slowest Upgrade {slowest:?}"
    );
    assert!(
        window.iter().all(|n| *n <= BUDGET),
        "more than {BUDGET} requests in a second: {per_second:?}"
    );
}

/// A backfill next to a serving instance: both draw on one budget, and a
/// member's Upgrade click on the instance goes before the backfill's work.
async fn a_command_and_an_instance_share_the_budget(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    crate::child::seed_tenants(&mut db, "bulk", 60, false);
    let sim = start_sim();
    let budget = BUDGET.to_string();
    let settings = [
        ("APP__STRIPE__MAX_REQUESTS_PER_SECOND", budget.as_str()),
        ("APP__JOBS__ENABLED", "false"),
    ];
    let app = spawn_instance(database.shared(), sim.clone(), &settings).await;
    let started_at = chrono::Utc::now().timestamp();
    let mut backfill = crate::child::command(
        &database.url,
        &sim,
        &["backfill-customers", "--rate", "50", "--concurrency", "8"],
        &settings,
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    assert!(
        crate::child::eventually(Duration::from_secs(10), || sim.customers().len() >= 10).await,
        "the backfill did not start"
    );
    let clicked = Instant::now();
    let answer = app.checkout("clicker", "pro", None).await;
    let took = clicked.elapsed();
    assert_eq!(answer.status(), 201);
    let status = backfill.wait().unwrap();
    assert!(status.success());
    let window: Vec<u64> = sim
        .requests_per_second()
        .range(started_at..)
        .map(|(_, n)| *n)
        .collect();
    eprintln!("[{backend:?}] backfill beside an instance: {window:?} per second; the Upgrade took {took:?}");
    assert!(window.iter().all(|n| *n <= BUDGET), "{window:?}");
    // Two Stripe calls at 10/s, queued ahead of the backfill's work.
    assert!(took < Duration::from_secs(1), "the Upgrade took {took:?}");
    assert_eq!(sim.customers().len(), 61);
}

backend_tests!(
    one_budget_over_two_instances_and_upgrades_get_through,
    a_command_and_an_instance_share_the_budget,
);
