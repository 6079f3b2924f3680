//! Subscription schedules across phase boundaries: a phase ending at a period
//! end or mid-period, `end_behavior` release and cancel, and the errors of
//! releasing or canceling.

mod common;

use stripe_billing::subscription::RetrieveSubscription;
use stripe_billing::subscription_schedule::{
    CancelSubscriptionSchedule, CreateSubscriptionSchedule, ReleaseSubscriptionSchedule,
    RetrieveSubscriptionSchedule, UpdateSubscriptionSchedule, UpdateSubscriptionSchedulePhases,
    UpdateSubscriptionSchedulePhasesDuration, UpdateSubscriptionSchedulePhasesDurationInterval,
    UpdateSubscriptionSchedulePhasesEndDate, UpdateSubscriptionSchedulePhasesItems,
    UpdateSubscriptionSchedulePhasesStartDate,
};
use stripe_billing::{
    SubscriptionScheduleEndBehavior, SubscriptionScheduleStatus, SubscriptionStatus,
};
use stripe_sim::SimConfig;

use common::lifecycle::{
    assert_events_parse, hand_prorate, period, start, subscribe, types_since, DAY, PRO, TEAM,
};

#[tokio::test]
async fn a_two_phase_schedule_downgrades_once_at_the_period_end_then_releases() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, TEAM, 3, None).await;
    let (start, end, _) = period(&client, &sub).await;

    let schedule = CreateSubscriptionSchedule::new()
        .from_subscription(sub.as_str())
        .send(&client)
        .await
        .expect("schedule from subscription");
    assert_eq!(schedule.status, SubscriptionScheduleStatus::Active);
    assert_eq!(schedule.phases.len(), 1);
    assert_eq!(schedule.phases[0].start_date, start);
    assert_eq!(schedule.phases[0].end_date, end);
    assert_eq!(schedule.phases[0].items[0].quantity, Some(3));
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.schedule.unwrap().id(), &schedule.id);

    let mut keep = UpdateSubscriptionSchedulePhasesItems::new();
    keep.price = Some(TEAM.into());
    keep.quantity = Some(3);
    let mut current = UpdateSubscriptionSchedulePhases::new(vec![keep]);
    current.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(start));
    current.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(end));
    let mut lower = UpdateSubscriptionSchedulePhasesItems::new();
    lower.price = Some(PRO.into());
    lower.quantity = Some(1);
    let mut next = UpdateSubscriptionSchedulePhases::new(vec![lower]);
    next.duration = Some(UpdateSubscriptionSchedulePhasesDuration::new(
        UpdateSubscriptionSchedulePhasesDurationInterval::Month,
    ));
    let updated = UpdateSubscriptionSchedule::new(schedule.id.clone())
        .phases(vec![current, next])
        .end_behavior(SubscriptionScheduleEndBehavior::Release)
        .send(&client)
        .await
        .expect("two phases");
    assert_eq!(updated.phases.len(), 2);
    assert_eq!(updated.phases[1].start_date, end);
    let invoices_before = sim.invoices(&customer).len();
    let events_before = sim.events().len();

    sim.advance_clock(end - sim.now() + 1);
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.items.data[0].price.id.as_str(), PRO);
    assert_eq!(s.items.data[0].quantity, Some(1));
    assert_eq!(s.items.data[0].current_period_start, end);
    let invoices = sim.invoices(&customer);
    assert_eq!(invoices.len(), invoices_before + 1, "one renewal invoice");
    assert_eq!(
        invoices[0]["amount_paid"], 2900,
        "at the new price, no prorations"
    );
    assert_eq!(invoices[0]["lines"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        types_since(&sim, events_before),
        [
            "subscription_schedule.updated",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    // Exactly one price change at the boundary.
    let mut events = sim.events();
    events.reverse();
    let price_changes = events
        .iter()
        .skip(events_before)
        .filter(|e| {
            e["type"] == "customer.subscription.updated"
                && e["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"]
                    != e["data"]["object"]["items"]["data"][0]["price"]["id"]
        })
        .count();
    assert_eq!(price_changes, 1);
    let sched = RetrieveSubscriptionSchedule::new(schedule.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(sched.current_phase.unwrap().start_date, end);

    // The last phase ends a month later: released, the subscription goes on.
    let events_before = sim.events().len();
    let (_, end2, _) = period(&client, &sub).await;
    sim.advance_clock(end2 - sim.now() + 1);
    let sched = RetrieveSubscriptionSchedule::new(schedule.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(sched.status, SubscriptionScheduleStatus::Released);
    assert_eq!(sched.released_subscription.as_deref(), Some(sub.as_str()));
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert!(s.schedule.is_none());
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert_eq!(s.items.data[0].price.id.as_str(), PRO);
    assert_eq!(
        types_since(&sim, events_before)[..2],
        [
            "subscription_schedule.released",
            "customer.subscription.updated"
        ]
    );
    assert_events_parse(&sim);
}

#[tokio::test]
async fn a_phase_ending_mid_period_prorates_and_end_behavior_cancel_ends_it() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, PRO, 1, None).await;
    let (start, end, _) = period(&client, &sub).await;
    let schedule = CreateSubscriptionSchedule::new()
        .from_subscription(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    let boundary = start + 10 * DAY;
    let mut a = UpdateSubscriptionSchedulePhasesItems::new();
    a.price = Some(PRO.into());
    let mut first = UpdateSubscriptionSchedulePhases::new(vec![a]);
    first.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(start));
    first.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(boundary));
    let mut b = UpdateSubscriptionSchedulePhasesItems::new();
    b.price = Some(TEAM.into());
    b.quantity = Some(4);
    let mut second = UpdateSubscriptionSchedulePhases::new(vec![b]);
    second.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(end));
    UpdateSubscriptionSchedule::new(schedule.id.clone())
        .phases(vec![first, second])
        .end_behavior(SubscriptionScheduleEndBehavior::Cancel)
        .send(&client)
        .await
        .expect("phases");

    sim.advance_clock(boundary - sim.now() + 1);
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.items.data[0].price.id.as_str(), TEAM);
    assert_eq!(s.items.data[0].current_period_end, end, "same period");
    let invoices_now = sim.invoices(&customer).len();
    assert_eq!(invoices_now, 1, "create_prorations: nothing invoiced yet");

    sim.advance_clock(end - sim.now() + 1);
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Canceled);
    assert_eq!(s.ended_at, Some(end));
    let sched = RetrieveSubscriptionSchedule::new(schedule.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(sched.status, SubscriptionScheduleStatus::Completed);
    let types = types_since(&sim, 0);
    let tail = &types[types.len() - 2..];
    assert_eq!(
        tail,
        [
            "customer.subscription.deleted",
            "subscription_schedule.completed"
        ]
    );
    // The mid-period prorations would have joined the next invoice: there is none.
    let credit = -hand_prorate(2900, end - boundary, end - start);
    let charge = hand_prorate(4800, end - boundary, end - start);
    assert!(charge + credit > 0);
    assert_events_parse(&sim);
}

