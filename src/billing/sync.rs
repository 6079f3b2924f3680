//! `POST …/billing/sync` and `tenant-billing sync`: re-read a tenant's
//! customer and subscriptions from Stripe and store what is there. Repairs a
//! missed or failed webhook; safe to repeat (it only ever stores Stripe's
//! state, in Stripe's order: see `db::subscriptions`).
//!
//! `sync --all` takes tenants least recently synced first, so a run that was
//! killed and started again begins with the tenants the first run did not
//! reach. Its Stripe requests are paced by the gateway's `Pacer`.

use chrono::Utc;
use tokio::task::JoinSet;

use super::{Actor, Billing, BillingError, BillingState};
use crate::db::subscriptions::{self, Observation};
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

/// What `sync --all` prints at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncTotals {
    pub repaired: u64,
    pub unchanged: u64,
    pub no_customer: u64,
    pub failed: u64,
}

impl SyncTotals {
    pub fn add(&mut self, outcome: SyncOutcome) {
        match outcome {
            SyncOutcome::Repaired => self.repaired += 1,
            SyncOutcome::Unchanged => self.unchanged += 1,
            SyncOutcome::NoCustomer => self.no_customer += 1,
            SyncOutcome::Failed => self.failed += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.repaired + self.unchanged + self.no_customer + self.failed
    }
}

impl std::fmt::Display for SyncTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "synced {}: repaired {}, unchanged {}, no customer {}, failed {}",
            self.total(),
            self.repaired,
            self.unchanged,
            self.no_customer,
            self.failed
        )
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

    /// Linked tenants, least recently synced first (`sync --all`).
    pub async fn tenants_to_sync(&self) -> Result<Vec<TenantId>, DbError> {
        let ids = db::interact(&self.pool, |conn| Ok(tenants::linked_by_sync_age(conn)?)).await?;
        Ok(ids
            .into_iter()
            .filter_map(|id| TenantId::parse(&id).ok())
            .collect())
    }

    /// Syncs `tenants` with up to `concurrency` at a time, calling `progress`
    /// after each. Pace it with a gateway `with_pacer`.
    pub async fn sync_many(
        &self,
        tenants: Vec<TenantId>,
        concurrency: usize,
        progress: impl Fn(&TenantId, SyncOutcome),
    ) -> SyncTotals {
        let mut totals = SyncTotals::default();
        let mut running = JoinSet::new();
        let mut record = |finished: Option<Result<(TenantId, SyncOutcome), _>>| match finished {
            Some(Ok((tenant, outcome))) => {
                totals.add(outcome);
                progress(&tenant, outcome);
            }
            Some(Err(_panicked)) => totals.add(SyncOutcome::Failed),
            None => {}
        };
        for tenant in tenants {
            while running.len() >= concurrency.max(1) {
                record(running.join_next().await);
            }
            let billing = self.clone();
            running.spawn_local(async move {
                let outcome = match billing.sync_tenant(&tenant, &Actor::SYSTEM).await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        tracing::warn!(tenant_id = %tenant, error = %error, "sync failed; a re-run retries it");
                        SyncOutcome::Failed
                    }
                };
                (tenant, outcome)
            });
        }
        while !running.is_empty() {
            record(running.join_next().await);
        }
        totals
    }
}
