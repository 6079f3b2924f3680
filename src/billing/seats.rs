//! `PUT …/billing/seats`: the seat count of a per-seat plan, prorated at once.
//!
//! The quantity is absolute, so the last answer wins and a retry is
//! harmless. Concurrent changes of one tenant are serialised across
//! instances by the subscription write lock (no transaction held while
//! Stripe is called; writes keyed by the lock's token, so a retry replays).
//! They are also *combined*, across instances: each call records the count
//! it wants under a rising number in the tenant's row (`db::seat_requests`)
//! before it waits for the lock; the holder sends only the newest count
//! recorded and, with Stripe's answer, marks every call up to that number
//! carried. A burst (an import adding 40 members, each join sending the new
//! count, through any instance) then costs a few Stripe writes, and calls
//! already carried answer without touching Stripe or waiting for the lock.

use serde_json::json;

use super::plan_change::LiveSubscription;
use super::subscription_lock::SubscriptionLock;
use super::{Actor, Billing, BillingError, BillingState};
use crate::db::seat_requests::{self, SeatSeq};
use crate::db::{self};
use crate::domain::{is_paying, TenantId};
use crate::stripe::{ItemChange, Proration, SubscriptionUpdate};

const ACTION: &str = "subscription.seats";

impl Billing {
    /// Sets the seat count of the tenant's per-seat plan (README, Endpoints); answers
    /// the stored state after.
    pub async fn set_seats(
        &self,
        tenant: &TenantId,
        quantity: u64,
        actor: &Actor<'_>,
    ) -> Result<BillingState, BillingError> {
        // Refused before anything is queued or sent: no subscription, a flat
        // plan, a count above the plan's limit (re-checked on Stripe's state).
        let stored = self.fresh_state(tenant).await?;
        let live = stored.subscription_status.as_deref().is_some_and(is_paying);
        if !live {
            return Err(BillingError::NoSubscription);
        }
        self.check_seats(&stored.plan, quantity)?;
        let count = i32::try_from(quantity).map_err(|_| BillingError::TooManySeats {
            max: i64::from(i32::MAX),
        })?;

        let key = tenant.clone();
        let mine = db::interact(&self.pool, move |conn| {
            Ok(seat_requests::enqueue(conn, &key, count)?)
        })
        .await?;
        let key = tenant.clone();
        let lock = self
            .lock_subscription_unless(tenant, move |conn| {
                Ok(seat_requests::is_carried(conn, &key, mine)?)
            })
            .await?;
        let carried_here = match lock {
            None => false,
            Some(lock) => {
                let result = self.carry_seats(tenant, mine, actor, &lock).await;
                self.unlock(lock).await;
                self.audit_failed_write(tenant, actor, ACTION, &result)
                    .await;
                result?
            }
        };
        if !carried_here {
            // Another call's write carried this count (or a newer one).
            let detail = json!({"requested": {"seats": quantity}, "carried_by": "another call"});
            self.audit(tenant, actor, ACTION, "ok", Some(detail.to_string()))
                .await;
        }
        Ok(self.fresh_state(tenant).await?)
    }

    /// Under the lock: sends the newest recorded count, unless a write since
    /// this call was recorded has carried it already (`false`).
    async fn carry_seats(
        &self,
        tenant: &TenantId,
        mine: SeatSeq,
        actor: &Actor<'_>,
        lock: &SubscriptionLock,
    ) -> Result<bool, BillingError> {
        let key = tenant.clone();
        let queue = db::interact(&self.pool, move |conn| {
            Ok(seat_requests::queue(conn, &key)?)
        })
        .await?
        .ok_or(BillingError::NoSubscription)?;
        if queue.carried >= mine {
            return Ok(false);
        }
        let wanted = u64::try_from(queue.wanted).map_err(|_| BillingError::NoSubscription)?;
        self.apply_seats_locked(tenant, wanted, queue.newest, actor, lock)
            .await?;
        Ok(true)
    }

    fn check_seats(&self, plan: &str, quantity: u64) -> Result<(), BillingError> {
        let Some(plan) = self.catalog().get(plan).filter(|p| p.per_seat) else {
            return Err(BillingError::NotPerSeat);
        };
        match plan.max_seats() {
            Some(max) if quantity > max as u64 => Err(BillingError::TooManySeats { max }),
            _ => Ok(()),
        }
    }

    async fn apply_seats_locked(
        &self,
        tenant: &TenantId,
        quantity: u64,
        carries: SeatSeq,
        actor: &Actor<'_>,
        lock: &SubscriptionLock,
    ) -> Result<(), BillingError> {
        let row = self.read_row(tenant).await?;
        let Some(subscription_id) = row.and_then(|r| r.subscription().subscription_id.clone())
        else {
            return Err(BillingError::NoSubscription);
        };
        let Some(LiveSubscription {
            subscription,
            schedule,
            snapshot: current,
        }) = self
            .read_under_lock(tenant, &subscription_id, actor)
            .await?
        else {
            return Err(BillingError::NoSubscription);
        };
        self.check_seats(&current.plan, quantity)?;
        let (Some(item_id), Some(price_id)) =
            (subscription.item_id.clone(), subscription.price_id.clone())
        else {
            return Err(BillingError::NotPerSeat);
        };
        if subscription.quantity == Some(quantity) {
            // Already so at Stripe (a retry, or the count did not change).
            return self
                .store_answer(
                    tenant,
                    &current,
                    actor,
                    "subscription.sync",
                    false,
                    Some(carries),
                )
                .await;
        }
        let update = SubscriptionUpdate {
            item: Some(ItemChange {
                item_id,
                price_id,
                quantity: Some(quantity),
            }),
            proration: Some(Proration::AlwaysInvoice),
            ..SubscriptionUpdate::default()
        };
        let key = [
            "subscription",
            tenant.as_str(),
            subscription.id.as_str(),
            "seats",
            lock.token(),
        ];
        let answer = match self
            .stripe
            .update_subscription(&subscription.id, &update, &key)
            .await
        {
            Ok(answer) => answer,
            Err(failure) => {
                return Err(self
                    .store_after_failed_write(tenant, &subscription_id, actor, failure)
                    .await)
            }
        };
        let answer = self.snapshot(&answer, schedule.as_ref());
        self.store_answer(tenant, &answer, actor, ACTION, true, Some(carries))
            .await
    }
}
