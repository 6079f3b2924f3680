//! Subscription schedules: how a downgrade waits for the period's end at
//! Stripe instead of on a local timer.

use stripe_billing::subscription_schedule::{
    CreateSubscriptionSchedule, ReleaseSubscriptionSchedule, RetrieveSubscriptionSchedule,
    UpdateSubscriptionSchedule, UpdateSubscriptionSchedulePhases,
    UpdateSubscriptionSchedulePhasesAutomaticTax, UpdateSubscriptionSchedulePhasesEndDate,
    UpdateSubscriptionSchedulePhasesItems, UpdateSubscriptionSchedulePhasesStartDate,
    UpdateSubscriptionScheduleProrationBehavior,
};
use stripe_billing::SubscriptionScheduleEndBehavior;

use super::{StripeFailure, StripeGateway};

/// The part of a schedule the service reads: its phases, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSchedule {
    pub id: String,
    pub subscription_id: Option<String>,
    pub status: String,
    /// The running phase's bounds (unix seconds), while the schedule is active.
    pub current_phase: Option<(i64, i64)>,
    pub phases: Vec<SchedulePhase>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulePhase {
    pub start: i64,
    pub end: i64,
    pub price_id: Option<String>,
    pub quantity: Option<u64>,
}

impl StripeSchedule {
    /// Whether the schedule still drives its subscription.
    pub fn is_live(&self) -> bool {
        matches!(self.status.as_str(), "active" | "not_started")
    }

    /// The phase after the running one: the pending change, if any.
    pub fn next_phase(&self) -> Option<&SchedulePhase> {
        let (_, current_end) = self.current_phase?;
        self.phases.iter().find(|phase| phase.start >= current_end)
    }
}

impl From<stripe_billing::SubscriptionSchedule> for StripeSchedule {
    fn from(schedule: stripe_billing::SubscriptionSchedule) -> Self {
        StripeSchedule {
            id: schedule.id.to_string(),
            subscription_id: schedule.subscription.map(|s| s.id().to_string()),
            status: schedule.status.as_str().to_owned(),
            current_phase: schedule
                .current_phase
                .map(|phase| (phase.start_date, phase.end_date)),
            phases: schedule
                .phases
                .into_iter()
                .map(|phase| {
                    let item = phase.items.first();
                    SchedulePhase {
                        start: phase.start_date,
                        end: phase.end_date,
                        price_id: item.map(|i| i.price.id().to_string()),
                        quantity: item.and_then(|i| i.quantity),
                    }
                })
                .collect(),
        }
    }
}

/// One phase to set: a price and quantity from `start` (unix seconds) until
/// `end` (the last phase may leave it open: Stripe runs it one period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseSpec {
    pub price_id: String,
    pub quantity: Option<u64>,
    /// Metered prices beside the plan's (no quantity).
    pub metered: Vec<String>,
    pub start: i64,
    pub end: Option<i64>,
    /// Keeps automatic tax on through the phase.
    pub automatic_tax: bool,
}

impl StripeGateway {
    pub async fn retrieve_schedule(&self, id: &str) -> Result<StripeSchedule, StripeFailure> {
        let request = RetrieveSubscriptionSchedule::new(id);
        self.policy
            .run("retrieve_subscription_schedule", || {
                request.send(&self.client)
            })
            .await
            .map(StripeSchedule::from)
    }

    /// A schedule that starts as the subscription's current state (one phase).
    pub async fn create_schedule_from_subscription(
        &self,
        subscription_id: &str,
        key_parts: &[&str],
    ) -> Result<StripeSchedule, StripeFailure> {
        let request =
            CreateSubscriptionSchedule::new().from_subscription(subscription_id.to_owned());
        self.send_idempotent("create_subscription_schedule", &request, key_parts)
            .await
            .map(StripeSchedule::from)
    }

    /// Replaces the schedule's phases; it releases the subscription after the
    /// last one, so the subscription carries on at the last phase's price.
    pub async fn set_schedule_phases(
        &self,
        schedule_id: &str,
        phases: &[PhaseSpec],
        key_parts: &[&str],
    ) -> Result<StripeSchedule, StripeFailure> {
        let phases: Vec<UpdateSubscriptionSchedulePhases> = phases
            .iter()
            .map(|spec| {
                let mut item = UpdateSubscriptionSchedulePhasesItems::new();
                item.price = Some(spec.price_id.clone());
                item.quantity = spec.quantity;
                let mut items = vec![item];
                for price in &spec.metered {
                    let mut metered = UpdateSubscriptionSchedulePhasesItems::new();
                    metered.price = Some(price.clone());
                    items.push(metered);
                }
                let mut phase = UpdateSubscriptionSchedulePhases::new(items);
                phase.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(
                    spec.start,
                ));
                phase.end_date = spec
                    .end
                    .map(UpdateSubscriptionSchedulePhasesEndDate::Timestamp);
                if spec.automatic_tax {
                    phase.automatic_tax =
                        Some(UpdateSubscriptionSchedulePhasesAutomaticTax::new(true));
                }
                phase
            })
            .collect();
        let request = UpdateSubscriptionSchedule::new(schedule_id)
            .phases(phases)
            .end_behavior(SubscriptionScheduleEndBehavior::Release)
            .proration_behavior(UpdateSubscriptionScheduleProrationBehavior::None);
        self.send_idempotent("update_subscription_schedule", &request, key_parts)
            .await
            .map(StripeSchedule::from)
    }

    /// Detaches the schedule: the subscription stays as it is now, with no
    /// pending change.
    pub async fn release_schedule(
        &self,
        schedule_id: &str,
        key_parts: &[&str],
    ) -> Result<StripeSchedule, StripeFailure> {
        let request = ReleaseSubscriptionSchedule::new(schedule_id);
        self.send_idempotent("release_subscription_schedule", &request, key_parts)
            .await
            .map(StripeSchedule::from)
    }
}
