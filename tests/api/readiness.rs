//! `/readyz` follows the database: 503 while PostgreSQL is down, 200 once it is
//! back, with no restart of the service.

use std::time::Duration;

use crate::helpers::{spawn_app_with, TestDatabase};
use crate::pg::PgCluster;

/// Polls until `/readyz` answers `status`, for at most `limit`.
async fn await_readiness(app: &crate::helpers::TestApp, status: u16, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if app.get("/readyz", None).await.status().as_u16() == status {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn readyz_follows_postgres_down_and_back_up() {
    // A private cluster: stopping the shared one would break other tests.
    let cluster = PgCluster::start().unwrap_or_else(|error| panic!("{error}"));
    let url = cluster.url("postgres");
    let app = spawn_app_with(
        TestDatabase { url, _dir: None },
        &[("APP__DATABASE__CONNECTION_TIMEOUT_MS", "300")],
    )
    .await;
    assert_eq!(app.get("/readyz", None).await.status(), 200);

    let token = app.token("acme", tenant_billing::domain::Role::Member);
    assert_eq!(app.get_billing("acme", &token).await.status(), 200);

    cluster.stop_server().unwrap();
    // One check answers for a second (README, Operating it): the outage
    // shows within about that.
    assert!(
        await_readiness(&app, 503, Duration::from_secs(3)).await,
        "/readyz did not notice PostgreSQL stopped"
    );
    // A tenant route that needs the database says the same, as problem+json,
    // rather than a 500. (acme's state, read a moment ago, may still be
    // answered from the instance's cache for up to its TTL: ask for another.)
    let other = app.token("globex", tenant_billing::domain::Role::Member);
    crate::helpers::assert_problem(app.get_billing("globex", &other).await, 503).await;

    cluster.start_server().unwrap();
    assert!(
        await_readiness(&app, 200, Duration::from_secs(15)).await,
        "/readyz did not recover after PostgreSQL came back"
    );
    // The read path recovers too, not only the probe.
    for (tenant, token) in [("acme", &token), ("globex", &other)] {
        let response = app.get_billing(tenant, token).await;
        let status = response.status();
        assert_eq!(status, 200, "{tenant}: {}", response.text().await.unwrap());
    }
}

/// A restart nobody noticed (no request while the database was down): the
/// pool's connections all point at the old server process, and the first
/// requests afterwards must still succeed (connections are not pinged on
/// every checkout; a lost one is replaced and the work retried once).
#[actix_web::test]
async fn the_first_requests_after_an_unnoticed_restart_succeed() {
    let cluster = PgCluster::start().unwrap_or_else(|error| panic!("{error}"));
    let url = cluster.url("postgres");
    let app = spawn_app_with(
        TestDatabase {
            url: url.clone(),
            _dir: None,
        },
        // No workers: their polling would meet the stale connections first.
        &[
            ("APP__BILLING__STATE_CACHE_TTL_MS", "0"),
            ("APP__JOBS__ENABLED", "false"),
        ],
    )
    .await;
    let token = app.token("acme", tenant_billing::domain::Role::Member);
    // Several connections in the pool, all healthy.
    let reads = (0..8).map(|_| app.get_billing("acme", &token));
    for response in futures_util::future::join_all(reads).await {
        assert_eq!(response.status(), 200);
    }

    cluster.stop_server().unwrap();
    cluster.start_server().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while tenant_billing::db::establish(&url, 1000).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "PostgreSQL did not come back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    for attempt in 0..8 {
        let response = app.get_billing("acme", &token).await;
        assert_eq!(response.status(), 200, "read {attempt} after the restart");
    }
}
