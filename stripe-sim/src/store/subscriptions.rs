//! Subscriptions and their invoices: created by checkout completion (or directly),
//! updated, canceled, moved between statuses by the control plane, and renewed or
//! ended when the simulator clock passes the end of their period.

use chrono::{DateTime, Months, Utc};
use serde_json::{json, Map, Value};

use super::{created_filter, paginate, Ctx, Store};
use crate::error::ApiError;
use crate::form::{MetadataUpdate, Params};
use crate::{ids, objects};

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

/// `ts` plus `count` intervals, with calendar months like Stripe (Jan 31 + 1 month = Feb 28/29).
pub(crate) fn add_interval(ts: i64, interval: &str, count: u64) -> i64 {
    let count_i = count as i64;
    match interval {
        "day" => ts + 86_400 * count_i,
        "week" => ts + 7 * 86_400 * count_i,
        "month" | "year" => {
            let months = if interval == "year" {
                12 * count
            } else {
                count
            };
            DateTime::<Utc>::from_timestamp(ts, 0)
                .and_then(|d| d.checked_add_months(Months::new(months as u32)))
                .map(|d| d.timestamp())
                .unwrap_or(ts + 30 * 86_400 * months as i64)
        }
        _ => ts + 30 * 86_400,
    }
}

fn period_of(sub: &Value) -> (i64, i64) {
    let item = &sub["items"]["data"][0];
    (
        item["current_period_start"].as_i64().unwrap_or(0),
        item["current_period_end"].as_i64().unwrap_or(0),
    )
}

fn interval_of(price: &Value) -> (String, u64) {
    let r = &price["recurring"];
    (
        r["interval"].as_str().unwrap_or("month").to_string(),
        r["interval_count"].as_u64().unwrap_or(1),
    )
}

impl Store {
    /// Creates the subscription (status `active`, one period starting now) and its
    /// paid first invoice; stores both and emits nothing (callers choose the events).
    pub(crate) fn create_subscription_record(
        &mut self,
        ctx: &Ctx,
        customer: &str,
        items: &[(String, u64)],
        metadata: Value,
        description: Option<String>,
    ) -> Result<(Value, Value), ApiError> {
        let id = ids::new_id("sub_", 24);
        let mut item_objs = Vec::with_capacity(items.len());
        let mut currency = String::from("usd");
        for (i, (price_id, qty)) in items.iter().enumerate() {
            let price = self.prices.get(price_id).ok_or_else(|| {
                ApiError::no_such_param("price", price_id, &format!("items[{i}][price]"))
            })?;
            if price["type"] != "recurring" {
                return Err(ApiError::invalid(
                    format!("items[{i}][price]"),
                    format!("The price `{price_id}` is not recurring."),
                ));
            }
            let (interval, count) = interval_of(price);
            let period = (ctx.now, add_interval(ctx.now, &interval, count));
            currency = price["currency"].as_str().unwrap_or("usd").to_string();
            item_objs.push(objects::subscription_item(
                &ids::new_id("si_", 14),
                &id,
                price,
                *qty,
                ctx.now,
                period,
            ));
        }
        if item_objs.is_empty() {
            return Err(ApiError::missing_param("items"));
        }
        let mut sub = objects::subscription(
            &id,
            ctx.now,
            objects::SubscriptionFields {
                customer: customer.to_string(),
                items: item_objs,
                currency,
                metadata,
                status: "active".into(),
                latest_invoice: None,
                description,
            },
        );
        let invoice = self.make_invoice(ctx, &sub, true, "subscription_create");
        sub["latest_invoice"] = invoice["id"].clone();
        self.subscriptions
            .insert(id, sub.clone(), ctx.now_ms + ctx.search_lag_ms);
        Ok((sub, invoice))
    }

