//! One subscription write per tenant at a time, across instances.
//!
//! A double-clicked upgrade must change the plan once and invoice one
//! proration: the second click waits for the first to finish, then decides
//! on fresh state ("already current"). Plan changes, cancel, resume and seat
//! changes all take this lock (`db::leases`: a lease in `tenant_leases`
//! set by compare-and-set, no transaction held while Stripe is
//! called). The lease outlasts the worst case of the Stripe calls made under
//! it, so it lapses only when its holder died (or sooner: a holder whose
//! heartbeat stopped is reaped, `presence`).
//!
//! Waiting costs the database almost nothing. Inside an instance, waiters
//! for one tenant line up behind a local mutex, so only the first of them
//! looks at the database, and it keeps its place until it has written. It
//! *reads* the lock first and writes only when the lock is free. It is
//! woken when the lock is released: by this instance at once, by another
//! instance through PostgreSQL's LISTEN/NOTIFY (`db::listen`); a backoff
//! (20 ms doubling to 500 ms) is the fallback (SQLite's instances, a lost
//! notification).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use tokio::sync::{Notify, OwnedMutexGuard};

use super::{Billing, BillingError};
use crate::db::leases::{self, LockOutcome};
use crate::db::{self, DbConnection, DbError, DbPool};
use crate::domain::TenantId;
use crate::metrics::Metrics;

/// Most Stripe requests one subscription write makes while holding the lock.
const STRIPE_CALLS_PER_WRITE: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const LONGEST_BACKOFF: Duration = Duration::from_millis(500);

/// The waiters of one tenant on this instance.
#[derive(Default)]
struct TenantQueue {
    /// Held by the waiter that may look at the database, then by the holder.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Told when the tenant's lock was released (here or elsewhere).
    released: Notify,
}

/// Every tenant someone on this instance waits for or holds.
#[derive(Default)]
pub(crate) struct LockWaiters {
    tenants: Mutex<HashMap<TenantId, Arc<TenantQueue>>>,
}

impl LockWaiters {
    fn queue(&self, tenant: &TenantId) -> Arc<TenantQueue> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants.entry(tenant.clone()).or_default().clone()
    }

    /// `queue` is no longer used by its caller: forget it if nobody else does.
    fn leave(&self, tenant: &TenantId, queue: Arc<TenantQueue>) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        drop(queue);
        if tenants
            .get(tenant)
            .is_some_and(|q| Arc::strong_count(q) == 1)
        {
            tenants.remove(tenant);
        }
    }

    /// The tenant's lock was released: its waiter here looks again now.
    pub(crate) fn wake(&self, tenant: &TenantId) {
        let queue = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned();
        if let Some(queue) = queue {
            queue.released.notify_waiters();
        }
    }

    /// Notifications may have been missed (a listener reconnected).
    pub(crate) fn wake_all(&self) {
        let queues: Vec<_> = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for queue in queues {
            queue.released.notify_waiters();
        }
    }
}

/// The right to write the tenant's subscription. Release it with
/// `Billing::unlock`; if dropped instead (a cancelled request), it is
/// released in the background.
pub(crate) struct SubscriptionLock {
    tenant: TenantId,
    token: String,
    pool: DbPool,
    waiters: Arc<LockWaiters>,
    metrics: Arc<Metrics>,
    queue: Option<Arc<TenantQueue>>,
    /// This instance's next waiter for the tenant goes once this is dropped.
    turn: Option<OwnedMutexGuard<()>>,
    released: bool,
}

impl SubscriptionLock {
    /// Unique per acquisition: Stripe idempotency keys of the writes made
    /// under this lock derive from it, so each retry of a request's write
    /// replays it, and a later request (which decides afresh) never does.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Lets this instance's next waiter go, and wakes it.
    fn hand_on(&mut self) {
        self.turn.take();
        if let Some(queue) = self.queue.take() {
            queue.released.notify_waiters();
            self.waiters.leave(&self.tenant, queue);
        }
    }
}

