//! Billing Meters through async-stripe 1.0.0-rc.10: meters, meter events with
//! Stripe's rules (identifier dedup for 24 h of simulator time, the 35-day and
//! 5-minute timestamp window, one concurrent call per customer and meter, faults),
//! cancellation within 24 h, and event summaries.

mod common;

use std::time::Duration;

use serde_json::json;
use stripe::StripeError;
use stripe_billing::billing_meter::{
    CreateBillingMeterDefaultAggregationFormula, DeactivateBillingMeter, ListBillingMeter,
    ReactivateBillingMeter, RetrieveBillingMeter, UpdateBillingMeter,
};
use stripe_billing::billing_meter_event_adjustment::{
    CreateBillingMeterEventAdjustment, CreateBillingMeterEventAdjustmentCancel,
};
use stripe_billing::billing_meter_event_summary::{
    ListIdBillingMeterEventSummary, ListIdBillingMeterEventSummaryValueGroupingWindow,
};
use stripe_billing::{
    BillingMeterEventAdjustmentStatus, BillingMeterEventAdjustmentType,
    BillingMeterResourceAggregationSettingsFormula, BillingMeterStatus,
};
use stripe_sim::{Fault, FaultKind, SimHandle};

use common::metering::{meter, minute, record, sum_meter, summary};

const DAY: i64 = 86_400;

fn customer(sim: &SimHandle) -> String {
    let c = sim.create_customer_direct(json!({"email": "usage@tenant.example"}));
    c["id"].as_str().unwrap().to_string()
}

fn error_of(err: StripeError) -> (u16, stripe::ApiErrors) {
    match err {
        StripeError::Stripe(e, status) => (status, *e),
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

#[tokio::test]
async fn meters_round_trip() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    let created = sum_meter(&client, "api_calls").await;
    assert!(created.id.as_str().starts_with("mtr_"));
    assert_eq!(created.event_name, "api_calls");
    assert_eq!(created.status, BillingMeterStatus::Active);
    assert_eq!(
        created.default_aggregation.formula,
        BillingMeterResourceAggregationSettingsFormula::Sum
    );
    assert_eq!(
        created.customer_mapping.event_payload_key,
        "stripe_customer_id"
    );
    assert_eq!(created.value_settings.event_payload_key, "value");

    let got = RetrieveBillingMeter::new(created.id.clone())
        .send(&client)
        .await
        .expect("retrieve");
    assert_eq!(got.id, created.id);
    let renamed = UpdateBillingMeter::new(created.id.clone())
        .display_name("API calls")
        .send(&client)
        .await
        .expect("update");
    assert_eq!(renamed.display_name, "API calls");

    // An event name belongs to one meter.
    let raw = common::Raw::new(&sim);
    let dup = raw
        .post(
            "/v1/billing/meters",
            "display_name=again&event_name=api_calls&default_aggregation[formula]=sum",
            None,
        )
        .await;
    assert_eq!(dup.status, 400);
    assert_eq!(dup.json["error"]["param"], "event_name");

    let other = meter(
        &client,
        "seats_peak",
        CreateBillingMeterDefaultAggregationFormula::Last,
    )
    .await;
    let off = DeactivateBillingMeter::new(other.id.clone())
        .send(&client)
        .await
        .expect("deactivate");
    assert_eq!(off.status, BillingMeterStatus::Inactive);
    assert!(off.status_transitions.deactivated_at.is_some());
    let active = ListBillingMeter::new()
        .status(BillingMeterStatus::Active)
        .send(&client)
        .await
        .expect("list");
    assert_eq!(
        active
            .data
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        [created.id.as_str()]
    );
    let on = ReactivateBillingMeter::new(other.id.clone())
        .send(&client)
        .await
        .expect("reactivate");
    assert_eq!(on.status, BillingMeterStatus::Active);
    let all = ListBillingMeter::new()
        .send(&client)
        .await
        .expect("list all");
    assert_eq!(all.data.len(), 2, "newest first: {:?}", all.data);
    assert_eq!(all.data[0].id, other.id);
    assert_eq!(sim.stats().objects["billing_meters"], 2);
}

#[tokio::test]
async fn an_identifier_counts_once_for_24_hours_of_simulator_time() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    let m = sum_meter(&client, "api_calls").await;
    let cus = customer(&sim);
    let start = minute(sim.now());

    let ev = record(&client, "api_calls", &cus, 5, "tenant-a:1-5", None)
        .await
        .expect("first send");
    assert_eq!(ev.identifier, "tenant-a:1-5");
    assert_eq!(ev.payload["value"], "5");
    // A retry (after a lost answer) is refused and counts nothing.
    let (status, e) = error_of(
        record(&client, "api_calls", &cus, 5, "tenant-a:1-5", None)
            .await
            .expect_err("duplicate"),
    );
    assert_eq!(status, 400);
    assert_eq!(
        e.message.as_deref(),
        Some("An event already exists with identifier tenant-a:1-5.")
    );
    assert_eq!(
        summary(&client, m.id.as_str(), &cus, start, start + 120).await,
        5.0
    );

    // A day later the identifier is forgotten: the same one counts again.
    sim.advance_clock(DAY - 60);
    assert!(record(&client, "api_calls", &cus, 5, "tenant-a:1-5", None)
        .await
        .is_err());
    sim.advance_clock(60);
    record(&client, "api_calls", &cus, 5, "tenant-a:1-5", None)
        .await
        .expect("forgotten after 24 h");
    assert_eq!(
        summary(&client, m.id.as_str(), &cus, start, minute(sim.now()) + 60).await,
        10.0
    );
    assert_eq!(sim.stats().objects["billing_meter_events"], 2);
}

