//! `tenant_leases`: rights over one tenant that hold across every service
//! instance without a transaction held across a Stripe call. Each is a token
//! and a lease set by compare-and-set in one short write transaction; a
//! holder that dies leaves a lease that lapses.
//!
//! Two kinds, one row per tenant and kind:
//! - `customer`: the right to create the tenant's Stripe customer. Its token
//!   names the intent (the idempotency key derives from it) and survives a
//!   lapsed or released lease, so a successor replays instead of creating a
//!   second customer. The row goes when the customer is linked.
//! - `subscription`: the subscription write lock (plan changes, cancel,
//!   resume, seats). The row goes when the lock is released.
//!
//! Leases live apart from `tenant_config`, so taking and giving them back
//! neither rewrites the tenant's row nor wakes the other instances' caches.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{tenant_config, tenant_leases};
use super::DbConnection;
use crate::domain::TenantId;

const CUSTOMER: &str = "customer";
const SUBSCRIPTION: &str = "subscription";

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = tenant_leases)]
pub struct Lease {
    pub token: String,
    /// The instance holding it; `None` once given back.
    pub holder: Option<String>,
    pub started_at: NaiveDateTime,
    /// `None` once given back: anyone may take it over at once.
    pub expires_at: Option<NaiveDateTime>,
}

/// A lease being taken.
#[derive(Insertable)]
#[diesel(table_name = tenant_leases)]
struct NewLease<'a> {
    tenant_id: &'a str,
    kind: &'static str,
    token: &'a str,
    holder: &'a str,
    started_at: NaiveDateTime,
    expires_at: NaiveDateTime,
}

fn find(conn: &mut DbConnection, tenant: &TenantId, kind: &str) -> QueryResult<Option<Lease>> {
    use tenant_leases::dsl as l;
    l::tenant_leases
        .find((tenant.as_str(), kind))
        .select(Lease::as_select())
        .first(conn)
        .optional()
}

/// The tenant's customer-creation claim, if one is open.
pub fn customer_claim(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Option<Lease>> {
    find(conn, tenant, CUSTOMER)
}

/// What a caller of `claim_customer_creation` must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The tenant already has a customer: use it.
    Linked(String),
    /// This caller holds the lease and must create (or recover) the customer
    /// under the claim's token.
    Claimed(CustomerClaim),
    /// Another caller holds an unexpired lease: wait for its result.
    Busy { lease_expires_at: NaiveDateTime },
}

/// The right to create a tenant's customer, until its lease expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerClaim {
    /// Stable across takeovers: the Stripe idempotency key derives from it.
    pub token: String,
    /// When the intent began (bounds the list search during recovery).
    pub started_at: NaiveDateTime,
    /// True when an earlier holder may already have created the customer.
    pub recovering: bool,
}

