//! `[server]`: the listener and actix's worker pools.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind_addr: String,
    pub workers: usize,
    pub max_blocking_threads_per_worker: usize,
    pub max_body_bytes: usize,
    /// After SIGTERM, how long in-flight requests (and running jobs) may take
    /// before they are cut off (answered 503, never reset).
    #[serde(default = "default_shutdown_timeout_seconds")]
    pub shutdown_timeout_seconds: u64,
}

fn default_shutdown_timeout_seconds() -> u64 {
    30
}

impl ServerSettings {
    pub fn shutdown_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_timeout_seconds)
    }
}
