//! Seat changes waiting to reach Stripe: the newest wanted count of a tenant,
//! under a rising sequence number (`seat_requests`, one row per tenant).
//!
//! A burst of seat changes (an import adds 40 members) should not become 40
//! Stripe writes in a row. Each call records what it wants here before it
//! queues for the subscription write lock; the lock holder sends only the
//! newest wanted count and marks every call up to that number as carried,
//! so the calls queued behind it answer without a Stripe call. The count is
//! absolute, so carrying the newest one ends where running every call in
//! number order would have ended.

use diesel::prelude::*;

use super::schema::seat_requests;
use super::subscriptions::{self, Observation, StoreOutcome, SubscriptionSnapshot};
use super::DbConnection;
use crate::domain::TenantId;

/// A call's place in the tenant's order of seat changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeatSeq(pub i64);

/// The newest wanted count and the calls carried to Stripe so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatQueue {
    pub wanted: i32,
    pub newest: SeatSeq,
    pub carried: SeatSeq,
}

/// Records that a call wants `quantity` seats; answers its number. One
/// upsert in a write transaction, so no two calls get the same number.
pub fn enqueue(conn: &mut DbConnection, tenant: &TenantId, quantity: i32) -> QueryResult<SeatSeq> {
    use seat_requests::dsl as s;
    write_transaction!(conn, |c| {
        diesel::insert_into(s::seat_requests)
            .values((
                s::tenant_id.eq(tenant.as_str()),
                s::wanted.eq(quantity),
                s::request_seq.eq(1_i64),
                s::carried_seq.eq(0_i64),
            ))
            .on_conflict(s::tenant_id)
            .do_update()
            .set((
                s::wanted.eq(quantity),
                s::request_seq.eq(s::request_seq + 1),
            ))
            .execute(c)?;
        s::seat_requests
            .find(tenant.as_str())
            .select(s::request_seq)
            .first(c)
            .map(SeatSeq)
    })
}

/// The tenant's queue as stored now (`None`: it never changed its seats).
pub fn queue(conn: &mut DbConnection, tenant: &TenantId) -> QueryResult<Option<SeatQueue>> {
    use seat_requests::dsl as s;
    let row: Option<(i32, i64, i64)> = s::seat_requests
        .find(tenant.as_str())
        .select((s::wanted, s::request_seq, s::carried_seq))
        .first(conn)
        .optional()?;
    Ok(row.map(|(wanted, newest, carried)| SeatQueue {
        wanted,
        newest: SeatSeq(newest),
        carried: SeatSeq(carried),
    }))
}

/// Whether the call numbered `seq` has been carried to Stripe.
pub fn is_carried(conn: &mut DbConnection, tenant: &TenantId, seq: SeatSeq) -> QueryResult<bool> {
    Ok(queue(conn, tenant)?.is_some_and(|q| q.carried >= seq))
}

/// Marks every call up to `seq` as carried (never moves backwards).
pub fn mark_carried(conn: &mut DbConnection, tenant: &TenantId, seq: SeatSeq) -> QueryResult<()> {
    use seat_requests::dsl as s;
    diesel::update(
        s::seat_requests
            .find(tenant.as_str())
            .filter(s::carried_seq.lt(seq.0)),
    )
    .set(s::carried_seq.eq(seq.0))
    .execute(conn)?;
    Ok(())
}

/// Stores Stripe's answer to the write that carried the calls up to `seq`
/// (as `subscriptions::store_latest` does) and marks them carried, in one
/// transaction: a call is never marked carried without the state that
/// carried it.
pub fn store_carried(
    conn: &mut DbConnection,
    tenant: &TenantId,
    snapshot: &SubscriptionSnapshot,
    observation: &Observation<'_>,
    seq: SeatSeq,
) -> QueryResult<StoreOutcome> {
    conn.transaction(|c| {
        let stored = subscriptions::store_latest(c, tenant, snapshot, observation)?;
        mark_carried(c, tenant, seq)?;
        Ok(stored)
    })
}
