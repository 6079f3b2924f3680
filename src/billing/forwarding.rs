//! Usage to Stripe: the `forward_usage` job, one per tenant on the outbox
//! (claimed by lease like every job), queued by the transaction that records
//! the tenant's usage (db/usage_forwarding.rs).
//!
//! Each run, for every Stripe-billed meter:
//! 1. cuts the tenant's new ledger events into batches (one per period, each
//!    named after its ledger range), written before anything is sent;
//! 2. sends at most one batch, oldest first, as one meter event with the
//!    batch's identifier and timestamp, at most one per
//!    `usage.forward_interval_ms` for the tenant and meter (attempts
//!    included, across instances: the pacing is stored), and only while this
//!    worker holds the job's lease; the job being the tenant's only active
//!    one, there is one sender per customer and meter;
//! 3. records the outcome: accepted (or already counted: an earlier attempt
//!    whose answer was lost) marks the batch sent; Stripe's 429 or no answer
//!    keeps it for the next attempt, later (the wait doubles up to
//!    `usage.forward_backoff_max_ms`); a timestamp past Stripe's 35-day
//!    window, or a refusal, closes it and is reported (audit, metric, log).
//!
//! Then the job is deferred to the tenant's next turn while anything is left,
//! else it ends (the next recording queues it again). A batch whose outcome
//! is still unknown 23 hours after its first attempt is not sent again
//! (Stripe may have forgotten the identifier): it is reported and left to
//! `reconcile --usage`. No transaction is held across a Stripe call.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{NaiveDateTime, Utc};

use super::jobs::{JobDone, JobError};
use super::{Actor, Billing};
use crate::db::jobs::JobRecord;
use crate::db::usage_forwarding::{self as repo, state, BatchRecord, Settle};
use crate::db::{self, DbError};
use crate::domain::forwarding::{outside_stripe_window, IDENTIFIER_WINDOW};
use crate::domain::{Meter, TenantId};
use crate::stripe::{MeterEvent, MeterEventOutcome, StripeMeter};

/// Stripe's meters, by event name, as looked up (at startup or first use).
#[derive(Debug, Default)]
pub struct MeterBook {
    meters: RwLock<HashMap<String, StripeMeter>>,
}

impl MeterBook {
    fn get(&self, event_name: &str) -> Option<StripeMeter> {
        let meters = self.meters.read().unwrap_or_else(|e| e.into_inner());
        meters.get(event_name).cloned()
    }

    fn insert(&self, meter: StripeMeter) {
        let mut meters = self.meters.write().unwrap_or_else(|e| e.into_inner());
        meters.insert(meter.event_name.clone(), meter);
    }
}

/// A configured meter or metered price Stripe does not have as configured
/// (reported at startup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteringProblem {
    /// The configuration key to fix (`meters.api_calls.stripe_meter`).
    pub key: String,
    pub problem: String,
}

fn lease_lost() -> JobError {
    JobError::Transient("the job's lease was lost".into())
}

