//! `jobs list` / `jobs redrive`: the outbox as operators see it.

use std::process::ExitCode;

use super::{runtime_failure, DATABASE_HINT};
use crate::cli::{JobsListArgs, RedriveArgs};
use crate::db;
use crate::settings::Settings;

pub(super) async fn redrive(args: RedriveArgs, settings: Settings) -> ExitCode {
    let pool = db::build_pool(&settings.database);
    let id = args.id;
    let redriven = db::interact(&pool, move |conn| {
        Ok(db::jobs::redrive(conn, id, chrono::Utc::now().naive_utc())?)
    })
    .await;
    match redriven {
        Ok(ids) if ids.is_empty() && id.is_some() => runtime_failure(format!(
            "job {} is not dead, or its tenant already has an active job of that kind; see `tenant-billing jobs list`",
            id.unwrap_or_default()
        )),
        Ok(ids) => {
            println!("re-drove {} job(s){}", ids.len(), if ids.is_empty() { String::new() } else { format!(": {ids:?}") });
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(format!("cannot re-drive: {error}; {DATABASE_HINT}")),
    }
}

pub(super) async fn list_jobs(args: JobsListArgs, settings: Settings) -> ExitCode {
    let pool = db::build_pool(&settings.database);
    let (state, limit) = (args.state, args.limit);
    let jobs = db::interact(&pool, move |conn| {
        Ok(db::jobs::list(conn, state.as_deref(), limit)?)
    })
    .await;
    match jobs {
        Ok(jobs) => {
            println!(
                "{:>8}  {:<16}  {:<24}  {:<9}  {:>8}  {:<19}  LAST ERROR",
                "ID", "KIND", "TENANT", "STATE", "ATTEMPTS", "RUN AFTER"
            );
            for job in jobs {
                println!(
                    "{:>8}  {:<16}  {:<24}  {:<9}  {:>8}  {:<19}  {}",
                    job.id,
                    job.kind,
                    job.tenant_id,
                    job.state,
                    job.attempts,
                    job.run_after.format("%Y-%m-%d %H:%M:%S"),
                    job.last_error.unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(format!("cannot list jobs: {error}; {DATABASE_HINT}")),
    }
}
