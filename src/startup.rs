//! Builds the running service from settings: pool, migrations, routes, listener.
//! Tests use the same path with port 0 and read the real port back.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, Condition, Next};
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::auth::JwtVerifier;
use crate::billing::{Billing, JobWorkers};
use crate::db::{self, DbPool};
use crate::metrics::{self, Metrics};
use crate::rate_limit::TenantLimits;
use crate::routes;
use crate::settings::Settings;
use crate::shutdown::{self, Drain};
use crate::stripe::StripeGateway;
use crate::telemetry::TenantRootSpan;
use secrecy::SecretString;

/// Whether `build` applies pending migrations (`serve --no-migrate` skips them).
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    pub migrate: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { migrate: true }
    }
}

pub struct Application {
    port: u16,
    /// `http://127.0.0.1:PORT` (or the bound address): where a browser on
    /// this machine reaches the service, e.g. the settings page link.
    origin: String,
    server: Server,
    pool: DbPool,
    /// The in-process Stripe simulator, when no key is configured (development).
    simulator: Option<stripe_sim::SimHandle>,
    /// Outbox workers (`[jobs] enabled`), stopped with the server.
    workers: Option<JobWorkers>,
    billing: web::Data<Billing>,
    drain: web::Data<Drain>,
    shutdown_timeout: Duration,
    /// PostgreSQL: other instances' changes, dropped from the state cache.
    _listener: Option<crate::db::listen::Listener>,
    /// Keeps a configured JWKS fresh; stopped with the server.
    jwks_refresher: Option<tokio::task::JoinHandle<()>>,
}

/// Once every request is answered, how long actix may take to close the
/// connections (idle keep-alive ones included).
const CLOSE_CONNECTIONS: Duration = Duration::from_secs(2);
/// How long a stopping instance waits for its database work to end before
/// giving its leases back regardless (they are then released late, not lost).
const QUIESCE_LIMIT: Duration = Duration::from_secs(10);

