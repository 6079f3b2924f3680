//! Usage to Stripe (issue 20): the ledger forwarded to Stripe's meters in
//! batches named after their ledger range, counted once whatever fails in
//! between, in the right period, on the renewal invoice; `reconcile --usage`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use stripe_sim::{SimConfig, SimHandle};
use tenant_billing::domain::{Role, TenantId};

use crate::backend_tests;
use crate::child::eventually;
use crate::helpers::{sim_config_with, spawn_instance, Backend, TestApp, TestDatabase};

/// Pro bills API calls past 100 a period at 2 cents each through Stripe's
/// `api_calls` meter; forwarding paced at 100 ms so tests run quickly.
pub const BILLED: [(&str, &str); 6] = [
    ("APP__METERS__API_CALLS__STRIPE_METER", "api_calls"),
    (
        "APP__PLANS__PRO__METERED_PRICES__API_CALLS",
        "price_pro_api_calls",
    ),
    ("APP__PLANS__PRO__METERED_UNIT_AMOUNTS__API_CALLS", "2"),
    ("APP__PLANS__PRO__OVERAGE", "allow"),
    ("APP__PLANS__PRO__LIMITS__API_CALLS", "100"),
    ("APP__USAGE__FORWARD_INTERVAL_MS", "100"),
];

/// The simulator seeded for `BILLED` (meter `mtr_api_calls`).
pub fn billed_sim(config: SimConfig) -> SimHandle {
    let seeded = sim_config_with(&BILLED);
    let mut prices = seeded.prices;
    prices.extend(config.prices.iter().cloned());
    SimHandle::start(SimConfig {
        prices,
        metered_prices: seeded.metered_prices,
        ..config
    })
    .expect("start stripe-sim")
}

pub async fn billed_app(backend: Backend, sim: SimHandle) -> TestApp {
    spawn_instance(TestDatabase::migrated(backend), sim, &BILLED).await
}

/// Records `events` as one batch with a service token; expects every one recorded.
pub async fn record_batch(
    base: &str,
    client: &reqwest::Client,
    token: &str,
    tenant: &str,
    events: &[Value],
) {
    let response = client
        .post(format!("{base}/v1/tenants/{tenant}/usage/batch"))
        .bearer_auth(token)
        .json(&json!({ "events": events }))
        .send()
        .await
        .expect("usage batch answered");
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["refused"], 0, "{answer}");
}

pub fn call(key: &str, quantity: i64) -> Value {
    json!({ "idempotency_key": key, "meter": "api_calls", "quantity": quantity })
}

