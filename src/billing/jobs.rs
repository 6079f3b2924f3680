//! Outbox workers: they execute the jobs that `update_profile` writes in the
//! same transaction as the tenant row, so signup never waits for Stripe and no
//! provisioning is lost to a crash.
//!
//! Each worker claims one due job at a time (`db::jobs::claim`: PostgreSQL
//! `FOR UPDATE SKIP LOCKED`, SQLite `BEGIN IMMEDIATE`), renews its lease while
//! the job runs, then completes it or schedules a retry with exponential
//! backoff and jitter; past the retry horizon the job is parked as dead with
//! its last error (`tenant-billing jobs redrive`). A job is executed through
//! the existing exactly-once paths (`ensure_customer`, the profile push), so
//! running it again after a lapsed lease never duplicates anything at Stripe.
//! No transaction or pooled connection is held while Stripe is called.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use rand::Rng;
use tokio::sync::{watch, Notify};

use super::{Actor, Billing, BillingError, CustomerHints, ProfileSync};
use crate::db::jobs::{self as repo, Enqueued, Finished, JobKind, JobRecord};
use crate::db::{self, DbError};
use crate::domain::TenantId;
use crate::stripe::{Priority, StripeFailure};

/// Per-process counters, logged as structured fields (`jobs_queued`,
/// `jobs_succeeded`, `jobs_retried`, `jobs_dead`) on every change so that a log
/// pipeline can turn them into metrics without a metrics dependency.
#[derive(Debug, Default)]
pub struct JobCounters {
    pub queued: AtomicU64,
    pub succeeded: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
}

impl JobCounters {
    fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// What the workers of one instance share with the code that enqueues: the
/// counters and a wake-up, so a job queued here starts at once instead of
/// after the next poll.
#[derive(Debug, Default)]
pub struct JobHub {
    pub counters: JobCounters,
    wake: Notify,
}

impl JobHub {
    /// Every idle worker looks for due jobs now (jobs of a dead process
    /// were queued again).
    pub(crate) fn wake_all(&self) {
        self.wake.notify_waiters();
    }
}

/// How one execution of a job ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobDone {
    /// Nothing left to do.
    Finished,
    /// More to do from this moment on (a paced sender's next turn).
    Defer(NaiveDateTime),
}

/// Why one execution of a job failed.
#[derive(Debug)]
pub(super) enum JobError {
    /// Worth retrying later (Stripe down, database busy, work still changing).
    Transient(String),
    /// Retrying cannot help (Stripe rejected the request): park it as dead.
    Permanent(String),
}

impl From<BillingError> for JobError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Stripe(failure @ StripeFailure::Rejected { .. }) => {
                JobError::Permanent(failure.to_string())
            }
            other => JobError::Transient(other.to_string()),
        }
    }
}

impl From<DbError> for JobError {
    fn from(error: DbError) -> Self {
        JobError::Transient(error.to_string())
    }
}

/// The running workers of one instance, stopped with the server.
pub struct JobWorkers {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl JobWorkers {
    /// Workers claim nothing more; the jobs they run go on.
    pub fn stop_claiming(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops claiming, lets running jobs finish until `deadline`, then drops
    /// them and waits until they are gone (their leases are then given back
    /// by `Billing::release_held_leases`).
    pub async fn finish(self, deadline: tokio::time::Instant) {
        self.stop_claiming();
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                // Resolves once the task (and its job) is dropped.
                let _ = task.await;
            }
        }
    }
}

impl Billing {
    /// After the transaction that enqueued committed: count, log, wake a worker.
    pub(crate) fn job_enqueued(&self, kind: JobKind, tenant: &TenantId, how: Enqueued) {
        self.job_enqueued_quietly(kind, tenant, how);
        self.jobs.wake.notify_one();
    }

    /// Counts and logs an enqueue without waking a worker.
    pub(crate) fn job_enqueued_quietly(&self, kind: JobKind, tenant: &TenantId, how: Enqueued) {
        if how == Enqueued::Inserted {
            let queued = JobCounters::bump(&self.jobs.counters.queued);
            tracing::info!(
                jobs_queued = queued,
                job_kind = kind.as_str(),
                tenant_id = %tenant,
                "job queued"
            );
        }
    }

    /// Starts `jobs.workers` workers on the current (actix) runtime.
    pub fn start_workers(&self) -> JobWorkers {
        let (stop, stopped) = watch::channel(false);
        let instance = self.instance.clone();
        let tasks = (0..self.settings.jobs.workers.max(1))
            .map(|n| {
                let billing = self.clone();
                let name = format!("{instance}/w{n}");
                let stopped = stopped.clone();
                // One worker per instance also applies retention when idle.
                let sweeps = n == 0;
                // Nobody waits on a job: its Stripe calls yield to interactive ones.
                tokio::task::spawn_local(
                    Priority::Background
                        .scope(async move { billing.work(name, sweeps, stopped).await }),
                )
            })
            .collect();
        tracing::info!(
            workers = self.settings.jobs.workers.max(1),
            instance = %instance,
            "job workers started"
        );
        JobWorkers { stop, tasks }
    }