    /// Stores an invoice for the subscription's current period.
    fn make_invoice(&mut self, ctx: &Ctx, sub: &Value, paid: bool, reason: &str) -> Value {
        let id = ids::new_id("in_", 24);
        let period = period_of(sub);
        let sub_id = sub["id"].as_str().unwrap_or_default();
        let lines: Vec<Value> = sub["items"]["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| {
                        objects::invoice_line(&ids::new_id("il_", 24), &id, sub_id, item, period)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let customer = self
            .customers
            .get(sub["customer"].as_str().unwrap_or_default())
            .cloned()
            .unwrap_or_else(|| json!({ "id": sub["customer"], "email": null, "name": null }));
        let prefix = customer["invoice_prefix"]
            .as_str()
            .unwrap_or("SIM")
            .to_string();
        let number = self.next_invoice_number(&prefix);
        let invoice = objects::invoice(
            &id,
            ctx.now,
            objects::InvoiceFields {
                customer: &customer,
                subscription: sub,
                currency: sub["currency"].as_str().unwrap_or("usd").to_string(),
                lines,
                period,
                paid,
                billing_reason: reason,
                number,
            },
        );
        self.invoices
            .insert(id, invoice.clone(), ctx.now_ms + ctx.search_lag_ms);
        invoice
    }

    /// `POST /v1/subscriptions` (`customer`, `items[i][price|quantity]`, `metadata`):
    /// starts active with a paid first invoice, as if the default card succeeded.
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
            let qty = item.int("quantity")?.unwrap_or(1).max(1) as u64;
            items.push((price, qty));
        }
        let (sub, invoice) = self.create_subscription_record(
            ctx,
            &customer,
            &items,
            p.metadata("metadata")?.to_value(),
            p.nullable_str("description")?.flatten(),
        )?;
        self.emit(ctx, "customer.subscription.created", &sub, None);
        self.emit(ctx, "invoice.paid", &invoice, None);
        Ok(sub)
    }

    pub fn retrieve_subscription(&self, id: &str) -> Result<&Value, ApiError> {
        self.subscriptions
            .get(id)
            .ok_or_else(|| ApiError::no_such("subscription", id))
    }

    /// `POST /v1/subscriptions/{id}`: `cancel_at_period_end`, `metadata`, `description`,
    /// and a price change through `items[0][price]` (optionally `items[0][id]`).
    pub fn update_subscription(
        &mut self,
        ctx: &Ctx,
        id: &str,
        p: Params<'_>,
    ) -> Result<Value, ApiError> {
        let cape = p.bool("cancel_at_period_end")?;
        let metadata = p.metadata("metadata")?;
        let description = p.nullable_str("description")?;
        let mut new_items: Vec<(Option<String>, String, Option<u64>)> = Vec::new();
        for (i, item) in p.array("items")?.into_iter().enumerate() {
            let price = item
                .str("price")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::missing_param(&format!("items[{i}][price]")))?;
            let price_obj = self.prices.get(&price).ok_or_else(|| {
                ApiError::no_such_param("price", &price, &format!("items[{i}][price]"))
            })?;
            if price_obj["type"] != "recurring" {
                return Err(ApiError::invalid(
                    format!("items[{i}][price]"),
                    "The price is not recurring.",
                ));
            }
            let qty = item.int("quantity")?.map(|q| q.max(1) as u64);
            new_items.push((item.str("id")?, price, qty));
        }
        let prices: Vec<Value> = new_items
            .iter()
            .map(|(_, p, _)| self.prices.get(p).cloned().expect("checked"))
            .collect();
        let sub = self
            .subscriptions
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("subscription", id))?;
        if sub["status"] == "canceled" && (cape.is_some() || !new_items.is_empty()) {
            return Err(ApiError::invalid(
                "subscription",
                "A canceled subscription can only update its cancellation_details and metadata.",
            ));
        }
        let mut previous = Map::new();
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
        if !new_items.is_empty() {
            previous.insert("items".into(), sub["items"].clone());
            let data = sub["items"]["data"].as_array_mut().expect("items list");
            for ((item_id, _, qty), price) in new_items.into_iter().zip(prices) {
                let idx = match &item_id {
                    Some(iid) => data.iter().position(|it| it["id"] == iid.as_str()),
                    None => (!data.is_empty()).then_some(0),
                };
                let Some(idx) = idx else {
                    return Err(ApiError::invalid(
                        "items[0][id]",
                        "No such subscription item on this subscription.",
                    ));
                };
                data[idx]["plan"] = objects::plan_from_price(&price);
                data[idx]["price"] = price;
                if let Some(q) = qty {
                    data[idx]["quantity"] = json!(q);
                }
            }
        }
        let obj = sub.clone();
        if !previous.is_empty() {
            self.emit(
                ctx,
                "customer.subscription.updated",
                &obj,
                Some(Value::Object(previous)),
            );
        }
        Ok(obj)
    }

    /// Cancels now (`DELETE /v1/subscriptions/{id}`); sends `customer.subscription.deleted`.
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
        sub["canceled_at"] = json!(ctx.now);
        sub["ended_at"] = json!(ctx.now);
        if sub["cancellation_details"]["reason"].is_null() {
            sub["cancellation_details"]["reason"] = json!(reason);
        }
        let obj = sub.clone();
        self.emit(ctx, "customer.subscription.deleted", &obj, None);
        Ok(obj)
    }

    /// Control plane: forces a status. `canceled` cancels (`.deleted` event); others
    /// send `.updated`; `past_due` and `unpaid` also add an open invoice and
    /// `invoice.payment_failed`.
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
        let failed_invoice = matches!(status, "past_due" | "unpaid")
            .then(|| self.make_invoice(ctx, &current, false, "subscription_cycle"));
        let sub = self.subscriptions.get_mut(id).expect("exists");
        let previous = json!({ "status": sub["status"].clone() });
        sub["status"] = json!(status);
        if let Some(inv) = &failed_invoice {
            sub["latest_invoice"] = inv["id"].clone();
        }
        let obj = sub.clone();
        self.emit(ctx, "customer.subscription.updated", &obj, Some(previous));
        if let Some(inv) = failed_invoice {
            self.emit(ctx, "invoice.payment_failed", &inv, None);
        }
        Ok(obj)
    }

    /// After the clock moved: subscriptions whose period ended either end
    /// (`cancel_at_period_end`) or renew with a new paid invoice.
    pub fn roll_subscriptions(&mut self, ctx: &Ctx) {
        for id in self.subscriptions.ids_oldest() {
            for _ in 0..1000 {
                let Some(sub) = self.subscriptions.get(&id) else {
                    break;
                };
                let (_, end) = period_of(sub);
                let status = sub["status"].as_str().unwrap_or("");
                if end > ctx.now || !matches!(status, "active" | "trialing" | "past_due") {
                    break;
                }
                if sub["cancel_at_period_end"] == true {
                    let sub = self.subscriptions.get_mut(&id).expect("exists");
                    sub["status"] = json!("canceled");
                    sub["ended_at"] = json!(end);
                    let obj = sub.clone();
                    self.emit(ctx, "customer.subscription.deleted", &obj, None);
                    break;
                }
                let sub = self.subscriptions.get_mut(&id).expect("exists");
                let previous_items = sub["items"].clone();
                for item in sub["items"]["data"].as_array_mut().into_iter().flatten() {
                    let (interval, count) = interval_of(&item["price"]);
                    let start = item["current_period_end"].as_i64().unwrap_or(end);
                    item["current_period_start"] = json!(start);
                    item["current_period_end"] = json!(add_interval(start, &interval, count));
                }
                let renewed = sub.clone();
                let invoice = self.make_invoice(ctx, &renewed, true, "subscription_cycle");
                let sub = self.subscriptions.get_mut(&id).expect("exists");
                sub["latest_invoice"] = invoice["id"].clone();
                let previous =
                    json!({ "items": previous_items, "latest_invoice": renewed["latest_invoice"] });
                if sub["status"] == "past_due" {
                    sub["status"] = json!("active");
                }
                let obj = sub.clone();
                self.emit(ctx, "invoice.paid", &invoice, None);
                self.emit(ctx, "customer.subscription.updated", &obj, Some(previous));
            }
        }
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

    pub fn retrieve_invoice(&self, id: &str) -> Result<&Value, ApiError> {
        self.invoices
            .get(id)
            .ok_or_else(|| ApiError::no_such("invoice", id))
    }

    pub fn list_invoices(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let customer = p.str("customer")?;
        let subscription = p.str("subscription")?;
        let status = p.str("status")?;
        let created = created_filter(p)?;
        paginate(&self.invoices, p, "/v1/invoices", "invoice", |i| {
            customer
                .as_ref()
                .is_none_or(|c| i["customer"] == c.as_str())
                && subscription
                    .as_ref()
                    .is_none_or(|c| i["subscription"] == c.as_str())
                && status.as_ref().is_none_or(|c| i["status"] == c.as_str())
                && created(i)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::add_interval;

    #[test]
    fn calendar_months() {
        // 2024-01-31T00:00:00Z + 1 month = 2024-02-29 (leap year).
        assert_eq!(add_interval(1_706_659_200, "month", 1), 1_709_164_800);
        assert_eq!(add_interval(0, "day", 2), 172_800);
        assert_eq!(add_interval(0, "year", 1), 31_536_000);
    }
}
