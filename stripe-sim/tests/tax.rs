//! Customer tax ids and automatic tax, through async-stripe (it parses every
//! answer strictly, so the tax fields of sessions, subscriptions and invoices
//! have the shapes it expects). Amounts are checked to the cent: an Irish seller
//! (the default), Pro at 29.00 a month.

mod common;

use serde_json::{json, Value};
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::{
    RetrieveSubscription, UpdateSubscription, UpdateSubscriptionAutomaticTax,
    UpdateSubscriptionProrationBehavior,
};
use stripe_billing::tax_id::{
    CreateCustomerTaxId, CreateCustomerTaxIdType, DeleteCustomerTaxId, ListCustomerTaxId,
    RetrieveCustomerTaxId,
};
use stripe_billing::{
    BillingBillResourceInvoicingTaxesTaxTaxabilityReason as Reason, TaxIdVerificationStatus,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionCustomerUpdateName,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionTaxIdCollection,
};
use stripe_checkout::CheckoutSessionMode;
use stripe_sim::{SimConfig, SimHandle, VERIFICATION_DELAY_S};

use common::lifecycle::{item, period, start, PRO, TEAM};

fn customer(sim: &SimHandle, address: Value) -> String {
    sim.create_customer_direct(json!({"email": "billing@tenant.example", "address": address}))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A checkout with automatic tax, as the service creates it, paid.
async fn taxed_checkout(
    sim: &SimHandle,
    client: &stripe::Client,
    customer: &str,
    price: &str,
    quantity: u64,
) -> (stripe_checkout::CheckoutSession, Value) {
    let mut line = CreateCheckoutSessionLineItems::new();
    line.price = Some(price.into());
    line.quantity = Some(quantity);
    let mut update = CreateCheckoutSessionCustomerUpdate::new();
    update.address = Some(CreateCheckoutSessionCustomerUpdateAddress::Auto);
    update.name = Some(CreateCheckoutSessionCustomerUpdateName::Auto);
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer)
        .line_items(vec![line])
        .automatic_tax(CreateCheckoutSessionAutomaticTax::new(true))
        .tax_id_collection(CreateCheckoutSessionTaxIdCollection::new(true))
        .customer_update(update)
        .success_url("http://localhost/ok")
        .send(client)
        .await
        .expect("checkout with automatic tax");
    let sub = sim.complete_checkout(session.id.as_str()).expect("paid");
    (session, sub)
}

