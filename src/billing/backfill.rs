//! `backfill-customers`: a Stripe customer for every tenant that lacks one.
//!
//! Each tenant goes through `try_ensure_customer` (claim, create under a
//! stable idempotency key, record only if unset), so a run killed at any
//! point and started again creates no duplicate: tenants linked by the first
//! run are not selected again, and a tenant whose creation was cut short is
//! recovered (adopted) under its claim. A tenant whose lease someone else
//! holds (a live request, the killed run) is deferred to the end of the run
//! by the bulk runner instead of blocking a worker, so the run keeps its rate.
//! The rate is kept by the gateway's `Pacer`, which also slows down on 429.

use super::bulk::{BulkOperation, BulkOutcome, BulkTotals, Step};
use super::{Actor, Billing, CustomerHints, EnsureAttempt};
use crate::db::tenants::Selection;
use crate::domain::TenantId;

/// How one tenant ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillOutcome {
    Created,
    /// An earlier, interrupted attempt had created it at Stripe: adopted.
    Adopted,
    /// Someone else linked it between the scan and our turn.
    AlreadyLinked,
    Failed,
}

impl BulkOutcome for BackfillOutcome {
    const LABELS: &'static [&'static str] = &["created", "adopted", "already linked", "failed"];

    fn index(self) -> usize {
        self as usize
    }

    fn is_failure(self) -> bool {
        self == BackfillOutcome::Failed
    }
}

/// The totals a backfill prints at the end.
pub type BackfillTotals = BulkTotals<BackfillOutcome>;

/// The bulk operation behind `backfill-customers`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnsureCustomers;

impl BulkOperation for EnsureCustomers {
    type Outcome = BackfillOutcome;

    fn selection(&self) -> Selection {
        Selection::Unlinked
    }

    async fn run(&self, billing: &Billing, tenant: &TenantId) -> Step<BackfillOutcome> {
        match billing
            .try_ensure_customer(tenant, &CustomerHints::default(), &Actor::SYSTEM)
            .await
        {
            Ok(EnsureAttempt::Busy { lease_expires_at }) => Step::Deferred {
                until: lease_expires_at,
            },
            Ok(EnsureAttempt::Done(ensured)) if ensured.adopted => {
                Step::Done(BackfillOutcome::Adopted)
            }
            Ok(EnsureAttempt::Done(ensured)) if ensured.created => {
                Step::Done(BackfillOutcome::Created)
            }
            Ok(EnsureAttempt::Done(_)) => Step::Done(BackfillOutcome::AlreadyLinked),
            Err(error) => {
                tracing::warn!(tenant_id = %tenant, error = %error, "backfill: could not ensure the customer; a re-run retries it");
                Step::Done(BackfillOutcome::Failed)
            }
        }
    }

    fn gave_up(&self) -> BackfillOutcome {
        tracing::warn!("backfill: a tenant stayed held by another creator; a re-run retries it");
        BackfillOutcome::Failed
    }
}