#[tokio::test]
async fn timestamps_within_35_days_back_and_5_minutes_ahead() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    sum_meter(&client, "api_calls").await;
    let cus = customer(&sim);
    let now = sim.now();
    for (ts, ok) in [
        (now - 35 * DAY - 5, false),
        (now - 35 * DAY + 60, true),
        (now + 290, true),
        (now + 310, false),
    ] {
        let r = record(&client, "api_calls", &cus, 1, &format!("ts-{ts}"), Some(ts)).await;
        match (r, ok) {
            (Ok(ev), true) => assert_eq!(ev.timestamp, ts),
            (Err(e), false) => {
                let (status, e) = error_of(e);
                assert_eq!((status, e.param.as_deref()), (400, Some("timestamp")));
            }
            (r, _) => panic!("timestamp now{:+}: {r:?}", ts - now),
        }
    }
}

#[tokio::test]
async fn a_second_concurrent_call_for_the_same_customer_and_meter_is_429() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    let m = sum_meter(&client, "api_calls").await;
    let (a, b) = (customer(&sim), customer(&sim));
    let start = minute(sim.now());
    // The first call is processed, then its answer held for a while.
    sim.add_fault(Fault {
        method: "POST".into(),
        path: "/v1/billing/meter_events".into(),
        count: 1,
        kind: FaultKind::DelayMs(2_000),
    });
    let slow = {
        let client = client.clone();
        let a = a.clone();
        tokio::spawn(async move { record(&client, "api_calls", &a, 1, "slow", None).await })
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while sim.meter_event_calls_in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the first call is in flight");

    let (status, e) = error_of(
        record(&client, "api_calls", &a, 7, "same-customer", None)
            .await
            .expect_err("429 while the first runs"),
    );
    assert_eq!(status, 429);
    assert_eq!(e.code, Some(stripe::ApiErrorsCode::RateLimit));
    record(&client, "api_calls", &b, 3, "other-customer", None)
        .await
        .expect("another customer is not limited");

    slow.await.unwrap().expect("the first call answers");
    record(&client, "api_calls", &a, 7, "same-customer", None)
        .await
        .expect("after the first answered, the retry goes through");
    let end = minute(sim.now()) + 60;
    assert_eq!(summary(&client, m.id.as_str(), &a, start, end).await, 8.0);
    assert_eq!(summary(&client, m.id.as_str(), &b, start, end).await, 3.0);
}

#[tokio::test]
async fn faults_apply_and_a_retried_identifier_still_counts_once() {
    let sim = common::start_sim();
    let client = common::client_with_timeout(&sim, Duration::from_secs(5));
    let m = sum_meter(&client, "api_calls").await;
    let cus = customer(&sim);
    let start = minute(sim.now());
    let fault = |kind| Fault {
        method: "POST".into(),
        path: "/v1/billing/meter_events".into(),
        count: 1,
        kind,
    };
    // 500: not processed.
    sim.add_fault(fault(FaultKind::Status(500)));
    let (status, _) = error_of(
        record(&client, "api_calls", &cus, 4, "batch-1", None)
            .await
            .expect_err("injected 500"),
    );
    assert_eq!(status, 500);
    // Dropped answer: processed, then the connection closes.
    sim.add_fault(fault(FaultKind::Drop));
    assert!(record(&client, "api_calls", &cus, 4, "batch-1", None)
        .await
        .is_err());
    // The retry with the same identifier is refused as a duplicate: counted once.
    let (status, _) = error_of(
        record(&client, "api_calls", &cus, 4, "batch-1", None)
            .await
            .expect_err("duplicate"),
    );
    assert_eq!(status, 400);
    assert_eq!(
        summary(&client, m.id.as_str(), &cus, start, start + 120).await,
        4.0
    );
}

#[tokio::test]
async fn events_are_cancelled_only_within_24_hours() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    let m = sum_meter(&client, "api_calls").await;
    let cus = customer(&sim);
    let start = minute(sim.now());
    for (id, v) in [("e1", 10), ("e2", 20), ("e3", 40)] {
        record(&client, "api_calls", &cus, v, id, None)
            .await
            .unwrap();
    }
    let cancel = |id: &str| {
        CreateBillingMeterEventAdjustment::new("api_calls", BillingMeterEventAdjustmentType::Cancel)
            .cancel(CreateBillingMeterEventAdjustmentCancel {
                identifier: Some(id.to_string()),
            })
    };
    let adj = cancel("e2").send(&client).await.expect("cancel");
    assert_eq!(adj.status, BillingMeterEventAdjustmentStatus::Complete);
    assert_eq!(adj.cancel.unwrap().identifier.as_deref(), Some("e2"));
    let end = start + 120;
    assert_eq!(
        summary(&client, m.id.as_str(), &cus, start, end).await,
        50.0
    );
    // Cancelling again changes nothing.
    cancel("e2").send(&client).await.expect("again");
    assert_eq!(
        summary(&client, m.id.as_str(), &cus, start, end).await,
        50.0
    );

    sim.advance_clock(DAY);
    let (status, e) = error_of(cancel("e3").send(&client).await.expect_err("too late"));
    assert_eq!(
        (status, e.param.as_deref()),
        (400, Some("cancel[identifier]"))
    );
    assert_eq!(
        summary(&client, m.id.as_str(), &cus, start, end).await,
        50.0
    );
}

