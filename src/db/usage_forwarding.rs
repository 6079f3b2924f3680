//! Forwarding the usage ledger to Stripe (`usage_forwarding`, `usage_batches`).
//!
//! A tenant's events of a Stripe-billed meter are *cut*, in ledger id order,
//! into batches: runs of events of one period, each to become one Stripe meter
//! event whose identifier names its ledger range. A batch is written before
//! it is sent, so every attempt at it sends the same identifier, and the cut
//! advances `batched_through` in the same transaction, so each ledger event
//! belongs to exactly one batch. A batch never sent (no attempt recorded) may
//! still grow with the next events of its period; once an attempt is recorded
//! it is fixed.
//!
//! Ledger ids are handed out before the recording transaction commits, so on
//! PostgreSQL a reader could see id 101 committed while 100 is still in
//! flight, cut past 100 and never batch it. Recording transactions therefore
//! hold a shared advisory lock on the tenant from their first statement, and
//! the cut takes it exclusively: it waits until every recording that holds an
//! id has committed (or rolled back), and none starts meanwhile. SQLite runs
//! one writer at a time, so ids commit in order there.
//!
//! Every write a forwarder makes is fenced on its job lease (`jobs`): a
//! worker that lost its lease changes nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamp};

use super::schema::{usage_batches, usage_counters, usage_events, usage_forwarding};
use super::DbConnection;
use crate::domain::forwarding::{batch_identifier, stamp};
use crate::domain::{TenantId, UsagePeriod};

/// Batch states, as stored.
pub mod state {
    /// Written, not yet accepted by Stripe.
    pub const PENDING: &str = "pending";
    /// Stripe counted it.
    pub const SENT: &str = "sent";
    /// Its timestamp fell out of Stripe's 35-day window before Stripe took it.
    pub const EXPIRED: &str = "expired";
    /// Stripe refused it for good (no such meter or customer).
    pub const REJECTED: &str = "rejected";
    /// Its fate stayed unknown past Stripe's 24-hour identifier window: not
    /// sent again; `reconcile --usage` decides from the totals.
    pub const UNKNOWN: &str = "unknown";
    /// An unknown batch that `reconcile --usage` found missing and replaced
    /// with a fix.
    pub const SUPERSEDED: &str = "superseded";
}

/// Batch kinds, as stored.
pub mod kind {
    /// A range of the ledger.
    pub const FORWARD: &str = "forward";
    /// A correction sent by `reconcile --usage --fix`.
    pub const FIX: &str = "fix";
}

/// A `usage_batches` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = usage_batches)]
pub struct BatchRecord {
    pub id: i64,
    pub tenant_id: String,
    pub meter: String,
    pub kind: String,
    pub first_event_id: Option<i64>,
    pub last_event_id: Option<i64>,
    pub period_start: NaiveDateTime,
    pub period_end: NaiveDateTime,
    pub value: i64,
    pub events: i64,
    pub occurred_at: NaiveDateTime,
    pub oldest_recorded_at: NaiveDateTime,
    pub identifier: String,
    pub state: String,
    pub attempts: i32,
    pub first_attempt_at: Option<NaiveDateTime>,
    pub sent_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl BatchRecord {
    pub fn period(&self) -> UsagePeriod {
        UsagePeriod {
            start: self.period_start,
            end: self.period_end,
        }
    }
}

/// A tenant's forwarding of one meter: its pacing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub last_attempt_at: Option<NaiveDateTime>,
    /// Stripe's 429s in a row.
    pub throttled: i32,
}

/// The advisory lock on a tenant's usage (PostgreSQL; SQLite serialises
/// writers anyway): recording shares it, cutting takes it alone.
pub trait UsageLock {
    fn lock_usage(&mut self, tenant: &str, exclusive: bool) -> QueryResult<()>;
}

/// The advisory lock class of usage (the tenant id's hash is the key).
const LOCK_CLASS: i32 = 2020;