/// `usage_forward_lag_seconds` as this instance's /metrics shows it.
pub async fn lag(app: &TestApp) -> f64 {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("usage_forward_lag_seconds "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no usage_forward_lag_seconds in\n{text}"))
}

/// Waits until everything recorded has been accepted by Stripe.
pub async fn forwarded(app: &TestApp, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if lag(app).await == 0.0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage still not forwarded"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tenant's Stripe customer.
pub fn customer(app: &TestApp, tenant: &str) -> String {
    app.row(tenant)
        .and_then(|row| row.stripe_customer_id)
        .expect("linked")
}

/// The ledger's total of `meter` for the period starting at `start`.
pub fn ledger_total(app: &TestApp, tenant: &str, start: chrono::NaiveDateTime) -> i64 {
    let tenant = TenantId::parse(tenant).unwrap();
    tenant_billing::db::usage::totals(&mut app.db(), &tenant, start)
        .unwrap()
        .get("api_calls")
        .copied()
        .unwrap_or(0)
}

/// A subscription's current period, from the simulator.
pub fn period_of(subscription: &Value) -> (i64, i64) {
    let item = &subscription["items"]["data"][0];
    (
        item["current_period_start"].as_i64().unwrap(),
        item["current_period_end"].as_i64().unwrap(),
    )
}

pub fn naive(unix: i64) -> chrono::NaiveDateTime {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .unwrap()
        .naive_utc()
}

/// Acceptance: recorded usage reaches Stripe's meter once, in its period;
/// the lag metric shows it waiting while Stripe fails, and falls to 0.
async fn usage_reaches_stripe_once_and_the_lag_falls_to_zero(backend: Backend) {
    let app = billed_app(backend, billed_sim(SimConfig::default())).await;
    let subscription = app.subscribed("acme", "pro", None).await;
    let items = subscription["items"]["data"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "the metered price joins the plan's at Checkout"
    );
    assert_eq!(items[1]["price"]["id"], "price_pro_api_calls");
    assert!(items[1]["quantity"].is_null());
    let (start, end) = period_of(&subscription);
    let cus = customer(&app, "acme");

    // Stripe fails every meter event for now: the usage waits, and shows.
    app.sim.add_fault(stripe_sim::Fault {
        method: "POST".into(),
        path: "/v1/billing/meter_events".into(),
        count: 1_000_000,
        kind: stripe_sim::FaultKind::Status(500),
    });
    let token = app.token("acme", Role::Service);
    let events: Vec<Value> = (0..50).map(|i| call(&format!("e{i}"), i % 5 + 1)).collect();
    record_batch(&app.address, &app.client, &token, "acme", &events).await;
    let expected: i64 = (0..50).map(|i| i % 5 + 1).sum();
    assert!(
        eventually(Duration::from_secs(10), || app
            .stripe_requests("POST /v1/billing/meter_events")
            >= 2)
        .await,
        "the forwarder never tried"
    );
    assert!(lag(&app).await > 0.0, "waiting usage shows as lag");

    app.sim.clear_faults();
    forwarded(&app, Duration::from_secs(20)).await;
    assert_eq!(
        app.sim.meter_value("mtr_api_calls", &cus, start, end),
        expected as f64
    );
    assert_eq!(ledger_total(&app, "acme", naive(start)), expected);
    let tenant = TenantId::parse("acme").unwrap();
    let batches =
        tenant_billing::db::usage_forwarding::batches(&mut app.db(), &tenant, "api_calls").unwrap();
    assert!(batches.iter().all(|b| b.state == "sent"), "{batches:?}");
    assert_eq!(batches.iter().map(|b| b.value).sum::<i64>(), expected);
    assert_eq!(lag(&app).await, 0.0);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("usage_meter_events_total{outcome=\"accepted\"}"),
        "{metrics}"
    );
}

/// `reconcile --usage [--fix]` as the operator runs it; its stdout.
pub fn reconcile(app: &TestApp, fix: bool) -> String {
    let mut args = vec!["reconcile", "--usage"];
    if fix {
        args.push("--fix");
    }
    crate::child::run_ok(crate::child::command(
        &app.database.url,
        &app.sim,
        &args,
        &BILLED,
    ))
}

/// Acceptance: `reconcile --usage` finds a planted difference (an event
/// Stripe lost; one it got twice) and `--fix` closes it; run again, it finds
/// nothing, and Stripe holds exactly the ledger's total.
async fn reconcile_finds_a_planted_difference_and_fix_closes_it(backend: Backend) {
    let app = billed_app(backend, billed_sim(SimConfig::default())).await;
    let subscription = app.subscribed("acme", "pro", None).await;
    let (start, end) = period_of(&subscription);
    let cus = customer(&app, "acme");
    let token = app.token("acme", Role::Service);
    for round in 0..3 {
        let events: Vec<Value> = (0..10)
            .map(|i| call(&format!("r{round}-{i}"), i + 1))
            .collect();
        record_batch(&app.address, &app.client, &token, "acme", &events).await;
        forwarded(&app, Duration::from_secs(20)).await;
    }
    let total = ledger_total(&app, "acme", naive(start));
    assert_eq!(total, 3 * 55);
    let clean = reconcile(&app, false);
    assert!(
        clean.contains("usage: 1 periods, 0 differ, 0 in flight"),
        "{clean}"
    );

    // Stripe loses one batch (cancelled within its 24 hours).
    let tenant = TenantId::parse("acme").unwrap();
    let batches =
        tenant_billing::db::usage_forwarding::batches(&mut app.db(), &tenant, "api_calls").unwrap();
    let lost = &batches[1];
    app.stripe_post(
        "/v1/billing/meter_event_adjustments",
        &[
            ("event_name", "api_calls"),
            ("type", "cancel"),
            ("cancel[identifier]", lost.identifier.as_str()),
        ],
    )
    .await;
    assert_eq!(
        app.sim.meter_value("mtr_api_calls", &cus, start, end),
        (total - lost.value) as f64
    );
    let found = reconcile(&app, false);
    assert!(found.contains("1 differ"), "{found}");
    assert!(
        found.contains(&format!("+{}", lost.value)) && found.contains("missing"),
        "{found}"
    );
    let fixed = reconcile(&app, true);
    assert!(fixed.contains(&format!("sent +{}", lost.value)), "{fixed}");
    let again = reconcile(&app, false);
    assert!(again.contains("0 differ"), "{again}");
    assert_eq!(
        app.sim.meter_value("mtr_api_calls", &cus, start, end),
        total as f64
    );

    // Stripe counts something twice (another integration's event): excess.
    // (Dated in the period's first whole minute: the period began just now.)
    let inside = (start - start.rem_euclid(60) + 60).to_string();
    app.stripe_post(
        "/v1/billing/meter_events",
        &[
            ("event_name", "api_calls"),
            ("payload[stripe_customer_id]", cus.as_str()),
            ("payload[value]", "7"),
            ("timestamp", inside.as_str()),
        ],
    )
    .await;
    let excess = reconcile(&app, false);
    assert!(
        excess.contains("-7") && excess.contains("excess"),
        "{excess}"
    );
    let fixed = reconcile(&app, true);
    assert!(fixed.contains("sent -7"), "{fixed}");
    // A second --fix finds nothing left to send: never twice.
    let twice = reconcile(&app, true);
    assert!(twice.contains("0 differ"), "{twice}");
    assert_eq!(
        app.sim.meter_value("mtr_api_calls", &cus, start, end),
        total as f64
    );
}

/// A simulator whose clock starts so that a subscription bought at its start
/// has a period ending `ends_in` from now; `settle` then moves the clock to
/// now (the subscription's period still running).
pub fn sim_with_period_ending_in(ends_in: chrono::Duration) -> SimHandle {
    let end = Utc::now() + ends_in;
    let start = end
        .checked_sub_months(chrono::Months::new(1))
        .expect("a month back");
    billed_sim(SimConfig {
        clock_start: Some(start.timestamp()),
        webhook_retry_base_ms: 20,
        ..SimConfig::default()
    })
}

pub fn settle_clock(sim: &SimHandle) {
    sim.advance_clock((Utc::now().timestamp() - sim.now()).max(0));
}

/// The renewal invoice of `customer` billing the period ending `end`, and
/// its metered line(s) for `price`.
pub fn renewal_usage(
    sim: &SimHandle,
    customer: &str,
    end: i64,
    price: &str,
) -> (Value, Vec<Value>) {
    let renewal = sim
        .invoices(customer)
        .into_iter()
        .find(|i| i["billing_reason"] == "subscription_cycle" && i["period_end"] == end)
        .expect("the renewal invoice");
    let lines = renewal["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["pricing"]["price_details"]["price"] == price)
        .cloned()
        .collect();
    (renewal, lines)
}

/// Acceptance: usage recorded in the last minute of a period lands on that
/// period's invoice, even when Stripe only gets it after the period ended
/// (within its finalization grace period); usage just after the end waits
/// for the next invoice.
async fn usage_of_a_periods_last_minute_lands_on_its_invoice(backend: Backend) {
    let sim = sim_with_period_ending_in(chrono::Duration::minutes(3));
    let app = billed_app(backend, sim).await;
    let subscription = app.subscribed("acme", "pro", None).await;
    settle_clock(&app.sim);
    let (_, end) = period_of(&subscription);
    let cus = customer(&app, "acme");
    let token = app.token("acme", Role::Service);
    let at = |offset: i64| {
        DateTime::<Utc>::from_timestamp(end + offset, 0)
            .unwrap()
            .to_rfc3339()
    };
    let mut early = call("early", 100);
    early["timestamp"] = json!(at(-3600 * 24));
    let mut last_minute = call("last-minute", 40);
    last_minute["timestamp"] = json!(at(-30));
    let mut after = call("after", 9);
    after["timestamp"] = json!(at(10));
    // Stripe is unreachable for meter events until the period has ended.
    app.sim.add_fault(stripe_sim::Fault {
        method: "POST".into(),
        path: "/v1/billing/meter_events".into(),
        count: 1_000_000,
        kind: stripe_sim::FaultKind::Status(503),
    });
    record_batch(
        &app.address,
        &app.client,
        &token,
        "acme",
        &[early, last_minute, after],
    )
    .await;
    app.sim.advance_clock(end - app.sim.now());
    app.await_webhooks().await;
    let (draft, _) = renewal_usage(&app.sim, &cus, end, "price_pro_api_calls");
    assert_eq!(draft["status"], "draft", "Stripe's grace period runs");
    app.sim.clear_faults();
    forwarded(&app, Duration::from_secs(30)).await;
    app.sim.advance_clock(3600);
    app.await_webhooks().await;
    let (invoice, lines) = renewal_usage(&app.sim, &cus, end, "price_pro_api_calls");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(lines.len(), 1, "one metered line: {lines:?}");
    assert_eq!(
        lines[0]["quantity"], 140,
        "the last minute's 40 included, not the 9 after"
    );
    assert_eq!(
        lines[0]["amount"],
        (140 - 100) * 2,
        "100 included, then 2 cents"
    );
    assert_eq!(lines[0]["period"]["end"], end);
}

/// Stripe's 429 slows the forwarder down, never drops usage.
async fn rate_limits_slow_forwarding_and_lose_nothing(backend: Backend) {
    let app = billed_app(backend, billed_sim(SimConfig::default())).await;
    let subscription = app.subscribed("acme", "pro", None).await;
    let (start, end) = period_of(&subscription);
    app.sim.add_fault(stripe_sim::Fault {
        method: "POST".into(),
        path: "/v1/billing/meter_events".into(),
        count: 4,
        kind: stripe_sim::FaultKind::Status(429),
    });
    let token = app.token("acme", Role::Service);
    for round in 0..3 {
        let events: Vec<Value> = (0..20).map(|i| call(&format!("q{round}-{i}"), 2)).collect();
        record_batch(&app.address, &app.client, &token, "acme", &events).await;
    }
    forwarded(&app, Duration::from_secs(30)).await;
    let cus = customer(&app, "acme");
    assert_eq!(
        app.sim.meter_value("mtr_api_calls", &cus, start, end),
        120.0
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("usage_meter_events_total{outcome=\"rate_limited\"} 4"),
        "{metrics}"
    );
}

/// Usage dated beyond Stripe's 35-day window cannot be billed: it is
/// reported (audit, metric), never silently dropped, and the lag clears.
async fn usage_older_than_stripes_window_is_reported(backend: Backend) {
    let app = billed_app(backend, billed_sim(SimConfig::default())).await;
    app.subscribed("acme", "pro", None).await;
    let token = app.token("acme", Role::Service);
    let mut old = call("old", 5);
    old["timestamp"] = json!((Utc::now() - chrono::Duration::days(35)
        + chrono::Duration::minutes(3))
    .to_rfc3339());
    record_batch(
        &app.address,
        &app.client,
        &token,
        "acme",
        &[old, call("new", 3)],
    )
    .await;
    forwarded(&app, Duration::from_secs(20)).await;
    assert!(
        app.audit("acme")
            .contains(&"usage.forward:expired".to_owned()),
        "{:?}",
        app.audit("acme")
    );
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("usage_unbilled_units_total{reason=\"expired\"} 5"),
        "{metrics}"
    );
    assert_eq!(
        app.stripe_requests("POST /v1/billing/meter_events"),
        1,
        "only the recent batch is sent"
    );
}

/// Plan changes move the metered items with the plan: an upgrade replaces
/// the metered price in the same prorated update (what accrued on the old
/// one is invoiced at once, at its price); a downgrade waits for the period's
/// end, whose renewal bills the ending period's usage at the price it
/// accrued at.
async fn plan_changes_move_the_metered_items_and_bill_each_price_once(backend: Backend) {
    let mut env: Vec<(&str, &str)> = BILLED.to_vec();
    env.extend([
        (
            "APP__PLANS__TEAM__METERED_PRICES__API_CALLS",
            "price_team_api_calls",
        ),
        ("APP__PLANS__TEAM__METERED_UNIT_AMOUNTS__API_CALLS", "1"),
        ("APP__PLANS__TEAM__LIMITS__API_CALLS", "200"),
    ]);
    let sim = SimHandle::start(SimConfig {
        prices: sim_config_with(&env).prices,
        metered_prices: sim_config_with(&env).metered_prices,
        webhook_retry_base_ms: 20,
        ..SimConfig::default()
    })
    .unwrap();
    let app = spawn_instance(TestDatabase::migrated(backend), sim, &env).await;
    let subscription = app.subscribed("acme", "pro", None).await;
    let sub_id = subscription["id"].as_str().unwrap().to_owned();
    let (_, end) = period_of(&subscription);
    let cus = customer(&app, "acme");
    let token = app.token("acme", Role::Service);
    let events: Vec<Value> = (0..15).map(|i| call(&format!("p{i}"), 10)).collect();
    record_batch(&app.address, &app.client, &token, "acme", &events).await;
    forwarded(&app, Duration::from_secs(20)).await;

    // A second later (the usage's last second is the old price's).
    app.sim.advance_clock(1);
    assert_eq!(app.change_plan("acme", "team").await["plan"], "team");
    let prices = |sub: &Value| -> Vec<String> {
        sub["items"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["price"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let upgraded = app.sim.object(&sub_id).unwrap();
    assert_eq!(
        prices(&upgraded),
        ["price_team_monthly", "price_team_api_calls"]
    );
    let update = app.invoices_for(&cus, "subscription_update");
    let pro_usage: Vec<&Value> = update[0]["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["pricing"]["price_details"]["price"] == "price_pro_api_calls")
        .collect();
    assert_eq!(pro_usage.len(), 1, "{update:?}");
    assert_eq!(pro_usage[0]["quantity"], 150);
    assert_eq!(pro_usage[0]["amount"], (150 - 100) * 2);

    // Dated after the change by Stripe's clock (which the test moved ahead).
    let after = DateTime::<Utc>::from_timestamp(app.sim.now() + 1, 0)
        .unwrap()
        .to_rfc3339();
    let events: Vec<Value> = (0..5)
        .map(|i| {
            let mut event = call(&format!("t{i}"), 10);
            event["timestamp"] = json!(after);
            event
        })
        .collect();
    record_batch(&app.address, &app.client, &token, "acme", &events).await;
    forwarded(&app, Duration::from_secs(20)).await;
    let state = app.change_plan("acme", "pro").await;
    assert_eq!(state["pending_plan"], "pro");
    app.sim.advance_clock(end - app.sim.now() + 3600);
    app.await_webhooks().await;
    let (renewal, team_usage) = renewal_usage(&app.sim, &cus, end, "price_team_api_calls");
    assert_eq!(renewal["status"], "paid");
    assert_eq!(team_usage.len(), 1);
    assert_eq!(team_usage[0]["quantity"], 50);
    assert_eq!(team_usage[0]["amount"], 0, "within team's 200 included");
    let downgraded = app.sim.object(&sub_id).unwrap();
    assert_eq!(
        prices(&downgraded),
        ["price_pro_monthly", "price_pro_api_calls"]
    );
}

/// At startup every Stripe-billed meter and metered price is looked up:
/// what Stripe lacks, or has otherwise than configured, is reported naming
/// the key to fix.
async fn startup_reports_a_missing_meter_and_a_price_that_is_not_metered(backend: Backend) {
    let mut env: Vec<(&str, &str)> = BILLED.to_vec();
    env.extend([
        ("APP__METERS__EXPORTS__STRIPE_METER", "exports_nowhere"),
        (
            "APP__PLANS__TEAM__METERED_PRICES__API_CALLS",
            "price_licensed",
        ),
    ]);
    let sim = billed_sim(SimConfig {
        prices: vec!["price_licensed:500:usd:month".parse().unwrap()],
        ..SimConfig::default()
    });
    let database = TestDatabase::migrated(backend);
    let mut overrides: Vec<(&str, &str)> = env.clone();
    let base = sim.base_url();
    overrides.extend([
        ("STRIPE_SECRET_KEY", "sk_test_check"),
        ("STRIPE_API_BASE", base.as_str()),
    ]);
    let settings = crate::helpers::test_settings(&database.url, &overrides);
    let gateway = tenant_billing::stripe::StripeGateway::new(
        settings.stripe.secret_key.as_ref().unwrap(),
        &settings.stripe.api_base,
        &settings.stripe,
    )
    .unwrap();
    let billing = tenant_billing::billing::Billing::new(
        tenant_billing::db::build_pool(&settings.database),
        gateway,
        std::sync::Arc::new(settings),
    );
    let problems = billing.check_metering().await;
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "meters.exports.stripe_meter",
            "plans.team.metered_prices.api_calls"
        ],
        "{problems:?}"
    );
}

backend_tests!(
    usage_reaches_stripe_once_and_the_lag_falls_to_zero,
    reconcile_finds_a_planted_difference_and_fix_closes_it,
    usage_of_a_periods_last_minute_lands_on_its_invoice,
    rate_limits_slow_forwarding_and_lose_nothing,
    usage_older_than_stripes_window_is_reported,
    plan_changes_move_the_metered_items_and_bill_each_price_once,
    startup_reports_a_missing_meter_and_a_price_that_is_not_metered,
);
