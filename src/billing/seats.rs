//! `PUT …/billing/seats`: the seat count of a per-seat plan, prorated at once.
//!
//! The quantity is absolute, so the last answer wins and a retry is
//! harmless. Concurrent changes of one tenant are serialised across
//! instances by the subscription write lock (no transaction held while
//! Stripe is called; writes keyed by the lock's token, so a retry replays).
//! Within an instance they are also *combined*: a burst (an import adding 40
//! members, each join sending the new count) queues behind the one being
//! applied, and the next turn applies only the newest count queued, answering
//! every call it covers. Stripe sees one write per turn instead of one per
//! call, and the quantity still ends at the count of the call answered last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::subscription_lock::SubscriptionLock;
use super::{Actor, Billing, BillingError, BillingState};
use crate::domain::{is_paying, TenantId};
use crate::stripe::{ItemChange, Proration, SubscriptionUpdate};

/// The seat changes of this instance waiting per tenant.
#[derive(Default)]
pub(super) struct SeatQueue {
    tickets: AtomicU64,
    slots: Mutex<HashMap<TenantId, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    /// The newest request queued: (ticket, quantity).
    newest: Mutex<(u64, u64)>,
    /// Held while a turn applies; remembers what the last turn covered.
    turn: tokio::sync::Mutex<Covered>,
}

#[derive(Default)]
struct Covered {
    /// Every request with a ticket up to this one was answered by `state`.
    through: u64,
    state: Option<BillingState>,
}

impl SeatQueue {
    fn slot(&self, tenant: &TenantId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(tenant.clone()).or_default().clone()
    }

    /// Drops the tenant's slot once nobody waits on it (the map holds one
    /// reference, the caller another).
    fn release(&self, tenant: &TenantId, slot: Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&slot) == 2 {
            slots.remove(tenant);
        }
    }
}

impl Billing {
    /// Sets the seat count of the tenant's per-seat plan (SPEC §7); answers
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

        let slot = self.seat_queue.slot(tenant);
        let ticket = self.seat_queue.tickets.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut newest = slot.newest.lock().unwrap_or_else(|e| e.into_inner());
            if ticket > newest.0 {
                *newest = (ticket, quantity);
            }
        }
        let result = async {
            let mut turn = slot.turn.lock().await;
            if turn.through >= ticket {
                if let Some(state) = &turn.state {
                    return Ok(state.clone());
                }
            }
            let (newest, quantity) = *slot.newest.lock().unwrap_or_else(|e| e.into_inner());
            let state = self.apply_seats(tenant, quantity, actor).await?;
            *turn = Covered {
                through: newest,
                state: Some(state.clone()),
            };
            Ok(state)
        }
        .await;
        self.seat_queue.release(tenant, slot);
        result
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

    async fn apply_seats(
        &self,
        tenant: &TenantId,
        quantity: u64,
        actor: &Actor<'_>,
    ) -> Result<BillingState, BillingError> {
        let lock = self.lock_subscription(tenant).await?;
        let result = self
            .apply_seats_locked(tenant, quantity, actor, &lock)
            .await;
        self.unlock(lock).await;
        self.audit_failed_write(tenant, actor, "subscription.seats", &result)
            .await;
        result?;
        Ok(self.fresh_state(tenant).await?)
    }

    async fn apply_seats_locked(
        &self,
        tenant: &TenantId,
        quantity: u64,
        actor: &Actor<'_>,
        lock: &SubscriptionLock,
    ) -> Result<(), BillingError> {
        let row = self.read_row(tenant).await?;
        let Some(subscription_id) = row.and_then(|r| r.subscription_id) else {
            return Err(BillingError::NoSubscription);
        };
        // Decide on Stripe's state, read under the lock.
        let subscription = self.stripe.retrieve_subscription(&subscription_id).await?;
        let schedule = match &subscription.schedule_id {
            Some(id) => Some(self.stripe.retrieve_schedule(id).await?),
            None => None,
        };
        let current = self.snapshot(&subscription, schedule.as_ref());
        if !current.is_paying() {
            self.store_answer(tenant, &current, actor, "subscription.sync", false)
                .await?;
            return Err(BillingError::NoSubscription);
        }
        self.check_seats(&current.plan, quantity)?;
        let (Some(item_id), Some(price_id)) =
            (subscription.item_id.clone(), subscription.price_id.clone())
        else {
            return Err(BillingError::NotPerSeat);
        };
        if subscription.quantity == Some(quantity) {
            // Already so at Stripe (a retry, or the count did not change).
            return self
                .store_answer(tenant, &current, actor, "subscription.sync", false)
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
        self.store_answer(tenant, &answer, actor, "subscription.seats", true)
            .await
    }
}