impl Drop for SubscriptionLock {
    fn drop(&mut self) {
        if self.released {
            self.hand_on();
            return;
        }
        let (pool, tenant, token) = (self.pool.clone(), self.tenant.clone(), self.token.clone());
        let (waiters, metrics) = (self.waiters.clone(), self.metrics.clone());
        // Best effort; otherwise the lease lapses on its own.
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_local(async move {
                metrics.lock_write("release");
                let key = tenant.clone();
                let _ = db::interact(&pool, move |conn| {
                    Ok(leases::release_subscription_lock(conn, &key, &token)?)
                })
                .await;
                waiters.wake(&tenant);
            });
        }
        self.hand_on();
    }
}

/// What one look at the lock found.
enum Look {
    /// Another writer did this caller's work meanwhile.
    Done,
    Lock(LockOutcome),
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
    /// look, in the same database call).
    pub(crate) async fn lock_subscription_unless<F>(
        &self,
        tenant: &TenantId,
        done: F,
    ) -> Result<Option<SubscriptionLock>, BillingError>
    where
        F: Fn(&mut DbConnection) -> Result<bool, DbError> + Clone + Send + 'static,
    {
        let give_up_at = Instant::now() + self.settings.billing.subscription_write_wait();
        let queue = self.lock_waiters.queue(tenant);
        let turn =
            tokio::time::timeout_at(give_up_at.into(), queue.turn.clone().lock_owned()).await;
        let Ok(turn) = turn else {
            self.lock_waiters.leave(tenant, queue);
            // Carried while it queued here? Then it is done, not refused.
            let carried = db::interact(&self.pool, move |conn| done(conn)).await?;
            return if carried {
                Ok(None)
            } else {
                Err(BillingError::WriteInProgress)
            };
        };
        let mut lock = SubscriptionLock {
            tenant: tenant.clone(),
            token: uuid::Uuid::new_v4().simple().to_string(),
            pool: self.pool.clone(),
            waiters: self.lock_waiters.clone(),
            metrics: self.metrics.clone(),
            queue: Some(queue.clone()),
            turn: Some(turn),
            // Nothing to release in the database until it is acquired.
            released: true,
        };
        let lease = chrono::Duration::from_std(self.subscription_lease()).unwrap_or_default();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let released = queue.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let (key, attempt, done) = (tenant.clone(), lock.token.clone(), done.clone());
            let (holder, metrics) = (self.instance.clone(), self.metrics.clone());
            let look = db::interact(&self.pool, move |conn| {
                if done(conn)? {
                    return Ok(Look::Done);
                }
                let now = Utc::now().naive_utc();
                if leases::live_subscription_lock(conn, &key, now)?.is_some() {
                    return Ok(Look::Lock(LockOutcome::Busy));
                }
                metrics.lock_write("acquire");
                Ok(Look::Lock(leases::acquire_subscription_lock(
                    conn,
                    &key,
                    &attempt,
                    &holder,
                    now,
                    now + lease,
                )?))
            })
            .await?;
            match look {
                Look::Done => return Ok(None),
                Look::Lock(LockOutcome::Acquired) => {
                    lock.released = false;
                    return Ok(Some(lock));
                }
                Look::Lock(LockOutcome::NoTenant) => return Err(BillingError::NoSubscription),
                Look::Lock(LockOutcome::Busy) if Instant::now() >= give_up_at => {
                    return Err(BillingError::WriteInProgress)
                }
                Look::Lock(LockOutcome::Busy) => {
                    let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
                    let pause = backoff + Duration::from_millis(jitter);
                    tokio::select! {
                        () = &mut released => {}
                        () = tokio::time::sleep(pause) => {}
                        () = tokio::time::sleep_until(give_up_at.into()) => {}
                    }
                    backoff = (backoff * 2).min(LONGEST_BACKOFF);
                }
            }
        }
    }

    /// Releases the lock now (the next writer starts at once).
    pub(crate) async fn unlock(&self, mut lock: SubscriptionLock) {
        lock.released = true;
        let (tenant, token) = (lock.tenant.clone(), lock.token.clone());
        self.metrics.lock_write("release");
        let released = db::interact(&self.pool, move |conn| {
            Ok(leases::release_subscription_lock(conn, &tenant, &token)?)
        })
        .await;
        if let Err(error) = released {
            tracing::warn!(error = %error, "could not release the subscription lock; its lease will lapse");
        }
        lock.hand_on();
    }
}
