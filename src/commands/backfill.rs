//! `backfill-customers`: a paced, resumable bulk `ensure_customer`.

use std::process::ExitCode;
use std::time::Instant;

use super::{billing_for_command, runtime_failure, tenant_progress, DATABASE_HINT};
use crate::cli::BackfillArgs;
use crate::settings::Settings;
use crate::stripe::Pacer;

pub(super) async fn backfill(args: BackfillArgs, settings: Settings) -> ExitCode {
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
    let bar = tenant_progress(pending.len());
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
