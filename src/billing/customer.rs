//! Exactly one Stripe customer per tenant.
//!
//! 1. Fast path: a read. A linked tenant costs no write and no Stripe call.
//! 2. Claim: one short write transaction makes this caller the only creator
//!    for the tenant (a compare-and-set on the claim columns), across any
//!    number of instances. Others wait, reading, until the link appears or the
//!    lease lapses.
//! 3. Create: no transaction or pooled connection is held while Stripe is
//!    called. The idempotency key derives from the claim's token, which
//!    survives failures and takeovers, so every retry of the intent replays.
//! 4. Record: a second short transaction links the id only if still unset.
//!
//! A claim found with a lapsed lease means an earlier holder crashed or
//! failed, maybe after Stripe created the customer: the new holder first lists
//! customers created since the claim began (the list API is consistent;
//! search lags) and adopts the tenant's customer if there is one.

use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use rand::Rng;

use super::{Actor, Billing, BillingError};
use crate::db::leases::{self, ClaimOutcome, CustomerClaim};
use crate::db::tenants::{self, RecordOutcome, TenantRecord};
use crate::db::{self, audit, presence, DbError};
use crate::domain::{Email, TenantId};
use crate::stripe::{CustomerParams, StripeCustomer, StripeFailure};

/// Stripe creation time and our clocks may differ; look a little further back.
const RECOVERY_LOOKBACK_SECONDS: i64 = 600;

/// Optional values for a new customer; the stored profile and then the
/// caller's token fill the gaps.
#[derive(Debug, Clone, Default)]
pub struct CustomerHints {
    pub email: Option<Email>,
    pub name: Option<String>,
}

/// The tenant's customer and whether this call created (or adopted) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredCustomer {
    pub customer_id: String,
    pub created: bool,
    /// With `created`: the customer already existed at Stripe (an earlier
    /// attempt made it before crashing) and was adopted rather than created.
    /// Bulk commands report the two apart.
    pub adopted: bool,
}

/// One look at a tenant's customer that never waits on another creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsureAttempt {
    /// Linked (by this call or before).
    Done(EnsuredCustomer),
    /// Someone else holds the creation lease until then: come back later.
    Busy { lease_expires_at: NaiveDateTime },
}

impl Billing {
    /// Returns the tenant's Stripe customer, creating it exactly once.
    /// Waits (polling) while another creator holds the tenant's lease.
    pub async fn ensure_customer(
        &self,
        tenant: &TenantId,
        hints: &CustomerHints,
        actor: &Actor<'_>,
    ) -> Result<EnsuredCustomer, BillingError> {
        let lease = self.claim_lease();
        let give_up_at = Instant::now() + self.claim_patience();
        loop {
            if let EnsureAttempt::Done(ensured) =
                self.try_ensure_customer(tenant, hints, actor).await?
            {
                return Ok(ensured);
            }
            if Instant::now() >= give_up_at {
                return Err(BillingError::CreationInProgress);
            }
            // Another creator holds the lease: wait for its result.
            let pause = rand::thread_rng().gen_range(15..40);
            tokio::time::sleep(Duration::from_millis(pause).min(lease)).await;
        }
    }

    /// `ensure_customer` without the waiting: a tenant whose lease another
    /// creator holds answers `Busy`, so bulk commands can do other tenants
    /// meanwhile instead of blocking a worker.
    pub async fn try_ensure_customer(
        &self,
        tenant: &TenantId,
        hints: &CustomerHints,
        actor: &Actor<'_>,
    ) -> Result<EnsureAttempt, BillingError> {
        let key = tenant.clone();
        let (row, claim, holder_beat) = db::interact(&self.pool, move |conn| {
            let claim = leases::customer_claim(conn, &key)?;
            let holder_beat = match claim.as_ref().and_then(|c| c.holder.as_deref()) {
                Some(holder) => presence::heartbeat_of(conn, holder)?,
                None => None,
            };
            Ok((tenants::find(conn, &key)?, claim, holder_beat))
        })
        .await?;
        if let Some(customer_id) = row.as_ref().and_then(|r| r.stripe_customer_id.clone()) {
            return Ok(EnsureAttempt::Done(EnsuredCustomer {
                customer_id,
                created: false,
                adopted: false,
            }));
        }
        let now = Utc::now().naive_utc();
        let holder = claim.as_ref().and_then(|lease| lease.holder.clone());
        let active_lease = claim
            .and_then(|lease| lease.expires_at)
            .filter(|expires| *expires > now);
        if let Some(lease_expires_at) = active_lease {
            // A holder whose heartbeat stopped is gone: take its claim now
            // rather than when the lease expires.
            let dead_after = self.holder_dead_after();
            match (holder, holder_beat) {
                (Some(holder), Some(beat)) if beat + dead_after <= now => {
                    self.reap_dead(&holder).await?;
                }
                (_, Some(beat)) => {
                    return Ok(EnsureAttempt::Busy {
                        lease_expires_at: lease_expires_at.min(beat + dead_after),
                    })
                }
                _ => return Ok(EnsureAttempt::Busy { lease_expires_at }),
            }
        }
        match self.claim(tenant, self.claim_lease()).await? {
            ClaimOutcome::Linked(customer_id) => Ok(EnsureAttempt::Done(EnsuredCustomer {
                customer_id,
                created: false,
                adopted: false,
            })),
            ClaimOutcome::Claimed(claim) => self
                .create_under_claim(tenant, claim, row.as_ref(), hints, actor)
                .await
                .map(EnsureAttempt::Done),
            ClaimOutcome::Busy { lease_expires_at } => Ok(EnsureAttempt::Busy { lease_expires_at }),
        }
    }

