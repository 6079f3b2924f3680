//! `stripe_budget`: the one Stripe request budget of every process sharing
//! this database, as a timeline of send slots (`domain::SlotClock`). A
//! process books the next free slots in one short write transaction and
//! sends at their times; it books several at once when several callers
//! wait, so a busy process writes here once per batch, not once per call.
//!
//! Priorities across processes: interactive callers book after whatever is
//! booked (they queue); background work books only slots that nobody has
//! booked ahead of now, so it takes what interactive work leaves and never
//! makes an interactive caller wait more than one background batch.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::stripe_budget::dsl as b;
use super::DbConnection;
use crate::domain::{Booking, SlotAsk, SlotClock};

/// One booking request.
#[derive(Debug, Clone, Copy)]
pub struct BookingRequest<'a> {
    /// `live` or `test`: Stripe's limits are per account and mode.
    pub account: &'a str,
    pub clock: SlotClock,
    pub ask: SlotAsk,
    pub now: NaiveDateTime,
}

/// The row's next free slot in `$clock`'s units, the row created (starting
/// at `$fresh`) if missing and locked for the rest of the transaction.
macro_rules! locked_next {
    ($c:ident, $account:expr, $clock:expr, $fresh:expr, $now:expr) => {{
        diesel::insert_into(b::stripe_budget)
            .values((
                b::account.eq($account),
                b::per_second.eq(i32::try_from($clock.per_second()).unwrap_or(i32::MAX)),
                b::next_slot.eq($fresh),
                b::updated_at.eq($now),
            ))
            .on_conflict_do_nothing()
            .execute($c)?;
        // A no-op write: the row is locked until commit (PostgreSQL; SQLite's
        // BEGIN IMMEDIATE holds the whole database).
        diesel::update(b::stripe_budget.find($account))
            .set(b::updated_at.eq(b::updated_at))
            .execute($c)?;
        let (per_second, next): (i32, i64) = b::stripe_budget
            .find($account)
            .select((b::per_second, b::next_slot))
            .first($c)?;
        let stored = SlotClock::new(u32::try_from(per_second).unwrap_or(1));
        if stored == $clock {
            next
        } else {
            // Another process runs with another budget: the last to book
            // sets it (its slots start where the other's booked ones end).
            tracing::warn!(
                stored = stored.per_second(),
                configured = $clock.per_second(),
                "stripe.max_requests_per_second differs between processes sharing this database"
            );
            $clock.convert(next, stored)
        }
    }};
}

macro_rules! store_next {
    ($c:ident, $account:expr, $clock:expr, $next:expr, $now:expr) => {
        diesel::update(b::stripe_budget.find($account))
            .set((
                b::per_second.eq(i32::try_from($clock.per_second()).unwrap_or(i32::MAX)),
                b::next_slot.eq($next),
                b::updated_at.eq($now),
            ))
            .execute($c)
    };
}

/// Books up to `want` consecutive slots.
pub fn book(conn: &mut DbConnection, request: &BookingRequest<'_>) -> QueryResult<Booking> {
    let BookingRequest {
        account,
        clock,
        ask:
            SlotAsk {
                earliest,
                want,
                background,
                max_ahead,
            },
        now,
    } = *request;
    write_transaction!(conn, |c| {
        let next = locked_next!(c, account, clock, earliest, now);
        let first = next.max(earliest);
        if background && next > earliest {
            return Ok(Booking::Busy { free_at: next });
        }
        if !background && first > earliest + max_ahead {
            return Ok(Booking::TooFar { free_at: first });
        }
        let count = want.max(1);
        store_next!(c, account, clock, first + i64::from(count), now)?;
        Ok(Booking::Granted { first, count })
    })
}

/// Stripe answered 429: nobody sends for `slots` slots from `from` on (the
/// budget is above what the account allows, or another application shares
/// the account).
pub fn pause(
    conn: &mut DbConnection,
    account: &str,
    clock: SlotClock,
    from: i64,
    slots: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    write_transaction!(conn, |c| {
        let next = locked_next!(c, account, clock, from, now);
        store_next!(c, account, clock, next.max(from) + slots, now)?;
        Ok(())
    })
}
