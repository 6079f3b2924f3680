//! One Stripe budget at full load (issue 22): two instances on one database
//! and one simulator, with the default test-mode budget (20 requests per
//! second), driven far past it for `BENCH_SECONDS` (default 60): four
//! tenants loop on `GET …/billing/invoices` through both instances with a
//! different page size each time (a Stripe request unless refused), a new
//! tenant clicks Upgrade every 250 ms (alternating instances: customer +
//! Checkout session, interactive: 8 requests/s), and every 50 ms a new
//! tenant saves its billing profile (its customer is made by an outbox job:
//! background work, 20 requests/s wanted).
//!
//! Reported per backend: the Stripe requests per second the simulator saw
//! (max, mean, seconds above the budget: the target is none), the Upgrade
//! clicks' status and latency, what the looping tenants were answered, and
//! the slot waits by priority from the instances' metrics. Run with
//! `cargo bench --bench stripe_budget` (`just bench` runs it).

#[path = "../tests/api/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;
use stripe_sim::{SimConfig, SimHandle};
use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::Role;
use tenant_billing::settings::Settings;
use tenant_billing::startup::{Application, BuildOptions};

const LOOPERS: usize = 4;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
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

struct Client {
    http: reqwest::Client,
    issuer: TokenIssuer,
}

impl Client {
    fn token(&self, tenant: &str, role: Role) -> String {
        self.issuer.mint(&MintRequest {
            tenant,
            role,
            sub: "bench",
            email: Some("bench@example.com"),
            ttl_seconds: 3600,
        })
    }
}

#[derive(Default)]
struct Tally {
    clicks: Vec<Duration>,
    click_status: BTreeMap<u16, u64>,
    reads: BTreeMap<u16, u64>,
    profiles: BTreeMap<u16, u64>,
}

