//! Changing what a subscription bills for, mid-period: a new price or quantity on
//! its items (subscription updates and schedule phases) and a new trial end, with
//! Stripe's prorations (formula in `proration`):
//!
//! - `create_prorations` (default): the credit and charge lines wait as pending
//!   invoice items and join the subscription's next invoice;
//! - `always_invoice`: they (and any pending ones) are invoiced and charged at once
//!   (`billing_reason: subscription_update`);
//! - `none`: the price changes, nothing is prorated.
//!
//! During a trial nothing is prorated (nothing was paid). A change of billing
//! interval (month → year) restarts the period now and invoices at once: credit for
//! the unused time, the whole new period charged.

use serde_json::{json, Map, Value};

use super::periods::{interval_of, next_period, period_of, set_period, TRIAL_WILL_END_DAYS};
use super::proration::{remaining_charge, unused_credit};
use super::{Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;
use crate::ids;
use crate::objects::{self, is_metered, LineKind, LineSpec};

/// Stripe's `proration_behavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proration {
    Create,
    AlwaysInvoice,
    None,
}

impl Proration {
    pub(crate) fn from_str(s: &str) -> Option<Proration> {
        match s {
            "create_prorations" => Some(Proration::Create),
            "always_invoice" => Some(Proration::AlwaysInvoice),
            "none" => Some(Proration::None),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Proration::Create => "create_prorations",
            Proration::AlwaysInvoice => "always_invoice",
            Proration::None => "none",
        }
    }

    /// The parameter `key`, `create_prorations` when absent.
    pub(crate) fn parse(p: Params<'_>, key: &str) -> Result<Proration, ApiError> {
        match p.str(key)? {
            None => Ok(Proration::Create),
            Some(s) => Proration::from_str(&s).ok_or_else(|| {
                ApiError::invalid(
                    key,
                    format!(
                        "Invalid {key}: must be one of create_prorations, always_invoice, or none."
                    ),
                )
            }),
        }
    }
}

/// What one subscription item should become. `id: None` is a new item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemSpec {
    pub id: Option<String>,
    pub price: String,
    pub quantity: u64,
}

/// Whether `item` already is what `spec` asks for (a metered item has no quantity).
fn same_item(item: &Value, spec: &ItemSpec) -> bool {
    item["price"]["id"] == spec.price.as_str()
        && (is_metered(&item["price"]) || item["quantity"].as_u64() == Some(spec.quantity))
}

/// The outcome of [`Store::change_items`].
#[derive(Debug, Default)]
pub(crate) struct ItemChange {
    /// Whether any price or quantity changed.
    pub changed: bool,
    /// Lines to invoice and charge now (`always_invoice`, or a new interval).
    pub invoice_now: Option<Vec<Value>>,
}

impl Store {
    /// A proration line for `item` (its price and quantity) over `[at, period end)`:
    /// the credit for unused time (`Unused`) or the charge for the rest (`Remaining`).
    fn proration_line(
        &self,
        kind: LineKind,
        sub_id: &str,
        item: &Value,
        period: (i64, i64),
        at: i64,
    ) -> Value {
        let price = &self.billed_price(sub_id, &item["price"]);
        let quantity = item["quantity"].as_u64().unwrap_or(1);
        let full = price["unit_amount"].as_i64().unwrap_or(0) * quantity as i64;
        let amount = match kind {
            LineKind::Unused => unused_credit(full, period, at),
            _ => remaining_charge(full, period, at),
        };
        let name = self.product_name(price);
        objects::invoice_line(
            &ids::object_id("il_"),
            None,
            &LineSpec {
                kind,
                price,
                product_name: &name,
                quantity,
                amount,
                period: (at, period.1),
                subscription: sub_id,
                subscription_item: item["id"].as_str().unwrap_or_default(),
                invoice_item: Some(ids::object_id("ii_")),
                at,
            },
        )
    }

