//! `stripe-sim`: an offline, stateful Stripe API simulator.
//!
//! It speaks Stripe's wire format (form-encoded parameters with nested keys, Bearer or
//! basic auth, Stripe's JSON objects in the `2026-09-30.endive` shape async-stripe
//! 1.0.0-rc.10 parses, Stripe's error objects) so async-stripe and Stripe's official
//! SDKs work against it unchanged, and it reproduces the failure modes billing code
//! must survive: idempotency conflicts, eventually consistent search, injected
//! errors, slow and dropped responses, rate limiting, late and repeated webhooks.
//!
//! Tests start it in-process with [`SimHandle::start`] and drive it through the
//! handle (faults, checkout completion, clock) without HTTP; the `stripe-sim` binary
//! serves the same thing from the command line, with the control plane under `/_sim/`.
//!
//! ```no_run
//! let sim = stripe_sim::SimHandle::start(stripe_sim::SimConfig::default()).unwrap();
//! let base = sim.base_url(); // point the Stripe client here
//! # let _ = base;
//! ```

#![recursion_limit = "256"]

mod api;
mod api_tax;
mod arrivals;
mod clock;
mod config;
mod control;
mod error;
mod faults;
mod form;
mod geo;
mod http;
mod idempotency;
mod ids;
mod meter_gate;
mod objects;
mod page_billing;
mod pages;
mod pdf;
mod ratelimit;
mod routes;
mod server;
mod state;
mod store;
mod tax_id_format;
mod webhooks;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

pub use config::{
    parse_seller_country, CurrencyOptionSeed, FailedPaymentAction, MeteredPriceSeed, PriceSeed,
    SimConfig, DEFAULT_WEBHOOK_SECRET,
};
pub use error::SimError;
pub use faults::{Fault, FaultKind, RandomFault};
pub use objects::API_VERSION;
pub use state::Stats;
pub use store::{DEFAULT_SELLER_COUNTRY, VERIFICATION_DELAY_S};
pub use webhooks::{signature_header, WebhookStats};

use error::ApiError;
use form::Params;
use state::Shared;

/// A running simulator. Cheap to clone; the server stops when [`SimHandle::shutdown`]
/// is called or the last clone is dropped.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.inner.shared.base_url)
            .finish()
    }
}

fn sim_error(e: ApiError, resource: &'static str, id: &str) -> SimError {
    match (e.status, e.param.as_deref()) {
        (404, _) => SimError::NotFound {
            resource,
            id: id.to_string(),
        },
        (402, _) => SimError::CardDeclined(e.message),
        (_, Some("status")) => SimError::Invalid(e.message),
        _ => SimError::InvalidState(e.message),
    }
}

