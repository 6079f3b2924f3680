//! `backfill-customers`: a paced, resumable bulk `ensure_customer`.

use std::process::ExitCode;

use super::bulk::{check_rate, dry_run, run_paced};
use super::{billing_for_command, runtime_failure};
use crate::billing::{BulkOperation, EnsureCustomers};
use crate::cli::BackfillArgs;
use crate::settings::Settings;
use crate::stripe::Pacer;

pub(super) async fn backfill(args: BackfillArgs, settings: Settings) -> ExitCode {
    if let Err(code) = check_rate(args.rate) {
        return code;
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
    if args.dry_run {
        return dry_run(
            &billing,
            EnsureCustomers.selection(),
            |tenant| format!("would ensure a customer for {tenant}"),
            |count| format!("dry run: {count} tenants without a customer; nothing changed"),
        )
        .await;
    }
    run_paced(
        &billing,
        EnsureCustomers,
        args.rate,
        usize::from(args.concurrency),
        "re-run backfill-customers",
    )
    .await
}