impl Application {
    pub async fn build(
        mut settings: Settings,
        options: BuildOptions,
    ) -> anyhow::Result<Application> {
        let pool = db::build_pool(&settings.database);
        if options.migrate {
            let applied = apply_migrations(&pool).await?;
            for version in &applied {
                tracing::info!(version, "applied migration");
            }
        }
        let verifier = JwtVerifier::from_settings(&settings.auth).map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(&settings.server.bind_addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.bind_addr))?;
        let bound = listener.local_addr()?;
        let port = bound.port();
        settings.billing.adopt_own_origin(bound);
        let origin = crate::settings::local_origins(bound).remove(0);
        let (gateway, simulator) = connect_stripe(&mut settings)?;
        let metrics = Arc::new(Metrics::new());
        let gateway = gateway.with_metrics(metrics.clone());
        if let Some(sim) = &simulator {
            sim.set_webhook_url(Some(format!("http://127.0.0.1:{port}/v1/stripe/webhook")));
        }
        let settings = Arc::new(settings);
        let billing = web::Data::new(
            Billing::new(pool.clone(), gateway, settings.clone()).with_metrics(metrics.clone()),
        );
        billing.get_ref().start_heartbeat("serve");
        let metrics_enabled = settings.metrics.enabled;
        let metrics = web::Data::from(metrics);
        let workers = settings
            .jobs
            .enabled
            .then(|| billing.get_ref().start_workers());
        let change_listener = billing.listen_for_changes();
        let jwks_refresher = verifier.start_jwks().await;
        if settings.stripe.check_prices_on_startup {
            // Reported, never waited on: serving does not depend on Stripe.
            let checker = billing.get_ref().clone();
            actix_web::rt::spawn(async move {
                checker.check_prices().await;
                checker.check_metering().await;
            });
        }
        let verifier = web::Data::new(verifier);
        let limits = web::Data::new(TenantLimits::new(&settings.rate_limit));
        let max_body = settings.server.max_body_bytes;
        let drain = web::Data::new(Drain::default());
        let readiness = web::Data::new(routes::health::ReadinessProbe::default());
        let app_billing = billing.clone();
        let app_drain = drain.clone();

        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(shutdown::track_requests))
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::<TenantRootSpan>::new())
                .wrap(Condition::new(
                    metrics_enabled,
                    from_fn(metrics::record_http),
                ))
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body)
                        .error_handler(routes::errors::json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(routes::errors::query_error))
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(app_billing.clone())
                .app_data(app_drain.clone())
                .app_data(readiness.clone())
                .app_data(verifier.clone())
                .app_data(metrics.clone())
                .app_data(limits.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::errors::not_found))
        })
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        if settings.server.max_blocking_threads_per_worker > 0 {
            server =
                server.worker_max_blocking_threads(settings.server.max_blocking_threads_per_worker);
        }
        let server = server
            .shutdown_timeout(CLOSE_CONNECTIONS.as_secs())
            .disable_signals()
            .run();
        tracing::info!(
            address = %settings.server.bind_addr,
            port,
            database = settings.database.backend().map_or("unknown", |b| b.name()),
            "serving"
        );
        Ok(Application {
            port,
            origin,
            server,
            pool,
            simulator,
            workers,
            billing,
            drain,
            shutdown_timeout: settings.server.shutdown_timeout(),
            _listener: change_listener,
            jwks_refresher,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The service's origin for a browser on this machine (`http://127.0.0.1:PORT`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The in-process simulator, if this instance started one.
    pub fn simulator(&self) -> Option<&stripe_sim::SimHandle> {
        self.simulator.as_ref()
    }

    /// A handle to stop the server gracefully (tests, signal handling).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped by `handle().stop(..)` or Ctrl-C / SIGTERM.
    ///
    /// On a signal: drain (`/readyz` 503, workers stop claiming, in-flight
    /// requests and running jobs get `server.shutdown_timeout_seconds`, then
    /// the rest are cut off with a 503), stop listening, wait until no
    /// database work of this process runs, and give back every lease this
    /// instance still holds so that another one carries on at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        // Dropping the server future stops the server: keep it until the end.
        let mut server = self.server;
        let _simulator = self.simulator;
        let started = tokio::time::Instant::now();
        let (result, deadline) = tokio::select! {
            result = &mut server => (result, started),
            _ = shutdown_signal() => {
                let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
                self.drain.begin();
                tracing::info!(
                    in_flight = self.drain.in_flight(),
                    timeout_s = self.shutdown_timeout.as_secs(),
                    "shutting down: draining"
                );
                if let Some(workers) = &self.workers {
                    workers.stop_claiming();
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if !self.drain.idle(left).await {
                    tracing::warn!(
                        in_flight = self.drain.in_flight(),
                        "shutdown deadline reached: answering the requests still running with 503"
                    );
                    self.drain.cut();
                    self.drain.idle(CLOSE_CONNECTIONS).await;
                }
                // The server future runs the stop: poll both.
                let ((), result) = tokio::join!(handle.stop(true), server);
                (result, deadline)
            }
        };
        if let Some(workers) = self.workers {
            workers.finish(deadline).await;
        }
        if !self.billing.pool().quiesce(QUIESCE_LIMIT).await {
            tracing::warn!("database work still running at shutdown; releasing leases anyway");
        }
        match self.billing.release_held_leases().await {
            Ok(released) => tracing::info!(
                customer_claims = released.customer_claims,
                jobs = released.jobs,
                "released the leases this instance held"
            ),
            Err(error) => tracing::warn!(
                error = %error,
                "could not release this instance's leases; they lapse on their own"
            ),
        }
        self.billing.stop_heartbeat();
        if let Some(refresher) = self.jwks_refresher {
            refresher.abort();
        }
        result
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The Stripe gateway: real Stripe with a key, else the bundled simulator
/// started in-process and seeded with the configured plans' prices.
pub fn connect_stripe(
    settings: &mut Settings,
) -> anyhow::Result<(StripeGateway, Option<stripe_sim::SimHandle>)> {
    if let (Some(key), false) = (
        &settings.stripe.secret_key,
        settings.stripe.uses_simulator(),
    ) {
        let gateway = StripeGateway::new(key, &settings.stripe.api_base, &settings.stripe)?;
        return Ok((gateway, None));
    }
    let (prices, price_currency_options) = simulator_prices(&settings.catalog);
    let mut config = stripe_sim::SimConfig {
        prices,
        price_currency_options,
        metered_prices: metered_price_seeds(settings),
        invoice_grace_seconds: settings.usage.stripe_grace_seconds,
        ..stripe_sim::SimConfig::default()
    };
    if let Some(secret) = settings.stripe.webhook_secrets.first() {
        config.webhook_secret = secrecy::ExposeSecret::expose_secret(secret).to_owned();
    }
    let sim = stripe_sim::SimHandle::start(config)
        .map_err(|e| anyhow::anyhow!("cannot start the Stripe simulator: {e}"))?;
    if settings.stripe.webhook_secrets.is_empty() {
        settings.stripe.webhook_secrets = vec![SecretString::from(sim.webhook_secret())];
    }
    tracing::info!(
        url = %sim.base_url(),
        "STRIPE_SECRET_KEY is not set: using the in-process Stripe simulator"
    );
    let key = SecretString::from("sk_test_in_process_simulator");
    let gateway = StripeGateway::new(&key, &sim.base_url(), &settings.stripe)?;
    Ok((gateway, Some(sim)))
}

/// The simulator's prices for the configured plans: each plan's main price
/// (its configured amount, currency and interval; 10.00 USD a month when
/// none is configured), a price per other currency it names (`prices`), and
/// its other `currency_amounts` as the main price's `currency_options`.
pub fn simulator_prices(
    catalog: &crate::domain::PlanCatalog,
) -> (
    Vec<stripe_sim::PriceSeed>,
    Vec<stripe_sim::CurrencyOptionSeed>,
) {
    let mut prices = Vec::new();
    let mut options = Vec::new();
    for plan in catalog.plans() {
        let Some(main) = &plan.price_id else {
            continue;
        };
        let configured = plan.configured_price.clone();
        let interval = configured
            .as_ref()
            .map_or_else(|| "month".to_owned(), |p| p.interval.clone());
        let amount = configured.as_ref().map_or(1000, |p| p.amount);
        prices.push(stripe_sim::PriceSeed {
            id: main.clone(),
            unit_amount: amount,
            currency: configured
                .as_ref()
                .map_or_else(|| "usd".to_owned(), |p| p.currency.clone()),
            interval: interval.clone(),
        });
        for (currency, id) in &plan.prices {
            prices.push(stripe_sim::PriceSeed {
                id: id.clone(),
                unit_amount: plan
                    .currency_amounts
                    .get(currency)
                    .copied()
                    .unwrap_or(amount),
                currency: currency.clone(),
                interval: interval.clone(),
            });
        }
        for (currency, amount) in &plan.currency_amounts {
            if !plan.prices.contains_key(currency) {
                options.push(stripe_sim::CurrencyOptionSeed {
                    price: main.clone(),
                    currency: currency.clone(),
                    unit_amount: *amount,
                });
            }
        }
    }
    (prices, options)
}

/// The configured plans' metered prices, as the in-process simulator seeds
/// them: `metered_unit_amounts` cents per unit (1 when unset) in the plan's
/// currency and interval, on the Stripe meter its `[meters.*] stripe_meter`
/// names; with `overage = "allow"`, the plan's limit of that meter is free
/// (graduated tiers), so only the usage past it is billed.
pub fn metered_price_seeds(settings: &Settings) -> Vec<stripe_sim::MeteredPriceSeed> {
    let catalog = &settings.catalog;
    let mut seeds: Vec<stripe_sim::MeteredPriceSeed> = Vec::new();
    for plan in catalog.plans() {
        for (meter_id, price_id) in &plan.metered_prices {
            let Some(event_name) = catalog.meter(meter_id).and_then(|m| m.stripe_meter.clone())
            else {
                continue;
            };
            if seeds.iter().any(|seed| &seed.price.id == price_id) {
                continue;
            }
            let included = match plan.overage {
                crate::domain::Overage::Allow => plan.limits.get(meter_id).copied().unwrap_or(0),
                crate::domain::Overage::Block => 0,
            };
            seeds.push(stripe_sim::MeteredPriceSeed {
                price: stripe_sim::PriceSeed {
                    id: price_id.clone(),
                    unit_amount: plan
                        .metered_unit_amounts
                        .get(meter_id)
                        .copied()
                        .unwrap_or(1),
                    currency: plan
                        .configured_price
                        .as_ref()
                        .map_or_else(|| "usd".into(), |p| p.currency.clone()),
                    interval: plan
                        .configured_price
                        .as_ref()
                        .map_or_else(|| "month".into(), |p| p.interval.clone()),
                },
                event_name,
                included: u64::try_from(included).unwrap_or(0),
            });
        }
    }
    seeds
}

/// Applies pending migrations off the async workers; returns the versions applied.
pub async fn apply_migrations(pool: &DbPool) -> anyhow::Result<Vec<String>> {
    let pool = pool.clone();
    web::block(move || -> anyhow::Result<Vec<String>> {
        let mut conn = pool
            .get()
            .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
        db::migrations::run_pending(&mut conn).map_err(|e| anyhow::anyhow!("migration failed: {e}"))
    })
    .await
    .map_err(|_| anyhow::anyhow!("migration task aborted"))?
}

/// Returns the request id (the same one in the logs) as `x-request-id`, on
/// answers and on errors that inner middleware returned as such.
async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req.extensions().get::<RequestId>().copied();
    let value = request_id.and_then(|id| HeaderValue::from_str(&id.to_string()).ok());
    let name = HeaderName::from_static("x-request-id");
    match next.call(req).await {
        Ok(mut response) => {
            if let Some(value) = value {
                response.headers_mut().insert(name, value);
            }
            Ok(response)
        }
        Err(error) => {
            let mut response = error.error_response();
            if let Some(value) = value {
                response.headers_mut().insert(name, value);
            }
            Err(actix_web::error::InternalError::from_response(error.to_string(), response).into())
        }
    }
}
