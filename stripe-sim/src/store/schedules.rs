//! Subscription schedules (`from_subscription` only): phases of items over time,
//! moved on by the clock (`clockwork`). At a phase boundary that falls on the end of
//! a billing period the next phase's items simply renew (one price change, one
//! invoice at the new price); a boundary mid-period changes the items with the next
//! phase's `proration_behavior`. When the last phase ends, `end_behavior` `release`
//! lets the subscription go on (`subscription_schedule.released`), `cancel` ends it
//! (`customer.subscription.deleted`, `subscription_schedule.completed`).

use serde_json::{json, Map, Value};

use super::changes::{ItemSpec, Proration};
use super::invoices::{Attempt, Draft};
use super::periods::{add_interval, interval_of, period_of};
use super::subscriptions::timestamp_or_now;
use super::{created_filter, paginate, Ctx, Store};
use crate::error::ApiError;
use crate::form::{MetadataUpdate, Params};
use crate::ids;
use crate::objects::{self, PhaseFields};

/// Phase parameters Stripe has that the simulator does not model.
const UNSIMULATED_PHASE_PARAMS: [&str; 8] = [
    "add_invoice_items",
    "billing_cycle_anchor",
    "billing_thresholds",
    "collection_method",
    "coupon",
    "discounts",
    "trial",
    "trial_continuation",
];

/// What the end of a schedule's current phase does.
#[derive(Debug)]
pub(crate) enum PhaseStep {
    /// The next phase starts: these items, with this proration for a mid-period change.
    Next {
        items: Vec<ItemSpec>,
        proration: Proration,
        metadata: Value,
    },
    /// The last phase ended with `end_behavior: release`: the subscription goes on.
    Released,
    /// The last phase ended with `end_behavior: cancel`: the subscription ends now.
    Cancel,
}

/// A schedule update that has passed every check: applying it cannot fail, so a
/// refused update never leaves a half-changed schedule.
struct ScheduleUpdate {
    id: String,
    /// The subscription the schedule manages.
    sub_id: String,
    /// `release` or `cancel`.
    end_behavior: Option<String>,
    /// For a change to the current phase's items.
    proration: Proration,
    metadata: MetadataUpdate,
    /// Every phase from the current one on; `None` if `phases` was not sent.
    phases: Option<Vec<PhaseFields>>,
}

/// `(price id, quantity)` of a phase's items as item specs (ids resolved on change).
fn phase_specs(phase: &Value) -> Vec<ItemSpec> {
    phase["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|it| ItemSpec {
            id: None,
            price: it["price"].as_str().unwrap_or_default().to_string(),
            quantity: it["quantity"].as_u64().unwrap_or(1),
        })
        .collect()
}

fn active(schedule: &Value) -> bool {
    matches!(schedule["status"].as_str(), Some("active" | "not_started"))
}

impl Store {
    pub fn retrieve_schedule(&self, id: &str) -> Result<&Value, ApiError> {
        self.schedules
            .get(id)
            .ok_or_else(|| ApiError::no_such("subscription_schedule", id))
    }

    pub fn list_schedules(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let customer = p.str("customer")?;
        let created = created_filter(p)?;
        paginate(
            &self.schedules,
            p,
            "/v1/subscription_schedules",
            "subscription_schedule",
            |s| {
                customer
                    .as_ref()
                    .is_none_or(|c| s["customer"] == c.as_str())
                    && created(s)
            },
        )
    }

