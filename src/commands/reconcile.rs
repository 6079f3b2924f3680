//! `reconcile [--fix]`: the database against Stripe's customer list.

use std::process::ExitCode;

use super::{billing_for_command, runtime_failure, DATABASE_HINT};
use crate::billing::{Finding, ReconcileReport, UsageReconcileReport, UsageStatus};
use crate::cli::ReconcileArgs;
use crate::settings::Settings;

pub(super) async fn reconcile(args: ReconcileArgs, settings: Settings) -> ExitCode {
    let (billing, _simulator) = match billing_for_command(settings, None) {
        Ok(built) => built,
        Err(error) => return runtime_failure(error),
    };
    if args.usage {
        return match billing.reconcile_usage(args.fix).await {
            Ok(report) => {
                print_usage_report(&report, args.fix);
                ExitCode::SUCCESS
            }
            Err(error) => runtime_failure(format!(
                "reconcile --usage failed: {error}; {DATABASE_HINT}, and STRIPE_SECRET_KEY; re-running is safe"
            )),
        };
    }
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

/// One line per period that does not match (all of them with `--fix`'s
/// notes), then the totals.
fn print_usage_report(report: &UsageReconcileReport, fix: bool) {
    let rows: Vec<[String; 8]> = report
        .periods
        .iter()
        .filter(|p| p.status != UsageStatus::Matches || p.fix.is_some())
        .map(|p| {
            let (status, difference) = match &p.status {
                UsageStatus::Matches => ("matches".to_owned(), String::new()),
                UsageStatus::Differs { difference } => {
                    let kind = if *difference > 0 { "missing" } else { "excess" };
                    (kind.to_owned(), format!("{difference:+}"))
                }
                UsageStatus::InFlight { consistent } => (
                    if *consistent {
                        "in flight"
                    } else {
                        "in flight, differs"
                    }
                    .to_owned(),
                    String::new(),
                ),
            };
            let waiting = p.in_flight.unbatched + p.in_flight.untried + p.in_flight.tried;
            [
                p.tenant.clone(),
                p.meter.clone(),
                format!(
                    "{}..{}",
                    p.period.start.and_utc().format("%Y-%m-%dT%H:%M:%SZ"),
                    p.period.end.and_utc().format("%Y-%m-%dT%H:%M:%SZ")
                ),
                p.ledger.to_string(),
                p.stripe.to_string(),
                waiting.to_string(),
                difference,
                match &p.fix {
                    Some(note) => format!("{status}; {note}"),
                    None => status,
                },
            ]
        })
        .collect();
    let header = [
        "TENANT", "METER", "PERIOD", "LEDGER", "STRIPE", "WAITING", "DIFF", "STATUS",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    let differences = report.differences().count();
    let in_flight = report
        .periods
        .iter()
        .filter(|p| matches!(p.status, UsageStatus::InFlight { .. }))
        .count();
    println!(
        "usage: {} periods, {} differ, {} in flight{}",
        report.periods.len(),
        differences,
        in_flight,
        if fix { " (--fix applied)" } else { "" }
    );
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
