//! The r2d2 pool. Our own manager (rather than diesel's `ConnectionManager`)
//! picks the backend from the URL scheme and applies SQLite pragmas per connection.

use std::sync::Arc;

use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::connection::{establish, DbConnection};
use crate::settings::DatabaseSettings;

pub type PooledConnection = r2d2::PooledConnection<DbConnectionManager>;

/// The r2d2 pool plus a fair, async admission gate sized to it.
///
/// Without the gate, every request under load parks a blocking-pool thread
/// on r2d2's (unfair) condition variable: on a small machine the context
/// switches cost more than the queries, and unlucky waiters starve (seconds
/// of tail latency). With it, at most `pool_size` blocking tasks exist at a
/// time and the rest wait their turn, in order, without a thread.
#[derive(Clone)]
pub struct DbPool {
    inner: r2d2::Pool<DbConnectionManager>,
    permits: Arc<Semaphore>,
}

impl DbPool {
    pub(crate) fn permits(&self) -> &Semaphore {
        &self.permits
    }

    /// Connections `(idle, in_use)` now (the `db_pool_connections` gauge).
    pub fn usage(&self) -> (u32, u32) {
        let state = self.inner.state();
        (
            state.idle_connections,
            state.connections - state.idle_connections,
        )
    }

    pub fn connection_timeout(&self) -> std::time::Duration {
        self.inner.connection_timeout()
    }

    /// Takes a connection, blocking. Only for blocking threads: everything
    /// async goes through `db::interact`. Debug builds (the test suite) panic
    /// when this runs on an actix worker, where a slow query or a wait for a
    /// connection would stall every request that worker serves.
    pub fn get(&self) -> Result<PooledConnection, r2d2::PoolError> {
        debug_assert!(
            actix_web::rt::System::try_current().is_none(),
            "a database connection was taken on an actix worker thread; use db::interact"
        );
        self.inner.get()
    }
}

pub struct DbConnectionManager {
    url: SecretString,
    sqlite_busy_timeout_ms: u64,
}

impl std::fmt::Debug for DbConnectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbConnectionManager { url: [REDACTED] }")
    }
}

impl ManageConnection for DbConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        establish(self.url.expose_secret(), self.sqlite_busy_timeout_ms)
            .map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        match conn {
            // A file connection cannot go stale; skip the per-checkout query.
            DbConnection::Sqlite(_) => Ok(()),
            DbConnection::Postgresql(_) => conn.ping().map_err(r2d2::Error::QueryError),
        }
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Builds the pool without connecting: the service must start (and answer
/// `/readyz` with 503) even while the database is down.
pub fn build_pool(settings: &DatabaseSettings) -> DbPool {
    let manager = DbConnectionManager {
        url: settings.url.clone(),
        sqlite_busy_timeout_ms: settings.sqlite_busy_timeout_ms,
    };
    let inner = r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .min_idle(Some(1))
        .connection_timeout(settings.connection_timeout())
        // A `SELECT 1` per checkout costs a round trip on PostgreSQL (~13% of
        // the read path's throughput, measured), but without it the first
        // request on each stale connection after a database restart fails.
        .test_on_check_out(true)
        .error_handler(Box::new(LogPoolErrors))
        .build_unchecked(manager);
    DbPool {
        inner,
        permits: Arc::new(Semaphore::new(settings.pool_size as usize)),
    }
}

/// r2d2 logs connection errors through `log` by default; route them to tracing
/// without the URL (diesel's messages do not include it).
#[derive(Debug)]
struct LogPoolErrors;

impl r2d2::HandleError<r2d2::Error> for LogPoolErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(error = %error, "database connection failed");
    }
}