#[tokio::test]
async fn tax_ids_are_checked_listed_verified_and_deleted() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let raw = common::Raw::new(&sim);
    let cus = customer(&sim, json!({"country": "DE"}));

    let vat = CreateCustomerTaxId::new(cus.as_str(), CreateCustomerTaxIdType::EuVat, "DE123456789")
        .send(&client)
        .await
        .expect("create");
    assert!(vat.id.as_str().starts_with("txi_"));
    assert_eq!(vat.country.as_deref(), Some("DE"));
    assert_eq!(
        vat.verification.as_ref().unwrap().status,
        TaxIdVerificationStatus::Pending
    );
    let ein = CreateCustomerTaxId::new(cus.as_str(), CreateCustomerTaxIdType::UsEin, "12-3456789")
        .send(&client)
        .await
        .expect("us_ein");
    assert_eq!(
        ein.verification.unwrap().status,
        TaxIdVerificationStatus::Unavailable,
        "Stripe verifies only some types"
    );

    // Stripe's errors: a malformed number, a type Stripe does not know.
    let bad = raw
        .post(
            &format!("/v1/customers/{cus}/tax_ids"),
            "type=eu_vat&value=DE12345",
            None,
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["code"], "tax_id_invalid");
    assert_eq!(bad.json["error"]["param"], "value");
    let bad = raw
        .post(
            &format!("/v1/customers/{cus}/tax_ids"),
            "type=xx_vat&value=1",
            None,
        )
        .await;
    assert_eq!(
        (bad.status, bad.json["error"]["param"].as_str()),
        (400, Some("type"))
    );

    let list = ListCustomerTaxId::new(cus.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(list.data.len(), 2);
    assert_eq!(list.data[0].id, ein.id, "newest first");

    // Pending settles on the clock: verified, and `customer.tax_id.updated`.
    sim.advance_clock(VERIFICATION_DELAY_S);
    let got = RetrieveCustomerTaxId::new(cus.as_str(), vat.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        got.verification.unwrap().status,
        TaxIdVerificationStatus::Verified
    );
    assert!(sim
        .events()
        .iter()
        .any(|e| e["type"] == "customer.tax_id.updated"));

    // The magic number verifies as unverified; the control plane settles at once.
    let magic =
        CreateCustomerTaxId::new(cus.as_str(), CreateCustomerTaxIdType::EuVat, "DE111111111")
            .send(&client)
            .await
            .unwrap();
    sim.advance_clock(VERIFICATION_DELAY_S);
    assert_eq!(
        sim.object(magic.id.as_str()).unwrap()["verification"]["status"],
        "unverified"
    );
    let reset = raw
        .control(
            reqwest::Method::POST,
            &format!("/_sim/tax_ids/{}/verification", magic.id),
            json!({"status": "verified"}),
        )
        .await;
    assert_eq!(reset.json["verification"]["status"], "verified");

    DeleteCustomerTaxId::new(cus.as_str(), magic.id.as_str())
        .send(&client)
        .await
        .expect("delete");
    let other = customer(&sim, json!({"country": "FR"}));
    let wrong_owner = raw
        .get(&format!("/v1/customers/{other}/tax_ids/{}", vat.id))
        .await;
    assert_eq!(
        wrong_owner.status, 404,
        "a tax id is found under its own customer only"
    );
    let top = raw.get(&format!("/v1/tax_ids/{}", vat.id)).await;
    assert_eq!(top.json["owner"]["customer"], cus.as_str());
    assert_eq!(sim.tax_ids(&cus).len(), 2);
    common::lifecycle::assert_events_parse(&sim);
}

#[tokio::test]
async fn checkout_tax_to_the_cent_for_business_consumer_and_us() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);

    // A German business with a verified VAT id: reverse charge, 0 %.
    let business = customer(&sim, json!({"country": "DE", "city": "Berlin"}));
    let vat = CreateCustomerTaxId::new(
        business.as_str(),
        CreateCustomerTaxIdType::EuVat,
        "DE123456789",
    )
    .send(&client)
    .await
    .unwrap();
    sim.set_tax_id_verification(vat.id.as_str(), "verified")
        .unwrap();
    let (session, sub) = taxed_checkout(&sim, &client, &business, PRO, 1).await;
    assert_eq!(session.amount_total, Some(2900));
    let tax = session.total_details.as_ref().unwrap();
    assert_eq!(tax.amount_tax, 0);
    assert_eq!(sub["automatic_tax"]["enabled"], true);
    let inv = RetrieveInvoice::new(sub["latest_invoice"].as_str().unwrap())
        .send(&client)
        .await
        .expect("a taxed invoice parses");
    assert_eq!(
        (inv.subtotal, inv.total, inv.amount_paid),
        (2900, 2900, 2900)
    );
    let taxes = inv.total_taxes.as_ref().unwrap();
    assert_eq!(taxes[0].amount, 0);
    assert_eq!(taxes[0].taxability_reason, Reason::ReverseCharge);
    assert_eq!(
        inv.customer_tax_ids.as_ref().unwrap()[0].value.as_deref(),
        Some("DE123456789")
    );
    assert_eq!(inv.account_country.as_deref(), Some("IE"));

    // A German consumer: 19 % German VAT (OSS): 29.00 + 5.51.
    let consumer = customer(&sim, json!({"country": "DE"}));
    let (session, sub) = taxed_checkout(&sim, &client, &consumer, PRO, 1).await;
    assert_eq!(session.amount_total, Some(3451));
    assert_eq!(session.total_details.unwrap().amount_tax, 551);
    let inv = RetrieveInvoice::new(sub["latest_invoice"].as_str().unwrap())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        (inv.total_excluding_tax, inv.total, inv.amount_paid),
        (Some(2900), 3451, 3451)
    );
    let line_tax = &inv.lines.data[0].taxes.as_ref().unwrap()[0];
    assert_eq!(
        (line_tax.amount, line_tax.taxable_amount),
        (551, Some(2900))
    );
    assert_eq!(line_tax.taxability_reason, Reason::StandardRated);
    let rate_id = inv.total_taxes.as_ref().unwrap()[0]
        .tax_rate_details
        .as_ref()
        .unwrap()
        .tax_rate
        .id()
        .to_string();
    let rate = sim.object(&rate_id).expect("the rate is an object");
    assert_eq!(
        (rate["percentage"].as_f64(), rate["country"].as_str()),
        (Some(19.0), Some("DE"))
    );

    // A US customer: the seller is not registered there, 0 %.
    let us = customer(&sim, json!({"country": "US", "postal_code": "94107"}));
    let (session, sub) = taxed_checkout(&sim, &client, &us, TEAM, 3).await;
    assert_eq!(session.amount_total, Some(3600));
    let inv = sim.object(sub["latest_invoice"].as_str().unwrap()).unwrap();
    assert_eq!(inv["total"], 3600);
    assert_eq!(inv["total_taxes"][0]["taxability_reason"], "not_collecting");
    common::lifecycle::assert_events_parse(&sim);
}

