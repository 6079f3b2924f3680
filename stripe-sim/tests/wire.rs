//! Stripe's wire format and rules, checked over raw HTTP: auth, error objects and
//! statuses, nested form keys, list and search pagination, idempotency, search lag,
//! rate limiting, statistics, the control plane and the hosted checkout page.

mod common;

use std::time::Duration;

use common::Raw;
use reqwest::Method;
use serde_json::json;
use stripe_sim::SimConfig;

#[tokio::test]
async fn auth_and_error_objects() {
    let sim = common::start_sim();
    let raw = Raw::new(&sim);

    let r = raw
        .send(raw.http.get(format!("{}/v1/customers", raw.base)))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["error"]["type"], "invalid_request_error");

    // Basic auth with the key as user name is accepted, and any Stripe-Version.
    let r = raw
        .send(
            raw.http
                .get(format!("{}/v1/customers", raw.base))
                .basic_auth(common::KEY, Some(""))
                .header("Stripe-Version", "2020-08-27"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["object"], "list");

    let r = raw.get("/v1/customers/cus_missing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["error"]["code"], "resource_missing");
    assert_eq!(r.json["error"]["param"], "id");
    assert!(r.headers.contains_key("request-id"));

    let r = raw
        .post(
            "/v1/checkout/sessions",
            "mode=subscription&line_items[0][price]=price_nope",
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["type"], "invalid_request_error");
    assert_eq!(r.json["error"]["param"], "line_items[0][price]");

    let r = raw
        .post(
            "/v1/checkout/sessions",
            "line_items[0][price]=price_pro_monthly",
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["param"], "mode");

    let r = raw.get("/v1/customers?limit=500").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["param"], "limit");

    let r = raw.get("/v1/nonsense").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn form_encoding_and_metadata_semantics() {
    let sim = common::start_sim();
    let raw = Raw::new(&sim);
    let r = raw
        .post(
            "/v1/customers",
            "email=a%2Bb%40x.example&name=Ann+Lee&metadata%5Btenant_id%5D=t1&metadata[tier]=gold&description=vip",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["email"], "a+b@x.example");
    assert_eq!(r.json["name"], "Ann Lee");
    assert_eq!(
        r.json["metadata"],
        json!({"tenant_id": "t1", "tier": "gold"})
    );
    let id = r.json["id"].as_str().unwrap().to_string();

    // Update merges metadata; an empty value deletes a key; expand[] is accepted.
    let r = raw
        .post(
            &format!("/v1/customers/{id}"),
            "metadata[tier]=&metadata[x]=1&expand[]=test_clock",
            None,
        )
        .await;
    assert_eq!(r.json["metadata"], json!({"tenant_id": "t1", "x": "1"}));

    let r = raw.delete(&format!("/v1/customers/{id}")).await;
    assert_eq!(
        r.json,
        json!({"id": id, "object": "customer", "deleted": true})
    );
    assert_eq!(raw.delete(&format!("/v1/customers/{id}")).await.status, 404);
    assert!(sim.customers().is_empty());
}

#[tokio::test]
async fn list_pagination_and_search_pages() {
    let sim = common::start_sim();
    let raw = Raw::new(&sim);
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = sim.create_customer_direct(
            json!({"email": format!("u{i}@x.example"), "metadata": {"group": "g"}}),
        );
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    // Newest first with has_more / starting_after / ending_before.
    let p1 = raw.get("/v1/customers?limit=2").await.json;
    assert_eq!(p1["has_more"], true);
    assert_eq!(p1["data"][0]["id"], ids[4].as_str());
    assert_eq!(p1["url"], "/v1/customers");
    let p2 = raw
        .get(&format!("/v1/customers?limit=2&starting_after={}", ids[3]))
        .await
        .json;
    assert_eq!(p2["data"][0]["id"], ids[2].as_str());
    assert_eq!(p2["data"][1]["id"], ids[1].as_str());
    assert_eq!(p2["has_more"], true);
    let p3 = raw
        .get(&format!("/v1/customers?limit=2&starting_after={}", ids[1]))
        .await
        .json;
    assert_eq!(p3["data"].as_array().unwrap().len(), 1);
    assert_eq!(p3["has_more"], false);
    let back = raw
        .get(&format!("/v1/customers?limit=2&ending_before={}", ids[1]))
        .await
        .json;
    assert_eq!(back["data"][0]["id"], ids[3].as_str());
    assert_eq!(back["data"][1]["id"], ids[2].as_str());
    assert_eq!(back["has_more"], true);

    // Search pages through next_page.
    let q = "/v1/customers/search?query=metadata%5B%27group%27%5D%3A%27g%27&limit=3";
    let s1 = raw.get(q).await.json;
    assert_eq!(s1["object"], "search_result");
    assert_eq!(s1["data"].as_array().unwrap().len(), 3);
    assert_eq!(s1["has_more"], true);
    let next = s1["next_page"].as_str().unwrap();
    let s2 = raw.get(&format!("{q}&page={next}")).await.json;
    assert_eq!(s2["data"].as_array().unwrap().len(), 2);
    assert_eq!(s2["has_more"], false);
    assert!(s2["next_page"].is_null());

    let bad = raw
        .get("/v1/customers/search?query=email%3A%27a%27%20OR%20email%3A%27b%27")
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["param"], "query");
}

