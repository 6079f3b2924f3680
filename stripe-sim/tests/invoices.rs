//! Invoices: list paging, retrieve, the hosted page and a real PDF, and the
//! renewals the clock produces when it passes several boundaries at once.

mod common;

use std::collections::HashSet;

use serde_json::json;
use stripe_billing::invoice::{ListInvoice, RetrieveInvoice};
use stripe_billing::subscription::UpdateSubscription;
use stripe_billing::InvoiceStatus;
use stripe_checkout::checkout_session::{CreateCheckoutSession, CreateCheckoutSessionLineItems};
use stripe_checkout::CheckoutSessionMode;
use stripe_sim::SimConfig;

use common::lifecycle::{period, start, subscribe, DAILY, DAY, PRO, TEAM};

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
