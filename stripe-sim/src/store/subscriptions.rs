//! Subscriptions: created by checkout completion (or directly), with an optional
//! trial; updated (price, quantity, proration, cancellation at period end, trial
//! end, metadata); canceled; moved between statuses by the control plane. What
//! the clock does to them lives in `clockwork`, price and quantity changes in
//! `changes`.

use serde_json::{json, Map, Value};

use super::changes::{ItemSpec, Proration};
use super::invoices::{Attempt, Draft, Payment};
use super::periods::{next_period, period_of};
use super::{created_filter, paginate, Ctx, Store};
use crate::error::ApiError;
use crate::form::{MetadataUpdate, Params};
use crate::ids;
use crate::objects::{self, is_metered, LineKind, LineSpec};

/// Statuses `/_sim/subscriptions/{id}/status` accepts (Stripe's full set).
pub(crate) const STATUSES: [&str; 8] = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
];

/// The longest trial Stripe accepts (730 days).
pub(crate) const MAX_TRIAL_S: i64 = 730 * 86_400;

/// Update parameters Stripe has that the simulator does not model: refused rather
/// than silently ignored.
const UNSIMULATED_UPDATE_PARAMS: [&str; 8] = [
    "add_invoice_items",
    "billing_cycle_anchor",
    "billing_thresholds",
    "cancel_at",
    "collection_method",
    "discounts",
    "pause_collection",
    "trial_from_plan",
];

/// A subscription about to be created.
pub(crate) struct NewSubscription<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    /// `(price id, quantity)` per item.
    pub items: &'a [(String, u64)],
    pub metadata: Value,
    pub description: Option<String>,
    pub trial_end: Option<i64>,
    /// The id its first invoice will have (named by `latest_invoice` from the start).
    pub invoice_id: &'a str,
}

/// A subscription update that has passed every check (parameters, the
/// subscription's state, the card for `error_if_incomplete`): applying it cannot
/// fail, so a refused update never leaves a half-changed subscription.
#[derive(Debug)]
struct SubscriptionUpdate {
    id: String,
    cancel_at_period_end: Option<bool>,
    metadata: MetadataUpdate,
    /// `Some(None)` clears it.
    description: Option<Option<String>>,
    proration: Proration,
    /// Every item of the subscription as it should become; `None` if `items` was not sent.
    items: Option<Vec<ItemSpec>>,
    /// The new trial end, `now` resolved.
    trial_end: Option<i64>,
    /// When prorations are computed: `proration_date`, or now.
    at: i64,
}

/// What a subscription remembers that is not part of Stripe's object.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubExtra {
    /// `customer.subscription.trial_will_end` already sent for the current trial.
    pub trial_will_end_sent: bool,
}

/// A timestamp parameter that also accepts `now`.
pub(crate) fn timestamp_or_now(
    p: Params<'_>,
    key: &str,
    now: i64,
) -> Result<Option<i64>, ApiError> {
    match p.str(key)? {
        None => Ok(None),
        Some(s) if s == "now" => Ok(Some(now)),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::invalid(
                key,
                format!("Invalid {key}: must be a Unix timestamp or `now`."),
            )
        }),
    }
}

impl Store {
    /// The display name of a price's product (invoice line descriptions).
    pub(crate) fn product_name(&self, price: &Value) -> String {
        let product = price["product"].as_str().unwrap_or_default();
        self.products
            .get(product)
            .and_then(|p| p["name"].as_str())
            .unwrap_or(product)
            .to_string()
    }

    /// A recurring price by id, checked for use on a subscription.
    pub(crate) fn recurring_price(
        &self,
        price_id: &str,
        param: &str,
        currency: Option<&str>,
    ) -> Result<Value, ApiError> {
        let price = self
            .prices
            .get(price_id)
            .ok_or_else(|| ApiError::no_such_param("price", price_id, param))?;
        if price["type"] != "recurring" {
            return Err(ApiError::invalid(
                param,
                format!("The price `{price_id}` is not recurring."),
            ));
        }
        if price["active"] == false {
            return Err(ApiError::invalid(
                param,
                format!("The price `{price_id}` is not active."),
            ));
        }
        if let Some(c) = currency {
            if !super::currency::price_supports(price, c) {
                return Err(ApiError::invalid(
                    param,
                    format!("The price `{price_id}` is not in this subscription's currency ({c})."),
                ));
            }
        }
        Ok(price.clone())
    }

