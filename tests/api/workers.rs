//! Diesel never runs on an actix worker: a request stuck in the database must
//! not stall the other requests its worker serves.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use tenant_billing::domain::Role;

use crate::helpers::{spawn_app_with, test_settings, Backend, TestDatabase};

/// Sessions of the current database waiting for a lock, seen from `conn`.
fn waiting_on_a_lock(conn: &mut tenant_billing::db::DbConnection) -> i64 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM pg_stat_activity \
          WHERE datname = current_database() AND wait_event_type = 'Lock')",
    ))
    .get_result(conn)
    .unwrap()
}

/// PostgreSQL shows that the request is really waiting (`pg_stat_activity`);
/// SQLite has no such view, and the guard test below covers both backends.
#[actix_web::test]
async fn a_request_waiting_on_a_lock_does_not_stall_its_worker() {
    let app = spawn_app_with(
        TestDatabase::migrated(Backend::Postgres),
        &[
            ("APP__SERVER__WORKERS", "1"),
            ("APP__DATABASE__CONNECTION_TIMEOUT_MS", "30000"),
        ],
    )
    .await;
    let mut locker = app.db();
    locker
        .batch_execute("BEGIN; LOCK TABLE tenant_config IN ACCESS EXCLUSIVE MODE;")
        .unwrap();

    let token = app.token("acme", Role::Member);
    let stuck = actix_web::rt::spawn(
        app.client
            .get(app.url("/v1/tenants/acme/billing"))
            .bearer_auth(token)
            .send(),
    );
    let mut probe = app.db();
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting_on_a_lock(&mut probe) == 0 {
        assert!(
            Instant::now() < deadline,
            "the read never reached the database"
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }

    // The only worker still answers while that read waits.
    let health = tokio::time::timeout(Duration::from_secs(10), app.get("/healthz", None))
        .await
        .expect("/healthz stalled behind a request waiting on the database");
    assert_eq!(health.status(), 200);
    assert!(!stuck.is_finished());

    locker.batch_execute("COMMIT;").unwrap();
    let response = stuck.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
}

/// The debug-build guard every API test runs under: a connection taken on an
/// actix worker (rather than through `db::interact`) panics.
#[cfg(debug_assertions)]
#[actix_web::test]
#[should_panic(expected = "actix worker thread")]
async fn taking_a_connection_on_an_actix_worker_panics() {
    let database = TestDatabase::migrated(Backend::Sqlite);
    let settings = test_settings(&database.url, &[]);
    let pool = tenant_billing::db::build_pool(&settings.database);
    let _ = pool.get();
}