#[tokio::test]
async fn release_and_cancel_schedules_and_their_errors() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let raw = common::Raw::new(&sim);
    let (_, sub) = subscribe(&sim, &client, PRO, 1, None).await;
    let schedule = CreateSubscriptionSchedule::new()
        .from_subscription(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    // A scheduled subscription's cancellation belongs to the schedule.
    let refused = raw
        .post(
            &format!("/v1/subscriptions/{sub}"),
            "cancel_at_period_end=true",
            None,
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json["error"]["param"], "cancel_at_period_end");
    let twice = raw
        .post(
            "/v1/subscription_schedules",
            &format!("from_subscription={sub}"),
            None,
        )
        .await;
    assert_eq!(twice.status, 400);

    let released = ReleaseSubscriptionSchedule::new(schedule.id.clone())
        .send(&client)
        .await
        .expect("release");
    assert_eq!(released.status, SubscriptionScheduleStatus::Released);
    let again = raw
        .post(
            &format!("/v1/subscription_schedules/{}/release", schedule.id),
            "",
            None,
        )
        .await;
    assert_eq!(again.status, 400);
    assert!(RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap()
        .schedule
        .is_none());

    let second = CreateSubscriptionSchedule::new()
        .from_subscription(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    let canceled = CancelSubscriptionSchedule::new(second.id.clone())
        .send(&client)
        .await
        .expect("cancel");
    assert_eq!(canceled.status, SubscriptionScheduleStatus::Canceled);
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Canceled);
    let types = types_since(&sim, 0);
    assert!(types.ends_with(&[
        "subscription_schedule.canceled".to_string(),
        "customer.subscription.deleted".to_string()
    ]));
    let stats = sim.stats();
    assert_eq!(stats.objects["subscription_schedules"], 2);
    assert!(stats.objects["invoices"] >= 1);
    assert_events_parse(&sim);
}