    /// `POST /v1/subscription_schedules` with `from_subscription`: one phase, the
    /// subscription's current items over its current period, `end_behavior: release`.
    /// Emits `subscription_schedule.created` and `customer.subscription.updated`.
    pub fn create_schedule(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let Some(sub_id) = p.str("from_subscription")?.filter(|s| !s.is_empty()) else {
            return Err(ApiError::invalid(
                "from_subscription",
                "stripe-sim simulates schedules created `from_subscription` only.",
            ));
        };
        for key in [
            "phases",
            "start_date",
            "customer",
            "end_behavior",
            "default_settings",
        ] {
            if p.get(key).is_some() {
                return Err(ApiError::invalid(
                    key,
                    format!("You cannot set `{key}` if `from_subscription` is set."),
                ));
            }
        }
        let sub = self
            .subscriptions
            .get(&sub_id)
            .ok_or_else(|| ApiError::no_such_param("subscription", &sub_id, "from_subscription"))?
            .clone();
        if matches!(
            sub["status"].as_str(),
            Some("canceled" | "incomplete_expired")
        ) {
            return Err(ApiError::invalid(
                "from_subscription",
                "You cannot create a schedule from a canceled subscription.",
            ));
        }
        if let Some(existing) = sub["schedule"].as_str() {
            return Err(ApiError::invalid(
                "from_subscription",
                format!(
                    "The subscription `{sub_id}` is already attached to the schedule `{existing}`."
                ),
            ));
        }
        if sub["cancel_at_period_end"] == true {
            return Err(ApiError::invalid(
                "from_subscription",
                "You cannot migrate a subscription that is set to cancel at the end of its period.",
            ));
        }
        let period = period_of(&sub);
        let items: Vec<(String, u64)> = sub["items"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|it| {
                (
                    it["price"]["id"].as_str().unwrap_or_default().to_string(),
                    it["quantity"].as_u64().unwrap_or(1),
                )
            })
            .collect();
        let phase = objects::schedule_phase(PhaseFields {
            start: period.0,
            end: period.1,
            items,
            currency: sub["currency"].as_str().unwrap_or("usd").to_string(),
            proration_behavior: Proration::Create.as_str().to_string(),
            trial_end: sub["trial_end"]
                .as_i64()
                .filter(|_| sub["status"] == "trialing"),
            metadata: json!({}),
        });
        let id = ids::new_id("sub_sched_", 24);
        let mut schedule = objects::subscription_schedule(
            &id,
            ctx.now,
            objects::ScheduleFields {
                customer: sub["customer"].as_str().unwrap_or_default(),
                subscription: &sub_id,
                phases: vec![phase],
                metadata: p.metadata("metadata")?.to_value(),
            },
        );
        schedule["current_phase"] = json!({ "start_date": period.0, "end_date": period.1 });
        self.schedules
            .insert(id.clone(), schedule.clone(), ctx.now_ms + ctx.search_lag_ms);
        let s = self.subscriptions.get_mut(&sub_id).expect("exists");
        s["schedule"] = json!(id);
        let snapshot = s.clone();
        self.agenda.touch();
        self.emit(ctx, "subscription_schedule.created", &schedule, None);
        self.emit(
            ctx,
            "customer.subscription.updated",
            &snapshot,
            Some(json!({ "schedule": null })),
        );
        Ok(schedule)
    }

    /// `POST /v1/subscription_schedules/{id}`: `phases[i][items][j][price|quantity]`,
    /// `phases[i][start_date|end_date]` (timestamps or `now`), `phases[i][iterations]`
    /// or `phases[i][duration][interval|interval_count]`, `phases[i][proration_behavior]`,
    /// `phases[i][metadata]`, `end_behavior` (`release`|`cancel`), `metadata`, and the
    /// request's `proration_behavior` for a change to the current phase's items.
    pub fn update_schedule(
        &mut self,
        ctx: &Ctx,
        id: &str,
        p: Params<'_>,
    ) -> Result<Value, ApiError> {
        let update = self.parse_schedule_update(ctx, id, p)?;
        Ok(self.apply_schedule_update(ctx, update))
    }

