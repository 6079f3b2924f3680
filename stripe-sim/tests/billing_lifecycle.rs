//! The subscription's whole life through async-stripe 1.0.0-rc.10 (which parses every
//! answer strictly): updates with proration, trials, invoices (list paging, retrieve,
//! pay, hosted page, PDF), schedules across phase boundaries, the clock, and a card
//! that declines through every retry. Amounts are checked against hand computations
//! and events against the order Stripe sends them in.

mod common;

use std::collections::HashSet;

use serde_json::{json, Value};
use stripe_billing::invoice::{ListInvoice, PayInvoice, RetrieveInvoice};
use stripe_billing::subscription::{
    RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionPaymentBehavior, UpdateSubscriptionProrationBehavior,
    UpdateSubscriptionTrialEnd,
};
use stripe_billing::subscription_schedule::{
    CancelSubscriptionSchedule, CreateSubscriptionSchedule, ReleaseSubscriptionSchedule,
    RetrieveSubscriptionSchedule, UpdateSubscriptionSchedule, UpdateSubscriptionSchedulePhases,
    UpdateSubscriptionSchedulePhasesDuration, UpdateSubscriptionSchedulePhasesDurationInterval,
    UpdateSubscriptionSchedulePhasesEndDate, UpdateSubscriptionSchedulePhasesItems,
    UpdateSubscriptionSchedulePhasesStartDate,
};
use stripe_billing::{InvoiceBillingReason, InvoiceStatus};
use stripe_billing::{
    SubscriptionScheduleEndBehavior, SubscriptionScheduleStatus, SubscriptionStatus,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_sim::{FailedPaymentAction, SimConfig, SimHandle};

const PRO: &str = "price_pro";
const TEAM: &str = "price_team";
const DAILY: &str = "price_daily";
const DAY: i64 = 86_400;

fn start(config: SimConfig) -> SimHandle {
    let mut config = config;
    for seed in [
        "price_pro:2900:usd:month",
        "price_team:1200:usd:month",
        "price_daily:100:usd:day",
    ] {
        config.prices.push(seed.parse().unwrap());
    }
    common::start_with(config)
}

/// Pays a subscription-mode checkout for a new customer; returns (customer, subscription).
async fn subscribe(
    sim: &SimHandle,
    client: &stripe::Client,
    price: &str,
    quantity: u64,
    trial_days: Option<u32>,
) -> (String, String) {
    let customer = sim.create_customer_direct(json!({"email": "owner@tenant.example"}));
    let customer = customer["id"].as_str().unwrap().to_string();
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(price.to_string());
    item.quantity = Some(quantity);
    let mut data = CreateCheckoutSessionSubscriptionData::new();
    data.trial_period_days = trial_days;
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.as_str())
        .line_items(vec![item])
        .subscription_data(data)
        .success_url("http://localhost/ok")
        .send(client)
        .await
        .expect("checkout session");
    let sub = sim.complete_checkout(session.id.as_str()).expect("paid");
    (customer, sub["id"].as_str().unwrap().to_string())
}

