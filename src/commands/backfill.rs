//! `backfill-customers`: a paced, resumable bulk `ensure_customer`.

use std::process::ExitCode;

use super::bulk::{check_rate, dry_run, paced_billing, run_paced};
use crate::billing::{BulkOperation, EnsureCustomers};
use crate::cli::BackfillArgs;
use crate::settings::Settings;

pub(super) async fn backfill(args: BackfillArgs, settings: Settings) -> ExitCode {
    if let Err(code) = check_rate(args.rate) {
        return code;
    }
    let (billing, _simulator) = match paced_billing(settings, args.rate) {
        Ok(built) => built,
        Err(code) => return code,
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