impl Billing {
    fn backoff(&self, failures: i32) -> chrono::Duration {
        let usage = &self.settings.usage;
        let factor = 1u32 << failures.clamp(0, 16);
        let wait = usage
            .forward_interval()
            .saturating_mul(factor)
            .min(usage.forward_backoff_max());
        chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::seconds(60))
    }

    /// The Stripe meter that `meter`'s usage goes to.
    pub(super) async fn stripe_meter(&self, meter: &Meter) -> Result<StripeMeter, JobError> {
        let event_name = meter
            .stripe_meter
            .as_deref()
            .ok_or_else(|| JobError::Permanent(format!("meter {} is not billed", meter.id)))?;
        if let Some(found) = self.meters.get(event_name) {
            return Ok(found);
        }
        match self.stripe.find_meter(event_name).await {
            Ok(Some(found)) => {
                self.meters.insert(found.clone());
                Ok(found)
            }
            Ok(None) => Err(JobError::Transient(format!(
                "Stripe has no active meter with event_name {event_name:?}: create it, or fix meters.{}.stripe_meter",
                meter.id
            ))),
            Err(failure) => Err(JobError::Transient(failure.to_string())),
        }
    }

    /// One run of a tenant's `forward_usage` job (see the module docs).
    pub(super) async fn forward_usage(
        &self,
        job: &JobRecord,
        worker: &str,
        tenant: &TenantId,
    ) -> Result<JobDone, JobError> {
        let Some(customer) = self
            .read_row(tenant)
            .await?
            .and_then(|row| row.stripe_customer_id)
        else {
            // Nothing can be billed without a customer: the usage stays in
            // the ledger, and the next recording after linking comes back.
            tracing::debug!(tenant_id = %tenant, "usage not forwarded: the tenant has no Stripe customer");
            return Ok(JobDone::Finished);
        };
        let mut next: Option<NaiveDateTime> = None;
        let mut soonest = |at: NaiveDateTime| {
            next = Some(next.map_or(at, |n| n.min(at)));
        };
        let meters: Vec<Meter> = self.catalog().billed_meters().cloned().collect();
        for meter in &meters {
            if let Some(at) = self
                .forward_meter(job, worker, tenant, &customer, meter)
                .await?
            {
                soonest(at);
            }
        }
        Ok(match next {
            Some(at) => JobDone::Defer(at),
            None => JobDone::Finished,
        })
    }

    /// Cuts and sends (at most one batch of) one meter; when to come back.
    async fn forward_meter(
        &self,
        job: &JobRecord,
        worker: &str,
        tenant: &TenantId,
        customer: &str,
        meter: &Meter,
    ) -> Result<Option<NaiveDateTime>, JobError> {
        let now = Utc::now().naive_utc();
        let (key, meter_id, worker_name) = (tenant.clone(), meter.id.clone(), worker.to_owned());
        let (job_id, max) = (job.id, self.settings.usage.forward_batch_events);
        let cut = db::interact(&self.pool, move |conn| {
            Ok(repo::cut(
                conn,
                &key,
                &meter_id,
                now,
                max,
                (job_id, &worker_name),
            )?)
        })
        .await?
        .ok_or_else(lease_lost)?;
        let (key, meter_id) = (tenant.clone(), meter.id.clone());
        let (batch, pacing) = db::interact(&self.pool, move |conn| {
            Ok(repo::next_to_send(conn, &key, &meter_id)?)
        })
        .await?;
        let Some(batch) = batch else {
            return Ok(cut.more.then_some(now));
        };
        let interval =
            chrono::Duration::from_std(self.settings.usage.forward_interval()).unwrap_or_default();
        let turn = pacing.last_attempt_at.map(|last| {
            last + if pacing.throttled > 0 {
                self.backoff(pacing.throttled)
            } else {
                interval
            }
        });
        if let Some(turn) = turn.filter(|turn| *turn > now) {
            return Ok(Some(turn));
        }
        let fence = (job.id, worker);
        if batch.attempts > 0
            && batch
                .first_attempt_at
                .is_some_and(|first| first < now - IDENTIFIER_WINDOW)
        {
            let why =
                "its outcome is unknown and Stripe may have forgotten its identifier (24 h): \
                       not sent again; `reconcile --usage` settles it";
            self.close_batch(tenant, &batch, state::UNKNOWN, why, fence)
                .await?;
            return Ok(Some(now));
        }
        if outside_stripe_window(batch.occurred_at, now) {
            let why = "dated outside Stripe's 35-day window: it can no longer be billed";
            self.close_batch(tenant, &batch, state::EXPIRED, why, fence)
                .await?;
            return Ok(Some(now));
        }
        let stripe_meter = self.stripe_meter(meter).await?;
        let started = {
            let (attempt, worker_name) = (batch.clone(), worker.to_owned());
            db::interact(&self.pool, move |conn| {
                Ok(repo::begin_attempt(
                    conn,
                    &attempt,
                    now,
                    (job_id, &worker_name),
                )?)
            })
            .await?
        };
        if !started {
            return Err(lease_lost());
        }
        let outcome = self
            .stripe
            .send_meter_event(&MeterEvent {
                meter: &stripe_meter,
                customer_id: customer,
                value: batch.value,
                identifier: &batch.identifier,
                timestamp: batch.occurred_at.and_utc().timestamp(),
            })
            .await;
        let now = Utc::now().naive_utc();
        let (settle, label, again) = match outcome {
            MeterEventOutcome::Accepted => (Settle::Sent, "accepted", now + interval),
            MeterEventOutcome::AlreadyCounted => (Settle::Sent, "already_counted", now + interval),
            MeterEventOutcome::RateLimited => (
                Settle::Throttled,
                "rate_limited",
                now + self.backoff(pacing.throttled + 1),
            ),
            MeterEventOutcome::Unknown(failure) => (
                Settle::Failed(failure.to_string()),
                "failed",
                now + self.backoff(batch.attempts + 1),
            ),
            MeterEventOutcome::OutsideWindow(message) => {
                let why = format!("Stripe refused its timestamp: {message}");
                self.close_batch(tenant, &batch, state::EXPIRED, &why, fence)
                    .await?;
                return Ok(Some(now));
            }
            MeterEventOutcome::Rejected(message) => {
                let why = format!("Stripe refused it: {message}");
                self.close_batch(tenant, &batch, state::REJECTED, &why, fence)
                    .await?;
                return Ok(Some(now));
            }
        };
        self.metrics.usage_meter_event(label);
        if let Settle::Failed(error) = &settle {
            tracing::warn!(tenant_id = %tenant, meter = %meter.id, identifier = %batch.identifier, error = %error, "meter event not confirmed; the same identifier will be sent again");
        }
        let written = {
            let (batch, worker_name) = (batch.clone(), worker.to_owned());
            db::interact(&self.pool, move |conn| {
                Ok(repo::settle(
                    conn,
                    &batch,
                    &settle,
                    now,
                    Some((job_id, &worker_name)),
                )?)
            })
            .await?
        };
        if !written {
            return Err(lease_lost());
        }
        // Come back at the next turn only if there is more to send.
        let (key, meter_id) = (tenant.clone(), meter.id.clone());
        let more = db::interact(&self.pool, move |conn| {
            let (pending, _) = repo::next_to_send(conn, &key, &meter_id)?;
            Ok(pending.is_some() || repo::has_unbatched(conn, &key, &meter_id)?)
        })
        .await?;
        Ok(more.then_some(again))
    }

    /// Closes a batch that will not reach Stripe, and reports it: audit
    /// (`usage.forward`), metric (`usage_unbilled_units`), error log.
    async fn close_batch(
        &self,
        tenant: &TenantId,
        batch: &BatchRecord,
        final_state: &'static str,
        why: &str,
        (job_id, worker): (i64, &str),
    ) -> Result<(), JobError> {
        let now = Utc::now().naive_utc();
        let (record, worker_name) = (batch.clone(), worker.to_owned());
        let outcome = Settle::Closed(final_state, why.to_owned());
        let written = db::interact(&self.pool, move |conn| {
            Ok(repo::settle(
                conn,
                &record,
                &outcome,
                now,
                Some((job_id, &worker_name)),
            )?)
        })
        .await?;
        if !written {
            return Err(lease_lost());
        }
        self.metrics.usage_meter_event(final_state);
        self.metrics
            .usage_unbilled(final_state, u64::try_from(batch.value).unwrap_or(0));
        tracing::error!(
            tenant_id = %tenant,
            meter = %batch.meter,
            identifier = %batch.identifier,
            value = batch.value,
            events = batch.events,
            occurred_at = %batch.occurred_at,
            state = final_state,
            "usage not billed through Stripe: {why}"
        );
        let detail = serde_json::json!({
            "meter": batch.meter,
            "identifier": batch.identifier,
            "value": batch.value,
            "events": batch.events,
            "period_start": batch.period_start.and_utc().to_rfc3339(),
            "occurred_at": batch.occurred_at.and_utc().to_rfc3339(),
            "reason": why,
        });
        self.audit(
            tenant,
            &Actor::SYSTEM,
            "usage.forward",
            final_state,
            Some(detail.to_string()),
        )
        .await;
        Ok(())
    }

    /// Seconds since the oldest usage not yet accepted by Stripe was
    /// recorded (0 when none), for `usage_forward_lag_seconds`.
    pub async fn usage_forward_lag(&self) -> Result<f64, DbError> {
        let oldest = db::interact(&self.pool, |conn| Ok(repo::oldest_unsent(conn)?)).await?;
        Ok(oldest.map_or(0.0, |at| {
            (Utc::now().naive_utc() - at).num_milliseconds().max(0) as f64 / 1e3
        }))
    }

    /// Looks up every Stripe-billed meter and metered price: logs (and
    /// returns) what Stripe lacks or has otherwise than configured. Run in
    /// the background at startup, like `check_prices`.
    pub async fn check_metering(&self) -> Vec<MeteringProblem> {
        let mut problems = Vec::new();
        let mut found: HashMap<String, StripeMeter> = HashMap::new();
        for meter in self.catalog().billed_meters() {
            let key = format!("meters.{}.stripe_meter", meter.id);
            let event_name = meter.stripe_meter.clone().unwrap_or_default();
            match self.stripe.find_meter(&event_name).await {
                Ok(Some(stripe_meter)) => {
                    if stripe_meter.formula != "sum" {
                        problems.push(MeteringProblem {
                            key: key.clone(),
                            problem: format!(
                                "Stripe's meter {event_name:?} aggregates by {:?}; usage is sent in batches, which needs sum",
                                stripe_meter.formula
                            ),
                        });
                    }
                    self.meters.insert(stripe_meter.clone());
                    found.insert(meter.id.clone(), stripe_meter);
                }
                Ok(None) => problems.push(MeteringProblem {
                    key,
                    problem: format!("Stripe has no active meter with event_name {event_name:?}"),
                }),
                Err(error) => {
                    tracing::warn!(meter = %meter.id, error = %error, "could not check the Stripe meter");
                }
            }
        }
        for plan in self.catalog().plans() {
            for (meter_id, price_id) in &plan.metered_prices {
                let key = format!("plans.{}.metered_prices.{meter_id}", plan.id);
                match self.stripe.retrieve_price(price_id).await {
                    Ok(Some(price)) => {
                        let expected = found.get(meter_id).map(|m| m.id.clone());
                        let wrong =
                            !price.metered || (expected.is_some() && price.meter != expected);
                        if wrong {
                            problems.push(MeteringProblem {
                                key,
                                problem: format!(
                                    "Stripe's price {price_id} is not metered on the meter of {meter_id} (usage_type metered: {}, meter: {:?})",
                                    price.metered, price.meter
                                ),
                            });
                        }
                    }
                    Ok(None) => problems.push(MeteringProblem {
                        key,
                        problem: format!("Stripe has no price {price_id}"),
                    }),
                    Err(error) => {
                        tracing::warn!(price_id = %price_id, error = %error, "could not check the metered price");
                    }
                }
            }
        }
        for problem in &problems {
            tracing::error!(
                key = %problem.key,
                "usage billing is misconfigured: {}; fix {}",
                problem.problem,
                problem.key
            );
        }
        problems
    }
}