#[tokio::test]
async fn search_lags_but_list_does_not() {
    let sim = common::start_with(SimConfig {
        search_lag_ms: 2_000,
        ..SimConfig::default()
    });
    let raw = Raw::new(&sim);
    let c = raw
        .post(
            "/v1/customers",
            "email=lag@x.example&metadata[tenant_id]=t-lag",
            None,
        )
        .await
        .json;
    let id = c["id"].as_str().unwrap();

    let listed = raw.get("/v1/customers?email=lag@x.example").await.json;
    assert_eq!(listed["data"][0]["id"], id, "list sees new objects at once");
    let q = "/v1/customers/search?query=metadata%5B%27tenant_id%27%5D%3A%27t-lag%27";
    assert_eq!(
        raw.get(q).await.json["data"].as_array().unwrap().len(),
        0,
        "search lags"
    );

    sim.advance_clock(3);
    assert_eq!(
        raw.get(q).await.json["data"][0]["id"],
        id,
        "visible once the lag passed"
    );
}

#[tokio::test]
async fn idempotency_rules() {
    let sim = common::start_sim();
    let raw = Raw::new(&sim);

    let first = raw
        .post("/v1/customers", "email=i@x.example", Some("key-1"))
        .await;
    assert_eq!(first.status, 200);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let replay = raw
        .post("/v1/customers", "email=i@x.example", Some("key-1"))
        .await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.json, first.json, "replay returns the same object");
    assert_eq!(
        sim.customers().len(),
        1,
        "replay did not create a second customer"
    );

    let other = raw
        .post("/v1/customers", "email=other@x.example", Some("key-1"))
        .await;
    assert_eq!(other.status, 400);
    assert_eq!(other.json["error"]["type"], "idempotency_error");

    // A validation error does not store the key: fixing the request with the same key works.
    let bad = raw
        .post("/v1/customers", "email=not-an-email", Some("key-2"))
        .await;
    assert_eq!(bad.status, 400);
    let good = raw
        .post("/v1/customers", "email=ok@x.example", Some("key-2"))
        .await;
    assert_eq!(good.status, 200);

    // In flight: while the first request is held by latency, a second one gets 409.
    sim.set_latency_ms(1_000);
    let raw2 = Raw::new(&sim);
    let slow = tokio::spawn(async move {
        raw2.post("/v1/customers", "email=slow@x.example", Some("key-3"))
            .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sim.idempotent_requests_in_flight() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first request never started"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let conflict = raw
        .post("/v1/customers", "email=slow@x.example", Some("key-3"))
        .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json["error"]["type"], "idempotency_error");
    assert_eq!(slow.await.unwrap().status, 200);
    sim.set_latency_ms(0);

    // After 24 h of simulator time the key is forgotten: the same key runs again.
    sim.advance_clock(24 * 3600 + 1);
    let again = raw
        .post("/v1/customers", "email=i@x.example", Some("key-1"))
        .await;
    assert_eq!(again.status, 200);
    assert!(again.headers.get("idempotent-replayed").is_none());
    assert_ne!(again.json["id"], first.json["id"]);
}

