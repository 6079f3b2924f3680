//! Subcommand implementations. Each returns the process exit status of SPEC §1:
//! 0 success, 1 runtime failure, 2 usage or configuration error.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::{MintRequest, TokenIssuer};
use crate::billing::{Billing, Finding, ReconcileReport};
use crate::cli::{
    BackfillArgs, Command, JobsCommand, JobsListArgs, ReconcileArgs, RedriveArgs, ServeArgs,
    TokenArgs,
};
use crate::db;
use crate::domain::TenantId;
use crate::settings::{Settings, DEVELOPMENT_JWT_SECRET};
use crate::startup::{self, Application, BuildOptions};
use crate::stripe::Pacer;

pub async fn dispatch(command: Option<Command>, settings: Settings) -> ExitCode {
    match command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args, settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Token(args) => token(args, settings),
        Command::BackfillCustomers(args) => backfill(args, settings).await,
        Command::Reconcile(args) => reconcile(args, settings).await,
        Command::Jobs(JobsCommand::Redrive(args)) => redrive(args, settings).await,
        Command::Jobs(JobsCommand::List(args)) => list_jobs(args, settings).await,
    }
}

fn runtime_failure(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("tenant-billing: {error}");
    ExitCode::from(1)
}

async fn serve(args: ServeArgs, settings: Settings) -> ExitCode {
    if secrecy::ExposeSecret::expose_secret(&settings.auth.jwt_secret) == DEVELOPMENT_JWT_SECRET {
        tracing::warn!(
            "JWT_SECRET is not set: using the development secret (refused in production)"
        );
    }
    let options = BuildOptions {
        migrate: !args.no_migrate,
    };
    let app = match Application::build(settings, options).await {
        Ok(app) => app,
        Err(error) => return runtime_failure(error),
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => runtime_failure(error),
    }
}

async fn migrate(settings: Settings) -> ExitCode {
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

fn token(args: TokenArgs, settings: Settings) -> ExitCode {
    if TenantId::parse(&args.tenant).is_err() {
        eprintln!("tenant-billing: --tenant must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'");
        return ExitCode::from(2);
    }
    let issuer = TokenIssuer::from_settings(&settings.auth);
    let token = issuer.mint(&MintRequest {
        tenant: &args.tenant,
        role: args.role,
        sub: &args.sub,
        email: args.email.as_deref(),
        ttl_seconds: args.ttl.unwrap_or(settings.auth.default_token_ttl_seconds),
    });
    println!("{token}");
    ExitCode::SUCCESS
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

async fn backfill(args: BackfillArgs, settings: Settings) -> ExitCode {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        eprintln!("tenant-billing: --rate must be a positive number of requests per second");
        return ExitCode::from(2);
    }
    // A bulk run can afford patience: more attempts per tenant before a
    // tenant counts as failed (the pacer already keeps the rate).
    let mut settings = settings;
    settings.stripe.max_attempts = settings.stripe.max_attempts.max(8);
    let (billing, _simulator) =
        match billing_for_command(settings, Some(Pacer::per_second(args.rate))) {
            Ok(built) => built,
            Err(error) => return runtime_failure(error),
        };
    let pending = match billing.tenants_without_customer().await {
        Ok(pending) => pending,
        Err(error) => {
            return runtime_failure(format!("cannot read the tenants: {error}; {DATABASE_HINT}"))
        }
    };
    if args.dry_run {
        for tenant in &pending {
            println!("would ensure a customer for {tenant}");
        }
        println!(
            "dry run: {} tenants without a customer; nothing changed",
            pending.len()
        );
        return ExitCode::SUCCESS;
    }
    let total = pending.len() as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} tenants  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = Instant::now();
    let failed = std::cell::Cell::new(0u64);
    let totals = billing
        .backfill(pending, usize::from(args.concurrency), |_, outcome| {
            if outcome == crate::billing::BackfillOutcome::Failed {
                failed.set(failed.get() + 1);
                bar.set_message(format!("{} failed", failed.get()));
            }
            bar.inc(1);
        })
        .await;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let done = totals.created + totals.adopted + totals.already_linked + totals.failed;
    let achieved = if elapsed > 0.0 {
        done as f64 / elapsed
    } else {
        0.0
    };
    println!(
        "{totals} in {elapsed:.2}s ({achieved:.1} tenants/s, {:.0}% of --rate {})",
        100.0 * achieved / args.rate,
        args.rate
    );
    if totals.failed > 0 {
        eprintln!(
            "tenant-billing: {} tenants still have no customer; re-run backfill-customers to retry them",
            totals.failed
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

async fn reconcile(args: ReconcileArgs, settings: Settings) -> ExitCode {
    let (billing, _simulator) = match billing_for_command(settings, None) {
        Ok(built) => built,
        Err(error) => return runtime_failure(error),
    };
    let report = match billing.reconcile().await {
        Ok(report) => report,
        Err(error) => {
            return runtime_failure(format!(
                "reconcile failed: {error}; {DATABASE_HINT}, and STRIPE_SECRET_KEY"
            ))
        }
    };
    print_report(&report);
    if args.fix {
        match billing.apply_fixes(&report).await {
            Ok(fixed) => println!(
                "fixed: linked {}, marked {} duplicates (nothing deleted)",
                fixed.linked, fixed.marked
            ),
            Err(error) => {
                return runtime_failure(format!(
                    "fixing failed part-way: {error}; re-run `reconcile --fix`"
                ))
            }
        }
    }
    ExitCode::SUCCESS
}

fn print_report(report: &ReconcileReport) {
    let rows: Vec<[String; 4]> = report
        .findings
        .iter()
        .map(|finding| match finding {
            Finding::Duplicate {
                tenant,
                customer,
                keep,
                marked,
            } => [
                "duplicate".into(),
                tenant.clone(),
                customer.clone(),
                format!(
                    "duplicate of {keep}{}",
                    if *marked { " (flagged)" } else { "" }
                ),
            ],
            Finding::Orphan {
                tenant,
                customer,
                reason,
            } => [
                "orphan".into(),
                tenant.clone(),
                customer.clone(),
                reason.clone(),
            ],
            Finding::Unlinked { tenant, customer } => [
                "unlinked".into(),
                tenant.clone(),
                customer.clone(),
                "tenant row has no customer".into(),
            ],
            Finding::Missing { tenant, customer } => [
                "missing".into(),
                tenant.clone(),
                customer.clone(),
                "linked customer not listed by Stripe".into(),
            ],
        })
        .collect();
    let header = ["KIND", "TENANT", "CUSTOMER", "NOTE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    println!(
        "duplicates {}, orphans {}, unlinked {}, missing {} ({} customers, {} tenants scanned)",
        report.count("duplicate"),
        report.count("orphan"),
        report.count("unlinked"),
        report.count("missing"),
        report.customers_scanned,
        report.tenants_scanned
    );
}

async fn redrive(args: RedriveArgs, settings: Settings) -> ExitCode {
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

async fn list_jobs(args: JobsListArgs, settings: Settings) -> ExitCode {
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
