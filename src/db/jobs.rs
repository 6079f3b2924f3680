//! `jobs`: a transactional outbox. Work that must reach Stripe eventually is
//! written here in the same transaction as the change that needs it, then
//! claimed and executed by workers in any number of service instances.
//!
//! A claim is a lease (`locked_until`, `locked_by`): a worker that dies (kill -9)
//! simply stops renewing it, and the job becomes claimable again when it lapses.
//! Every later write by a worker is fenced on `locked_by`, so a worker that lost
//! its lease cannot overwrite the outcome of the one that took over.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::jobs::{self, dsl as j};
use super::DbConnection;
use crate::domain::TenantId;

/// What a job does. Stored as text so that adding a kind needs no migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Ensure the tenant has its Stripe customer (`Billing::ensure_customer`).
    EnsureCustomer,
    /// Push the stored billing profile to the tenant's Stripe customer.
    SyncProfile,
    /// Send the tenant's recorded usage to Stripe's meters
    /// (`Billing::forward_usage`).
    ForwardUsage,
}

impl JobKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::EnsureCustomer => "ensure_customer",
            JobKind::SyncProfile => "sync_profile",
            JobKind::ForwardUsage => "forward_usage",
        }
    }

    /// Parses a stored name; `None` for a kind this binary does not know (a
    /// newer version wrote it), which workers then leave alone.
    pub fn parse(name: &str) -> Option<JobKind> {
        match name {
            "ensure_customer" => Some(JobKind::EnsureCustomer),
            "sync_profile" => Some(JobKind::SyncProfile),
            "forward_usage" => Some(JobKind::ForwardUsage),
            _ => None,
        }
    }
}

/// Job states, as stored.
pub mod state {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const DEAD: &str = "dead";
}