    /// Everything that can refuse a schedule update, checked before anything
    /// changes, in the order that decides which error a request with several
    /// faults gets.
    fn parse_schedule_update(
        &self,
        ctx: &Ctx,
        id: &str,
        p: Params<'_>,
    ) -> Result<ScheduleUpdate, ApiError> {
        let schedule = self.retrieve_schedule(id)?;
        if !active(schedule) {
            return Err(ApiError::invalid(
                "schedule",
                format!(
                    "You cannot update a subscription schedule that is currently in the `{}` status.",
                    schedule["status"].as_str().unwrap_or("")
                ),
            ));
        }
        let sub_id = schedule["subscription"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let sub = self.retrieve_subscription(&sub_id)?;
        let end_behavior = match p.str("end_behavior")? {
            None => None,
            Some(e) if e == "release" || e == "cancel" => Some(e),
            Some(e) => {
                return Err(ApiError::invalid(
                    "end_behavior",
                    format!("stripe-sim simulates end_behavior release and cancel, not `{e}`."),
                ))
            }
        };
        let proration = Proration::parse(p, "proration_behavior")?;
        let metadata = p.metadata("metadata")?;
        let phases = match p.get("phases") {
            None => None,
            Some(_) => Some(self.parse_phases(ctx, sub, schedule, p)?),
        };
        Ok(ScheduleUpdate {
            id: id.to_string(),
            sub_id,
            end_behavior,
            proration,
            metadata,
            phases,
        })
    }

    /// Applies a checked schedule update: one `subscription_schedule.updated`, then
    /// a change to the current phase's items reaches the subscription at once.
    fn apply_schedule_update(&mut self, ctx: &Ctx, update: ScheduleUpdate) -> Value {
        let ScheduleUpdate {
            id,
            sub_id,
            end_behavior,
            proration,
            metadata,
            phases,
        } = update;
        let id = id.as_str();
        let phases: Option<Vec<Value>> =
            phases.map(|phases| phases.into_iter().map(objects::schedule_phase).collect());
        let mut previous = Map::new();
        let current_specs = phases.as_ref().and_then(|phases| {
            phases
                .iter()
                .find(|ph| {
                    ph["start_date"].as_i64().unwrap_or(0) <= ctx.now
                        && ctx.now < ph["end_date"].as_i64().unwrap_or(0)
                })
                .map(|ph| (phase_specs(ph), ph.clone()))
        });
        let s = self.schedules.get_mut(id).expect("checked");
        if let Some(e) = end_behavior {
            if s["end_behavior"] != e.as_str() {
                previous.insert("end_behavior".into(), s["end_behavior"].clone());
                s["end_behavior"] = json!(e);
            }
        }
        if metadata != MetadataUpdate::None {
            previous.insert("metadata".into(), s["metadata"].clone());
            metadata.apply(&mut s["metadata"]);
        }
        if let Some(phases) = phases {
            previous.insert("phases".into(), s["phases"].clone());
            previous.insert("current_phase".into(), s["current_phase"].clone());
            if let Some((_, current)) = &current_specs {
                s["current_phase"] = json!({
                    "start_date": current["start_date"],
                    "end_date": current["end_date"],
                });
            }
            s["phases"] = Value::Array(phases);
        }
        let snapshot = s.clone();
        self.agenda.touch();
        if !previous.is_empty() {
            self.emit(
                ctx,
                "subscription_schedule.updated",
                &snapshot,
                Some(Value::Object(previous)),
            );
        }
        // A change to the current phase's items applies to the subscription now.
        if let Some((specs, _)) = current_specs {
            self.apply_phase_items(ctx, &sub_id, &specs, proration, ctx.now, None);
        }
        self.schedules.get(id).expect("exists").clone()
    }

    /// Validates `phases[i]`, with every start and end resolved to a timestamp.
    fn parse_phases(
        &self,
        ctx: &Ctx,
        sub: &Value,
        schedule: &Value,
        p: Params<'_>,
    ) -> Result<Vec<PhaseFields>, ApiError> {
        let params = p.array("phases")?;
        if params.is_empty() {
            return Err(ApiError::missing_param("phases"));
        }
        let currency = sub["currency"].as_str().unwrap_or("usd").to_string();
        let count = params.len();
        let mut out: Vec<PhaseFields> = Vec::with_capacity(count);
        let mut prev_end: Option<i64> = None;
        for (i, ph) in params.into_iter().enumerate() {
            let key = |k: &str| format!("phases[{i}][{k}]");
            for k in UNSIMULATED_PHASE_PARAMS {
                if ph.get(k).is_some() {
                    return Err(ApiError::invalid(
                        key(k),
                        format!("stripe-sim does not simulate `{k}` on schedule phases."),
                    ));
                }
            }
            let mut items = Vec::new();
            for (j, item) in ph.array("items")?.into_iter().enumerate() {
                let price_key = format!("phases[{i}][items][{j}][price]");
                let price = item
                    .str("price")?
                    .or(item.str("plan")?)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| ApiError::missing_param(&price_key))?;
                self.recurring_price(&price, &price_key, Some(&currency))?;
                let qty = item.int("quantity")?.unwrap_or(1);
                if qty < 0 {
                    return Err(ApiError::invalid(
                        format!("phases[{i}][items][{j}][quantity]"),
                        "Invalid quantity: must be at least 0.",
                    ));
                }
                items.push((price, qty as u64));
            }
            if items.is_empty() {
                return Err(ApiError::missing_param(&key("items")));
            }
            let given_start = timestamp_or_now(ph, "start_date", ctx.now)?;
            let start = match (given_start, prev_end) {
                (Some(s), Some(pe)) if s != pe => {
                    return Err(ApiError::invalid(
                        key("start_date"),
                        "A phase's start_date must equal the previous phase's end_date.",
                    ))
                }
                (Some(s), _) => s,
                (None, Some(pe)) => pe,
                (None, None) => return Err(ApiError::missing_param(&key("start_date"))),
            };
            let price0 = self.prices.get(&items[0].0).expect("checked");
            let (interval, interval_count) = interval_of(price0);
            let end_date = timestamp_or_now(ph, "end_date", ctx.now)?;
            let iterations = ph.int("iterations")?;
            let duration = ph.child("duration");
            let duration_interval = duration.str("interval")?;
            let given = [
                end_date.is_some(),
                iterations.is_some(),
                duration_interval.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if given > 1 {
                return Err(ApiError::invalid(
                    key("end_date"),
                    "You may only specify one of these parameters: end_date, duration, iterations.",
                ));
            }
            let end = if let Some(e) = end_date {
                e
            } else if let Some(n) = iterations {
                if n < 1 {
                    return Err(ApiError::invalid(
                        key("iterations"),
                        "iterations must be at least 1.",
                    ));
                }
                add_interval(start, &interval, interval_count * n as u64)
            } else if let Some(unit) = duration_interval {
                if !matches!(unit.as_str(), "day" | "week" | "month" | "year") {
                    return Err(ApiError::invalid(
                        format!("phases[{i}][duration][interval]"),
                        "Invalid duration interval: must be one of day, week, month or year.",
                    ));
                }
                let n = duration.int("interval_count")?.unwrap_or(1);
                if n < 1 {
                    return Err(ApiError::invalid(
                        format!("phases[{i}][duration][interval_count]"),
                        "interval_count must be at least 1.",
                    ));
                }
                add_interval(start, &unit, n as u64)
            } else if i + 1 == count {
                // The last phase lasts one billing period unless told otherwise.
                add_interval(start, &interval, interval_count)
            } else {
                return Err(ApiError::invalid(
                    key("end_date"),
                    "Every phase but the last needs an end_date, duration or iterations.",
                ));
            };
            if end <= start {
                return Err(ApiError::invalid(
                    key("end_date"),
                    "A phase's end_date must be after its start_date.",
                ));
            }
            let trial_end = ph.int("trial_end")?;
            if let Some(t) = trial_end {
                let keeps_trial = sub["status"] == "trialing" && sub["trial_end"] == t;
                if !keeps_trial {
                    return Err(ApiError::invalid(
                        key("trial_end"),
                        "stripe-sim simulates a phase trial_end only to keep a trialing subscription's current trial end.",
                    ));
                }
            }
            let proration = Proration::parse(ph, "proration_behavior")?;
            out.push(PhaseFields {
                start,
                end,
                items,
                currency: currency.clone(),
                proration_behavior: proration.as_str().to_string(),
                trial_end,
                metadata: ph.metadata("metadata")?.to_value(),
            });
            prev_end = Some(end);
        }
        if out[0].start > ctx.now {
            return Err(ApiError::invalid(
                "phases[0][start_date]",
                "The first phase of a schedule managing a subscription must have started.",
            ));
        }
        let current = out
            .iter()
            .position(|ph| ph.start <= ctx.now && ctx.now < ph.end);
        let Some(current) = current else {
            return Err(ApiError::invalid(
                "phases",
                "At least one phase must cover the current time (every phase given has ended).",
            ));
        };
        if current > 0 {
            return Err(ApiError::invalid(
                "phases[0][start_date]",
                "stripe-sim keeps no past phases: phases[0] must be the current phase.",
            ));
        }
        let existing_start = schedule["current_phase"]["start_date"].as_i64();
        let given_start = Some(out[0].start);
        if existing_start.is_some() && given_start != existing_start && given_start != Some(ctx.now)
        {
            return Err(ApiError::invalid(
                "phases[0][start_date]",
                "You can not modify the start date of the current phase.",
            ));
        }
        Ok(out)
    }

    /// Sets the subscription's items to a phase's at time `at` (proration per
    /// `proration`), emitting `customer.subscription.updated` and, for
    /// `always_invoice`, billing the prorations at once. `extra_previous` adds fields
    /// to the event's `previous_attributes`.
    pub(crate) fn apply_phase_items(
        &mut self,
        ctx: &Ctx,
        sub_id: &str,
        specs: &[ItemSpec],
        proration: Proration,
        at: i64,
        extra_previous: Option<Map<String, Value>>,
    ) {
        let before = self.subscriptions.get(sub_id).expect("exists").clone();
        let change = self.change_items(sub_id, specs, proration, at);
        let mut previous = extra_previous.unwrap_or_default();
        if change.changed {
            previous.insert("items".into(), before["items"].clone());
        }
        let invoice_id = change.invoice_now.as_ref().map(|_| ids::object_id("in_"));
        if let Some(inv) = &invoice_id {
            let s = self.subscriptions.get_mut(sub_id).expect("exists");
            previous.insert("latest_invoice".into(), s["latest_invoice"].clone());
            s["latest_invoice"] = json!(inv);
        }
        if previous.is_empty() {
            return;
        }
        let snapshot = self.subscriptions.get(sub_id).expect("exists").clone();
        self.emit(
            ctx,
            "customer.subscription.updated",
            &snapshot,
            Some(Value::Object(previous)),
        );
        if let (Some(lines), Some(id)) = (change.invoice_now, invoice_id) {
            let draft = Draft {
                id,
                reason: "subscription_update",
                lines,
                period: (at, at),
            };
            self.bill(ctx, &snapshot, draft, Attempt::First);
        }
    }

    /// After a direct item change on a scheduled subscription, the current phase
    /// takes the subscription's items (so the next boundary starts from them).
    pub(crate) fn sync_schedule_items(&mut self, ctx: &Ctx, sub_id: &str) {
        let Some(sub) = self.subscriptions.get(sub_id) else {
            return;
        };
        let Some(sched_id) = sub["schedule"].as_str().map(str::to_string) else {
            return;
        };
        let items: Vec<Value> = sub["items"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|it| {
                objects::phase_item(
                    it["price"]["id"].as_str().unwrap_or_default(),
                    it["quantity"].as_u64().unwrap_or(1),
                )
            })
            .collect();
        let Some(schedule) = self.schedules.get_mut(&sched_id) else {
            return;
        };
        let start = schedule["current_phase"]["start_date"].clone();
        let Some(phase) = schedule["phases"]
            .as_array_mut()
            .and_then(|ps| ps.iter_mut().find(|ph| ph["start_date"] == start))
        else {
            return;
        };
        if phase["items"] == Value::Array(items.clone()) {
            return;
        }
        let previous = json!({ "phases": schedule["phases"].clone() });
        let phase = schedule["phases"]
            .as_array_mut()
            .and_then(|ps| ps.iter_mut().find(|ph| ph["start_date"] == start))
            .expect("found above");
        phase["items"] = Value::Array(items);
        let snapshot = schedule.clone();
        self.emit(
            ctx,
            "subscription_schedule.updated",
            &snapshot,
            Some(previous),
        );
    }

    /// The end of the current phase at `at`: moves to the next phase, or ends the
    /// schedule per `end_behavior`. Emits the schedule's event (`.updated` or
    /// `.released`; `.completed` is left to the caller, after the cancellation).
    pub(crate) fn end_phase(&mut self, ctx: &Ctx, sched_id: &str, at: i64) -> PhaseStep {
        let schedule = self.schedules.get_mut(sched_id).expect("exists");
        let phases = schedule["phases"].as_array().cloned().unwrap_or_default();
        let next = phases
            .iter()
            .position(|ph| ph["end_date"] == at)
            .and_then(|i| phases.get(i + 1));
        self.agenda.touch();
        if let Some(next) = next {
            let previous = json!({ "current_phase": schedule["current_phase"].clone() });
            schedule["current_phase"] =
                json!({ "start_date": next["start_date"], "end_date": next["end_date"] });
            let snapshot = schedule.clone();
            let step = PhaseStep::Next {
                items: phase_specs(next),
                proration: Proration::from_str(next["proration_behavior"].as_str().unwrap_or(""))
                    .unwrap_or(Proration::Create),
                metadata: next["metadata"].clone(),
            };
            self.emit(
                ctx,
                "subscription_schedule.updated",
                &snapshot,
                Some(previous),
            );
            return step;
        }
        let sub_id = schedule["subscription"].clone();
        schedule["current_phase"] = Value::Null;
        if schedule["end_behavior"] == "cancel" {
            schedule["status"] = json!("completed");
            schedule["completed_at"] = json!(at);
            return PhaseStep::Cancel;
        }
        schedule["status"] = json!("released");
        schedule["released_at"] = json!(at);
        schedule["released_subscription"] = sub_id;
        schedule["subscription"] = Value::Null;
        let snapshot = schedule.clone();
        self.emit(ctx, "subscription_schedule.released", &snapshot, None);
        PhaseStep::Released
    }

    /// `POST /v1/subscription_schedules/{id}/release`: the subscription goes on
    /// without it. Emits `subscription_schedule.released`, `customer.subscription.updated`.
    pub fn release_schedule(&mut self, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
        let schedule = self
            .schedules
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("subscription_schedule", id))?;
        if !active(schedule) {
            return Err(ApiError::invalid(
                "schedule",
                format!(
                    "You cannot release a subscription schedule that is currently in the `{}` status.",
                    schedule["status"].as_str().unwrap_or("")
                ),
            ));
        }
        let sub_id = schedule["subscription"].as_str().map(str::to_string);
        schedule["status"] = json!("released");
        schedule["released_at"] = json!(ctx.now);
        schedule["released_subscription"] = json!(sub_id);
        schedule["subscription"] = Value::Null;
        schedule["current_phase"] = Value::Null;
        let snapshot = schedule.clone();
        self.agenda.touch();
        self.emit(ctx, "subscription_schedule.released", &snapshot, None);
        if let Some(sub) = sub_id.and_then(|s| self.subscriptions.get_mut(&s)) {
            sub["schedule"] = Value::Null;
            let sub = sub.clone();
            self.emit(
                ctx,
                "customer.subscription.updated",
                &sub,
                Some(json!({ "schedule": id })),
            );
        }
        Ok(snapshot)
    }

