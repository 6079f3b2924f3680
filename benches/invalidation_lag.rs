//! How long a write on one instance takes to show on another (PostgreSQL).
//!
//! Two instances share a throwaway PostgreSQL; B reads a tenant's billing
//! state from its cache (TTL 1 s, the default). Each round, A changes the
//! tenant's billing name (`PUT …/billing/profile`) and, from A's answer on, B
//! is polled until it shows the new name. Without cross-instance
//! invalidation the lag is up to the TTL; with LISTEN/NOTIFY the target is
//! 100 ms. Run with `cargo bench --bench invalidation_lag` (`just bench`
//! runs it); `BENCH_ROUNDS` sets the rounds (default 200).

#[path = "../tests/api/pg.rs"]
#[allow(dead_code)]
mod pg;
mod support;

use std::time::{Duration, Instant};

use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::Role;
use tenant_billing::settings::Settings;

const TARGET: Duration = Duration::from_millis(100);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn instance(database_url: &str, sim: &stripe_sim::SimHandle) -> (String, Settings) {
    let settings = support::settings(
        database_url,
        sim,
        &[
            ("APP__BILLING__STATE_CACHE_TTL_MS", "1000"),
            ("APP__BILLING__CREATE_CUSTOMER_ON_SIGNUP", "false"),
        ],
    );
    let (base, _) = support::serve(settings.clone()).await;
    (base, settings)
}

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    actix_web::rt::System::new().block_on(async move {
        let cluster = pg::PgCluster::start().unwrap_or_else(|e| panic!("{e}"));
        let url = cluster.url("postgres");
        let sim = stripe_sim::SimHandle::start(stripe_sim::SimConfig::default()).unwrap();
        let (writer, settings) = instance(&url, &sim).await;
        let (reader, _) = instance(&url, &sim).await;
        let token = TokenIssuer::from_settings(&settings.auth).mint(&MintRequest {
            tenant: "lag",
            role: Role::Admin,
            sub: "bench",
            email: None,
            ttl_seconds: 3600,
        });
        let client = reqwest::Client::new();
        let put = |name: String| {
            client
                .put(format!("{writer}/v1/tenants/lag/billing/profile"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"billing_email": "ap@lag.test", "billing_name": name}))
                .send()
        };
        let read = || async {
            let body: serde_json::Value = client
                .get(format!("{reader}/v1/tenants/lag/billing"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("read")
                .json()
                .await
                .expect("JSON");
            body["billing_name"].as_str().unwrap_or_default().to_owned()
        };
        assert!(put("warm".into()).await.unwrap().status().is_success());
        // Let the listeners connect before measuring.
        let warm = Instant::now();
        while read().await != "warm" {
            assert!(warm.elapsed() < Duration::from_secs(10));
        }
        let mut lags = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let name = format!("round-{round}");
            assert!(read().await != name);
            assert!(put(name.clone()).await.unwrap().status().is_success());
            let written = Instant::now();
            while read().await != name {
                assert!(written.elapsed() < Duration::from_secs(10), "never showed");
            }
            lags.push(written.elapsed());
        }
        lags.sort();
        let p99 = percentile(&lags, 0.99);
        println!(
            "cross-instance invalidation lag (postgres, {rounds} writes, cache TTL 1 s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms  {}",
            percentile(&lags, 0.5).as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            lags[lags.len() - 1].as_secs_f64() * 1e3,
            if p99 <= TARGET { "PASS (p99 <= 100 ms)" } else { "FAIL (p99 > 100 ms)" }
        );
        sim.shutdown();
        drop(cluster);
        std::process::exit(0);
    });
}