#[tokio::test]
async fn summaries_aggregate_per_formula_and_group_by_hour() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    let sum = sum_meter(&client, "api_calls").await;
    let count = meter(
        &client,
        "logins",
        CreateBillingMeterDefaultAggregationFormula::Count,
    )
    .await;
    let last = meter(
        &client,
        "storage_gb",
        CreateBillingMeterDefaultAggregationFormula::Last,
    )
    .await;
    let cus = customer(&sim);
    let hour = 3600;
    let base = sim.now() - sim.now().rem_euclid(hour) - 3 * hour;
    // Three hours: 5 + 7 in the first, nothing in the second, 11 in the third.
    for (i, (offset, v)) in [(10, 5), (20, 7), (2 * hour + 5, 11)].iter().enumerate() {
        for name in ["api_calls", "logins", "storage_gb"] {
            record(
                &client,
                name,
                &cus,
                *v,
                &format!("{name}-{i}"),
                Some(base + offset),
            )
            .await
            .unwrap();
        }
    }
    let end = base + 3 * hour;
    assert_eq!(
        summary(&client, sum.id.as_str(), &cus, base, end).await,
        23.0
    );
    assert_eq!(
        summary(&client, count.id.as_str(), &cus, base, end).await,
        3.0
    );
    assert_eq!(
        summary(&client, last.id.as_str(), &cus, base, end).await,
        11.0
    );
    assert_eq!(
        summary(&client, sum.id.as_str(), &cus, base, base + 60).await,
        12.0,
        "start inclusive"
    );
    assert_eq!(
        summary(&client, sum.id.as_str(), &cus, base + 60, end).await,
        11.0
    );

    let hourly = || {
        ListIdBillingMeterEventSummary::new(sum.id.clone(), cus.as_str(), end, base)
            .value_grouping_window(ListIdBillingMeterEventSummaryValueGroupingWindow::Hour)
    };
    let all = hourly().send(&client).await.expect("hourly");
    let windows: Vec<(i64, i64, f64)> = all
        .data
        .iter()
        .map(|s| (s.start_time, s.end_time, s.aggregated_value))
        .collect();
    assert_eq!(
        windows,
        [
            (base + 2 * hour, base + 3 * hour, 11.0),
            (base, base + hour, 12.0)
        ],
        "newest first, windows with events only"
    );
    let first = hourly().limit(1).send(&client).await.unwrap();
    assert!(first.has_more);
    let second = hourly()
        .limit(1)
        .starting_after(first.data[0].id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(second.data[0].start_time, base);
    assert!(!second.has_more);

    // Bounds must be aligned: minutes, or the grouping window.
    let raw = common::Raw::new(&sim);
    let id = sum.id.as_str();
    for (query, param) in [
        (
            format!("start_time={}&end_time={end}", base + 1),
            "start_time",
        ),
        (
            format!(
                "start_time={}&end_time={end}&value_grouping_window=hour",
                base + 60
            ),
            "start_time",
        ),
        (format!("start_time={end}&end_time={base}"), "end_time"),
    ] {
        let r = raw
            .get(&format!(
                "/v1/billing/meters/{id}/event_summaries?customer={cus}&{query}"
            ))
            .await;
        assert_eq!(r.status, 400, "{query}: {}", r.json);
        assert_eq!(r.json["error"]["param"], param, "{query}");
    }
}

#[tokio::test]
async fn events_for_no_meter_or_an_unknown_customer_are_refused() {
    let sim = common::start_sim();
    let client = common::client(&sim);
    sum_meter(&client, "api_calls").await;
    let cus = customer(&sim);
    for (name, who, param) in [
        ("no_such_meter", cus.as_str(), "event_name"),
        ("api_calls", "cus_nobody", "payload[stripe_customer_id]"),
    ] {
        let (status, e) = error_of(
            record(&client, name, who, 1, &format!("{name}-{who}"), None)
                .await
                .expect_err("refused"),
        );
        assert_eq!((status, e.param.as_deref()), (400, Some(param)));
    }
    let raw = common::Raw::new(&sim);
    let r = raw
        .post(
            "/v1/billing/meter_events",
            &format!("event_name=api_calls&payload[stripe_customer_id]={cus}&payload[value]=1.5"),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"]["param"], "payload[value]");
    assert_eq!(sim.stats().objects["billing_meter_events"], 0);
}
