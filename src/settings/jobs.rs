//! `[jobs]`: the outbox workers.

use serde::Deserialize;

/// The outbox workers (`[jobs]`): how many, how often they look for work,
/// and how long a failing job is retried before it is parked as dead.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobsSettings {
    /// Run workers in `serve`. Off for tests that must see jobs stay queued.
    pub enabled: bool,
    /// Concurrent workers per instance.
    pub workers: usize,
    /// How often an idle worker looks for due jobs (enqueues in this
    /// instance wake a worker at once; this bounds the latency for others).
    pub poll_interval_ms: u64,
    /// A claimed job's lease; renewed while it runs, so it only lapses when
    /// its worker died.
    pub lease_seconds: u64,
    /// Backoff after the first failure; doubles per attempt up to the cap.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// A job still failing this long after it was queued is parked as dead.
    pub retry_horizon_seconds: u64,
    /// Succeeded jobs are deleted this many days after they finished (dead
    /// jobs stay until an operator re-drives them).
    pub retain_finished_days: u64,
    /// How often an idle worker deletes what retention allows, in small batches.
    pub retention_interval_seconds: u64,
}

impl Default for JobsSettings {
    fn default() -> Self {
        JobsSettings {
            enabled: true,
            workers: 2,
            poll_interval_ms: 1000,
            lease_seconds: 30,
            retry_base_ms: 1000,
            retry_max_ms: 300_000,
            retry_horizon_seconds: 3 * 24 * 3600,
            retain_finished_days: 7,
            retention_interval_seconds: 300,
        }
    }
}
