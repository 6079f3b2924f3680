//! The database side of the shared Stripe budget (`stripe::Budget`): slots
//! are booked in the `stripe_budget` row (`db::stripe_budget`), so every
//! instance and command on this database draws on one budget.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::db::stripe_budget::{self, BookingRequest};
use crate::db::{self, DbPool};
use crate::domain::{Booking, SlotAsk, SlotClock};
use crate::settings::StripeSettings;
use crate::stripe::{Budget, SlotSource, SourceFuture};

/// Books slots in the database.
struct DatabaseSlots {
    pool: DbPool,
    account: &'static str,
    clock: SlotClock,
}

impl SlotSource for DatabaseSlots {
    fn book(&self, ask: SlotAsk) -> SourceFuture<'_, Booking> {
        let (account, clock) = (self.account, self.clock);
        Box::pin(async move {
            db::interact(&self.pool, move |conn| {
                Ok(stripe_budget::book(
                    conn,
                    &BookingRequest {
                        account,
                        clock,
                        ask,
                        now: Utc::now().naive_utc(),
                    },
                )?)
            })
            .await
            .map_err(|error| error.to_string())
        })
    }

    fn pause(&self, from: i64, slots: i64) -> SourceFuture<'_, ()> {
        let (account, clock) = (self.account, self.clock);
        Box::pin(async move {
            db::interact(&self.pool, move |conn| {
                let now = Utc::now().naive_utc();
                Ok(stripe_budget::pause(
                    conn, account, clock, from, slots, now,
                )?)
            })
            .await
            .map_err(|error| error.to_string())
        })
    }
}

/// This process's share of the account's budget, booked in `pool`.
pub(super) fn shared_budget(pool: &DbPool, settings: &StripeSettings) -> Arc<Budget> {
    let per_second = settings.requests_per_second();
    let source = DatabaseSlots {
        pool: pool.clone(),
        account: settings.mode(),
        clock: SlotClock::new(per_second),
    };
    Arc::new(Budget::new(
        per_second,
        Arc::new(source),
        settings.budget_wait().max(Duration::from_millis(1)),
    ))
}
