//! Retention (README, Operating it): finished jobs after
//! `jobs.retain_finished_days`, webhook ledger rows after
//! `webhooks.retain_days` (never below Stripe's 3-day redelivery window,
//! enforced by the settings), usage ledger rows after `usage.retain_days`
//! (never below the 35 days an event may be dated back). The first job worker
//! of each instance runs it when idle, every `jobs.retention_interval_seconds`,
//! in small batches, so no table grows without bound and no delete
//! holds a lock for long. Instances may overlap: deleting is idempotent.

use chrono::{Duration, NaiveDateTime, Utc};

use super::Billing;
use crate::db::{self, events, jobs, usage, DbConnection, DbError};

/// Rows per delete statement.
pub const RETENTION_BATCH: i64 = 500;

/// How many rows one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub jobs: usize,
    pub webhook_events: usize,
    pub usage_events: usize,
}

impl Billing {
    /// Deletes everything retention allows, batch by batch.
    pub async fn apply_retention(&self) -> Result<Swept, DbError> {
        let now = Utc::now().naive_utc();
        let days = |d: u64| Duration::days(i64::try_from(d).unwrap_or(i64::MAX / 86_400_000));
        let jobs_cutoff = now - days(self.settings.jobs.retain_finished_days);
        let events_cutoff = now - days(self.settings.webhooks.retain_days);
        let usage_cutoff = now - days(self.settings.usage.retain_days);
        let swept = Swept {
            jobs: self
                .delete_in_batches(jobs::delete_finished_before, jobs_cutoff)
                .await?,
            webhook_events: self
                .delete_in_batches(events::delete_received_before, events_cutoff)
                .await?,
            usage_events: self
                .delete_in_batches(usage::delete_recorded_before, usage_cutoff)
                .await?,
        };
        if swept != Swept::default() {
            tracing::info!(
                jobs = swept.jobs,
                webhook_events = swept.webhook_events,
                usage_events = swept.usage_events,
                "retention: deleted expired rows"
            );
        }
        Ok(swept)
    }

    /// Runs `delete` (rows before `cutoff`, at most a batch) until a batch
    /// comes back short; returns how many rows went.
    async fn delete_in_batches<E>(
        &self,
        delete: fn(&mut DbConnection, NaiveDateTime, i64) -> Result<usize, E>,
        cutoff: NaiveDateTime,
    ) -> Result<usize, DbError>
    where
        E: Into<DbError> + 'static,
    {
        let mut total = 0;
        loop {
            let deleted = db::interact(&self.pool, move |conn| {
                delete(conn, cutoff, RETENTION_BATCH).map_err(Into::into)
            })
            .await?;
            total += deleted;
            if (deleted as i64) < RETENTION_BATCH {
                return Ok(total);
            }
        }
    }
}
