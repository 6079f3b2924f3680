//! Billing Meters in the `2026-09-30.endive` shape: meters, the meter events they
//! aggregate, event adjustments (cancellations) and event summaries, plus the
//! `recurring.meter` / `usage_type` of a metered price.

use serde_json::{json, Value};

/// Fields of a new meter, already validated.
pub(crate) struct MeterFields {
    pub display_name: String,
    pub event_name: String,
    /// `sum`, `count` or `last`.
    pub formula: String,
    /// The payload key naming the customer (`stripe_customer_id` by default).
    pub customer_key: String,
    /// The payload key carrying the value (`value` by default).
    pub value_key: String,
    /// `day` or `hour` for pre-aggregated events.
    pub event_time_window: Option<String>,
}

pub(crate) fn meter(id: &str, created: i64, f: MeterFields) -> Value {
    json!({
        "id": id,
        "object": "billing.meter",
        "created": created,
        "customer_mapping": { "event_payload_key": f.customer_key, "type": "by_id" },
        "default_aggregation": { "formula": f.formula },
        "display_name": f.display_name,
        "event_name": f.event_name,
        "event_time_window": f.event_time_window,
        "livemode": false,
        "status": "active",
        "status_transitions": { "deactivated_at": null },
        "updated": created,
        "value_settings": { "event_payload_key": f.value_key }
    })
}

/// What `POST /v1/billing/meter_events` answers.
pub(crate) fn meter_event(
    created: i64,
    event_name: &str,
    identifier: &str,
    payload: Value,
    timestamp: i64,
) -> Value {
    json!({
        "object": "billing.meter_event",
        "created": created,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": false,
        "payload": payload,
        "timestamp": timestamp
    })
}

/// What `POST /v1/billing/meter_event_adjustments` answers (a cancellation).
pub(crate) fn meter_event_adjustment(event_name: &str, identifier: &str, status: &str) -> Value {
    json!({
        "object": "billing.meter_event_adjustment",
        "cancel": { "identifier": identifier },
        "event_name": event_name,
        "livemode": false,
        "status": status,
        "type": "cancel"
    })
}

/// One summary of a customer's events on a meter over `[start, end)`.
pub(crate) fn event_summary(id: &str, meter: &str, start: i64, end: i64, value: f64) -> Value {
    json!({
        "id": id,
        "object": "billing.meter_event_summary",
        "aggregated_value": value,
        "end_time": end,
        "livemode": false,
        "meter": meter,
        "start_time": start
    })
}

/// Turns a recurring price into a metered one billed through `meter`.
pub(crate) fn set_metered(price: &mut Value, meter: &str) {
    price["recurring"]["usage_type"] = json!("metered");
    price["recurring"]["meter"] = json!(meter);
}

/// Whether a price (or a subscription item's price) is billed in arrears from a meter.
pub(crate) fn is_metered(price: &Value) -> bool {
    price["recurring"]["usage_type"] == "metered"
}
