//! `POST …/billing/subscription/change`, `…/cancel` and `…/resume`.
//!
//! An upgrade takes effect at once with the prorated difference invoiced at
//! once; a downgrade to a paid plan waits for the period's end through a
//! Stripe subscription schedule (never a local timer); `free` cancels at the
//! period's end. Each runs under the tenant's subscription write lock,
//! decides on the subscription as Stripe has it now (read under the lock),
//! sends each write under an idempotency key of this intent, and stores
//! Stripe's answer (audited), never the request.

use std::collections::HashMap;

use chrono::Utc;

use super::subscription_lock::SubscriptionLock;
use super::{Actor, Billing, BillingError, BillingState};
use crate::db::seat_requests::{self, SeatSeq};
use crate::db::subscriptions::{self, Observation, SubscriptionSnapshot};
use crate::domain::{is_paying, Currency, Plan, PlanCatalog, PlanChange, PlanCode};
use crate::stripe::{
    ItemChange, MeteredChange, PhaseSpec, Proration, StripeFailure, StripeSchedule,
    StripeSubscription, SubscriptionUpdate,
};

/// `{plan, quantity?}`, validated: the plan exists, and `quantity` is only
/// set for a per-seat plan, within its seat limit.
#[derive(Debug, Clone)]
pub struct PlanChangeRequest {
    pub plan: PlanCode,
    pub quantity: Option<u64>,
    /// If given, it must be the tenant's (fixed) currency: 409 otherwise.
    pub currency: Option<Currency>,
}

/// A paying subscription as Stripe has it now, read under the write lock.
pub(super) struct LiveSubscription {
    pub subscription: StripeSubscription,
    pub schedule: Option<StripeSchedule>,
    /// Both, as they are stored.
    pub snapshot: SubscriptionSnapshot,
}

/// What the admin asked for.
#[derive(Debug, Clone)]
enum Intent {
    Change(PlanChangeRequest),
    Cancel,
    Resume,
}

impl Intent {
    fn action(&self) -> &'static str {
        match self {
            Intent::Change(_) => "subscription.change",
            Intent::Cancel => "subscription.cancel",
            Intent::Resume => "subscription.resume",
        }
    }
}

/// One Stripe write, in the order they must happen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Drop the pending scheduled change (the subscription stays as it is).
    ReleaseSchedule,
    Update(SubscriptionUpdate),
    /// Move to `price_id` (with `quantity`, and the plan's metered prices)
    /// when the current period ends.
    ScheduleAtPeriodEnd {
        price_id: String,
        quantity: Option<u64>,
        metered: Vec<String>,
    },
}

/// The metered items `target` bills with, from the subscription's: a price
/// already there stays, an item of the same meter moves to the new price,
/// a missing one is added, and items `target` does not bill are removed
/// (Stripe invoices what they accrued on the next invoice).
fn metered_changes(
    catalog: &PlanCatalog,
    subscription: &StripeSubscription,
    target: &Plan,
) -> Vec<MeteredChange> {
    let mut unused: Vec<&(String, String)> = subscription.metered_items.iter().collect();
    let mut changes = Vec::new();
    for (meter, price_id) in &target.metered_prices {
        if let Some(at) = unused.iter().position(|(_, price)| price == price_id) {
            unused.remove(at);
            continue;
        }
        let same_meter = unused
            .iter()
            .position(|(_, price)| catalog.meter_of_metered_price(price) == Some(meter.as_str()));
        match same_meter {
            Some(at) => {
                let (item_id, _) = unused.remove(at);
                changes.push(MeteredChange::Replace {
                    item_id: item_id.clone(),
                    price_id: price_id.clone(),
                });
            }
            None => changes.push(MeteredChange::Add {
                price_id: price_id.clone(),
            }),
        }
    }
    changes.extend(
        unused
            .into_iter()
            .map(|(item_id, _)| MeteredChange::Remove {
                item_id: item_id.clone(),
            }),
    );
    changes
}

/// How the target plan is billed: its price in the subscription's currency,
/// and whether automatic tax stays on.
struct Billed<'a> {
    price_of: &'a dyn Fn(&Plan) -> Option<String>,
    automatic_tax: bool,
}

