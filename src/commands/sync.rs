//! `sync [--tenant ID | --all] [--rate REQ_PER_S]`: subscription state re-read
//! from Stripe, paced like `backfill-customers`.

use std::process::ExitCode;

use super::bulk::{check_rate, paced_billing, run_paced};
use super::{runtime_failure, DATABASE_HINT};
use crate::billing::{Actor, SyncTenants};
use crate::cli::SyncArgs;
use crate::domain::TenantId;
use crate::settings::Settings;

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
    let (billing, _simulator) = match paced_billing(settings, args.rate) {
        Ok(built) => built,
        Err(code) => return code,
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
