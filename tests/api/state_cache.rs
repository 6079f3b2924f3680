//! `GET …/billing` answers from a per-instance cache: an instance's own writes
//! show at once, another instance's within the TTL, and Checkout's
//! double-billing guard never trusts the cache.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::helpers::{spawn_app_with, spawn_instance, start_sim, Backend, TestApp, TestDatabase};

/// Long enough that a test would time out long before an entry expired.
const TEN_MINUTES_MS: &str = "600000";

/// Clicks Upgrade on `app`, pays at the simulator and waits for its webhooks.
async fn upgrade_and_pay(app: &TestApp, tenant: &str) -> String {
    let subscription = app.upgrade_and_pay(tenant).await;
    app.await_webhooks().await;
    subscription
}

async fn own_writes_show_at_once_even_with_a_long_ttl(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__BILLING__STATE_CACHE_TTL_MS", TEN_MINUTES_MS)],
    )
    .await;
    let admin = app.token("acme", Role::Admin);
    assert_eq!(
        app.billing_state("acme").await["stripe_customer_id"],
        Value::Null
    );

    // Customer creation (claim, record).
    let created: Value = app
        .post("acme", "customer", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    let state = app.billing_state("acme").await;
    assert_eq!(state["stripe_customer_id"], created["stripe_customer_id"]);

    // The billing profile.
    let response = app
        .put_profile(
            "acme",
            &admin,
            json!({"billing_email": "ap@acme.example", "billing_name": "Acme AP"}),
        )
        .await;
    assert!(response.status().is_success());
    let state = app.billing_state("acme").await;
    assert_eq!(state["billing_email"], "ap@acme.example");
    assert_eq!(state["billing_name"], "Acme AP");

    // Webhooks: the upgrade, then the cancellation.
    let subscription = upgrade_and_pay(&app, "acme").await;
    assert_eq!(app.billing_state("acme").await["plan"], "pro");
    app.sim
        .set_subscription_status(&subscription, "canceled")
        .unwrap();
    app.await_webhooks().await;
    assert_eq!(app.billing_state("acme").await["plan"], "free");
}

