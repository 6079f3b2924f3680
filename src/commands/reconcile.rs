//! `reconcile [--fix]`: the database against Stripe's customer list.

use std::process::ExitCode;

use super::{billing_for_command, runtime_failure, DATABASE_HINT};
use crate::billing::{Finding, ReconcileReport};
use crate::cli::ReconcileArgs;
use crate::settings::Settings;

pub(super) async fn reconcile(args: ReconcileArgs, settings: Settings) -> ExitCode {
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