impl SimHandle {
    /// Binds 127.0.0.1:`config.port` and serves on a dedicated thread with its own
    /// Tokio runtime, so it works from any caller (sync code, `#[tokio::test]`,
    /// actix). Returns once the socket is listening.
    pub fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        parse_seller_country(&config.seller_country)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("stripe-sim-worker")
            .enable_all()
            .build()?;
        let listener = {
            let _enter = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared::new(&config, port, runtime.handle().clone()));
        shared.seed_metering(&config);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("stripe-sim-{port}"))
            .spawn(move || {
                runtime.block_on(server::serve(server_shared, listener, shutdown_rx));
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(SimHandle {
            inner: Arc::new(HandleInner {
                shared,
                shutdown,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: pass it to
    /// `ClientBuilder::new(key).url(..)` or an SDK's `api_base`.
    pub fn base_url(&self) -> String {
        self.shared().base_url.clone()
    }

    pub fn port(&self) -> u16 {
        self.shared().port
    }

    pub fn webhook_secret(&self) -> String {
        self.shared().webhook_secret()
    }

    pub fn set_webhook_secret(&self, secret: &str) {
        self.shared().set_webhook_secret(secret.to_string());
    }

    /// Where future events are delivered (`None`: keep them for `/v1/events` only).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared().set_webhook_url(url);
    }

    pub fn set_latency_ms(&self, ms: u64) {
        self.shared().latency_ms.store(ms, Ordering::Relaxed);
    }

    /// Applies to objects created from now on.
    pub fn set_search_lag_ms(&self, ms: u64) {
        self.shared().search_lag_ms.store(ms, Ordering::Relaxed);
    }

    /// Requests per second on `/v1` (`None` removes the limit).
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared().set_rate_limit(per_second);
    }

    /// Same data as `GET /_sim/stats`.
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// `/v1` requests per whole Unix second of arrival (wall clock), as
    /// `GET /_sim/stats/per_second` has them: how hard Stripe was driven.
    pub fn requests_per_second(&self) -> std::collections::BTreeMap<i64, u64> {
        self.shared().arrivals.per_second()
    }

    /// Arrival times of `/v1` requests (Unix microseconds), oldest first
    /// (the last 200,000), for rates over any window.
    pub fn request_arrivals_us(&self) -> Vec<i64> {
        self.shared().arrivals.times_us()
    }

    pub fn add_fault(&self, fault: Fault) {
        control::add_fault(self.shared(), fault);
    }

    /// A fault striking each matching request with a chance, until cleared.
    pub fn add_random_fault(&self, fault: RandomFault) {
        control::add_random_fault(self.shared(), fault);
    }

    pub fn clear_faults(&self) {
        control::clear_faults(self.shared());
    }

    /// Faults not yet used up.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared().faults.lock().list()
    }

    /// Pays an open checkout session: creates the subscription and its paid invoice,
    /// completes the session, and sends `checkout.session.completed`,
    /// `customer.subscription.created` and `invoice.paid`. Returns the subscription
    /// (the session itself for `payment`/`setup` mode).
    pub fn complete_checkout(&self, session_id: &str) -> Result<Value, SimError> {
        control::complete_checkout(self.shared(), session_id)
            .map_err(|e| sim_error(e, "checkout.session", session_id))
    }

    /// Pays an open checkout session with what the buyer entered on the page:
    /// `{"address": {"country": "DE", …}, "name": "…", "tax_id": {"type": "eu_vat",
    /// "value": "DE…"}, "promotion_code": "CODE"}` (each optional), as
    /// `POST /_sim/checkout/{id}/complete` with that body does.
    pub fn complete_checkout_with(
        &self,
        session_id: &str,
        details: Value,
    ) -> Result<Value, SimError> {
        control::complete_checkout_with(self.shared(), session_id, &details)
            .map_err(|e| sim_error(e, "checkout.session", session_id))
    }

    /// Settles a tax id's verification now (`verified`, `unverified`, or back to
    /// `pending`), sending `customer.tax_id.updated`.
    pub fn set_tax_id_verification(&self, tax_id: &str, status: &str) -> Result<Value, SimError> {
        control::set_tax_id_verification(self.shared(), tax_id, status)
            .map_err(|e| sim_error(e, "tax_id", tax_id))
    }

    /// The tax ids of `customer`, newest first.
    pub fn tax_ids(&self, customer: &str) -> Vec<Value> {
        self.shared().with_store(|s| {
            s.tax
                .tax_ids
                .iter_newest()
                .filter(|e| e.obj["customer"] == customer)
                .map(|e| e.obj.clone())
                .collect()
        })
    }

    /// Where the simulated seller is established from now on (ISO code).
    pub fn set_seller_country(&self, country: &str) -> Result<(), SimError> {
        let c = parse_seller_country(country).map_err(SimError::Invalid)?;
        self.shared().with_store(|s| s.tax.seller_country = c);
        Ok(())
    }

    /// Forces a subscription status: `canceled` sends `customer.subscription.deleted`,
    /// anything else `customer.subscription.updated` (`past_due`/`unpaid` also add an
    /// open invoice and `invoice.payment_failed`).
    pub fn set_subscription_status(&self, sub_id: &str, status: &str) -> Result<Value, SimError> {
        control::set_subscription_status(self.shared(), sub_id, status)
            .map_err(|e| sim_error(e, "subscription", sub_id))
    }

    /// Moves simulator time forward and runs every boundary it passes, in time
    /// order: trial notices and ends, period renewals (a charged invoice each),
    /// cancellations at period end, schedule phases, payment retries.
    pub fn advance_clock(&self, seconds: i64) {
        self.shared().advance_clock(seconds);
    }

    /// Makes every charge to `customer`'s card decline (`true`) or succeed again
    /// (`false`), as `POST /_sim/customers/{id}/card` does.
    pub fn set_card_declines(&self, customer: &str, declines: bool) -> Result<(), SimError> {
        control::set_card(self.shared(), customer, declines)
            .map(|_| ())
            .map_err(|e| sim_error(e, "customer", customer))
    }

    /// The invoices of `customer` (any status), newest first.
    pub fn invoices(&self, customer: &str) -> Vec<Value> {
        self.shared().with_store(|s| {
            s.invoices
                .iter_newest()
                .filter(|e| e.obj["customer"] == customer)
                .map(|e| e.obj.clone())
                .collect()
        })
    }

    /// Charges an open invoice now, like `POST /v1/invoices/{id}/pay`
    /// ([`SimError::CardDeclined`] while the customer's card declines).
    pub fn pay_invoice(&self, invoice_id: &str) -> Result<Value, SimError> {
        control::pay_invoice(self.shared(), invoice_id)
            .map_err(|e| sim_error(e, "invoice", invoice_id))
    }

    /// Charges every open invoice of `customer`, oldest first, like the portal's
    /// "Pay open invoices" button. Returns `(paid, declined)` invoice ids.
    pub fn pay_open_invoices(&self, customer: &str) -> (Vec<String>, Vec<String>) {
        control::pay_open_invoices(self.shared(), customer)
    }

    /// What happens after the last failed payment retry from now on.
    pub fn set_after_failed_payments(&self, action: FailedPaymentAction) {
        self.shared()
            .with_store(|s| s.after_failed_payments = action);
    }

    /// How long after a period's end an invoice that bills usage stays draft
    /// (Stripe's grace period), for periods ending from now on.
    pub fn set_invoice_grace_seconds(&self, seconds: u64) {
        let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
        self.shared().with_store(|s| s.metering.grace_s = seconds);
    }

    /// The meter's aggregate of `customer`'s events with a timestamp in
    /// `[start, end)`, any alignment (0 when there are none).
    pub fn meter_value(&self, meter: &str, customer: &str, start: i64, end: i64) -> f64 {
        self.shared().with_store(|s| {
            s.meters
                .get(meter)
                .and_then(|m| s.meter_events.aggregate(m, customer, start, end))
                .unwrap_or(0.0)
        })
    }

    /// `POST /v1/billing/meter_events` calls still running (each holds its customer
    /// and meter: a concurrent one for the same pair is answered 429).
    pub fn meter_event_calls_in_flight(&self) -> usize {
        self.shared().meter_gate.in_flight()
    }

    /// Simulator time (Unix seconds).
    pub fn now(&self) -> i64 {
        self.shared().clock.now()
    }

    /// Forgets objects, events, idempotency keys, faults, counters and queued
    /// webhooks; keeps configuration, seeded prices and the clock.
    pub fn reset(&self) {
        self.shared().reset();
    }

    /// Live (not deleted) customers, oldest first.
    pub fn customers(&self) -> Vec<Value> {
        self.shared().with_store(|store| {
            let mut v: Vec<Value> = store
                .customers
                .iter_newest()
                .map(|e| e.obj.clone())
                .collect();
            v.reverse();
            v
        })
    }

    /// Subscriptions (any status), oldest first.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.shared().with_store(|store| {
            let mut v: Vec<Value> = store
                .subscriptions
                .iter_newest()
                .map(|e| e.obj.clone())
                .collect();
            v.reverse();
            v
        })
    }

    /// Any stored object by id (`cus_…`, `sub_…`, `sub_sched_…`, `cs_…`, `in_…`,
    /// `price_…`, `evt_…`).
    pub fn object(&self, id: &str) -> Option<Value> {
        self.shared().with_store(|s| s.lookup(id).cloned())
    }

    /// Creates a customer without HTTP, with the same parameters as
    /// `POST /v1/customers` as JSON (`{"email": "…", "metadata": {"tenant_id": "…"}}`).
    /// Emits `customer.created` like the API. Panics on invalid parameters (test helper).
    pub fn create_customer_direct(&self, params: Value) -> Value {
        let ctx = self.shared().ctx(None, None);
        self.shared()
            .with_store(|s| s.create_customer(&ctx, Params(&params)))
            .unwrap_or_else(|e| panic!("create_customer_direct: {}", e.message))
    }

    /// Requests with an `Idempotency-Key` that are still running (for tests that need
    /// a request to be in flight before racing a second one against it).
    pub fn idempotent_requests_in_flight(&self) -> usize {
        self.shared().idempotency.lock().in_flight()
    }

    /// Every event kept, newest first (as `GET /v1/events`).
    pub fn events(&self) -> Vec<Value> {
        self.shared()
            .with_store(|store| store.events.iter_newest().map(|e| e.obj.clone()).collect())
    }

    /// Waits until every queued webhook has been answered 2xx; false on timeout.
    /// Needs a Tokio runtime (any flavour) in the caller.
    pub async fn wait_webhooks_idle(&self, timeout: Duration) -> bool {
        self.shared().webhooks.wait_idle(timeout).await
    }

    /// Stops accepting connections and shuts the server's runtime down.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        if let Some(thread) = self.inner.thread.lock().take() {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}
