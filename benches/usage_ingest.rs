//! Usage metering under load (issue 19's numbers), per backend, release build.
//!
//! 1. Batch ingest: 4 clients post batches of 1,000 new events (8 tenants)
//!    for `BENCH_SECONDS`: events/s (target ≥ 10,000 on PostgreSQL).
//! 2. Single events, as fast as 64 clients can: events/s (target ≥ 5,000).
//! 3. Single events at a fixed 1,000/s, open loop: latency measured from
//!    each event's scheduled send time, so a stall is not hidden by waiting
//!    clients (target p99 ≤ 10 ms).
//! 4. Reads under load, 32 clients each: `GET …/billing` (the cached
//!    reference), `GET …/usage` and `POST …/usage/check` (targets: p99 ≤ 5 ms
//!    and ≥ 0.5× the billing read's throughput).
//!
//! Between phases the database is settled (PostgreSQL: `VACUUM ANALYZE` and
//! a `CHECKPOINT`; SQLite: a WAL checkpoint), so a phase measures its own
//! load, not the autovacuum of the 600,000 rows the phase before wrote.
//!
//! The load generator runs in the same process as the service (two cores
//! shared), as the other in-process benches do, so the figures are a floor.
//! Run with `cargo bench --bench usage_ingest` (`just bench` runs it).

#[path = "../tests/api/pg.rs"]
#[allow(dead_code)]
mod pg;
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use stripe_sim::{SimConfig, SimHandle};
use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::Role;

const TENANTS: usize = 8;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

struct Service {
    base: String,
    tokens: Vec<(String, String, String)>,
    client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    sim: SimHandle,
    /// Answers other than 2xx since the last `failures()` (a 503 when the
    /// pool stays saturated past its timeout): counted, not fatal.
    failed: AtomicU64,
}

async fn start(database_url: String) -> Service {
    let sim = SimHandle::start(SimConfig::default()).expect("start stripe-sim");
    let settings = support::settings(
        &database_url,
        &sim,
        &[
            ("APP__JOBS__ENABLED", "false"),
            ("APP__PLANS__FREE__LIMITS__API_CALLS", "1000000000000"),
        ],
    );
    let issuer = TokenIssuer::from_settings(&settings.auth);
    let mint = |tenant: &str, role| {
        issuer.mint(&MintRequest {
            tenant,
            role,
            sub: "bench",
            email: None,
            ttl_seconds: 3600,
        })
    };
    let tokens = (0..TENANTS)
        .map(|i| {
            let tenant = format!("meter{i}");
            let service = mint(&tenant, Role::Service);
            let member = mint(&tenant, Role::Member);
            (tenant, service, member)
        })
        .collect();
    let (base, handle) = support::serve(settings).await;
    Service {
        base,
        tokens,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap(),
        handle,
        sim,
        failed: AtomicU64::new(0),
    }
}

impl Service {
    /// The failed answers since the last call.
    fn failures(&self) -> u64 {
        self.failed.swap(0, Ordering::Relaxed)
    }

    fn event(key: &str) -> serde_json::Value {
        serde_json::json!({ "meter": "api_calls", "quantity": 1, "idempotency_key": key })
    }

    async fn post(&self, tenant: usize, path: &str, body: String) -> Duration {
        let (name, service, _) = &self.tokens[tenant % TENANTS];
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}/v1/tenants/{name}{path}", self.base))
            .bearer_auth(service)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let _ = response.bytes().await;
        if !status.is_success() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        started.elapsed()
    }

    async fn get(&self, tenant: usize, path: &str) -> Duration {
        let (name, _, member) = &self.tokens[tenant % TENANTS];
        let started = Instant::now();
        let response = self
            .client
            .get(format!("{}/v1/tenants/{name}{path}", self.base))
            .bearer_auth(member)
            .send()
            .await
            .expect("request");
        if !response.status().is_success() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let _ = response.bytes().await;
        started.elapsed()
    }
}

/// Runs `work(i)` from `clients` concurrent loops for `seconds`; the
/// latencies, and how many calls were made.
async fn closed_loop<F, Fut>(clients: usize, seconds: u64, work: F) -> Vec<Duration>
where
    F: Fn(u64) -> Fut + Clone,
    Fut: std::future::Future<Output = Duration>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next = Arc::new(AtomicU64::new(0));
    let loops = (0..clients).map(|_| {
        let (work, next) = (work.clone(), next.clone());
        async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                samples.push(work(next.fetch_add(1, Ordering::Relaxed)).await);
            }
            samples
        }
    });
    let mut all: Vec<Duration> = futures_util::future::join_all(loops)
        .await
        .into_iter()
        .flatten()
        .collect();
    all.sort();
    all
}

/// Cleans up after the phase before (see the module docs).
fn settle(database_url: &str) {
    use diesel::RunQueryDsl;
    let mut conn = tenant_billing::db::establish(database_url, 5_000).expect("settle: connect");
    let statements: &[&str] = if database_url.starts_with("postgres") {
        &["VACUUM ANALYZE", "CHECKPOINT"]
    } else {
        &["PRAGMA wal_checkpoint(TRUNCATE)"]
    };
    for statement in statements {
        diesel::sql_query(*statement)
            .execute(&mut conn)
            .expect("settle");
    }
}

