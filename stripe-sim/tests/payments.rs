//! Payments and dunning: a card that declines through every retry, the
//! subscription canceled or left unpaid, and paid again by a retry, the portal
//! or the hosted invoice page; the card control over HTTP.

mod common;

use serde_json::{json, Value};
use stripe_billing::invoice::{PayInvoice, RetrieveInvoice};
use stripe_billing::subscription::RetrieveSubscription;
use stripe_billing::{InvoiceStatus, SubscriptionStatus};
use stripe_sim::{FailedPaymentAction, SimConfig, SimHandle};

use common::lifecycle::{assert_events_parse, period, start, subscribe, types_since, DAY, PRO};

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