async fn another_instances_webhook_shows_within_the_ttl(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let ttl = [("APP__BILLING__STATE_CACHE_TTL_MS", "300")];
    let reader = spawn_instance(database.shared(), sim.clone(), &ttl).await;
    // Spawned last, so the simulator delivers webhooks to this one.
    let receiver = spawn_instance(database, sim, &ttl).await;
    assert_eq!(reader.billing_state("acme").await["plan"], "free");

    upgrade_and_pay(&receiver, "acme").await;
    assert_eq!(receiver.billing_state("acme").await["plan"], "pro");
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.billing_state("acme").await["plan"] != "pro" {
        assert!(
            Instant::now() < deadline,
            "the other instance still answers the old plan"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn checkout_on_an_instance_with_a_stale_cache_is_still_refused(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let sim = start_sim();
    let ttl = [("APP__BILLING__STATE_CACHE_TTL_MS", TEN_MINUTES_MS)];
    let stale = spawn_instance(database.shared(), sim.clone(), &ttl).await;
    let receiver = spawn_instance(database, sim, &ttl).await;
    assert_eq!(stale.billing_state("acme").await["plan"], "free");

    upgrade_and_pay(&receiver, "acme").await;
    // The display read on the other instance may lag (on SQLite it does, by
    // design; PostgreSQL's notifications usually beat this line)…
    if backend == Backend::Sqlite {
        assert_eq!(stale.billing_state("acme").await["plan"], "free");
    }
    // …but a second Checkout there would bill the tenant twice: refused.
    let admin = stale.token("acme", Role::Admin);
    let response = stale
        .post("acme", "checkout", &admin, Some(json!({"plan": "pro"})))
        .await;
    crate::helpers::assert_problem(response, 409).await;
}

/// Concurrent misses are read in batches (one query for many tenants): each
/// request still gets its own tenant's state and nobody else's, and a tenant
/// without a row is on the free plan.
async fn concurrent_misses_each_get_their_own_tenant(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    let tenants = crate::child::seed_tenants(&mut db, "batch", 40, false);
    let app = spawn_app_with(database, &[("APP__BILLING__STATE_CACHE_TTL_MS", "0")]).await;
    let reads = (0..400).map(|i| {
        let tenant = if i % 10 == 9 {
            format!("norow{i}")
        } else {
            tenants[(i * 7) % tenants.len()].clone()
        };
        let token = app.token(&tenant, Role::Member);
        let app = &app;
        async move {
            let body: Value = app.get_billing(&tenant, &token).await.json().await.unwrap();
            (tenant, body)
        }
    });
    for (tenant, body) in futures_util::future::join_all(reads).await {
        assert_eq!(body["tenant_id"], tenant.as_str(), "{body}");
        if tenant.starts_with("norow") {
            assert_eq!(body["plan"], "free");
            assert_eq!(body["billing_email"], Value::Null);
        } else {
            assert_eq!(body["billing_email"], format!("billing@{tenant}.test"));
        }
    }
}

backend_tests!(
    concurrent_misses_each_get_their_own_tenant,
    own_writes_show_at_once_even_with_a_long_ttl,
    another_instances_webhook_shows_within_the_ttl,
    checkout_on_an_instance_with_a_stale_cache_is_still_refused,
);

/// Acceptance (issue 14), PostgreSQL: another instance's webhook shows on
/// this one at once, not after the TTL (ten minutes here). The target is
/// 100 ms (measured by `just bench`); the bound asserted here is loose so it
/// cannot flake on a loaded machine.
#[actix_web::test]
async fn on_postgres_another_instances_webhook_shows_without_waiting_for_the_ttl() {
    let database = TestDatabase::migrated(Backend::Postgres);
    let sim = start_sim();
    let ttl = [("APP__BILLING__STATE_CACHE_TTL_MS", TEN_MINUTES_MS)];
    let reader = spawn_instance(database.shared(), sim.clone(), &ttl).await;
    let receiver = spawn_instance(database, sim, &ttl).await;
    assert_eq!(reader.billing_state("acme").await["plan"], "free");

    upgrade_and_pay(&receiver, "acme").await;
    let applied = Instant::now();
    while reader.billing_state("acme").await["plan"] != "pro" {
        assert!(
            applied.elapsed() < Duration::from_secs(5),
            "the other instance still answers the old plan"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "cross-instance lag after the webhook was applied: {:?} (upper bound)",
        applied.elapsed()
    );
}

/// The listener's connection dies (a database failover, a network blip)
/// while a change commits unnoticed: after it reconnects, the instance drops
/// its whole cache, because notifications sent meanwhile are lost.
#[actix_web::test]
async fn on_postgres_a_listener_reconnect_drops_the_whole_cache() {
    use diesel::connection::SimpleConnection;
    use diesel::RunQueryDsl;

    /// This database's listener connections that are done connecting.
    fn listeners(db: &mut tenant_billing::db::DbConnection) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE application_name = '{}' \
             AND datname = current_database() AND state = 'idle' AND query LIKE '%LISTEN%'",
            tenant_billing::db::listen::LISTENER_NAME
        ))
        .get_result::<Count>(db)
        .unwrap()
        .n
    }

    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Postgres),
        &[
            ("APP__BILLING__STATE_CACHE_TTL_MS", TEN_MINUTES_MS),
            // No background provisioning writing the row meanwhile.
            ("APP__JOBS__ENABLED", "false"),
        ],
    )
    .await;
    let mut db = app.db();
    // The listener connects in the background; start once it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners(&mut db) != 1 {
        assert!(Instant::now() < deadline, "the listener never connected");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Rows written with the trigger skipped: changes whose notifications
    // never arrive (and none is pending to race with the reads below).
    let silently = |db: &mut tenant_billing::db::DbConnection, sql: &str| {
        db.batch_execute(&format!(
            "SET session_replication_role = replica; {sql}; SET session_replication_role = origin;"
        ))
        .unwrap()
    };
    silently(
        &mut db,
        "INSERT INTO tenant_config (tenant_id, billing_email) VALUES ('acme', 'old@acme.example')",
    );
    assert_eq!(
        app.billing_state("acme").await["billing_email"],
        "old@acme.example"
    );
    silently(
        &mut db,
        "UPDATE tenant_config SET billing_email = 'new@acme.example' WHERE tenant_id = 'acme'",
    );
    assert_eq!(
        app.billing_state("acme").await["billing_email"],
        "old@acme.example",
        "the cache should not have heard of a change that sent no notification"
    );

    #[derive(diesel::QueryableByName)]
    struct Terminated {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let terminated: Terminated = diesel::sql_query(format!(
        "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database()",
        tenant_billing::db::listen::LISTENER_NAME
    ))
    .get_result(&mut db)
    .unwrap();
    assert_eq!(terminated.n, 1, "the instance's listener connection");

    let deadline = Instant::now() + Duration::from_secs(10);
    while app.billing_state("acme").await["billing_email"] != "new@acme.example" {
        assert!(
            Instant::now() < deadline,
            "the cache was not dropped after the listener reconnected"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 18, PostgreSQL: the NOTIFY that drops other instances' cached state
/// fires only when what a reader sees changes. Taking and releasing the
/// subscription write lock, drawing ordering tickets, storing Stripe's
/// unchanged state and stamping a sync notify nobody.
#[actix_web::test]
async fn on_postgres_lock_traffic_and_unchanged_state_send_no_notification() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Postgres),
        &[("APP__JOBS__ENABLED", "false")],
    )
    .await;
    app.subscribed("acme", "team", Some(3)).await;
    let mut listener = diesel::PgConnection::establish(&app.database.url).unwrap();
    listener
        .batch_execute(&format!(
            "LISTEN {}",
            tenant_billing::db::listen::STATE_CHANNEL
        ))
        .unwrap();

    let admin = app.token("acme", Role::Admin);
    for _ in 0..5 {
        // The current plan: the lock is taken, Stripe read, nothing changes.
        app.change_plan("acme", "team").await;
        // The current seat count: the lock again, and a seat request recorded.
        let response = app
            .client
            .put(app.url("/v1/tenants/acme/billing/seats"))
            .bearer_auth(&admin)
            .json(&json!({ "quantity": 3 }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // A ticket drawn, Stripe's unchanged state stored, the sync stamped.
        app.sync("acme").await;
    }
    // The marker: another tenant's row appears, which every reader sees.
    app.db()
        .batch_execute("INSERT INTO tenant_config (tenant_id) VALUES ('marker')")
        .unwrap();

    // Notifications arrive in commit order: once the marker's is here, so
    // is every one sent before it.
    let mut heard: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while heard.last().map(String::as_str) != Some("marker") {
        assert!(
            Instant::now() < deadline,
            "the marker's notification never came"
        );
        listener.batch_execute("SELECT 1").unwrap();
        for notification in listener.notifications_iter() {
            heard.push(notification.unwrap().payload);
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        heard,
        vec!["marker".to_owned()],
        "acme's lock traffic and unchanged state notified"
    );
}