async fn run(backend: &str, database_url: String, seconds: u64) {
    let settle = || settle(&database_url);
    let service = start(database_url.clone()).await;
    let service = &service;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let run_id = &run_id;
    println!("{backend}:");

    // Warm up: pools, prepared statements, each tenant's counter row.
    for i in 0..200 {
        service
            .post(
                i,
                "/usage",
                Service::event(&format!("{run_id}-w{i}")).to_string(),
            )
            .await;
    }

    // 1. Batches of 1,000.
    let started = Instant::now();
    let batches = closed_loop(4, seconds, |n| async move {
        let events: Vec<_> = (0..1000)
            .map(|i| Service::event(&format!("{run_id}-b{n}-{i}")))
            .collect();
        let body = serde_json::json!({ "events": events }).to_string();
        service.post(n as usize, "/usage/batch", body).await
    })
    .await;
    let rate = (batches.len() * 1000) as f64 / started.elapsed().as_secs_f64();
    println!(
        "  batch ingest (4 clients x 1,000 events): {rate:>9.0} events/s  batch p50 {:.1} ms p99 {:.1} ms  failed {}  [target >= 10,000: {}]",
        ms(percentile(&batches, 0.5)),
        ms(percentile(&batches, 0.99)),
        service.failures(),
        verdict(rate >= 10_000.0)
    );

    // 2. Single events, closed loop.
    settle();
    let started = Instant::now();
    let singles = closed_loop(64, seconds, |n| async move {
        let body = Service::event(&format!("{run_id}-s{n}")).to_string();
        service.post(n as usize, "/usage", body).await
    })
    .await;
    let rate = singles.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "  single events (64 clients):              {rate:>9.0} events/s  p50 {:.2} ms p99 {:.2} ms  failed {}  [target >= 5,000: {}]",
        ms(percentile(&singles, 0.5)),
        ms(percentile(&singles, 0.99)),
        service.failures(),
        verdict(rate >= 5_000.0)
    );

    // 3. Single events at a fixed 1,000/s (open loop).
    settle();
    let total = seconds * 1000;
    let origin = Instant::now();
    let sends = (0..total).map(|n| async move {
        let scheduled = origin + Duration::from_micros(n * 1000);
        actix_web::rt::time::sleep_until(scheduled.into()).await;
        let body = Service::event(&format!("{run_id}-r{n}")).to_string();
        service.post(n as usize, "/usage", body).await;
        scheduled.elapsed()
    });
    let mut paced: Vec<Duration> = stream::iter(sends).buffer_unordered(1000).collect().await;
    paced.sort();
    let p99 = percentile(&paced, 0.99);
    let failed = service.failures();
    println!(
        "  single events at 1,000/s:                p50 {:.2} ms p99 {:.2} ms max {:.2} ms  failed {failed}  [target p99 <= 10 ms: {}]",
        ms(percentile(&paced, 0.5)),
        ms(p99),
        ms(*paced.last().unwrap()),
        verdict(p99 <= Duration::from_millis(10) && failed == 0)
    );

    // 4. Reads under load.
    settle();
    let read_seconds = seconds.min(5);
    let mut throughput = HashMap::new();
    for (name, path) in [
        ("GET …/billing", "/billing"),
        ("GET …/usage", "/usage"),
        ("POST …/usage/check", "/usage/check"),
        ("GET …/entitlements", "/billing/entitlements"),
    ] {
        let started = Instant::now();
        let samples = closed_loop(32, read_seconds, |n| async move {
            if path == "/usage/check" {
                let body = r#"{"meter":"api_calls","quantity":1}"#.to_owned();
                service.post(n as usize, path, body).await
            } else {
                service.get(n as usize, path).await
            }
        })
        .await;
        let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
        throughput.insert(name, rate);
        let p99 = percentile(&samples, 0.99);
        let versus = rate / throughput["GET …/billing"];
        let target = if name == "GET …/billing" {
            String::from("the reference")
        } else {
            format!(
                "target p99 <= 5 ms and >= 0.5x billing: {}",
                verdict(p99 <= Duration::from_millis(5) && versus >= 0.5)
            )
        };
        println!(
            "  {name:<20} (32 clients):            {rate:>9.0} req/s ({versus:.2}x billing)  p50 {:.2} ms p99 {:.2} ms  failed {}  [{target}]",
            ms(percentile(&samples, 0.5)),
            ms(p99),
            service.failures(),
        );
    }
    service.handle.stop(true).await;
    service.sim.shutdown();
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    actix_web::rt::System::new().block_on(async move {
        let cluster = pg::PgCluster::start().unwrap_or_else(|e| panic!("{e}"));
        run("postgres", cluster.url("postgres"), seconds).await;
        let sqlite_dir = tempfile::tempdir().unwrap();
        let sqlite_url = format!("sqlite://{}/bench.db", sqlite_dir.path().display());
        run("sqlite", sqlite_url, seconds).await;
    });
}
