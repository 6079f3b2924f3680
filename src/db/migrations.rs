//! Embedded migrations, one set per backend folder. The same folders are what the
//! diesel CLI runs, so either path leaves the same `__diesel_schema_migrations`.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::DbConnection;

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// An arbitrary, fixed key: instances starting together migrate one at a time.
const MIGRATION_LOCK_KEY: i64 = 0x7465_6e61_6e74;

pub type MigrationError = Box<dyn std::error::Error + Send + Sync>;

/// Applies pending migrations and returns the versions applied (empty when none).
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let applied = match conn {
        DbConnection::Postgresql(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = pg
                .run_pending_migrations(POSTGRES)
                .map(|versions| versions.iter().map(|v| v.to_string()).collect());
            pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result?
        }
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE)?
            .iter()
            .map(|v| v.to_string())
            .collect(),
    };
    Ok(applied)
}