/// Claims the right to create the tenant's customer, creating its row if needed.
///
/// At most one caller per tenant holds an unexpired lease, across any number
/// of service instances. The tenant's row is locked first (a no-op write), so
/// a claim and `tenants::record_customer` (which links under the same row
/// lock and ends the claim) never interleave: a claim never opens for a
/// tenant being linked. A claim whose lease expired or was given back is
/// taken over with the same token, so a retried Stripe create replays
/// instead of duplicating.
///
/// `holder` names this service instance, so that it can give back every lease
/// it holds when it stops (`release_held_by`). Replaying the call with the
/// same `fresh_token` (a retry after a lost connection) finds its own claim
/// and returns it again rather than waiting on it.
pub fn claim_customer_creation(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    fresh_token: &str,
    holder: &str,
) -> Result<ClaimOutcome, diesel::result::Error> {
    use tenant_config::dsl as t;
    use tenant_leases::dsl as l;
    write_transaction!(conn, |c| {
        diesel::insert_into(t::tenant_config)
            .values((
                t::tenant_id.eq(tenant.as_str()),
                t::created_at.eq(now),
                t::updated_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c)?;
        diesel::update(t::tenant_config.find(tenant.as_str()))
            .set(t::updated_at.eq(t::updated_at))
            .execute(c)?;
        let linked: Option<String> = t::tenant_config
            .find(tenant.as_str())
            .select(t::stripe_customer_id)
            .first(c)?;
        if let Some(customer) = linked {
            return Ok(ClaimOutcome::Linked(customer));
        }
        let fresh = diesel::insert_into(l::tenant_leases)
            .values(&NewLease {
                tenant_id: tenant.as_str(),
                kind: CUSTOMER,
                token: fresh_token,
                holder,
                started_at: now,
                expires_at: lease_until,
            })
            .on_conflict_do_nothing()
            .execute(c)?;
        if fresh == 1 {
            return Ok(ClaimOutcome::Claimed(CustomerClaim {
                token: fresh_token.to_owned(),
                started_at: now,
                recovering: false,
            }));
        }
        let this = l::tenant_leases.find((tenant.as_str(), CUSTOMER));
        let taken_over =
            diesel::update(this.filter(l::expires_at.is_null().or(l::expires_at.le(now))))
                .set((l::expires_at.eq(lease_until), l::holder.eq(holder)))
                .execute(c)?;
        let lease: Lease = this.select(Lease::as_select()).first(c)?;
        Ok(if lease.token == fresh_token {
            ClaimOutcome::Claimed(CustomerClaim {
                token: lease.token,
                started_at: lease.started_at,
                recovering: false,
            })
        } else if taken_over == 1 {
            ClaimOutcome::Claimed(CustomerClaim {
                token: lease.token,
                started_at: lease.started_at,
                recovering: true,
            })
        } else {
            ClaimOutcome::Busy {
                lease_expires_at: lease.expires_at.unwrap_or(now),
            }
        })
    })
}

/// Ends the customer claim once the customer is linked (inside the linking
/// transaction).
pub(super) fn end_customer_claim(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<()> {
    use tenant_leases::dsl as l;
    diesel::delete(l::tenant_leases.find((tenant.as_str(), CUSTOMER))).execute(conn)?;
    Ok(())
}

/// Gives the customer lease up after a failed attempt, keeping the token:
/// the next caller takes over at once, recovers (the attempt may have
/// succeeded at Stripe) and reuses the same idempotency key.
pub fn release_customer_claim(
    conn: &mut DbConnection,
    tenant: &TenantId,
    token: &str,
) -> QueryResult<()> {
    use tenant_leases::dsl as l;
    diesel::update(
        l::tenant_leases
            .find((tenant.as_str(), CUSTOMER))
            .filter(l::token.eq(token)),
    )
    .set((
        l::expires_at.eq(None::<NaiveDateTime>),
        l::holder.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Gives up every creation lease `holder` still holds (a stopping instance,
/// once none of its tasks can touch them any more), keeping each claim's
/// token: a successor takes over at once as *recovering*, lists what Stripe
/// already has and otherwise replays the same idempotency key. Returns how
/// many leases were released.
pub fn release_customer_claims_held_by(
    conn: &mut DbConnection,
    holder: &str,
) -> QueryResult<usize> {
    use tenant_leases::dsl as l;
    diesel::update(l::tenant_leases.filter(l::kind.eq(CUSTOMER).and(l::holder.eq(holder))))
        .set((
            l::expires_at.eq(None::<NaiveDateTime>),
            l::holder.eq(None::<String>),
        ))
        .execute(conn)
}

/// What `acquire_subscription_lock` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired,
    /// Another writer holds an unexpired lease.
    Busy,
    /// The tenant has no row (so no subscription either).
    NoTenant,
}

/// Takes the tenant's subscription write lock with `token` until
/// `lease_until`, unless another writer holds an unexpired lease: a lapsed
/// lease is deleted and the insert races every other taker on the primary
/// key, which exactly one wins.
pub fn acquire_subscription_lock(
    conn: &mut DbConnection,
    tenant: &TenantId,
    token: &str,
    holder: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> QueryResult<LockOutcome> {
    use tenant_config::dsl as t;
    use tenant_leases::dsl as l;
    write_transaction!(conn, |c| {
        let this = l::tenant_leases.find((tenant.as_str(), SUBSCRIPTION));
        diesel::delete(this.filter(l::expires_at.is_null().or(l::expires_at.le(now))))
            .execute(c)?;
        let exists = t::tenant_config
            .find(tenant.as_str())
            .select(t::tenant_id)
            .first::<String>(c)
            .optional()?
            .is_some();
        if !exists {
            return Ok(LockOutcome::NoTenant);
        }
        let taken = diesel::insert_into(l::tenant_leases)
            .values(&NewLease {
                tenant_id: tenant.as_str(),
                kind: SUBSCRIPTION,
                token,
                holder,
                started_at: now,
                expires_at: lease_until,
            })
            .on_conflict_do_nothing()
            .execute(c)?;
        Ok(if taken == 1 {
            LockOutcome::Acquired
        } else {
            LockOutcome::Busy
        })
    })
}

/// The tenant's subscription write lock while someone holds it (a read:
/// waiters look before they write, so waiting costs no write).
pub fn live_subscription_lock(
    conn: &mut DbConnection,
    tenant: &TenantId,
    now: NaiveDateTime,
) -> QueryResult<Option<Lease>> {
    Ok(find(conn, tenant, SUBSCRIPTION)?
        .filter(|lease| lease.expires_at.is_some_and(|expires| expires > now)))
}

/// Gives the lock up if `token` still holds it (a holder whose lease lapsed
/// and was taken over releases nothing), and tells waiting instances.
pub fn release_subscription_lock(
    conn: &mut DbConnection,
    tenant: &TenantId,
    token: &str,
) -> QueryResult<()> {
    use tenant_leases::dsl as l;
    let released = diesel::delete(
        l::tenant_leases
            .find((tenant.as_str(), SUBSCRIPTION))
            .filter(l::token.eq(token)),
    )
    .execute(conn)?;
    if released == 1 {
        super::listen::notify(conn, super::listen::Notice::LockReleased, tenant)?;
    }
    Ok(())
}

/// Deletes every subscription write lock `holder` holds (a process found
/// dead) and tells waiting instances; returns the tenants freed.
pub fn release_subscription_locks_held_by(
    conn: &mut DbConnection,
    holder: &str,
) -> QueryResult<Vec<String>> {
    use tenant_leases::dsl as l;
    let held = l::tenant_leases.filter(l::kind.eq(SUBSCRIPTION).and(l::holder.eq(holder)));
    let tenants: Vec<String> = held.select(l::tenant_id).load(conn)?;
    diesel::delete(l::tenant_leases.filter(l::kind.eq(SUBSCRIPTION).and(l::holder.eq(holder))))
        .execute(conn)?;
    for tenant in &tenants {
        if let Ok(tenant) = TenantId::parse(tenant) {
            super::listen::notify(conn, super::listen::Notice::LockReleased, &tenant)?;
        }
    }
    Ok(tenants)
}
