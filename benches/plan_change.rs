//! What a plan change costs: its latency at the service and the Stripe
//! requests it makes.
//!
//! For each backend: the release service against stripe-sim with zero added
//! latency and no webhook deliveries (so only the change itself is timed).
//! N tenants pay for `pro` (Checkout, paid at the simulator, `sync`); then
//! each, one after another: upgrade to `team` (prorated, invoiced at once),
//! the same click again (nothing to do), downgrade to `pro` (a schedule),
//! back to `team` (the schedule released), cancel and resume. Per step: p50
//! and p99 latency, Stripe requests per change, and the service's own share
//! (the latency minus the simulator's time for that many requests, measured
//! directly). Then seats (issue 11): each tenant, now on `team`, sets its
//! seat count twice (prorated at once), and one tenant takes a burst of 40
//! joins at once (40 concurrent `PUT …/billing/seats`, counts 11..=50): the
//! Stripe requests the burst makes, and whether Stripe's quantity and ours
//! end equal. Run with `cargo bench --bench plan_change` (`just bench` runs
//! it); `BENCH_TENANTS` sets N (default 100).

#[path = "../tests/api/pg.rs"]
#[allow(dead_code)]
mod pg;
#[allow(dead_code)] // each bench uses part of it
mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stripe_sim::{SimConfig, SimHandle};
use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::Role;
use tenant_billing::settings::Settings;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn start_sim(settings: &Settings) -> SimHandle {
    let prices = settings
        .catalog
        .plans()
        .iter()
        .filter_map(|plan| {
            let price = plan.configured_price.clone()?;
            Some(stripe_sim::PriceSeed {
                id: plan.price_id.clone()?,
                unit_amount: price.amount,
                currency: price.currency,
                interval: price.interval,
            })
        })
        .collect();
    SimHandle::start(SimConfig {
        prices,
        ..SimConfig::default()
    })
    .expect("start stripe-sim")
}

fn requests_made(sim: &SimHandle) -> u64 {
    sim.stats().requests.values().sum()
}

/// The simulator's own time for one `GET /v1/subscriptions/{id}`.
async fn direct_request_p50(sim: &SimHandle, subscription: &str, n: usize) -> Duration {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        client
            .get(format!(
                "{}/v1/subscriptions/{subscription}",
                sim.base_url()
            ))
            .bearer_auth("sk_test_bench")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    percentile(&samples, 0.5)
}

struct Bench {
    base: String,
    client: reqwest::Client,
    issuer: TokenIssuer,
}

impl Bench {
    async fn post(&self, tenant: &str, route: &str, body: Value) -> (Duration, Value) {
        self.send(reqwest::Method::POST, tenant, route, body).await
    }

