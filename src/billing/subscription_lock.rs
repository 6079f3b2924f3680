//! One subscription write per tenant at a time, across instances.
//!
//! A double-clicked upgrade must change the plan once and invoice one
//! proration: the second click waits for the first to finish, then decides
//! on fresh state ("already current"). Plan changes, cancel, resume and seat
//! changes all take this lock (`db::leases`: a lease in `tenant_leases`
//! set by compare-and-set, no transaction held while Stripe is
//! called). The lease outlasts the worst case of the Stripe calls made under
//! it, so it lapses only when its holder died.

use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;

use super::{Billing, BillingError};
use crate::db::leases::{self, LockOutcome};
use crate::db::{self, DbConnection, DbError, DbPool};
use crate::domain::TenantId;

/// Most Stripe requests one subscription write makes while holding the lock.
const STRIPE_CALLS_PER_WRITE: u32 = 4;

/// The right to write the tenant's subscription. Release it with
/// `Billing::unlock`; if dropped instead (a cancelled request), it is
/// released in the background.
pub(crate) struct SubscriptionLock {
    tenant: TenantId,
    token: String,
    pool: DbPool,
    released: bool,
}

impl SubscriptionLock {
    /// Unique per acquisition: Stripe idempotency keys of the writes made
    /// under this lock derive from it, so each retry of a request's write
    /// replays it, and a later request (which decides afresh) never does.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for SubscriptionLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (pool, tenant, token) = (self.pool.clone(), self.tenant.clone(), self.token.clone());
        // Best effort; otherwise the lease lapses on its own.
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_local(async move {
                let _ = db::interact(&pool, move |conn| {
                    Ok(leases::release_subscription_lock(conn, &tenant, &token)?)
                })
                .await;
            });
        }
    }
}

impl Billing {
    fn subscription_lease(&self) -> Duration {
        self.stripe.policy().worst_case() * STRIPE_CALLS_PER_WRITE + Duration::from_secs(5)
    }

    /// Takes the tenant's subscription write lock, waiting up to
    /// `billing.subscription_write_wait_ms` for another holder.
    pub(crate) async fn lock_subscription(
        &self,
        tenant: &TenantId,
    ) -> Result<SubscriptionLock, BillingError> {
        self.lock_subscription_unless(tenant, |_| Ok(false))
            .await?
            .ok_or(BillingError::WriteInProgress)
    }

    /// `lock_subscription`, but gives up waiting (`None`) as soon as `done`
    /// says another writer did this request's work (checked before each
    /// attempt, in the same database call).
    pub(crate) async fn lock_subscription_unless<F>(
        &self,
        tenant: &TenantId,
        done: F,
    ) -> Result<Option<SubscriptionLock>, BillingError>
    where
        F: Fn(&mut DbConnection) -> Result<bool, DbError> + Clone + Send + 'static,
    {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let holder = self.instance.clone();
        let lease = chrono::Duration::from_std(self.subscription_lease()).unwrap_or_default();
        let give_up_at = Instant::now() + self.settings.billing.subscription_write_wait();
        loop {
            let (key, attempt, done) = (tenant.clone(), token.clone(), done.clone());
            let holder = holder.clone();
            let outcome = db::interact(&self.pool, move |conn| {
                if done(conn)? {
                    return Ok(None);
                }
                let now = Utc::now().naive_utc();
                Ok(Some(leases::acquire_subscription_lock(
                    conn,
                    &key,
                    &attempt,
                    &holder,
                    now,
                    now + lease,
                )?))
            })
            .await?;
            let Some(outcome) = outcome else {
                return Ok(None);
            };
            match outcome {
                LockOutcome::Acquired => {
                    return Ok(Some(SubscriptionLock {
                        tenant: tenant.clone(),
                        token,
                        pool: self.pool.clone(),
                        released: false,
                    }))
                }
                LockOutcome::NoTenant => return Err(BillingError::NoSubscription),
                LockOutcome::Busy if Instant::now() >= give_up_at => {
                    return Err(BillingError::WriteInProgress)
                }
                LockOutcome::Busy => {
                    let pause = rand::thread_rng().gen_range(10..30);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
    }

    /// Releases the lock now (the next writer starts at once).
    pub(crate) async fn unlock(&self, mut lock: SubscriptionLock) {
        lock.released = true;
        let (tenant, token) = (lock.tenant.clone(), lock.token.clone());
        let released = db::interact(&self.pool, move |conn| {
            Ok(leases::release_subscription_lock(conn, &tenant, &token)?)
        })
        .await;
        if let Err(error) = released {
            tracing::warn!(error = %error, "could not release the subscription lock; its lease will lapse");
        }
    }
}