    async fn work(self, name: String, sweeps: bool, mut stopped: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.settings.jobs.poll_interval_ms.max(10));
        let sweep_every = Duration::from_secs(self.settings.jobs.retention_interval_seconds.max(1));
        let mut swept_at: Option<tokio::time::Instant> = None;
        loop {
            if *stopped.borrow() {
                break;
            }
            match self.claim_one(&name).await {
                Ok(Some(job)) => {
                    self.execute(job, &name).await;
                    continue;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(error = %error, "could not claim jobs"),
            }
            if sweeps && swept_at.is_none_or(|at| at.elapsed() >= sweep_every) {
                swept_at = Some(tokio::time::Instant::now());
                if let Err(error) = self.apply_retention().await {
                    tracing::warn!(error = %error, "retention pass failed; the next one retries");
                }
            }
            // Jitter keeps idle workers of many instances from polling in step.
            let jitter = rand::thread_rng().gen_range(0..=poll.as_millis() as u64 / 4);
            tokio::select! {
                _ = self.jobs.wake.notified() => {}
                _ = tokio::time::sleep(poll + Duration::from_millis(jitter)) => {}
                changed = stopped.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.settings.jobs.lease_seconds.max(1))
    }

    async fn claim_one(&self, worker: &str) -> Result<Option<JobRecord>, DbError> {
        let worker = worker.to_owned();
        let lease = chrono::Duration::from_std(self.lease()).unwrap_or_default();
        let mut claimed = db::interact(&self.pool, move |conn| {
            let now = Utc::now().naive_utc();
            Ok(repo::claim(conn, &worker, now, now + lease, 1)?)
        })
        .await?;
        Ok(claimed.pop())
    }

    /// Runs one claimed job, renewing its lease meanwhile, and records the outcome.
    async fn execute(&self, job: JobRecord, worker: &str) {
        let work = self.run_job(&job, worker);
        tokio::pin!(work);
        let mut beat = tokio::time::interval(self.lease() / 3);
        beat.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut work => break result,
                _ = beat.tick() => self.renew(&job, worker).await,
            }
        };
        let recorded = match result {
            Ok(JobDone::Finished) => self.finish(&job, worker).await,
            Ok(JobDone::Defer(at)) => self.deferred(&job, worker, at).await,
            Err(error) => self.failed(&job, worker, error).await,
        };
        if let Err(error) = recorded {
            // The lease lapses and the job runs again (safely: exactly-once paths).
            tracing::warn!(job_id = job.id, error = %error, "could not record a job outcome");
        }
    }

    async fn renew(&self, job: &JobRecord, worker: &str) {
        let (id, worker) = (job.id, worker.to_owned());
        let lease = chrono::Duration::from_std(self.lease()).unwrap_or_default();
        let renewed = db::interact(&self.pool, move |conn| {
            Ok(repo::heartbeat(
                conn,
                id,
                &worker,
                Utc::now().naive_utc() + lease,
            )?)
        })
        .await;
        if !matches!(renewed, Ok(true)) {
            tracing::warn!(job_id = id, "lost the lease of a running job");
        }
    }

    async fn run_job(&self, job: &JobRecord, worker: &str) -> Result<JobDone, JobError> {
        let tenant = TenantId::parse(&job.tenant_id)
            .map_err(|_| JobError::Permanent(format!("invalid tenant id {:?}", job.tenant_id)))?;
        if JobKind::parse(&job.kind) == Some(JobKind::ForwardUsage) {
            return self.forward_usage(job, worker, &tenant).await;
        }
        self.run_provisioning(job, &tenant)
            .await
            .map(|()| JobDone::Finished)
    }

    async fn run_provisioning(&self, job: &JobRecord, tenant: &TenantId) -> Result<(), JobError> {
        let tenant = tenant.clone();
        match JobKind::parse(&job.kind) {
            Some(JobKind::EnsureCustomer) => {
                self.ensure_customer(&tenant, &CustomerHints::default(), &Actor::SYSTEM)
                    .await?;
                // A profile change made while the customer was being created.
                match self.push_stored_profile(&tenant, &Actor::SYSTEM).await? {
                    ProfileSync::Pending => Err(JobError::Transient(
                        "the profile changed while it was being pushed".into(),
                    )),
                    _ => Ok(()),
                }
            }
            Some(JobKind::SyncProfile) => {
                match self.push_stored_profile(&tenant, &Actor::SYSTEM).await? {
                    ProfileSync::Pending => Err(JobError::Transient(
                        "the profile changed while it was being pushed".into(),
                    )),
                    _ => Ok(()),
                }
            }
            Some(JobKind::ForwardUsage) | None => Err(JobError::Transient(format!(
                "unknown job kind {:?} (written by a newer version?)",
                job.kind
            ))),
        }
    }

    /// Queues a job that has more to do at `at` (no failure counted).
    async fn deferred(
        &self,
        job: &JobRecord,
        worker: &str,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        let (id, worker_name) = (job.id, worker.to_owned());
        let written = db::interact(&self.pool, move |conn| {
            Ok(repo::defer(
                conn,
                id,
                &worker_name,
                Utc::now().naive_utc(),
                at,
            )?)
        })
        .await?;
        let outcome = if written { "deferred" } else { "lease_lost" };
        self.metrics.job_processed(kind_label(&job.kind), outcome);
        Ok(())
    }

    async fn finish(&self, job: &JobRecord, worker: &str) -> Result<(), DbError> {
        let (id, worker_name) = (job.id, worker.to_owned());
        let finished = db::interact(&self.pool, move |conn| {
            Ok(repo::complete(
                conn,
                id,
                &worker_name,
                Utc::now().naive_utc(),
            )?)
        })
        .await?;
        match finished {
            Finished::Succeeded => {
                self.metrics
                    .job_processed(kind_label(&job.kind), "succeeded");
                let succeeded = JobCounters::bump(&self.jobs.counters.succeeded);
                tracing::info!(
                    jobs_succeeded = succeeded,
                    job_id = job.id,
                    job_kind = %job.kind,
                    tenant_id = %job.tenant_id,
                    attempts = job.attempts,
                    "job succeeded"
                );
            }
            Finished::Requeued => {
                self.metrics
                    .job_processed(kind_label(&job.kind), "requeued");
                self.jobs.wake.notify_one();
                tracing::info!(job_id = job.id, job_kind = %job.kind, tenant_id = %job.tenant_id, "job asked for again while running: queued once more");
            }
            Finished::LeaseLost => {
                self.metrics
                    .job_processed(kind_label(&job.kind), "lease_lost");
                tracing::warn!(
                    job_id = job.id,
                    "job finished after its lease was taken over"
                );
            }
        }
        Ok(())
    }

    async fn failed(&self, job: &JobRecord, worker: &str, error: JobError) -> Result<(), DbError> {
        let now = Utc::now().naive_utc();
        let (retry_at, message) = match error {
            JobError::Transient(message) => (self.next_attempt_at(job, now), message),
            JobError::Permanent(message) => (None, message),
        };
        let (id, worker_name, stored) = (job.id, worker.to_owned(), message.clone());
        let written = db::interact(&self.pool, move |conn| {
            Ok(repo::fail(conn, id, &worker_name, now, retry_at, &stored)?)
        })
        .await?;
        if !written {
            self.metrics
                .job_processed(kind_label(&job.kind), "lease_lost");
            tracing::warn!(job_id = job.id, "job failed after its lease was taken over");
            return Ok(());
        }
        match retry_at {
            Some(at) => {
                self.metrics.job_processed(kind_label(&job.kind), "retried");
                let retried = JobCounters::bump(&self.jobs.counters.retried);
                tracing::warn!(
                    jobs_retried = retried,
                    job_id = job.id,
                    job_kind = %job.kind,
                    tenant_id = %job.tenant_id,
                    attempts = job.attempts,
                    retry_in_ms = (at - now).num_milliseconds(),
                    error = %message,
                    "job failed; will retry"
                );
            }
            None => {
                self.metrics.job_processed(kind_label(&job.kind), "dead");
                let dead = JobCounters::bump(&self.jobs.counters.dead);
                tracing::error!(
                    jobs_dead = dead,
                    job_id = job.id,
                    job_kind = %job.kind,
                    tenant_id = %job.tenant_id,
                    attempts = job.attempts,
                    error = %message,
                    "job is dead; re-drive it with `tenant-billing jobs redrive --id {}`",
                    job.id
                );
            }
        }
        Ok(())
    }

    /// Exponential backoff from `retry_base_ms`, capped at `retry_max_ms`, with
    /// jitter in [half, full] so retries of many jobs spread out; `None` once
    /// the next attempt would fall past the retry horizon.
    fn next_attempt_at(&self, job: &JobRecord, now: NaiveDateTime) -> Option<NaiveDateTime> {
        let jobs = &self.settings.jobs;
        let exponent = u32::try_from(job.attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let ceiling = jobs
            .retry_base_ms
            .max(1)
            .saturating_mul(1u64 << exponent)
            .min(jobs.retry_max_ms.max(1));
        let delay = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
        let at = now + chrono::Duration::milliseconds(i64::try_from(delay).unwrap_or(i64::MAX));
        let horizon = job.queued_at
            + chrono::Duration::seconds(i64::try_from(jobs.retry_horizon_seconds).unwrap_or(0));
        (at <= horizon).then_some(at)
    }
}

/// A stored kind as a metric label: one of ours, or `unknown` (a newer
/// version's), so a stored string never becomes a label as such.
fn kind_label(kind: &str) -> &'static str {
    JobKind::parse(kind).map_or("unknown", JobKind::as_str)
}
