//! Command-line interface (README, Commands). No subcommand means `serve`.

use clap::{Args, Parser, Subcommand};

use crate::domain::Role;

#[derive(Debug, Parser)]
#[command(
    name = "tenant-billing",
    version,
    about = "Multi-tenant billing: exactly one Stripe customer per tenant"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (applies pending migrations first).
    Serve(ServeArgs),
    /// Apply pending migrations to DATABASE_URL and exit.
    Migrate,
    /// Print an HS256 JWT signed with the configured secret (development and tests).
    Token(TokenArgs),
    /// Ensure a Stripe customer for every tenant that lacks one (resumable, safe to re-run).
    BackfillCustomers(BackfillArgs),
    /// List Stripe customers whose metadata.tenant_id disagrees with the database
    /// (--usage: the usage ledger against Stripe's meters).
    Reconcile(ReconcileArgs),
    /// Inspect and re-drive the outbox jobs (customer provisioning, profile syncs).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Re-read subscription state from Stripe (repairs missed webhooks; safe to re-run).
    Sync(SyncArgs),
}

/// `sync`: one tenant, or every linked tenant paced to `--rate`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The tenant to re-read.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub tenant: Option<String>,
    /// Every tenant linked to a Stripe customer, least recently synced first
    /// (a run cut short and started again resumes where it stopped).
    #[arg(long)]
    pub all: bool,
    /// Stripe requests per second, never exceeded even in a burst.
    #[arg(long, default_value_t = 20.0, value_name = "REQ_PER_S")]
    pub rate: f64,
}

/// `backfill-customers`: paced so a bulk run never trips Stripe's rate limit.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Stripe requests per second, never exceeded even in a burst.
    #[arg(long, default_value_t = 20.0, value_name = "REQ_PER_S")]
    pub rate: f64,
    /// Tenants handled at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Only list the tenants that would get a customer; call no Stripe API.
    #[arg(long)]
    pub dry_run: bool,
}

/// `reconcile`: a read-only report unless `--fix`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Customers: link unlinked tenants and flag duplicates (metadata
    /// tb_duplicate_of); never deletes. With --usage: send each difference as
    /// one correction, never twice.
    #[arg(long)]
    pub fix: bool,
    /// Compare the usage ledger's per-period totals with Stripe's meter event
    /// summaries, per tenant and meter, instead of the customers.
    #[arg(long)]
    pub usage: bool,
}

/// `jobs …`: the outbox as operators see it.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Queue dead jobs again with a fresh retry horizon.
    Redrive(RedriveArgs),
    /// Show recent jobs, newest first.
    List(JobsListArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RedriveArgs {
    /// The dead job to re-drive.
    #[arg(long)]
    pub id: Option<i64>,
    /// Re-drive every dead job.
    #[arg(long)]
    pub all_dead: bool,
}

#[derive(Debug, Args)]
pub struct JobsListArgs {
    /// Only jobs in this state.
    #[arg(long, value_parser = ["queued", "running", "succeeded", "dead"])]
    pub state: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Do not apply pending migrations before serving.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant the token is scoped to.
    #[arg(long)]
    pub tenant: String,
    #[arg(long, value_enum, default_value_t = Role::Member)]
    pub role: Role,
    /// The user id (`sub` claim).
    #[arg(long, default_value = "dev-user")]
    pub sub: String,
    #[arg(long)]
    pub email: Option<String>,
    /// Lifetime in seconds (default: auth.default_token_ttl_seconds).
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Print a link to the billing settings page on BIND_ADDR carrying the
    /// token (`http://127.0.0.1:8080/settings/billing#token=…`) instead.
    #[arg(long)]
    pub link: bool,
}
