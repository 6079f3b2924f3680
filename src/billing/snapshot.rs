//! Turns Stripe's subscription (and its schedule) into the state we store:
//! the plan by price, seats for a per-seat plan, and the pending change.

use chrono::{DateTime, NaiveDateTime};

use super::Billing;
use crate::db::subscriptions::SubscriptionSnapshot;
use crate::domain::{is_paying, FREE};
use crate::stripe::{StripeFailure, StripeSchedule, StripeSubscription};

fn timestamp(seconds: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(seconds, 0).map(|t| t.naive_utc())
}

impl Billing {
    /// Stripe's current view of a subscription, with its schedule if it has
    /// one: one request, or two.
    pub(super) async fn read_snapshot(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, StripeFailure> {
        let subscription = self.stripe.retrieve_subscription(subscription_id).await?;
        self.snapshot_with_schedule(subscription).await
    }

    /// Reads the schedule named by `subscription`, if any, and maps both.
    pub(super) async fn snapshot_with_schedule(
        &self,
        subscription: StripeSubscription,
    ) -> Result<SubscriptionSnapshot, StripeFailure> {
        let schedule = self.schedule_of(&subscription).await?;
        Ok(self.snapshot(&subscription, schedule.as_ref()))
    }

    /// The schedule managing `subscription` (a pending downgrade), if any.
    pub(super) async fn schedule_of(
        &self,
        subscription: &StripeSubscription,
    ) -> Result<Option<StripeSchedule>, StripeFailure> {
        match &subscription.schedule_id {
            Some(id) => Ok(Some(self.stripe.retrieve_schedule(id).await?)),
            None => Ok(None),
        }
    }

    /// The plan a price stands for: a configured plan's id, else (logged) the
    /// price's own id, so an unknown price never passes for `free`.
    pub(super) fn plan_for_price(&self, price_id: &str) -> String {
        match self.catalog().by_price(price_id) {
            Some(plan) => plan.id.clone(),
            None => {
                tracing::warn!(
                    price_id,
                    "a subscription is on a price no plan configures; showing the price's id as its plan"
                );
                price_id.to_owned()
            }
        }
    }

    pub(super) fn snapshot(
        &self,
        subscription: &StripeSubscription,
        schedule: Option<&StripeSchedule>,
    ) -> SubscriptionSnapshot {
        let paying = is_paying(&subscription.status);
        let plan = match (&subscription.price_id, paying) {
            (Some(price), true) => self.plan_for_price(price),
            _ => FREE.to_owned(),
        };
        let per_seat = self.catalog().get(&plan).is_some_and(|p| p.per_seat);
        let seats = subscription
            .quantity
            .filter(|_| per_seat)
            .and_then(|q| i32::try_from(q).ok());
        let live_schedule = schedule.filter(|s| s.is_live());
        let (pending_plan, pending_plan_at) = if !paying {
            (None, None)
        } else if subscription.cancel_at_period_end {
            (
                Some(FREE.to_owned()),
                subscription.current_period_end.and_then(timestamp),
            )
        } else {
            match live_schedule.and_then(StripeSchedule::next_phase) {
                Some(next) => match &next.price_id {
                    Some(price) if Some(price) != subscription.price_id.as_ref() => {
                        (Some(self.plan_for_price(price)), timestamp(next.start))
                    }
                    _ => (None, None),
                },
                None => (None, None),
            }
        };
        SubscriptionSnapshot {
            subscription_id: subscription.id.clone(),
            customer_id: subscription.customer_id.clone(),
            status: subscription.status.clone(),
            price_id: subscription.price_id.clone(),
            plan,
            current_period_start: subscription.current_period_start.and_then(timestamp),
            current_period_end: subscription.current_period_end.and_then(timestamp),
            cancel_at_period_end: subscription.cancel_at_period_end,
            trial_end: subscription.trial_end.and_then(timestamp),
            had_trial: subscription.trial_start.is_some() || subscription.trial_end.is_some(),
            seats,
            pending_plan,
            pending_plan_at,
            schedule_id: live_schedule.map(|s| s.id.clone()),
            currency: Some(subscription.currency.clone()).filter(|c| !c.is_empty()),
        }
    }
}
