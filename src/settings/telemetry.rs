//! `[telemetry]`: log format and filter.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}