    fn holder_dead_after(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.database.holder_dead_after()).unwrap_or_default()
    }

    /// Takes back what `holder` held if its heartbeat is still silent
    /// (another process may have reaped it first).
    async fn reap_dead(&self, holder: &str) -> Result<(), DbError> {
        let (holder, dead_after) = (holder.to_owned(), self.holder_dead_after());
        let reaped = db::interact(&self.pool, move |conn| {
            let now = Utc::now().naive_utc();
            Ok(presence::reap(conn, &holder, now - dead_after, now)?)
        })
        .await?;
        if let Some(reaped) = reaped {
            tracing::info!(
                instance = %reaped.instance,
                customer_claims = reaped.customer_claims,
                jobs = reaped.jobs,
                "the holder of a creation claim stopped beating: took back its leases"
            );
            for tenant in &reaped.subscription_locks {
                if let Ok(tenant) = TenantId::parse(tenant) {
                    self.lock_waiters.wake(&tenant);
                }
            }
        }
        Ok(())
    }

    fn claim_lease(&self) -> Duration {
        Duration::from_secs(self.settings.billing.customer_claim_ttl_seconds.max(1))
    }

    /// How long a caller keeps coming back to a tenant another creator holds:
    /// the holder's whole lease, its Stripe budget, and one more lease for a
    /// successor's recovery.
    pub(crate) fn claim_patience(&self) -> Duration {
        self.claim_lease() * 2 + self.stripe.policy().worst_case()
    }

    pub(super) async fn read_row(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<TenantRecord>, DbError> {
        let tenant = tenant.clone();
        db::interact(&self.pool, move |conn| Ok(tenants::find(conn, &tenant)?)).await
    }

    async fn claim(&self, tenant: &TenantId, lease: Duration) -> Result<ClaimOutcome, DbError> {
        let key = tenant.clone();
        let fresh_token = uuid::Uuid::new_v4().simple().to_string();
        let holder = self.instance.clone();
        self.interact_writing(tenant, move |conn| {
            let now = Utc::now().naive_utc();
            let lease_until = now + chrono::Duration::from_std(lease).unwrap_or_default();
            Ok(leases::claim_customer_creation(
                conn,
                &key,
                now,
                lease_until,
                &fresh_token,
                &holder,
            )?)
        })
        .await
    }

    async fn create_under_claim(
        &self,
        tenant: &TenantId,
        claim: CustomerClaim,
        row: Option<&TenantRecord>,
        hints: &CustomerHints,
        actor: &Actor<'_>,
    ) -> Result<EnsuredCustomer, BillingError> {
        let params = CustomerParams {
            tenant_id: tenant.to_string(),
            email: hints
                .email
                .as_ref()
                .map(|e| e.to_string())
                .or_else(|| row.and_then(|r| r.billing_email.clone()))
                .or_else(|| actor.email.map(|e| e.to_string())),
            name: hints
                .name
                .clone()
                .or_else(|| row.and_then(|r| r.billing_name.clone())),
            address: row
                .map(|r| super::state::address(&r.address))
                .filter(|a| !a.is_empty()),
        };
        let result = self.create_or_adopt(tenant, &claim, &params).await;
        match result {
            Ok((customer, how)) => self.record(tenant, &customer, how, actor).await,
            Err(failure) => {
                self.release(tenant, &claim.token).await;
                self.audit(
                    tenant,
                    actor,
                    "customer.create",
                    "failed",
                    Some(failure.to_string()),
                )
                .await;
                Err(failure.into())
            }
        }
    }

    /// Talks to Stripe only; the database is not touched here.
    async fn create_or_adopt(
        &self,
        tenant: &TenantId,
        claim: &CustomerClaim,
        params: &CustomerParams,
    ) -> Result<(StripeCustomer, &'static str), StripeFailure> {
        if claim.recovering {
            if let Some(found) = self.find_existing(tenant, claim.started_at).await? {
                return Ok((found, "adopted"));
            }
        }
        let key = ["customer", tenant.as_str(), claim.token.as_str()];
        match self.stripe.create_customer(params, &key).await {
            Ok(customer) => Ok((customer, "created")),
            Err(StripeFailure::IdempotencyMismatch) => {
                // The key was used with other parameters (the profile changed
                // between attempts), so Stripe did process that first request.
                if let Some(found) = self.find_existing(tenant, claim.started_at).await? {
                    return Ok((found, "adopted"));
                }
                // It did not create a customer: a fresh key is safe.
                let retry_token = format!("{}-r", claim.token);
                let key = ["customer", tenant.as_str(), retry_token.as_str()];
                let customer = self.stripe.create_customer(params, &key).await?;
                Ok((customer, "created"))
            }
            Err(other) => Err(other),
        }
    }

    async fn find_existing(
        &self,
        tenant: &TenantId,
        claim_started_at: NaiveDateTime,
    ) -> Result<Option<StripeCustomer>, StripeFailure> {
        let since = claim_started_at.and_utc().timestamp() - RECOVERY_LOOKBACK_SECONDS;
        let mut found = self
            .stripe
            .find_customers_for_tenant(tenant.as_str(), since)
            .await?;
        if found.len() > 1 {
            tracing::error!(
                tenant_id = %tenant,
                count = found.len(),
                "several Stripe customers carry this tenant; adopting the oldest, run `reconcile`"
            );
        }
        Ok(if found.is_empty() {
            None
        } else {
            Some(found.remove(0))
        })
    }

    async fn record(
        &self,
        tenant: &TenantId,
        customer: &StripeCustomer,
        how: &'static str,
        actor: &Actor<'_>,
    ) -> Result<EnsuredCustomer, BillingError> {
        let key = tenant.clone();
        let customer_id = customer.id.clone();
        let actor_id = actor.user_id.to_owned();
        let request_id = actor.request_id.map(str::to_owned);
        let outcome = self
            .interact_writing(tenant, move |conn| {
                let now = Utc::now().naive_utc();
                Ok(tenants::record_customer(
                    conn,
                    &key,
                    &customer_id,
                    now,
                    |conn, outcome| {
                        let (action, result) = match outcome {
                            RecordOutcome::Recorded => (format!("customer.{how}"), "ok"),
                            RecordOutcome::AlreadyLinked(_) => {
                                (format!("customer.{how}"), "superseded")
                            }
                        };
                        audit::append(
                            conn,
                            &audit::AuditEntry {
                                tenant: &key,
                                actor: &actor_id,
                                request_id: request_id.as_deref(),
                                action: &action,
                                outcome: result,
                                detail: Some(
                                    serde_json::json!({ "stripe_customer_id": customer_id })
                                        .to_string(),
                                ),
                            },
                        )
                    },
                )?)
            })
            .await?;
        match outcome {
            RecordOutcome::Recorded => Ok(EnsuredCustomer {
                customer_id: customer.id.clone(),
                created: true,
                adopted: how == "adopted",
            }),
            RecordOutcome::AlreadyLinked(existing) => {
                if existing != customer.id {
                    tracing::error!(
                        tenant_id = %tenant,
                        linked = %existing,
                        extra = %customer.id,
                        "a second Stripe customer exists for this tenant; run `reconcile`"
                    );
                }
                Ok(EnsuredCustomer {
                    customer_id: existing,
                    created: false,
                    adopted: false,
                })
            }
        }
    }

    async fn release(&self, tenant: &TenantId, token: &str) {
        let key = tenant.clone();
        let token = token.to_owned();
        let released = db::interact(&self.pool, move |conn| {
            Ok(leases::release_customer_claim(conn, &key, &token)?)
        })
        .await;
        if let Err(error) = released {
            // The lease then lapses on its own.
            tracing::warn!(error = %error, "could not release the customer creation lease");
        }
    }
}
