//! `migrate`: apply pending migrations and list them.

use std::process::ExitCode;

use super::runtime_failure;
use crate::db;
use crate::settings::Settings;
use crate::startup;

pub(super) async fn migrate(settings: Settings) -> ExitCode {
    let pool = db::build_pool(&settings.database);
    match startup::apply_migrations(&pool).await {
        Ok(applied) if applied.is_empty() => {
            println!("no pending migrations");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            for version in applied {
                println!("applied {version}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(format!(
            "{error}; check DATABASE_URL and that the database is running"
        )),
    }
}
