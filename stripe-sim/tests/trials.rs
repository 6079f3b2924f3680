//! Trials: from Checkout to their end, ended at once with `trial_end=now`, and
//! started on a paying subscription (crediting its unused time).

mod common;

use stripe_billing::subscription::{
    RetrieveSubscription, UpdateSubscription, UpdateSubscriptionTrialEnd,
};
use stripe_billing::SubscriptionStatus;
use stripe_sim::SimConfig;

use common::lifecycle::{
    assert_events_parse, hand_prorate, period, start, subscribe, types_since, DAY, PRO, TEAM,
};

#[tokio::test]
async fn a_trial_from_checkout_runs_to_its_end() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, TEAM, 3, Some(14)).await;
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Trialing);
    let (trial_start, trial_end) = (s.trial_start.unwrap(), s.trial_end.unwrap());
    assert_eq!(trial_end - trial_start, 14 * DAY);
    assert_eq!(s.items.data[0].current_period_end, trial_end);
    assert_eq!(s.items.data[0].quantity, Some(3));
    let first = &sim.invoices(&customer)[0];
    assert_eq!(first["amount_due"], 0);
    assert_eq!(first["status"], "paid");
    assert_eq!(first["billing_reason"], "subscription_create");
    assert_eq!(
        first["lines"]["data"][0]["description"],
        "Trial period for price_team"
    );
    assert_eq!(
        types_since(&sim, 1),
        [
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );

    let before = sim.events().len();
    sim.advance_clock(11 * DAY - 60);
    assert_eq!(types_since(&sim, before), Vec::<String>::new());
    sim.advance_clock(120);
    assert_eq!(
        types_since(&sim, before),
        ["customer.subscription.trial_will_end"]
    );
    let before = sim.events().len();
    sim.advance_clock(3 * DAY);
    assert_eq!(
        types_since(&sim, before),
        [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
    assert_eq!(s.items.data[0].current_period_start, trial_end);
    let after = &sim.invoices(&customer)[0];
    assert_eq!(after["billing_reason"], "subscription_cycle");
    assert_eq!(after["amount_paid"], 3 * 1200);
    let updated = sim
        .events()
        .into_iter()
        .find(|e| e["type"] == "customer.subscription.updated")
        .unwrap();
    assert_eq!(updated["data"]["previous_attributes"]["status"], "trialing");
    assert_eq!(updated["created"], trial_end, "events carry simulator time");
    assert_events_parse(&sim);
}

#[tokio::test]
async fn trial_end_now_ends_a_trial_and_bills() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, TEAM, 2, Some(14)).await;
    let before = sim.events().len();
    let s = UpdateSubscription::new(sub.as_str())
        .trial_end(UpdateSubscriptionTrialEnd::Now)
        .send(&client)
        .await
        .expect("end the trial");
    assert_eq!(s.status, SubscriptionStatus::Active);
    let ended = s.trial_end.unwrap();
    assert!(
        ended <= sim.now() && ended >= sim.now() - 5,
        "the trial ended now"
    );
    assert_eq!(s.items.data[0].current_period_start, s.trial_end.unwrap());
    assert_eq!(
        types_since(&sim, before),
        [
            "customer.subscription.trial_will_end",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    assert_eq!(sim.invoices(&customer)[0]["amount_paid"], 2400);
}

#[tokio::test]
async fn a_future_trial_end_starts_a_trial_and_credits_unused_time() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, PRO, 1, None).await;
    let (start, end, _) = period(&client, &sub).await;
    sim.advance_clock(2 * DAY);
    let trial_end = sim.now() + 20 * DAY;
    let s = UpdateSubscription::new(sub.as_str())
        .trial_end(UpdateSubscriptionTrialEnd::Timestamp(trial_end))
        .send(&client)
        .await
        .expect("start a trial");
    let at = s.trial_start.unwrap();
    assert_eq!(s.status, SubscriptionStatus::Trialing);
    assert_eq!(s.trial_end, Some(trial_end));
    assert_eq!(s.items.data[0].current_period_end, trial_end);
    // The unused paid time is credited on the invoice at the trial's end.
    sim.advance_clock(trial_end - sim.now() + 1);
    let inv = &sim.invoices(&customer)[0];
    let amounts: Vec<i64> = inv["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(
        amounts,
        vec![-hand_prorate(2900, end - at, end - start), 2900]
    );
    assert_eq!(sim.object(&sub).unwrap()["status"], "active");
    let notices = sim
        .events()
        .iter()
        .filter(|e| e["type"] == "customer.subscription.trial_will_end")
        .count();
    assert_eq!(notices, 1);
}
