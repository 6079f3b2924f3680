//! `reconcile --usage [--fix]`: the ledger's per-period totals against
//! Stripe's meter event summaries, per tenant and meter.
//!
//! For every period of a Stripe-billed meter ending within Stripe's 35-day
//! window, of a tenant with a customer: Stripe's summary over the whole
//! minutes covering the period (less the batches of neighbouring periods
//! stamped in its partial edge minutes) is compared with the ledger's total
//! less what is known not to have been sent yet (events not cut, batches
//! never tried). A batch tried but not confirmed may or may
//! not be at Stripe: while one is, the period is reported in flight, never
//! fixed. A batch whose fate stayed unknown past the identifier window is
//! settled here: counted at Stripe if the totals agree, else replaced by the
//! fix.
//!
//! `--fix` sends each difference as one correction (negative for an excess:
//! Stripe sums signed values) with an identifier named after what was seen
//! (period, ledger, Stripe), written before it is sent: a re-run that sees
//! the same totals (the fix lost, or not yet in Stripe's summaries) sends the
//! same identifier, which Stripe counts once; a re-run after it landed sees
//! no difference.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::jobs::JobError;
use super::{Billing, BillingError};
use crate::db::jobs::{self as job_repo, JobKind};
use crate::db::usage_forwarding::{self as repo, InFlight, NewFix, Settle};
use crate::db::{self, DbError};
use crate::domain::forwarding::{fix_identifier, stamp, summary_bounds, STRIPE_WINDOW};
use crate::domain::{TenantId, UsagePeriod};
use crate::stripe::{MeterEvent, MeterEventOutcome, StripeFailure};

/// Where one period stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageStatus {
    /// Stripe holds what the ledger sent.
    Matches,
    /// A batch was tried and not confirmed: run again once forwarding has
    /// caught up (the report says whether the totals could still agree).
    InFlight { consistent: bool },
    /// Stripe holds `difference` less (positive) or more (negative) than
    /// the ledger sent.
    Differs { difference: i64 },
}

/// One period of one tenant's meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePeriodReport {
    pub tenant: String,
    pub meter: String,
    pub period: UsagePeriod,
    /// The ledger's total.
    pub ledger: i64,
    /// Stripe's summary (rounded).
    pub stripe: i64,
    pub in_flight: InFlight,
    pub status: UsageStatus,
    /// With `--fix`: what was done about it.
    pub fix: Option<String>,
}

/// What `reconcile --usage` found (and did).
#[derive(Debug, Clone, Default)]
pub struct UsageReconcileReport {
    pub periods: Vec<UsagePeriodReport>,
}

impl UsageReconcileReport {
    /// The periods that do not match.
    pub fn differences(&self) -> impl Iterator<Item = &UsagePeriodReport> + '_ {
        self.periods
            .iter()
            .filter(|p| matches!(p.status, UsageStatus::Differs { .. }))
    }
}

fn job_failure(error: JobError) -> BillingError {
    let message = match error {
        JobError::Transient(m) | JobError::Permanent(m) => m,
    };
    BillingError::Stripe(StripeFailure::Protocol(message))
}

fn unix(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp()
}

fn naive(unix: i64) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.naive_utc())
        .unwrap_or_default()
}

impl Billing {
    /// Compares every period (see the module docs); with `fix`, sends the
    /// differences that can be decided.
    pub async fn reconcile_usage(&self, fix: bool) -> Result<UsageReconcileReport, BillingError> {
        let now = Utc::now().naive_utc();
        let meters: Vec<_> = self.catalog().billed_meters().cloned().collect();
        let ids: Vec<String> = meters.iter().map(|m| m.id.clone()).collect();
        let since = now - STRIPE_WINDOW;
        let periods = db::interact(&self.pool, move |conn| {
            Ok(repo::ledger_periods(conn, &ids, since)?)
        })
        .await?;
        let mut report = UsageReconcileReport::default();
        for (ledger, customer) in periods {
            let Some(meter) = meters.iter().find(|m| m.id == ledger.meter) else {
                continue;
            };
            let tenant = TenantId::parse(&ledger.tenant_id)
                .map_err(|_| BillingError::Database(DbError::Aborted))?;
            let mut row = UsagePeriodReport {
                tenant: ledger.tenant_id.clone(),
                meter: ledger.meter.clone(),
                period: ledger.period,
                ledger: ledger.used,
                stripe: 0,
                in_flight: InFlight::default(),
                status: UsageStatus::Matches,
                fix: None,
            };
            let (first, last) = summary_bounds(&ledger.period);
            let stripe_meter = self.stripe_meter(meter).await.map_err(job_failure)?;
            let (key, meter_id, start) = (tenant.clone(), meter.id.clone(), ledger.period.start);
            let bounds = (naive(first), naive(last));
            let (in_flight, (neighbours_sent, neighbours_tried)) =
                db::interact(&self.pool, move |conn| {
                    Ok((
                        repo::in_flight(conn, &key, &meter_id, start)?,
                        repo::neighbours_in(conn, &key, &meter_id, start, bounds)?,
                    ))
                })
                .await?;
            row.in_flight = in_flight;
            row.in_flight.tried += neighbours_tried;
            row.stripe = self
                .stripe
                .meter_usage(&stripe_meter.id, &customer, first, last)
                .await?
                .round() as i64
                - neighbours_sent;
            let flight = row.in_flight;
            // What the ledger has sent, or will never send (closed batches).
            let expected = row.ledger - flight.unbatched - flight.untried;
            let difference = expected - row.stripe;
            row.status = if flight.tried > 0 {
                UsageStatus::InFlight {
                    consistent: (0..=flight.tried).contains(&difference),
                }
            } else if difference == 0 {
                UsageStatus::Matches
            } else {
                UsageStatus::Differs { difference }
            };
            if fix {
                row.fix = self
                    .fix_period(&tenant, &stripe_meter, &customer, &row, expected, now)
                    .await?;
            }
            report.periods.push(row);
        }
        Ok(report)
    }

