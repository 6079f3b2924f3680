//! The tenant's subscription state: a cache of Stripe's truth, stored only in
//! Stripe's order.
//!
//! Everything that stores subscription state first reads it from Stripe (a
//! webhook re-reads the subscription, `sync` lists them, a plan change stores
//! Stripe's answer). Two such reads can finish in the other order than they
//! started, so each carries a ticket drawn from the tenant's `subscriptions`
//! row (created by the first draw): a webhook
//! or sync draws it *before* its Stripe read, a write draws it *after*
//! Stripe's answer. Stripe's state only moves forward, so a read with a
//! higher ticket is at least as new, and a read is stored only if no higher
//! ticket has been stored already (`state_applied_ticket`).
//!
//! Every change is audited with what changed, in the same transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::audit::{self, AuditEntry};
use super::schema::{subscriptions, tenant_config};
use super::DbConnection;
use crate::domain::{is_paying, TenantId};

/// A tenant's `subscriptions` row: Stripe's subscription as last stored,
/// with the watermark and ticket that order the stores.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRecord {
    /// Our plan id while the subscription pays, else `free`.
    pub plan: String,
    pub subscription_id: Option<String>,
    pub status: Option<String>,
    pub price_id: Option<String>,
    pub current_period_start: Option<NaiveDateTime>,
    pub current_period_end: Option<NaiveDateTime>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<NaiveDateTime>,
    pub seats: Option<i32>,
    pub pending_plan: Option<String>,
    pub pending_plan_at: Option<NaiveDateTime>,
    pub schedule_id: Option<String>,
    pub past_due_since: Option<NaiveDateTime>,
    pub trial_used_at: Option<NaiveDateTime>,
    /// Stripe's time of the newest event stored (older events lose).
    pub state_at: Option<NaiveDateTime>,
    pub state_applied_ticket: i64,
}

impl SubscriptionRecord {
    /// A tenant that never had a subscription: free, no trial used.
    pub fn none() -> &'static SubscriptionRecord {
        static NONE: std::sync::LazyLock<SubscriptionRecord> =
            std::sync::LazyLock::new(|| SubscriptionRecord {
                plan: crate::domain::FREE.to_owned(),
                subscription_id: None,
                status: None,
                price_id: None,
                current_period_start: None,
                current_period_end: None,
                cancel_at_period_end: false,
                trial_end: None,
                seats: None,
                pending_plan: None,
                pending_plan_at: None,
                schedule_id: None,
                past_due_since: None,
                trial_used_at: None,
                state_at: None,
                state_applied_ticket: 0,
            });
        &NONE
    }
}

/// Stripe's current view of one subscription, mapped to our columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    pub subscription_id: String,
    pub customer_id: String,
    pub status: String,
    pub price_id: Option<String>,
    /// Our plan id for the price while paying (the price's id if no plan
    /// names it), else `free`.
    pub plan: String,
    pub current_period_start: Option<NaiveDateTime>,
    pub current_period_end: Option<NaiveDateTime>,
    pub cancel_at_period_end: bool,
    pub trial_end: Option<NaiveDateTime>,
    /// This tenant had a trial (on this or, for `sync`, any subscription):
    /// marks the tenant's one trial as used, for good.
    pub had_trial: bool,
    /// The item's quantity, for a per-seat plan.
    pub seats: Option<i32>,
    /// The plan the subscription moves to at `pending_plan_at` (a schedule's
    /// next phase, or `free` when it cancels at the period's end).
    pub pending_plan: Option<String>,
    pub pending_plan_at: Option<NaiveDateTime>,
    pub schedule_id: Option<String>,
}

impl SubscriptionSnapshot {
    pub fn is_paying(&self) -> bool {
        is_paying(&self.status)
    }
}

/// A place in the order of a tenant's Stripe reads (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(i64);