/// `decide` with the plans' main prices and no tax.
#[cfg(test)]
fn decide(
    catalog: &PlanCatalog,
    subscription: &StripeSubscription,
    current: &SubscriptionSnapshot,
    intent: &Intent,
) -> Vec<Step> {
    let price_of = |plan: &Plan| plan.price_id.clone();
    let billed = Billed {
        price_of: &price_of,
        automatic_tax: false,
    };
    decide_billed(catalog, subscription, current, intent, &billed)
}

/// The writes that carry `intent` out from `current` (none: nothing to do).
fn decide_billed(
    catalog: &PlanCatalog,
    subscription: &StripeSubscription,
    current: &SubscriptionSnapshot,
    intent: &Intent,
    billed: &Billed<'_>,
) -> Vec<Step> {
    let scheduled = current.schedule_id.is_some();
    let cancel_pending = subscription.cancel_at_period_end;
    let cancel = |cancel: bool| SubscriptionUpdate {
        cancel_at_period_end: Some(cancel),
        ..SubscriptionUpdate::default()
    };
    let mut steps = Vec::new();
    let request = match intent {
        Intent::Resume => {
            if cancel_pending {
                steps.push(Step::Update(cancel(false)));
            }
            return steps;
        }
        Intent::Cancel => None,
        Intent::Change(request) if request.plan.is_free() => None,
        Intent::Change(request) => Some(request),
    };
    let Some(request) = request else {
        // Cancel, or change to free: at the period's end. A pending paid
        // downgrade gives way (a schedule would not let the cancel through).
        if !cancel_pending {
            if scheduled {
                steps.push(Step::ReleaseSchedule);
            }
            steps.push(Step::Update(cancel(true)));
        }
        return steps;
    };
    let Some(target) = catalog.get(request.plan.as_str()) else {
        return steps;
    };
    let Some(price_id) = (billed.price_of)(target) else {
        return steps;
    };
    let current_is_per_seat = catalog.get(&current.plan).is_some_and(|p| p.per_seat);
    let quantity = target.per_seat.then(|| {
        request
            .quantity
            .or(current
                .seats
                .filter(|_| current_is_per_seat)
                .map(|s| s as u64))
            .unwrap_or(1)
    });
    match catalog.change(&current.plan, &target.id) {
        PlanChange::Current => {
            // The current plan while a change is pending removes the change.
            if scheduled {
                steps.push(Step::ReleaseSchedule);
            }
            if cancel_pending {
                steps.push(Step::Update(cancel(false)));
            }
        }
        PlanChange::Upgrade => {
            if scheduled {
                steps.push(Step::ReleaseSchedule);
            }
            let Some(item_id) = subscription.item_id.clone() else {
                return steps;
            };
            steps.push(Step::Update(SubscriptionUpdate {
                item: Some(ItemChange {
                    item_id,
                    price_id,
                    quantity,
                }),
                proration: Some(Proration::AlwaysInvoice),
                cancel_at_period_end: cancel_pending.then_some(false),
                metadata: HashMap::from([("plan".to_owned(), target.id.clone())]),
                automatic_tax: billed.automatic_tax.then_some(true),
                metered: metered_changes(catalog, subscription, target),
            }));
        }
        PlanChange::Downgrade => {
            let already_pending = current.pending_plan.as_deref() == Some(target.id.as_str())
                && (request.quantity.is_none()
                    || request.quantity == current.seats.map(|s| s as u64));
            if already_pending && scheduled {
                return steps;
            }
            if cancel_pending {
                steps.push(Step::Update(cancel(false)));
            }
            steps.push(Step::ScheduleAtPeriodEnd {
                price_id,
                quantity,
                metered: target.metered_price_ids(),
            });
        }
    }
    steps
}

impl Billing {
    /// Changes the tenant's plan (README, Endpoints; docs/ARCHITECTURE.md,
    /// "Subscription state"); answers the stored state after.
    pub async fn change_plan(
        &self,
        tenant: &crate::domain::TenantId,
        request: PlanChangeRequest,
        actor: &Actor<'_>,
    ) -> Result<BillingState, BillingError> {
        self.write_subscription(tenant, Intent::Change(request), actor)
            .await
    }

    /// Cancels at the period's end; access continues until then.
    pub async fn cancel_subscription(
        &self,
        tenant: &crate::domain::TenantId,
        actor: &Actor<'_>,
    ) -> Result<BillingState, BillingError> {
        self.write_subscription(tenant, Intent::Cancel, actor).await
    }

