//! Persistence. The only module that imports diesel: everything above it sees
//! repositories that take the tenant as a required argument and return
//! `QueryResult`/`DbError`, never SQL.

/// Runs `$body` in a write transaction with `$c` bound to the concrete
/// connection: PostgreSQL's `transaction`, SQLite's `immediate_transaction`
/// (which takes the write lock up front, so two writers queue on
/// `busy_timeout` instead of one failing with SQLITE_BUSY on upgrade). The
/// body is compiled once per backend, so backend-only diesel features work in it.
macro_rules! write_transaction {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgresql($c) => {
                diesel::Connection::transaction($c, |$c| $body)
            }
            $crate::db::DbConnection::Sqlite($c) => $c.immediate_transaction(|$c| $body),
        }
    };
}

pub mod audit;
mod connection;
pub mod events;
pub mod jobs;
pub mod migrations;
mod pool;
pub mod schema;
pub mod subscription_lock;
pub mod subscriptions;
pub mod tenants;

pub use connection::{establish, Backend, DbConnection};
pub use pool::{build_pool, DbPool, PooledConnection};

/// Why a database call failed, as far as callers need to know.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable")]
    Unavailable(#[source] r2d2::PoolError),
    /// The connection broke mid-query (server restart, network): also "unavailable".
    #[error("database connection lost")]
    ConnectionLost(#[source] diesel::result::Error),
    #[error("database query failed")]
    Query(#[source] diesel::result::Error),
    /// Every connection stayed busy for the whole connection timeout.
    #[error("database saturated")]
    Saturated,
    /// The blocking task panicked or was cancelled.
    #[error("database task aborted")]
    Aborted,
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => DbError::ConnectionLost(error),
            other => DbError::Query(other),
        }
    }
}

impl From<r2d2::PoolError> for DbError {
    fn from(error: r2d2::PoolError) -> Self {
        DbError::Unavailable(error)
    }
}

/// Re-export so that callers name the pool error without importing diesel.
pub use diesel::r2d2;

/// Checks that the connection answers a trivial query.
pub fn ping(conn: &mut DbConnection) -> Result<(), DbError> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT 1").execute(conn)?;
    Ok(())
}

/// Runs blocking diesel work on the blocking thread pool, never on an actix
/// worker, with a pooled connection that is returned before this resolves.
/// Admission is gated by the pool's semaphore (see `DbPool`).
pub async fn interact<T, F>(pool: &DbPool, work: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    // A free permit is taken without arming a timer (the common case).
    let _permit = match pool.permits().try_acquire() {
        Ok(permit) => permit,
        Err(_) => tokio::time::timeout(pool.connection_timeout(), pool.permits().acquire())
            .await
            .map_err(|_| DbError::Saturated)?
            .map_err(|_| DbError::Aborted)?,
    };
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        match work(&mut conn) {
            // Whatever the driver called it, a query that left the
            // connection broken means the database went away: 503, not 500.
            Err(DbError::Query(error)) if diesel::r2d2::R2D2Connection::is_broken(&mut *conn) => {
                Err(DbError::ConnectionLost(error))
            }
            other => other,
        }
    })
    .await
    .map_err(|_| DbError::Aborted)?
}
