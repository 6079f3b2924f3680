//! Webhooks: signed like Stripe (verified with async-stripe-webhook), retried with
//! backoff until the receiver answers 2xx, and kept for `GET /v1/events`.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::json;
use stripe_sim::SimConfig;
use stripe_webhook::{EventObject, Webhook};

/// A webhook endpoint that records deliveries and fails the first `fail_first` ones.
#[derive(Clone, Default)]
struct Receiver {
    deliveries: Arc<Mutex<Vec<(String, String)>>>,
    calls: Arc<AtomicUsize>,
    fail_first: usize,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Receiver, String) {
        let rx = Receiver {
            fail_first,
            ..Receiver::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
        let server = rx.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let rx = server.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let rx = rx.clone();
                        async move {
                            let sig = req
                                .headers()
                                .get("stripe-signature")
                                .map(|v| v.to_str().unwrap().to_string())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let n = rx.calls.fetch_add(1, Ordering::SeqCst);
                            rx.deliveries
                                .lock()
                                .push((sig, String::from_utf8(body.to_vec()).unwrap()));
                            let status = if n < rx.fail_first { 500 } else { 200 };
                            let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (rx, url)
    }
}

#[tokio::test]
async fn deliveries_are_signed_and_parse_with_async_stripe_webhook() {
    let (rx, url) = Receiver::start(0).await;
    let sim = common::start_with(SimConfig {
        webhook_url: Some(url),
        ..SimConfig::default()
    });
    let raw = common::Raw::new(&sim);
    let c = raw
        .post(
            "/v1/customers",
            "email=w@x.example&metadata[tenant_id]=tw",
            None,
        )
        .await
        .json;
    let s = raw
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=subscription&customer={}&line_items[0][price]=price_pro_monthly",
                c["id"].as_str().unwrap()
            ),
            None,
        )
        .await
        .json;
    sim.complete_checkout(s["id"].as_str().unwrap()).unwrap();
    assert!(
        sim.wait_webhooks_idle(Duration::from_secs(10)).await,
        "all webhooks delivered"
    );

    let deliveries = rx.deliveries.lock().clone();
    let mut types = Vec::new();
    for (sig, payload) in &deliveries {
        let event = Webhook::construct_event(payload, sig, &sim.webhook_secret())
            .unwrap_or_else(|e| panic!("delivery does not verify: {e:?}\n{payload}"));
        if let EventObject::InvoicePaid(inv) = &event.data.object {
            assert_eq!(inv.amount_paid, 2500);
        }
        types.push(event.type_.as_str().to_string());
        // Each delivery is also listed by GET /v1/events.
        let id = serde_json::from_str::<serde_json::Value>(payload).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(raw.get(&format!("/v1/events/{id}")).await.status, 200);
    }
    types.sort();
    assert_eq!(
        types,
        [
            "checkout.session.completed",
            "customer.created",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    // A forged signature is rejected by the same verifier.
    let (_, payload) = &deliveries[0];
    let forged = stripe_sim::signature_header("whsec_wrong", sim.now(), payload);
    assert!(Webhook::construct_event(payload, &forged, &sim.webhook_secret()).is_err());
    let genuine = stripe_sim::signature_header(&sim.webhook_secret(), sim.now(), payload);
    assert!(Webhook::construct_event(payload, &genuine, &sim.webhook_secret()).is_ok());
}

#[tokio::test]
async fn failing_receiver_gets_retries_until_2xx() {
    let (rx, url) = Receiver::start(3).await;
    let sim = common::start_with(SimConfig {
        webhook_retry_base_ms: 10,
        ..SimConfig::default()
    });
    sim.set_webhook_url(Some(url));
    sim.create_customer_direct(json!({"email": "retry@x.example"}));
    assert!(sim.wait_webhooks_idle(Duration::from_secs(10)).await);

    let deliveries = rx.deliveries.lock().clone();
    assert_eq!(deliveries.len(), 4, "3 failures then a success");
    assert!(
        deliveries.iter().all(|(_, p)| p == &deliveries[0].1),
        "the same event every time"
    );
    let stats = sim.stats().webhooks;
    assert_eq!(
        (
            stats.attempts,
            stats.failed_attempts,
            stats.delivered,
            stats.pending
        ),
        (4, 3, 1, 0)
    );
}

#[tokio::test]
async fn wait_reports_a_receiver_that_never_answers_2xx() {
    let (rx, url) = Receiver::start(usize::MAX).await;
    let sim = common::start_with(SimConfig {
        webhook_retry_base_ms: 5,
        webhook_url: Some(url),
        ..SimConfig::default()
    });
    sim.create_customer_direct(json!({"email": "never@x.example"}));
    assert!(!sim.wait_webhooks_idle(Duration::from_millis(300)).await);
    assert!(rx.calls.load(Ordering::SeqCst) >= 2, "it kept retrying");
    // Reset abandons queued deliveries.
    sim.reset();
    assert!(sim.wait_webhooks_idle(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn signature_uses_wall_clock_time_while_the_event_keeps_simulator_time() {
    let (rx, url) = Receiver::start(0).await;
    let sim = common::start_with(SimConfig {
        webhook_url: Some(url),
        ..SimConfig::default()
    });
    sim.advance_clock(9 * 86_400);
    sim.create_customer_direct(json!({"email": "later@x.example"}));
    assert!(sim.wait_webhooks_idle(Duration::from_secs(10)).await);
    let (sig, payload) = rx.deliveries.lock()[0].clone();
    // `construct_event` checks the timestamp against the real clock (300 s tolerance):
    // this is what a receiver does, and it must accept a delivery made days later in
    // simulator time.
    let event = Webhook::construct_event(&payload, &sig, &sim.webhook_secret())
        .unwrap_or_else(|e| panic!("delivery after a clock advance does not verify: {e:?}"));
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let t: i64 = sig
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((wall - t).abs() < 60, "signed at wall-clock time");
    // The event and its object carry simulator time, nine days ahead.
    assert!(
        event.created >= sim.now() - 5,
        "event.created is simulator time"
    );
    assert!(event.created > wall + 8 * 86_400);
}
