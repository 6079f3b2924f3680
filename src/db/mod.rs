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

/// `INSERT … ON CONFLICT DO NOTHING` of `$values` into `$table` on either
/// backend; the number of rows inserted. Both backends have it, but it does
/// not compile on the multi-backend enum, hence the match.
macro_rules! insert_or_ignore {
    ($conn:expr, $table:expr, $values:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgresql(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict_do_nothing()
                .execute(c),
            $crate::db::DbConnection::Sqlite(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict_do_nothing()
                .execute(c),
        }
    };
}

/// Retention's batch: the ids of up to `$limit` rows matching `$filter`,
/// oldest first by `$order`, then a delete of those rows that still match
/// (a row refreshed in between stays). The number deleted.
macro_rules! delete_oldest {
    ($conn:expr, $table:expr, $id:expr => $id_type:ty, $filter:expr, $order:expr, $limit:expr) => {{
        let ids: Vec<$id_type> = $table
            .filter($filter)
            .order($order)
            .limit($limit)
            .select($id)
            .load($conn)?;
        if ids.is_empty() {
            Ok(0)
        } else {
            diesel::delete($table.filter($id.eq_any(ids)).filter($filter)).execute($conn)
        }
    }};
}

pub mod audit;
pub mod batched;
mod connection;
pub mod events;
pub mod jobs;
pub mod leases;
pub mod listen;
pub mod migrations;
mod pool;
pub mod presence;
pub mod schema;
pub mod seat_requests;
pub mod stoppable;
pub mod stripe_budget;
pub mod subscriptions;
pub mod tenants;
pub mod usage;
pub mod usage_forwarding;

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

impl DbError {
    /// The same kind of failure for another caller that waited on the same
    /// work (a batched read): "unavailable" stays unavailable (503), anything
    /// else becomes `Aborted`. The cause is logged once, by the first caller.
    pub fn for_another_waiter(&self) -> DbError {
        match self {
            DbError::Unavailable(_) | DbError::ConnectionLost(_) | DbError::Saturated => {
                DbError::Saturated
            }
            DbError::Query(_) | DbError::Aborted => DbError::Aborted,
        }
    }
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
/// Admission is gated by the pool's semaphore (see `DbPool`): the permit
/// travels with the blocking task, so it is held until the database work is
/// really over, even when the caller stopped waiting (a cancelled request).
///
/// A connection found gone (a database restart, a dropped network) is
/// discarded and the work runs once more on another: connections are not
/// pinged on every checkout (see `PoolConnection`), so the first request on a
/// stale one must not fail. Work may therefore run twice; every write here is
/// a compare-and-set or deduplicated, so a replay after a connection lost
/// mid-commit changes nothing.
pub async fn interact<T, F>(pool: &DbPool, mut work: F) -> Result<T, DbError>
where
    F: FnMut(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    // A free permit is taken without arming a timer (the common case).
    let permit = match pool.permits().clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => tokio::time::timeout(
            pool.connection_timeout(),
            pool.permits().clone().acquire_owned(),
        )
        .await
        .map_err(|_| DbError::Saturated)?
        .map_err(|_| DbError::Aborted)?,
    };
    let pool = pool.clone();
    actix_web::web::block(move || {
        let _permit = permit;
        match attempt(&pool, &mut work) {
            Err(DbError::ConnectionLost(error)) => {
                tracing::info!(error = %error, "database connection lost; retrying on another");
                attempt(&pool, &mut work)
            }
            other => other,
        }
    })
    .await
    .map_err(|_| DbError::Aborted)?
}

/// One run of `work` on a pooled connection; a connection that turned out
/// gone is marked so the pool discards it.
fn attempt<T>(
    pool: &DbPool,
    work: &mut impl FnMut(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut conn = pool.get()?;
    let result = work(&mut conn);
    let lost = match &result {
        Err(DbError::ConnectionLost(_)) => true,
        // Whatever the driver called it, a query that left the connection
        // broken means the database went away: 503, not 500.
        Err(DbError::Query(_)) => diesel::r2d2::R2D2Connection::is_broken(&mut **conn),
        _ => false,
    };
    if !lost {
        return result;
    }
    conn.mark_lost(pool.broken_epoch());
    match result {
        Err(DbError::Query(error)) => Err(DbError::ConnectionLost(error)),
        other => other,
    }
}