#[tokio::test]
async fn stats_control_plane_and_clock() {
    let sim = common::start_sim();
    let raw = Raw::new(&sim);
    let c = raw
        .post("/v1/customers", "email=s@x.example", None)
        .await
        .json;
    let id = c["id"].as_str().unwrap();
    raw.get(&format!("/v1/customers/{id}")).await;
    raw.get(&format!("/v1/customers/{id}")).await;

    let stats = raw
        .control(Method::GET, "/_sim/stats", json!({}))
        .await
        .json;
    assert_eq!(stats["requests"]["POST /v1/customers"], 1);
    assert_eq!(stats["requests"]["GET /v1/customers/{id}"], 2);
    assert_eq!(stats["objects"]["customers"], 1);
    assert_eq!(
        serde_json::to_value(sim.stats()).unwrap()["requests"],
        stats["requests"]
    );

    let now = sim.now();
    let r = raw
        .control(
            Method::POST,
            "/_sim/clock/advance",
            json!({"seconds": 3600}),
        )
        .await
        .json;
    assert!(r["now"].as_i64().unwrap() >= now + 3600);

    // Checkout through the control plane, subscription status changes.
    let s = raw
        .post(
            "/v1/checkout/sessions",
            &format!("mode=subscription&customer={id}&line_items[0][price]=price_pro_monthly&line_items[0][quantity]=1&subscription_data[metadata][tenant_id]=t9"),
            None,
        )
        .await
        .json;
    let sub = raw
        .control(
            Method::POST,
            &format!("/_sim/checkout/{}/complete", s["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(sub.status, 200);
    assert_eq!(sub.json["object"], "subscription");
    assert_eq!(sub.json["metadata"]["tenant_id"], "t9");
    let sub_id = sub.json["id"].as_str().unwrap();
    let again = raw
        .control(
            Method::POST,
            &format!("/_sim/checkout/{}/complete", s["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(
        again.status, 400,
        "a completed session cannot be paid twice"
    );

    let pd = raw
        .control(
            Method::POST,
            &format!("/_sim/subscriptions/{sub_id}/status"),
            json!({"status": "past_due"}),
        )
        .await;
    assert_eq!(pd.json["status"], "past_due");
    let types: Vec<String> = sim
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(types.contains(&"invoice.payment_failed".to_string()));
    let gone = raw
        .control(
            Method::POST,
            &format!("/_sim/subscriptions/{sub_id}/status"),
            json!({"status": "canceled"}),
        )
        .await;
    assert_eq!(gone.json["status"], "canceled");
    assert_eq!(sim.events()[0]["type"], "customer.subscription.deleted");

    let filtered = raw
        .get("/v1/events?type=customer.subscription.deleted")
        .await
        .json;
    assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
    let ev_id = filtered["data"][0]["id"].as_str().unwrap();
    let ev = raw.get(&format!("/v1/events/{ev_id}")).await.json;
    assert_eq!(ev["object"], "event");
    assert_eq!(ev["api_version"], stripe_sim::API_VERSION);
    assert_eq!(ev["data"]["object"]["id"], sub_id);

    raw.control(Method::POST, "/_sim/reset", json!({})).await;
    assert!(sim.customers().is_empty());
    assert!(sim.events().is_empty());
    assert!(sim.stats().requests.is_empty());
    // Seeded prices survive a reset.
    assert_eq!(raw.get("/v1/prices/price_pro_monthly").await.status, 200);
}

#[tokio::test]
async fn subscriptions_renew_or_end_when_the_clock_passes_the_period() {
    let sim = common::start_sim();
    let c = sim.create_customer_direct(json!({"email": "r@x.example"}));
    let raw = Raw::new(&sim);
    let mk = |cust: String| {
        format!("mode=subscription&customer={cust}&line_items[0][price]=price_pro_monthly")
    };
    let s1 = raw
        .post(
            "/v1/checkout/sessions",
            &mk(c["id"].as_str().unwrap().into()),
            None,
        )
        .await
        .json;
    let s2 = raw
        .post(
            "/v1/checkout/sessions",
            &mk(c["id"].as_str().unwrap().into()),
            None,
        )
        .await
        .json;
    let renew = sim.complete_checkout(s1["id"].as_str().unwrap()).unwrap();
    let ending = sim.complete_checkout(s2["id"].as_str().unwrap()).unwrap();
    let ending_id = ending["id"].as_str().unwrap();
    raw.post(
        &format!("/v1/subscriptions/{ending_id}"),
        "cancel_at_period_end=true",
        None,
    )
    .await;
    let end = renew["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();

    sim.advance_clock(32 * 86_400);
    let renewed = sim.object(renew["id"].as_str().unwrap()).unwrap();
    assert_eq!(renewed["status"], "active");
    assert_eq!(renewed["items"]["data"][0]["current_period_start"], end);
    assert_ne!(renewed["latest_invoice"], renew["latest_invoice"]);
    assert_eq!(sim.object(ending_id).unwrap()["status"], "canceled");
}

#[tokio::test]
async fn rate_limit_answers_429_with_should_retry() {
    let sim = common::start_with(SimConfig {
        rate_limit: Some(5),
        ..SimConfig::default()
    });
    let raw = Raw::new(&sim);
    let mut limited = None;
    for _ in 0..20 {
        let r = raw.get("/v1/customers").await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a burst beyond the limit is rejected");
    assert_eq!(r.json["error"]["type"], "invalid_request_error");
    assert_eq!(r.json["error"]["code"], "rate_limit");
    assert_eq!(r.headers["stripe-should-retry"], "true");
    // The control plane is never limited.
    assert_eq!(
        raw.control(Method::GET, "/_sim/stats", json!({}))
            .await
            .status,
        200
    );
}

/// Every `/v1` request is counted by the second it arrived in, refused ones
/// too (Stripe saw them); the control plane is not.
#[tokio::test]
async fn requests_are_counted_per_second_of_arrival() {
    let sim = common::start_with(SimConfig {
        rate_limit: Some(3),
        ..SimConfig::default()
    });
    let raw = Raw::new(&sim);
    for _ in 0..5 {
        raw.get("/v1/customers").await;
    }
    raw.control(Method::GET, "/_sim/stats", json!({})).await;
    let counted: u64 = sim.requests_per_second().values().sum();
    assert_eq!(counted, 5);
    assert_eq!(sim.request_arrivals_us().len(), 5);
    let wire = raw
        .control(Method::GET, "/_sim/stats/per_second", json!({}))
        .await;
    let per_second = wire.json["requests_per_second"].as_object().unwrap();
    let total: u64 = per_second.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, 5);
    sim.reset();
    assert!(sim.requests_per_second().is_empty());
}

#[tokio::test]
async fn hosted_checkout_page_pays_and_redirects() {
    let sim = common::start_sim();
    let raw = Raw::new(&sim);
    let c = sim.create_customer_direct(json!({"email": "h@x.example"}));
    let s = raw
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=subscription&customer={}&line_items[0][price]=price_pro_monthly&success_url=http%3A%2F%2Flocalhost%2Fok%3Fs%3D%7BCHECKOUT_SESSION_ID%7D",
                c["id"].as_str().unwrap()
            ),
            None,
        )
        .await
        .json;
    let id = s["id"].as_str().unwrap();
    let page = raw.send(raw.http.get(s["url"].as_str().unwrap())).await;
    assert_eq!(page.status, 200);
    let html = page.json.as_str().unwrap();
    assert!(html.contains("<button") && html.contains(">Pay<"), "{html}");
    assert!(html.contains(&format!("/checkout/{id}/pay")));

    let paid = raw
        .send(raw.http.post(format!("{}/checkout/{id}/pay", raw.base)))
        .await;
    assert_eq!(paid.status, 303);
    assert_eq!(
        paid.headers["location"],
        format!("http://localhost/ok?s={id}").as_str()
    );
    let session = raw
        .get(&format!("/v1/checkout/sessions/{id}?expand[]=subscription"))
        .await
        .json;
    assert_eq!(session["status"], "complete");
    assert_eq!(
        session["subscription"]["object"], "subscription",
        "expand[] inlines the subscription"
    );
    // Paying again is refused.
    let again = raw
        .send(raw.http.post(format!("{}/checkout/{id}/pay", raw.base)))
        .await;
    assert_eq!(again.status, 400);
}

#[tokio::test]
async fn email_filter_follows_updates_and_deletes() {
    let sim = common::start_sim();
    let raw = Raw::new(&sim);
    let a = sim.create_customer_direct(json!({"email": "same@x.example"}));
    let b = sim.create_customer_direct(json!({"email": "same@x.example"}));
    let ids = |r: &serde_json::Value| -> Vec<String> {
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        ids(&raw.get("/v1/customers?email=same@x.example").await.json),
        [b.clone(), a.clone()]
    );
    raw.post(&format!("/v1/customers/{b}"), "email=moved@x.example", None)
        .await;
    assert_eq!(
        ids(&raw.get("/v1/customers?email=same@x.example").await.json),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&raw.get("/v1/customers?email=moved@x.example").await.json),
        vec![b.clone()]
    );
    raw.delete(&format!("/v1/customers/{a}")).await;
    assert!(ids(&raw.get("/v1/customers?email=same@x.example").await.json).is_empty());
    // created[gt] stops at older customers.
    sim.advance_clock(10);
    let t = sim.now();
    let c = sim.create_customer_direct(json!({"email": "new@x.example"}));
    let recent = raw
        .get(&format!("/v1/customers?created[gte]={t}"))
        .await
        .json;
    assert_eq!(ids(&recent), [c["id"].as_str().unwrap().to_string()]);
}
