//! Usage to Stripe under load (issue 20's numbers), per backend, release build.
//!
//! `BENCH_TENANTS` (default 20) tenants with a Stripe customer; open-loop
//! ingest at `BENCH_RATE` events/s (default 10,000) in batches of 500 for
//! `BENCH_SECONDS` (default 60), spread over the tenants, while the service's
//! own job workers forward to the simulator (zero latency) with the shipped
//! pacing (`usage.forward_interval_ms` = 1000). Reported:
//! - the ingest rate achieved (target ≥ 10,000 events/s);
//! - the forwarding lag (age of the oldest usage not yet accepted by Stripe),
//!   sampled every 250 ms: p50, p99, max; and the time to drain after the load;
//! - meter-event calls per tenant and meter per second: the average, and the
//!   most in any one second (target ≤ 1), from the batches' attempt times;
//! - that Stripe's meter holds each tenant's ledger total exactly.
//!
//! The load generator, the service and the simulator share the machine (two
//! cores here), so the figures are a floor. `cargo bench --bench
//! usage_forwarding` (`just bench` runs it).

#[path = "../tests/api/pg.rs"]
#[allow(dead_code)]
mod pg;
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stripe_sim::{SimConfig, SimHandle};
use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::{Role, TenantId};
use tenant_billing::settings::Settings;

const BATCH: usize = 500;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn settings(database_url: &str, sim: &SimHandle) -> Settings {
    support::settings(
        database_url,
        sim,
        &[
            ("APP__JOBS__POLL_INTERVAL_MS", "200"),
            ("APP__USAGE__FORWARD_INTERVAL_MS", "1000"),
            ("APP__METERS__API_CALLS__STRIPE_METER", "api_calls"),
            (
                "APP__PLANS__PRO__METERED_PRICES__API_CALLS",
                "price_pro_api_calls",
            ),
            ("APP__PLANS__FREE__LIMITS__API_CALLS", "1000000000000"),
        ],
    )
}

