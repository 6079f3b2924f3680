//! The per-tenant subscription write lock: plan changes, cancel and resume
//! (and seat changes) of one tenant run one at a time, across instances.
//!
//! Like the customer claim: a token and a lease on the tenant's row, taken by
//! one compare-and-set `UPDATE` (PostgreSQL re-checks the predicate after the
//! row lock; SQLite runs one writer at a time), never a transaction held
//! while Stripe is called. A holder that dies leaves a lease that lapses.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::tenant_config;
use super::DbConnection;
use crate::domain::TenantId;

/// What `acquire` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired,
    /// Another writer holds an unexpired lease.
    Busy,
    /// The tenant has no row (so no subscription either).
    NoTenant,
}

/// Takes the lock with `token` until `lease_until`, unless another writer
/// holds an unexpired lease.
pub fn acquire(
    conn: &mut DbConnection,
    tenant: &TenantId,
    token: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> QueryResult<LockOutcome> {
    use tenant_config::dsl as t;
    let free = t::subscription_lock_token
        .is_null()
        .or(t::subscription_lock_expires_at.is_null())
        .or(t::subscription_lock_expires_at.le(now));
    let taken = diesel::update(t::tenant_config.find(tenant.as_str()).filter(free))
        .set((
            t::subscription_lock_token.eq(token),
            t::subscription_lock_expires_at.eq(lease_until),
        ))
        .execute(conn)?;
    if taken == 1 {
        return Ok(LockOutcome::Acquired);
    }
    let exists = t::tenant_config
        .find(tenant.as_str())
        .select(t::tenant_id)
        .first::<String>(conn)
        .optional()?
        .is_some();
    Ok(if exists {
        LockOutcome::Busy
    } else {
        LockOutcome::NoTenant
    })
}

/// Gives the lock up if `token` still holds it (a holder whose lease lapsed
/// and was taken over releases nothing).
pub fn release(conn: &mut DbConnection, tenant: &TenantId, token: &str) -> QueryResult<()> {
    use tenant_config::dsl as t;
    diesel::update(
        t::tenant_config
            .find(tenant.as_str())
            .filter(t::subscription_lock_token.eq(token)),
    )
    .set((
        t::subscription_lock_token.eq(None::<String>),
        t::subscription_lock_expires_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}
