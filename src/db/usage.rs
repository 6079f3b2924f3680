//! The usage ledger (`usage_events`, append-only) and its period totals
//! (`usage_counters`).
//!
//! A batch of events is recorded in one write transaction, before the
//! answer:
//! 1. the keys already in the ledger are read: those events are duplicates
//!    (or conflicts, when the meter or quantity differ) and change nothing;
//! 2. the tenant's subscription is read in the same transaction, and the
//!    caller's rule places each new event in a period with the plan's
//!    allowance for its meter;
//! 3. every period total the batch touches is locked, in one fixed order
//!    (so two batches never wait on each other in a cycle), by an upsert
//!    that returns its value;
//! 4. the events are admitted in order against those totals: an event that
//!    would take a blocking limit past its value is refused, one that fits
//!    is admitted, whatever came before it;
//! 5. the admitted events are inserted, and each total grows by what its
//!    events added.
//!
//! So a limit is checked and consumed under the total's row lock, never read
//! and then written, across any number of instances. A key raced by a
//! concurrent transaction (both read it as new) is caught by the unique key:
//! the loser rolls back everything and runs again, finding a duplicate.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{subscriptions, usage_counters, usage_events};
use super::subscriptions::SubscriptionRecord;
use super::usage_forwarding::{note_recorded, UsageLock};
use super::DbConnection;
use crate::domain::{Allowance, TenantId, UsagePeriod};

/// One event as the API received it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageInput {
    pub key: String,
    pub meter: String,
    pub quantity: i64,
    /// What it adds to its period's total (the meter's aggregation).
    pub value: i64,
    pub occurred_at: NaiveDateTime,
}

/// Where the plan puts an event: its period and the meter's allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub period: UsagePeriod,
    pub allowance: Allowance,
    /// The period is known exactly (the subscription's stored current
    /// period, a calendar month), not laid end to end from it. An inexact
    /// one yields to a recorded period holding the event's time, so events
    /// of one past period share one total however its bounds were guessed.
    pub exact: bool,
}

/// An event in the ledger, with the answer it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEvent {
    pub key: String,
    pub meter: String,
    pub quantity: i64,
    pub occurred_at: NaiveDateTime,
    pub period: UsagePeriod,
    /// The period's total after this event.
    pub used_after: i64,
    /// The limit in force when it was recorded (`None`: unlimited).
    pub limit: Option<i64>,
}

/// What became of one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// New: in the ledger and counted now.
    Accepted(LedgerEvent),
    /// Its key was recorded before with the same meter and quantity.
    Duplicate(LedgerEvent),
    /// Its key was recorded before with another meter or quantity.
    KeyConflict(LedgerEvent),
    /// It would take a blocking limit past its value: not recorded.
    Refused {
        meter: String,
        period: UsagePeriod,
        used: i64,
        limit: i64,
    },
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = usage_events)]
struct EventRow {
    idempotency_key: String,
    meter: String,
    quantity: i64,
    occurred_at: NaiveDateTime,
    period_start: NaiveDateTime,
    used_after: i64,
    usage_limit: Option<i64>,
}

/// A ledger row to insert. `None` is NULL, not SQL's DEFAULT, which lets
/// SQLite insert a batch in one statement too.
#[derive(Insertable)]
#[diesel(table_name = usage_events, treat_none_as_default_value = false)]
struct NewEvent<'a> {
    tenant_id: &'a str,
    idempotency_key: &'a str,
    meter: &'a str,
    quantity: i64,
    value: i64,
    occurred_at: NaiveDateTime,
    period_start: NaiveDateTime,
    used_after: i64,
    usage_limit: Option<i64>,
    recorded_at: NaiveDateTime,
}

/// A period total's key: meter, then period start (the lock order).
type CounterKey = (String, NaiveDateTime);

/// How one attempt at a batch ended.
#[derive(Debug)]
enum AttemptError {
    Db(diesel::result::Error),
    /// A key was inserted by a concurrent transaction after this one read
    /// it as new: roll back and run again.
    KeyRaced,
}

impl From<diesel::result::Error> for AttemptError {
    fn from(error: diesel::result::Error) -> Self {
        AttemptError::Db(error)
    }
}

/// How many times a batch runs again after losing a key race; each run
/// turns at least one raced key into a duplicate.
const MAX_RACES: usize = 8;