async fn run(backend: &str, database_url: String, tenants: usize, rate: u64, seconds: u64) {
    let seeds = {
        let probe = settings(
            &database_url,
            &SimHandle::start(SimConfig::default()).unwrap(),
        );
        tenant_billing::startup::metered_price_seeds(&probe)
    };
    let sim = SimHandle::start(SimConfig {
        metered_prices: seeds,
        ..SimConfig::default()
    })
    .expect("start stripe-sim");
    let settings = settings(&database_url, &sim);
    let issuer = TokenIssuer::from_settings(&settings.auth);
    let names: Vec<String> = (0..tenants).map(|i| format!("fwd{i:03}")).collect();
    let token = |tenant: &str, role| {
        issuer.mint(&MintRequest {
            tenant,
            role,
            sub: "bench",
            email: Some("bench@example.com"),
            ttl_seconds: 3600,
        })
    };
    let service_tokens: Vec<String> = names.iter().map(|t| token(t, Role::Service)).collect();
    let (base, handle) = support::serve(settings).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    for name in &names {
        let response = client
            .post(format!("{base}/v1/tenants/{name}/billing/customer"))
            .bearer_auth(token(name, Role::Admin))
            .send()
            .await
            .expect("create the customer");
        assert!(response.status().is_success(), "customer for {name}");
    }
    println!("{backend}: {tenants} tenants, {rate} events/s for {seconds} s, batches of {BATCH}");

    // Lag sampler: /metrics every 250 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        actix_web::rt::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(response) = client.get(format!("{base}/metrics")).send().await {
                    let text = response.text().await.unwrap_or_default();
                    if let Some(lag) = text
                        .lines()
                        .find_map(|l| l.strip_prefix("usage_forward_lag_seconds "))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                    {
                        samples.push(lag);
                    }
                }
                actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };

    // Open loop: a batch every BATCH/rate seconds, whatever the answers do.
    let sent = Arc::new(AtomicU64::new(0));
    let totals: Arc<std::sync::Mutex<BTreeMap<usize, i64>>> = Arc::default();
    let interval = Duration::from_secs_f64(BATCH as f64 / rate as f64);
    let started = Instant::now();
    let mut next = started;
    let mut n: usize = 0;
    let mut inflight = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        let tenant = n % tenants;
        let events: Vec<serde_json::Value> = (0..BATCH)
            .map(|i| {
                serde_json::json!({
                    "meter": "api_calls",
                    "quantity": (i % 3 + 1),
                    "idempotency_key": format!("b{n}-{i}"),
                })
            })
            .collect();
        let value: i64 = (0..BATCH).map(|i| (i % 3 + 1) as i64).sum();
        let body = serde_json::json!({ "events": events }).to_string();
        let (client, url, token, sent, totals) = (
            client.clone(),
            format!("{base}/v1/tenants/{}/usage/batch", names[tenant]),
            service_tokens[tenant].clone(),
            sent.clone(),
            totals.clone(),
        );
        inflight.push(actix_web::rt::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("batch answered");
            assert!(
                response.status().is_success(),
                "batch: {}",
                response.status()
            );
            let _ = response.bytes().await;
            sent.fetch_add(BATCH as u64, Ordering::Relaxed);
            *totals.lock().unwrap().entry(tenant).or_default() += value;
        }));
        n += 1;
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            actix_web::rt::time::sleep(wait).await;
        }
    }
    for task in inflight {
        task.await.expect("batch task");
    }
    let ingest_elapsed = started.elapsed().as_secs_f64();
    let ingested = sent.load(Ordering::Relaxed);
    let load_end = Instant::now();
    // Drain: until nothing waits.
    let drained = loop {
        let lag = lag_now(&client, &base).await;
        if lag == 0.0 {
            break load_end.elapsed();
        }
        assert!(
            load_end.elapsed() < Duration::from_secs(300),
            "forwarding did not drain"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    stop.store(true, Ordering::Relaxed);
    let mut samples = sampler.await.expect("sampler");
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());

    // Pacing, from the batches' attempt times; totals against Stripe.
    let mut conn = tenant_billing::db::establish(&database_url, 5000).expect("connect");
    let mut per_second: HashMap<(String, i64), u32> = HashMap::new();
    let mut attempts = 0u64;
    let mut exact = true;
    for (i, name) in names.iter().enumerate() {
        let tenant = TenantId::parse(name).unwrap();
        let batches =
            tenant_billing::db::usage_forwarding::batches(&mut conn, &tenant, "api_calls")
                .expect("batches");
        for batch in &batches {
            if let Some(at) = batch.first_attempt_at {
                *per_second
                    .entry((name.clone(), at.and_utc().timestamp()))
                    .or_default() += 1;
            }
            attempts += batch.attempts as u64;
        }
        let customer = tenant_billing::db::tenants::find(&mut conn, &tenant)
            .unwrap()
            .and_then(|r| r.stripe_customer_id)
            .unwrap();
        let at_stripe = sim.meter_value("mtr_api_calls", &customer, 0, i64::MAX / 2);
        let recorded = totals.lock().unwrap().get(&i).copied().unwrap_or(0);
        if at_stripe != recorded as f64 {
            exact = false;
            println!("  {name}: Stripe {at_stripe}, ledger {recorded}");
        }
    }
    let max_per_second = per_second.values().copied().max().unwrap_or(0);
    let calls = sim
        .stats()
        .requests
        .get("POST /v1/billing/meter_events")
        .copied()
        .unwrap_or(0);
    let rate_achieved = ingested as f64 / ingest_elapsed;
    // Open loop: the offered rate is met when the answers kept up with it.
    println!(
        "  ingest: {ingested} events in {ingest_elapsed:.1} s = {rate_achieved:.0} events/s, offered {rate} (target >= 10000 offered and kept up with) {}",
        verdict(rate >= 10_000 && rate_achieved >= 0.98 * rate as f64)
    );
    let p99 = percentile(&samples, 0.99);
    println!(
        "  lag: p50 {:.2} s, p99 {p99:.2} s, max {:.2} s ({} samples); drained {:.2} s after the load; forwarding kept up (p99 lag < 5 s, drained < 5 s) {}",
        percentile(&samples, 0.5),
        samples.last().copied().unwrap_or(0.0),
        samples.len(),
        drained.as_secs_f64(),
        verdict(p99 < 5.0 && drained < Duration::from_secs(5))
    );
    println!(
        "  meter-event calls: {calls} ({attempts} batch attempts), {:.2} per tenant per second on average; at most {max_per_second} in any second for one tenant and meter (target <= 1) {}",
        calls as f64 / (tenants as f64 * (ingest_elapsed + drained.as_secs_f64())),
        verdict(max_per_second <= 1)
    );
    println!(
        "  Stripe's meter holds each tenant's ledger total exactly: {}",
        verdict(exact)
    );
    handle.stop(true).await;
    sim.shutdown();
}

async fn lag_now(client: &reqwest::Client, base: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("usage_forward_lag_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::MAX)
}

fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 60);
    let rate: u64 = env_or("BENCH_RATE", 10_000);
    let tenants: usize = env_or("BENCH_TENANTS", 20);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    actix_web::rt::System::new().block_on(async move {
        if backends.contains("postgres") {
            let cluster = pg::PgCluster::start().unwrap_or_else(|e| panic!("{e}"));
            run("postgres", cluster.url("postgres"), tenants, rate, seconds).await;
        }
        if backends.contains("sqlite") {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/bench.db", dir.path().display());
            run("sqlite", url, tenants, rate, seconds).await;
        }
    });
}
