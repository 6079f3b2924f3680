//! `POST …/billing/sync` and `tenant-billing sync`: re-read a tenant's
//! customer and subscriptions from Stripe and store what is there. Repairs a
//! missed or failed webhook; safe to repeat (it only ever stores Stripe's
//! state, in Stripe's order: see `db::subscriptions`).
//!
//! `sync --all` is a bulk run (`bulk.rs`: streamed, paced) over the linked
//! tenants not synced since it started, never-synced first, then least
//! recently synced, so a run that was killed and started again begins with
//! the tenants the first run did not reach.

use chrono::{NaiveDateTime, Utc};

use super::bulk::{BulkOperation, BulkOutcome, Step};
use super::{Actor, Billing, BillingError, BillingState};
use crate::db::subscriptions::{self, Observation};
use crate::db::tenants::Selection;
use crate::db::{self, tenants, DbError};
use crate::domain::{is_paying, TenantId};

/// How one tenant's sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Stored state changed (a missed webhook repaired).
    Repaired,
    /// Already up to date.
    Unchanged,
    /// No Stripe customer to read (or it was deleted, and is now unlinked).
    NoCustomer,
    Failed,
}

impl BulkOutcome for SyncOutcome {
    const LABELS: &'static [&'static str] = &["repaired", "unchanged", "no customer", "failed"];

    fn index(self) -> usize {
        self as usize
    }

    fn is_failure(self) -> bool {
        self == SyncOutcome::Failed
    }
}

/// The bulk operation behind `sync --all`.
#[derive(Debug, Clone, Copy)]
pub struct SyncTenants {
    /// The run's start: tenants synced since are done.
    pub started: NaiveDateTime,
}

impl SyncTenants {
    /// A run starting now.
    pub fn now() -> SyncTenants {
        SyncTenants {
            started: Utc::now().naive_utc(),
        }
    }
}

impl BulkOperation for SyncTenants {
    type Outcome = SyncOutcome;

    fn selection(&self) -> Selection {
        Selection::SyncDue {
            before: self.started,
        }
    }

    async fn run(&self, billing: &Billing, tenant: &TenantId) -> Step<SyncOutcome> {
        // Sync waits on nobody: its writes are ordered by tickets, not leases.
        Step::Done(match billing.sync_tenant(tenant, &Actor::SYSTEM).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(tenant_id = %tenant, error = %error, "sync failed; a re-run retries it");
                SyncOutcome::Failed
            }
        })
    }

    fn gave_up(&self) -> SyncOutcome {
        SyncOutcome::Failed
    }
}

impl Billing {
    /// Re-reads the tenant from Stripe, stores it, and answers the state.
    pub async fn sync(
        &self,
        tenant: &TenantId,
        actor: &Actor<'_>,
    ) -> Result<BillingState, BillingError> {
        self.sync_tenant(tenant, actor).await?;
        Ok(self.fresh_state(tenant).await?)
    }

    async fn sync_tenant(
        &self,
        tenant: &TenantId,
        actor: &Actor<'_>,
    ) -> Result<SyncOutcome, BillingError> {
        let Some(customer_id) = self
            .read_row(tenant)
            .await?
            .and_then(|row| row.stripe_customer_id)
        else {
            return Ok(SyncOutcome::NoCustomer);
        };
        // Drawn before reading: a webhook that reads after us wins.
        let key = tenant.clone();
        let ticket = db::interact(&self.pool, move |conn| {
            Ok(subscriptions::draw_ticket(conn, &key)?)
        })
        .await?
        .ok_or(BillingError::NoSubscription)?;
        if self.stripe.retrieve_customer(&customer_id).await?.is_none() {
            self.unlink_deleted_customer(tenant, &customer_id, actor)
                .await?;
            return Ok(SyncOutcome::NoCustomer);
        }
        let found = self.stripe.list_subscriptions(&customer_id).await?;
        let had_trial = found
            .iter()
            .any(|s| s.trial_start.is_some() || s.trial_end.is_some());
        // The live one, else the newest: what the tenant pays for now.
        let chosen = found
            .iter()
            .find(|s| is_paying(&s.status))
            .or(found.first())
            .cloned();
        let changed = match chosen {
            None => false,
            Some(subscription) => {
                let mut snapshot = self.snapshot_with_schedule(subscription).await?;
                snapshot.had_trial |= had_trial;
                let (key, actor_id) = (tenant.clone(), actor.user_id.to_owned());
                let request_id = actor.request_id.map(str::to_owned);
                let outcome = self
                    .interact_writing(tenant, move |conn| {
                        let observation = Observation {
                            actor: &actor_id,
                            request_id: request_id.as_deref(),
                            action: "subscription.sync",
                            event: None,
                            now: Utc::now().naive_utc(),
                            authoritative: true,
                            always_audit: false,
                            requested: None,
                        };
                        Ok(subscriptions::store_read(
                            conn,
                            &key,
                            ticket,
                            &snapshot,
                            &observation,
                        )?)
                    })
                    .await?;
                matches!(outcome, subscriptions::StoreOutcome::Stored(changes) if !changes.is_empty())
            }
        };
        let key = tenant.clone();
        db::interact(&self.pool, move |conn| {
            Ok(tenants::mark_synced(conn, &key, Utc::now().naive_utc())?)
        })
        .await?;
        Ok(if changed {
            SyncOutcome::Repaired
        } else {
            SyncOutcome::Unchanged
        })
    }

    async fn unlink_deleted_customer(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        actor: &Actor<'_>,
    ) -> Result<(), DbError> {
        let (key, customer) = (tenant.clone(), customer_id.to_owned());
        let unlinked = self
            .interact_writing(tenant, move |conn| {
                Ok(tenants::unlink_customer(conn, &key, &customer)?)
            })
            .await?;
        if unlinked {
            let detail = serde_json::json!({ "stripe_customer_id": customer_id }).to_string();
            self.audit(tenant, actor, "customer.unlinked", "ok", Some(detail))
                .await;
        }
        Ok(())
    }
}