#[tokio::test]
async fn the_sellers_own_country_always_pays_vat() {
    let sim = start(SimConfig {
        seller_country: "DE".into(),
        ..SimConfig::default()
    });
    let client = common::client(&sim);
    let business = customer(&sim, json!({"country": "DE"}));
    CreateCustomerTaxId::new(
        business.as_str(),
        CreateCustomerTaxIdType::EuVat,
        "DE123456789",
    )
    .send(&client)
    .await
    .unwrap();
    let (session, _) = taxed_checkout(&sim, &client, &business, PRO, 1).await;
    assert_eq!(
        session.amount_total,
        Some(3451),
        "domestic B2B is not reverse-charged"
    );
    // A French business from a German seller is.
    let french = customer(&sim, json!({"country": "FR"}));
    CreateCustomerTaxId::new(
        french.as_str(),
        CreateCustomerTaxIdType::EuVat,
        "FRAB123456789",
    )
    .send(&client)
    .await
    .unwrap();
    let (session, _) = taxed_checkout(&sim, &client, &french, PRO, 1).await;
    assert_eq!(session.amount_total, Some(2900));
}

#[tokio::test]
async fn no_usable_address_is_customer_tax_location_invalid() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let raw = common::Raw::new(&sim);
    let nowhere = sim.create_customer_direct(json!({"email": "a@b.example"}))["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Without customer_update[address]=auto: Stripe's 400.
    let refused = raw
        .post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={nowhere}&line_items[0][price]={PRO}&automatic_tax[enabled]=true"),
            None,
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json["error"]["code"],
        "customer_tax_location_invalid"
    );
    // A US address without a ZIP code cannot be located either.
    raw.post(
        &format!("/v1/customers/{nowhere}"),
        "address[country]=US",
        None,
    )
    .await;
    let refused = raw
        .post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={nowhere}&line_items[0][price]={PRO}&automatic_tax[enabled]=true"),
            None,
        )
        .await;
    assert_eq!(
        refused.json["error"]["code"],
        "customer_tax_location_invalid"
    );

    // With it, Checkout asks for the address; paying without one is refused,
    // with one it is saved and taxed.
    let open = raw
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=subscription&customer={nowhere}&line_items[0][price]={PRO}&automatic_tax[enabled]=true\
                 &customer_update[address]=auto&billing_address_collection=required"
            ),
            None,
        )
        .await;
    assert_eq!(open.status, 200, "{}", open.json);
    assert_eq!(
        open.json["automatic_tax"]["status"],
        "requires_location_inputs"
    );
    let id = open.json["id"].as_str().unwrap();
    assert!(sim.complete_checkout(id).is_err());
    let sub = sim
        .complete_checkout_with(id, json!({"address": {"country": "FR", "city": "Paris"}}))
        .expect("paid with an address");
    assert_eq!(sim.object(&nowhere).unwrap()["address"]["country"], "FR");
    let inv = sim.object(sub["latest_invoice"].as_str().unwrap()).unwrap();
    assert_eq!(inv["total"], 3480, "29.00 + 20 % French VAT");
    assert_eq!(sim.object(id).unwrap()["amount_total"], 3480);

    // Subscriptions: turning automatic tax on for a customer that cannot be located.
    let (cus, sub) = common::lifecycle::subscribe(&sim, &client, PRO, 1, None).await;
    let refused = UpdateSubscription::new(sub.as_str())
        .automatic_tax(UpdateSubscriptionAutomaticTax::new(true))
        .send(&client)
        .await
        .unwrap_err();
    match refused {
        stripe::StripeError::Stripe(e, 400) => {
            assert_eq!(
                e.code,
                Some(stripe::ApiErrorsCode::CustomerTaxLocationInvalid)
            )
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    raw.post(&format!("/v1/customers/{cus}"), "address[country]=GB", None)
        .await;
    let s = UpdateSubscription::new(sub.as_str())
        .automatic_tax(UpdateSubscriptionAutomaticTax::new(true))
        .send(&client)
        .await
        .expect("located now");
    assert!(s.automatic_tax.enabled);
}

#[tokio::test]
async fn plan_and_seat_changes_keep_automatic_tax() {
    let sim = start(SimConfig::default());
    let client = common::client(&sim);
    let consumer = customer(&sim, json!({"country": "DE"}));
    let (_, sub) = taxed_checkout(&sim, &client, &consumer, TEAM, 2).await;
    let sub = sub["id"].as_str().unwrap().to_string();
    let (start_at, end, si) = period(&client, &sub).await;
    sim.advance_clock((end - start_at) / 2);
    let now = sim.now();
    let s = UpdateSubscription::new(sub.as_str())
        .items(vec![item(&si, None, Some(5))])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .proration_date(now)
        .automatic_tax(UpdateSubscriptionAutomaticTax::new(true))
        .send(&client)
        .await
        .unwrap();
    assert!(s.automatic_tax.enabled);
    let inv = RetrieveInvoice::new(s.latest_invoice.unwrap().id().as_ref().unwrap().as_str())
        .send(&client)
        .await
        .unwrap();
    let credit = -common::lifecycle::hand_prorate(2400, end - now, end - start_at);
    let charge = common::lifecycle::hand_prorate(6000, end - now, end - start_at);
    let tax = |a: i64| (a as f64 * 0.19).round() as i64;
    assert_eq!(inv.subtotal, credit + charge);
    assert_eq!(
        inv.total,
        credit + charge + tax(credit) + tax(charge),
        "each line taxed"
    );
    let line_taxes: Vec<i64> = inv
        .lines
        .data
        .iter()
        .map(|l| l.taxes.as_ref().unwrap()[0].amount)
        .collect();
    assert_eq!(line_taxes, vec![tax(credit), tax(charge)]);
    // The renewal is taxed too.
    sim.advance_clock(end - now + 1);
    let s = RetrieveSubscription::new(sub.as_str())
        .send(&client)
        .await
        .unwrap();
    let renewal = sim
        .object(s.latest_invoice.unwrap().id().as_ref().unwrap().as_str())
        .unwrap();
    assert_eq!(renewal["total"], 6000 + 1140);
}