    /// Undoes a cancel (a pending change to free); 409 once it has ended.
    pub async fn resume_subscription(
        &self,
        tenant: &crate::domain::TenantId,
        actor: &Actor<'_>,
    ) -> Result<BillingState, BillingError> {
        self.write_subscription(tenant, Intent::Resume, actor).await
    }

    async fn write_subscription(
        &self,
        tenant: &crate::domain::TenantId,
        intent: Intent,
        actor: &Actor<'_>,
    ) -> Result<BillingState, BillingError> {
        // Refusals the stored state decides come before the lock and Stripe.
        if let Intent::Change(request) = &intent {
            let state = self.fresh_state(tenant).await?;
            super::sessions::fixed_currency(&state, request.currency.as_ref())?;
            if !request.plan.is_free() {
                self.check_tax_location(&state)?;
            }
        }
        let lock = self.lock_subscription(tenant).await?;
        let result = self.write_locked(tenant, &intent, actor, &lock).await;
        self.unlock(lock).await;
        self.audit_failed_write(tenant, actor, intent.action(), &result)
            .await;
        result?;
        Ok(self.fresh_state(tenant).await?)
    }

    async fn write_locked(
        &self,
        tenant: &crate::domain::TenantId,
        intent: &Intent,
        actor: &Actor<'_>,
        lock: &SubscriptionLock,
    ) -> Result<(), BillingError> {
        let row = self.read_row(tenant).await?;
        let known = row
            .as_ref()
            .and_then(|r| r.subscription().subscription_id.clone());
        let live = row
            .as_ref()
            .and_then(|r| r.subscription().status.as_deref())
            .is_some_and(is_paying);
        let ended = || match intent {
            Intent::Resume if known.is_some() => BillingError::SubscriptionEnded,
            _ => BillingError::NoSubscription,
        };
        let LiveSubscription {
            subscription,
            schedule,
            snapshot: current,
        } = self
            .read_under_lock(tenant, known.clone().filter(|_| live), actor, ended)
            .await?;
        let subscription_id = subscription.id.clone();
        if let Intent::Change(request) = intent {
            if !request.plan.is_free() {
                let target = self.catalog().get(request.plan.as_str());
                if target.is_some_and(|t| self.price_in(t, &subscription.currency).is_none()) {
                    return Err(BillingError::NotSoldInCurrency {
                        currency: subscription.currency.clone(),
                        requested: false,
                    });
                }
            }
        }
        let currency = subscription.currency.clone();
        let price_of = |plan: &Plan| self.price_in(plan, &currency).map(|c| c.price_id);
        let billed = Billed {
            price_of: &price_of,
            automatic_tax: self.settings.billing.tax.automatic,
        };
        let steps = decide_billed(self.catalog(), &subscription, &current, intent, &billed);
        let outcome = self
            .run_steps(tenant, lock, subscription, schedule, &steps)
            .await;
        let (subscription, schedule) = match outcome {
            Ok(answer) => answer,
            Err(failure) => {
                return Err(self
                    .store_after_failed_write(tenant, &subscription_id, actor, failure)
                    .await)
            }
        };
        let answer = self.snapshot(&subscription, schedule.as_ref());
        match steps.is_empty() {
            // Nothing to write; store what was read, audited only if it repairs.
            true => self.store_answer(tenant, &answer, actor, "subscription.sync", false, None),
            false => self.store_answer(tenant, &answer, actor, intent.action(), true, None),
        }
        .await?;
        Ok(())
    }

