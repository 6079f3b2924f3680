//! Cache misses of the display read, batched (`db::batched`).
//!
//! Why: a miss used to cost a hand-off to a blocking thread and back plus a
//! database round trip, per request. On a small machine under load those
//! context switches, not the query, were most of the cost. Concurrent misses
//! are read in one query, each waiter answered with its own tenant's row.
//!
//! Only `Billing::state` (display) uses it; decisions read through `read_row`.

use std::collections::HashMap;

use crate::db::batched::Batched;
use crate::db::tenants::{self, TenantRecord};
use crate::db::{DbError, DbPool};
use crate::domain::TenantId;

/// Rows per query.
const MAX_BATCH: usize = 64;

pub struct StateReader {
    batches: Batched<TenantId, Option<TenantRecord>>,
}

impl StateReader {
    /// At most `max_drainers` connections serve display misses at once.
    pub fn new(max_drainers: usize) -> StateReader {
        StateReader {
            batches: Batched::new(max_drainers, MAX_BATCH, |conn, tenants: &[TenantId]| {
                let ids: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
                // Several waiters may ask for the same tenant.
                let rows: HashMap<String, TenantRecord> = tenants::find_many(conn, &ids)?
                    .into_iter()
                    .map(|row| (row.tenant_id.clone(), row))
                    .collect();
                Ok(tenants
                    .iter()
                    .map(|tenant| Ok(rows.get(tenant.as_str()).cloned()))
                    .collect())
            }),
        }
    }

    /// The tenant's row, read in a batch with whatever else is waiting.
    pub async fn read(
        &self,
        pool: &DbPool,
        tenant: &TenantId,
    ) -> Result<Option<TenantRecord>, DbError> {
        self.batches.run(pool, tenant.clone()).await
    }
}
