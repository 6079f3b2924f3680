//! Coupons and promotion codes through async-stripe, and the discounts they put
//! on invoices: a `once` code on the first invoice only, `repeating` for its
//! months, discount before tax, expiry, and codes typed on the Checkout page.

mod common;

use serde_json::{json, Value};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionDiscounts,
    CreateCheckoutSessionLineItems,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_product::coupon::{CreateCoupon, RetrieveCoupon};
use stripe_product::promotion_code::{
    CreatePromotionCode, CreatePromotionCodePromotion, CreatePromotionCodePromotionType,
    ListPromotionCode, RetrievePromotionCode, UpdatePromotionCode,
};
use stripe_product::CouponDuration;
use stripe_sim::{SimConfig, SimHandle};

use common::lifecycle::{period, start, DAY, PRO};

async fn twenty_percent(
    client: &stripe::Client,
    duration: CouponDuration,
    months: Option<i64>,
) -> String {
    let mut c = CreateCoupon::new()
        .percent_off(20.0)
        .duration(duration)
        .name("Spring");
    if let Some(m) = months {
        c = c.duration_in_months(m);
    }
    c.send(client).await.expect("coupon").id.to_string()
}

async fn promotion_code(
    client: &stripe::Client,
    coupon: &str,
    code: &str,
    expires_at: Option<i64>,
) -> String {
    let mut promotion = CreatePromotionCodePromotion::new(CreatePromotionCodePromotionType::Coupon);
    promotion.coupon = Some(coupon.to_string());
    let mut req = CreatePromotionCode::new(promotion).code(code);
    if let Some(t) = expires_at {
        req = req.expires_at(t);
    }
    req.send(client)
        .await
        .expect("promotion code")
        .id
        .to_string()
}

/// Subscription checkout for `customer` with the promotion code, paid.
async fn checkout_with_code(
    sim: &SimHandle,
    client: &stripe::Client,
    customer: &str,
    promo: &str,
    tax: bool,
) -> Result<(Value, Value), stripe::StripeError> {
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(PRO.into());
    let mut discount = CreateCheckoutSessionDiscounts::new();
    discount.promotion_code = Some(promo.into());
    let mut req = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer)
        .line_items(vec![line])
        .discounts(vec![discount])
        .success_url("http://localhost/ok");
    if tax {
        let mut update = CreateCheckoutSessionCustomerUpdate::new();
        update.address = Some(CreateCheckoutSessionCustomerUpdateAddress::Auto);
        req = req
            .automatic_tax(CreateCheckoutSessionAutomaticTax::new(true))
            .customer_update(update);
    }
    let session = req.send(client).await?;
    let sub = sim.complete_checkout(session.id.as_str()).expect("paid");
    Ok((sim.object(session.id.as_str()).unwrap(), sub))
}

