//! Retention (README, Operating it): finished jobs after `jobs.retain_finished_days`,
//! webhook ledger rows after `webhooks.retain_days` (never below Stripe's
//! 3-day redelivery window, enforced by the settings). The first job worker
//! of each instance runs it when idle, every `jobs.retention_interval_seconds`,
//! in small batches, so neither table grows without bound and no delete
//! holds a lock for long. Instances may overlap: deleting is idempotent.

use chrono::{Duration, Utc};

use super::Billing;
use crate::db::{self, events, jobs, DbError};

/// Rows per delete statement.
pub const RETENTION_BATCH: i64 = 500;

/// How many rows one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub jobs: usize,
    pub webhook_events: usize,
}

impl Billing {
    /// Deletes everything retention allows, batch by batch.
    pub async fn apply_retention(&self) -> Result<Swept, DbError> {
        let now = Utc::now().naive_utc();
        let days = |d: u64| Duration::days(i64::try_from(d).unwrap_or(i64::MAX / 86_400_000));
        let jobs_cutoff = now - days(self.settings.jobs.retain_finished_days);
        let events_cutoff = now - days(self.settings.webhooks.retain_days);
        let mut swept = Swept::default();
        loop {
            let deleted = db::interact(&self.pool, move |conn| {
                Ok(jobs::delete_finished_before(
                    conn,
                    jobs_cutoff,
                    RETENTION_BATCH,
                )?)
            })
            .await?;
            swept.jobs += deleted;
            if (deleted as i64) < RETENTION_BATCH {
                break;
            }
        }
        loop {
            let deleted = db::interact(&self.pool, move |conn| {
                Ok(events::delete_received_before(
                    conn,
                    events_cutoff,
                    RETENTION_BATCH,
                )?)
            })
            .await?;
            swept.webhook_events += deleted;
            if (deleted as i64) < RETENTION_BATCH {
                break;
            }
        }
        if swept != Swept::default() {
            tracing::info!(
                jobs = swept.jobs,
                webhook_events = swept.webhook_events,
                "retention: deleted expired rows"
            );
        }
        Ok(swept)
    }
}
