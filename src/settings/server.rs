//! `[server]`: the listener and actix's worker pools.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind_addr: String,
    pub workers: usize,
    pub max_blocking_threads_per_worker: usize,
    pub max_body_bytes: usize,
}