    /// Sends `steps` in order; returns the subscription and its live schedule
    /// as Stripe last answered.
    async fn run_steps(
        &self,
        tenant: &crate::domain::TenantId,
        lock: &SubscriptionLock,
        mut subscription: StripeSubscription,
        schedule: Option<StripeSchedule>,
        steps: &[Step],
    ) -> Result<(StripeSubscription, Option<StripeSchedule>), StripeFailure> {
        let mut schedule = schedule.filter(StripeSchedule::is_live);
        for (index, step) in steps.iter().enumerate() {
            let operation = format!("step{index}");
            let key = [
                "subscription",
                tenant.as_str(),
                subscription.id.as_str(),
                operation.as_str(),
                lock.token(),
            ];
            match step {
                Step::ReleaseSchedule => {
                    if let Some(live) = schedule.take() {
                        self.stripe.release_schedule(&live.id, &key).await?;
                    }
                    subscription.schedule_id = None;
                }
                Step::Update(update) => {
                    subscription = self
                        .stripe
                        .update_subscription(&subscription.id, update, &key)
                        .await?;
                }
                Step::ScheduleAtPeriodEnd {
                    price_id,
                    quantity,
                    metered,
                } => {
                    let live = match schedule.take() {
                        Some(live) => live,
                        None => {
                            let create_key = [key[0], key[1], key[2], "schedule", key[4]];
                            self.stripe
                                .create_schedule_from_subscription(&subscription.id, &create_key)
                                .await?
                        }
                    };
                    let (start, end) = live.current_phase.unwrap_or((
                        subscription.current_period_start.unwrap_or_default(),
                        subscription.current_period_end.unwrap_or_default(),
                    ));
                    let phases = [
                        PhaseSpec {
                            price_id: subscription.price_id.clone().unwrap_or_default(),
                            quantity: subscription.quantity,
                            metered: subscription
                                .metered_items
                                .iter()
                                .map(|(_, price)| price.clone())
                                .collect(),
                            start,
                            end: Some(end),
                            automatic_tax: self.settings.billing.tax.automatic,
                        },
                        PhaseSpec {
                            price_id: price_id.clone(),
                            quantity: *quantity,
                            metered: metered.clone(),
                            start: end,
                            end: None,
                            automatic_tax: self.settings.billing.tax.automatic,
                        },
                    ];
                    let updated = self
                        .stripe
                        .set_schedule_phases(&live.id, &phases, &key)
                        .await?;
                    subscription.schedule_id = Some(updated.id.clone());
                    schedule = Some(updated);
                }
            }
        }
        Ok((subscription, schedule))
    }

    /// Reads the subscription and its schedule from Stripe for a write made
    /// under the subscription lock: our copy may lag (a portal change whose
    /// webhook is still on its way). `missing()` when there is none, or it no
    /// longer pays (that state is stored first).
    pub(super) async fn read_under_lock(
        &self,
        tenant: &crate::domain::TenantId,
        subscription_id: Option<String>,
        actor: &Actor<'_>,
        missing: impl Fn() -> BillingError,
    ) -> Result<LiveSubscription, BillingError> {
        let Some(subscription_id) = subscription_id else {
            return Err(missing());
        };
        let subscription = self.stripe.retrieve_subscription(&subscription_id).await?;
        let schedule = self.schedule_of(&subscription).await?;
        let snapshot = self.snapshot(&subscription, schedule.as_ref());
        if !snapshot.is_paying() {
            self.store_answer(tenant, &snapshot, actor, "subscription.sync", false, None)
                .await?;
            return Err(missing());
        }
        Ok(LiveSubscription {
            subscription,
            schedule,
            snapshot,
        })
    }

    /// A Stripe write failed, but some writes (or the failed one itself) may
    /// have gone through: stores what Stripe has now, and answers the error.
    pub(super) async fn store_after_failed_write(
        &self,
        tenant: &crate::domain::TenantId,
        subscription_id: &str,
        actor: &Actor<'_>,
        failure: StripeFailure,
    ) -> BillingError {
        if let Ok(snapshot) = self.read_snapshot(subscription_id).await {
            let _ = self
                .store_answer(tenant, &snapshot, actor, "subscription.sync", false, None)
                .await;
        }
        failure.into()
    }

    /// Records a subscription write that failed on Stripe or the database
    /// (refusals are answered, not audited).
    pub(super) async fn audit_failed_write<T>(
        &self,
        tenant: &crate::domain::TenantId,
        actor: &Actor<'_>,
        action: &'static str,
        result: &Result<T, BillingError>,
    ) {
        if let Err(error @ (BillingError::Stripe(_) | BillingError::Database(_))) = result {
            let detail = serde_json::json!({"error": error.to_string()}).to_string();
            self.audit(tenant, actor, action, "failed", Some(detail))
                .await;
        }
    }