    /// Sets the subscription's items to `specs` (by position: changed, added or
    /// removed) at time `at`, with prorations per `proration`. Prices are checked.
    pub(crate) fn change_items(
        &mut self,
        sub_id: &str,
        specs: &[ItemSpec],
        proration: Proration,
        at: i64,
    ) -> ItemChange {
        let sub = self.subscriptions.get(sub_id).expect("exists").clone();
        let old_items: Vec<Value> = sub["items"]["data"].as_array().cloned().unwrap_or_default();
        let same = old_items.len() == specs.len()
            && old_items.iter().zip(specs).all(|(o, s)| same_item(o, s));
        if same {
            return ItemChange::default();
        }
        let period = period_of(&sub);
        let trialing = sub["status"] == "trialing";
        let old_interval = old_items.first().map(|i| interval_of(&i["price"]));
        let new_prices: Vec<Value> = specs
            .iter()
            .map(|s| self.prices.get(&s.price).cloned().expect("price checked"))
            .collect();
        let new_interval = new_prices.first().map(interval_of);
        let reset = !trialing && old_interval != new_interval;
        // Usage so far is owed at the old price: close the window of every metered
        // item that changes or goes (it joins the next invoice).
        for (i, old) in old_items.iter().enumerate() {
            let next = specs
                .iter()
                .find(|s| s.id.is_some() && old["id"] == s.id.as_deref().unwrap_or(""))
                .or_else(|| specs.get(i).filter(|s| s.id.is_none()));
            if reset || !next.is_some_and(|s| same_item(old, s)) {
                self.close_usage(sub_id, old, at);
            }
        }
        let mut lines = Vec::new();
        let new_items: Vec<Value> = specs
            .iter()
            .zip(&new_prices)
            .enumerate()
            .map(|(i, (spec, price))| {
                // By id when the spec names one (updates), else by position (phases).
                let kept = match spec.id.as_deref() {
                    Some(id) => old_items.iter().find(|o| o["id"] == id),
                    None => old_items.get(i),
                };
                let id = kept
                    .and_then(|o| o["id"].as_str().map(str::to_string))
                    .or_else(|| spec.id.clone())
                    .unwrap_or_else(|| ids::new_id("si_", 14));
                let created = kept.and_then(|o| o["created"].as_i64()).unwrap_or(at);
                let mut item =
                    objects::subscription_item(&id, sub_id, price, spec.quantity, created, period);
                if let Some(o) = kept {
                    item["metadata"] = o["metadata"].clone();
                }
                item
            })
            .collect();
        if !trialing && proration != Proration::None || reset {
            // Credit every old item whose price or quantity changes (or that goes)…
            // (Metered items are never prorated: their usage is billed in arrears.)
            for (i, old) in old_items.iter().enumerate() {
                if is_metered(&old["price"]) {
                    continue;
                }
                let unchanged = specs.get(i).is_some_and(|s| same_item(old, s));
                if unchanged && !reset {
                    continue;
                }
                if proration == Proration::None && reset {
                    continue;
                }
                lines.push(self.proration_line(LineKind::Unused, sub_id, old, period, at));
            }
            // …and charge the rest of the period on every new or changed one.
            if !reset {
                for (i, item) in new_items.iter().enumerate() {
                    if is_metered(&item["price"]) {
                        continue;
                    }
                    let unchanged = old_items.get(i).is_some_and(|o| {
                        o["price"]["id"] == item["price"]["id"] && o["quantity"] == item["quantity"]
                    });
                    if unchanged {
                        continue;
                    }
                    lines.push(self.proration_line(LineKind::Remaining, sub_id, item, period, at));
                }
            }
        }
        // A metered item that is new, or bills a new price, accrues from `at`.
        for item in &new_items {
            let kept = old_items
                .iter()
                .any(|o| o["id"] == item["id"] && o["price"]["id"] == item["price"]["id"]);
            if is_metered(&item["price"]) && (reset || !kept) {
                self.start_usage(sub_id, item["id"].as_str().unwrap_or_default(), at);
            }
        }
        let sub = self.subscriptions.get_mut(sub_id).expect("exists");
        sub["items"]["data"] = Value::Array(new_items);
        sub["items"]["total_count"] = json!(specs.len());
        self.agenda.touch();
        if reset {
            let new_period = next_period(&new_prices[0], at);
            set_period(sub, new_period);
            sub["billing_cycle_anchor"] = json!(at);
            let sub = sub.clone();
            lines.extend(self.period_lines(&sub, LineKind::Period));
            return ItemChange {
                changed: true,
                invoice_now: Some(lines),
            };
        }
        let invoice_now = match proration {
            Proration::AlwaysInvoice if !trialing => Some(lines),
            _ => {
                if !lines.is_empty() {
                    self.pending_items
                        .entry(sub_id.to_string())
                        .or_default()
                        .extend(lines);
                }
                None
            }
        };
        ItemChange {
            changed: true,
            invoice_now,
        }
    }

