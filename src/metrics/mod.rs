//! Prometheus metrics (README, Metrics), one registry per running instance.
//!
//! Why per instance rather than a global recorder: the tests run several
//! instances in one process, and each must scrape only its own traffic.
//! Label values come from small fixed sets (route templates, operation
//! names, outcomes) so that no tenant id and no client-chosen string can
//! become a label and blow up the series count.

mod http;

pub use http::record_http;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The label given to requests that matched no route: never the raw path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// HTTP methods as labels; anything exotic is `OTHER`, so a client cannot
/// mint series by inventing methods.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum HttpMethod {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
    HEAD,
    OPTIONS,
    OTHER,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: HttpMethod,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: HttpMethod,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StripeLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    r#type: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PriorityLabels {
    priority: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// What happened to a webhook delivery (the closed set README, Metrics lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    Duplicate,
    Ignored,
    Failed,
    Rejected,
}

impl WebhookOutcome {
    fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Applied => "applied",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Ignored => "ignored",
            WebhookOutcome::Failed => "failed",
            WebhookOutcome::Rejected => "rejected",
        }
    }
}

/// One attempt at Stripe, as the retry loop classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StripeOutcome {
    Ok,
    ClientError,
    RateLimited,
    ServerError,
    Timeout,
    NetworkError,
    /// Stripe answered something we could not read.
    InvalidResponse,
}

impl StripeOutcome {
    fn as_str(self) -> &'static str {
        match self {
            StripeOutcome::Ok => "ok",
            StripeOutcome::ClientError => "client_error",
            StripeOutcome::RateLimited => "rate_limited",
            StripeOutcome::ServerError => "server_error",
            StripeOutcome::Timeout => "timeout",
            StripeOutcome::NetworkError => "network_error",
            StripeOutcome::InvalidResponse => "invalid_response",
        }
    }
}

/// Job states reported by `jobs{state}`, always all of them (0 when empty).
pub const JOB_STATES: [&str; 4] = ["queued", "running", "succeeded", "dead"];

/// The families of one instance. Recording is a read lock, a hash lookup
/// and an atomic add (a short mutex for histograms): cheap enough for the
/// hot read, which the middleware bench measures.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    stripe_requests: Family<StripeLabels, Counter>,
    stripe_duration: Family<OperationLabels, Histogram>,
    webhook_events: Family<WebhookLabels, Counter>,
    jobs: Family<StateLabels, Gauge>,
    jobs_processed: Family<JobLabels, Counter>,
    cache_requests: Family<CacheLabels, Counter>,
    pool_connections: Family<StateLabels, Gauge>,
    usage_events: Family<CacheLabels, Counter>,
    lock_writes: Family<OpLabels, Counter>,
    stripe_budget_waits: Family<PriorityLabels, Histogram>,
    usage_meter_events: Family<OutcomeLabels, Counter>,
    usage_unbilled: Family<ReasonLabels, Counter>,
    usage_forward_lag: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Sub-millisecond buckets too: a cache hit answers in well under 1 ms.