/// Event types oldest first, after the first `skip`.
fn types_since(sim: &SimHandle, skip: usize) -> Vec<String> {
    let mut all: Vec<Value> = sim.events();
    all.reverse();
    all.iter()
        .skip(skip)
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// Every event kept parses as async-stripe-webhook's typed object.
fn assert_events_parse(sim: &SimHandle) {
    for e in sim.events() {
        stripe_webhook::Webhook::insecure(&e.to_string())
            .unwrap_or_else(|err| panic!("event {} does not parse: {err:?}", e["type"]));
    }
}

/// `amount × remaining / total`, rounded half away from zero (written independently of
/// the simulator's integer version).
fn hand_prorate(amount: i64, remaining: i64, total: i64) -> i64 {
    (amount as f64 * remaining as f64 / total as f64).round() as i64
}

async fn period(client: &stripe::Client, sub: &str) -> (i64, i64, String) {
    let s = RetrieveSubscription::new(sub).send(client).await.unwrap();
    let item = &s.items.data[0];
    (
        item.current_period_start,
        item.current_period_end,
        item.id.to_string(),
    )
}

fn item(id: &str, price: Option<&str>, quantity: Option<u64>) -> UpdateSubscriptionItems {
    let mut item = UpdateSubscriptionItems::new();
    item.id = Some(id.to_string());
    item.price = price.map(str::to_string);
    item.quantity = quantity;
    item
}

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

#[tokio::test]
async fn invoices_page_newest_first_each_once() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, DAILY, 1, None).await;
    // Someone else's invoices must not show up.
    let (other, _) = subscribe(&sim, &client, PRO, 1, None).await;
    sim.advance_clock(24 * DAY);
    assert_eq!(sim.invoices(&customer).len(), 25);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut req = ListInvoice::new().customer(customer.as_str()).limit(10);
        if let Some(c) = &cursor {
            req = req.starting_after(c.as_str());
        }
        let page = req.send(&client).await.expect("list invoices");
        pages.push((page.data.len(), page.has_more));
        for inv in &page.data {
            seen.push((inv.id.clone().unwrap().to_string(), inv.created));
        }
        cursor = page.data.last().map(|i| i.id.clone().unwrap().to_string());
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, vec![(10, true), (10, true), (5, false)]);
    let ids: HashSet<&String> = seen.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 25, "each invoice once");
    assert!(seen.windows(2).all(|w| w[0].1 > w[1].1), "newest first");
    let expected: Vec<String> = sim
        .invoices(&customer)
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        seen.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        expected
    );

    // Backwards from the oldest with ending_before.
    let oldest = &seen[24].0;
    let back = ListInvoice::new()
        .customer(customer.as_str())
        .ending_before(oldest.as_str())
        .limit(3)
        .send(&client)
        .await
        .unwrap();
    let back_ids: Vec<String> = back
        .data
        .iter()
        .map(|i| i.id.clone().unwrap().to_string())
        .collect();
    assert_eq!(
        back_ids,
        vec![seen[21].0.clone(), seen[22].0.clone(), seen[23].0.clone()]
    );
    assert!(back.has_more);

    // Filters: subscription, status.
    let by_sub = ListInvoice::new()
        .subscription(sub.as_str())
        .status(InvoiceStatus::Paid)
        .limit(100)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(by_sub.data.len(), 25);
    let open = ListInvoice::new()
        .status(InvoiceStatus::Open)
        .send(&client)
        .await
        .unwrap();
    assert!(open.data.is_empty());
    let others = ListInvoice::new()
        .customer(other.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(others.data.len(), 1);
    let all = sim.invoices(&customer);
    let reasons: Vec<&str> = all
        .iter()
        .rev()
        .take(2)
        .map(|i| i["billing_reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["subscription_create", "subscription_cycle"]);
    // Numbers follow the customer's own sequence.
    let numbers: Vec<String> = sim
        .invoices(&customer)
        .iter()
        .rev()
        .map(|i| i["number"].as_str().unwrap().to_string())
        .collect();
    assert!(
        numbers[0].ends_with("-0001") && numbers[24].ends_with("-0025"),
        "{numbers:?}"
    );
}

#[tokio::test]
async fn hosted_invoice_page_and_a_real_pdf() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, _) = subscribe(&sim, &client, TEAM, 2, None).await;
    let inv = &sim.invoices(&customer)[0];
    let id = inv["id"].as_str().unwrap();
    let typed = RetrieveInvoice::new(id).send(&client).await.unwrap();
    let hosted = typed.hosted_invoice_url.unwrap();
    let pdf_url = typed.invoice_pdf.unwrap();
    assert!(hosted.starts_with(&sim.base_url()));

    let http = reqwest::Client::new();
    let page = http.get(&hosted).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(inv["number"].as_str().unwrap()));
    assert!(
        html.contains("2 × price_team (at $12.00 / month)"),
        "{html}"
    );
    assert!(html.contains("$24.00"));

    let pdf = http.get(&pdf_url).send().await.unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert_valid_pdf(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&format!("(Invoice {}) Tj", inv["number"].as_str().unwrap())));
    assert!(text.contains("$24.00"));
}

