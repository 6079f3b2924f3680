//! Billing Meters: meters (create, retrieve, list, update, deactivate, reactivate),
//! meter events (`POST /v1/billing/meter_events`), their cancellation
//! (`POST /v1/billing/meter_event_adjustments`) and event summaries
//! (`GET /v1/billing/meters/{id}/event_summaries`).
//!
//! Stripe's rules, against simulator time:
//! - an `identifier` is unique for 24 hours: a second event with it is refused
//!   (400, "An event already exists with identifier …", `Stripe-Should-Retry: false`)
//!   and counts nothing; after 24 hours it is forgotten;
//! - `timestamp` within the past 35 days and at most 5 minutes ahead;
//! - an event is cancelled only within 24 hours of its creation;
//! - values are whole numbers (negative ones too); a meter aggregates `sum`,
//!   `count` or `last` over the events whose timestamp falls in a window, and a
//!   meter with an `event_time_window` keeps only the last event of each hour or day.
//!
//! Stripe checks the meter, the customer and the value asynchronously and reports
//! mistakes in `v1.billing.meter.error_report_triggered`; the simulator answers 400
//! at once instead, so a test sees the mistake where it was made. The one concurrent
//! call per customer and meter is enforced before the store (see `meter_gate`).

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Map, Value};

use super::{paginate, Ctx, Store};
use crate::config::MeteredPriceSeed;
use crate::error::ApiError;
use crate::form::Params;
use crate::{ids, objects};

/// How long an identifier stays unique (and an event cancellable).
pub(crate) const DEDUP_WINDOW_S: i64 = 24 * 3600;
/// How far back an event's timestamp may lie.
pub(crate) const PAST_LIMIT_S: i64 = 35 * 86_400;
/// How far ahead an event's timestamp may lie (clock drift).
pub(crate) const FUTURE_LIMIT_S: i64 = 5 * 60;
/// Longest `identifier` and `event_name`.
const MAX_NAME: usize = 100;
const FORMULAS: [&str; 3] = ["sum", "count", "last"];

/// One accepted meter event.
#[derive(Debug, Clone)]
struct Recorded {
    timestamp: i64,
    value: i64,
    /// Arrival order (breaks ties between equal timestamps for `last`).
    seq: u64,
    canceled: bool,
}

/// Where an identifier's event is, while the identifier is remembered.
#[derive(Debug, Clone)]
struct Seen {
    created: i64,
    event_name: String,
    customer: String,
    index: usize,
}

/// Every accepted meter event, by event name and customer.
#[derive(Debug, Default)]
pub(crate) struct MeterEvents {
    streams: HashMap<(String, String), Vec<Recorded>>,
    /// Identifiers of the last 24 hours.
    seen: HashMap<String, Seen>,
    /// The same identifiers, oldest first, to forget them on time.
    seen_order: VecDeque<(i64, String)>,
    next_seq: u64,
}

