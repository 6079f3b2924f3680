//! What a first Upgrade click costs the service itself.
//!
//! For each backend: the release service against stripe-sim with zero added
//! latency; N fresh tenants each click Upgrade once (customer + Checkout
//! session), then once more (session only). The service's own added latency
//! is the click's latency minus the simulator's time for the same two Stripe
//! requests made directly. Run with `cargo bench --bench upgrade_click`
//! (`just bench` runs it); `BENCH_CLICKS` sets N (default 300).

#[path = "../tests/api/pg.rs"]
#[allow(dead_code)]
mod pg;
mod support;

use std::time::{Duration, Instant};

use stripe_sim::{PriceSeed, SimConfig, SimHandle};
use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::Role;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    println!(
        "  {name:<34} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    (p50, p99)
}

fn start_sim() -> SimHandle {
    SimHandle::start(SimConfig {
        // Every configured plan's price, so the startup price check finds them.
        prices: vec![
            PriceSeed {
                id: "price_pro_monthly".into(),
                unit_amount: 2900,
                currency: "usd".into(),
                interval: "month".into(),
            },
            PriceSeed {
                id: "price_team_monthly".into(),
                unit_amount: 1200,
                currency: "usd".into(),
                interval: "month".into(),
            },
        ],
        ..SimConfig::default()
    })
    .expect("start stripe-sim")
}

/// The simulator's own time for the two requests of a first click.
async fn direct_stripe_costs(sim: &SimHandle, n: usize) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let customer: serde_json::Value = client
            .post(format!("{}/v1/customers", sim.base_url()))
            .bearer_auth("sk_test_bench")
            .header("Idempotency-Key", format!("bench-direct-{i}"))
            .form(&[("metadata[tenant_id]", format!("direct-{i}"))])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        client
            .post(format!("{}/v1/checkout/sessions", sim.base_url()))
            .bearer_auth("sk_test_bench")
            .header("Idempotency-Key", format!("bench-direct-session-{i}"))
            .form(&[
                ("mode", "subscription"),
                ("customer", customer["id"].as_str().unwrap()),
                ("line_items[0][price]", "price_pro_monthly"),
                ("line_items[0][quantity]", "1"),
                ("success_url", "http://localhost:3000/ok"),
            ])
            .send()
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    samples
}

async fn run(backend: &str, database_url: String, clicks: usize) {
    let sim = start_sim();
    let settings = support::settings(&database_url, &sim, &[]);
    let issuer = TokenIssuer::from_settings(&settings.auth);
    let (base, handle) = support::serve(settings).await;

    let client = reqwest::Client::new();
    let click = |tenant: String| {
        let token = issuer.mint(&MintRequest {
            tenant: &tenant,
            role: Role::Admin,
            sub: "bench",
            email: Some("bench@example.com"),
            ttl_seconds: 3600,
        });
        let request = client
            .post(format!("{base}/v1/tenants/{tenant}/billing/checkout"))
            .bearer_auth(token)
            .json(&serde_json::json!({"plan": "pro"}));
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("click");
            assert_eq!(response.status(), 201, "click failed");
            started.elapsed()
        }
    };
    // Warm the pool, the JIT-free paths and the simulator.
    for i in 0..20 {
        click(format!("warm-{i}")).await;
    }
    let mut first = Vec::with_capacity(clicks);
    let mut second = Vec::with_capacity(clicks);
    for i in 0..clicks {
        first.push(click(format!("t-{i}")).await);
    }
    for i in 0..clicks {
        second.push(click(format!("t-{i}")).await);
    }
    let direct = direct_stripe_costs(&sim, clicks).await;

    println!("{backend}:");
    let (first_p50, first_p99) = summary("first click (customer + session)", first);
    summary("second click (session only)", second);
    let (direct_p50, direct_p99) = summary("the same 2 Stripe calls, direct", direct);
    println!(
        "  service's own added latency on a first click: p50 {:.3} ms, p99 {:.3} ms",
        first_p50.saturating_sub(direct_p50).as_secs_f64() * 1e3,
        first_p99.saturating_sub(direct_p99).as_secs_f64() * 1e3
    );
    handle.stop(true).await;
    sim.shutdown();
}

fn main() {
    let clicks: usize = std::env::var("BENCH_CLICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    // `cargo bench` passes `--bench`; nothing else to parse.
    actix_web::rt::System::new().block_on(async move {
        let sqlite_dir = tempfile::tempdir().unwrap();
        let sqlite_url = format!("sqlite://{}/bench.db", sqlite_dir.path().display());
        run("sqlite", sqlite_url, clicks).await;
        let cluster = pg::PgCluster::start().unwrap_or_else(|e| panic!("{e}"));
        run("postgres", cluster.url("postgres"), clicks).await;
    });
}