impl UsageLock for diesel::PgConnection {
    fn lock_usage(&mut self, tenant: &str, exclusive: bool) -> QueryResult<()> {
        let sql = if exclusive {
            "SELECT pg_advisory_xact_lock($1, hashtext($2))"
        } else {
            "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))"
        };
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::Integer, _>(LOCK_CLASS)
            .bind::<Text, _>(tenant)
            .execute(self)?;
        Ok(())
    }
}

impl UsageLock for diesel::SqliteConnection {
    fn lock_usage(&mut self, _tenant: &str, _exclusive: bool) -> QueryResult<()> {
        Ok(())
    }
}

/// "Job `$id` is running, leased by `$worker`", checked on a concrete
/// connection inside a transaction (the fence on every forwarder write).
macro_rules! job_held {
    ($c:ident, $id:expr, $worker:expr) => {{
        use $crate::db::schema::jobs::dsl as j;
        j::jobs
            .filter(
                j::id
                    .eq($id)
                    .and(j::locked_by.eq($worker))
                    .and(j::state.eq($crate::db::jobs::state::RUNNING)),
            )
            .select(j::id)
            .first::<i64>($c)
            .optional()
            .map(|found| found.is_some())
    }};
}

/// Inside a recording transaction (`$c` a concrete connection): makes sure
/// each of `$meters` has its forwarding row, and queues the tenant's
/// `forward_usage` job, or flags the running one to run again (as
/// `jobs::enqueue` does). In the same transaction as the events, so a
/// recorded event is never left without a forwarder coming for it.
macro_rules! note_recorded {
    ($c:ident, $tenant:expr, $meters:expr, $now:expr) => {{
        use $crate::db::jobs::{state as job_state, JobKind};
        use $crate::db::schema::jobs::dsl as j;
        use $crate::db::schema::usage_forwarding::dsl as f;
        let tenant: &str = $tenant;
        let now: chrono::NaiveDateTime = $now;
        let mut result: diesel::QueryResult<()> = Ok(());
        for meter in $meters {
            let meter: &str = meter;
            if let Err(error) = diesel::insert_into(f::usage_forwarding)
                .values((
                    f::tenant_id.eq(tenant),
                    f::meter.eq(meter),
                    f::batched_through.eq(0_i64),
                    f::throttled.eq(0),
                    f::updated_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute($c)
            {
                result = Err(error);
                break;
            }
        }
        if result.is_ok() {
            let kind = JobKind::ForwardUsage.as_str();
            let mut noted = false;
            for _ in 0..3 {
                let inserted = diesel::insert_into(j::jobs)
                    .values((
                        j::kind.eq(kind),
                        j::tenant_id.eq(tenant),
                        j::state.eq(job_state::QUEUED),
                        j::run_after.eq(now),
                        j::queued_at.eq(now),
                        j::created_at.eq(now),
                        j::updated_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute($c);
                let active = j::kind.eq(kind).and(j::tenant_id.eq(tenant));
                let step = inserted.and_then(|inserted| {
                    if inserted == 1 {
                        return Ok(true);
                    }
                    let flagged =
                        diesel::update(j::jobs.filter(active.and(j::state.eq(job_state::RUNNING))))
                            .set((j::run_again.eq(true), j::updated_at.eq(now)))
                            .execute($c)?;
                    if flagged == 1 {
                        return Ok(true);
                    }
                    Ok(j::jobs
                        .filter(active.and(j::state.eq(job_state::QUEUED)))
                        .select(j::id)
                        .first::<i64>($c)
                        .optional()?
                        .is_some())
                });
                match step {
                    Ok(true) => {
                        noted = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        result = Err(error);
                        break;
                    }
                }
            }
            if result.is_ok() && !noted {
                result = Err(diesel::result::Error::RollbackTransaction);
            }
        }
        result
    }};
}
pub(crate) use note_recorded;

/// What one cut did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Ledger events put into batches.
    pub events: usize,
    /// More events were waiting than one cut takes.
    pub more: bool,
}

/// One event as the cut reads it.
type EventRow = (i64, i64, NaiveDateTime, NaiveDateTime, NaiveDateTime);

/// Cuts up to `max_events` of `tenant`'s unbatched `meter` events into
/// batches (see the module docs), for the forwarder holding job `job` as
/// `worker`. `None`: the lease was lost, nothing written.
pub fn cut(
    conn: &mut DbConnection,
    tenant: &TenantId,
    meter: &str,
    now: NaiveDateTime,
    max_events: i64,
    job: (i64, &str),
) -> QueryResult<Option<Cut>> {
    macro_rules! body {
        ($c:ident) => {{
            use usage_batches::dsl as b;
            use usage_counters::dsl as k;
            use usage_events::dsl as e;
            use usage_forwarding::dsl as f;
            $c.lock_usage(tenant.as_str(), true)?;
            if !job_held!($c, job.0, job.1)? {
                return Ok(None);
            }
            diesel::insert_into(f::usage_forwarding)
                .values((
                    f::tenant_id.eq(tenant.as_str()),
                    f::meter.eq(meter),
                    f::batched_through.eq(0_i64),
                    f::throttled.eq(0),
                    f::updated_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute($c)?;
            let through: i64 = f::usage_forwarding
                .find((tenant.as_str(), meter))
                .select(f::batched_through)
                .first($c)?;
            let events: Vec<EventRow> = e::usage_events
                .filter(e::tenant_id.eq(tenant.as_str()))
                .filter(e::meter.eq(meter))
                .filter(e::id.gt(through))
                .order(e::id.asc())
                .limit(max_events)
                .select((
                    e::id,
                    e::value,
                    e::occurred_at,
                    e::period_start,
                    e::recorded_at,
                ))
                .load($c)?;
            let Some(&(last_id, ..)) = events.last() else {
                return Ok(Some(Cut {
                    events: 0,
                    more: false,
                }));
            };
            // The last batch, if never tried and ending where the cut stands.
            let mut open: Option<BatchRecord> = b::usage_batches
                .filter(b::tenant_id.eq(tenant.as_str()))
                .filter(b::meter.eq(meter))
                .filter(b::kind.eq(kind::FORWARD))
                .filter(b::state.eq(state::PENDING))
                .filter(b::attempts.eq(0))
                .filter(b::last_event_id.eq(through))
                .order(b::id.desc())
                .select(BatchRecord::as_select())
                .first($c)
                .optional()?;
            let mut rest: &[EventRow] = &events;
            while let Some(&(_, _, _, period_start, _)) = rest.first() {
                let run = rest
                    .iter()
                    .take_while(|event| event.3 == period_start)
                    .count();
                let (group, tail) = rest.split_at(run);
                rest = tail;
                let value: i64 = group.iter().map(|event| event.1).sum();
                let latest = group.iter().map(|event| event.2).max().expect("non-empty");
                let oldest = group.iter().map(|event| event.4).min().expect("non-empty");
                let (first_id, group_last) = (group[0].0, group[run - 1].0);
                let period_end: NaiveDateTime = k::usage_counters
                    .find((tenant.as_str(), meter, period_start))
                    .select(k::period_end)
                    .first($c)?;
                let period = UsagePeriod {
                    start: period_start,
                    end: period_end,
                };
                let stamped = stamp(&period, latest);
                match open
                    .take()
                    .filter(|batch| batch.period_start == period_start)
                {
                    Some(mut batch) => {
                        let first = batch.first_event_id.unwrap_or(first_id);
                        batch.last_event_id = Some(group_last);
                        batch.value += value;
                        batch.events += group.len() as i64;
                        batch.occurred_at = batch.occurred_at.max(stamped);
                        batch.oldest_recorded_at = batch.oldest_recorded_at.min(oldest);
                        batch.identifier =
                            batch_identifier(tenant.as_str(), meter, first, group_last);
                        diesel::update(b::usage_batches.find(batch.id))
                            .set((
                                b::last_event_id.eq(batch.last_event_id),
                                b::value.eq(batch.value),
                                b::events.eq(batch.events),
                                b::occurred_at.eq(batch.occurred_at),
                                b::oldest_recorded_at.eq(batch.oldest_recorded_at),
                                b::identifier.eq(&batch.identifier),
                                b::updated_at.eq(now),
                            ))
                            .execute($c)?;
                        open = Some(batch);
                    }
                    None => {
                        let batch: BatchRecord = diesel::insert_into(b::usage_batches)
                            .values((
                                b::tenant_id.eq(tenant.as_str()),
                                b::meter.eq(meter),
                                b::kind.eq(kind::FORWARD),
                                b::first_event_id.eq(Some(first_id)),
                                b::last_event_id.eq(Some(group_last)),
                                b::period_start.eq(period_start),
                                b::period_end.eq(period_end),
                                b::value.eq(value),
                                b::events.eq(group.len() as i64),
                                b::occurred_at.eq(stamped),
                                b::oldest_recorded_at.eq(oldest),
                                b::identifier.eq(batch_identifier(
                                    tenant.as_str(),
                                    meter,
                                    first_id,
                                    group_last,
                                )),
                                b::state.eq(state::PENDING),
                                b::attempts.eq(0),
                                b::created_at.eq(now),
                                b::updated_at.eq(now),
                            ))
                            .returning(BatchRecord::as_returning())
                            .get_result($c)?;
                        open = Some(batch);
                    }
                }
            }
            diesel::update(f::usage_forwarding.find((tenant.as_str(), meter)))
                .set((f::batched_through.eq(last_id), f::updated_at.eq(now)))
                .execute($c)?;
            Ok(Some(Cut {
                events: events.len(),
                more: events.len() as i64 >= max_events,
            }))
        }};
    }
    match conn {
        DbConnection::Postgresql(c) => c.transaction(|c| body!(c)),
        DbConnection::Sqlite(c) => c.immediate_transaction(|c| body!(c)),
    }
}

/// The oldest batch of `tenant`'s `meter` still to send, and the pacing.
pub fn next_to_send(
    conn: &mut DbConnection,
    tenant: &TenantId,
    meter: &str,
) -> QueryResult<(Option<BatchRecord>, Pacing)> {
    use usage_batches::dsl as b;
    use usage_forwarding::dsl as f;
    let batch = b::usage_batches
        .filter(b::tenant_id.eq(tenant.as_str()))
        .filter(b::meter.eq(meter))
        .filter(b::state.eq(state::PENDING))
        .order(b::id.asc())
        .select(BatchRecord::as_select())
        .first(conn)
        .optional()?;
    let pacing: Option<(Option<NaiveDateTime>, i32)> = f::usage_forwarding
        .find((tenant.as_str(), meter))
        .select((f::last_attempt_at, f::throttled))
        .first(conn)
        .optional()?;
    let (last_attempt_at, throttled) = pacing.unwrap_or((None, 0));
    Ok((
        batch,
        Pacing {
            last_attempt_at,
            throttled,
        },
    ))
}

/// Whether `tenant`'s `meter` has events not cut into batches yet.
pub fn has_unbatched(conn: &mut DbConnection, tenant: &TenantId, meter: &str) -> QueryResult<bool> {
    use usage_events::dsl as e;
    use usage_forwarding::dsl as f;
    let through: i64 = f::usage_forwarding
        .find((tenant.as_str(), meter))
        .select(f::batched_through)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    Ok(e::usage_events
        .filter(e::tenant_id.eq(tenant.as_str()))
        .filter(e::meter.eq(meter))
        .filter(e::id.gt(through))
        .select(e::id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

/// How an attempt at a batch ended, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Stripe counted it (now or before).
    Sent,
    /// Stripe answered 429: the batch stays, the tenant's meter slows down.
    Throttled,
    /// No answer or a transient error: the batch stays, to be sent again.
    Failed(String),
    /// It will not be sent again: `state::EXPIRED`, `REJECTED` or `UNKNOWN`.
    Closed(&'static str, String),
}

/// Records that an attempt at `batch` starts now (before it is sent: from
/// here on the batch no longer grows) and paces the tenant's meter from now.
/// False (and nothing written) when the lease was lost.
pub fn begin_attempt(
    conn: &mut DbConnection,
    batch: &BatchRecord,
    now: NaiveDateTime,
    job: (i64, &str),
) -> QueryResult<bool> {
    use usage_batches::dsl as b;
    use usage_forwarding::dsl as f;
    let first = batch.first_attempt_at.unwrap_or(now);
    write_transaction!(conn, |c| {
        if !job_held!(c, job.0, job.1)? {
            return Ok(false);
        }
        let updated = diesel::update(
            b::usage_batches.filter(b::id.eq(batch.id).and(b::state.eq(state::PENDING))),
        )
        .set((
            b::attempts.eq(b::attempts + 1),
            b::first_attempt_at.eq(Some(first)),
            b::updated_at.eq(now),
        ))
        .execute(c)?;
        diesel::update(f::usage_forwarding.find((batch.tenant_id.as_str(), batch.meter.as_str())))
            .set((f::last_attempt_at.eq(Some(now)), f::updated_at.eq(now)))
            .execute(c)?;
        Ok(updated == 1)
    })
}

/// Stores how an attempt at `batch` ended (see [`Settle`]); false when the
/// lease was lost (nothing written).
pub fn settle(
    conn: &mut DbConnection,
    batch: &BatchRecord,
    outcome: &Settle,
    now: NaiveDateTime,
    job: Option<(i64, &str)>,
) -> QueryResult<bool> {
    use usage_batches::dsl as b;
    use usage_forwarding::dsl as f;
    let cursor = (batch.tenant_id.as_str(), batch.meter.as_str());
    let pending = b::id.eq(batch.id).and(b::state.eq(state::PENDING));
    write_transaction!(conn, |c| {
        if let Some((id, worker)) = job {
            if !job_held!(c, id, worker)? {
                return Ok(false);
            }
        }
        match outcome {
            Settle::Sent => {
                diesel::update(b::usage_batches.filter(pending))
                    .set((
                        b::state.eq(state::SENT),
                        b::sent_at.eq(Some(now)),
                        b::last_error.eq(None::<String>),
                        b::updated_at.eq(now),
                    ))
                    .execute(c)?;
                diesel::update(f::usage_forwarding.find(cursor))
                    .set((f::throttled.eq(0), f::updated_at.eq(now)))
                    .execute(c)?;
            }
            Settle::Throttled => {
                diesel::update(b::usage_batches.filter(pending))
                    .set((
                        b::last_error.eq(Some("rate limited by Stripe (429)")),
                        b::updated_at.eq(now),
                    ))
                    .execute(c)?;
                diesel::update(f::usage_forwarding.find(cursor))
                    .set((f::throttled.eq(f::throttled + 1), f::updated_at.eq(now)))
                    .execute(c)?;
            }
            Settle::Failed(error) => {
                diesel::update(b::usage_batches.filter(pending))
                    .set((b::last_error.eq(Some(error)), b::updated_at.eq(now)))
                    .execute(c)?;
            }
            Settle::Closed(final_state, error) => {
                diesel::update(b::usage_batches.filter(pending))
                    .set((
                        b::state.eq(*final_state),
                        b::last_error.eq(Some(error)),
                        b::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
        }
        Ok(true)
    })
}

#[derive(QueryableByName)]
struct Oldest {
    #[diesel(sql_type = Nullable<Timestamp>)]
    oldest: Option<NaiveDateTime>,
}

/// When the oldest usage not yet accepted by Stripe was recorded, over every
/// tenant with a Stripe customer: pending batches, and events past each
/// tenant's cut. `None` when everything is forwarded.
pub fn oldest_unsent(conn: &mut DbConnection) -> QueryResult<Option<NaiveDateTime>> {
    let found: Oldest = diesel::sql_query(
        "SELECT MIN(x.at) AS oldest FROM (\
            SELECT MIN(b.oldest_recorded_at) AS at FROM usage_batches b WHERE b.state = 'pending' \
            UNION ALL \
            SELECT (SELECT MIN(e.recorded_at) FROM usage_events e \
                    WHERE e.tenant_id = f.tenant_id AND e.meter = f.meter \
                      AND e.id > f.batched_through) AS at \
            FROM usage_forwarding f JOIN tenant_config t ON t.tenant_id = f.tenant_id \
            WHERE t.stripe_customer_id IS NOT NULL\
        ) x",
    )
    .get_result(conn)?;
    Ok(found.oldest)
}

/// `tenant`'s batches of `meter`, oldest first (operators, tests).
pub fn batches(
    conn: &mut DbConnection,
    tenant: &TenantId,
    meter: &str,
) -> QueryResult<Vec<BatchRecord>> {
    use usage_batches::dsl as b;
    b::usage_batches
        .filter(b::tenant_id.eq(tenant.as_str()))
        .filter(b::meter.eq(meter))
        .order(b::id.asc())
        .select(BatchRecord::as_select())
        .load(conn)
}

/// A period of one tenant's meter as the ledger has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPeriod {
    pub tenant_id: String,
    pub meter: String,
    pub period: UsagePeriod,
    /// The ledger's total for the period.
    pub used: i64,
}

/// Every period total of `meters` ending after `since`, by tenant, meter and
/// period, for tenants with a Stripe customer.
pub fn ledger_periods(
    conn: &mut DbConnection,
    meters: &[String],
    since: NaiveDateTime,
) -> QueryResult<Vec<(LedgerPeriod, String)>> {
    use super::schema::tenant_config::dsl as t;
    use usage_counters::dsl as k;
    let rows: Vec<(
        String,
        String,
        NaiveDateTime,
        NaiveDateTime,
        i64,
        Option<String>,
    )> = k::usage_counters
        .inner_join(t::tenant_config.on(t::tenant_id.eq(k::tenant_id)))
        .filter(k::meter.eq_any(meters))
        .filter(k::period_end.gt(since))
        .filter(t::stripe_customer_id.is_not_null())
        .order((k::tenant_id.asc(), k::meter.asc(), k::period_start.asc()))
        .select((
            k::tenant_id,
            k::meter,
            k::period_start,
            k::period_end,
            k::used,
            t::stripe_customer_id,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(tenant_id, meter, start, end, used, customer)| {
            Some((
                LedgerPeriod {
                    tenant_id,
                    meter,
                    period: UsagePeriod { start, end },
                    used,
                },
                customer?,
            ))
        })
        .collect())
}

/// Where a period's usage stands between the ledger and Stripe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InFlight {
    /// Events not cut into a batch yet.
    pub unbatched: i64,
    /// Pending batches never tried: certainly not at Stripe.
    pub untried: i64,
    /// Pending batches tried: at Stripe or not, the next attempt will tell.
    pub tried: i64,
    /// Batches whose fate is unknown past the identifier window.
    pub unknown: i64,
    /// Batches Stripe will never take (expired, rejected).
    pub closed: i64,
}

/// What of `period` has not reached Stripe, or may not have.
pub fn in_flight(
    conn: &mut DbConnection,
    tenant: &TenantId,
    meter: &str,
    period_start: NaiveDateTime,
) -> QueryResult<InFlight> {
    use usage_batches::dsl as b;
    use usage_events::dsl as e;
    use usage_forwarding::dsl as f;
    let through: i64 = f::usage_forwarding
        .find((tenant.as_str(), meter))
        .select(f::batched_through)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    let unbatched: Vec<i64> = e::usage_events
        .filter(e::tenant_id.eq(tenant.as_str()))
        .filter(e::meter.eq(meter))
        .filter(e::period_start.eq(period_start))
        .filter(e::id.gt(through))
        .select(e::value)
        .load(conn)?;
    let batches: Vec<(String, i32, i64)> = b::usage_batches
        .filter(b::tenant_id.eq(tenant.as_str()))
        .filter(b::meter.eq(meter))
        .filter(b::period_start.eq(period_start))
        .filter(b::state.ne(state::SENT))
        .select((b::state, b::attempts, b::value))
        .load(conn)?;
    let mut found = InFlight {
        unbatched: unbatched.iter().sum(),
        ..InFlight::default()
    };
    for (batch_state, attempts, value) in batches {
        match batch_state.as_str() {
            state::PENDING if attempts == 0 => found.untried += value,
            state::PENDING => found.tried += value,
            state::UNKNOWN => found.unknown += value,
            state::EXPIRED | state::REJECTED => found.closed += value,
            _ => {}
        }
    }
    Ok(found)
}

/// What batches of *other* periods of `tenant`'s `meter` were stamped in
/// `[from, to)` (the partial minutes a summary of a period shares with its
/// neighbours): `(sent, tried)` values, tried meaning pending after an
/// attempt (at Stripe or not).
pub fn neighbours_in(
    conn: &mut DbConnection,
    tenant: &TenantId,
    meter: &str,
    period_start: NaiveDateTime,
    (from, to): (NaiveDateTime, NaiveDateTime),
) -> QueryResult<(i64, i64)> {
    use usage_batches::dsl as b;
    let rows: Vec<(String, i32, i64)> = b::usage_batches
        .filter(b::tenant_id.eq(tenant.as_str()))
        .filter(b::meter.eq(meter))
        .filter(b::period_start.ne(period_start))
        .filter(b::occurred_at.ge(from))
        .filter(b::occurred_at.lt(to))
        .select((b::state, b::attempts, b::value))
        .load(conn)?;
    let mut found = (0, 0);
    for (batch_state, attempts, value) in rows {
        match batch_state.as_str() {
            state::SENT => found.0 += value,
            state::PENDING if attempts > 0 => found.1 += value,
            _ => {}
        }
    }
    Ok(found)
}

/// A correction `reconcile --usage --fix` is about to send.
#[derive(Debug, Clone)]
pub struct NewFix<'a> {
    pub tenant: &'a TenantId,
    pub meter: &'a str,
    pub period: UsagePeriod,
    pub value: i64,
    pub identifier: &'a str,
    pub occurred_at: NaiveDateTime,
}

/// Writes a fix batch (pending) before it is sent, and closes the period's
/// unknown batches as superseded (the fix accounts for them); a fix with the
/// same identifier written before (a re-run that saw the same totals) is
/// returned as it is.
pub fn insert_fix(
    conn: &mut DbConnection,
    fix: &NewFix<'_>,
    now: NaiveDateTime,
) -> QueryResult<BatchRecord> {
    use usage_batches::dsl as b;
    write_transaction!(conn, |c| {
        let existing = b::usage_batches
            .filter(b::identifier.eq(fix.identifier))
            .select(BatchRecord::as_select())
            .first(c)
            .optional()?;
        if let Some(existing) = existing {
            return Ok(existing);
        }
        diesel::update(
            b::usage_batches.filter(
                b::tenant_id
                    .eq(fix.tenant.as_str())
                    .and(b::meter.eq(fix.meter))
                    .and(b::period_start.eq(fix.period.start))
                    .and(b::state.eq(state::UNKNOWN)),
            ),
        )
        .set((b::state.eq(state::SUPERSEDED), b::updated_at.eq(now)))
        .execute(c)?;
        diesel::insert_into(b::usage_batches)
            .values((
                b::tenant_id.eq(fix.tenant.as_str()),
                b::meter.eq(fix.meter),
                b::kind.eq(kind::FIX),
                b::period_start.eq(fix.period.start),
                b::period_end.eq(fix.period.end),
                b::value.eq(fix.value),
                b::events.eq(0_i64),
                b::occurred_at.eq(fix.occurred_at),
                b::oldest_recorded_at.eq(now),
                b::identifier.eq(fix.identifier),
                b::state.eq(state::PENDING),
                b::attempts.eq(0),
                b::created_at.eq(now),
                b::updated_at.eq(now),
            ))
            .returning(BatchRecord::as_returning())
            .get_result(c)
    })
}

/// Marks the period's unknown batches sent: `reconcile --usage` found Stripe
/// holding everything, so they had landed.
pub fn unknown_landed(
    conn: &mut DbConnection,
    tenant: &TenantId,
    meter: &str,
    period_start: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    use usage_batches::dsl as b;
    diesel::update(
        b::usage_batches.filter(
            b::tenant_id
                .eq(tenant.as_str())
                .and(b::meter.eq(meter))
                .and(b::period_start.eq(period_start))
                .and(b::state.eq(state::UNKNOWN)),
        ),
    )
    .set((
        b::state.eq(state::SENT),
        b::sent_at.eq(Some(now)),
        b::updated_at.eq(now),
    ))
    .execute(conn)
}
