//! Subscription updates that change the price or quantity mid-period: prorated by
//! the second and billed at once (`always_invoice`), kept pending for the next
//! invoice (`create_prorations`) or not made (`none`), and a downgrade's credit
//! carried as customer balance.

mod common;

use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::{UpdateSubscription, UpdateSubscriptionProrationBehavior};
use stripe_billing::{InvoiceBillingReason, InvoiceStatus};
use stripe_sim::SimConfig;

use common::lifecycle::{
    assert_events_parse, hand_prorate, item, period, start, subscribe, types_since, DAY, PRO, TEAM,
};

#[tokio::test]
async fn update_with_always_invoice_prorates_by_seconds_and_charges_at_once() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (_, sub) = subscribe(&sim, &client, PRO, 1, None).await;
    let (start, end, si) = period(&client, &sub).await;
    sim.advance_clock(10 * DAY);
    let at = start + 10 * DAY;
    let before = sim.events().len();

    let updated = UpdateSubscription::new(sub.as_str())
        .items(vec![item(&si, Some(TEAM), Some(3))])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .proration_date(at)
        .send(&client)
        .await
        .expect("upgrade");
    assert_eq!(updated.items.data[0].price.id.as_str(), TEAM);
    assert_eq!(updated.items.data[0].quantity, Some(3));
    assert_eq!(
        updated.items.data[0].id.as_str(),
        si,
        "the item keeps its id"
    );
    assert_eq!(updated.items.data[0].current_period_end, end, "same period");

    let invoice_id = updated
        .latest_invoice
        .unwrap()
        .id()
        .clone()
        .unwrap()
        .to_string();
    let inv = RetrieveInvoice::new(invoice_id.as_str())
        .send(&client)
        .await
        .expect("retrieve the proration invoice");
    let credit = -hand_prorate(2900, end - at, end - start);
    let charge = hand_prorate(3 * 1200, end - at, end - start);
    let amounts: Vec<i64> = inv.lines.data.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, vec![credit, charge]);
    assert_eq!(inv.total, credit + charge);
    assert_eq!(inv.amount_paid, credit + charge);
    assert_eq!(inv.status, Some(InvoiceStatus::Paid));
    assert_eq!(
        inv.billing_reason,
        Some(InvoiceBillingReason::SubscriptionUpdate)
    );
    assert!(inv
        .lines
        .data
        .iter()
        .all(|l| l.period.start == at && l.period.end == end));
    let parent = inv.parent.unwrap().subscription_details.unwrap();
    assert_eq!(parent.subscription.id().as_str(), sub);
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
    assert_events_parse(&sim);
}

#[tokio::test]
async fn create_prorations_wait_for_the_next_invoice_and_none_prorates_nothing() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, TEAM, 3, None).await;
    let (start, end, si) = period(&client, &sub).await;
    sim.advance_clock(5 * DAY);
    let at = start + 5 * DAY;
    let invoices_before = sim.invoices(&customer).len();

    // 3 → 5 seats, prorations pending: no invoice now.
    let updated = UpdateSubscription::new(sub.as_str())
        .items(vec![item(&si, None, Some(5))])
        .proration_date(at)
        .send(&client)
        .await
        .expect("seats");
    assert_eq!(updated.items.data[0].quantity, Some(5));
    assert_eq!(sim.invoices(&customer).len(), invoices_before);

    // Same price, proration none: nothing pending beyond the first change.
    UpdateSubscription::new(sub.as_str())
        .metadata(std::collections::HashMap::from([(
            "note".to_string(),
            "x".to_string(),
        )]))
        .proration_behavior(UpdateSubscriptionProrationBehavior::None)
        .send(&client)
        .await
        .expect("metadata only");

    sim.advance_clock(end - at + 1);
    let renewal = &sim.invoices(&customer)[0];
    assert_eq!(renewal["billing_reason"], "subscription_cycle");
    let amounts: Vec<i64> = renewal["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect();
    let credit = -hand_prorate(3 * 1200, end - at, end - start);
    let charge = hand_prorate(5 * 1200, end - at, end - start);
    assert_eq!(
        amounts,
        vec![credit, charge, 5 * 1200],
        "prorations, then the new period"
    );
    assert_eq!(renewal["amount_paid"], credit + charge + 5 * 1200);
    let prorated: Vec<bool> = renewal["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["parent"]["subscription_item_details"]["proration"] == true)
        .collect();
    assert_eq!(prorated, vec![true, true, false]);
    // Stripe's invoice period looks back one period; the new period is on the line.
    assert_eq!(renewal["period_start"], start);
    assert_eq!(renewal["period_end"], end);
    assert_eq!(renewal["lines"]["data"][2]["period"]["start"], end);

    // Back to one seat with `none`: the next invoice has no prorations.
    UpdateSubscription::new(sub.as_str())
        .items(vec![item(&si, None, Some(1))])
        .proration_behavior(UpdateSubscriptionProrationBehavior::None)
        .send(&client)
        .await
        .unwrap();
    sim.advance_clock(32 * DAY);
    let next = &sim.invoices(&customer)[0];
    assert_eq!(next["lines"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["amount_paid"], 1200);
    assert_events_parse(&sim);
}

#[tokio::test]
async fn a_downgrade_credit_becomes_customer_balance_for_the_next_invoice() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, TEAM, 5, None).await;
    let (start, end, si) = period(&client, &sub).await;
    sim.advance_clock(DAY);
    let at = start + DAY;
    let updated = UpdateSubscription::new(sub.as_str())
        .items(vec![item(&si, None, Some(2))])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .proration_date(at)
        .send(&client)
        .await
        .unwrap();
    let inv = RetrieveInvoice::new(updated.latest_invoice.unwrap().id().clone().unwrap())
        .send(&client)
        .await
        .unwrap();
    let net =
        -hand_prorate(6000, end - at, end - start) + hand_prorate(2400, end - at, end - start);
    assert!(net < 0);
    assert_eq!(inv.total, net);
    assert_eq!(inv.amount_due, 0, "a credit is not charged");
    assert_eq!(inv.ending_balance, Some(net));
    assert_eq!(sim.object(&customer).unwrap()["balance"], net);
    sim.advance_clock(end - at + 1);
    let renewal = &sim.invoices(&customer)[0];
    // The credit (more than a month of two seats) covers the renewal and carries on.
    assert_eq!(renewal["starting_balance"], net);
    assert_eq!(renewal["total"], 2400);
    assert_eq!(renewal["amount_due"], 0);
    assert_eq!(renewal["status"], "paid");
    assert_eq!(renewal["ending_balance"], 2400 + net);
    assert_eq!(sim.object(&customer).unwrap()["balance"], 2400 + net);
    // Once the credit is used up, the rest is charged.
    sim.advance_clock(31 * DAY);
    let third = &sim.invoices(&customer)[0];
    assert_eq!(third["starting_balance"], 2400 + net);
    assert_eq!(third["amount_due"], 2400 + 2400 + net);
    assert_eq!(third["amount_paid"], 2400 + 2400 + net);
    assert_eq!(sim.object(&customer).unwrap()["balance"], 0);
}
