//! Stripe allows one concurrent `POST /v1/billing/meter_events` call per customer
//! and meter. While one runs (from its arrival until its answer is written,
//! simulated latency and `delay_ms` faults included), a second one for the same
//! customer and meter is answered 429 `rate_limit` without being processed.

use std::collections::HashSet;

use parking_lot::Mutex;
use serde_json::Value;

use crate::error::ApiError;
use crate::routes::Endpoint;
use crate::state::Shared;

/// The (event name, customer) pairs with a meter-event call in flight.
#[derive(Debug, Default)]
pub(crate) struct MeterGate {
    busy: Mutex<HashSet<(String, String)>>,
}

/// Held while a meter-event call runs; frees its customer and meter when dropped.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    gate: &'a MeterGate,
    key: (String, String),
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.gate.busy.lock().remove(&self.key);
    }
}

impl MeterGate {
    /// Requests in flight now (for tests and statistics).
    pub(crate) fn in_flight(&self) -> usize {
        self.busy.lock().len()
    }
}

/// Admits a request: a meter-event call gets the pass for its customer and meter,
/// or the 429 Stripe answers while another call for them runs. Other requests (and
/// meter events naming no customer, which the store refuses) pass freely.
pub(crate) fn admit<'a>(
    shared: &'a Shared,
    ep: Endpoint,
    params: &Value,
) -> Result<Option<Pass<'a>>, ApiError> {
    if ep != Endpoint::MeterEventCreate {
        return Ok(None);
    }
    let Some(key) = shared.store.lock().meter_event_customer(params) else {
        return Ok(None);
    };
    let gate = &shared.meter_gate;
    if !gate.busy.lock().insert(key.clone()) {
        return Err(ApiError {
            message: format!(
                "Another meter event for customer {} and meter event `{}` is still being \
                 processed: Stripe accepts one concurrent call per customer per meter. \
                 Retry with backoff.",
                key.1, key.0
            ),
            ..ApiError::rate_limited()
        });
    }
    Ok(Some(Pass { gate, key }))
}
