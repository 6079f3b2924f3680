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

/// Makes a metered price tiered: `tiers` is `[(up_to, unit_amount, flat_amount)]`,
/// the last one's `up_to` `None` (`inf`); `mode` is `graduated` or `volume`.
pub(crate) fn set_tiers(price: &mut Value, mode: &str, tiers: &[(Option<i64>, i64, i64)]) {
    let tiers: Vec<Value> = tiers
        .iter()
        .map(|(up_to, unit, flat)| {
            json!({
                "flat_amount": flat,
                "flat_amount_decimal": flat.to_string(),
                "unit_amount": unit,
                "unit_amount_decimal": unit.to_string(),
                "up_to": up_to
            })
        })
        .collect();
    price["billing_scheme"] = json!("tiered");
    price["tiers_mode"] = json!(mode);
    price["tiers"] = Value::Array(tiers);
    price["unit_amount"] = Value::Null;
    price["unit_amount_decimal"] = Value::Null;
}

/// What `quantity` units of a price cost: per unit, or through its tiers
/// (`graduated`: each tier prices the units that fall in it, plus its flat
/// amount once reached; `volume`: the tier holding the total prices every unit).
pub(crate) fn amount_for(price: &Value, quantity: u64) -> i64 {
    let quantity = i64::try_from(quantity).unwrap_or(i64::MAX);
    let Some(tiers) = price["tiers"]
        .as_array()
        .filter(|_| price["billing_scheme"] == "tiered")
    else {
        return price["unit_amount"]
            .as_i64()
            .unwrap_or(0)
            .saturating_mul(quantity);
    };
    let tier = |t: &Value| {
        (
            t["up_to"].as_i64(),
            t["unit_amount"].as_i64().unwrap_or(0),
            t["flat_amount"].as_i64().unwrap_or(0),
        )
    };
    if price["tiers_mode"] == "volume" {
        let (_, unit, flat) = tiers
            .iter()
            .map(tier)
            .find(|(up_to, _, _)| up_to.is_none_or(|u| quantity <= u))
            .unwrap_or((None, 0, 0));
        return if quantity == 0 {
            0
        } else {
            unit * quantity + flat
        };
    }
    let mut total = 0;
    let mut below = 0;
    for (up_to, unit, flat) in tiers.iter().map(tier) {
        if quantity <= below {
            break;
        }
        let top = up_to.unwrap_or(i64::MAX).min(quantity);
        total += unit * (top - below) + flat;
        below = top;
    }
    total
}

/// Whether a price (or a subscription item's price) is billed in arrears from a meter.
pub(crate) fn is_metered(price: &Value) -> bool {
    price["recurring"]["usage_type"] == "metered"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiered_amounts() {
        let mut price = json!({"unit_amount": 2, "billing_scheme": "per_unit"});
        assert_eq!(amount_for(&price, 1500), 3000);
        set_tiers(&mut price, "graduated", &[(Some(1000), 0, 0), (None, 2, 0)]);
        assert_eq!(amount_for(&price, 999), 0);
        assert_eq!(amount_for(&price, 1500), 1000);
        set_tiers(
            &mut price,
            "graduated",
            &[(Some(10), 5, 100), (Some(20), 4, 0), (None, 1, 50)],
        );
        assert_eq!(amount_for(&price, 0), 0);
        assert_eq!(amount_for(&price, 10), 150);
        assert_eq!(amount_for(&price, 25), 150 + 40 + 5 + 50);
        set_tiers(&mut price, "volume", &[(Some(100), 5, 0), (None, 3, 100)]);
        assert_eq!(amount_for(&price, 100), 500);
        assert_eq!(amount_for(&price, 150), 550);
        assert_eq!(amount_for(&price, 0), 0);
    }
}
