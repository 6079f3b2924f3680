//! Retention: finished jobs and webhook ledger rows do not pile up forever,
//! and nothing still useful is deleted with them.

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use tenant_billing::db::DbConnection;

use crate::backend_tests;
use crate::child::eventually;
use crate::helpers::{binary, spawn_app_with, Backend, TestDatabase};

fn days_ago(days: i64) -> String {
    let at: NaiveDateTime = Utc::now().naive_utc() - chrono::Duration::days(days);
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

/// `count` jobs in `state` last updated `age` days ago, for tenants `{prefix}{i}`.
fn insert_jobs(conn: &mut DbConnection, prefix: &str, state: &str, age: i64, count: usize) {
    let (at, later) = (days_ago(age), days_ago(-1));
    let rows: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "('ensure_customer', '{prefix}{i}', '{state}', 1, false, '{later}', '{at}', '{at}', '{at}')"
            )
        })
        .collect();
    for chunk in rows.chunks(200) {
        conn.batch_execute(&format!(
            "INSERT INTO jobs (kind, tenant_id, state, attempts, run_again, run_after, queued_at, created_at, updated_at) VALUES {}",
            chunk.join(", ")
        ))
        .unwrap();
    }
}

fn insert_events(conn: &mut DbConnection, prefix: &str, age: i64, count: usize) {
    let at = days_ago(age);
    let rows: Vec<String> = (0..count)
        .map(|i| {
            format!("('evt_{prefix}{i}', 'invoice.paid', '{at}', 'applied', 1, '{{}}', '{at}')")
        })
        .collect();
    conn.batch_execute(&format!(
        "INSERT INTO stripe_events (event_id, event_type, stripe_created_at, status, attempts, payload, received_at) VALUES {}",
        rows.join(", ")
    ))
    .unwrap();
}

/// Acceptance (issue 14): the workers delete, in batches, the jobs that
/// succeeded more than 7 days ago (1,200 of them: several batches) and the
/// ledger rows older than 30 days; recent ones, dead jobs (an operator must
/// see them) and jobs still to run stay.
async fn workers_delete_expired_jobs_and_ledger_rows(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    insert_jobs(&mut db, "old", "succeeded", 8, 1_200);
    insert_jobs(&mut db, "recent", "succeeded", 6, 3);
    insert_jobs(&mut db, "dead", "dead", 40, 2);
    insert_jobs(&mut db, "later", "queued", 40, 2);
    insert_events(&mut db, "old", 31, 700);
    insert_events(&mut db, "recent", 29, 4);

    let _app = spawn_app_with(
        database.shared(),
        &[("APP__JOBS__RETENTION_INTERVAL_SECONDS", "1")],
    )
    .await;
    let done = eventually(Duration::from_secs(20), || {
        count(
            &mut db,
            "SELECT COUNT(*) AS n FROM jobs WHERE tenant_id LIKE 'old%'",
        ) == 0
            && count(
                &mut db,
                "SELECT COUNT(*) AS n FROM stripe_events WHERE event_id LIKE 'evt_old%'",
            ) == 0
    })
    .await;
    assert!(done, "expired rows are still there");
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) AS n FROM jobs WHERE tenant_id LIKE 'recent%'"
        ),
        3
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) AS n FROM jobs WHERE state = 'dead'"
        ),
        2
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'"
        ),
        2
    );
    assert_eq!(count(&mut db, "SELECT COUNT(*) AS n FROM stripe_events"), 4);
}

/// A ledger shorter than Stripe's 3-day redelivery window is refused at
/// startup: exit 2, naming the key.
#[test]
fn a_retention_below_stripes_redelivery_window_is_refused() {
    let output = std::process::Command::new(binary())
        .args(["migrate"])
        .env("APP_ENV", "test")
        .env("DATABASE_URL", "sqlite://unused-retention.db")
        .env("APP__WEBHOOKS__RETAIN_DAYS", "2")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("webhooks.retain_days"), "{stderr}");
    assert!(!std::path::Path::new("unused-retention.db").exists());
}

/// `count` usage ledger rows recorded `age` days ago for tenant `tenant`.
fn insert_usage(conn: &mut DbConnection, tenant: &str, age: i64, count: usize) {
    let at = days_ago(age);
    let rows: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "('{tenant}', 'k{i}', 'api_calls', 1, 1, '{at}', '{at}', {n}, NULL, '{at}')",
                n = i + 1
            )
        })
        .collect();
    for chunk in rows.chunks(200) {
        conn.batch_execute(&format!(
            "INSERT INTO usage_events (tenant_id, idempotency_key, meter, quantity, value, \
             occurred_at, period_start, used_after, usage_limit, recorded_at) VALUES {}",
            chunk.join(", ")
        ))
        .unwrap();
    }
}

/// Usage ledger rows go after `usage.retain_days` (here 40), in batches;
/// newer ones, and every period total, stay.
async fn workers_delete_expired_usage_ledger_rows(backend: Backend) {
    let database = TestDatabase::migrated(backend);
    let mut db = tenant_billing::db::establish(&database.url, 5000).unwrap();
    insert_usage(&mut db, "old", 41, 1_100);
    insert_usage(&mut db, "recent", 39, 5);
    let _app = spawn_app_with(
        database.shared(),
        &[
            ("APP__JOBS__RETENTION_INTERVAL_SECONDS", "1"),
            ("APP__USAGE__RETAIN_DAYS", "40"),
        ],
    )
    .await;
    let done = eventually(Duration::from_secs(20), || {
        count(
            &mut db,
            "SELECT COUNT(*) AS n FROM usage_events WHERE tenant_id = 'old'",
        ) == 0
    })
    .await;
    assert!(done, "expired usage rows are still there");
    assert_eq!(
        count(
            &mut db,
            "SELECT COUNT(*) AS n FROM usage_events WHERE tenant_id = 'recent'"
        ),
        5
    );
}

backend_tests!(
    workers_delete_expired_jobs_and_ledger_rows,
    workers_delete_expired_usage_ledger_rows
);

/// A usage ledger shorter than the 35 days an event may be dated back is
/// refused at startup: a retry of a forgotten key would count again.
#[test]
fn a_usage_retention_below_35_days_is_refused() {
    let output = std::process::Command::new(binary())
        .args(["migrate"])
        .env("APP_ENV", "test")
        .env("DATABASE_URL", "sqlite://unused-usage-retention.db")
        .env("APP__USAGE__RETAIN_DAYS", "34")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("usage.retain_days"), "{stderr}");
}
