//! The billing service: everything a route asks of billing goes through here.
//! It owns the order of operations between the database and Stripe, and never
//! holds a transaction or pooled connection across a Stripe call.

mod backfill;
mod bulk;
mod catalog;
mod customer;
mod entitlements;
mod forwarding;
mod invoice_cache;
mod invoices;
mod jobs;
mod leases;
mod plan_change;
mod profile;
mod reconcile;
mod retention;
mod seats;
mod sessions;
mod snapshot;
mod state;
mod state_cache;
mod state_reader;
mod stripe_budget;
mod subscription_lock;
mod sync;
mod tax_ids;
mod usage;
mod usage_batches;
mod usage_reconcile;
mod webhooks;

/// A tax id as the tenant's customer has it at Stripe.
pub use crate::stripe::StripeTaxId as TaxId;
pub use backfill::{BackfillOutcome, BackfillTotals, EnsureCustomers};
pub use bulk::{BulkOperation, BulkOutcome, BulkTotals, Step};
pub use catalog::{PlanOffer, PriceChoice, PriceProblem};
pub use customer::{CustomerHints, EnsureAttempt, EnsuredCustomer};
pub use entitlements::Entitlements;
pub use forwarding::MeteringProblem;
pub use jobs::{JobCounters, JobHub, JobWorkers};
pub use leases::Released;
pub use plan_change::PlanChangeRequest;
pub use profile::{ProfileSync, ProfileUpdate};
pub use reconcile::{classify, Finding, FixSummary, ReconcileReport, DUPLICATE_OF};
pub use retention::{Swept, RETENTION_BATCH};
pub use sessions::CheckoutRequest;
pub use state::BillingState;
pub use sync::{SyncOutcome, SyncTenants};
pub use usage::{LedgerEvent, MeterUsage, Recorded, UsageCheck, UsageEvent};
pub use usage_reconcile::{UsagePeriodReport, UsageReconcileReport, UsageStatus};
pub use webhooks::WebhookFailure;

use std::sync::Arc;

use catalog::PriceBook;
use forwarding::MeterBook;
use invoice_cache::InvoiceCache;
use state_cache::StateCache;
use state_reader::StateReader;
use subscription_lock::LockWaiters;
use usage::Metering;
use usage_batches::UsageBatches;

use crate::db::tenants::TenantRecord;
use crate::db::{self, audit, DbConnection, DbError, DbPool};
use crate::domain::{Email, PlanCatalog, TenantId};
use crate::metrics::Metrics;
use crate::settings::{Backend, Settings};
use crate::stripe::{StripeFailure, StripeGateway};

/// Who acts, for the audit log and as the last fallback for a customer email.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: &'a str,
    pub request_id: Option<&'a str>,
    pub email: Option<&'a Email>,
}

impl Actor<'_> {
    /// Work the service starts on its own (background provisioning, commands).
    pub const SYSTEM: Actor<'static> = Actor {
        user_id: "system",
        request_id: None,
        email: None,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Stripe(#[from] StripeFailure),
    /// Another request is still creating this tenant's customer.
    #[error("the customer is still being created by another request")]
    CreationInProgress,
    /// The tenant already pays for a plan: a second Checkout would double-bill.
    #[error("an active paid subscription already exists")]
    AlreadySubscribed,
    /// A plan change, cancel or resume needs a live subscription.
    #[error("the tenant has no subscription")]
    NoSubscription,
    /// Resume comes too late: the subscription has ended.
    #[error("the subscription has ended")]
    SubscriptionEnded,
    /// Another subscription write of this tenant did not finish in time.
    #[error("another change to this subscription is in progress")]
    WriteInProgress,
    /// Seats apply to a per-seat plan only.
    #[error("the plan is not billed per seat")]
    NotPerSeat,
    /// `starting_after` names an invoice Stripe does not know.
    #[error("no such invoice")]
    UnknownInvoice,
    /// More seats than the plan's `limits.seats`.
    #[error("more seats than the plan allows")]
    TooManySeats { max: i64 },
    /// Automatic tax needs this part of the billing address (`country`,
    /// `postal_code`), which the tenant has not given.
    #[error("the billing address lacks its {field}")]
    AddressIncomplete {
        field: &'static str,
        message: String,
    },
    /// The tenant's currency is fixed (its first subscription's) and another
    /// one was asked for.
    #[error("the tenant pays in {fixed}, not {asked}")]
    CurrencyFixed { fixed: String, asked: String },
    /// The plan has no price in this currency.
    #[error("the plan is not sold in {currency}")]
    NotSoldInCurrency { currency: String, requested: bool },
    /// No promotion code with this code exists at Stripe.
    #[error("unknown promotion code")]
    UnknownPromotionCode,
    /// The promotion code exists but can no longer be redeemed.
    #[error("the promotion code has expired or is no longer active")]
    PromotionCodeExpired,
    /// Stripe refused a tax id that passed our format check.
    #[error("stripe refused the tax id")]
    TaxIdRefused,
    /// No such tax id on the tenant's customer.
    #[error("no such tax id")]
    TaxIdNotFound,
}