impl MeterEvents {
    /// Forgets identifiers older than the dedup window.
    fn expire(&mut self, now: i64) {
        while let Some((created, _)) = self.seen_order.front() {
            if created + DEDUP_WINDOW_S > now {
                break;
            }
            let (created, id) = self.seen_order.pop_front().expect("front exists");
            if self.seen.get(&id).is_some_and(|s| s.created == created) {
                self.seen.remove(&id);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.streams.values().map(Vec::len).sum()
    }

    /// The aggregate of `customer`'s events named `event_name` with a timestamp in
    /// `[start, end)`, per the meter's formula and event time window.
    pub(crate) fn aggregate(
        &self,
        meter: &Value,
        customer: &str,
        start: i64,
        end: i64,
    ) -> Option<f64> {
        let event_name = meter["event_name"].as_str()?;
        let events = self
            .streams
            .get(&(event_name.to_string(), customer.to_string()))?;
        let live = events
            .iter()
            .filter(|e| !e.canceled && e.timestamp >= start && e.timestamp < end);
        // Pre-aggregated meters: only the last event of each hour or day counts.
        let bucket = match meter["event_time_window"].as_str() {
            Some("hour") => Some(3600),
            Some("day") => Some(86_400),
            _ => None,
        };
        let kept: Vec<&Recorded> = match bucket {
            None => live.collect(),
            Some(size) => {
                let mut last: HashMap<i64, &Recorded> = HashMap::new();
                for e in live {
                    let slot = last.entry(e.timestamp.div_euclid(size)).or_insert(e);
                    if e.seq > slot.seq {
                        *slot = e;
                    }
                }
                last.into_values().collect()
            }
        };
        if kept.is_empty() {
            return None;
        }
        Some(match meter["default_aggregation"]["formula"].as_str() {
            Some("count") => kept.len() as f64,
            Some("last") => kept
                .iter()
                .max_by_key(|e| (e.timestamp, e.seq))
                .map(|e| e.value as f64)
                .unwrap_or(0.0),
            _ => kept.iter().map(|e| e.value).sum::<i64>() as f64,
        })
    }
}

/// A tier: `(up_to, unit_amount, flat_amount)`, `up_to` `None` for `inf`.
pub(crate) type Tier = (Option<i64>, i64, i64);

/// `billing_scheme=tiered` with `tiers_mode` and `tiers[i][up_to|unit_amount|flat_amount]`
/// (`up_to` ascending, the last `inf`); `None` for a per-unit price.
pub(crate) fn tiers_param(p: Params<'_>) -> Result<Option<(String, Vec<Tier>)>, ApiError> {
    match p.str("billing_scheme")?.as_deref() {
        None | Some("per_unit") => {
            if p.get("tiers").is_some() || p.get("tiers_mode").is_some() {
                return Err(ApiError::invalid(
                    "tiers",
                    "tiers and tiers_mode need billing_scheme=tiered.",
                ));
            }
            return Ok(None);
        }
        Some("tiered") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "billing_scheme",
                format!("Invalid billing_scheme: must be one of per_unit or tiered (got {other})."),
            ))
        }
    }
    let mode = p
        .str("tiers_mode")?
        .ok_or_else(|| ApiError::missing_param("tiers_mode"))?;
    if mode != "graduated" && mode != "volume" {
        return Err(ApiError::invalid(
            "tiers_mode",
            format!("Invalid tiers_mode: must be one of graduated or volume (got {mode})."),
        ));
    }
    let params = p.array("tiers")?;
    if params.is_empty() {
        return Err(ApiError::missing_param("tiers"));
    }
    let mut tiers = Vec::with_capacity(params.len());
    let mut previous = 0;
    for (i, t) in params.iter().enumerate() {
        let key = |k: &str| format!("tiers[{i}][{k}]");
        let up_to =
            match t.str("up_to")?.as_deref() {
                Some("inf") => None,
                Some(n) => Some(n.parse::<i64>().ok().filter(|n| *n > previous).ok_or_else(
                    || {
                        ApiError::invalid(
                            key("up_to"),
                            "up_to must be `inf` or an integer above the previous tier's.",
                        )
                    },
                )?),
                None => return Err(ApiError::missing_param(&key("up_to"))),
            };
        let last = i + 1 == params.len();
        if up_to.is_none() != last {
            return Err(ApiError::invalid(
                key("up_to"),
                "Only the last tier has up_to=inf, and it must.",
            ));
        }
        let unit = t.int("unit_amount")?;
        let flat = t.int("flat_amount")?;
        if unit.is_none() && flat.is_none() {
            return Err(ApiError::missing_param(&key("unit_amount")));
        }
        if unit.unwrap_or(0) < 0 || flat.unwrap_or(0) < 0 {
            return Err(ApiError::invalid(
                key("unit_amount"),
                "Amounts must not be negative.",
            ));
        }
        previous = up_to.unwrap_or(i64::MAX);
        tiers.push((up_to, unit.unwrap_or(0), flat.unwrap_or(0)));
    }
    Ok(Some((mode, tiers)))
}

/// `mtrusg_…` ids name their window, so a page can continue after one.
fn summary_id(meter: &str, customer: &str, start: i64, end: i64) -> String {
    let tag: u32 = meter
        .bytes()
        .chain(customer.bytes())
        .fold(2_166_136_261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16_777_619)
        });
    format!("mtrusg_{start}_{end}_{tag:08x}")
}

fn summary_start(id: &str) -> Option<i64> {
    id.strip_prefix("mtrusg_")?.split('_').next()?.parse().ok()
}

