//! The r2d2 pool. Our own manager (rather than diesel's `ConnectionManager`)
//! picks the backend from the URL scheme and applies SQLite pragmas per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::connection::{establish, DbConnection};
use crate::settings::DatabaseSettings;

pub type PooledConnection = r2d2::PooledConnection<DbConnectionManager>;

/// A pooled connection plus what the pool needs to know about its health.
///
/// Checking every connection on checkout (`SELECT 1`) costs a round trip per
/// request on PostgreSQL. Instead a connection is checked only when it may be
/// stale: when a connection has been seen broken (the database restarted, or
/// the network dropped), every connection older than that sighting is pinged
/// once on its next checkout, and the broken one itself is discarded.
pub struct PoolConnection {
    conn: DbConnection,
    /// The pool's `broken_epoch` when this connection last proved healthy.
    checked_epoch: u64,
    /// Set when a query on it failed because the connection is gone.
    lost: bool,
}

impl PoolConnection {
    /// Marks this connection as gone: the pool drops it instead of reusing it,
    /// and pings the other connections before handing them out again.
    pub(crate) fn mark_lost(&mut self, manager_epoch: &AtomicU64) {
        self.lost = true;
        manager_epoch.fetch_add(1, Ordering::SeqCst);
    }
}

impl std::ops::Deref for PoolConnection {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PoolConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

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
    size: u32,
    broken_epoch: Arc<AtomicU64>,
}

impl DbPool {
    pub(crate) fn permits(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    /// Bumped whenever a connection is found broken (see `PoolConnection`).
    pub(crate) fn broken_epoch(&self) -> &AtomicU64 {
        &self.broken_epoch
    }

    /// Waits until no database work of this process is running (every
    /// admission permit is free), for at most `limit`; false on timeout. A
    /// stopping instance calls it before giving back its leases, so no task
    /// of its own can still write after them.
    pub async fn quiesce(&self, limit: std::time::Duration) -> bool {
        let all = tokio::time::timeout(limit, self.permits.acquire_many(self.size)).await;
        matches!(all, Ok(Ok(_)))
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
    broken_epoch: Arc<AtomicU64>,
}

impl std::fmt::Debug for DbConnectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbConnectionManager { url: [REDACTED] }")
    }
}

impl ManageConnection for DbConnectionManager {
    type Connection = PoolConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PoolConnection, r2d2::Error> {
        let conn = establish(self.url.expose_secret(), self.sqlite_busy_timeout_ms)
            .map_err(r2d2::Error::ConnectionError)?;
        Ok(PoolConnection {
            conn,
            checked_epoch: self.broken_epoch.load(Ordering::SeqCst),
            lost: false,
        })
    }

    /// Free unless a connection was seen broken since this one last proved
    /// healthy: then one `SELECT 1` decides whether it is reused.
    fn is_valid(&self, pooled: &mut PoolConnection) -> Result<(), r2d2::Error> {
        let epoch = self.broken_epoch.load(Ordering::SeqCst);
        if pooled.checked_epoch == epoch {
            return Ok(());
        }
        match &mut pooled.conn {
            // A file connection cannot go stale.
            DbConnection::Sqlite(_) => {}
            conn @ DbConnection::Postgresql(_) => conn.ping().map_err(r2d2::Error::QueryError)?,
        }
        pooled.checked_epoch = epoch;
        Ok(())
    }

    fn has_broken(&self, pooled: &mut PoolConnection) -> bool {
        std::thread::panicking() || pooled.lost || pooled.conn.is_broken()
    }
}

/// Builds the pool without connecting: the service must start (and answer
/// `/readyz` with 503) even while the database is down.
pub fn build_pool(settings: &DatabaseSettings) -> DbPool {
    let manager = DbConnectionManager {
        url: settings.url.clone(),
        sqlite_busy_timeout_ms: settings.sqlite_busy_timeout_ms,
        broken_epoch: Arc::default(),
    };
    let broken_epoch = manager.broken_epoch.clone();
    let inner = r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .min_idle(Some(1))
        .connection_timeout(settings.connection_timeout())
        // `is_valid` is free except after a broken connection was seen (see
        // `PoolConnection`); `db::interact` retries work once on a lost one.
        .test_on_check_out(true)
        .error_handler(Box::new(LogPoolErrors))
        .build_unchecked(manager);
    DbPool {
        inner,
        permits: Arc::new(Semaphore::new(settings.pool_size as usize)),
        size: settings.pool_size,
        broken_epoch,
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