/// Shared, cheap-to-clone handle on the billing service.
#[derive(Clone)]
pub struct Billing {
    pool: DbPool,
    stripe: StripeGateway,
    settings: Arc<Settings>,
    jobs: Arc<JobHub>,
    state_cache: Arc<StateCache>,
    /// Invoice pages read from Stripe, per tenant, briefly (`invoice_cache`).
    invoice_cache: Arc<InvoiceCache>,
    /// This instance's subscription-lock waiters, woken on release.
    lock_waiters: Arc<LockWaiters>,
    /// This process's heartbeat (`start_heartbeat`); stops with the last clone.
    heartbeat: Arc<std::sync::Mutex<Option<db::presence::Heartbeat>>>,
    /// Batches the display read's cache misses (see `state_reader`).
    state_reader: Arc<StateReader>,
    /// Batches single usage events and usage reads (see `usage_batches`).
    usage_batches: Arc<UsageBatches>,
    /// Names this process in the leases it takes (creation claims, jobs), so
    /// that it can give them all back when it stops.
    instance: Arc<str>,
    metrics: Arc<Metrics>,
    prices: Arc<PriceBook>,
    /// Stripe's meters the usage forwarder sends to, as looked up.
    meters: Arc<MeterBook>,
}

impl Billing {
    /// Every Stripe call of this service draws on the budget shared through
    /// `pool` by every instance and command (`stripe.max_requests_per_second`).
    pub fn new(pool: DbPool, stripe: StripeGateway, settings: Arc<Settings>) -> Billing {
        let stripe = stripe.with_budget(stripe_budget::shared_budget(&pool, &settings.stripe));
        let state_cache = Arc::new(StateCache::new(
            settings.billing.state_cache_ttl(),
            settings.billing.state_cache_capacity,
        ));
        // Half the pool at most serves each kind of batched work (display
        // misses, single usage events, usage reads); other writes keep the rest.
        let drainers = (settings.database.pool_size as usize / 2).clamp(1, 4);
        let state_reader = Arc::new(StateReader::new(drainers));
        let usage_batches = Arc::new(UsageBatches::new(
            Metering::new(&settings.catalog, settings.billing.past_due_grace()),
            drainers,
        ));
        let invoice_cache = Arc::new(InvoiceCache::new(settings.billing.invoice_cache_ttl()));
        Billing {
            invoice_cache,
            pool,
            stripe,
            settings,
            jobs: Arc::default(),
            state_cache,
            lock_waiters: Arc::default(),
            heartbeat: Arc::default(),
            state_reader,
            usage_batches,
            instance: format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
            .into(),
            metrics: Arc::default(),
            prices: Arc::default(),
            meters: Arc::default(),
        }
    }

    /// This process's name in the leases it holds.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Starts this process's heartbeat (`db::presence`): a row other
    /// processes see, so that the leases this one holds are taken over at
    /// once if it dies, and the reaping of processes that died. `kind`
    /// names the process for operators (`serve`, `backfill-customers`, …).
    pub fn start_heartbeat(&self, kind: &str) {
        let database = &self.settings.database;
        let config = db::presence::HeartbeatConfig {
            url: database.url.clone(),
            sqlite_busy_timeout_ms: database.sqlite_busy_timeout_ms,
            id: self.instance.to_string(),
            kind: kind.to_owned(),
            interval: database.heartbeat_interval(),
            dead_after: database.holder_dead_after(),
        };
        let (waiters, jobs) = (self.lock_waiters.clone(), self.jobs.clone());
        let started = db::presence::start(config, move |reaped| {
            for tenant in &reaped.subscription_locks {
                if let Ok(tenant) = TenantId::parse(tenant) {
                    waiters.wake(&tenant);
                }
            }
            if reaped.jobs > 0 {
                jobs.wake_all();
            }
        });
        match started {
            Ok(heartbeat) => {
                *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(heartbeat);
            }
            Err(error) => tracing::warn!(
                error = %error,
                "cannot start the heartbeat; this process's leases lapse only when they expire"
            ),
        }
    }

