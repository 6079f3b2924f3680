//! State shared by the server, the webhook tasks and the library handle: the store,
//! the runtime-adjustable settings, counters, and the helpers that tie them together
//! (an operation on the store hands its events to webhook delivery).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::arrivals::Arrivals;
use crate::clock::Clock;
use crate::config::{CurrencyOptionSeed, MeteredPriceSeed, PriceSeed, SimConfig};
use crate::faults::Faults;
use crate::idempotency::IdempotencyStore;
use crate::meter_gate::MeterGate;
use crate::ratelimit::TokenBucket;
use crate::routes::Endpoint;
use crate::store::{Ctx, Store};
use crate::webhooks::{self, WebhookStats, Webhooks};

/// Request and object counts, as served by `GET /_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// `/v1` requests by `"METHOD /v1/template"` (only endpoints hit at least once).
    pub requests: BTreeMap<String, u64>,
    /// Stored objects by resource (`customers` counts live customers only).
    pub objects: BTreeMap<String, u64>,
    /// Webhook delivery counters.
    #[serde(default)]
    pub webhooks: WebhookStats,
    /// `POST /v1/billing/meter_events` calls running now (one per customer and meter).
    #[serde(default)]
    pub meter_event_calls_in_flight: usize,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub clock: Clock,
    pub store: Mutex<Store>,
    pub idempotency: Mutex<IdempotencyStore>,
    pub faults: Mutex<Faults>,
    /// Lets the hot path skip the fault lock when no fault is configured.
    pub faults_active: AtomicBool,
    requests: Vec<AtomicU64>,
    /// When `/v1` requests arrived (requests per second).
    pub arrivals: Arrivals,
    pub webhooks: Arc<Webhooks>,
    pub rate_limiter: Mutex<Option<TokenBucket>>,
    pub rate_limited: AtomicBool,
    pub latency_ms: AtomicU64,
    pub search_lag_ms: AtomicU64,
    pub base_url: String,
    pub port: u16,
    seeds: Vec<PriceSeed>,
    currency_seeds: Vec<CurrencyOptionSeed>,
    metered_seeds: Vec<MeteredPriceSeed>,
    /// One meter-event call per customer and meter at a time.
    pub meter_gate: MeterGate,
}

impl Shared {
    pub(crate) fn new(config: &SimConfig, port: u16, runtime: tokio::runtime::Handle) -> Shared {
        let clock = Clock::starting_at(config.clock_start);
        let mut store = Store::new(&config.prices, clock.now(), config.after_failed_payments);
        store.configure_tax(&config.seller_country, &config.price_currency_options);
        Shared {
            clock,
            store: Mutex::new(store),
            idempotency: Mutex::new(IdempotencyStore::default()),
            faults: Mutex::new(Faults::default()),
            faults_active: AtomicBool::new(false),
            requests: Endpoint::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            arrivals: Arrivals::default(),
            webhooks: Arc::new(Webhooks::new(
                config.webhook_url.clone(),
                config.webhook_secret.clone(),
                config.webhook_retry_base_ms,
                runtime,
            )),
            rate_limiter: Mutex::new(config.rate_limit.map(TokenBucket::new)),
            rate_limited: AtomicBool::new(config.rate_limit.is_some()),
            latency_ms: AtomicU64::new(config.latency_ms),
            search_lag_ms: AtomicU64::new(config.search_lag_ms),
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            seeds: config.prices.clone(),
            currency_seeds: config.price_currency_options.clone(),
            metered_seeds: config.metered_prices.clone(),
            meter_gate: MeterGate::default(),
        }
    }

    /// Plants the configured metered prices and sets the invoice grace period (at
    /// start; `reset` does it again).
    pub(crate) fn seed_metering(&self, config: &SimConfig) {
        let grace_s = i64::try_from(config.invoice_grace_seconds).unwrap_or(i64::MAX);
        self.store
            .lock()
            .seed_metered_prices(&self.metered_seeds, self.clock.now(), grace_s);
    }

    pub(crate) fn webhook_url(&self) -> Option<String> {
        self.webhooks.url()
    }

    pub(crate) fn set_webhook_url(&self, url: Option<String>) {
        self.webhooks.set_url(url);
    }

    pub(crate) fn webhook_secret(&self) -> String {
        self.webhooks.secret()
    }

    pub(crate) fn set_webhook_secret(&self, secret: String) {
        self.webhooks.set_secret(secret);
    }

    pub(crate) fn set_rate_limit(&self, per_second: Option<u32>) {
        *self.rate_limiter.lock() = per_second.map(TokenBucket::new);
        self.rate_limited
            .store(per_second.is_some(), Ordering::Relaxed);
    }

    pub(crate) fn count_request(&self, ep: Endpoint) {
        self.requests[ep.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Context for one operation at the current simulator time.
    pub(crate) fn ctx(&self, request_id: Option<String>, idempotency_key: Option<String>) -> Ctx {
        let now_ms = self.clock.now_ms();
        Ctx {
            now: now_ms.div_euclid(1000),
            now_ms,
            search_lag_ms: self.search_lag_ms.load(Ordering::Relaxed) as i64,
            base_url: self.base_url.clone(),
            webhooks_on: self.webhooks.is_on(),
            request_id,
            idempotency_key,
        }
    }

    /// Runs `f` on the store, then hands the events it produced to webhook delivery
    /// (after releasing the lock).
    /// Clock-driven work that has come due (renewals, retries, phases) runs first,
    /// so every operation sees the subscriptions as they are at this moment.
    pub(crate) fn with_store<R>(self: &Arc<Self>, f: impl FnOnce(&mut Store) -> R) -> R {
        let (result, events) = {
            let ctx = self.ctx(None, None);
            let mut store = self.store.lock();
            store.run_clock(&ctx, ctx.now);
            let result = f(&mut store);
            (result, std::mem::take(&mut store.outbox))
        };
        if !events.is_empty() {
            webhooks::enqueue(&self.webhooks, events);
        }
        result
    }

    pub(crate) fn stats(&self) -> Stats {
        let requests = Endpoint::ALL
            .iter()
            .zip(&self.requests)
            .map(|(ep, n)| (ep.key().to_string(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let objects = self
            .store
            .lock()
            .counts()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Stats {
            requests,
            objects,
            webhooks: self.webhooks.stats(),
            meter_event_calls_in_flight: self.meter_gate.in_flight(),
        }
    }

    /// Moves the clock and runs, in time order, every boundary it passed.
    pub(crate) fn advance_clock(self: &Arc<Self>, seconds: i64) {
        self.clock.advance(seconds);
        self.with_store(|_| ());
    }

    /// Forgets objects, events, idempotency keys, faults, counters and queued
    /// webhooks; keeps configuration, seeded prices and the clock.
    pub(crate) fn reset(&self) {
        let mut store = self.store.lock();
        let after_failed_payments = store.after_failed_payments;
        let seller_country = std::mem::take(&mut store.tax.seller_country);
        let grace_s = store.metering.grace_s;
        *store = Store::new(&self.seeds, self.clock.now(), after_failed_payments);
        store.configure_tax(&seller_country, &self.currency_seeds);
        store.seed_metered_prices(&self.metered_seeds, self.clock.now(), grace_s);
        drop(store);
        self.idempotency.lock().clear();
        self.faults.lock().clear();
        self.faults_active.store(false, Ordering::Relaxed);
        for n in &self.requests {
            n.store(0, Ordering::Relaxed);
        }
        self.arrivals.clear();
        self.webhooks.forget_all();
    }
}
