//! Prices with `currency_options` and the one-currency-per-customer rule,
//! through async-stripe: a EUR customer's checkout, plan change and renewal stay
//! in EUR; USD is refused with Stripe's message while the EUR subscription lives.

mod common;

use std::collections::HashMap;

use serde_json::json;
use stripe_billing::subscription::{
    CancelSubscription, UpdateSubscription, UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{CreateCheckoutSession, CreateCheckoutSessionLineItems};
use stripe_checkout::CheckoutSessionMode;
use stripe_product::price::{
    CreatePrice, CreatePriceCurrencyOptions, CreatePriceRecurring, CreatePriceRecurringInterval,
    RetrievePrice,
};
use stripe_sim::{SimConfig, SimHandle};

use common::lifecycle::{hand_prorate, item, period, start, PRO, TEAM};

fn sim_with_euros() -> SimHandle {
    start(SimConfig {
        price_currency_options: vec![
            "price_pro:eur:2700".parse().unwrap(),
            "price_team:eur:1100".parse().unwrap(),
        ],
        ..SimConfig::default()
    })
}

async fn checkout(
    client: &stripe::Client,
    customer: &str,
    price: &str,
    currency: Option<&str>,
) -> Result<stripe_checkout::CheckoutSession, stripe::StripeError> {
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(price.into());
    let mut req = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer)
        .line_items(vec![line])
        .success_url("http://localhost/ok");
    if let Some(c) = currency {
        req = req.currency(c.parse::<stripe_types::Currency>().unwrap());
    }
    req.send(client).await
}

fn message(err: stripe::StripeError) -> (u16, String) {
    match err {
        stripe::StripeError::Stripe(e, status) => (status, e.message.unwrap_or_default()),
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_eur_customer_stays_in_eur_and_usd_is_refused() {
    let sim = sim_with_euros();
    let client = common::client(&sim);
    let price = RetrievePrice::new(PRO)
        .send(&client)
        .await
        .expect("price parses");
    let options = price.currency_options.expect("currency_options");
    assert_eq!(
        options[&stripe_types::Currency::EUR].unit_amount,
        Some(2700)
    );

    let cus = sim.create_customer_direct(json!({"email": "a@tenant.example"}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = checkout(&client, &cus, PRO, Some("eur")).await.unwrap();
    assert_eq!(session.currency, Some(stripe_types::Currency::EUR));
    assert_eq!(session.amount_total, Some(2700));
    let sub = sim.complete_checkout(session.id.as_str()).unwrap();
    assert_eq!(sub["currency"], "eur");
    assert_eq!(sim.object(&cus).unwrap()["currency"], "eur");
    let first = &sim.invoices(&cus)[0];
    assert_eq!(
        (first["currency"].as_str(), first["total"].as_i64()),
        (Some("eur"), Some(2700))
    );

    // A plan change is prorated in euros.
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let (start_at, end, si) = period(&client, &sub_id).await;
    sim.advance_clock((end - start_at) / 3);
    let now = sim.now();
    let changed = UpdateSubscription::new(sub_id.as_str())
        .items(vec![item(&si, Some(TEAM), Some(3))])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .proration_date(now)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(changed.currency, stripe_types::Currency::EUR);
    let inv = &sim.invoices(&cus)[0];
    let expected = -hand_prorate(2700, end - now, end - start_at)
        + hand_prorate(3300, end - now, end - start_at);
    assert_eq!(
        (inv["currency"].as_str(), inv["total"].as_i64()),
        (Some("eur"), Some(expected))
    );
    // So is the renewal.
    sim.advance_clock(end - now + 1);
    let renewal = &sim.invoices(&cus)[0];
    assert_eq!(renewal["total"], 3300);
    assert_eq!(
        renewal["lines"]["data"][0]["description"],
        "3 × price_team (at €11.00 / month)"
    );

    // Another currency on the same customer: Stripe's refusal, in Checkout and in
    // subscriptions. Without `currency`, Checkout uses the customer's.
    let (status, msg) = message(checkout(&client, &cus, PRO, Some("usd")).await.unwrap_err());
    assert_eq!(status, 400);
    assert!(
        msg.starts_with("You cannot combine currencies on a single customer."),
        "{msg}"
    );
    assert!(msg.ends_with("with currency eur."), "{msg}");
    let raw = common::Raw::new(&sim);
    let direct = raw
        .post(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={PRO}&currency=usd"),
            None,
        )
        .await;
    assert_eq!(direct.status, 400);
    let implicit = checkout(&client, &cus, PRO, None).await.unwrap();
    assert_eq!(implicit.currency, Some(stripe_types::Currency::EUR));

    // Once the EUR subscription has ended, the customer may start over in USD.
    CancelSubscription::new(sub_id.as_str())
        .send(&client)
        .await
        .unwrap();
    let usd = checkout(&client, &cus, PRO, Some("usd")).await.unwrap();
    assert_eq!(usd.amount_total, Some(2900));
}

#[tokio::test]
async fn a_currency_the_price_lacks_is_refused() {
    let sim = sim_with_euros();
    let client = common::client(&sim);
    let cus = sim.create_customer_direct(json!({}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let err = checkout(&client, &cus, PRO, Some("gbp")).await.unwrap_err();
    let stripe::StripeError::Stripe(e, 400) = err else {
        panic!("expected a 400")
    };
    assert_eq!(e.param.as_deref(), Some("line_items[0][price]"));
}

#[tokio::test]
async fn prices_created_with_currency_options() {
    let sim = sim_with_euros();
    let client = common::client(&sim);
    let mut recurring = CreatePriceRecurring::new(CreatePriceRecurringInterval::Month);
    recurring.interval_count = Some(1);
    let mut options = HashMap::new();
    options.insert(stripe_types::Currency::GBP, {
        let mut o = CreatePriceCurrencyOptions::new();
        o.unit_amount = Some(2300);
        o
    });
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .unit_amount(2900)
        .product("prod_pro")
        .recurring(recurring)
        .currency_options(options)
        .send(&client)
        .await
        .expect("created");
    let cus = sim.create_customer_direct(json!({}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = checkout(&client, &cus, price.id.as_str(), Some("gbp"))
        .await
        .unwrap();
    assert_eq!(session.amount_total, Some(2300));
}
