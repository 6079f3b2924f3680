//! `sync [--tenant ID | --all] [--rate REQ_PER_S]`: subscription state re-read
//! from Stripe, paced like `backfill-customers`.

use std::process::ExitCode;
use std::time::Instant;

use super::{billing_for_command, runtime_failure, tenant_progress, DATABASE_HINT};
use crate::billing::{Actor, SyncOutcome};
use crate::cli::SyncArgs;
use crate::domain::TenantId;
use crate::settings::Settings;
use crate::stripe::Pacer;

/// Tenants re-read at once by `--all`; the pacer keeps the request rate.
const CONCURRENCY: usize = 4;

pub(super) async fn sync(args: SyncArgs, settings: Settings) -> ExitCode {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        eprintln!("tenant-billing: --rate must be a positive number of requests per second");
        return ExitCode::from(2);
    }
    let tenant = match args.tenant.as_deref().map(TenantId::parse).transpose() {
        Ok(tenant) => tenant,
        Err(error) => {
            eprintln!("tenant-billing: --tenant: {error}");
            return ExitCode::from(2);
        }
    };
    let mut settings = settings;
    settings.stripe.max_attempts = settings.stripe.max_attempts.max(8);
    let (billing, _simulator) =
        match billing_for_command(settings, Some(Pacer::per_second(args.rate))) {
            Ok(built) => built,
            Err(error) => return runtime_failure(error),
        };

    if let Some(tenant) = tenant {
        return match billing.sync(&tenant, &Actor::SYSTEM).await {
            Ok(state) => {
                println!(
                    "{tenant}: plan {}, status {}, pending {}",
                    state.plan,
                    state.subscription_status.as_deref().unwrap_or("none"),
                    state.pending_plan.as_deref().unwrap_or("none"),
                );
                ExitCode::SUCCESS
            }
            Err(error) => runtime_failure(format!(
                "sync of {tenant} failed: {error}; {DATABASE_HINT}, and STRIPE_SECRET_KEY"
            )),
        };
    }

    let pending = match billing.tenants_to_sync().await {
        Ok(pending) => pending,
        Err(error) => {
            return runtime_failure(format!("cannot read the tenants: {error}; {DATABASE_HINT}"))
        }
    };
    let bar = tenant_progress(pending.len());
    let started = Instant::now();
    let failed = std::cell::Cell::new(0u64);
    let totals = billing
        .sync_many(pending, CONCURRENCY, |_, outcome| {
            if outcome == SyncOutcome::Failed {
                failed.set(failed.get() + 1);
                bar.set_message(format!("{} failed", failed.get()));
            }
            bar.inc(1);
        })
        .await;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = if elapsed > 0.0 {
        totals.total() as f64 / elapsed
    } else {
        0.0
    };
    println!(
        "{totals} in {elapsed:.2}s ({per_second:.1} tenants/s at --rate {} requests/s)",
        args.rate
    );
    if totals.failed > 0 {
        eprintln!(
            "tenant-billing: {} tenants could not be synced; re-run `sync --all` (it starts with them)",
            totals.failed
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