    /// Applies `--fix` to one period; what was done, if anything.
    async fn fix_period(
        &self,
        tenant: &TenantId,
        stripe_meter: &crate::stripe::StripeMeter,
        customer: &str,
        row: &UsagePeriodReport,
        expected: i64,
        now: NaiveDateTime,
    ) -> Result<Option<String>, BillingError> {
        let (key, meter_id, start) = (tenant.clone(), row.meter.clone(), row.period.start);
        match row.status {
            UsageStatus::Matches if row.in_flight.unknown != 0 => {
                db::interact(&self.pool, move |conn| {
                    Ok(repo::unknown_landed(conn, &key, &meter_id, start, now)?)
                })
                .await?;
                Ok(Some("unknown batches found at Stripe: marked sent".into()))
            }
            UsageStatus::Differs { difference } => {
                // Inside the period, and within Stripe's window.
                let stamp = unix(stamp(&row.period, now));
                if stamp < unix(now - STRIPE_WINDOW) + 3600 || stamp > unix(now) + 240 {
                    return Ok(Some(
                        "not fixable: the period is outside Stripe's timestamp window".into(),
                    ));
                }
                let identifier =
                    fix_identifier(tenant.as_str(), &row.meter, start, expected, row.stripe);
                let period = row.period;
                let (fix_id, meter) = (identifier.clone(), row.meter.clone());
                let batch = db::interact(&self.pool, move |conn| {
                    Ok(repo::insert_fix(
                        conn,
                        &NewFix {
                            tenant: &key,
                            meter: &meter,
                            period,
                            value: difference,
                            identifier: &fix_id,
                            occurred_at: naive(stamp),
                        },
                        now,
                    )?)
                })
                .await?;
                if batch.state != repo::state::PENDING {
                    return Ok(Some(format!("already sent as {identifier}")));
                }
                let outcome = self
                    .stripe
                    .send_meter_event(&MeterEvent {
                        meter: stripe_meter,
                        customer_id: customer,
                        value: batch.value,
                        identifier: &batch.identifier,
                        timestamp: unix(batch.occurred_at),
                    })
                    .await;
                let late = now
                    > row.period.end
                        + chrono::Duration::seconds(
                            i64::try_from(self.settings.usage.stripe_grace_seconds)
                                .unwrap_or(i64::MAX),
                        );
                let note = if late {
                    " (after the period's grace period: on no invoice unless it is still a draft)"
                } else {
                    ""
                };
                let settle = match outcome {
                    MeterEventOutcome::Accepted | MeterEventOutcome::AlreadyCounted => Some((
                        Settle::Sent,
                        format!("sent {difference:+} as {identifier}{note}"),
                    )),
                    MeterEventOutcome::OutsideWindow(message)
                    | MeterEventOutcome::Rejected(message) => Some((
                        Settle::Closed(repo::state::REJECTED, message.clone()),
                        format!("Stripe refused the fix: {message}"),
                    )),
                    MeterEventOutcome::RateLimited | MeterEventOutcome::Unknown(_) => None,
                };
                let Some((settle, done)) = settle else {
                    // Left pending: the tenant's forwarder sends it (same identifier).
                    let key = tenant.clone();
                    db::interact(&self.pool, move |conn| {
                        let now = Utc::now().naive_utc();
                        Ok(job_repo::enqueue(
                            conn,
                            JobKind::ForwardUsage,
                            &key,
                            now,
                            now,
                        )?)
                    })
                    .await?;
                    return Ok(Some(format!(
                        "fix {identifier} not confirmed: the forwarder will send it"
                    )));
                };
                db::interact(&self.pool, move |conn| {
                    Ok(repo::settle(
                        conn,
                        &batch,
                        &settle,
                        Utc::now().naive_utc(),
                        None,
                    )?)
                })
                .await?;
                Ok(Some(done))
            }
            _ => Ok(None),
        }
    }
}
