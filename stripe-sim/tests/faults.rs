//! Each injected fault reaches async-stripe as the error a real outage produces:
//! an error status (request not executed), an answer slower than the client's
//! timeout (request executed), a dead connection (request executed).

mod common;

use std::time::Duration;

use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::customer::{CreateCustomer, ListCustomer, RetrieveCustomer};
use stripe_sim::{Fault, FaultKind};

fn fault(method: &str, path: &str, count: u32, kind: FaultKind) -> Fault {
    Fault {
        method: method.into(),
        path: path.into(),
        count,
        kind,
    }
}

#[tokio::test]
async fn status_fault_is_an_api_error_and_does_not_execute() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    sim.add_fault(fault("POST", "/v1/customers", 1, FaultKind::Status(500)));

    let key = IdempotencyKey::new("fault-status-1").unwrap();
    let err = CreateCustomer::new()
        .email("f@x.example")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key.clone()))
        .send(&client)
        .await
        .expect_err("injected 500");
    match err {
        StripeError::Stripe(e, 500) => assert_eq!(e.type_, stripe::ApiErrorsType::ApiError),
        other => panic!("expected a 500 api_error, got {other:?}"),
    }
    assert!(
        sim.customers().is_empty(),
        "a status fault does not execute the request"
    );
    assert!(sim.faults().is_empty(), "count 1 is used up");

    // The key was not stored: the retry with the same key executes (not a replay).
    let c = CreateCustomer::new()
        .email("f@x.example")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&client)
        .await
        .expect("retry succeeds");
    assert_eq!(sim.customers().len(), 1);
    assert_eq!(sim.customers()[0]["id"], c.id.as_str());

    // Other statuses carry Stripe's error types.
    sim.add_fault(fault(
        "GET",
        "/v1/customers/{id}",
        1,
        FaultKind::Status(429),
    ));
    match RetrieveCustomer::new(c.id.clone()).send(&client).await {
        Err(StripeError::Stripe(e, 429)) => {
            assert_eq!(e.code, Some(stripe::ApiErrorsCode::RateLimit));
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(
        RetrieveCustomer::new(c.id.clone())
            .send(&client)
            .await
            .is_ok(),
        "fault used up"
    );
}

#[tokio::test]
async fn delay_fault_outlasts_the_client_timeout_but_executes() {
    let sim = common::start_sim();
    let client = common::client_with_timeout(&sim, Duration::from_millis(300));
    sim.add_fault(fault("post", "/v1/customers", 1, FaultKind::DelayMs(1_500)));

    let key = IdempotencyKey::new("fault-delay-1").unwrap();
    let started = std::time::Instant::now();
    let err = CreateCustomer::new()
        .email("d@x.example")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key.clone()))
        .send(&client)
        .await
        .expect_err("client times out");
    assert!(matches!(err, StripeError::Timeout), "got {err:?}");
    assert!(started.elapsed() < Duration::from_millis(1_400));
    assert_eq!(sim.customers().len(), 1, "the request was executed");

    // The retry with the same key replays the created customer.
    let again = CreateCustomer::new()
        .email("d@x.example")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&client)
        .await
        .expect("replay");
    assert_eq!(again.id.as_str(), sim.customers()[0]["id"]);
    assert_eq!(sim.customers().len(), 1);
}

#[tokio::test]
async fn drop_fault_closes_the_connection_after_executing() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    sim.add_fault(fault("POST", "/v1/customers", 1, FaultKind::Drop));

    let key = IdempotencyKey::new("fault-drop-1").unwrap();
    let err = CreateCustomer::new()
        .email("x@x.example")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key.clone()))
        .send(&client)
        .await
        .expect_err("connection dropped");
    assert!(matches!(err, StripeError::ClientError(_)), "got {err:?}");
    assert_eq!(
        sim.customers().len(),
        1,
        "the request was executed before the drop"
    );

    let again = CreateCustomer::new()
        .email("x@x.example")
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&client)
        .await
        .expect("replay after drop");
    assert_eq!(again.id.as_str(), sim.customers()[0]["id"]);

    // A raw TCP client sees no response byte at all.
    sim.add_fault(fault("GET", "/v1/customers", 1, FaultKind::Drop));
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", sim.port()))
        .await
        .unwrap();
    s.write_all(
        b"GET /v1/customers HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk_test_x\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "expected EOF/reset, got {n:?} {buf:?}"
    );
    assert!(
        ListCustomer::new().send(&client).await.is_ok(),
        "fault used up"
    );
}

#[tokio::test]
async fn faults_via_control_plane_match_templates() {
    let sim = common::start_sim();
    let raw = common::Raw::new(&sim);
    let r = raw
        .control(
            reqwest::Method::POST,
            "/_sim/faults",
            serde_json::json!({"method": "GET", "path": "/v1/customers/{id}", "count": 2, "status": 503}),
        )
        .await;
    assert_eq!(r.status, 200);
    let c = sim.create_customer_direct(serde_json::json!({"email": "t@x.example"}));
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());
    let r = raw.get(&path).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json["error"]["type"], "api_error");
    assert_eq!(r.headers["stripe-should-retry"], "true");
    assert_eq!(
        raw.get("/v1/customers").await.status,
        200,
        "other templates unaffected"
    );
    raw.control(
        reqwest::Method::DELETE,
        "/_sim/faults",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(raw.get(&path).await.status, 200);
    let bad = raw
        .control(
            reqwest::Method::POST,
            "/_sim/faults",
            serde_json::json!({"path": "/v1/customers"}),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_random_fault_strikes_about_its_share_until_cleared() {
    let sim = common::start_sim();
    let raw = common::Raw::new(&sim);
    let added = raw
        .control(
            reqwest::Method::POST,
            "/_sim/faults",
            serde_json::json!({"method": "GET", "path": "/v1/customers", "percent": 50, "status": 500}),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.json);
    assert_eq!(added.json["random"][0]["percent"], 50);
    let mut failed = 0;
    for _ in 0..200 {
        if raw.get("/v1/customers").await.status == 500 {
            failed += 1;
        }
    }
    // 200 fair coin flips: outside 60..=140 once in ~10^8 runs.
    assert!((60..=140).contains(&failed), "{failed} of 200 failed");
    assert_eq!(
        raw.get("/v1/customers/search?query=email:'x'").await.status,
        200
    );
    sim.clear_faults();
    for _ in 0..20 {
        assert_eq!(raw.get("/v1/customers").await.status, 200);
    }
}
