//! Helpers for the subscription-lifecycle tests (prorations, invoices, trials,
//! schedules, payments, validation), which drive the simulator through
//! async-stripe 1.0.0-rc.10 (it parses every answer strictly) and check amounts
//! against hand computations and events against the order Stripe sends them in.

use serde_json::{json, Value};
use stripe_billing::subscription::{RetrieveSubscription, UpdateSubscriptionItems};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_sim::{SimConfig, SimHandle};

pub const PRO: &str = "price_pro";
pub const TEAM: &str = "price_team";
pub const DAILY: &str = "price_daily";
pub const DAY: i64 = 86_400;

pub fn start(config: SimConfig) -> SimHandle {
    let mut config = config;
    for seed in [
        "price_pro:2900:usd:month",
        "price_team:1200:usd:month",
        "price_daily:100:usd:day",
    ] {
        config.prices.push(seed.parse().unwrap());
    }
    super::start_with(config)
}

/// Pays a subscription-mode checkout for a new customer; returns (customer, subscription).
pub async fn subscribe(
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
pub fn types_since(sim: &SimHandle, skip: usize) -> Vec<String> {
    let mut all: Vec<Value> = sim.events();
    all.reverse();
    all.iter()
        .skip(skip)
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// Every event kept parses as async-stripe-webhook's typed object.
pub fn assert_events_parse(sim: &SimHandle) {
    for e in sim.events() {
        stripe_webhook::Webhook::insecure(&e.to_string())
            .unwrap_or_else(|err| panic!("event {} does not parse: {err:?}", e["type"]));
    }
}

/// `amount × remaining / total`, rounded half away from zero (written independently of
/// the simulator's integer version).
pub fn hand_prorate(amount: i64, remaining: i64, total: i64) -> i64 {
    (amount as f64 * remaining as f64 / total as f64).round() as i64
}

pub async fn period(client: &stripe::Client, sub: &str) -> (i64, i64, String) {
    let s = RetrieveSubscription::new(sub).send(client).await.unwrap();
    let item = &s.items.data[0];
    (
        item.current_period_start,
        item.current_period_end,
        item.id.to_string(),
    )
}

pub fn item(id: &str, price: Option<&str>, quantity: Option<u64>) -> UpdateSubscriptionItems {
    let mut item = UpdateSubscriptionItems::new();
    item.id = Some(id.to_string());
    item.price = price.map(str::to_string);
    item.quantity = quantity;
    item
}