const HTTP_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Stripe answers in tens to hundreds of milliseconds; one attempt is capped
/// by `stripe.request_timeout_ms` (5 s by default).
const STRIPE_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(HTTP_BUCKETS));
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            http_duration.clone(),
        );
        let stripe_requests = Family::<StripeLabels, Counter>::default();
        registry.register(
            "stripe_requests",
            "Stripe API attempts (each retry counts), by operation and outcome",
            stripe_requests.clone(),
        );
        let stripe_duration = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(STRIPE_BUCKETS)
        });
        registry.register(
            "stripe_request_duration_seconds",
            "Duration of one Stripe API attempt, by operation",
            stripe_duration.clone(),
        );
        let webhook_events = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_events",
            "Stripe webhook deliveries, by event type and outcome",
            webhook_events.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Outbox jobs in the database, by state (read at scrape time)",
            jobs.clone(),
        );
        let jobs_processed = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs_processed",
            "Outbox job executions finished by this instance, by kind and outcome",
            jobs_processed.clone(),
        );
        let cache_requests = Family::<CacheLabels, Counter>::default();
        registry.register(
            "billing_state_cache_requests",
            "Billing state reads, served from the per-instance cache (hit) or the database (miss)",
            cache_requests.clone(),
        );
        let pool_connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections, idle or in use (read at scrape time)",
            pool_connections.clone(),
        );
        let usage_events = Family::<CacheLabels, Counter>::default();
        registry.register(
            "usage_events",
            "Usage events answered by this instance, by result \
             (recorded, duplicate, conflict, refused)",
            usage_events.clone(),
        );
        let lock_writes = Family::<OpLabels, Counter>::default();
        registry.register(
            "subscription_lock_writes",
            "Write transactions on subscription write locks by this instance, by op \
             (acquire: an attempt at a free lock, release)",
            lock_writes.clone(),
        );
        let stripe_budget_waits = Family::<PriorityLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(STRIPE_BUCKETS)
        });
        registry.register(
            "stripe_budget_wait_seconds",
            "Time a Stripe attempt waited for a slot of the shared request budget, by priority",
            stripe_budget_waits.clone(),
        );
        let usage_meter_events = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "usage_meter_events",
            "Meter events sent to Stripe by this instance's usage forwarder, by outcome \
             (accepted, already_counted, rate_limited, failed, expired, rejected, unknown)",
            usage_meter_events.clone(),
        );
        let usage_unbilled = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "usage_unbilled_units",
            "Recorded usage that could not reach Stripe, in the meter's units, by reason \
             (expired: older than Stripe's 35-day window; rejected: refused by Stripe; \
             unknown: outcome unknown past the 24-hour identifier window, left to reconcile)",
            usage_unbilled.clone(),
        );
        let usage_forward_lag = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "usage_forward_lag_seconds",
            "Age of the oldest recorded usage event not yet accepted by Stripe, over every \
             tenant with a Stripe customer; 0 when all is forwarded (read at scrape time)",
            usage_forward_lag.clone(),
        );
        Metrics {
            registry,
            lock_writes,
            stripe_budget_waits,
            http_requests,
            http_duration,
            stripe_requests,
            stripe_duration,
            webhook_events,
            jobs,
            jobs_processed,
            cache_requests,
            pool_connections,
            usage_events,
            usage_meter_events,
            usage_unbilled,
            usage_forward_lag,
        }
    }

    /// A write transaction on a subscription write lock (`acquire`, `release`).
    pub fn lock_write(&self, op: &'static str) {
        self.lock_writes.get_or_create(&OpLabels { op }).inc();
    }

    /// How long a Stripe attempt waited for its budget slot.
    pub fn budget_wait(&self, priority: &'static str, seconds: f64) {
        self.stripe_budget_waits
            .get_or_create(&PriorityLabels { priority })
            .observe(seconds);
    }

    /// One meter event the forwarder sent (or decided about), by outcome.
    pub fn usage_meter_event(&self, outcome: &'static str) {
        self.usage_meter_events
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Usage that will not be billed through Stripe, by reason.
    pub fn usage_unbilled(&self, reason: &'static str, units: u64) {
        self.usage_unbilled
            .get_or_create(&ReasonLabels { reason })
            .inc_by(units);
    }

    /// The forwarding lag, in seconds (0: nothing waiting).
    pub fn set_usage_forward_lag(&self, seconds: f64) {
        self.usage_forward_lag.set(seconds.max(0.0));
    }

    /// One usage event's result: `recorded`, `duplicate`, `conflict` or
    /// `refused` (a fixed set).
    pub fn usage_event(&self, result: &'static str) {
        self.usage_events
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    /// One answered request. `route` is a template or `UNMATCHED_ROUTE`.
    pub fn observe_http(&self, method: HttpMethod, route: String, status: u16, seconds: f64) {
        let labels = RouteLabels { method, route };
        self.http_duration.get_or_create(&labels).observe(seconds);
        self.http_requests
            .get_or_create(&HttpLabels {
                method: labels.method,
                route: labels.route,
                status,
            })
            .inc();
    }

    /// One Stripe attempt (not one intent: retries show as extra attempts).
    pub fn observe_stripe(&self, operation: &'static str, outcome: StripeOutcome, seconds: f64) {
        self.stripe_requests
            .get_or_create(&StripeLabels {
                operation,
                outcome: outcome.as_str(),
            })
            .inc();
        self.stripe_duration
            .get_or_create(&OperationLabels { operation })
            .observe(seconds);
    }

    /// One webhook delivery. `event_type` is Stripe's (verified) type, or
    /// `unverified` when the signature was refused.
    pub fn webhook(&self, event_type: &str, outcome: WebhookOutcome) {
        self.webhook_events
            .get_or_create(&WebhookLabels {
                r#type: event_type.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// One finished job execution (`succeeded`, `retried`, `dead`, …).
    pub fn job_processed(&self, kind: &'static str, outcome: &'static str) {
        self.jobs_processed
            .get_or_create(&JobLabels { kind, outcome })
            .inc();
    }

    pub fn cache_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache_requests
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    /// Sets `jobs{state}` from a database count (states absent count 0).
    pub fn set_jobs(&self, counts: &[(String, i64)]) {
        for state in JOB_STATES {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.jobs.get_or_create(&StateLabels { state }).set(n);
        }
    }

    pub fn set_pool(&self, idle: u32, in_use: u32) {
        self.pool_connections
            .get_or_create(&StateLabels { state: "idle" })
            .set(i64::from(idle));
        self.pool_connections
            .get_or_create(&StateLabels { state: "in_use" })
            .set(i64::from(in_use));
    }

    /// The OpenMetrics text exposition (Prometheus scrapes it natively).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The content type of `Metrics::encode`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_with_its_labels() {
        let metrics = Metrics::new();
        metrics.observe_http(HttpMethod::GET, "/healthz".into(), 200, 0.001);
        metrics.observe_stripe("create_customer", StripeOutcome::Ok, 0.05);
        metrics.webhook("invoice.paid", WebhookOutcome::Applied);
        metrics.job_processed("ensure_customer", "succeeded");
        metrics.cache_lookup(true);
        metrics.set_jobs(&[("queued".into(), 3)]);
        metrics.set_pool(2, 1);
        let text = metrics.encode();
        for expected in [
            r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
            r#"http_request_duration_seconds_bucket{le="0.0025",method="GET",route="/healthz"} 1"#,
            r#"stripe_requests_total{operation="create_customer",outcome="ok"} 1"#,
            r#"stripe_request_duration_seconds_count{operation="create_customer"} 1"#,
            r#"webhook_events_total{type="invoice.paid",outcome="applied"} 1"#,
            r#"jobs{state="queued"} 3"#,
            r#"jobs{state="dead"} 0"#,
            r#"jobs_processed_total{kind="ensure_customer",outcome="succeeded"} 1"#,
            r#"billing_state_cache_requests_total{result="hit"} 1"#,
            r#"db_pool_connections{state="in_use"} 1"#,
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
