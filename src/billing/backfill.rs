//! `backfill-customers`: a Stripe customer for every tenant that lacks one.
//!
//! Each tenant goes through `ensure_customer` (claim, create under a stable
//! idempotency key, record only if unset), so a run killed at any point and
//! started again creates no duplicate: tenants linked by the first run are not
//! selected again, and a tenant whose creation was cut short is recovered
//! (adopted) under its claim. The request rate is kept by the gateway's
//! `Pacer`, shared by the concurrent tasks, which also slows down on 429.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{Actor, Billing, CustomerHints};
use crate::db::{self, tenants, DbError};
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

/// The totals a run prints at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillTotals {
    pub created: u64,
    pub adopted: u64,
    pub already_linked: u64,
    pub failed: u64,
}

impl BackfillTotals {
    /// Counts one tenant's outcome.
    pub fn add(&mut self, outcome: BackfillOutcome) {
        match outcome {
            BackfillOutcome::Created => self.created += 1,
            BackfillOutcome::Adopted => self.adopted += 1,
            BackfillOutcome::AlreadyLinked => self.already_linked += 1,
            BackfillOutcome::Failed => self.failed += 1,
        }
    }
}

impl std::fmt::Display for BackfillTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created {}, adopted {}, already linked {}, failed {}",
            self.created, self.adopted, self.already_linked, self.failed
        )
    }
}

impl Billing {
    /// Tenants with a row but no Stripe customer, in tenant order.
    pub async fn tenants_without_customer(&self) -> Result<Vec<TenantId>, DbError> {
        let rows = db::interact(&self.pool, |conn| Ok(tenants::list_all(conn, true)?)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| TenantId::parse(&row.tenant_id).ok())
            .collect())
    }

    /// Ensures a customer for each tenant with `concurrency` tasks, calling
    /// `progress` after each one. Pace it with a gateway `with_pacer`.
    pub async fn backfill(
        &self,
        pending: Vec<TenantId>,
        concurrency: usize,
        progress: impl Fn(&TenantId, BackfillOutcome),
    ) -> BackfillTotals {
        let queue = Arc::new(Mutex::new(VecDeque::from(pending)));
        let (sender, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..concurrency.max(1) {
            let billing = self.clone();
            let queue = Arc::clone(&queue);
            let sender = sender.clone();
            actix_web::rt::spawn(async move {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                    let Some(tenant) = next else { break };
                    let outcome = billing.backfill_one(&tenant).await;
                    if sender.send((tenant, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut totals = BackfillTotals::default();
        while let Some((tenant, outcome)) = outcomes.recv().await {
            totals.add(outcome);
            progress(&tenant, outcome);
        }
        totals
    }

    async fn backfill_one(&self, tenant: &TenantId) -> BackfillOutcome {
        match self
            .ensure_customer(tenant, &CustomerHints::default(), &Actor::SYSTEM)
            .await
        {
            Ok(ensured) if ensured.adopted => BackfillOutcome::Adopted,
            Ok(ensured) if ensured.created => BackfillOutcome::Created,
            Ok(_) => BackfillOutcome::AlreadyLinked,
            Err(error) => {
                tracing::warn!(tenant_id = %tenant, error = %error, "backfill: could not ensure the customer; a re-run retries it");
                BackfillOutcome::Failed
            }
        }
    }
}
