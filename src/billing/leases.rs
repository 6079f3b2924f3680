//! What a stopping instance gives back. Leases exist so that a *crashed*
//! holder's work is taken over eventually; an instance that stops on purpose
//! (SIGTERM) hands its leases back instead, so nobody waits for them to lapse.

use chrono::Utc;

use super::Billing;
use crate::db::{self, jobs, leases, DbError};

/// How many leases a stopping instance handed back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    pub customer_claims: usize,
    pub jobs: usize,
}

impl Billing {
    /// Releases every creation lease and job lease this instance holds.
    ///
    /// Call it only once no task of this process can still act on them (the
    /// server stopped, the workers finished or were dropped, the pool
    /// quiesced): a claim keeps its token, so its successor recovers what an
    /// interrupted Stripe create may have done (listing, then replaying the
    /// same idempotency key), and a job is queued again, due now.
    pub async fn release_held_leases(&self) -> Result<Released, DbError> {
        let instance = self.instance.clone();
        db::interact(&self.pool, move |conn| {
            let now = Utc::now().naive_utc();
            Ok(Released {
                customer_claims: leases::release_customer_claims_held_by(conn, &instance)?,
                jobs: jobs::release_held_by(conn, &instance, now)?,
            })
        })
        .await
    }
}