fn new_customer(sim: &SimHandle, country: &str) -> String {
    sim.create_customer_direct(
        json!({"email": "a@tenant.example", "address": {"country": country}}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_once_code_discounts_the_first_invoice_only() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let coupon = twenty_percent(&client, CouponDuration::Once, None).await;
    let promo = promotion_code(&client, &coupon, "SPRING20", None).await;

    // The service looks a typed code up by `code`, in any case.
    let found = ListPromotionCode::new()
        .code("spring20")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1);
    assert_eq!(found.data[0].id.as_str(), promo);
    assert!(found.data[0].active);

    let cus = new_customer(&sim, "US");
    let (session, sub) = checkout_with_code(&sim, &client, &cus, &promo, false)
        .await
        .unwrap();
    assert_eq!(session["amount_total"], 2320);
    assert_eq!(session["total_details"]["amount_discount"], 580);
    assert_eq!(session["discounts"][0]["promotion_code"], promo.as_str());
    let first = RetrieveInvoice::new(sub["latest_invoice"].as_str().unwrap())
        .send(&client)
        .await
        .expect("a discounted invoice parses");
    assert_eq!(
        (first.subtotal, first.total, first.amount_paid),
        (2900, 2320, 2320)
    );
    let amounts = first.total_discount_amounts.as_ref().unwrap();
    assert_eq!(amounts[0].amount, 580);
    assert_eq!(
        first.lines.data[0].discount_amounts.as_ref().unwrap()[0].amount,
        580
    );
    let discount = sim.object(first.discounts[0].id().as_ref()).unwrap();
    assert_eq!(discount["promotion_code"], promo.as_str());
    assert_eq!(discount["source"]["coupon"], coupon.as_str());

    // Used up: the renewal is full price, and both counters moved.
    let (_, end, _) = period(&client, sub["id"].as_str().unwrap()).await;
    sim.advance_clock(end - sim.now() + 1);
    let renewal = &sim.invoices(&cus)[0];
    assert_eq!(
        (
            renewal["total"].as_i64(),
            renewal["total_discount_amounts"].as_array().map(Vec::len)
        ),
        (Some(2900), Some(0))
    );
    let c = RetrieveCoupon::new(coupon.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(c.times_redeemed, 1);
    let p = RetrievePromotionCode::new(promo.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(p.times_redeemed, 1);
    common::lifecycle::assert_events_parse(&sim);
}

#[tokio::test]
async fn the_discount_comes_before_tax() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let coupon = twenty_percent(&client, CouponDuration::Forever, None).await;
    let promo = promotion_code(&client, &coupon, "ALWAYS20", None).await;
    let cus = new_customer(&sim, "DE");
    let (session, sub) = checkout_with_code(&sim, &client, &cus, &promo, true)
        .await
        .unwrap();
    // (29.00 − 5.80) × 19 % = 4.408 → 4.41.
    assert_eq!(session["total_details"]["amount_tax"], 441);
    assert_eq!(session["amount_total"], 2761);
    let inv = sim.object(sub["latest_invoice"].as_str().unwrap()).unwrap();
    assert_eq!(inv["total_excluding_tax"], 2320);
    assert_eq!(inv["total_taxes"][0]["taxable_amount"], 2320);
    assert_eq!(inv["total"], 2761);
    // `forever` keeps discounting.
    let (_, end, _) = period(&client, sub["id"].as_str().unwrap()).await;
    sim.advance_clock(end - sim.now() + 1);
    assert_eq!(sim.invoices(&cus)[0]["total"], 2761);
}

#[tokio::test]
async fn a_repeating_coupon_lasts_its_months() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let coupon = twenty_percent(&client, CouponDuration::Repeating, Some(2)).await;
    let promo = promotion_code(&client, &coupon, "TWOMONTHS", None).await;
    let cus = new_customer(&sim, "US");
    checkout_with_code(&sim, &client, &cus, &promo, false)
        .await
        .unwrap();
    for _ in 0..3 {
        sim.advance_clock(32 * DAY);
    }
    let totals: Vec<i64> = sim
        .invoices(&cus)
        .iter()
        .rev()
        .map(|i| i["total"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, vec![2320, 2320, 2900, 2900]);
}

#[tokio::test]
async fn expired_and_unknown_codes_are_refused() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let raw = common::Raw::new(&sim);
    let coupon = twenty_percent(&client, CouponDuration::Once, None).await;
    let promo = promotion_code(&client, &coupon, "SOON", Some(sim.now() + 60)).await;
    sim.advance_clock(61);
    let p = RetrievePromotionCode::new(promo.as_str())
        .send(&client)
        .await
        .unwrap();
    assert!(!p.active, "past expires_at a code is inactive");
    let listed = ListPromotionCode::new()
        .code("SOON")
        .active(true)
        .send(&client)
        .await
        .unwrap();
    assert!(listed.data.is_empty());
    let refused = checkout_with_code(&sim, &client, &new_customer(&sim, "US"), &promo, false)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, stripe::StripeError::Stripe(_, 400)),
        "{refused:?}"
    );
    let again = UpdatePromotionCode::new(promo.as_str())
        .active(true)
        .send(&client)
        .await;
    assert!(again.is_err(), "an expired code cannot be switched back on");

    // Typed on the page (allow_promotion_codes): a good code discounts, an unknown one is refused.
    let good = promotion_code(&client, &coupon, "TYPED", None).await;
    let cus = new_customer(&sim, "US");
    let open = raw
        .post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={cus}&line_items[0][price]={PRO}&allow_promotion_codes=true"),
            None,
        )
        .await;
    assert_eq!(open.json["allow_promotion_codes"], true);
    let id = open.json["id"].as_str().unwrap();
    let unknown = sim.complete_checkout_with(id, json!({"promotion_code": "NOPE"}));
    assert!(unknown.is_err());
    let sub = sim
        .complete_checkout_with(id, json!({"promotion_code": "typed"}))
        .unwrap();
    assert_eq!(
        sim.object(sub["latest_invoice"].as_str().unwrap()).unwrap()["total"],
        2320
    );
    assert_eq!(sim.object(&good).unwrap()["times_redeemed"], 1);
    // allow_promotion_codes and discounts exclude each other.
    let both = raw
        .post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&line_items[0][price]={PRO}&allow_promotion_codes=true&discounts[0][coupon]={coupon}"),
            None,
        )
        .await;
    assert_eq!(both.status, 400);
}

#[tokio::test]
async fn coupon_validation_and_limits() {
    let sim = start(SimConfig::default());
    let raw = common::Raw::new(&sim);
    for body in [
        "duration=once",                     // neither percent_off nor amount_off
        "percent_off=120&duration=once",     // over 100
        "amount_off=500&duration=once",      // no currency
        "percent_off=10&duration=repeating", // no duration_in_months
        "percent_off=10&duration=weekly",    // not a duration
    ] {
        let r = raw.post("/v1/coupons", body, None).await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
    }
    let fixed = raw
        .post(
            "/v1/coupons",
            "id=TENOFF&amount_off=1000&currency=usd&duration=once&max_redemptions=1",
            None,
        )
        .await;
    assert_eq!(fixed.json["id"], "TENOFF");
    let promo = raw
        .post(
            "/v1/promotion_codes",
            "promotion[coupon]=TENOFF&code=TEN",
            None,
        )
        .await;
    assert_eq!(promo.status, 200, "{}", promo.json);
    let dup = raw
        .post("/v1/promotion_codes", "coupon=TENOFF&code=ten", None)
        .await;
    assert_eq!(
        dup.status, 400,
        "active codes are unique regardless of case"
    );
    let client = common::client(&sim);
    let promo_id = promo.json["id"].as_str().unwrap();
    let cus = new_customer(&sim, "US");
    checkout_with_code(&sim, &client, &cus, promo_id, false)
        .await
        .unwrap();
    assert_eq!(sim.invoices(&cus)[0]["total"], 1900);
    // max_redemptions reached: the coupon is no longer valid, the code inactive.
    assert_eq!(sim.object("TENOFF").unwrap()["valid"], false);
    let second =
        checkout_with_code(&sim, &client, &new_customer(&sim, "US"), promo_id, false).await;
    assert!(second.is_err());
}
