//! Metered prices on subscriptions beside the licensed one: Checkout and
//! subscriptions with several items, usage billed in arrears on the renewal
//! invoice after Stripe's grace period, plan changes, cancellation at period end,
//! trials. Every object goes through async-stripe 1.0.0-rc.10.

mod common;

use serde_json::{json, Value};
use stripe_billing::billing_meter::{ListBillingMeter, RetrieveBillingMeter};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::{
    CreateSubscription, CreateSubscriptionItems, RetrieveSubscription, UpdateSubscription,
    UpdateSubscriptionItems,
};
use stripe_billing::InvoiceStatus;
use stripe_billing::PlanUsageType;
use stripe_checkout::checkout_session::{CreateCheckoutSession, CreateCheckoutSessionLineItems};
use stripe_checkout::CheckoutSessionMode;
use stripe_product::price::RetrievePrice;
use stripe_product::RecurringUsageType;
use stripe_sim::{SimConfig, SimHandle};

use common::lifecycle::{assert_events_parse, start, types_since, DAY, PRO};
use common::metering::{metered_price, record, sum_meter};

fn customer(sim: &SimHandle) -> String {
    let c = sim.create_customer_direct(json!({"email": "usage@tenant.example"}));
    c["id"].as_str().unwrap().to_string()
}

