//! `sync [--tenant ID | --all] [--rate REQ_PER_S]`: subscription state re-read
//! from Stripe, paced like `backfill-customers`.

use std::process::ExitCode;

use super::bulk::{check_rate, run_paced};
use super::{billing_for_command, runtime_failure, DATABASE_HINT};
use crate::billing::{Actor, SyncTenants};
use crate::cli::SyncArgs;
use crate::domain::TenantId;
use crate::settings::Settings;
use crate::stripe::Pacer;

/// Tenants re-read at once by `--all`; the pacer keeps the request rate.
const CONCURRENCY: usize = 4;

pub(super) async fn sync(args: SyncArgs, settings: Settings) -> ExitCode {
    if let Err(code) = check_rate(args.rate) {
        return code;
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

    run_paced(
        &billing,
        SyncTenants::now(),
        args.rate,
        CONCURRENCY,
        "re-run `sync --all` (it starts with them)",
    )
    .await
}