/// Records `events` for `tenant` (see the module docs), in their order;
/// `place` decides each new event's period and allowance from the tenant's
/// subscription as stored. Events of the meters in `forwarded` (billed
/// through Stripe) are noted for the usage forwarder in the same transaction
/// (db/usage_forwarding.rs), which also holds the tenant's usage lock shared.
pub fn record(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
    events: &[UsageInput],
    place: &dyn Fn(&SubscriptionRecord, &UsageInput) -> Placement,
    forwarded: &[String],
) -> QueryResult<Vec<Recorded>> {
    let mut races = 0;
    loop {
        match attempt(conn, tenant, now, events, place, forwarded) {
            Ok(recorded) => return Ok(recorded),
            Err(AttemptError::KeyRaced) if races < MAX_RACES => races += 1,
            Err(AttemptError::KeyRaced) => {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            Err(AttemptError::Db(error)) => return Err(error),
        }
    }
}

fn attempt(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
    events: &[UsageInput],
    place: &dyn Fn(&SubscriptionRecord, &UsageInput) -> Placement,
    forwarded: &[String],
) -> Result<Vec<Recorded>, AttemptError> {
    use usage_counters::dsl as c;
    use usage_events::dsl as e;
    let forwards = |meter: &str| forwarded.iter().any(|f| f == meter);
    let touches_forwarded = events.iter().any(|event| forwards(&event.meter));
    write_transaction!(conn, |conn| {
        // Before any ledger id is drawn: the forwarder's cut waits for us.
        if touches_forwarded {
            conn.lock_usage(tenant.as_str(), false)?;
        }
        let keys: Vec<&str> = events.iter().map(|event| event.key.as_str()).collect();
        let known: Vec<EventRow> = e::usage_events
            .filter(e::tenant_id.eq(tenant.as_str()))
            .filter(e::idempotency_key.eq_any(&keys))
            .select(EventRow::as_select())
            .load(conn)?;
        let mut known: HashMap<String, EventRow> = known
            .into_iter()
            .map(|row| (row.idempotency_key.clone(), row))
            .collect();
        let subscription = subscriptions::table
            .find(tenant.as_str())
            .select(SubscriptionRecord::as_select())
            .first(conn)
            .optional()?;
        let subscription = subscription
            .as_ref()
            .unwrap_or_else(|| SubscriptionRecord::none());

        // Where each new event goes, and the totals to lock, in lock order.
        let mut placements: Vec<Option<Placement>> = Vec::with_capacity(events.len());
        let mut periods: BTreeMap<CounterKey, UsagePeriod> = BTreeMap::new();
        for event in events {
            if known.contains_key(&event.key) {
                placements.push(None);
                continue;
            }
            let mut placement = place(subscription, event);
            if !placement.exact {
                let recorded: Option<(NaiveDateTime, NaiveDateTime)> = c::usage_counters
                    .filter(c::tenant_id.eq(tenant.as_str()))
                    .filter(c::meter.eq(&event.meter))
                    .filter(c::period_start.le(event.occurred_at))
                    .filter(c::period_end.gt(event.occurred_at))
                    .order(c::period_start.desc())
                    .select((c::period_start, c::period_end))
                    .first(conn)
                    .optional()?;
                if let Some((start, end)) = recorded {
                    placement.period = UsagePeriod { start, end };
                }
            }
            periods.insert(
                (event.meter.clone(), placement.period.start),
                placement.period,
            );
            placements.push(Some(placement));
        }
        let mut totals: BTreeMap<CounterKey, (i64, UsagePeriod)> = BTreeMap::new();
        for ((meter, start), period) in periods {
            let (used, end): (i64, NaiveDateTime) = diesel::insert_into(c::usage_counters)
                .values((
                    c::tenant_id.eq(tenant.as_str()),
                    c::meter.eq(&meter),
                    c::period_start.eq(start),
                    c::period_end.eq(period.end),
                    c::used.eq(0_i64),
                    c::updated_at.eq(now),
                ))
                .on_conflict((c::tenant_id, c::meter, c::period_start))
                .do_update()
                .set(c::used.eq(c::used))
                .returning((c::used, c::period_end))
                .get_result(conn)?;
            totals.insert((meter, start), (used, UsagePeriod { start, end }));
        }

        // Admit in order; a key repeated within the batch is its first
        // occurrence's duplicate.
        let mut outcomes = Vec::with_capacity(events.len());
        let mut added: BTreeMap<CounterKey, i64> = BTreeMap::new();
        let mut fresh: Vec<NewEvent<'_>> = Vec::new();
        for (event, placement) in events.iter().zip(placements) {
            if let Some(row) = known.get(&event.key) {
                let period_end: NaiveDateTime = c::usage_counters
                    .find((tenant.as_str(), row.meter.as_str(), row.period_start))
                    .select(c::period_end)
                    .first(conn)?;
                let stored = ledger_event(row, period_end);
                outcomes.push(
                    if row.meter == event.meter && row.quantity == event.quantity {
                        Recorded::Duplicate(stored)
                    } else {
                        Recorded::KeyConflict(stored)
                    },
                );
                continue;
            }
            let placement = placement.expect("every new event was placed");
            let counter = (event.meter.clone(), placement.period.start);
            let (used, period) = totals
                .get_mut(&counter)
                .expect("every placed event's total was locked");
            if !placement.allowance.admits(*used, event.value) {
                outcomes.push(Recorded::Refused {
                    meter: event.meter.clone(),
                    period: *period,
                    used: *used,
                    limit: placement.allowance.limit.unwrap_or(0),
                });
                continue;
            }
            *used += event.value;
            *added.entry(counter).or_default() += event.value;
            let row = NewEvent {
                tenant_id: tenant.as_str(),
                idempotency_key: &event.key,
                meter: &event.meter,
                quantity: event.quantity,
                value: event.value,
                occurred_at: event.occurred_at,
                period_start: period.start,
                used_after: *used,
                usage_limit: placement.allowance.limit,
                recorded_at: now,
            };
            outcomes.push(Recorded::Accepted(LedgerEvent {
                key: event.key.clone(),
                meter: event.meter.clone(),
                quantity: event.quantity,
                occurred_at: event.occurred_at,
                period: *period,
                used_after: *used,
                limit: placement.allowance.limit,
            }));
            known.insert(
                event.key.clone(),
                EventRow {
                    idempotency_key: event.key.clone(),
                    meter: event.meter.clone(),
                    quantity: event.quantity,
                    occurred_at: event.occurred_at,
                    period_start: period.start,
                    used_after: *used,
                    usage_limit: placement.allowance.limit,
                },
            );
            fresh.push(row);
        }

        if !fresh.is_empty() {
            let inserted = diesel::insert_into(e::usage_events)
                .values(&fresh)
                .on_conflict_do_nothing()
                .execute(conn)?;
            if inserted != fresh.len() {
                return Err(AttemptError::KeyRaced);
            }
        }
        let mut noted: Vec<&str> = Vec::new();
        for ((meter, start), value) in &added {
            diesel::update(c::usage_counters.find((tenant.as_str(), meter, *start)))
                .set((c::used.eq(c::used + *value), c::updated_at.eq(now)))
                .execute(conn)?;
            if forwards(meter) && !noted.contains(&meter.as_str()) {
                noted.push(meter.as_str());
            }
        }
        if !noted.is_empty() {
            note_recorded!(conn, tenant.as_str(), noted.iter().copied(), now)?;
        }
        Ok(outcomes)
    })
}

fn ledger_event(row: &EventRow, period_end: NaiveDateTime) -> LedgerEvent {
    LedgerEvent {
        key: row.idempotency_key.clone(),
        meter: row.meter.clone(),
        quantity: row.quantity,
        occurred_at: row.occurred_at,
        period: UsagePeriod {
            start: row.period_start,
            end: period_end,
        },
        used_after: row.used_after,
        limit: row.usage_limit,
    }
}

/// The totals of `tenant`'s meters for the period starting at `start`
/// (a meter without usage has no row).
pub fn totals(
    conn: &mut DbConnection,
    tenant: &TenantId,
    start: NaiveDateTime,
) -> QueryResult<HashMap<String, i64>> {
    use usage_counters::dsl as c;
    let rows: Vec<(String, i64)> = c::usage_counters
        .filter(c::tenant_id.eq(tenant.as_str()))
        .filter(c::period_start.eq(start))
        .select((c::meter, c::used))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// One period total as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CounterRow {
    pub tenant_id: String,
    pub meter: String,
    pub period_start: NaiveDateTime,
    pub period_end: NaiveDateTime,
    pub used: i64,
}

/// The subscriptions of `tenants` as stored (absent: never subscribed).
pub fn subscriptions_of(
    conn: &mut DbConnection,
    tenants: &[&str],
) -> QueryResult<HashMap<String, SubscriptionRecord>> {
    let rows: Vec<(String, SubscriptionRecord)> = subscriptions::table
        .filter(subscriptions::tenant_id.eq_any(tenants))
        .select((subscriptions::tenant_id, SubscriptionRecord::as_select()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// The period totals of `tenants` whose period holds `at`, and those
/// starting at one of `starts` (an exact period's, whatever its stored end):
/// everything a usage read at `at` can need, in one query.
pub fn counters_at(
    conn: &mut DbConnection,
    tenants: &[&str],
    at: NaiveDateTime,
    starts: &[NaiveDateTime],
) -> QueryResult<Vec<CounterRow>> {
    use usage_counters::dsl as c;
    c::usage_counters
        .filter(c::tenant_id.eq_any(tenants))
        .filter(c::period_start.le(at))
        .filter(c::period_end.gt(at).or(c::period_start.eq_any(starts)))
        .select((
            c::tenant_id,
            c::meter,
            c::period_start,
            c::period_end,
            c::used,
        ))
        .load(conn)
}

/// Deletes up to `batch` ledger rows recorded before `before`; returns how
/// many. Period totals stay (they are small and the history of the page).
pub fn delete_recorded_before(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    use usage_events::dsl as e;
    delete_oldest!(
        conn,
        e::usage_events,
        e::id => i64,
        e::recorded_at.lt(before),
        e::recorded_at.asc(),
        batch
    )
}