/// Structural check a PDF reader relies on: header, trailer, and every
/// cross-reference offset pointing at its object.
fn assert_valid_pdf(bytes: &[u8]) {
    assert!(bytes.starts_with(b"%PDF-1."));
    let text = String::from_utf8_lossy(bytes);
    assert!(text.trim_end().ends_with("%%EOF"));
    let tail = text.rsplit("startxref").next().unwrap();
    let xref: usize = tail.split_whitespace().next().unwrap().parse().unwrap();
    assert!(bytes[xref..].starts_with(b"xref\n"));
    let table = std::str::from_utf8(&bytes[xref..]).unwrap();
    let mut rows = table.lines().skip(1);
    let header: Vec<usize> = rows
        .next()
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    for (n, row) in rows.take(header[1]).enumerate().skip(1) {
        let offset: usize = row[..10].parse().unwrap();
        assert!(
            bytes[offset..].starts_with(format!("{n} 0 obj").as_bytes()),
            "xref entry {n}"
        );
    }
    assert!(text.contains("/Type /Catalog"));
}

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
async fn the_clock_processes_every_boundary_in_order() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub) = subscribe(&sim, &client, PRO, 1, None).await;
    let (_, end0, _) = period(&client, &sub).await;
    let (_, ending) = {
        let c = sim.create_customer_direct(json!({"email": "b@x.example"}));
        let c = c["id"].as_str().unwrap().to_string();
        let s = sim
            .complete_checkout(
                CreateCheckoutSession::new()
                    .mode(CheckoutSessionMode::Subscription)
                    .customer(c.as_str())
                    .line_items(vec![{
                        let mut i = CreateCheckoutSessionLineItems::new();
                        i.price = Some(PRO.into());
                        i
                    }])
                    .success_url("http://localhost/ok")
                    .send(&client)
                    .await
                    .unwrap()
                    .id
                    .as_str(),
            )
            .unwrap();
        (c, s["id"].as_str().unwrap().to_string())
    };
    UpdateSubscription::new(ending.as_str())
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .unwrap();

    sim.advance_clock(100 * DAY);
    let invoices = sim.invoices(&customer);
    assert_eq!(invoices.len(), 4, "the first, then three renewals");
    // Consecutive periods, each renewal starting where the previous one ended.
    let starts: Vec<i64> = invoices
        .iter()
        .rev()
        .skip(1)
        .map(|i| i["lines"]["data"][0]["period"]["start"].as_i64().unwrap())
        .collect();
    assert_eq!(starts[0], end0);
    let ends: Vec<i64> = invoices
        .iter()
        .rev()
        .map(|i| i["lines"]["data"][0]["period"]["end"].as_i64().unwrap())
        .collect();
    assert_eq!(&starts[..], &ends[..3]);
    // Events are created at their boundary, in time order.
    let mut events = sim.events();
    events.reverse();
    let created: Vec<i64> = events
        .iter()
        .map(|e| e["created"].as_i64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]));
    let ended = sim.object(&ending).unwrap();
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["ended_at"], end0);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "customer.subscription.deleted")
            .count(),
        1
    );
    assert_eq!(sim.invoices(ended["customer"].as_str().unwrap()).len(), 1);
}

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

/// Renews a subscription into a declined charge; returns (customer, sub, invoice, first failure).
async fn renewal_declined(
    sim: &SimHandle,
    client: &stripe::Client,
) -> (String, String, String, i64) {
    let (customer, sub) = subscribe(sim, client, PRO, 1, None).await;
    let (_, end, _) = period(client, &sub).await;
    sim.set_card_declines(&customer, true).unwrap();
    sim.advance_clock(end - sim.now() + 1);
    let inv = sim.invoices(&customer)[0].clone();
    (customer, sub, inv["id"].as_str().unwrap().to_string(), end)
}