    /// Stores state taken from Stripe's answer (newer than any read drawn
    /// before it) and audits what changed under `action` (always, with
    /// `always_audit`: an admin's write is recorded even when its webhook
    /// stored the change first). With `carries`, a seat write's answer also
    /// marks the seat calls up to it carried, in the same transaction, and
    /// the audit entry records the count set.
    pub(super) async fn store_answer(
        &self,
        tenant: &crate::domain::TenantId,
        snapshot: &SubscriptionSnapshot,
        actor: &Actor<'_>,
        action: &'static str,
        always_audit: bool,
        carries: Option<SeatSeq>,
    ) -> Result<(), BillingError> {
        let (key, snapshot) = (tenant.clone(), snapshot.clone());
        let actor_id = actor.user_id.to_owned();
        let request_id = actor.request_id.map(str::to_owned);
        let requested = carries
            .and(snapshot.seats)
            .map(|seats| serde_json::json!({ "seats": seats }));
        self.interact_writing(tenant, move |conn| {
            let observation = Observation {
                actor: &actor_id,
                request_id: request_id.as_deref(),
                action,
                event: None,
                now: Utc::now().naive_utc(),
                authoritative: false,
                always_audit,
                requested: requested.as_ref(),
            };
            match carries {
                Some(carries) => {
                    seat_requests::store_carried(conn, &key, &snapshot, &observation, carries)?;
                }
                None => {
                    subscriptions::store_latest(conn, &key, &snapshot, &observation)?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Plan;

    fn catalog() -> PlanCatalog {
        let pro = Plan {
            price_id: Some("price_pro".into()),
            rank: 10,
            ..Plan::bare("pro", "Pro")
        };
        let team = Plan {
            price_id: Some("price_team".into()),
            rank: 20,
            per_seat: true,
            ..Plan::bare("team", "Team")
        };
        PlanCatalog::new(vec![pro, team]).unwrap()
    }

    fn on(
        plan: &str,
        price: &str,
        seats: Option<i32>,
    ) -> (StripeSubscription, SubscriptionSnapshot) {
        let subscription = StripeSubscription {
            id: "sub_1".into(),
            customer_id: "cus_1".into(),
            status: "active".into(),
            created: 0,
            item_id: Some("si_1".into()),
            price_id: Some(price.into()),
            quantity: seats.map(|s| s as u64).or(Some(1)),
            current_period_start: Some(100),
            current_period_end: Some(200),
            cancel_at_period_end: false,
            trial_start: None,
            trial_end: None,
            schedule_id: None,
            metadata: HashMap::new(),
            currency: "usd".into(),
            automatic_tax: false,
            metered_items: Vec::new(),
        };
        let snapshot = SubscriptionSnapshot {
            subscription_id: "sub_1".into(),
            customer_id: "cus_1".into(),
            status: "active".into(),
            price_id: Some(price.into()),
            plan: plan.into(),
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            trial_end: None,
            had_trial: false,
            seats,
            pending_plan: None,
            pending_plan_at: None,
            schedule_id: None,
            currency: Some("usd".into()),
        };
        (subscription, snapshot)
    }

    fn change(plan: &str, quantity: Option<u64>) -> Intent {
        Intent::Change(PlanChangeRequest {
            plan: catalog().parse(plan).unwrap(),
            quantity,
            currency: None,
        })
    }

    #[test]
    fn an_upgrade_is_one_prorated_update_keeping_the_seats() {
        let (subscription, current) = on("pro", "price_pro", None);
        let steps = decide(
            &catalog(),
            &subscription,
            &current,
            &change("team", Some(3)),
        );
        let [Step::Update(update)] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(update.proration, Some(Proration::AlwaysInvoice));
        let item = update.item.as_ref().unwrap();
        assert_eq!(
            (item.price_id.as_str(), item.quantity),
            ("price_team", Some(3))
        );
        assert_eq!(update.cancel_at_period_end, None);
    }

    #[test]
    fn a_downgrade_is_scheduled_and_repeating_it_does_nothing() {
        let (subscription, mut current) = on("team", "price_team", Some(4));
        let steps = decide(&catalog(), &subscription, &current, &change("pro", None));
        assert_eq!(
            steps,
            [Step::ScheduleAtPeriodEnd {
                price_id: "price_pro".into(),
                quantity: None,
                metered: Vec::new(),
            }]
        );
        current.pending_plan = Some("pro".into());
        current.schedule_id = Some("sub_sched_1".into());
        assert!(decide(&catalog(), &subscription, &current, &change("pro", None)).is_empty());
        // The current plan removes the pending downgrade.
        assert_eq!(
            decide(&catalog(), &subscription, &current, &change("team", None)),
            [Step::ReleaseSchedule]
        );
    }

    #[test]
    fn free_cancels_at_period_end_and_resume_undoes_it() {
        let (mut subscription, mut current) = on("pro", "price_pro", None);
        current.schedule_id = Some("sub_sched_1".into());
        let steps = decide(&catalog(), &subscription, &current, &change("free", None));
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0], Step::ReleaseSchedule);
        assert_eq!(
            decide(&catalog(), &subscription, &current, &Intent::Cancel),
            steps
        );
        assert!(decide(&catalog(), &subscription, &current, &Intent::Resume).is_empty());

        subscription.cancel_at_period_end = true;
        current.schedule_id = None;
        assert!(decide(&catalog(), &subscription, &current, &Intent::Cancel).is_empty());
        assert!(decide(&catalog(), &subscription, &current, &change("free", None)).is_empty());
        let only_update = |steps: Vec<Step>| match steps.as_slice() {
            [Step::Update(update)] => update.clone(),
            other => panic!("{other:?}"),
        };
        let resume = only_update(decide(&catalog(), &subscription, &current, &Intent::Resume));
        assert_eq!(resume.cancel_at_period_end, Some(false));
        // An upgrade while cancelling also keeps the subscription.
        let upgrade = only_update(decide(
            &catalog(),
            &subscription,
            &current,
            &change("team", None),
        ));
        assert_eq!(upgrade.cancel_at_period_end, Some(false));
        assert_eq!(upgrade.proration, Some(Proration::AlwaysInvoice));
    }

    #[test]
    fn metered_items_follow_the_target_plan() {
        let plan = |id: &str, rank, price: &str, metered: &[(&str, &str)]| Plan {
            price_id: Some(price.into()),
            rank,
            metered_prices: metered
                .iter()
                .map(|(m, p)| (m.to_string(), p.to_string()))
                .collect(),
            ..Plan::bare(id, id)
        };
        let meters = ["calls", "exports"].map(|id| crate::domain::Meter {
            id: id.into(),
            name: id.into(),
            unit: String::new(),
            aggregation: crate::domain::Aggregation::Sum,
            stripe_meter: Some(id.into()),
        });
        let catalog = PlanCatalog::with_meters(
            vec![
                plan(
                    "pro",
                    10,
                    "price_pro",
                    &[("calls", "m_pro_calls"), ("exports", "m_exports")],
                ),
                plan("team", 20, "price_team", &[("calls", "m_team_calls")]),
            ],
            meters.to_vec(),
        )
        .unwrap();
        let (mut subscription, _) = on("pro", "price_pro", None);
        subscription.metered_items = vec![
            ("si_calls".into(), "m_pro_calls".into()),
            ("si_exports".into(), "m_exports".into()),
            ("si_legacy".into(), "m_unknown".into()),
        ];
        let team = catalog.get("team").unwrap();
        assert_eq!(
            metered_changes(&catalog, &subscription, team),
            [
                MeteredChange::Replace {
                    item_id: "si_calls".into(),
                    price_id: "m_team_calls".into()
                },
                MeteredChange::Remove {
                    item_id: "si_exports".into()
                },
                MeteredChange::Remove {
                    item_id: "si_legacy".into()
                },
            ]
        );
        subscription.metered_items = vec![("si_calls".into(), "m_team_calls".into())];
        let pro = catalog.get("pro").unwrap();
        assert_eq!(
            metered_changes(&catalog, &subscription, pro),
            [
                MeteredChange::Replace {
                    item_id: "si_calls".into(),
                    price_id: "m_pro_calls".into()
                },
                MeteredChange::Add {
                    price_id: "m_exports".into()
                },
            ]
        );
        assert!(metered_changes(&catalog, &subscription, team).is_empty());
    }

    #[test]
    fn the_current_plan_with_nothing_pending_changes_nothing() {
        let (subscription, current) = on("pro", "price_pro", None);
        assert!(decide(&catalog(), &subscription, &current, &change("pro", None)).is_empty());
    }
}
