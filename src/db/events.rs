//! The Stripe event ledger and the subscription state it guards.
//!
//! An event's ledger row and its effect commit together. The row is inserted
//! first (`ON CONFLICT DO NOTHING`): a concurrent delivery of the same event
//! waits on that insert, then finds the row and changes nothing. Subscription
//! state is written only when the event is not older than the tenant's
//! watermark, so late or replayed events cannot roll state back.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use super::audit::{self, AuditEntry};
use super::schema::{stripe_events, tenant_config};
use super::subscriptions::{self, Observation, StoreOutcome, SubscriptionSnapshot, Ticket};
use super::DbConnection;
use crate::domain::TenantId;

/// What an event asks of our state.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Set the owning tenant's subscription state. `claimed_tenants` are the
    /// tenant ids the event names (metadata, client_reference_id): each must
    /// be the customer's owner, or nothing is applied.
    ///
    /// `ticket` was drawn for the customer's owner before Stripe was read
    /// (see `subscriptions`); `notice` is an extra audit action for events
    /// worth recording on their own (a trial about to end).
    Subscription {
        state: Box<SubscriptionSnapshot>,
        claimed_tenants: Vec<String>,
        ticket: Option<(TenantId, Ticket)>,
        notice: Option<&'static str>,
    },
    /// The customer is gone at Stripe: unlink it so the next upgrade creates one.
    CustomerDeleted { customer_id: String },
    /// A type we record but do not act on.
    Ignore,
}

/// The ledger's verdict on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// State changed.
    Applied,
    /// Seen before (concurrently or earlier): nothing changed.
    Duplicate,
    /// Older than the tenant's newest applied event, or about a superseded
    /// subscription: recorded, nothing changed.
    Stale,
    /// No tenant owns the customer: recorded and logged.
    Unmatched,
    /// The event names a tenant other than the customer's owner.
    Rejected,
    /// An event type we do not act on.
    Ignored,
}

impl EventOutcome {
    fn status(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Stale => "stale",
            EventOutcome::Unmatched => "unmatched",
            EventOutcome::Rejected => "rejected",
            EventOutcome::Ignored => "ignored",
        }
    }
}

/// The event as the ledger stores it.
#[derive(Debug, Clone)]
pub struct LedgerEvent<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub created: NaiveDateTime,
    pub payload: &'a str,
}

/// Whether this event id was already handled for good (not merely failed).
pub fn already_handled(conn: &mut DbConnection, event_id: &str) -> QueryResult<bool> {
    let status = stripe_events::table
        .find(event_id)
        .select(stripe_events::status)
        .first::<String>(conn)
        .optional()?;
    Ok(status.is_some_and(|s| s != "failed"))
}

/// Records the event and applies its effect in one transaction.
pub fn record_and_apply(
    conn: &mut DbConnection,
    event: &LedgerEvent<'_>,
    effect: &Effect,
    now: NaiveDateTime,
) -> QueryResult<(EventOutcome, Option<String>)> {
    conn.transaction(|c| {
        let redelivery_of_failed = !insert_ledger_row(c, event, now)?;
        if redelivery_of_failed {
            let status: String = stripe_events::table
                .find(event.event_id)
                .select(stripe_events::status)
                .first(c)?;
            if status != "failed" {
                return Ok((EventOutcome::Duplicate, None));
            }
        }
        let (outcome, tenant) = apply(c, event, effect)?;
        let attempts_added = i32::from(redelivery_of_failed);
        diesel::update(stripe_events::table.find(event.event_id))
            .set((
                stripe_events::attempts.eq(stripe_events::attempts + attempts_added),
                stripe_events::status.eq(outcome.status()),
                stripe_events::tenant_id.eq(tenant.as_deref()),
                stripe_events::processed_at.eq(Some(now)),
                stripe_events::last_error.eq(None::<String>),
            ))
            .execute(c)?;
        Ok((outcome, tenant))
    })
}