fn line_summary(invoice: &Value) -> Vec<(String, u64, i64)> {
    invoice["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["pricing"]["price_details"]["price"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                l["quantity"].as_u64().unwrap(),
                l["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A subscription to Pro plus the metered price, paid through Checkout.
async fn subscribe_metered(
    sim: &SimHandle,
    client: &stripe::Client,
    metered: &str,
) -> (String, Value) {
    let cus = customer(sim);
    let mut pro = CreateCheckoutSessionLineItems::new();
    pro.price = Some(PRO.to_string());
    pro.quantity = Some(1);
    let mut usage = CreateCheckoutSessionLineItems::new();
    usage.price = Some(metered.to_string());
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(cus.as_str())
        .line_items(vec![pro, usage])
        .success_url("http://localhost/ok")
        .send(client)
        .await
        .expect("checkout with a metered line");
    assert_eq!(session.amount_total, Some(2900), "usage is not due today");
    let sub = sim.complete_checkout(session.id.as_str()).expect("paid");
    (cus, sub)
}

#[tokio::test]
async fn renewal_bills_the_periods_usage_once_after_the_grace_period() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let meter = sum_meter(&client, "api_calls").await;
    let price = metered_price(&client, meter.id.as_str(), 2).await;
    let (cus, sub) = subscribe_metered(&sim, &client, &price).await;
    let sub_id = sub["id"].as_str().unwrap();

    let s = RetrieveSubscription::new(sub_id)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.items.data.len(), 2);
    let usage_item = &s.items.data[1];
    assert_eq!(usage_item.quantity, None, "a metered item has no quantity");
    assert_eq!(
        usage_item.price.recurring.as_ref().unwrap().usage_type,
        RecurringUsageType::Metered
    );
    assert_eq!(usage_item.plan.usage_type, PlanUsageType::Metered);
    assert_eq!(usage_item.plan.meter.as_deref(), Some(meter.id.as_str()));
    let (start, end) = (
        usage_item.current_period_start,
        usage_item.current_period_end,
    );
    let first = &sim.invoices(&cus)[0];
    assert_eq!(line_summary(first), [(PRO.to_string(), 1, 2900)]);

    record(&client, "api_calls", &cus, 100, "b1", None)
        .await
        .unwrap();
    sim.advance_clock(10 * DAY);
    record(&client, "api_calls", &cus, 250, "b2", None)
        .await
        .unwrap();

    // The period ends: the renewal is a draft until the grace period is over.
    let before = sim.events().len();
    sim.advance_clock(end - sim.now());
    let draft = sim.invoices(&cus)[0].clone();
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["billing_reason"], "subscription_cycle");
    assert_eq!(draft["automatically_finalizes_at"], end + 3600);
    assert_eq!(
        types_since(&sim, before),
        ["customer.subscription.updated", "invoice.created"]
    );
    // Usage from the period's last minute, sent after it ended, is still billed.
    record(&client, "api_calls", &cus, 5, "b3", Some(end - 30))
        .await
        .unwrap();
    // Usage of the new period waits for the next renewal.
    record(&client, "api_calls", &cus, 1000, "b4", None)
        .await
        .unwrap();
    sim.advance_clock(3600);
    let inv = RetrieveInvoice::new(draft["id"].as_str().unwrap())
        .send(&client)
        .await
        .expect("renewal parses");
    assert_eq!(inv.status, Some(InvoiceStatus::Paid));
    assert_eq!(inv.amount_paid, 2900 + 355 * 2);
    let usage = inv
        .lines
        .data
        .iter()
        .find(|l| l.quantity == Some(355))
        .expect("the metered line");
    assert_eq!(usage.amount, 710);
    assert_eq!((usage.period.start, usage.period.end), (start, end));
    assert_eq!(
        types_since(&sim, before)[2..],
        [
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    // Too late for that invoice: accepted by the meter, billed nowhere.
    record(&client, "api_calls", &cus, 7, "b5", Some(end - 10))
        .await
        .unwrap();
    assert_eq!(sim.meter_value(meter.id.as_str(), &cus, start, end), 362.0);

    // The next renewal bills the new period's usage only.
    let next_end = RetrieveSubscription::new(sub_id)
        .send(&client)
        .await
        .unwrap()
        .items
        .data[0]
        .current_period_end;
    sim.advance_clock(next_end + 3600 - sim.now());
    let renewal = &sim.invoices(&cus)[0];
    assert_eq!(renewal["status"], "paid");
    assert_eq!(
        line_summary(renewal),
        [(PRO.to_string(), 1, 2900), (price.clone(), 1000, 2000)]
    );
    assert_events_parse(&sim);
}

#[tokio::test]
async fn plan_changes_bill_usage_at_the_price_it_accrued_at() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let meter = sum_meter(&client, "api_calls").await;
    let cents2 = metered_price(&client, meter.id.as_str(), 2).await;
    let cents1 = metered_price(&client, meter.id.as_str(), 1).await;
    let cus = customer(&sim);
    let mut pro = CreateSubscriptionItems::new();
    pro.price = Some(PRO.to_string());
    let mut usage = CreateSubscriptionItems::new();
    usage.price = Some(cents2.clone());
    let sub = CreateSubscription::new()
        .customer(cus.as_str())
        .items(vec![pro, usage])
        .send(&client)
        .await
        .expect("subscription with two items");
    let (start, end) = (
        sub.items.data[1].current_period_start,
        sub.items.data[1].current_period_end,
    );
    record(&client, "api_calls", &cus, 100, "u1", None)
        .await
        .unwrap();

    // Mid-period the usage price drops: usage so far stays at 2 cents.
    sim.advance_clock(10 * DAY);
    let at = sim.now();
    let mut change = UpdateSubscriptionItems::new();
    change.id = Some(sub.items.data[1].id.to_string());
    change.price = Some(cents1.clone());
    let changed = UpdateSubscription::new(sub.id.clone())
        .items(vec![change])
        .send(&client)
        .await
        .expect("price change");
    assert_eq!(changed.items.data[1].price.id.as_str(), cents1);
    assert_eq!(
        sim.invoices(&cus).len(),
        1,
        "metered items are not prorated"
    );
    record(&client, "api_calls", &cus, 50, "u2", None)
        .await
        .unwrap();

    sim.advance_clock(end + 3600 - sim.now());
    let renewal = sim.invoices(&cus)[0].clone();
    assert_eq!(renewal["status"], "paid");
    let mut lines = line_summary(&renewal);
    lines.sort();
    let mut expected = vec![
        (PRO.to_string(), 1, 2900),
        (cents2.clone(), 100, 200),
        (cents1.clone(), 50, 50),
    ];
    expected.sort();
    assert_eq!(lines, expected);
    let periods: Vec<(i64, i64)> = renewal["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["pricing"]["price_details"]["price"] != PRO)
        .map(|l| {
            (
                l["period"]["start"].as_i64().unwrap(),
                l["period"]["end"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        periods.contains(&(start, at)) && periods.contains(&(at, end)),
        "{periods:?}"
    );

    // Removing the metered item bills what it accrued on the next invoice; a new
    // metered item counts from the moment it is added.
    let s = RetrieveSubscription::new(sub.id.clone())
        .send(&client)
        .await
        .unwrap();
    record(&client, "api_calls", &cus, 30, "u3", None)
        .await
        .unwrap();
    sim.advance_clock(60);
    let mut gone = UpdateSubscriptionItems::new();
    gone.id = Some(s.items.data[1].id.to_string());
    gone.deleted = Some(true);
    let s = UpdateSubscription::new(sub.id.clone())
        .items(vec![gone])
        .send(&client)
        .await
        .expect("remove the metered item");
    assert_eq!(s.items.data.len(), 1);
    sim.advance_clock(DAY);
    let mut again = UpdateSubscriptionItems::new();
    again.price = Some(cents2.clone());
    let s = UpdateSubscription::new(sub.id.clone())
        .items(vec![again])
        .send(&client)
        .await
        .expect("add a metered item");
    assert_eq!(s.items.data.len(), 2);
    assert_eq!(s.items.data[1].quantity, None);
    record(&client, "api_calls", &cus, 20, "u4", None)
        .await
        .unwrap();

    // Cancelled at period end: a final invoice bills the rest of the usage.
    let s = UpdateSubscription::new(sub.id.clone())
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .unwrap();
    let end = s.items.data[0].current_period_end;
    sim.advance_clock(end - sim.now());
    assert_eq!(
        RetrieveSubscription::new(sub.id.clone())
            .send(&client)
            .await
            .unwrap()
            .status,
        stripe_billing::SubscriptionStatus::Canceled
    );
    assert_eq!(sim.invoices(&cus)[0]["status"], "draft");
    sim.advance_clock(3600);
    let last = &sim.invoices(&cus)[0];
    assert_eq!(last["status"], "paid");
    let mut lines = line_summary(last);
    lines.sort();
    let mut expected = vec![(cents1.clone(), 30, 30), (cents2.clone(), 20, 40)];
    expected.sort();
    assert_eq!(lines, expected);
    assert_events_parse(&sim);
}

#[tokio::test]
async fn usage_during_a_trial_is_free_and_the_grace_period_is_configurable() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let meter = sum_meter(&client, "api_calls").await;
    let price = metered_price(&client, meter.id.as_str(), 2).await;
    let cus = customer(&sim);
    let mut pro = CreateSubscriptionItems::new();
    pro.price = Some(PRO.to_string());
    let mut usage = CreateSubscriptionItems::new();
    usage.price = Some(price.clone());
    let sub = CreateSubscription::new()
        .customer(cus.as_str())
        .items(vec![pro, usage])
        .trial_period_days(7u32)
        .send(&client)
        .await
        .unwrap();
    record(&client, "api_calls", &cus, 40, "t1", None)
        .await
        .unwrap();

    let raw = common::Raw::new(&sim);
    let r = raw
        .control(
            reqwest::Method::POST,
            "/_sim/config",
            json!({"invoice_grace_seconds": 0}),
        )
        .await;
    assert_eq!(r.json["invoice_grace_seconds"], 0);
    let trial_end = sub.trial_end.unwrap();
    sim.advance_clock(trial_end - sim.now());
    let inv = &sim.invoices(&cus)[0];
    assert_eq!(
        inv["status"], "paid",
        "no grace: finalized at the period's end"
    );
    let mut lines = line_summary(inv);
    lines.sort();
    let mut expected = vec![(PRO.to_string(), 1, 2900), (price, 40, 0)];
    expected.sort();
    assert_eq!(lines, expected, "trial usage shows, free");

    sim.set_invoice_grace_seconds(7200);
    let end = RetrieveSubscription::new(sub.id.clone())
        .send(&client)
        .await
        .unwrap()
        .items
        .data[0]
        .current_period_end;
    record(&client, "api_calls", &cus, 1, "t2", None)
        .await
        .unwrap();
    sim.advance_clock(end + 3600 - sim.now());
    assert_eq!(sim.invoices(&cus)[0]["status"], "draft");
    sim.advance_clock(3600);
    assert_eq!(sim.invoices(&cus)[0]["status"], "paid");
}

#[tokio::test]
async fn a_quantity_on_a_metered_price_is_refused() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let meter = sum_meter(&client, "api_calls").await;
    let price = metered_price(&client, meter.id.as_str(), 2).await;
    let cus = customer(&sim);
    let raw = common::Raw::new(&sim);
    let r = raw
        .post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={cus}&line_items[0][price]={PRO}&line_items[0][quantity]=1&line_items[1][price]={price}&line_items[1][quantity]=1"),
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(r.json["error"]["param"], "line_items[1][quantity]");
    let r = raw
        .post(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={price}&items[0][quantity]=3"),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["param"], "items[0][quantity]");
    // A metered price needs its meter.
    let r = raw
        .post(
            "/v1/prices",
            "currency=usd&unit_amount=2&product_data[name]=x&recurring[interval]=month&recurring[usage_type]=metered",
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["param"], "recurring[meter]");
}

#[tokio::test]
async fn included_units_are_free_through_graduated_tiers() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let meter = sum_meter(&client, "api_calls").await;
    let raw = common::Raw::new(&sim);
    let graduated = raw
        .post(
            "/v1/prices",
            &format!(
                "currency=usd&product_data[name]=API%20calls&recurring[interval]=month\
                 &recurring[usage_type]=metered&recurring[meter]={}&billing_scheme=tiered\
                 &tiers_mode=graduated&tiers[0][up_to]=1000&tiers[0][unit_amount]=0\
                 &tiers[1][up_to]=inf&tiers[1][unit_amount]=2",
                meter.id.as_str()
            ),
            None,
        )
        .await;
    assert_eq!(graduated.status, 200, "{}", graduated.json);
    let price = graduated.json["id"].as_str().unwrap().to_string();
    let parsed = RetrievePrice::new(price.as_str())
        .send(&client)
        .await
        .expect("a tiered price parses");
    assert_eq!(parsed.unit_amount, None);
    assert_eq!(parsed.tiers.as_ref().map(Vec::len), Some(2));
    let (cus, sub) = subscribe_metered(&sim, &client, &price).await;
    record(&client, "api_calls", &cus, 1500, "g1", None)
        .await
        .unwrap();
    let end = sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();
    sim.advance_clock(end + 3600 - sim.now());
    let mut lines = line_summary(&sim.invoices(&cus)[0]);
    lines.sort();
    let mut expected = vec![(PRO.to_string(), 1, 2900), (price, 1500, 1000)];
    expected.sort();
    assert_eq!(lines, expected, "1,000 included, 500 at 2 cents");
    // Tiers are simulated for metered prices only.
    let licensed = raw
        .post(
            "/v1/prices",
            "currency=usd&product_data[name]=x&recurring[interval]=month&billing_scheme=tiered\
             &tiers_mode=volume&tiers[0][up_to]=inf&tiers[0][unit_amount]=1",
            None,
        )
        .await;
    assert_eq!(licensed.status, 400);
}

#[tokio::test]
async fn seeded_metered_prices_and_meters_survive_a_reset() {
    let sim = start(SimConfig {
        metered_prices: vec![
            "price_api_calls:3:usd:month:api_calls".parse().unwrap(),
            "price_api_calls_team:2:usd:month:api_calls:5000"
                .parse()
                .unwrap(),
        ],
        ..SimConfig::default()
    });
    let client = common::client(&sim);
    for _ in 0..2 {
        let team = RetrievePrice::new("price_api_calls_team")
            .send(&client)
            .await
            .expect("seeded price with included units");
        let tiers = team.tiers.expect("graduated tiers");
        assert_eq!(
            tiers
                .iter()
                .map(|t| (t.up_to, t.unit_amount))
                .collect::<Vec<_>>(),
            [(Some(5000), Some(0)), (None, Some(2))]
        );
        let price = RetrievePrice::new("price_api_calls")
            .send(&client)
            .await
            .expect("seeded price");
        let recurring = price.recurring.unwrap();
        assert_eq!(recurring.usage_type, RecurringUsageType::Metered);
        assert_eq!(recurring.meter.as_deref(), Some("mtr_api_calls"));
        let meter = RetrieveBillingMeter::new("mtr_api_calls")
            .send(&client)
            .await
            .expect("seeded meter");
        assert_eq!(meter.event_name, "api_calls");
        assert_eq!(
            ListBillingMeter::new()
                .send(&client)
                .await
                .unwrap()
                .data
                .len(),
            1
        );
        sim.reset();
    }
}

#[tokio::test]
async fn a_scheduled_downgrade_bills_the_ending_periods_usage_at_the_old_price() {
    use common::lifecycle::TEAM;
    use stripe_billing::subscription_schedule::{
        CreateSubscriptionSchedule, UpdateSubscriptionSchedule, UpdateSubscriptionSchedulePhases,
        UpdateSubscriptionSchedulePhasesDuration, UpdateSubscriptionSchedulePhasesDurationInterval,
        UpdateSubscriptionSchedulePhasesEndDate, UpdateSubscriptionSchedulePhasesItems,
        UpdateSubscriptionSchedulePhasesStartDate,
    };

    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let meter = sum_meter(&client, "api_calls").await;
    let pro_usage = metered_price(&client, meter.id.as_str(), 2).await;
    let team_usage = metered_price(&client, meter.id.as_str(), 1).await;
    let (cus, sub) = subscribe_metered(&sim, &client, &pro_usage).await;
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let (start, end) = (
        sub["items"]["data"][0]["current_period_start"]
            .as_i64()
            .unwrap(),
        sub["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap(),
    );
    let schedule = CreateSubscriptionSchedule::new()
        .from_subscription(sub_id.as_str())
        .send(&client)
        .await
        .expect("schedule");
    let item = |price: &str, quantity: Option<u64>| {
        let mut i = UpdateSubscriptionSchedulePhasesItems::new();
        i.price = Some(price.to_string());
        i.quantity = quantity;
        i
    };
    let mut current =
        UpdateSubscriptionSchedulePhases::new(vec![item(PRO, Some(1)), item(&pro_usage, None)]);
    current.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(start));
    current.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(end));
    let mut next =
        UpdateSubscriptionSchedulePhases::new(vec![item(TEAM, Some(1)), item(&team_usage, None)]);
    next.duration = Some(UpdateSubscriptionSchedulePhasesDuration::new(
        UpdateSubscriptionSchedulePhasesDurationInterval::Month,
    ));
    UpdateSubscriptionSchedule::new(schedule.id.clone())
        .phases(vec![current, next])
        .send(&client)
        .await
        .expect("downgrade at period end");
    record(&client, "api_calls", &cus, 100, "s1", None)
        .await
        .unwrap();

    sim.advance_clock(end + 3600 - sim.now());
    let renewal = &sim.invoices(&cus)[0];
    assert_eq!(renewal["status"], "paid");
    let mut lines = line_summary(renewal);
    lines.sort();
    let mut expected = vec![(TEAM.to_string(), 1, 1200), (pro_usage.clone(), 100, 200)];
    expected.sort();
    assert_eq!(lines, expected, "the old period's usage at the old price");

    record(&client, "api_calls", &cus, 50, "s2", None)
        .await
        .unwrap();
    let s = RetrieveSubscription::new(sub_id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(s.items.data[1].price.id.as_str(), team_usage);
    let next_end = s.items.data[0].current_period_end;
    sim.advance_clock(next_end + 3600 - sim.now());
    let mut lines = line_summary(&sim.invoices(&cus)[0]);
    lines.sort();
    let mut expected = vec![(TEAM.to_string(), 1, 1200), (team_usage, 50, 50)];
    expected.sort();
    assert_eq!(lines, expected);
    assert_events_parse(&sim);
}
