//! The tenant's subscription state: a cache of Stripe's truth, stored only in
//! Stripe's order.
//!
//! Everything that stores subscription state first reads it from Stripe (a
//! webhook re-reads the subscription, `sync` lists them, a plan change stores
//! Stripe's answer). Two such reads can finish in the other order than they
//! started, so each carries a ticket drawn from the tenant's row: a webhook
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
use super::schema::tenant_config;
use super::tenants::TenantRecord;
use super::DbConnection;
use crate::domain::{is_paying, TenantId};

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
    use tenant_config::dsl as t;
    conn.transaction(|c| {
        let drawn = diesel::update(t::tenant_config.filter(t::stripe_customer_id.eq(customer_id)))
            .set(t::state_ticket.eq(t::state_ticket + 1))
            .execute(c)?;
        if drawn == 0 {
            return Ok(None);
        }
        let (owner, ticket): (String, i64) = t::tenant_config
            .filter(t::stripe_customer_id.eq(customer_id))
            .select((t::tenant_id, t::state_ticket))
            .first(c)?;
        Ok(TenantId::parse(&owner)
            .ok()
            .map(|owner| (owner, Ticket(ticket))))
    })
}

fn draw_in(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Option<Ticket>> {
    use tenant_config::dsl as t;
    let drawn = diesel::update(t::tenant_config.find(tenant.as_str()))
        .set(t::state_ticket.eq(t::state_ticket + 1))
        .execute(conn)?;
    if drawn == 0 {
        return Ok(None);
    }
    let ticket = t::tenant_config
        .find(tenant.as_str())
        .select(t::state_ticket)
        .first(conn)?;
    Ok(Some(Ticket(ticket)))
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
    use tenant_config::dsl as t;
    // Lock the row before reading it (a no-op write: PostgreSQL's row lock,
    // SQLite's write lock), so the check below and the write that follows
    // see the same row as every other writer: reading first would let two
    // stores both pass the ticket check on PostgreSQL, and make a SQLite
    // read transaction fail to upgrade.
    diesel::update(t::tenant_config.find(tenant.as_str()))
        .set(t::state_ticket.eq(t::state_ticket))
        .execute(conn)?;
    let row = t::tenant_config
        .find(tenant.as_str())
        .select(TenantRecord::as_select())
        .first(conn)?;
    if ticket.0 <= row.state_applied_ticket {
        return Ok(StoreOutcome::Stale);
    }
    let event_time = observation.event.map(|(_, created)| created);
    if let (Some(watermark), Some(created)) = (row.subscription_state_at, event_time) {
        if created < watermark {
            return Ok(StoreOutcome::Stale);
        }
    }
    let another_pays = row.subscription_id.as_deref() != Some(snapshot.subscription_id.as_str())
        && row.subscription_status.as_deref().is_some_and(is_paying);
    if another_pays && !snapshot.is_paying() && !observation.authoritative {
        // A lapsed old subscription must not demote the current one.
        return Ok(StoreOutcome::Stale);
    }

    let past_due_since = past_due_since(&row, snapshot, event_time.unwrap_or(observation.now));
    let trial_used_at = row
        .trial_used_at
        .or(snapshot.had_trial.then_some(observation.now));
    let watermark = match (row.subscription_state_at, event_time) {
        (Some(old), Some(new)) => Some(old.max(new)),
        (old, new) => old.or(new),
    };
    diesel::update(t::tenant_config.find(tenant.as_str()))
        .set((
            t::plan.eq(&snapshot.plan),
            t::subscription_id.eq(Some(&snapshot.subscription_id)),
            t::subscription_status.eq(Some(&snapshot.status)),
            t::subscription_price_id.eq(snapshot.price_id.as_ref()),
            t::current_period_end.eq(snapshot.current_period_end),
            t::cancel_at_period_end.eq(snapshot.cancel_at_period_end),
            t::trial_end.eq(snapshot.trial_end),
            t::seats.eq(snapshot.seats),
            t::pending_plan.eq(snapshot.pending_plan.as_ref()),
            t::pending_plan_at.eq(snapshot.pending_plan_at),
            t::subscription_schedule_id.eq(snapshot.schedule_id.as_ref()),
            t::past_due_since.eq(past_due_since),
            t::trial_used_at.eq(trial_used_at),
            t::subscription_state_at.eq(watermark),
            t::state_applied_ticket.eq(ticket.0),
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
    row: &TenantRecord,
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
    let same_spell = row.subscription_status.as_deref() == Some("past_due")
        && row.subscription_id.as_deref() == Some(snapshot.subscription_id.as_str());
    Some(match row.past_due_since {
        Some(existing) if same_spell => existing.min(candidate),
        _ => candidate,
    })
}

/// The user-visible fields that differ, as `{field: [old, new]}`.
fn changes(row: &TenantRecord, new: &SubscriptionSnapshot) -> Map<String, Value> {
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
    compare(
        "subscription_status",
        json!(row.subscription_status),
        json!(new.status),
    );
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
