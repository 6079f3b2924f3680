//! The billing service: everything a route asks of billing goes through here.
//! It owns the order of operations between the database and Stripe.

mod state;

pub use state::BillingState;

use crate::db::{self, DbError, DbPool};
use crate::domain::TenantId;

/// Shared, cheap-to-clone handle on the billing service.
#[derive(Clone)]
pub struct Billing {
    pool: DbPool,
}

impl Billing {
    pub fn new(pool: DbPool) -> Billing {
        Billing { pool }
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// The tenant's billing state; a tenant without a row is on the free plan.
    pub async fn state(&self, tenant: &TenantId) -> Result<BillingState, DbError> {
        let key = tenant.clone();
        let record =
            db::interact(&self.pool, move |conn| Ok(db::tenants::find(conn, &key)?)).await?;
        Ok(match record {
            Some(record) => BillingState::from(record),
            None => BillingState::free(tenant),
        })
    }
}