    /// A line for the whole period of one subscription item.
    pub(crate) fn period_line(&self, sub_id: &str, item: &Value, kind: LineKind) -> Value {
        let price = &self.billed_price(sub_id, &item["price"]);
        let quantity = item["quantity"].as_u64().unwrap_or(1);
        let amount = if kind == LineKind::Trial {
            0
        } else {
            price["unit_amount"].as_i64().unwrap_or(0) * quantity as i64
        };
        let name = self.product_name(price);
        let start = item["current_period_start"].as_i64().unwrap_or(0);
        objects::invoice_line(
            &ids::object_id("il_"),
            None,
            &LineSpec {
                kind,
                price,
                product_name: &name,
                quantity,
                amount,
                period: (start, item["current_period_end"].as_i64().unwrap_or(0)),
                subscription: sub_id,
                subscription_item: item["id"].as_str().unwrap_or_default(),
                invoice_item: None,
                at: start,
            },
        )
    }

    /// Lines for the current period of every licensed item (a trial's lines are
    /// free); metered items are billed in arrears (see `metered`).
    pub(crate) fn period_lines(&self, sub: &Value, kind: LineKind) -> Vec<Value> {
        let sub_id = sub["id"].as_str().unwrap_or_default();
        sub["items"]["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|item| !is_metered(&item["price"]))
                    .map(|item| self.period_line(sub_id, item, kind))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Builds and stores a subscription (status `active`, or `trialing` until
    /// `trial_end`), with `latest_invoice` already naming its first invoice. Emits
    /// nothing.
    pub(crate) fn insert_subscription(
        &mut self,
        ctx: &Ctx,
        new: NewSubscription<'_>,
    ) -> Result<Value, ApiError> {
        let NewSubscription {
            id,
            customer,
            items,
            metadata,
            description,
            trial_end,
            invoice_id,
        } = new;
        let mut item_objs = Vec::with_capacity(items.len());
        let mut currency: Option<String> = None;
        for (i, (price_id, qty)) in items.iter().enumerate() {
            let price =
                self.recurring_price(price_id, &format!("items[{i}][price]"), currency.as_deref())?;
            let period = match trial_end {
                Some(end) => (ctx.now, end),
                None => next_period(&price, ctx.now),
            };
            currency = price["currency"].as_str().map(str::to_string);
            item_objs.push(objects::subscription_item(
                &ids::new_id("si_", 14),
                id,
                &price,
                *qty,
                ctx.now,
                period,
            ));
        }
        if item_objs.is_empty() {
            return Err(ApiError::missing_param("items"));
        }
        let sub = objects::subscription(
            id,
            ctx.now,
            objects::SubscriptionFields {
                customer: customer.to_string(),
                items: item_objs,
                currency: currency.unwrap_or_else(|| "usd".into()),
                metadata,
                status: if trial_end.is_some() {
                    "trialing".into()
                } else {
                    "active".into()
                },
                latest_invoice: Some(invoice_id.to_string()),
                description,
                trial: trial_end.map(|end| (ctx.now, end)),
                billing_cycle_anchor: trial_end.unwrap_or(ctx.now),
            },
        );
        self.subscriptions
            .insert(id.to_string(), sub.clone(), ctx.now_ms + ctx.search_lag_ms);
        self.sub_extra.insert(id.to_string(), SubExtra::default());
        self.agenda.touch();
        Ok(sub)
    }

    /// The first invoice of a new subscription (`subscription_create`): the first
    /// period, or a free trial line. Emits the invoice events and settles.
    pub(crate) fn bill_first_invoice(
        &mut self,
        ctx: &Ctx,
        sub_id: &str,
        invoice_id: String,
        attempt: Attempt,
    ) -> Payment {
        let sub = self.subscriptions.get(sub_id).expect("exists").clone();
        let kind = if sub["status"] == "trialing" {
            LineKind::Trial
        } else {
            LineKind::Period
        };
        let lines = self.period_lines(&sub, kind);
        let draft = Draft {
            id: invoice_id,
            reason: "subscription_create",
            lines,
            period: (ctx.now, ctx.now),
        };
        self.bill(ctx, &sub, draft, attempt)
    }

    /// Total due now for the first period of `items` (0 with a trial).
    pub(crate) fn first_amount(&self, items: &[(String, u64)], trial: bool) -> i64 {
        if trial {
            return 0;
        }
        items
            .iter()
            .filter_map(|(p, q)| {
                let price = self.prices.get(p).filter(|p| !is_metered(p))?;
                Some(price["unit_amount"].as_i64().unwrap_or(0) * *q as i64)
            })
            .sum()
    }

    /// `POST /v1/subscriptions` (`customer`, `items[i][price|quantity]`, `metadata`,
    /// `trial_period_days` or `trial_end`, `payment_behavior`): charged at once; a
    /// declining card leaves it `incomplete` with an open invoice, or with
    /// `payment_behavior=error_if_incomplete` answers 402 and creates nothing.
    pub fn create_subscription(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let customer = p.required_str("customer")?;
        if self.customers.get(&customer).is_none() {
            return Err(ApiError::no_such_param("customer", &customer, "customer"));
        }
        let mut items = Vec::new();
        for (i, item) in p.array("items")?.into_iter().enumerate() {
            let price = item
                .str("price")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::missing_param(&format!("items[{i}][price]")))?;
            self.no_metered_quantity(&price, item, &format!("items[{i}]"))?;
            let qty = item.int("quantity")?.unwrap_or(1);
            if qty < 0 {
                return Err(ApiError::invalid(
                    format!("items[{i}][quantity]"),
                    "Quantity must be at least 0.",
                ));
            }
            items.push((price, qty as u64));
        }
        let trial_end = trial_end_param(p, ctx.now)?;
        let payment_behavior = p
            .str("payment_behavior")?
            .unwrap_or_else(|| "allow_incomplete".into());
        if !matches!(
            payment_behavior.as_str(),
            "allow_incomplete" | "error_if_incomplete"
        ) {
            return Err(ApiError::invalid(
                "payment_behavior",
                format!("stripe-sim simulates payment_behavior allow_incomplete and error_if_incomplete, not `{payment_behavior}`."),
            ));
        }
        let billing = self.parse_sub_billing(p, &customer, &items)?;
        let declines =
            self.card_declines(&customer) && self.first_amount(&items, trial_end.is_some()) > 0;
        if declines && payment_behavior == "error_if_incomplete" {
            return Err(ApiError::card_declined());
        }
        let id = ids::new_id("sub_", 24);
        let invoice_id = ids::object_id("in_");
        self.insert_subscription(
            ctx,
            NewSubscription {
                id: &id,
                customer: &customer,
                items: &items,
                metadata: p.metadata("metadata")?.to_value(),
                description: p.nullable_str("description")?.flatten(),
                trial_end,
                invoice_id: &invoice_id,
            },
        )?;
        let sub = self.apply_sub_billing(ctx, &id, &billing);
        let sub = if declines {
            let s = self.subscriptions.get_mut(&id).expect("inserted");
            s["status"] = json!("incomplete");
            s.clone()
        } else {
            sub
        };
        self.emit(ctx, "customer.subscription.created", &sub, None);
        self.bill_first_invoice(ctx, &id, invoice_id, Attempt::FirstNoRetry);
        Ok(self.subscriptions.get(&id).expect("exists").clone())
    }

    pub fn retrieve_subscription(&self, id: &str) -> Result<&Value, ApiError> {
        self.subscriptions
            .get(id)
            .ok_or_else(|| ApiError::no_such("subscription", id))
    }

    /// `POST /v1/subscriptions/{id}`: `items[i][id|price|quantity]` with
    /// `proration_behavior` (`create_prorations`, `always_invoice`, `none`),
    /// `proration_date`, `payment_behavior`, `cancel_at_period_end`, `trial_end`
    /// (timestamp or `now`), `metadata`, `description`.
    pub fn update_subscription(
        &mut self,
        ctx: &Ctx,
        id: &str,
        p: Params<'_>,
    ) -> Result<Value, ApiError> {
        let automatic_tax = self.parse_automatic_tax_update(id, p)?;
        let update = self.parse_update(ctx, id, p)?;
        self.set_automatic_tax(id, automatic_tax);
        Ok(self.apply_update(ctx, update))
    }

    /// Everything that can refuse an update, checked before anything changes, so a
    /// refused update leaves the subscription as it was. The order of the checks
    /// decides which error a request with several faults gets: keep it.
    fn parse_update(
        &self,
        ctx: &Ctx,
        id: &str,
        p: Params<'_>,
    ) -> Result<SubscriptionUpdate, ApiError> {
        for key in UNSIMULATED_UPDATE_PARAMS {
            if p.get(key).is_some() {
                return Err(ApiError::invalid(
                    key,
                    format!("stripe-sim does not simulate `{key}` on subscription updates."),
                ));
            }
        }
        let cape = p.bool("cancel_at_period_end")?;
        let metadata = p.metadata("metadata")?;
        let description = p.nullable_str("description")?;
        let proration = Proration::parse(p, "proration_behavior")?;
        let payment_behavior = p
            .str("payment_behavior")?
            .unwrap_or_else(|| "allow_incomplete".into());
        if !matches!(
            payment_behavior.as_str(),
            "allow_incomplete" | "error_if_incomplete"
        ) {
            return Err(ApiError::invalid(
                "payment_behavior",
                format!("stripe-sim simulates payment_behavior allow_incomplete and error_if_incomplete, not `{payment_behavior}`."),
            ));
        }
        let current = self.retrieve_subscription(id)?;
        let status = current["status"].as_str().unwrap_or("").to_string();
        let trial_end = timestamp_or_now(p, "trial_end", ctx.now)?;
        let items = self.item_specs(current, p)?;
        let ended = matches!(status.as_str(), "canceled" | "incomplete_expired");
        if ended && (cape.is_some() || items.is_some() || trial_end.is_some()) {
            return Err(ApiError::invalid(
                "subscription",
                "A canceled subscription can only update its cancellation_details and metadata.",
            ));
        }
        if let (Some(sched), Some(_)) = (current["schedule"].as_str(), cape) {
            return Err(ApiError::invalid(
                "cancel_at_period_end",
                format!("The subscription is managed by the subscription schedule `{sched}`, and updating any cancelation behavior directly is not allowed. Please update the schedule instead."),
            ));
        }
        let period = period_of(current);
        let at = match p.int("proration_date")? {
            None => ctx.now,
            Some(t) if t >= period.0 && t <= period.1 => t,
            Some(_) => {
                return Err(ApiError::invalid(
                    "proration_date",
                    "proration_date must be within the current billing period.",
                ))
            }
        };
        if let Some(t) = trial_end {
            if t != ctx.now && (t <= ctx.now || t > ctx.now + MAX_TRIAL_S) {
                return Err(ApiError::invalid(
                    "trial_end",
                    "Invalid trial_end: must be `now` or a timestamp in the future, at most 730 days away.",
                ));
            }
            if t == ctx.now && status != "trialing" {
                return Err(ApiError::invalid(
                    "trial_end",
                    "trial_end=now ends a trial; this subscription is not trialing.",
                ));
            }
        }
        if payment_behavior == "error_if_incomplete" {
            let due = self.amount_due_now(current, items.as_deref(), proration, at, trial_end);
            if due > 0 && self.card_declines(current["customer"].as_str().unwrap_or("")) {
                return Err(ApiError::card_declined());
            }
        }
        Ok(SubscriptionUpdate {
            id: id.to_string(),
            cancel_at_period_end: cape,
            metadata,
            description,
            proration,
            items,
            trial_end,
            at,
        })
    }

    /// Applies a checked update: cancellation, metadata and description, then the
    /// items and the trial (each may add lines billed now), then one
    /// `customer.subscription.updated` and that invoice.
    fn apply_update(&mut self, ctx: &Ctx, update: SubscriptionUpdate) -> Value {
        let SubscriptionUpdate {
            id,
            cancel_at_period_end: cape,
            metadata,
            description,
            proration,
            items,
            trial_end,
            at,
        } = update;
        let id = id.as_str();
        let mut previous = Map::new();
        let sub = self.subscriptions.get_mut(id).expect("checked");
        let items_before = sub["items"].clone();
        if let Some(c) = cape {
            if sub["cancel_at_period_end"] != c {
                previous.insert(
                    "cancel_at_period_end".into(),
                    sub["cancel_at_period_end"].clone(),
                );
                previous.insert("cancel_at".into(), sub["cancel_at"].clone());
                previous.insert("canceled_at".into(), sub["canceled_at"].clone());
                sub["cancel_at_period_end"] = json!(c);
                if c {
                    sub["cancel_at"] = json!(period_of(sub).1);
                    sub["canceled_at"] = json!(ctx.now);
                    sub["cancellation_details"]["reason"] = json!("cancellation_requested");
                } else {
                    sub["cancel_at"] = Value::Null;
                    sub["canceled_at"] = Value::Null;
                    sub["cancellation_details"]["reason"] = Value::Null;
                }
            }
        }
        if metadata != MetadataUpdate::None {
            let old = sub["metadata"].clone();
            metadata.apply(&mut sub["metadata"]);
            if sub["metadata"] != old {
                previous.insert("metadata".into(), old);
            }
        }
        if let Some(d) = description {
            previous.insert("description".into(), sub["description"].clone());
            sub["description"] = d.map(Value::String).unwrap_or(Value::Null);
        }
        self.agenda.touch();

        // Price and quantity first, then the trial: each may add lines to bill now.
        let mut bill_now: Option<(Vec<Value>, &'static str)> = None;
        if let Some(specs) = &items {
            let change = self.change_items(id, specs, proration, at);
            if change.changed {
                previous.insert("items".into(), items_before);
            }
            if let Some(lines) = change.invoice_now {
                bill_now = Some((lines, "subscription_update"));
            }
            self.sync_schedule_items(ctx, id);
        }
        if let Some(t) = trial_end {
            let lines = self.change_trial_end(ctx, id, t, proration, &mut previous);
            if let Some(lines) = lines {
                let mut all = bill_now.map(|(l, _)| l).unwrap_or_default();
                all.extend(lines);
                bill_now = Some((all, "subscription_update"));
            }
        }
        let invoice_id = bill_now.as_ref().map(|_| ids::object_id("in_"));
        if let Some(inv) = &invoice_id {
            let sub = self.subscriptions.get_mut(id).expect("exists");
            previous.insert("latest_invoice".into(), sub["latest_invoice"].clone());
            sub["latest_invoice"] = json!(inv);
        }
        let obj = self.subscriptions.get(id).expect("exists").clone();
        if !previous.is_empty() {
            self.emit(
                ctx,
                "customer.subscription.updated",
                &obj,
                Some(Value::Object(previous)),
            );
        }
        if let (Some((lines, reason)), Some(inv)) = (bill_now, invoice_id) {
            let draft = Draft {
                id: inv,
                reason,
                lines,
                period: (at, at),
            };
            self.bill(ctx, &obj, draft, Attempt::First);
        }
        self.subscriptions.get(id).expect("exists").clone()
    }

    /// The `items[i]` of an update as full specs (every item of the subscription,
    /// in order, with the requested prices and quantities); `None` if not sent.
    fn item_specs(&self, sub: &Value, p: Params<'_>) -> Result<Option<Vec<ItemSpec>>, ApiError> {
        let params = p.array("items")?;
        if params.is_empty() {
            return Ok(None);
        }
        let currency = sub["currency"].as_str().unwrap_or("usd").to_string();
        let mut specs: Vec<ItemSpec> = sub["items"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|it| ItemSpec {
                id: it["id"].as_str().map(str::to_string),
                price: it["price"]["id"].as_str().unwrap_or_default().to_string(),
                quantity: it["quantity"].as_u64().unwrap_or(1),
            })
            .collect();
        for (i, item) in params.into_iter().enumerate() {
            let Some(item_id) = item.str("id")?.filter(|s| !s.is_empty()) else {
                // No id: a new item (Stripe adds one), after the existing ones.
                let price = item
                    .str("price")?
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| ApiError::missing_param(&format!("items[{i}][price]")))?;
                self.recurring_price(&price, &format!("items[{i}][price]"), Some(&currency))?;
                self.no_metered_quantity(&price, item, &format!("items[{i}]"))?;
                if specs.iter().any(|s| s.price == price) {
                    return Err(ApiError::invalid(
                        format!("items[{i}][price]"),
                        format!("The price `{price}` is already on this subscription; change that item instead."),
                    ));
                }
                let quantity = item.int("quantity")?.unwrap_or(1);
                if quantity < 0 {
                    return Err(ApiError::invalid(
                        format!("items[{i}][quantity]"),
                        "Invalid quantity: must be at least 0.",
                    ));
                }
                specs.push(ItemSpec {
                    id: Some(ids::new_id("si_", 14)),
                    price,
                    quantity: quantity as u64,
                });
                continue;
            };
            let Some(pos) = specs.iter().position(|s| s.id.as_deref() == Some(&item_id)) else {
                return Err(ApiError::invalid(
                    format!("items[{i}][id]"),
                    format!("No such subscription item on this subscription: '{item_id}'"),
                ));
            };
            if item.bool("deleted")? == Some(true) {
                specs.remove(pos);
                if specs.is_empty() {
                    return Err(ApiError::invalid(
                        format!("items[{i}][deleted]"),
                        "A subscription must keep at least one item.",
                    ));
                }
                continue;
            }
            let spec = &mut specs[pos];
            if let Some(price) = item.str("price")?.filter(|s| !s.is_empty()) {
                self.recurring_price(&price, &format!("items[{i}][price]"), Some(&currency))?;
                spec.price = price;
            }
            self.no_metered_quantity(&spec.price, item, &format!("items[{i}]"))?;
            if let Some(q) = item.int("quantity")? {
                if q < 0 {
                    return Err(ApiError::invalid(
                        format!("items[{i}][quantity]"),
                        "Invalid quantity: must be at least 0.",
                    ));
                }
                spec.quantity = q as u64;
            }
        }
        Ok(Some(specs))
    }

    /// Stripe refuses a quantity on a metered price (usage comes from its meter).
    pub(crate) fn no_metered_quantity(
        &self,
        price: &str,
        item: Params<'_>,
        param: &str,
    ) -> Result<(), ApiError> {
        if item.get("quantity").is_some() && self.prices.get(price).is_some_and(is_metered) {
            return Err(ApiError::invalid(
                format!("{param}[quantity]"),
                format!("Quantity should not be specified where usage_type is `metered`. Remove quantity from `{param}`."),
            ));
        }
        Ok(())
    }

    /// Cancels now (`DELETE /v1/subscriptions/{id}`, dunning, schedules); sends
    /// `customer.subscription.deleted`. A schedule still managing it is canceled too.
    pub fn cancel_subscription(
        &mut self,
        ctx: &Ctx,
        id: &str,
        reason: &str,
    ) -> Result<Value, ApiError> {
        let sub = self
            .subscriptions
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("subscription", id))?;
        if sub["status"] == "canceled" {
            return Err(ApiError::invalid(
                "subscription",
                format!("This subscription ({id}) has already been canceled."),
            ));
        }
        sub["status"] = json!("canceled");
        if sub["canceled_at"].is_null() || sub["cancel_at_period_end"] != true {
            sub["canceled_at"] = json!(ctx.now);
        }
        sub["ended_at"] = json!(ctx.now);
        if sub["cancellation_details"]["reason"].is_null() {
            sub["cancellation_details"]["reason"] = json!(reason);
        }
        let schedule = sub["schedule"].as_str().map(str::to_string);
        let obj = sub.clone();
        self.agenda.touch();
        self.pending_items.remove(id);
        self.emit(ctx, "customer.subscription.deleted", &obj, None);
        if let Some(schedule) = schedule {
            self.cancel_schedule_of_ended_subscription(ctx, &schedule);
        }
        Ok(obj)
    }

    /// Control plane: forces a status. `canceled` cancels (`.deleted` event); others
    /// send `.updated`; `past_due` and `unpaid` also add an open invoice (no automatic
    /// retries) and `invoice.payment_failed`.
    pub fn set_subscription_status(
        &mut self,
        ctx: &Ctx,
        id: &str,
        status: &str,
    ) -> Result<Value, ApiError> {
        if !STATUSES.contains(&status) {
            return Err(ApiError::invalid(
                "status",
                format!("Invalid status: {status}; expected one of {STATUSES:?}"),
            ));
        }
        if status == "canceled" {
            return self.cancel_subscription(ctx, id, "payment_failed");
        }
        let current = self
            .subscriptions
            .get(id)
            .ok_or_else(|| ApiError::no_such("subscription", id))?
            .clone();
        if current["status"] == "canceled" {
            return Err(ApiError::invalid(
                "status",
                "A canceled subscription cannot change status.",
            ));
        }
        let failed_invoice = if matches!(status, "past_due" | "unpaid") {
            let inv_id = ids::object_id("in_");
            let period = period_of(&current);
            let lines = self.period_lines(&current, LineKind::Period);
            let draft = Draft {
                id: inv_id,
                reason: "subscription_cycle",
                lines,
                period,
            };
            let inv = self.draft_invoice(ctx, &current, draft);
            self.finalize_invoice(ctx, &inv);
            let invoice = self.invoices.get_mut(&inv).expect("stored");
            invoice["attempt_count"] = json!(1);
            invoice["attempted"] = json!(true);
            invoice["auto_advance"] = json!(false);
            Some(invoice.clone())
        } else {
            None
        };
        let sub = self.subscriptions.get_mut(id).expect("exists");
        let mut previous = json!({ "status": sub["status"].clone() });
        sub["status"] = json!(status);
        if let Some(inv) = &failed_invoice {
            previous["latest_invoice"] = sub["latest_invoice"].clone();
            sub["latest_invoice"] = inv["id"].clone();
        }
        let obj = sub.clone();
        self.agenda.touch();
        self.emit(ctx, "customer.subscription.updated", &obj, Some(previous));
        if let Some(inv) = failed_invoice {
            self.emit(ctx, "invoice.payment_failed", &inv, None);
        }
        Ok(obj)
    }

    /// Stripe's default list hides canceled subscriptions unless `status=all|canceled`.
    pub fn list_subscriptions(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let customer = p.str("customer")?;
        let status = p.str("status")?;
        if let Some(s) = &status {
            if s != "all" && s != "ended" && !STATUSES.contains(&s.as_str()) {
                return Err(ApiError::invalid("status", format!("Invalid status: {s}")));
            }
        }
        let price = p.str("price")?;
        let created = created_filter(p)?;
        paginate(
            &self.subscriptions,
            p,
            "/v1/subscriptions",
            "subscription",
            |s| {
                let st = s["status"].as_str().unwrap_or("");
                let status_ok = match status.as_deref() {
                    None => st != "canceled" && st != "incomplete_expired",
                    Some("all") => true,
                    Some("ended") => st == "canceled" || st == "incomplete_expired",
                    Some(x) => st == x,
                };
                status_ok
                    && customer
                        .as_ref()
                        .is_none_or(|c| s["customer"] == c.as_str())
                    && price.as_ref().is_none_or(|pr| {
                        s["items"]["data"]
                            .as_array()
                            .is_some_and(|d| d.iter().any(|it| it["price"]["id"] == pr.as_str()))
                    })
                    && created(s)
            },
        )
    }
}

/// `trial_period_days` or `trial_end` of a create request, as the trial's end.
pub(crate) fn trial_end_param(p: Params<'_>, now: i64) -> Result<Option<i64>, ApiError> {
    let days = p.int("trial_period_days")?;
    let end = timestamp_or_now(p, "trial_end", now)?;
    match (days, end) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "trial_end",
            "You may only specify one of these parameters: trial_end, trial_period_days.",
        )),
        (Some(d), None) if !(1..=730).contains(&d) => Err(ApiError::invalid(
            "trial_period_days",
            "trial_period_days must be between 1 and 730.",
        )),
        (Some(d), None) => Ok(Some(now + d * 86_400)),
        (None, Some(t)) if t == now => Ok(None),
        (None, Some(t)) if t < now || t > now + MAX_TRIAL_S => Err(ApiError::invalid(
            "trial_end",
            "Invalid trial_end: must be in the future, at most 730 days away.",
        )),
        (None, end) => Ok(end),
    }
}
