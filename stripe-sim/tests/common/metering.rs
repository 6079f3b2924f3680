//! Helpers for the Billing Meters tests: a meter, a metered price on it, meter
//! events and summaries, all through async-stripe 1.0.0-rc.10 (which parses every
//! answer strictly).

use std::collections::HashMap;

use stripe::StripeError;
use stripe_billing::billing_meter::{
    CreateBillingMeter, CreateBillingMeterDefaultAggregation,
    CreateBillingMeterDefaultAggregationFormula,
};
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
use stripe_billing::{BillingMeter, BillingMeterEvent};
use stripe_product::price::{
    CreatePrice, CreatePriceProductData, CreatePriceRecurring, CreatePriceRecurringInterval,
    CreatePriceRecurringUsageType,
};

/// A meter summing the events named `event_name` (payload `stripe_customer_id`, `value`).
pub async fn sum_meter(client: &stripe::Client, event_name: &str) -> BillingMeter {
    meter(
        client,
        event_name,
        CreateBillingMeterDefaultAggregationFormula::Sum,
    )
    .await
}

pub async fn meter(
    client: &stripe::Client,
    event_name: &str,
    formula: CreateBillingMeterDefaultAggregationFormula,
) -> BillingMeter {
    CreateBillingMeter::new(
        CreateBillingMeterDefaultAggregation::new(formula),
        format!("{event_name} meter"),
        event_name,
    )
    .send(client)
    .await
    .expect("create meter")
}

/// A monthly metered price of `unit_amount` cents per unit of the meter's usage.
pub async fn metered_price(client: &stripe::Client, meter: &str, unit_amount: i64) -> String {
    let mut recurring = CreatePriceRecurring::new(CreatePriceRecurringInterval::Month);
    recurring.usage_type = Some(CreatePriceRecurringUsageType::Metered);
    recurring.meter = Some(meter.to_string());
    CreatePrice::new(stripe_types::Currency::USD)
        .unit_amount(unit_amount)
        .product_data(CreatePriceProductData::new("API calls"))
        .recurring(recurring)
        .send(client)
        .await
        .expect("create metered price")
        .id
        .to_string()
}

/// Sends one meter event of `value` for `customer`.
pub async fn record(
    client: &stripe::Client,
    event_name: &str,
    customer: &str,
    value: i64,
    identifier: &str,
    timestamp: Option<i64>,
) -> Result<BillingMeterEvent, StripeError> {
    let payload = HashMap::from([
        ("stripe_customer_id".to_string(), customer.to_string()),
        ("value".to_string(), value.to_string()),
    ]);
    let mut req = CreateBillingMeterEvent::new(event_name, payload).identifier(identifier);
    if let Some(ts) = timestamp {
        req = req.timestamp(ts);
    }
    req.send(client).await
}

/// Stripe's summary of `customer`'s usage on `meter` over `[start, end)` (minute-aligned).
pub async fn summary(
    client: &stripe::Client,
    meter: &str,
    customer: &str,
    start: i64,
    end: i64,
) -> f64 {
    let list = ListIdBillingMeterEventSummary::new(meter, customer, end, start)
        .send(client)
        .await
        .expect("event summaries");
    assert_eq!(list.data.len(), 1, "one summary without a grouping window");
    list.data[0].aggregated_value
}

/// `t` rounded down to a minute (summaries take minute-aligned bounds).
pub fn minute(t: i64) -> i64 {
    t - t.rem_euclid(60)
}
