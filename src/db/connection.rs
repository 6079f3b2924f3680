//! One connection type for both backends, chosen at runtime from the URL scheme.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

/// A connection to either backend. SQLite is last, as diesel's derive prefers.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Decided by configuration (the `DATABASE_URL` scheme); re-exported here for
/// the code that opens and matches connections.
pub use crate::settings::Backend;

/// The file path of a `sqlite://PATH` (or `sqlite:PATH`) URL.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// Opens a connection for `url`, tuning SQLite for concurrent service use:
/// WAL lets readers proceed during a write, `busy_timeout` makes writers queue
/// instead of failing with SQLITE_BUSY, and `foreign_keys` is off by default.
/// `mmap_size` lets reads of a large table come straight from the page cache
/// the connections share, instead of a `pread` into each connection's own
/// small cache (a million-row `tenant_config`'s tail latency).
pub fn establish(url: &str, sqlite_busy_timeout_ms: u64) -> Result<DbConnection, ConnectionError> {
    let backend = Backend::from_url(url).ok_or_else(|| {
        ConnectionError::InvalidConnectionUrl(
            "DATABASE_URL must start with sqlite:// or postgres://".into(),
        )
    })?;
    match backend {
        Backend::Postgres => Ok(DbConnection::Postgresql(PgConnection::establish(url)?)),
        Backend::Sqlite => {
            let path = sqlite_path(url);
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        ConnectionError::BadConnection(format!(
                            "cannot create the directory for the SQLite file: {e}"
                        ))
                    })?;
                }
            }
            let mut conn = SqliteConnection::establish(path)?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {sqlite_busy_timeout_ms};
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA mmap_size = 268435456;"
            ))
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            Ok(DbConnection::Sqlite(conn))
        }
    }
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgresql(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}