async fn run(backend: &str, database_url: String, seconds: u64) {
    let vars: HashMap<String, String> = HashMap::from([
        ("APP_ENV".into(), "development".into()),
        ("DATABASE_URL".into(), database_url),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("STRIPE_SECRET_KEY".into(), "sk_test_bench".into()),
        ("APP__TELEMETRY__LEVEL".into(), "error".into()),
        (
            "APP__STRIPE__CHECK_PRICES_ON_STARTUP".into(),
            "false".into(),
        ),
        (
            "APP__RATE_LIMIT__TENANT_WRITES_PER_MINUTE".into(),
            "100000".into(),
        ),
    ]);
    let probe = Settings::load_from(&vars, None).expect("bench settings");
    let sim = start_sim(&probe);
    let mut vars = vars;
    vars.insert("STRIPE_API_BASE".into(), sim.base_url());
    vars.insert("STRIPE_WEBHOOK_SECRET".into(), sim.webhook_secret());
    let settings = Settings::load_from(&vars, None).expect("bench settings");
    let budget = u64::from(settings.stripe.requests_per_second());
    let client = Rc::new(Client {
        http: reqwest::Client::new(),
        issuer: TokenIssuer::from_settings(&settings.auth),
    });
    let mut bases = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let app = Application::build(settings.clone(), BuildOptions { migrate: true })
            .await
            .expect("build the service");
        bases.push(format!("http://127.0.0.1:{}", app.port()));
        handles.push(app.handle());
        actix_web::rt::spawn(app.run_until_stopped());
    }
    let bases = Rc::new(bases);

    // The looping tenants get a customer first (a Stripe request each).
    for i in 0..LOOPERS {
        let tenant = format!("loop-{i}");
        let token = client.token(&tenant, Role::Admin);
        let answer = client
            .http
            .post(format!(
                "{}/v1/tenants/{tenant}/billing/customer",
                bases[i % 2]
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "customer for {tenant}");
    }

    let started_at = chrono::Utc::now().timestamp() + 1;
    let until = Instant::now() + Duration::from_secs(seconds);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let mut tasks = Vec::new();
    for i in 0..LOOPERS {
        let (client, bases, tally) = (client.clone(), bases.clone(), tally.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let tenant = format!("loop-{i}");
            let token = client.token(&tenant, Role::Admin);
            let mut n = i;
            while Instant::now() < until {
                n += 1;
                let url = format!(
                    "{}/v1/tenants/{tenant}/billing/invoices?limit={}",
                    bases[n % 2],
                    n % 100 + 1
                );
                let status = match client.http.get(url).bearer_auth(&token).send().await {
                    Ok(answer) => answer.status().as_u16(),
                    Err(_) => 0,
                };
                *tally.borrow_mut().reads.entry(status).or_default() += 1;
                if status == 429 {
                    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    {
        let (client, bases, tally) = (client.clone(), bases.clone(), tally.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut clicks = Vec::new();
            let mut i = 0usize;
            while Instant::now() < until {
                let (client, bases, tally) = (client.clone(), bases.clone(), tally.clone());
                clicks.push(actix_web::rt::spawn(async move {
                    let tenant = format!("click-{i}");
                    let token = client.token(&tenant, Role::Admin);
                    let clicked = Instant::now();
                    let status = client
                        .http
                        .post(format!(
                            "{}/v1/tenants/{tenant}/billing/checkout",
                            bases[i % 2]
                        ))
                        .bearer_auth(token)
                        .json(&json!({"plan": "pro"}))
                        .send()
                        .await
                        .map_or(0, |a| a.status().as_u16());
                    let mut tally = tally.borrow_mut();
                    tally.clicks.push(clicked.elapsed());
                    *tally.click_status.entry(status).or_default() += 1;
                }));
                i += 1;
                actix_web::rt::time::sleep(Duration::from_millis(250)).await;
            }
            for click in clicks {
                let _ = click.await;
            }
        }));
    }
    {
        let (client, bases, tally) = (client.clone(), bases.clone(), tally.clone());
        tasks.push(actix_web::rt::spawn(async move {
            let mut i = 0usize;
            while Instant::now() < until {
                let tenant = format!("signup-{i}");
                let token = client.token(&tenant, Role::Admin);
                let status = client
                    .http
                    .put(format!(
                        "{}/v1/tenants/{tenant}/billing/profile",
                        bases[i % 2]
                    ))
                    .bearer_auth(token)
                    .json(&json!({"billing_email": "b@example.com"}))
                    .send()
                    .await
                    .map_or(0, |a| a.status().as_u16());
                *tally.borrow_mut().profiles.entry(status).or_default() += 1;
                i += 1;
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let ended_at = chrono::Utc::now().timestamp();

    let per_second: Vec<u64> = sim
        .requests_per_second()
        .range(started_at..ended_at)
        .map(|(_, n)| *n)
        .collect();
    let max = per_second.iter().copied().max().unwrap_or(0);
    let mean = per_second.iter().sum::<u64>() as f64 / per_second.len().max(1) as f64;
    let over = per_second.iter().filter(|n| **n > budget).count();
    let arrivals = sim.request_arrivals_us();
    let sliding_max = arrivals
        .iter()
        .enumerate()
        .map(|(i, t)| {
            arrivals[i..]
                .iter()
                .take_while(|u| **u < t + 1_000_000)
                .count()
        })
        .max()
        .unwrap_or(0);
    let mut tally = std::mem::take(&mut *tally.borrow_mut());
    tally.clicks.sort();
    println!(
        "{backend}: budget {budget}/s over {} whole seconds: Stripe saw max {max}/s, mean {mean:.1}/s, \
         {over} seconds above the budget (target 0); busiest sliding second {sliding_max}",
        per_second.len()
    );
    println!("{backend}:   per second: {per_second:?}");
    println!(
        "{backend}:   Upgrade clicks {:?}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        tally.click_status,
        percentile(&tally.clicks, 0.5).as_secs_f64() * 1e3,
        percentile(&tally.clicks, 0.99).as_secs_f64() * 1e3,
        tally
            .clicks
            .last()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3,
    );
    let signups = tally.profiles.values().sum::<u64>();
    let provisioned = sim
        .customers()
        .iter()
        .filter(|c| {
            c["metadata"]["tenant_id"]
                .as_str()
                .is_some_and(|t| t.starts_with("signup-"))
        })
        .count();
    println!(
        "{backend}:   looping invoice reads {:?}; profile saves {:?}; background jobs made \
         {provisioned} of {signups} signups' customers",
        tally.reads, tally.profiles
    );
    for base in bases.iter() {
        let metrics = client
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in metrics.lines().filter(|l| {
            l.starts_with("stripe_budget_wait_seconds_sum")
                || l.starts_with("stripe_budget_wait_seconds_count")
        }) {
            println!("{backend}:   {base} {line}");
        }
    }
    for handle in handles {
        handle.stop(false).await;
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    actix_web::rt::System::new().block_on(async move {
        if backends.contains("sqlite") {
            let dir = tempfile::tempdir().unwrap();
            run(
                "sqlite",
                format!("sqlite://{}/bench.db", dir.path().display()),
                seconds,
            )
            .await;
        }
        if backends.contains("postgres") {
            let cluster = pg::PgCluster::start().unwrap_or_else(|e| panic!("{e}"));
            run("postgres", cluster.url("postgres"), seconds).await;
        }
    });
}
