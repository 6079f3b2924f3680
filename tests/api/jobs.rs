//! The outbox: signups never wait for Stripe, jobs survive kill -9, two
//! instances never run one job at once, dead jobs can be re-driven.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use stripe_sim::{Fault, FaultKind};
use tenant_billing::db::jobs::{self, state};

use crate::backend_tests;
use crate::child::{
    admin_token, all_jobs, command, eventually, links, run_ok, seed_tenants, ChildService,
};
use crate::helpers::{spawn_app_with, spawn_instance, start_sim, Backend, TestDatabase};

fn create_fails(count: u32) -> Fault {
    Fault {
        method: "POST".into(),
        path: "/v1/customers".into(),
        count,
        kind: FaultKind::Status(500),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Acceptance: while every customer create fails, 100 signups all answer 200
/// (fast: the response never waits for Stripe); the service is SIGKILLed and
/// restarted; once Stripe recovers every tenant has exactly one customer.
async fn signups_during_an_outage_survive_kill_9_and_end_with_one_customer_each(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    sim.add_fault(create_fails(1_000_000));
    let env = [
        ("APP__JOBS__LEASE_SECONDS", "2"),
        ("APP__BILLING__CUSTOMER_CLAIM_TTL_SECONDS", "1"),
    ];
    let mut service = ChildService::start(&database.url, &sim, &env).await;

    let tenants: Vec<String> = (0..100).map(|i| format!("signup{i:03}")).collect();
    let mut latencies = Vec::new();
    for batch in tenants.chunks(10) {
        let calls = batch.iter().map(|tenant| {
            let (client, base) = (service.client.clone(), service.base.clone());
            let token = admin_token(tenant);
            async move {
                let started = Instant::now();
                let response = client
                    .put(format!("{base}/v1/tenants/{tenant}/billing/profile"))
                    .bearer_auth(token)
                    .json(&json!({"billing_email": format!("ap@{tenant}.test")}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("signup of {tenant} not answered: {e:?}"));
                let elapsed = started.elapsed();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, body["profile_sync"].clone(), elapsed)
            }
        });
        for (status, sync, elapsed) in join_all(calls).await {
            assert_eq!(status, 200, "a signup failed during the outage");
            assert_eq!(sync, "provisioning");
            latencies.push(elapsed);
        }
    }
    latencies.sort();
    eprintln!(
        "[{backend:?}] signup latency during a Stripe outage (100 signups, 10 concurrent): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1]
    );
    // The behavioural guard is above (200 + `provisioning` while every create
    // fails). This is only a sanity bound: the suite runs tests in parallel on
    // small machines, so the latency target is measured and reported, not
    // asserted here.
    assert!(percentile(&latencies, 99.0) < Duration::from_secs(2));

    let db_url = database.url.clone();
    let mut db = tenant_billing::db::establish(&db_url, 5000).unwrap();
    // The workers are really failing at Stripe before the kill.
    assert!(
        eventually(Duration::from_secs(20), || all_jobs(&mut db)
            .iter()
            .filter(|j| j.last_error.is_some())
            .count()
            >= 10)
        .await,
        "the workers never tried"
    );
    service.kill();
    assert!(sim.customers().is_empty());
    let queued = all_jobs(&mut db);
    assert_eq!(queued.len(), 100, "one job per signup");
    assert!(queued
        .iter()
        .all(|j| j.state == state::QUEUED || j.state == state::RUNNING));

    let _service = ChildService::start(&db_url, &sim, &env).await;
    sim.clear_faults();
    assert!(
        eventually(Duration::from_secs(40), || links(&mut db)
            .iter()
            .all(|(_, c)| c.is_some()))
        .await,
        "not every tenant got its customer: {:?}",
        links(&mut db).iter().filter(|(_, c)| c.is_none()).count()
    );
    let customers = sim.customers();
    assert_eq!(customers.len(), 100, "exactly one customer per tenant");
    let carried: HashSet<&str> = customers
        .iter()
        .filter_map(|c| c["metadata"]["tenant_id"].as_str())
        .collect();
    assert_eq!(carried.len(), 100);
    let linked: HashMap<String, Option<String>> = links(&mut db).into_iter().collect();
    for customer in &customers {
        let tenant = customer["metadata"]["tenant_id"].as_str().unwrap();
        assert_eq!(
            linked[tenant].as_deref(),
            customer["id"].as_str(),
            "{tenant} is linked to another customer"
        );
        assert_eq!(customer["email"], format!("ap@{tenant}.test"));
    }
    assert!(
        eventually(Duration::from_secs(10), || all_jobs(&mut db)
            .iter()
            .all(|j| j.state == state::SUCCEEDED))
        .await
    );
    drop(database);
}

/// Acceptance (issue 22): a job (and the creation claim it holds) of an
/// instance SIGKILLed mid-call is taken over once the instance's heartbeat
/// stops, not when the 30 s leases lapse; the tenant ends with one customer.
async fn a_dead_instances_job_is_adopted_without_waiting_for_its_lease(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    let sim = start_sim();
    // The create is processed, then its answer held: the kill comes mid-call.
    sim.add_fault(Fault {
        method: "POST".into(),
        path: "/v1/customers".into(),
        count: 1,
        kind: FaultKind::DelayMs(60_000),
    });
    let env = [
        ("APP__JOBS__LEASE_SECONDS", "30"),
        ("APP__BILLING__CUSTOMER_CLAIM_TTL_SECONDS", "30"),
    ];
    let mut service = ChildService::start(&database.url, &sim, &env).await;
    seed_tenants(&mut db, "crash", 1, true);
    assert!(
        eventually(Duration::from_secs(20), || sim.customers().len() == 1).await,
        "the job never reached Stripe"
    );
    service.kill();
    let job = all_jobs(&mut db).remove(0);
    assert_eq!(job.state, state::RUNNING);

    let killed = Instant::now();
    let _successor = spawn_instance(database.shared(), sim.clone(), &env).await;
    assert!(
        eventually(Duration::from_secs(20), || links(&mut db)[0].1.is_some()).await,
        "the job was never taken over"
    );
    let took = killed.elapsed();
    eprintln!("[{backend:?}] a dead instance's job taken over after {took:?} (leases: 30 s)");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(sim.customers().len(), 1, "one customer");
    assert_eq!(
        links(&mut db)[0].1.as_deref(),
        sim.customers()[0]["id"].as_str()
    );
}

/// Acceptance: two instances drain one queue; no job is claimed twice (each
/// claim counts an attempt, so a double claim would show as attempts = 2),
/// both instances take part, and Stripe sees one create per job.
async fn two_instances_never_run_one_job_at_the_same_time(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    seed_tenants(&mut db, "drain", 80, true);
    let sim = start_sim();
    sim.set_latency_ms(40);
    let shared = database.shared();
    let overrides = [("APP__JOBS__WORKERS", "4")];
    let a = spawn_instance(database, sim.clone(), &overrides).await;
    let b = spawn_instance(shared, sim.clone(), &overrides).await;
    assert!(
        eventually(Duration::from_secs(30), || all_jobs(&mut db)
            .iter()
            .all(|j| j.state == state::SUCCEEDED))
        .await,
        "the queue was not drained"
    );
    let done = all_jobs(&mut db);
    assert_eq!(done.len(), 80);
    let twice: Vec<i64> = done
        .iter()
        .filter(|j| j.attempts != 1)
        .map(|j| j.id)
        .collect();
    assert!(twice.is_empty(), "jobs claimed more than once: {twice:?}");
    let instances: HashSet<&str> = done
        .iter()
        .filter_map(|j| j.locked_by.as_deref()?.split('/').next())
        .collect();
    assert_eq!(instances.len(), 2, "both instances should have worked");
    // One creation per tenant. (Stripe's request count may exceed 80 on a
    // loaded machine: a timed-out attempt is retried under the same key.)
    assert_eq!(sim.customers().len(), 80);
    for job in &done {
        let tenant = tenant_billing::domain::TenantId::parse(&job.tenant_id).unwrap();
        let created: Vec<String> = tenant_billing::db::audit::for_tenant(&mut db, &tenant)
            .unwrap()
            .into_iter()
            .filter(|e| e.action.starts_with("customer."))
            .map(|e| format!("{}:{}", e.action, e.outcome))
            .collect();
        assert_eq!(created, ["customer.created:ok"], "{}", job.tenant_id);
    }
    drop((a, b));
}

/// Claiming from many connections at once hands out disjoint jobs
/// (PostgreSQL: SKIP LOCKED; SQLite: BEGIN IMMEDIATE).
async fn concurrent_claims_are_disjoint(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    seed_tenants(&mut db, "claim", 200, true);
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let url = database.url.clone();
            std::thread::spawn(move || {
                let mut conn = tenant_billing::db::establish(&url, 5000).unwrap();
                let mut mine = Vec::new();
                loop {
                    let now = chrono::Utc::now().naive_utc();
                    let lease = now + chrono::Duration::seconds(60);
                    let batch = jobs::claim(&mut conn, &format!("t{n}"), now, lease, 5).unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|j| j.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for thread in threads {
        for id in thread.join().unwrap() {
            total += 1;
            assert!(seen.insert(id), "job {id} claimed twice");
        }
    }
    assert_eq!(total, 200);
}

/// At most one active job per (kind, tenant): a second enqueue while queued
/// is absorbed; while running it flags one more run, so the change that
/// asked for it is not lost. Worker writes are fenced on the lease holder.
async fn enqueue_dedupes_and_a_request_during_a_run_runs_it_again(backend: Backend) {
    use tenant_billing::db::jobs::{Enqueued, Finished, JobKind};
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    let tenant = tenant_billing::domain::TenantId::parse("acme").unwrap();
    let now = chrono::Utc::now().naive_utc();
    let lease = now + chrono::Duration::seconds(60);
    let kind = JobKind::SyncProfile;
    let mut enqueue = |kind| jobs::enqueue(&mut db, kind, &tenant, now, now).unwrap();
    assert_eq!(enqueue(kind), Enqueued::Inserted);
    assert_eq!(enqueue(kind), Enqueued::AlreadyQueued);
    assert_eq!(enqueue(JobKind::EnsureCustomer), Enqueued::Inserted);
    let claimed = jobs::claim(&mut db, "w1", now, lease, 10).unwrap();
    assert_eq!(claimed.len(), 2);
    let id = claimed
        .iter()
        .find(|j| j.kind == "sync_profile")
        .unwrap()
        .id;
    assert!(
        jobs::claim(&mut db, "w2", now, lease, 10)
            .unwrap()
            .is_empty(),
        "leased jobs were claimed again"
    );
    assert_eq!(
        jobs::enqueue(&mut db, kind, &tenant, now, now).unwrap(),
        Enqueued::RunAgain
    );
    assert_eq!(
        jobs::complete(&mut db, id, "w2", now).unwrap(),
        Finished::LeaseLost,
        "not w2's job"
    );
    assert_eq!(
        jobs::complete(&mut db, id, "w1", now).unwrap(),
        Finished::Requeued
    );
    let again = jobs::claim(&mut db, "w2", now, lease, 10).unwrap();
    assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(
        jobs::complete(&mut db, id, "w2", now).unwrap(),
        Finished::Succeeded
    );
    // A lapsed lease (its worker died) makes a running job claimable again.
    let ensure = claimed
        .iter()
        .find(|j| j.kind == "ensure_customer")
        .unwrap();
    let later = lease + chrono::Duration::seconds(1);
    let relet = later + chrono::Duration::seconds(60);
    let taken = jobs::claim(&mut db, "w3", later, relet, 10).unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].id, taken[0].attempts), (ensure.id, 2));
    assert!(
        !jobs::fail(&mut db, ensure.id, "w1", later, None, "late").unwrap(),
        "fenced"
    );
    assert!(jobs::fail(&mut db, ensure.id, "w3", later, None, "boom").unwrap());
    assert_eq!(
        jobs::redrive(&mut db, None, later).unwrap(),
        vec![ensure.id]
    );
    assert!(jobs::redrive(&mut db, None, later).unwrap().is_empty());
}

/// A job failing past its retry horizon is parked dead with its last error;
/// `jobs redrive --all-dead` queues it again and it then succeeds.
async fn a_job_past_its_horizon_is_dead_until_redriven(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__JOBS__RETRY_HORIZON_SECONDS", "1")],
    )
    .await;
    app.sim.add_fault(create_fails(1_000_000));
    let token = app.token("acme", tenant_billing::domain::Role::Admin);
    let response = app
        .put_profile("acme", &token, json!({"billing_email": "ap@acme.test"}))
        .await;
    assert_eq!(response.status(), 200);
    let mut db = app.db();
    assert!(
        eventually(Duration::from_secs(15), || all_jobs(&mut db)
            .iter()
            .any(|j| j.state == state::DEAD))
        .await,
        "the job never died"
    );
    let dead = &all_jobs(&mut db)[0];
    assert!(dead
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("stripe"));
    assert!(dead.attempts >= 2, "it was retried before dying");
    app.sim.clear_faults();
    let out = run_ok(command(
        &app.database.url,
        &app.sim,
        &["jobs", "redrive", "--all-dead"],
        &[],
    ));
    assert!(out.contains("re-drove 1 job"), "{out}");
    assert!(
        eventually(Duration::from_secs(10), || app
            .row("acme")
            .is_some_and(|r| r.stripe_customer_id.is_some()))
        .await
    );
    assert_eq!(app.sim.customers().len(), 1);
    let out = run_ok(command(&app.database.url, &app.sim, &["jobs", "list"], &[]));
    assert!(out.contains("succeeded"), "{out}");
}

/// A profile change while the customer is still being provisioned reaches
/// the customer once it exists.
async fn a_profile_change_during_provisioning_reaches_stripe(backend: Backend) {
    let app = spawn_app_with(TestDatabase::migrated(backend), &[]).await;
    app.sim.add_fault(create_fails(3));
    let token = app.token("acme", tenant_billing::domain::Role::Admin);
    let first = app
        .put_profile("acme", &token, json!({"billing_email": "old@acme.test"}))
        .await;
    assert_eq!(first.status(), 200);
    let second = app
        .put_profile(
            "acme",
            &token,
            json!({"billing_email": "new@acme.test", "billing_name": "Acme"}),
        )
        .await;
    let body: Value = second.json().await.unwrap();
    assert!(
        body["profile_sync"] == "provisioning" || body["profile_sync"] == "synced",
        "{body}"
    );
    assert!(
        eventually(Duration::from_secs(15), || {
            let customers = app.sim.customers();
            customers.len() == 1
                && customers[0]["email"] == "new@acme.test"
                && customers[0]["name"] == "Acme"
        })
        .await,
        "{:?}",
        app.sim.customers()
    );
    assert!(
        eventually(Duration::from_secs(5), || !app
            .row("acme")
            .unwrap()
            .profile_sync_pending)
        .await
    );
}

backend_tests!(
    signups_during_an_outage_survive_kill_9_and_end_with_one_customer_each,
    a_dead_instances_job_is_adopted_without_waiting_for_its_lease,
    two_instances_never_run_one_job_at_the_same_time,
    concurrent_claims_are_disjoint,
    enqueue_dedupes_and_a_request_during_a_run_runs_it_again,
    a_job_past_its_horizon_is_dead_until_redriven,
    a_profile_change_during_provisioning_reaches_stripe,
);
