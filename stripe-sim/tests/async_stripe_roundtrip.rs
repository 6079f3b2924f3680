//! async-stripe 1.0.0-rc.10, pointed at the simulator with `ClientBuilder::url`,
//! round-trips every resource the service uses. async-stripe parses responses
//! strictly, so each call passing proves the object shapes carry every required field.

mod common;

use std::collections::HashMap;

use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, RetrieveSubscription, UpdateSubscription,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_checkout::{CheckoutSessionMode, CheckoutSessionStatus};
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned,
    SearchCustomer, UpdateCustomer,
};
use stripe_core::event::{ListEvent, RetrieveEvent};
use stripe_product::price::{
    CreatePrice, CreatePriceProductData, CreatePriceRecurring, CreatePriceRecurringInterval,
    ListPrice, RetrievePrice,
};
use stripe_types::{RangeBoundsTs, RangeQueryTs};

fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn customers_round_trip() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    let before = sim.now() - 1;

    let created = CreateCustomer::new()
        .email("owner@tenant-a.example")
        .name("Tenant A")
        .metadata(meta(&[("tenant_id", "tenant-a")]))
        .send(&client)
        .await
        .expect("create");
    assert!(created.id.as_str().starts_with("cus_"));
    assert_eq!(created.metadata.as_ref().unwrap()["tenant_id"], "tenant-a");

    let RetrieveCustomerReturned::Customer(got) = RetrieveCustomer::new(created.id.clone())
        .send(&client)
        .await
        .expect("retrieve")
    else {
        panic!("expected a live customer")
    };
    assert_eq!(got.email.as_deref(), Some("owner@tenant-a.example"));

    let updated = UpdateCustomer::new(created.id.clone())
        .name("Tenant A Ltd")
        .metadata(meta(&[("plan", "pro")]))
        .send(&client)
        .await
        .expect("update");
    assert_eq!(updated.name.as_deref(), Some("Tenant A Ltd"));
    let md = updated.metadata.unwrap();
    assert_eq!(md["tenant_id"], "tenant-a", "update merges metadata");
    assert_eq!(md["plan"], "pro");

    let other = CreateCustomer::new()
        .email("b@tenant-b.example")
        .send(&client)
        .await
        .expect("create b");

    // List: newest first, email filter, created range, pagination.
    let all = ListCustomer::new().send(&client).await.expect("list");
    assert_eq!(all.data.len(), 2);
    assert_eq!(all.data[0].id, other.id, "newest first");
    let by_email = ListCustomer::new()
        .email("owner@tenant-a.example")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(by_email.data.len(), 1);
    assert_eq!(by_email.data[0].id, created.id);
    let recent = ListCustomer::new()
        .created(RangeQueryTs::Bounds(RangeBoundsTs {
            gte: Some(before),
            ..Default::default()
        }))
        .send(&client)
        .await
        .unwrap();
    assert_eq!(recent.data.len(), 2);
    let page1 = ListCustomer::new().limit(1).send(&client).await.unwrap();
    assert!(page1.has_more);
    let page2 = ListCustomer::new()
        .limit(1)
        .starting_after(page1.data[0].id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert!(!page2.has_more);
    assert_eq!(page2.data[0].id, created.id);

    // Search (no lag configured): metadata and email clauses joined by AND.
    let found =
        SearchCustomer::new("metadata['tenant_id']:'tenant-a' AND email:'owner@tenant-a.example'")
            .send(&client)
            .await
            .expect("search");
    assert_eq!(found.data.len(), 1);
    assert_eq!(found.data[0].id, created.id);
    assert!(found.next_page.is_none());

    let deleted = DeleteCustomer::new(created.id.clone())
        .send(&client)
        .await
        .expect("delete");
    assert_eq!(deleted.id, created.id);
    match RetrieveCustomer::new(created.id.clone())
        .send(&client)
        .await
        .expect("retrieve deleted")
    {
        RetrieveCustomerReturned::DeletedCustomer(d) => assert_eq!(d.id, created.id),
        RetrieveCustomerReturned::Customer(_) => panic!("deleted customer came back live"),
    }
    let types: Vec<String> = sim
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    for t in ["customer.created", "customer.updated", "customer.deleted"] {
        assert!(types.iter().any(|x| x == t), "missing {t} in {types:?}");
    }
}