    /// A new trial end: `now` ends a trial at once (a new period starts and is
    /// invoiced); a later time extends a trial, or starts one on an active
    /// subscription (crediting its unused time per `proration`). Returns lines to
    /// invoice now.
    pub(crate) fn change_trial_end(
        &mut self,
        ctx: &Ctx,
        sub_id: &str,
        trial_end: i64,
        proration: Proration,
        previous: &mut Map<String, Value>,
    ) -> Option<Vec<Value>> {
        let sub = self.subscriptions.get(sub_id).expect("exists").clone();
        let period = period_of(&sub);
        for key in ["status", "trial_start", "trial_end", "billing_cycle_anchor"] {
            previous
                .entry(key.to_string())
                .or_insert_with(|| sub[key].clone());
        }
        previous
            .entry("items".to_string())
            .or_insert_with(|| sub["items"].clone());
        self.agenda.touch();
        // Usage so far closes (free while trialing): the trial starts or ends now.
        if trial_end == ctx.now || sub["status"] != "trialing" {
            self.close_all_usage(sub_id, ctx.now);
        }
        if trial_end == ctx.now {
            // End the trial now: Stripe tells the customer it ended, then bills.
            if !self
                .sub_extra
                .get(sub_id)
                .is_some_and(|e| e.trial_will_end_sent)
            {
                self.emit(ctx, "customer.subscription.trial_will_end", &sub, None);
            }
            let s = self.subscriptions.get_mut(sub_id).expect("exists");
            let new_period = next_period(&s["items"]["data"][0]["price"].clone(), ctx.now);
            set_period(s, new_period);
            s["status"] = json!("active");
            s["trial_end"] = json!(ctx.now);
            s["billing_cycle_anchor"] = json!(ctx.now);
            let s = s.clone();
            self.sub_extra
                .entry(sub_id.into())
                .or_default()
                .trial_will_end_sent = true;
            return Some(self.period_lines(&s, LineKind::Period));
        }
        let mut lines = Vec::new();
        if sub["status"] != "trialing" && proration != Proration::None {
            for item in sub["items"]["data"].as_array().into_iter().flatten() {
                if is_metered(&item["price"]) {
                    continue;
                }
                lines.push(self.proration_line(LineKind::Unused, sub_id, item, period, ctx.now));
            }
        }
        let s = self.subscriptions.get_mut(sub_id).expect("exists");
        if s["status"] != "trialing" {
            s["trial_start"] = json!(ctx.now);
            set_period(s, (ctx.now, trial_end));
        } else {
            set_period(s, (period.0, trial_end));
        }
        s["status"] = json!("trialing");
        s["trial_end"] = json!(trial_end);
        s["billing_cycle_anchor"] = json!(trial_end);
        let extra = self.sub_extra.entry(sub_id.into()).or_default();
        extra.trial_will_end_sent =
            trial_end - TRIAL_WILL_END_DAYS * 86_400 <= ctx.now && extra.trial_will_end_sent;
        if lines.is_empty() {
            return None;
        }
        match proration {
            Proration::AlwaysInvoice => Some(lines),
            _ => {
                self.pending_items
                    .entry(sub_id.to_string())
                    .or_default()
                    .extend(lines);
                None
            }
        }
    }

    /// What an update would charge at once (for `payment_behavior=error_if_incomplete`).
    pub(crate) fn amount_due_now(
        &self,
        sub: &Value,
        specs: Option<&[ItemSpec]>,
        proration: Proration,
        at: i64,
        trial_end: Option<i64>,
    ) -> i64 {
        let period = period_of(sub);
        let mut due = 0;
        let trialing = sub["status"] == "trialing";
        if let Some(specs) = specs {
            let old: Vec<&Value> = sub["items"]["data"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            let old_interval = old.first().map(|i| interval_of(&i["price"]));
            let new_interval = specs
                .first()
                .and_then(|s| self.prices.get(&s.price))
                .map(interval_of);
            let reset = !trialing && old_interval != new_interval;
            // Unchanged items cancel out: their credit and charge are equal.
            if reset || (proration == Proration::AlwaysInvoice && !trialing) {
                for o in old.iter().filter(|o| !is_metered(&o["price"])) {
                    let amount = o["price"]["unit_amount"].as_i64().unwrap_or(0)
                        * o["quantity"].as_i64().unwrap_or(1);
                    due += unused_credit(amount, period, at);
                }
                for s in specs {
                    let Some(price) = self.prices.get(&s.price).filter(|p| !is_metered(p)) else {
                        continue;
                    };
                    let unit = price["unit_amount"].as_i64().unwrap_or(0);
                    let amount = unit * s.quantity as i64;
                    due += if reset {
                        amount
                    } else {
                        remaining_charge(amount, period, at)
                    };
                }
            }
        }
        if trialing && trial_end == Some(at) {
            let items = sub["items"]["data"].as_array().into_iter().flatten();
            for s in items.filter(|s| !is_metered(&s["price"])) {
                due += s["price"]["unit_amount"].as_i64().unwrap_or(0)
                    * s["quantity"].as_i64().unwrap_or(1);
            }
        }
        let pending: i64 = self
            .pending_items
            .get(sub["id"].as_str().unwrap_or_default())
            .map(|l| l.iter().filter_map(|l| l["amount"].as_i64()).sum())
            .unwrap_or(0);
        if due != 0 {
            due += pending;
        }
        let balance = self
            .customers
            .get(sub["customer"].as_str().unwrap_or_default())
            .and_then(|c| c["balance"].as_i64())
            .unwrap_or(0);
        due + balance
    }
}