#[tokio::test]
async fn a_declining_card_retries_3_5_7_days_then_cancels() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let before = sim.events().len();
    let (_, sub, inv, t0) = renewal_declined(&sim, &client).await;
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::PastDue);
    let i = RetrieveInvoice::new(inv.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(i.status, Some(InvoiceStatus::Open));
    assert_eq!(i.attempt_count, 1);
    assert_eq!(i.next_payment_attempt, Some(t0 + 3 * DAY));
    let renewal: Vec<String> = types_since(&sim, before)
        .into_iter()
        .skip_while(|t| t != "customer.subscription.updated")
        .collect();
    assert_eq!(
        renewal,
        [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.finalized",
            "invoice.payment_failed",
            "customer.subscription.updated"
        ]
    );

    for (attempt, next) in [(2, Some(t0 + 5 * DAY)), (3, Some(t0 + 7 * DAY))] {
        let due = RetrieveInvoice::new(inv.as_str())
            .send(&client)
            .await
            .unwrap()
            .next_payment_attempt
            .unwrap();
        sim.advance_clock(due - sim.now() - 10);
        assert_eq!(
            RetrieveInvoice::new(inv.as_str())
                .send(&client)
                .await
                .unwrap()
                .attempt_count,
            attempt - 1,
            "not before its time"
        );
        sim.advance_clock(20);
        let i = RetrieveInvoice::new(inv.as_str())
            .send(&client)
            .await
            .unwrap();
        assert_eq!(i.attempt_count, attempt);
        assert_eq!(i.next_payment_attempt, next);
    }
    let events_before = sim.events().len();
    sim.advance_clock(t0 + 7 * DAY - sim.now() + 1);
    let i = RetrieveInvoice::new(inv.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(i.attempt_count, 4);
    assert_eq!(i.next_payment_attempt, None);
    assert_eq!(i.status, Some(InvoiceStatus::Open));
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Canceled);
    assert_eq!(s.ended_at, Some(t0 + 7 * DAY));
    assert_eq!(
        types_since(&sim, events_before),
        ["invoice.payment_failed", "customer.subscription.deleted"]
    );
    let failed: Vec<Value> = sim
        .events()
        .into_iter()
        .filter(|e| e["type"] == "invoice.payment_failed")
        .collect();
    let attempts: Vec<i64> = failed
        .iter()
        .rev()
        .map(|e| e["data"]["object"]["attempt_count"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    assert_events_parse(&sim);
}

#[tokio::test]
async fn after_the_last_retry_the_subscription_can_be_marked_unpaid_and_paid_back() {
    let sim = start(SimConfig {
        after_failed_payments: FailedPaymentAction::Unpaid,
        ..SimConfig::default()
    });
    let client = common::client(&sim);
    let (customer, sub, inv, t0) = renewal_declined(&sim, &client).await;
    sim.advance_clock(t0 + 7 * DAY - sim.now() + 1);
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Unpaid);

    // Paying while the card still declines: 402, still open.
    let err = PayInvoice::new(inv.as_str()).send(&client).await;
    assert!(err.is_err(), "a declined pay is an error");
    sim.set_card_declines(&customer, false).unwrap();
    let before = sim.events().len();
    let paid = PayInvoice::new(inv.as_str())
        .send(&client)
        .await
        .expect("pay");
    assert_eq!(paid.status, Some(InvoiceStatus::Paid));
    assert_eq!(paid.attempt_count, 6);
    assert_eq!(
        types_since(&sim, before),
        [
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated"
        ]
    );
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
    let again = common::Raw::new(&sim)
        .post(&format!("/v1/invoices/{inv}/pay"), "", None)
        .await;
    assert_eq!(again.status, 400, "already paid");
}

#[tokio::test]
async fn a_retry_that_succeeds_restores_the_subscription() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub, inv, t0) = renewal_declined(&sim, &client).await;
    sim.set_card_declines(&customer, false).unwrap();
    sim.advance_clock(t0 + 3 * DAY - sim.now() + 1);
    let i = RetrieveInvoice::new(inv.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(i.status, Some(InvoiceStatus::Paid));
    assert_eq!(i.attempt_count, 2);
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
}