    /// `GET …/billing` as a member.
    async fn state(&self, tenant: &str) -> Value {
        let token = self.issuer.mint(&MintRequest {
            tenant,
            role: Role::Member,
            sub: "bench",
            email: None,
            ttl_seconds: 3600,
        });
        self.client
            .get(format!("{}/v1/tenants/{tenant}/billing", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a billing state")
    }

    async fn send(
        &self,
        method: reqwest::Method,
        tenant: &str,
        route: &str,
        body: Value,
    ) -> (Duration, Value) {
        let token = self.issuer.mint(&MintRequest {
            tenant,
            role: Role::Admin,
            sub: "bench",
            email: Some("bench@example.com"),
            ttl_seconds: 3600,
        });
        let started = Instant::now();
        let response = self
            .client
            .request(
                method,
                format!("{}/v1/tenants/{tenant}/billing/{route}", self.base),
            )
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let elapsed = started.elapsed();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{route} answered {status}: {body}");
        (elapsed, body)
    }
}

async fn run(backend: &str, database_url: String, tenants: usize) {
    let mut vars = support::service_vars(&database_url);
    let probe = Settings::load_from(&vars, None).expect("bench settings");
    let sim = start_sim(&probe);
    support::point_at(&mut vars, &sim);
    let settings = Settings::load_from(&vars, None).expect("bench settings");
    let issuer = TokenIssuer::from_settings(&settings.auth);
    let (base, handle) = support::serve(settings).await;
    let bench = Bench {
        base,
        client: reqwest::Client::new(),
        issuer,
    };

    let names: Vec<String> = (0..tenants).map(|i| format!("t-{i}")).collect();
    let mut subscription = String::new();
    for tenant in &names {
        let (_, session) = bench.post(tenant, "checkout", json!({"plan": "pro"})).await;
        let paid = sim
            .complete_checkout(session["checkout_session_id"].as_str().unwrap())
            .unwrap();
        subscription = paid["id"].as_str().unwrap().to_owned();
        let (_, state) = bench.post(tenant, "sync", json!({})).await;
        assert_eq!(state["plan"], "pro");
    }
    let direct = direct_request_p50(&sim, &subscription, 200).await;

    let steps: [(&str, &str, Value, &str); 6] = [
        (
            "upgrade pro -> team",
            "subscription/change",
            json!({"plan": "team"}),
            "team",
        ),
        (
            "the same click again",
            "subscription/change",
            json!({"plan": "team"}),
            "team",
        ),
        (
            "downgrade team -> pro (schedule)",
            "subscription/change",
            json!({"plan": "pro"}),
            "team",
        ),
        (
            "back to team (release)",
            "subscription/change",
            json!({"plan": "team"}),
            "team",
        ),
        ("cancel", "subscription/cancel", json!({}), "team"),
        ("resume", "subscription/resume", json!({}), "team"),
    ];
    println!(
        "{backend} ({tenants} tenants; simulator p50 per request {:.3} ms):",
        ms(direct)
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>14} {:>22}",
        "step", "p50 ms", "p99 ms", "Stripe req.", "service's own p50 ms"
    );
    for (name, route, body, plan) in steps {
        let before = requests_made(&sim);
        let mut samples = Vec::with_capacity(tenants);
        for tenant in &names {
            let (elapsed, state) = bench.post(tenant, route, body.clone()).await;
            assert_eq!(state["plan"], plan, "{name}: {state}");
            samples.push(elapsed);
        }
        let per_change = (requests_made(&sim) - before) as f64 / tenants as f64;
        samples.sort();
        let p50 = percentile(&samples, 0.5);
        let own = ms(p50) - per_change * ms(direct);
        println!(
            "  {name:<34} {:>9.3} {:>9.3} {per_change:>14.1} {own:>22.3}",
            ms(p50),
            ms(percentile(&samples, 0.99)),
        );
    }
    seats(&bench, &sim, &names, direct).await;
    handle.stop(true).await;
    sim.shutdown();
}

/// Seat changes: latency of one, and a 40-join burst's Stripe requests.
async fn seats(bench: &Bench, sim: &SimHandle, names: &[String], direct: Duration) {
    let before = requests_made(sim);
    let mut samples = Vec::with_capacity(names.len() * 2);
    for quantity in [2u64, 3] {
        for tenant in names {
            let (elapsed, state) = bench
                .send(
                    reqwest::Method::PUT,
                    tenant,
                    "seats",
                    json!({ "quantity": quantity }),
                )
                .await;
            assert_eq!(state["seats"], quantity, "{state}");
            samples.push(elapsed);
        }
    }
    let per_change = (requests_made(sim) - before) as f64 / samples.len() as f64;
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    println!(
        "  {:<34} {:>9.3} {:>9.3} {per_change:>14.1} {:>22.3}",
        "seats (PUT …/billing/seats)",
        ms(p50),
        ms(percentile(&samples, 0.99)),
        ms(p50) - per_change * ms(direct),
    );

    let tenant = &names[0];
    let before = requests_made(sim);
    let started = Instant::now();
    let joins = (11..=50u64).map(|count| {
        bench.send(
            reqwest::Method::PUT,
            tenant,
            "seats",
            json!({ "quantity": count }),
        )
    });
    let answers = futures_util::future::join_all(joins).await;
    let elapsed = started.elapsed();
    let made = requests_made(sim) - before;
    // No webhooks are delivered here: what is stored came from the answers.
    let stored = bench.state(tenant).await["seats"].clone();
    let at_stripe = sim
        .subscriptions()
        .into_iter()
        .find(|s| s["metadata"]["tenant_id"] == tenant.as_str())
        .map(|s| s["items"]["data"][0]["quantity"].clone())
        .unwrap_or(Value::Null);
    let answered: Vec<&Value> = answers.iter().map(|(_, state)| &state["seats"]).collect();
    println!(
        "  burst of 40 joins (counts 11..=50 at once): {made} Stripe requests in {:.1} ms; \
         Stripe quantity {at_stripe}, stored {stored}: {}; every answer within 11..=50: {}",
        ms(elapsed),
        if at_stripe == stored {
            "EQUAL"
        } else {
            "DIFFERENT"
        },
        answered
            .iter()
            .all(|s| s.as_u64().is_some_and(|n| (11..=50).contains(&n))),
    );
}

fn main() {
    let tenants: usize = std::env::var("BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    actix_web::rt::System::new().block_on(async move {
        let sqlite_dir = tempfile::tempdir().unwrap();
        let sqlite_url = format!("sqlite://{}/bench.db", sqlite_dir.path().display());
        run("sqlite", sqlite_url, tenants).await;
        let cluster = pg::PgCluster::start().unwrap_or_else(|e| panic!("{e}"));
        run("postgres", cluster.url("postgres"), tenants).await;
    });
}
