//! Subcommand implementations. Each returns the process exit status of README, Commands:
//! 0 success, 1 runtime failure, 2 usage or configuration error.

mod backfill;
mod bulk;
mod jobs;
mod migrate;
mod reconcile;
mod serve;
mod sync;
mod token;

use std::process::ExitCode;
use std::sync::Arc;

use crate::billing::Billing;
use crate::cli::{Command, JobsCommand, ServeArgs};
use crate::db;
use crate::settings::Settings;
use crate::startup;
use crate::stripe::Pacer;

pub async fn dispatch(command: Option<Command>, settings: Settings) -> ExitCode {
    match command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve::serve(args, settings).await,
        Command::Migrate => migrate::migrate(settings).await,
        Command::Token(args) => token::token(args, settings),
        Command::BackfillCustomers(args) => backfill::backfill(args, settings).await,
        Command::Reconcile(args) => reconcile::reconcile(args, settings).await,
        Command::Jobs(JobsCommand::Redrive(args)) => jobs::redrive(args, settings).await,
        Command::Jobs(JobsCommand::List(args)) => jobs::list_jobs(args, settings).await,
        Command::Sync(args) => sync::sync(args, settings).await,
    }
}

/// The settings page with a token in its fragment: the fragment is never sent
/// to a server nor put in a Referer, and the page moves it to sessionStorage.
fn settings_page_link(origin: &str, token: &str) -> String {
    format!(
        "{origin}{}#token={token}",
        crate::settings::SETTINGS_PAGE_PATH
    )
}

fn runtime_failure(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("tenant-billing: {error}");
    ExitCode::from(1)
}

/// The billing service for an operator command; `pacer` paces every Stripe request.
fn billing_for_command(
    mut settings: Settings,
    pacer: Option<Pacer>,
) -> anyhow::Result<(Billing, Option<stripe_sim::SimHandle>)> {
    let pool = db::build_pool(&settings.database);
    let (mut gateway, simulator) = startup::connect_stripe(&mut settings)?;
    if let Some(pacer) = pacer {
        gateway = gateway.with_pacer(Arc::new(pacer));
    }
    Ok((Billing::new(pool, gateway, Arc::new(settings)), simulator))
}

const DATABASE_HINT: &str = "check DATABASE_URL and run `tenant-billing migrate`";