/// Why the state is being stored, for the audit log, the event watermark
/// and the grace period.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
    pub action: &'a str,
    /// The Stripe event that prompted the read: its type and Stripe's time.
    pub event: Option<(&'a str, NaiveDateTime)>,
    pub now: NaiveDateTime,
    /// The snapshot is the outcome of listing every subscription (`sync`),
    /// not one subscription's news: it may replace another that pays.
    pub authoritative: bool,
    /// Audit even if nothing changed here: an admin's write whose webhook
    /// was stored first still records who asked for it.
    pub always_audit: bool,
    /// What the admin asked for, recorded beside what changed (a webhook may
    /// have stored the change first, leaving `changes` empty).
    pub requested: Option<&'a Value>,
}

/// How storing a snapshot ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOutcome {
    /// Stored; these fields changed (`{field: [old, new]}`, empty if none).
    Stored(Map<String, Value>),
    /// A newer read (or a newer event) was stored already, or the snapshot is
    /// a lapsed old subscription while another one pays: nothing written.
    Stale,
}

/// Draws the tenant's next ticket in its own short write transaction; `None`
/// when the tenant has no row.
pub fn draw_ticket(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Option<Ticket>> {
    conn.transaction(|c| draw_in(c, tenant))
}

/// The owner of `customer_id` and its next ticket (webhooks know the
/// customer, not the tenant). The write comes first, so SQLite takes its
/// write lock before reading.
pub fn draw_ticket_for_customer(
    conn: &mut DbConnection,
    customer_id: &str,
) -> QueryResult<Option<(TenantId, Ticket)>> {
    use subscriptions::dsl as s;
    use tenant_config::dsl as t;
    conn.transaction(|c| {
        let owner_of_customer = t::tenant_config
            .filter(t::stripe_customer_id.eq(customer_id))
            .select(t::tenant_id);
        let drawn = diesel::update(s::subscriptions.filter(s::tenant_id.eq_any(owner_of_customer)))
            .set(s::state_ticket.eq(s::state_ticket + 1))
            .execute(c)?;
        let Some(owner) = owner_of_customer.first::<String>(c).optional()? else {
            return Ok(None);
        };
        let Ok(owner) = TenantId::parse(&owner) else {
            return Ok(None);
        };
        let ticket = if drawn == 1 {
            Some(current_ticket(c, &owner)?)
        } else {
            draw_in(c, &owner)?
        };
        Ok(ticket.map(|ticket| (owner, ticket)))
    })
}

fn current_ticket(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Ticket> {
    use subscriptions::dsl as s;
    s::subscriptions
        .find(tenant.as_str())
        .select(s::state_ticket)
        .first(conn)
        .map(Ticket)
}

/// Draws the next ticket, creating the tenant's `subscriptions` row with the
/// first one. Starts with a write (see `draw_ticket_for_customer`).
fn draw_in(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Option<Ticket>> {
    use subscriptions::dsl as s;
    use tenant_config::dsl as t;
    loop {
        let drawn = diesel::update(s::subscriptions.find(tenant.as_str()))
            .set(s::state_ticket.eq(s::state_ticket + 1))
            .execute(conn)?;
        if drawn == 1 {
            return current_ticket(conn, tenant).map(Some);
        }
        let exists = t::tenant_config
            .find(tenant.as_str())
            .select(t::tenant_id)
            .first::<String>(conn)
            .optional()?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let first = (s::tenant_id.eq(tenant.as_str()), s::state_ticket.eq(1_i64));
        let created = match conn {
            DbConnection::Postgresql(c) => diesel::insert_into(s::subscriptions)
                .values(first)
                .on_conflict_do_nothing()
                .execute(c)?,
            DbConnection::Sqlite(c) => diesel::insert_into(s::subscriptions)
                .values(first)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
        if created == 1 {
            return Ok(Some(Ticket(1)));
        }
        // Another drawer created the row meanwhile: draw from it.
    }
}

/// Stripe's time of an event that changed the tenant (its customer was
/// deleted): events older than it are stale from now on.
pub fn raise_watermark(
    conn: &mut DbConnection,
    tenant: &TenantId,
    event_time: NaiveDateTime,
) -> QueryResult<()> {
    use subscriptions::dsl as s;
    diesel::update(s::subscriptions.find(tenant.as_str()))
        .set(s::state_at.eq(Some(event_time)))
        .execute(conn)?;
    Ok(())
}

/// Forgets the subscription of a customer that is gone (the tenant is on
/// free again), keeping `trial_used_at` (one trial per tenant, ever) and the
/// tickets.
pub fn forget(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<()> {
    use subscriptions::dsl as s;
    diesel::update(s::subscriptions.find(tenant.as_str()))
        .set((
            s::plan.eq(crate::domain::FREE),
            s::subscription_id.eq(None::<String>),
            s::status.eq(None::<String>),
            s::price_id.eq(None::<String>),
            s::current_period_start.eq(None::<NaiveDateTime>),
            s::current_period_end.eq(None::<NaiveDateTime>),
            s::cancel_at_period_end.eq(false),
            s::trial_end.eq(None::<NaiveDateTime>),
            s::seats.eq(None::<i32>),
            s::pending_plan.eq(None::<String>),
            s::pending_plan_at.eq(None::<NaiveDateTime>),
            s::schedule_id.eq(None::<String>),
            s::past_due_since.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Stores `snapshot` for `tenant` unless a newer read was stored already,
/// and audits what changed. Call inside a transaction (it holds the row's
/// lock from its first statement to the commit).
pub fn store(
    conn: &mut DbConnection,
    tenant: &TenantId,
    ticket: Ticket,
    snapshot: &SubscriptionSnapshot,
    observation: &Observation<'_>,
) -> QueryResult<StoreOutcome> {
    use subscriptions::dsl as s;
    // Lock the row before reading it (a no-op write: PostgreSQL's row lock,
    // SQLite's write lock), so the check below and the write that follows
    // see the same row as every other writer: reading first would let two
    // stores both pass the ticket check on PostgreSQL, and make a SQLite
    // read transaction fail to upgrade. The row exists: drawing the ticket
    // created it.
    diesel::update(s::subscriptions.find(tenant.as_str()))
        .set(s::state_ticket.eq(s::state_ticket))
        .execute(conn)?;
    let row = s::subscriptions
        .find(tenant.as_str())
        .select(SubscriptionRecord::as_select())
        .first(conn)?;
    if ticket.0 <= row.state_applied_ticket {
        return Ok(StoreOutcome::Stale);
    }
    let event_time = observation.event.map(|(_, created)| created);
    if let (Some(watermark), Some(created)) = (row.state_at, event_time) {
        if created < watermark {
            return Ok(StoreOutcome::Stale);
        }
    }
    let another_pays = row.subscription_id.as_deref() != Some(snapshot.subscription_id.as_str())
        && row.status.as_deref().is_some_and(is_paying);
    if another_pays && !snapshot.is_paying() && !observation.authoritative {
        // A lapsed old subscription must not demote the current one.
        return Ok(StoreOutcome::Stale);
    }

    let past_due_since = past_due_since(&row, snapshot, event_time.unwrap_or(observation.now));
    let trial_used_at = row
        .trial_used_at
        .or(snapshot.had_trial.then_some(observation.now));
    let watermark = match (row.state_at, event_time) {
        (Some(old), Some(new)) => Some(old.max(new)),
        (old, new) => old.or(new),
    };
    diesel::update(s::subscriptions.find(tenant.as_str()))
        .set((
            s::plan.eq(&snapshot.plan),
            s::subscription_id.eq(Some(&snapshot.subscription_id)),
            s::status.eq(Some(&snapshot.status)),
            s::price_id.eq(snapshot.price_id.as_ref()),
            s::current_period_start.eq(snapshot.current_period_start),
            s::current_period_end.eq(snapshot.current_period_end),
            s::cancel_at_period_end.eq(snapshot.cancel_at_period_end),
            s::trial_end.eq(snapshot.trial_end),
            s::seats.eq(snapshot.seats),
            s::pending_plan.eq(snapshot.pending_plan.as_ref()),
            s::pending_plan_at.eq(snapshot.pending_plan_at),
            s::schedule_id.eq(snapshot.schedule_id.as_ref()),
            s::past_due_since.eq(past_due_since),
            s::trial_used_at.eq(trial_used_at),
            s::state_at.eq(watermark),
            s::state_applied_ticket.eq(ticket.0),
        ))
        .execute(conn)?;

    let changes = changes(&row, snapshot);
    if !changes.is_empty() || observation.always_audit {
        let mut detail = json!({
            "subscription_id": snapshot.subscription_id,
            "changes": changes,
        });
        if let Some((event_type, _)) = observation.event {
            detail["event"] = json!(event_type);
        }
        if let Some(requested) = observation.requested {
            detail["requested"] = requested.clone();
        }
        audit::append(
            conn,
            &AuditEntry {
                tenant,
                actor: observation.actor,
                request_id: observation.request_id,
                action: observation.action,
                outcome: "ok",
                detail: Some(detail.to_string()),
            },
        )?;
    }
    Ok(StoreOutcome::Stored(changes))
}

/// `store` in its own transaction, for a read whose ticket was drawn before
/// it (`sync`).
pub fn store_read(
    conn: &mut DbConnection,
    tenant: &TenantId,
    ticket: Ticket,
    snapshot: &SubscriptionSnapshot,
    observation: &Observation<'_>,
) -> QueryResult<StoreOutcome> {
    conn.transaction(|c| store(c, tenant, ticket, snapshot, observation))
}

/// Draws a ticket and stores in one write transaction: for state taken from
/// Stripe's answer to a write, which is newer than any read drawn before.
pub fn store_latest(
    conn: &mut DbConnection,
    tenant: &TenantId,
    snapshot: &SubscriptionSnapshot,
    observation: &Observation<'_>,
) -> QueryResult<StoreOutcome> {
    conn.transaction(|c| {
        let Some(ticket) = draw_in(c, tenant)? else {
            return Err(diesel::result::Error::NotFound);
        };
        store(c, tenant, ticket, snapshot, observation)
    })
}

/// The grace period counts from the first failed payment of the current
/// past_due spell: the earliest time seen while past_due (events may arrive
/// out of order), never before the current period began (an old event
/// replayed late cannot shorten it).
fn past_due_since(
    row: &SubscriptionRecord,
    snapshot: &SubscriptionSnapshot,
    observed: NaiveDateTime,
) -> Option<NaiveDateTime> {
    if snapshot.status != "past_due" {
        return None;
    }
    let candidate = match snapshot.current_period_start {
        Some(start) => observed.max(start),
        None => observed,
    };
    let same_spell = row.status.as_deref() == Some("past_due")
        && row.subscription_id.as_deref() == Some(snapshot.subscription_id.as_str());
    Some(match row.past_due_since {
        Some(existing) if same_spell => existing.min(candidate),
        _ => candidate,
    })
}

/// The user-visible fields that differ, as `{field: [old, new]}`.
fn changes(row: &SubscriptionRecord, new: &SubscriptionSnapshot) -> Map<String, Value> {
    let mut changes = Map::new();
    let mut compare = |field: &str, old: Value, new: Value| {
        if old != new {
            changes.insert(field.to_owned(), json!([old, new]));
        }
    };
    compare("plan", json!(row.plan), json!(new.plan));
    compare(
        "subscription_id",
        json!(row.subscription_id),
        json!(new.subscription_id),
    );
    compare("subscription_status", json!(row.status), json!(new.status));
    compare(
        "current_period_end",
        json!(row.current_period_end),
        json!(new.current_period_end),
    );
    compare(
        "cancel_at_period_end",
        json!(row.cancel_at_period_end),
        json!(new.cancel_at_period_end),
    );
    compare("trial_end", json!(row.trial_end), json!(new.trial_end));
    compare("seats", json!(row.seats), json!(new.seats));
    compare(
        "pending_plan",
        json!(row.pending_plan),
        json!(new.pending_plan),
    );
    compare(
        "pending_plan_at",
        json!(row.pending_plan_at),
        json!(new.pending_plan_at),
    );
    changes
}
