//! What every bulk command shares on the command line: `--rate` and
//! `--concurrency` checks, the progress bar, the totals line and the exit
//! status. `backfill-customers` and `sync --all` differ only in the
//! operation they hand to `Billing::run_bulk`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use super::{billing_for_command, runtime_failure, DATABASE_HINT};
use crate::billing::{Billing, BulkOperation, BulkOutcome};
use crate::db::tenants::Selection;
use crate::domain::TenantId;
use crate::settings::Settings;
use crate::stripe::Pacer;

/// `--rate` must be a positive, finite number of requests per second.
pub(super) fn check_rate(rate: f64) -> Result<(), ExitCode> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        eprintln!("tenant-billing: --rate must be a positive number of requests per second");
        Err(ExitCode::from(2))
    }
}

/// The billing service for a bulk run, every Stripe request paced to `rate`
/// per second. A bulk run can afford patience: more attempts per tenant
/// before a tenant counts as failed (the pacer already keeps the rate).
pub(super) fn paced_billing(
    mut settings: Settings,
    rate: f64,
) -> Result<(Billing, Option<stripe_sim::SimHandle>), ExitCode> {
    settings.stripe.max_attempts = settings.stripe.max_attempts.max(8);
    billing_for_command(settings, Some(Pacer::per_second(rate))).map_err(runtime_failure)
}

/// Prints `line(tenant)` for every tenant of `selection`, streaming, then
/// `summary(count)`; calls no Stripe API.
pub(super) async fn dry_run(
    billing: &Billing,
    selection: Selection,
    line: impl Fn(&TenantId) -> String,
    summary: impl Fn(u64) -> String,
) -> ExitCode {
    let listed = billing
        .for_each_tenant(selection, |tenant| println!("{}", line(tenant)))
        .await;
    match listed {
        Ok(count) => {
            println!("{}", summary(count));
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(format!("cannot read the tenants: {error}; {DATABASE_HINT}")),
    }
}

/// Runs `op` over its tenants at `rate` with a progress bar on a terminal,
/// prints the totals and the achieved rate, and exits 1 if any tenant failed
/// (`retry_hint` tells the operator what to re-run).
pub(super) async fn run_paced<Op: BulkOperation>(
    billing: &Billing,
    op: Op,
    rate: f64,
    concurrency: usize,
    retry_hint: &str,
) -> ExitCode {
    let total = match billing.count_tenants(op.selection()).await {
        Ok(total) => total,
        Err(error) => {
            return runtime_failure(format!("cannot read the tenants: {error}; {DATABASE_HINT}"))
        }
    };
    let bar = progress_bar(total);
    let started = Instant::now();
    let failed = std::cell::Cell::new(0u64);
    let totals = billing
        .run_bulk(op, concurrency, |_, outcome| {
            if outcome.is_failure() {
                failed.set(failed.get() + 1);
                bar.set_message(format!("{} failed", failed.get()));
            }
            bar.inc(1);
        })
        .await;
    bar.finish_and_clear();
    let totals = match totals {
        Ok(totals) => totals,
        Err(error) => {
            return runtime_failure(format!(
                "cannot read the tenants: {error}; {DATABASE_HINT}, then {retry_hint}"
            ))
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let achieved = if elapsed > 0.0 {
        totals.done() as f64 / elapsed
    } else {
        0.0
    };
    println!(
        "{totals} in {elapsed:.2}s ({achieved:.1} tenants/s, {:.0}% of --rate {rate}; {} deferred while held elsewhere)",
        100.0 * achieved / rate,
        totals.deferrals,
    );
    if failed.get() > 0 {
        eprintln!(
            "tenant-billing: {} tenants failed; {retry_hint} to retry them",
            failed.get()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} tenants  {per_sec}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
