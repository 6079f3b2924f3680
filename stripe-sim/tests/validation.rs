//! Refused subscription updates change nothing: Stripe's 400s for parameters
//! the simulator rejects, and `error_if_incomplete`'s 402 on a declining card.

mod common;

use stripe_billing::subscription::{
    RetrieveSubscription, UpdateSubscription, UpdateSubscriptionPaymentBehavior,
    UpdateSubscriptionProrationBehavior,
};
use stripe_billing::SubscriptionStatus;
use stripe_sim::SimConfig;

use common::lifecycle::{item, period, start, subscribe, PRO, TEAM};

#[tokio::test]
async fn error_if_incomplete_refuses_a_declined_upgrade_and_changes_nothing() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, PRO, 1, None).await;
    let (_, _, si) = period(&client, &sub).await;
    sim.set_card_declines(&customer, true).unwrap();
    let invoices = sim.invoices(&customer).len();
    let refused = UpdateSubscription::new(sub.as_str())
        .items(vec![item(&si, Some(TEAM), Some(5))])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .payment_behavior(UpdateSubscriptionPaymentBehavior::ErrorIfIncomplete)
        .send(&client)
        .await;
    assert!(refused.is_err());
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.items.data[0].price.id.as_str(), PRO);
    assert_eq!(sim.invoices(&customer).len(), invoices);

    // allow_incomplete (the default): applied, invoice open, past_due.
    let s = UpdateSubscription::new(sub.as_str())
        .items(vec![item(&si, Some(TEAM), Some(5))])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .send(&client)
        .await
        .expect("applied");
    assert_eq!(s.status, SubscriptionStatus::PastDue);
    assert_eq!(sim.invoices(&customer)[0]["status"], "open");
}

#[tokio::test]
async fn update_validation_answers_stripe_errors() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let raw = common::Raw::new(&sim);
    let (_, sub) = subscribe(&sim, &client, PRO, 1, None).await;
    let (_, _, si) = period(&client, &sub).await;
    let path = format!("/v1/subscriptions/{sub}");
    for (body, param) in [
        (
            format!("items[0][id]={si}&proration_behavior=sometimes"),
            "proration_behavior",
        ),
        // A new item (no id) with a price the subscription already has.
        ("items[0][price]=price_pro".to_string(), "items[0][price]"),
        (
            format!("items[0][id]={si}&items[0][price]=price_nope"),
            "items[0][price]",
        ),
        (
            format!("items[0][id]={si}&items[0][quantity]=-1"),
            "items[0][quantity]",
        ),
        ("trial_end=12".to_string(), "trial_end"),
        ("trial_end=now".to_string(), "trial_end"),
        ("cancel_at=1".to_string(), "cancel_at"),
        (
            format!("items[0][id]={si}&payment_behavior=pending_if_incomplete"),
            "payment_behavior",
        ),
    ] {
        let r = raw.post(&path, &body, None).await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
        assert_eq!(r.json["error"]["type"], "invalid_request_error");
        assert_eq!(r.json["error"]["param"], param, "{body}");
    }
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.items.data[0].price.id.as_str(), PRO, "nothing changed");
}