/// A `jobs` row as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = jobs)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub tenant_id: String,
    pub state: String,
    pub attempts: i32,
    pub run_again: bool,
    pub run_after: NaiveDateTime,
    pub queued_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What `enqueue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job row was written.
    Inserted,
    /// The same job was already queued: it will see the latest state when it runs.
    AlreadyQueued,
    /// The same job is running: it was flagged to run once more afterwards, so
    /// a change made while it ran is not lost.
    RunAgain,
}

/// Queues `kind` for `tenant` to run at `run_after`, unless the same job is
/// already queued or running (at most one active job per (kind, tenant)).
/// Call it inside the transaction that makes the job necessary.
pub fn enqueue(
    conn: &mut DbConnection,
    kind: JobKind,
    tenant: &TenantId,
    now: NaiveDateTime,
    run_after: NaiveDateTime,
) -> QueryResult<Enqueued> {
    // The loop closes a race: the running job may finish between our insert
    // (refused) and our flag update (matching nothing); then insert again.
    for _ in 0..3 {
        let values = (
            j::kind.eq(kind.as_str()),
            j::tenant_id.eq(tenant.as_str()),
            j::state.eq(state::QUEUED),
            j::run_after.eq(run_after),
            j::queued_at.eq(now),
            j::created_at.eq(now),
            j::updated_at.eq(now),
        );
        // `ON CONFLICT DO NOTHING` without a target covers the partial unique
        // index on both backends.
        let inserted = insert_or_ignore!(conn, j::jobs, values)?;
        if inserted == 1 {
            return Ok(Enqueued::Inserted);
        }
        let active = j::kind
            .eq(kind.as_str())
            .and(j::tenant_id.eq(tenant.as_str()));
        let flagged = diesel::update(j::jobs.filter(active.and(j::state.eq(state::RUNNING))))
            .set((j::run_again.eq(true), j::updated_at.eq(now)))
            .execute(conn)?;
        if flagged == 1 {
            return Ok(Enqueued::RunAgain);
        }
        let queued = j::jobs
            .filter(active.and(j::state.eq(state::QUEUED)))
            .select(j::id)
            .first::<i64>(conn)
            .optional()?;
        if queued.is_some() {
            return Ok(Enqueued::AlreadyQueued);
        }
    }
    Err(diesel::result::Error::RollbackTransaction)
}

/// True when `kind` is queued or running for `tenant`.
pub fn is_active(conn: &mut DbConnection, kind: JobKind, tenant: &TenantId) -> QueryResult<bool> {
    let found = j::jobs
        .filter(
            j::kind
                .eq(kind.as_str())
                .and(j::tenant_id.eq(tenant.as_str()))
                .and(j::state.eq_any([state::QUEUED, state::RUNNING])),
        )
        .select(j::id)
        .first::<i64>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Claims up to `limit` due jobs for `worker` until `lease_until`: queued jobs
/// whose `run_after` has come, and running jobs whose lease lapsed (their
/// worker died). Each claim counts as an attempt.
///
/// PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent claimers in
/// any instance take disjoint rows without waiting on each other. SQLite:
/// `BEGIN IMMEDIATE` serialises claimers on the write lock.
pub fn claim(
    conn: &mut DbConnection,
    worker: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<JobRecord>> {
    macro_rules! due {
        () => {
            j::state
                .eq(state::QUEUED)
                .and(j::run_after.le(now))
                .or(j::state
                    .eq(state::RUNNING)
                    .and(j::locked_until.lt(now).assume_not_null()))
        };
    }
    macro_rules! lease {
        ($c:ident, $ids:expr) => {
            diesel::update(j::jobs.filter(j::id.eq_any($ids)))
                .set((
                    j::state.eq(state::RUNNING),
                    j::locked_until.eq(lease_until),
                    j::locked_by.eq(worker),
                    j::attempts.eq(j::attempts + 1),
                    j::updated_at.eq(now),
                ))
                .returning(JobRecord::as_returning())
                .get_results($c)
        };
    }
    match conn {
        DbConnection::Postgresql(c) => c.transaction(|c| {
            let ids: Vec<i64> = j::jobs
                .filter(due!())
                .order((j::run_after.asc(), j::id.asc()))
                .limit(limit)
                .select(j::id)
                .for_update()
                .skip_locked()
                .load(c)?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            lease!(c, &ids)
        }),
        DbConnection::Sqlite(c) => c.immediate_transaction(|c| {
            let ids: Vec<i64> = j::jobs
                .filter(due!())
                .order((j::run_after.asc(), j::id.asc()))
                .limit(limit)
                .select(j::id)
                .load(c)?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            lease!(c, &ids)
        }),
    }
}

/// Extends the lease of a job this worker still holds; false if it lost it.
pub fn heartbeat(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    lease_until: NaiveDateTime,
) -> QueryResult<bool> {
    let renewed = diesel::update(j::jobs.filter(held(id, worker)))
        .set(j::locked_until.eq(lease_until))
        .execute(conn)?;
    Ok(renewed == 1)
}

/// "Job `id`, running, leased by `worker`": the fence on every worker write.
type Held<'a> = diesel::dsl::And<
    diesel::dsl::And<diesel::dsl::Eq<j::id, i64>, diesel::dsl::Eq<j::locked_by, &'a str>>,
    diesel::dsl::Eq<j::state, &'static str>,
>;

fn held(id: i64, worker: &str) -> Held<'_> {
    j::id
        .eq(id)
        .and(j::locked_by.eq(worker))
        .and(j::state.eq(state::RUNNING))
}

/// Whether `worker` still holds job `id` (the fence other tables' writes
/// check inside their own transaction).
pub fn is_held(conn: &mut DbConnection, id: i64, worker: &str) -> QueryResult<bool> {
    Ok(j::jobs
        .filter(held(id, worker))
        .select(j::id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

/// Queues a held job to run again at `run_after`: not a failure (no attempt
/// counted, a fresh retry horizon), the job has more to do later (a paced
/// sender waiting for its next turn). A request to run again made meanwhile
/// is folded in: the next run sees everything. False if the lease was lost.
pub fn defer(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    now: NaiveDateTime,
    run_after: NaiveDateTime,
) -> QueryResult<bool> {
    let written = diesel::update(j::jobs.filter(held(id, worker)))
        .set((
            j::state.eq(state::QUEUED),
            j::run_again.eq(false),
            j::run_after.eq(run_after),
            j::queued_at.eq(now),
            j::attempts.eq(0),
            j::locked_until.eq(None::<NaiveDateTime>),
            j::last_error.eq(None::<String>),
            j::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(written == 1)
}

/// How finishing a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Done for good.
    Succeeded,
    /// Asked for again while it ran: queued to run once more, now.
    Requeued,
    /// This worker no longer held the job (its lease lapsed and another took
    /// over): nothing written.
    LeaseLost,
}

/// Marks a held job done (or queues it once more if it was asked for again
/// while it ran). Each statement re-checks its predicate under the row lock, so
/// a concurrent `enqueue` flag is never lost between them.
pub fn complete(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    now: NaiveDateTime,
) -> QueryResult<Finished> {
    for _ in 0..3 {
        let requeued = diesel::update(j::jobs.filter(held(id, worker).and(j::run_again.eq(true))))
            .set((
                j::state.eq(state::QUEUED),
                j::run_again.eq(false),
                j::run_after.eq(now),
                j::queued_at.eq(now),
                j::locked_until.eq(None::<NaiveDateTime>),
                j::last_error.eq(None::<String>),
                j::updated_at.eq(now),
            ))
            .execute(conn)?;
        if requeued == 1 {
            return Ok(Finished::Requeued);
        }
        let done = diesel::update(j::jobs.filter(held(id, worker).and(j::run_again.eq(false))))
            .set((
                j::state.eq(state::SUCCEEDED),
                j::locked_until.eq(None::<NaiveDateTime>),
                j::last_error.eq(None::<String>),
                j::updated_at.eq(now),
            ))
            .execute(conn)?;
        if done == 1 {
            return Ok(Finished::Succeeded);
        }
        let still_held = j::jobs
            .filter(held(id, worker))
            .select(j::id)
            .first::<i64>(conn)
            .optional()?;
        if still_held.is_none() {
            return Ok(Finished::LeaseLost);
        }
    }
    Ok(Finished::LeaseLost)
}

/// Records a failed attempt: queued again at `retry_at`, or parked as dead
/// (`retry_at = None`) with its last error. False if the lease was lost.
pub fn fail(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    now: NaiveDateTime,
    retry_at: Option<NaiveDateTime>,
    error: &str,
) -> QueryResult<bool> {
    let (next_state, run_after) = match retry_at {
        Some(at) => (state::QUEUED, at),
        None => (state::DEAD, now),
    };
    let written = diesel::update(j::jobs.filter(held(id, worker)))
        .set((
            j::state.eq(next_state),
            j::run_again.eq(false),
            j::run_after.eq(run_after),
            j::locked_until.eq(None::<NaiveDateTime>),
            j::last_error.eq(error),
            j::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(written == 1)
}

/// Queues dead jobs again with a fresh retry horizon: one by id, or all of
/// them. A dead job whose (kind, tenant) already has an active job is left
/// dead (that job does the work). Returns the ids re-driven.
pub fn redrive(
    conn: &mut DbConnection,
    id: Option<i64>,
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    write_transaction!(conn, |c| {
        let mut query = j::jobs.filter(j::state.eq(state::DEAD)).into_boxed();
        if let Some(id) = id {
            query = query.filter(j::id.eq(id));
        }
        let dead: Vec<(i64, String, String)> = query
            .order(j::id.asc())
            .select((j::id, j::kind, j::tenant_id))
            .load(c)?;
        let mut redriven = Vec::new();
        for (job_id, kind, tenant_id) in dead {
            let active: i64 = j::jobs
                .filter(
                    j::kind
                        .eq(&kind)
                        .and(j::tenant_id.eq(&tenant_id))
                        .and(j::state.eq_any([state::QUEUED, state::RUNNING])),
                )
                .count()
                .get_result(c)?;
            if active > 0 {
                continue;
            }
            diesel::update(j::jobs.filter(j::id.eq(job_id)))
                .set((
                    j::state.eq(state::QUEUED),
                    j::attempts.eq(0),
                    j::run_after.eq(now),
                    j::queued_at.eq(now),
                    j::locked_until.eq(None::<NaiveDateTime>),
                    j::updated_at.eq(now),
                ))
                .execute(c)?;
            redriven.push(job_id);
        }
        Ok(redriven)
    })
}

/// Puts back every job the workers of `instance` still hold (their names are
/// `{instance}/w{n}`), once those workers are stopped: queued again, due now,
/// the interrupted attempt not counted, so another instance runs them at once
/// instead of waiting for the lease to lapse. Returns how many.
pub fn release_held_by(
    conn: &mut DbConnection,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    requeue_held_by(conn, instance, now, 1)
}

/// Puts back every job the workers of a dead `instance` held (its
/// heartbeat stopped, `db::presence`): queued again, due now, so another
/// worker runs them without waiting for the lease to lapse. Unlike a clean
/// stop, the interrupted attempt counts (a job that crashes its worker
/// still reaches its retry horizon). Returns how many.
pub fn requeue_held_by_dead(
    conn: &mut DbConnection,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    requeue_held_by(conn, instance, now, 0)
}

/// Queues again, due now, the running jobs of `instance`'s workers,
/// giving back `refunded` attempts (1: the interrupted one does not count).
fn requeue_held_by(
    conn: &mut DbConnection,
    instance: &str,
    now: NaiveDateTime,
    refunded: i32,
) -> QueryResult<usize> {
    diesel::update(
        j::jobs.filter(
            j::state
                .eq(state::RUNNING)
                .and(j::locked_by.like(format!("{instance}/%"))),
        ),
    )
    .set((
        j::state.eq(state::QUEUED),
        j::locked_until.eq(None::<NaiveDateTime>),
        j::locked_by.eq(None::<String>),
        j::run_after.eq(now),
        j::attempts.eq(j::attempts - refunded),
        j::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Deletes up to `limit` jobs that succeeded before `cutoff`, oldest first;
/// returns how many. Small batches keep each transaction (and, on SQLite,
/// the write lock) short.
pub fn delete_finished_before(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    delete_oldest!(
        conn,
        j::jobs,
        j::id => i64,
        j::state.eq(state::SUCCEEDED).and(j::updated_at.lt(cutoff)),
        j::updated_at.asc(),
        limit
    )
}

/// Jobs for operators and tests, newest first, optionally in one state.
pub fn list(
    conn: &mut DbConnection,
    in_state: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<JobRecord>> {
    let mut query = j::jobs.into_boxed();
    if let Some(wanted) = in_state {
        query = query.filter(j::state.eq(wanted.to_owned()));
    }
    query
        .order(j::id.desc())
        .limit(limit)
        .select(JobRecord::as_select())
        .load(conn)
}

/// How many jobs are in each state (the `jobs{state}` gauge); states with
/// no job are absent.
pub fn count_by_state(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    j::jobs
        .group_by(j::state)
        .select((j::state, diesel::dsl::count_star()))
        .load(conn)
}