#[tokio::test]
async fn prices_checkout_subscriptions_portal_events_round_trip() {
    let sim = common::start_sim();
    let client = common::client(&sim);

    // Prices: the seeded one, and one created with product_data.
    let seeded = RetrievePrice::new(common::PRICE)
        .send(&client)
        .await
        .expect("retrieve seeded price");
    assert_eq!(seeded.unit_amount, Some(2500));
    let yearly = CreatePrice::new(stripe_types::Currency::USD)
        .unit_amount(25_000)
        .product_data(CreatePriceProductData::new("Pro (yearly)"))
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Year,
        ))
        .send(&client)
        .await
        .expect("create price");
    let prices = ListPrice::new().send(&client).await.expect("list prices");
    assert_eq!(prices.data.len(), 2);

    let customer = CreateCustomer::new()
        .email("c@tenant-c.example")
        .send(&client)
        .await
        .unwrap();

    // Checkout session in subscription mode.
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(common::PRICE.to_string());
    item.quantity = Some(1);
    let mut sub_data = CreateCheckoutSessionSubscriptionData::new();
    sub_data.metadata = Some(meta(&[("tenant_id", "tenant-c")]));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.id.as_str())
        .line_items(vec![item])
        .subscription_data(sub_data)
        .client_reference_id("tenant-c")
        .metadata(meta(&[("tenant_id", "tenant-c")]))
        .success_url("http://localhost/success?session_id={CHECKOUT_SESSION_ID}")
        .cancel_url("http://localhost/cancel")
        .send(&client)
        .await
        .expect("create checkout session");
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    let url = session.url.clone().expect("hosted url");
    assert_eq!(url, format!("{}/checkout/{}", sim.base_url(), session.id));

    // Pay it through the library API, then read everything back with async-stripe.
    let sub_json = sim
        .complete_checkout(session.id.as_str())
        .expect("complete");
    let sub_id = sub_json["id"].as_str().unwrap().to_string();
    let paid = RetrieveCheckoutSession::new(session.id.clone())
        .send(&client)
        .await
        .expect("retrieve session");
    assert_eq!(paid.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(
        paid.subscription
            .as_ref()
            .map(|s| s.id().as_str().to_string()),
        Some(sub_id.clone())
    );

    let sub = RetrieveSubscription::new(sub_id.as_str())
        .send(&client)
        .await
        .expect("retrieve subscription");
    assert_eq!(sub.status, stripe_billing::SubscriptionStatus::Active);
    assert_eq!(sub.metadata["tenant_id"], "tenant-c");
    let item = &sub.items.data[0];
    assert_eq!(item.price.id.as_str(), common::PRICE);
    assert!(item.current_period_end > item.current_period_start);

    let listed = ListSubscription::new()
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .expect("list subs");
    assert_eq!(listed.data.len(), 1);

    let updated = UpdateSubscription::new(sub_id.as_str())
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .expect("update subscription");
    assert!(updated.cancel_at_period_end);
    assert_eq!(updated.cancel_at, Some(item.current_period_end));

    let canceled = CancelSubscription::new(sub_id.as_str())
        .send(&client)
        .await
        .expect("cancel");
    assert_eq!(
        canceled.status,
        stripe_billing::SubscriptionStatus::Canceled
    );
    let active_only = ListSubscription::new()
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert!(
        active_only.data.is_empty(),
        "canceled subscriptions are hidden by default"
    );

    // Expire a second session.
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(yearly.id.as_str().to_string());
    let other = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .customer(customer.id.as_str())
        .line_items(vec![item])
        .success_url("http://localhost/success")
        .send(&client)
        .await
        .unwrap();
    let expired = ExpireCheckoutSession::new(other.id.clone())
        .send(&client)
        .await
        .expect("expire");
    assert_eq!(expired.status, Some(CheckoutSessionStatus::Expired));

    // Billing portal.
    let portal = CreateBillingPortalSession::new()
        .customer(customer.id.as_str())
        .return_url("http://localhost/account")
        .send(&client)
        .await
        .expect("portal session");
    assert!(portal.url.starts_with(&sim.base_url()));
    assert_eq!(portal.customer, customer.id.as_str());

    // Events: list (filter by type) and retrieve, data parsed by async-stripe.
    let completed = ListEvent::new()
        .type_("checkout.session.completed")
        .send(&client)
        .await
        .expect("list events");
    assert_eq!(completed.data.len(), 1);
    let ev = RetrieveEvent::new(completed.data[0].id.clone())
        .send(&client)
        .await
        .expect("retrieve event");
    assert_eq!(ev.type_.as_str(), "checkout.session.completed");
    let all = ListEvent::new().limit(100).send(&client).await.unwrap();
    let types: Vec<&str> = all.data.iter().map(|e| e.type_.as_str()).collect();
    for t in [
        "customer.subscription.created",
        "invoice.paid",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "checkout.session.expired",
    ] {
        assert!(types.contains(&t), "missing {t} in {types:?}");
    }
    // Every event's object parses as the type async-stripe-webhook expects.
    for e in sim.events() {
        let payload = e.to_string();
        stripe_webhook::Webhook::insecure(&payload)
            .unwrap_or_else(|err| panic!("event {} does not parse: {err:?}", e["type"]));
    }
}
