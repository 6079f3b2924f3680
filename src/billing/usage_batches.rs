//! Usage metering's hot paths, batched (`db::batched`).
//!
//! Why: a single event is a transaction of about seven statements, and a
//! read two queries; on a small machine under load the round trips and the
//! hand-offs to blocking threads, not the work, were most of the cost
//! (2,200 single events/s, reads at a fifth of the cached billing read).
//! Here concurrent single events are recorded together, one transaction per
//! tenant in arrival order (group commit: the same admission rule as a batch
//! of events, see db/usage.rs), and concurrent reads are answered with two
//! queries per batch. Nothing waits for a batch to fill; an idle service
//! serves each request alone, exactly as before.

use std::collections::HashMap;

use chrono::Utc;

use super::usage::{to_micros, MeterUsage, Metering, Recorded};
use crate::db::batched::{Answer, Batched};
use crate::db::usage::UsageInput;
use crate::db::{DbError, DbPool};
use crate::domain::TenantId;

/// Single events per batch: a few transactions' worth.
const MAX_EVENTS: usize = 256;
/// Tenants per batched read.
const MAX_READS: usize = 64;

pub(super) struct UsageBatches {
    pub(super) metering: Metering,
    writes: Batched<(TenantId, UsageInput), Recorded>,
    reads: Batched<TenantId, Vec<MeterUsage>>,
}

impl UsageBatches {
    /// At most `max_drainers` connections for writes, and half as many for
    /// reads (fewer drainers make bigger batches: two queries each).
    pub(super) fn new(metering: Metering, max_drainers: usize) -> UsageBatches {
        let recorder = metering.clone();
        let reader = metering.clone();
        UsageBatches {
            metering,
            writes: Batched::new(max_drainers, MAX_EVENTS, move |conn, events| {
                Ok(record_each_tenant(&recorder, conn, events))
            }),
            reads: Batched::new(max_drainers / 2, MAX_READS, move |conn, tenants| {
                let now = Utc::now().naive_utc();
                Ok(reader
                    .read(conn, tenants, now)?
                    .into_iter()
                    .map(Ok)
                    .collect())
            }),
        }
    }

    /// Records one event with whatever other single events are waiting.
    pub(super) async fn record(
        &self,
        pool: &DbPool,
        tenant: &TenantId,
        input: UsageInput,
    ) -> Result<Recorded, DbError> {
        self.writes.run(pool, (tenant.clone(), input)).await
    }

    /// One tenant's usage, read with whatever other reads are waiting.
    pub(super) async fn read(
        &self,
        pool: &DbPool,
        tenant: &TenantId,
    ) -> Result<Vec<MeterUsage>, DbError> {
        self.reads.run(pool, tenant.clone()).await
    }
}

/// One transaction per tenant, each tenant's events in arrival order. A
/// tenant's failure is its own events' answer; the others' transactions
/// stand (so nothing is put back to run twice).
fn record_each_tenant(
    metering: &Metering,
    conn: &mut crate::db::DbConnection,
    events: &[(TenantId, UsageInput)],
) -> Vec<Answer<Recorded>> {
    let now = to_micros(Utc::now().naive_utc());
    let mut groups: Vec<(&TenantId, Vec<usize>)> = Vec::new();
    let mut group_of: HashMap<&TenantId, usize> = HashMap::new();
    for (index, (tenant, _)) in events.iter().enumerate() {
        let group = *group_of.entry(tenant).or_insert_with(|| {
            groups.push((tenant, Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push(index);
    }
    let mut answers: Vec<Option<Answer<Recorded>>> = (0..events.len()).map(|_| None).collect();
    for (tenant, indices) in groups {
        let inputs: Vec<UsageInput> = indices.iter().map(|&i| events[i].1.clone()).collect();
        match metering.record(conn, tenant, now, &inputs) {
            Ok(recorded) => {
                for (&i, outcome) in indices.iter().zip(recorded) {
                    answers[i] = Some(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, tenant = %tenant, events = indices.len(), "recording usage failed");
                for &i in &indices {
                    answers[i] = Some(Err(error.for_another_waiter()));
                }
            }
        }
    }
    answers
        .into_iter()
        .map(|answer| answer.unwrap_or(Err(DbError::Aborted)))
        .collect()
}