#[tokio::test]
async fn the_portal_pays_open_invoices() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub, inv, _) = renewal_declined(&sim, &client).await;
    let portal = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
        .customer(customer.as_str())
        .send(&client)
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(&portal.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Pay open invoices"));
    assert!(page.contains("id=\"card\">declining"));

    // Declined while the card still fails.
    let resp = http
        .post(format!("{}/pay_open_invoices", portal.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let back = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(back.ends_with("paid=0&declined=1"), "{back}");
    assert_eq!(sim.object(&inv).unwrap()["status"], "open");

    let resp = http
        .post(format!("{}/card", portal.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let resp = http
        .post(format!("{}/pay_open_invoices", portal.url))
        .send()
        .await
        .unwrap();
    let back = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(back.ends_with("paid=1&declined=0"), "{back}");
    assert_eq!(sim.object(&inv).unwrap()["status"], "paid");
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.status, SubscriptionStatus::Active);
    let page = http
        .get(format!("{}{back}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("1 invoice(s) paid."));
    assert!(!page.contains("Pay open invoices"));
}

#[tokio::test]
async fn hosted_invoice_page_pays_an_open_invoice() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let (customer, sub, inv, _) = renewal_declined(&sim, &client).await;
    sim.set_card_declines(&customer, false).unwrap();
    let url = RetrieveInvoice::new(inv.as_str())
        .send(&client)
        .await
        .unwrap()
        .hosted_invoice_url
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert!(http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("id=\"pay\""));
    let resp = http.post(format!("{url}/pay")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(sim.object(&inv).unwrap()["status"], "paid");
    assert_eq!(sim.object(&sub).unwrap()["status"], "active");
}

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
        ("items[0][price]=price_team".to_string(), "items[0][id]"),
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

#[tokio::test]
async fn card_control_over_http() {
    let sim = start(SimConfig::default());
    let raw = common::Raw::new(&sim);
    let client = common::client(&sim);
    let (customer, _) = subscribe(&sim, &client, PRO, 1, None).await;
    let set = raw
        .control(
            reqwest::Method::POST,
            &format!("/_sim/customers/{customer}/card"),
            json!({"declines": true}),
        )
        .await;
    assert_eq!(set.status, 200);
    assert_eq!(set.json, json!({"customer": customer, "declines": true}));
    let missing = raw
        .control(
            reqwest::Method::POST,
            &format!("/_sim/customers/{customer}/card"),
            json!({}),
        )
        .await;
    assert_eq!(missing.status, 400);
    let unknown = raw
        .control(
            reqwest::Method::POST,
            "/_sim/customers/cus_nope/card",
            json!({"declines": false}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    // A declining card cannot pay a checkout.
    let session = raw
        .post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={customer}&line_items[0][price]={PRO}"),
            None,
        )
        .await
        .json;
    let id = session["id"].as_str().unwrap();
    let refused = raw
        .control(
            reqwest::Method::POST,
            &format!("/_sim/checkout/{id}/complete"),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 402);
    assert_eq!(refused.json["error"]["code"], "card_declined");
    assert!(matches!(
        sim.complete_checkout(id),
        Err(stripe_sim::SimError::CardDeclined(_))
    ));
    let stats = raw
        .control(reqwest::Method::GET, "/_sim/stats", json!({}))
        .await
        .json;
    assert_eq!(stats["objects"]["invoices"], 1);
    assert_eq!(stats["objects"]["subscription_schedules"], 0);
    assert_eq!(stats["requests"]["POST /v1/checkout/sessions"], 2);
}