/// A payload value as the string Stripe echoes.
fn payload_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Store {
    /// The active meter that records events named `event_name`.
    pub(crate) fn active_meter_for(&self, event_name: &str) -> Option<&Value> {
        self.meters
            .iter_newest()
            .map(|e| &e.obj)
            .find(|m| m["event_name"] == event_name && m["status"] == "active")
    }

    /// The customer a meter event is for (the payload key the meter maps), if any.
    pub(crate) fn meter_event_customer(&self, params: &Value) -> Option<(String, String)> {
        let p = Params(params);
        let event_name = p.str("event_name").ok()??;
        let key = self
            .active_meter_for(&event_name)
            .and_then(|m| m["customer_mapping"]["event_payload_key"].as_str())
            .unwrap_or("stripe_customer_id");
        let customer = p.child("payload").str(key).ok()??;
        Some((event_name, customer))
    }

    /// `POST /v1/billing/meters`.
    pub fn create_meter(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let display_name = p.required_str("display_name")?;
        let event_name = p.required_str("event_name")?;
        if event_name.len() > MAX_NAME {
            return Err(ApiError::invalid(
                "event_name",
                "event_name can be at most 100 characters long.",
            ));
        }
        let formula = p
            .child("default_aggregation")
            .str("formula")?
            .ok_or_else(|| ApiError::missing_param("default_aggregation[formula]"))?;
        if !FORMULAS.contains(&formula.as_str()) {
            return Err(ApiError::invalid(
                "default_aggregation[formula]",
                format!("Invalid default_aggregation[formula]: must be one of sum, count, or last (got {formula})."),
            ));
        }
        let mapping = p.child("customer_mapping");
        let customer_key = match mapping.get("event_payload_key") {
            None => "stripe_customer_id".to_string(),
            Some(_) => mapping.required_str("event_payload_key")?,
        };
        if mapping.get("event_payload_key").is_some() || mapping.get("type").is_some() {
            match mapping.str("type")?.as_deref() {
                Some("by_id") => {}
                None => return Err(ApiError::missing_param("customer_mapping[type]")),
                Some(other) => {
                    return Err(ApiError::invalid(
                        "customer_mapping[type]",
                        format!("Invalid customer_mapping[type]: must be by_id (got {other})."),
                    ))
                }
            }
        }
        let value_key = match p.child("value_settings").get("event_payload_key") {
            None => "value".to_string(),
            Some(_) => p
                .child("value_settings")
                .required_str("event_payload_key")?,
        };
        let event_time_window = p.str("event_time_window")?;
        if let Some(w) = &event_time_window {
            if w != "day" && w != "hour" {
                return Err(ApiError::invalid(
                    "event_time_window",
                    format!("Invalid event_time_window: must be one of day or hour (got {w})."),
                ));
            }
        }
        if self
            .meters
            .iter_newest()
            .any(|e| e.obj["event_name"] == event_name.as_str())
        {
            return Err(ApiError {
                code: Some("resource_already_exists"),
                ..ApiError::invalid(
                    "event_name",
                    format!("A meter with the event_name `{event_name}` already exists; an event name can be used by one meter only."),
                )
            });
        }
        let id = ids::object_id("mtr_");
        let obj = objects::meter(
            &id,
            ctx.now,
            objects::MeterFields {
                display_name,
                event_name,
                formula,
                customer_key,
                value_key,
                event_time_window,
            },
        );
        self.emit(ctx, "billing.meter.created", &obj, None);
        self.meters
            .insert(id, obj.clone(), ctx.now_ms + ctx.search_lag_ms);
        Ok(obj)
    }

    /// A meter present from the start (`--metered-price`), no event.
    pub(crate) fn seed_meter(&mut self, event_name: &str, now: i64) -> String {
        if let Some(m) = self
            .meters
            .iter_newest()
            .find(|e| e.obj["event_name"] == event_name)
        {
            return m.obj["id"].as_str().unwrap_or_default().to_string();
        }
        let id = format!("mtr_{event_name}");
        let obj = objects::meter(
            &id,
            now,
            objects::MeterFields {
                display_name: event_name.to_string(),
                event_name: event_name.to_string(),
                formula: "sum".into(),
                customer_key: "stripe_customer_id".into(),
                value_key: "value".into(),
                event_time_window: None,
            },
        );
        self.meters.insert(id.clone(), obj, i64::MIN);
        id
    }

    /// Plants metered prices and their meters (start and reset), and the grace period.
    pub(crate) fn seed_metered_prices(
        &mut self,
        seeds: &[MeteredPriceSeed],
        now: i64,
        grace_s: i64,
    ) {
        self.metering.grace_s = grace_s;
        for seed in seeds {
            let meter = self.seed_meter(&seed.event_name, now);
            self.seed_price(&seed.price, now);
            if let Some(price) = self.prices.get_mut(&seed.price.id) {
                objects::set_metered(price, &meter);
                if seed.included > 0 {
                    let included = i64::try_from(seed.included).unwrap_or(i64::MAX);
                    let tiers = [(Some(included), 0, 0), (None, seed.price.unit_amount, 0)];
                    objects::set_tiers(price, "graduated", &tiers);
                }
            }
        }
    }

    pub fn retrieve_meter(&self, id: &str) -> Result<&Value, ApiError> {
        self.meters
            .get(id)
            .ok_or_else(|| ApiError::no_such("billing.meter", id))
    }

    /// `GET /v1/billing/meters` (`status`).
    pub fn list_meters(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let status = p.str("status")?;
        if let Some(s) = &status {
            if s != "active" && s != "inactive" {
                return Err(ApiError::invalid(
                    "status",
                    format!("Invalid status: must be one of active or inactive (got {s})."),
                ));
            }
        }
        paginate(
            &self.meters,
            p,
            "/v1/billing/meters",
            "billing.meter",
            |m| status.as_ref().is_none_or(|s| m["status"] == s.as_str()),
        )
    }

    /// `POST /v1/billing/meters/{id}`: only `display_name` can change.
    pub fn update_meter(&mut self, ctx: &Ctx, id: &str, p: Params<'_>) -> Result<Value, ApiError> {
        let display_name = p.str("display_name")?;
        let meter = self
            .meters
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("billing.meter", id))?;
        let mut previous = Map::new();
        if let Some(name) = display_name.filter(|n| !n.is_empty()) {
            previous.insert("display_name".into(), meter["display_name"].clone());
            meter["display_name"] = json!(name);
            meter["updated"] = json!(ctx.now);
        }
        let obj = meter.clone();
        if !previous.is_empty() {
            self.emit(
                ctx,
                "billing.meter.updated",
                &obj,
                Some(Value::Object(previous)),
            );
        }
        Ok(obj)
    }

    /// `POST /v1/billing/meters/{id}/deactivate` and `…/reactivate`.
    pub fn set_meter_active(
        &mut self,
        ctx: &Ctx,
        id: &str,
        active: bool,
    ) -> Result<Value, ApiError> {
        let meter = self
            .meters
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("billing.meter", id))?;
        let (want, kind) = if active {
            ("active", "billing.meter.reactivated")
        } else {
            ("inactive", "billing.meter.deactivated")
        };
        if meter["status"] == want {
            return Err(ApiError::invalid(
                "meter",
                format!("The meter `{id}` is already {want}."),
            ));
        }
        meter["status"] = json!(want);
        meter["updated"] = json!(ctx.now);
        meter["status_transitions"]["deactivated_at"] =
            if active { Value::Null } else { json!(ctx.now) };
        let obj = meter.clone();
        self.emit(ctx, kind, &obj, None);
        Ok(obj)
    }

    /// `POST /v1/billing/meter_events`: `event_name`, `payload[…]`, `identifier`,
    /// `timestamp`.
    pub fn create_meter_event(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let event_name = p.required_str("event_name")?;
        let Some(Value::Object(payload)) = p.get("payload") else {
            return Err(ApiError::missing_param("payload"));
        };
        let mut echoed = Map::new();
        for (k, v) in payload {
            let s = payload_string(v).ok_or_else(|| {
                ApiError::invalid(format!("payload[{k}]"), "Payload values must be strings.")
            })?;
            echoed.insert(k.clone(), Value::String(s));
        }
        let identifier = match p.str("identifier")? {
            Some(id) if !id.is_empty() => id,
            _ => ids::new_id("", 32),
        };
        if identifier.len() > MAX_NAME {
            return Err(ApiError::invalid(
                "identifier",
                "identifier can be at most 100 characters long.",
            ));
        }
        let timestamp = p.int("timestamp")?.unwrap_or(ctx.now);
        if timestamp < ctx.now - PAST_LIMIT_S {
            return Err(ApiError::invalid(
                "timestamp",
                "The timestamp must be within the past 35 calendar days.",
            ));
        }
        if timestamp > ctx.now + FUTURE_LIMIT_S {
            return Err(ApiError::invalid(
                "timestamp",
                "The timestamp must not be more than 5 minutes in the future.",
            ));
        }
        let meter = self.active_meter_for(&event_name).ok_or_else(|| {
            ApiError::invalid(
                "event_name",
                format!("No active meter has the event_name `{event_name}` (Stripe reports this asynchronously as `no_meter`)."),
            )
        })?;
        let customer_key = meter["customer_mapping"]["event_payload_key"]
            .as_str()
            .unwrap_or("stripe_customer_id")
            .to_string();
        let value_key = meter["value_settings"]["event_payload_key"]
            .as_str()
            .unwrap_or("value")
            .to_string();
        let counts_only = meter["default_aggregation"]["formula"] == "count";
        let customer = echoed
            .get(&customer_key)
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("payload[{customer_key}]"),
                    format!("The payload has no `{customer_key}` (Stripe reports this asynchronously as `meter_event_no_customer_defined`)."),
                )
            })?
            .to_string();
        if self.customers.get(&customer).is_none() {
            return Err(ApiError::invalid(
                format!("payload[{customer_key}]"),
                format!("No such customer: '{customer}' (Stripe reports this asynchronously as `meter_event_customer_not_found`)."),
            ));
        }
        let value = match echoed.get(&value_key).and_then(Value::as_str) {
            Some(v) => v.parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    format!("payload[{value_key}]"),
                    format!("The value `{v}` is not a whole number (Stripe reports this asynchronously as `meter_event_invalid_value`)."),
                )
            })?,
            None if counts_only => 1,
            None => {
                return Err(ApiError::invalid(
                    format!("payload[{value_key}]"),
                    format!("The payload has no `{value_key}` (Stripe reports this asynchronously as `meter_event_value_not_found`)."),
                ))
            }
        };
        self.meter_events.expire(ctx.now);
        if self.meter_events.seen.contains_key(&identifier) {
            return Err(ApiError {
                should_retry: Some(false),
                ..ApiError::invalid(
                    "identifier",
                    format!("An event already exists with identifier {identifier}."),
                )
            });
        }
        let events = &mut self.meter_events;
        events.next_seq += 1;
        let stream = events
            .streams
            .entry((event_name.clone(), customer.clone()))
            .or_default();
        stream.push(Recorded {
            timestamp,
            value,
            seq: events.next_seq,
            canceled: false,
        });
        let index = stream.len() - 1;
        events.seen.insert(
            identifier.clone(),
            Seen {
                created: ctx.now,
                event_name: event_name.clone(),
                customer,
                index,
            },
        );
        events.seen_order.push_back((ctx.now, identifier.clone()));
        Ok(objects::meter_event(
            ctx.now,
            &event_name,
            &identifier,
            Value::Object(echoed),
            timestamp,
        ))
    }

    /// `POST /v1/billing/meter_event_adjustments`: `event_name`, `type=cancel`,
    /// `cancel[identifier]`. Applied at once (`status: complete`); cancelling an
    /// event already cancelled changes nothing and answers the same.
    pub fn create_meter_event_adjustment(
        &mut self,
        ctx: &Ctx,
        p: Params<'_>,
    ) -> Result<Value, ApiError> {
        let event_name = p.required_str("event_name")?;
        match p.str("type")?.as_deref() {
            None | Some("cancel") => {}
            Some(other) => {
                return Err(ApiError::invalid(
                    "type",
                    format!("Invalid type: must be cancel (got {other})."),
                ))
            }
        }
        let identifier = p
            .child("cancel")
            .str("identifier")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::missing_param("cancel[identifier]"))?;
        self.meter_events.expire(ctx.now);
        let seen = self
            .meter_events
            .seen
            .get(&identifier)
            .filter(|s| s.event_name == event_name)
            .cloned()
            .ok_or_else(|| {
                ApiError::invalid(
                    "cancel[identifier]",
                    format!("No meter event `{event_name}` with identifier {identifier} was created in the last 24 hours; only those can be cancelled."),
                )
            })?;
        if let Some(e) = self
            .meter_events
            .streams
            .get_mut(&(seen.event_name, seen.customer))
            .and_then(|s| s.get_mut(seen.index))
        {
            e.canceled = true;
        }
        Ok(objects::meter_event_adjustment(
            &event_name,
            &identifier,
            "complete",
        ))
    }

    /// `GET /v1/billing/meters/{id}/event_summaries`: `customer`, `start_time`,
    /// `end_time` (minute-aligned), `value_grouping_window` (`hour` or `day`: one
    /// summary per window that has events, newest first), `limit`, `starting_after`,
    /// `ending_before`. Without a grouping window: one summary of the whole range.
    pub fn list_meter_event_summaries(&self, id: &str, p: Params<'_>) -> Result<Value, ApiError> {
        let meter = self.retrieve_meter(id)?;
        let customer = p.required_str("customer")?;
        let start = p
            .int("start_time")?
            .ok_or_else(|| ApiError::missing_param("start_time"))?;
        let end = p
            .int("end_time")?
            .ok_or_else(|| ApiError::missing_param("end_time"))?;
        let window = p.str("value_grouping_window")?;
        let step = match window.as_deref() {
            None => None,
            Some("hour") => Some(3600),
            Some("day") => Some(86_400),
            Some(other) => {
                return Err(ApiError::invalid(
                    "value_grouping_window",
                    format!(
                        "Invalid value_grouping_window: must be one of hour or day (got {other})."
                    ),
                ))
            }
        };
        let align = step.unwrap_or(60);
        for (key, t) in [("start_time", start), ("end_time", end)] {
            if t.rem_euclid(align) != 0 {
                let unit = match align {
                    60 => "minute",
                    3600 => "hour",
                    _ => "day (UTC)",
                };
                return Err(ApiError::invalid(
                    key,
                    format!("{key} must be aligned with {unit} boundaries."),
                ));
            }
        }
        if end <= start {
            return Err(ApiError::invalid(
                "end_time",
                "end_time must be after start_time.",
            ));
        }
        if self.customers.get(&customer).is_none() && !self.deleted_customers.contains(&customer) {
            return Err(ApiError::no_such_param("customer", &customer, "customer"));
        }
        let limit = p.limit()?;
        let url = format!("/v1/billing/meters/{id}/event_summaries");
        let summary = |s: i64, e: i64, v: f64| {
            objects::event_summary(&summary_id(id, &customer, s, e), id, s, e, v)
        };
        let Some(step) = step else {
            let value = self
                .meter_events
                .aggregate(meter, &customer, start, end)
                .unwrap_or(0.0);
            return Ok(objects::list(&url, vec![summary(start, end, value)], false));
        };
        let after = p.str("starting_after")?.filter(|s| !s.is_empty());
        let before = p.str("ending_before")?.filter(|s| !s.is_empty());
        let cursor = |key: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
            v.as_ref()
                .map(|s| {
                    summary_start(s).ok_or_else(|| {
                        ApiError::no_such_param("billing.meter_event_summary", s, key)
                    })
                })
                .transpose()
        };
        let after = cursor("starting_after", &after)?;
        let before = cursor("ending_before", &before)?;
        // Every window with events, newest first; then Stripe's cursor paging.
        let mut all: Vec<(i64, f64)> = Vec::new();
        let mut bucket = end - step;
        while bucket >= start {
            if let Some(v) = self
                .meter_events
                .aggregate(meter, &customer, bucket, bucket + step)
            {
                all.push((bucket, v));
            }
            bucket -= step;
        }
        let (page, has_more): (Vec<(i64, f64)>, bool) =
            match (after, before) {
                (Some(_), Some(_)) => return Err(ApiError::invalid(
                    "ending_before",
                    "You may only specify one of these parameters: ending_before, starting_after.",
                )),
                (_, Some(b)) => {
                    let newer: Vec<(i64, f64)> = all.into_iter().filter(|(s, _)| *s > b).collect();
                    let skip = newer.len().saturating_sub(limit);
                    (newer[skip..].to_vec(), skip > 0)
                }
                (a, None) => {
                    let older: Vec<(i64, f64)> = all
                        .into_iter()
                        .filter(|(s, _)| a.is_none_or(|a| *s < a))
                        .collect();
                    let more = older.len() > limit;
                    (older.into_iter().take(limit).collect(), more)
                }
            };
        let windows = page
            .into_iter()
            .map(|(s, v)| summary(s, s + step, v))
            .collect();
        Ok(objects::list(&url, windows, has_more))
    }
}