/// Keeps a failed event with its error; Stripe redelivers it and the next
/// delivery processes it again.
pub fn record_failure(
    conn: &mut DbConnection,
    event: &LedgerEvent<'_>,
    error: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    conn.transaction(|c| {
        if !insert_ledger_row(c, event, now)? {
            diesel::update(
                stripe_events::table
                    .find(event.event_id)
                    .filter(stripe_events::status.eq_any(["failed", "processing"])),
            )
            .set((
                stripe_events::attempts.eq(stripe_events::attempts + 1),
                stripe_events::status.eq("failed"),
                stripe_events::last_error.eq(error),
            ))
            .execute(c)?;
        } else {
            diesel::update(stripe_events::table.find(event.event_id))
                .set((
                    stripe_events::status.eq("failed"),
                    stripe_events::last_error.eq(error),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// Inserts the ledger row as `processing` unless it exists; true if inserted.
fn insert_ledger_row(
    conn: &mut DbConnection,
    event: &LedgerEvent<'_>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let values = (
        stripe_events::event_id.eq(event.event_id),
        stripe_events::event_type.eq(event.event_type),
        stripe_events::stripe_created_at.eq(event.created),
        stripe_events::status.eq("processing"),
        stripe_events::payload.eq(event.payload),
        stripe_events::received_at.eq(now),
    );
    Ok(insert_or_ignore!(conn, stripe_events::table, values)? == 1)
}

fn apply(
    conn: &mut DbConnection,
    event: &LedgerEvent<'_>,
    effect: &Effect,
) -> QueryResult<(EventOutcome, Option<String>)> {
    match effect {
        Effect::Ignore => Ok((EventOutcome::Ignored, None)),
        Effect::CustomerDeleted { customer_id } => {
            let Some(owner) = owner_of(conn, customer_id)? else {
                return Ok((EventOutcome::Unmatched, None));
            };
            let tenant = TenantId::parse(&owner).map_err(|_| diesel::result::Error::NotFound)?;
            super::tenants::unlink_customer(conn, &tenant, customer_id)?;
            subscriptions::raise_watermark(conn, &tenant, event.created)?;
            audit_change(conn, &owner, event, "customer.unlinked", customer_id)?;
            Ok((EventOutcome::Applied, Some(owner)))
        }
        Effect::Subscription {
            state,
            claimed_tenants,
            ticket,
            notice,
        } => {
            let Some(owner) = owner_of(conn, &state.customer_id)? else {
                return Ok((EventOutcome::Unmatched, None));
            };
            if claimed_tenants.iter().any(|claimed| claimed != &owner) {
                return Ok((EventOutcome::Rejected, Some(owner)));
            }
            let tenant = TenantId::parse(&owner).map_err(|_| diesel::result::Error::NotFound)?;
            let ticket = match ticket {
                Some((drawn_for, ticket)) if drawn_for == &tenant => *ticket,
                // The customer changed hands between the read and now: a
                // fresh ticket still orders this read after older ones.
                _ => subscriptions::draw_ticket(conn, &tenant)?
                    .ok_or(diesel::result::Error::NotFound)?,
            };
            if let Some(action) = notice {
                let detail =
                    json!({"subscription_id": state.subscription_id, "trial_end": state.trial_end});
                audit_change(conn, &owner, event, action, &detail.to_string())?;
            }
            let observation = Observation {
                actor: "stripe",
                request_id: Some(event.event_id),
                action: "subscription.sync",
                event: Some((event.event_type, event.created)),
                now: chrono::Utc::now().naive_utc(),
                authoritative: false,
                always_audit: false,
                requested: None,
            };
            Ok(
                match subscriptions::store(conn, &tenant, ticket, state, &observation)? {
                    StoreOutcome::Stored(_) => (EventOutcome::Applied, Some(owner)),
                    StoreOutcome::Stale => (EventOutcome::Stale, Some(owner)),
                },
            )
        }
    }
}

/// The tenant that owns `customer_id` in `tenant_config`, the only authority
/// on which tenant an event may touch.
fn owner_of(conn: &mut DbConnection, customer_id: &str) -> QueryResult<Option<String>> {
    use tenant_config::dsl as t;
    t::tenant_config
        .filter(t::stripe_customer_id.eq(customer_id))
        .select(t::tenant_id)
        .first(conn)
        .optional()
}

fn audit_change(
    conn: &mut DbConnection,
    tenant: &str,
    event: &LedgerEvent<'_>,
    action: &str,
    detail: &str,
) -> QueryResult<()> {
    let tenant = TenantId::parse(tenant).map_err(|_| diesel::result::Error::NotFound)?;
    audit::append(
        conn,
        &AuditEntry {
            tenant: &tenant,
            actor: "stripe",
            request_id: Some(event.event_id),
            action,
            outcome: "ok",
            detail: Some(
                serde_json::json!({"event": event.event_type, "detail": detail}).to_string(),
            ),
        },
    )
}

/// A ledger row, for operators and tests.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = stripe_events)]
pub struct LedgerRow {
    pub event_id: String,
    pub event_type: String,
    pub tenant_id: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Every ledger row, oldest first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<LedgerRow>> {
    stripe_events::table
        .order((
            stripe_events::received_at.asc(),
            stripe_events::event_id.asc(),
        ))
        .select(LedgerRow::as_select())
        .load(conn)
}

/// Deletes up to `limit` ledger rows received before `cutoff`, oldest first;
/// returns how many (retention, in small batches).
pub fn delete_received_before(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    // Re-checked on delete: a redelivery may have refreshed a row in between.
    delete_oldest!(
        conn,
        stripe_events::table,
        stripe_events::event_id => String,
        stripe_events::received_at.lt(cutoff),
        stripe_events::received_at.asc(),
        limit
    )
}