    /// `POST /v1/subscription_schedules/{id}/cancel`: cancels the schedule and its
    /// subscription now. Emits `subscription_schedule.canceled`,
    /// `customer.subscription.deleted`.
    pub fn cancel_schedule(&mut self, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
        let schedule = self
            .schedules
            .get(id)
            .ok_or_else(|| ApiError::no_such("subscription_schedule", id))?;
        if !active(schedule) {
            return Err(ApiError::invalid(
                "schedule",
                format!(
                    "You cannot cancel a subscription schedule that is currently in the `{}` status.",
                    schedule["status"].as_str().unwrap_or("")
                ),
            ));
        }
        let sub_id = schedule["subscription"].as_str().map(str::to_string);
        self.cancel_schedule_of_ended_subscription(ctx, id);
        if let Some(sub_id) = sub_id {
            if self
                .subscriptions
                .get(&sub_id)
                .is_some_and(|s| s["status"] != "canceled")
            {
                self.cancel_subscription(ctx, &sub_id, "cancellation_requested")?;
            }
        }
        Ok(self.schedules.get(id).expect("exists").clone())
    }

    /// Marks an active schedule canceled (its subscription ended or is ending) and
    /// emits `subscription_schedule.canceled`.
    pub(crate) fn cancel_schedule_of_ended_subscription(&mut self, ctx: &Ctx, id: &str) {
        let Some(schedule) = self.schedules.get_mut(id) else {
            return;
        };
        if !active(schedule) {
            return;
        }
        schedule["status"] = json!("canceled");
        schedule["canceled_at"] = json!(ctx.now);
        schedule["current_phase"] = Value::Null;
        let snapshot = schedule.clone();
        self.agenda.touch();
        self.emit(ctx, "subscription_schedule.canceled", &snapshot, None);
    }
}