    /// Stops the heartbeat and removes this process's row: call once its
    /// leases are given back (a clean stop).
    pub fn stop_heartbeat(&self) {
        self.heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// On PostgreSQL, listens for other instances' changes: drops their
    /// tenants' cached state and invoice pages at once (everything, after a
    /// reconnect) and wakes this instance's subscription-lock waiters when
    /// another instance releases a lock. None on SQLite: TTLs and the
    /// waiters' backoff are the bound there.
    pub fn listen_for_changes(&self) -> Option<db::listen::Listener> {
        if self.settings.database.backend() != Some(Backend::Postgres) {
            return None;
        }
        let url = self.settings.database.url.clone();
        let (state, invoices) = (self.state_cache.clone(), self.invoice_cache.clone());
        let waiters = self.lock_waiters.clone();
        let tenant = |name: &str| TenantId::parse(name).ok();
        let started = db::listen::listen(url, move |event| match event {
            db::listen::StateEvent::Changed(name) => {
                if let Some(tenant) = tenant(&name) {
                    state.invalidate(&tenant);
                    invoices.invalidate(&tenant);
                }
            }
            db::listen::StateEvent::InvoicesChanged(name) => {
                if let Some(tenant) = tenant(&name) {
                    invoices.invalidate(&tenant);
                }
            }
            db::listen::StateEvent::LockReleased(name) => {
                if let Some(tenant) = tenant(&name) {
                    waiters.wake(&tenant);
                }
            }
            db::listen::StateEvent::Resync => {
                state.clear();
                invoices.clear();
                waiters.wake_all();
            }
        });
        match started {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(error = %error, "cannot start the change listener; cache TTLs bound staleness");
                None
            }
        }
    }

    /// Records into `metrics` (the instance's registry) instead of a
    /// private one nobody scrapes.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Billing {
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Refreshes the gauges read at scrape time (jobs by state from the
    /// database, pool usage) and encodes every family.
    pub async fn scrape_metrics(&self) -> String {
        match db::interact(&self.pool, |conn| Ok(db::jobs::count_by_state(conn)?)).await {
            Ok(counts) => self.metrics.set_jobs(&counts),
            Err(error) => tracing::warn!(error = %error, "could not count jobs for /metrics"),
        }
        match self.usage_forward_lag().await {
            Ok(lag) => self.metrics.set_usage_forward_lag(lag),
            Err(error) => tracing::warn!(error = %error, "could not read the usage forwarding lag"),
        }
        let (idle, in_use) = self.pool.usage();
        self.metrics.set_pool(idle, in_use);
        self.metrics.encode()
    }

    /// This instance's job counters (also logged as they change).
    pub fn job_counters(&self) -> &JobCounters {
        &self.jobs.counters
    }

    /// Whether the database answers a query now (readiness).
    pub async fn ping_database(&self) -> Result<(), DbError> {
        db::interact(&self.pool, db::ping).await
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn catalog(&self) -> &PlanCatalog {
        &self.settings.catalog
    }

    /// A stored row as `GET …/billing` shows it.
    fn displayed(&self, record: TenantRecord) -> BillingState {
        BillingState::from_record(record, self.settings.billing.past_due_grace())
    }

    /// The tenant's billing state for display: a tenant without a row is on
    /// the free plan. Served from the per-instance cache when it can be (see
    /// `state_cache`); use `fresh_state` to decide anything.
    pub async fn state(&self, tenant: &TenantId) -> Result<Arc<BillingState>, DbError> {
        if let Some(state) = self.state_cache.get(tenant) {
            self.metrics.cache_lookup(true);
            return Ok(state);
        }
        self.metrics.cache_lookup(false);
        let ticket = self.state_cache.ticket();
        let state = Arc::new(match self.state_reader.read(&self.pool, tenant).await? {
            Some(record) => self.displayed(record),
            None => BillingState::free(tenant),
        });
        self.state_cache.fill(ticket, tenant, state.clone());
        Ok(state)
    }

    /// The tenant's billing state as the database has it now.
    pub async fn fresh_state(&self, tenant: &TenantId) -> Result<BillingState, DbError> {
        Ok(match self.read_row(tenant).await? {
            Some(record) => self.displayed(record),
            None => BillingState::free(tenant),
        })
    }

    /// `db::interact` for work that writes `tenant`'s row. Its cached state is
    /// dropped after the work, on the blocking thread, so a request cancelled
    /// mid-write cannot skip it.
    async fn interact_writing<T, F>(&self, tenant: &TenantId, mut work: F) -> Result<T, DbError>
    where
        F: FnMut(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (state, invoices) = (self.state_cache.clone(), self.invoice_cache.clone());
        let tenant = tenant.clone();
        db::interact(&self.pool, move |conn| {
            let result = work(conn);
            state.invalidate(&tenant);
            invoices.invalidate(&tenant);
            result
        })
        .await
    }

    /// Appends an audit entry outside any other transaction. Failing to audit
    /// is logged, not fatal: the Stripe side effect already happened.
    async fn audit(
        &self,
        tenant: &TenantId,
        actor: &Actor<'_>,
        action: &'static str,
        outcome: &'static str,
        detail: Option<String>,
    ) {
        let tenant = tenant.clone();
        let actor_id = actor.user_id.to_owned();
        let request_id = actor.request_id.map(str::to_owned);
        let written = db::interact(&self.pool, move |conn| {
            Ok(audit::append(
                conn,
                &audit::AuditEntry {
                    tenant: &tenant,
                    actor: &actor_id,
                    request_id: request_id.as_deref(),
                    action,
                    outcome,
                    detail: detail.clone(),
                },
            )?)
        })
        .await;
        if let Err(error) = written {
            tracing::error!(error = %error, action, "could not write the audit log");
        }
    }
}
