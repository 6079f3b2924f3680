//! Metered subscription items: billed in arrears from a meter (see `meters`).
//!
//! Each metered item accrues usage from the start of its current period, or from
//! the moment it was added or changed price. That *usage window* is closed when the
//! period ends (renewal, or cancellation at period end), when the item's price
//! changes or it goes away, and when a trial starts or ends; a closed window waits
//! for the subscription's next invoice like a pending proration. An invoice line of
//! a window is the meter's aggregate for the customer over the window × the unit
//! amount (a negative aggregate bills 0; usage during a trial is free), computed
//! again when the invoice is finalized, so events that arrive before then count.
//!
//! **The grace period.** Stripe finalizes a renewal invoice about an hour after the
//! period ends, and meter events with a timestamp in the period that arrive in that
//! hour are still billed on it. The simulator does the same for an invoice that
//! carries usage: the renewal (or the final invoice of a subscription cancelled at
//! period end) is created as a draft at the period's end (`invoice.created`,
//! `automatically_finalizes_at` set) and finalized and charged `grace_s` later
//! (3600 by default; `POST /_sim/config {"invoice_grace_seconds"}`). An event with
//! an old period's timestamp that arrives after that is accepted by the meter but
//! billed on no invoice, as in Stripe. Renewals without usage are finalized at once.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::invoices::{Attempt, Draft};
use super::periods::period_of;
use super::{Ctx, Store};
use crate::ids;
use crate::objects::{self, is_metered, LineKind, LineSpec};

/// Stripe's default: invoices are finalized an hour after the period ends.
pub(crate) const DEFAULT_GRACE_S: i64 = 3600;

/// Usage of one metered item over a window, to be invoiced.
#[derive(Debug, Clone)]
pub(crate) struct UsageWindow {
    /// The item's price while the usage accrued.
    price: Value,
    item: String,
    window: (i64, i64),
    /// Usage during a trial is not charged.
    trial: bool,
    /// The id of the invoice line that shows it.
    line_id: String,
}

/// What the store remembers about metered items and their invoices.
#[derive(Debug)]
pub(crate) struct Metering {
    /// By subscription, then item: where un-invoiced usage starts (absent: the
    /// current period's start).
    since: HashMap<String, HashMap<String, i64>>,
    /// Closed windows waiting for the subscription's next invoice.
    pending: HashMap<String, Vec<UsageWindow>>,
    /// The windows each invoice bills, recomputed when it is finalized.
    on_invoice: HashMap<String, Vec<UsageWindow>>,
    /// Drafts waiting out the grace period: invoice id → when it is finalized.
    pub(crate) grace: HashMap<String, i64>,
    /// How long after a period's end an invoice with usage is finalized.
    pub(crate) grace_s: i64,
}

impl Default for Metering {
    fn default() -> Self {
        Metering {
            since: HashMap::new(),
            pending: HashMap::new(),
            on_invoice: HashMap::new(),
            grace: HashMap::new(),
            grace_s: DEFAULT_GRACE_S,
        }
    }
}

/// Sums an invoice's lines into its totals (after metered lines were recomputed).
fn retotal(invoice: &mut Value) {
    let total: i64 = invoice["lines"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["amount"].as_i64())
        .sum();
    for key in [
        "subtotal",
        "subtotal_excluding_tax",
        "total",
        "total_excluding_tax",
    ] {
        invoice[key] = json!(total);
    }
    invoice["amount_due"] = json!(total.max(0));
    invoice["amount_remaining"] = json!(total.max(0));
}

impl Store {
    fn usage_since(&self, sub: &Value, item: &Value) -> i64 {
        let sub_id = sub["id"].as_str().unwrap_or_default();
        let item_id = item["id"].as_str().unwrap_or_default();
        self.metering
            .since
            .get(sub_id)
            .and_then(|m| m.get(item_id))
            .copied()
            .unwrap_or_else(|| item["current_period_start"].as_i64().unwrap_or(0))
    }

    /// Closes `item`'s usage window at `at` (if it is metered and accrued since).
    pub(crate) fn close_usage(&mut self, sub_id: &str, item: &Value, at: i64) {
        if !is_metered(&item["price"]) {
            return;
        }
        let Some(sub) = self.subscriptions.get(sub_id) else {
            return;
        };
        let since = self.usage_since(sub, item);
        let trial = sub["status"] == "trialing";
        let item_id = item["id"].as_str().unwrap_or_default().to_string();
        if since < at {
            self.metering
                .pending
                .entry(sub_id.to_string())
                .or_default()
                .push(UsageWindow {
                    price: item["price"].clone(),
                    item: item_id.clone(),
                    window: (since, at),
                    trial,
                    line_id: ids::object_id("il_"),
                });
        }
        self.start_usage(sub_id, &item_id, at);
    }

    /// Closes the usage windows of every metered item of the subscription at `at`.
    pub(crate) fn close_all_usage(&mut self, sub_id: &str, at: i64) {
        let items: Vec<Value> = self
            .subscriptions
            .get(sub_id)
            .and_then(|s| s["items"]["data"].as_array().cloned())
            .unwrap_or_default();
        for item in &items {
            self.close_usage(sub_id, item, at);
        }
    }

    /// A metered item starts accruing at `at` (added, or its price changed).
    pub(crate) fn start_usage(&mut self, sub_id: &str, item_id: &str, at: i64) {
        self.metering
            .since
            .entry(sub_id.to_string())
            .or_default()
            .insert(item_id.to_string(), at);
    }

    /// The invoice line of a usage window, with the meter's current aggregate.
    fn usage_line(&self, customer: &str, sub_id: &str, w: &UsageWindow) -> Value {
        let value = w.price["recurring"]["meter"]
            .as_str()
            .and_then(|m| self.meters.get(m))
            .and_then(|m| {
                self.meter_events
                    .aggregate(m, customer, w.window.0, w.window.1)
            })
            .unwrap_or(0.0);
        let quantity = if value > 0.0 { value.round() as u64 } else { 0 };
        let amount = if w.trial {
            0
        } else {
            objects::amount_for(&w.price, quantity)
        };
        let name = self.product_name(&w.price);
        objects::invoice_line(
            &w.line_id,
            None,
            &LineSpec {
                kind: if w.trial {
                    LineKind::Trial
                } else {
                    LineKind::Metered
                },
                price: &w.price,
                product_name: &name,
                quantity,
                amount,
                period: w.window,
                subscription: sub_id,
                subscription_item: &w.item,
                invoice_item: None,
                at: w.window.1,
            },
        )
    }

    /// The usage lines the subscription's next invoice (`invoice_id`) carries: every
    /// closed window, with the aggregates known now. Called when it is drafted.
    pub(crate) fn usage_lines(&mut self, invoice_id: &str, sub: &Value) -> Vec<Value> {
        let sub_id = sub["id"].as_str().unwrap_or_default();
        let Some(windows) = self.metering.pending.remove(sub_id) else {
            return Vec::new();
        };
        let customer = sub["customer"].as_str().unwrap_or_default();
        let lines = windows
            .iter()
            .map(|w| self.usage_line(customer, sub_id, w))
            .collect();
        self.metering
            .on_invoice
            .insert(invoice_id.to_string(), windows);
        lines
    }

    /// Recomputes an invoice's usage lines from the meter, just before it is
    /// finalized (late events within the grace period count).
    pub(crate) fn refresh_usage_lines(&mut self, invoice_id: &str) {
        let Some(windows) = self.metering.on_invoice.remove(invoice_id) else {
            return;
        };
        let Some(inv) = self.invoices.get(invoice_id) else {
            return;
        };
        let customer = inv["customer"].as_str().unwrap_or_default().to_string();
        let sub_id = inv["parent"]["subscription_details"]["subscription"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let fresh: Vec<Value> = windows
            .iter()
            .map(|w| {
                let mut line = self.usage_line(&customer, &sub_id, w);
                line["invoice"] = json!(invoice_id);
                line
            })
            .collect();
        let inv = self.invoices.get_mut(invoice_id).expect("checked");
        if let Some(lines) = inv["lines"]["data"].as_array_mut() {
            for line in lines.iter_mut() {
                if let Some(new) = fresh.iter().find(|f| f["id"] == line["id"]) {
                    *line = new.clone();
                }
            }
        }
        retotal(inv);
    }

    /// Leaves a drafted invoice that bills usage open for the grace period after
    /// `period_end`; false (finalize now) when it bills none or the grace is 0.
    pub(crate) fn hold_for_grace(&mut self, invoice_id: &str, period_end: i64) -> bool {
        if self.metering.grace_s <= 0 || !self.metering.on_invoice.contains_key(invoice_id) {
            return false;
        }
        let at = period_end + self.metering.grace_s;
        self.metering.grace.insert(invoice_id.to_string(), at);
        if let Some(inv) = self.invoices.get_mut(invoice_id) {
            inv["automatically_finalizes_at"] = json!(at);
        }
        self.agenda.touch();
        true
    }

    /// The grace period of a draft is over: finalize and charge it (unless it was
    /// paid or finalized meanwhile).
    pub(crate) fn finalize_after_grace(&mut self, ctx: &Ctx, invoice_id: &str) {
        self.metering.grace.remove(invoice_id);
        self.agenda.touch();
        if self
            .invoices
            .get(invoice_id)
            .is_none_or(|i| i["status"] != "draft")
        {
            return;
        }
        let payment = self.charge_invoice(ctx, invoice_id, Attempt::First);
        self.settle_subscription(ctx, invoice_id, payment);
    }

    /// Drafts an invoice for the usage windows still waiting (a subscription that
    /// ended at its period's end, `at`), held for the grace period. Emits
    /// `invoice.created` (and, once finalized, the payment events).
    pub(crate) fn bill_pending_usage(&mut self, ctx: &Ctx, sub_id: &str, at: i64) {
        if self
            .metering
            .pending
            .get(sub_id)
            .is_none_or(|w| w.is_empty())
        {
            return;
        }
        let Some(sub) = self.subscriptions.get(sub_id).cloned() else {
            return;
        };
        let draft = Draft {
            id: ids::object_id("in_"),
            reason: "subscription_cycle",
            lines: Vec::new(),
            period: (period_of(&sub).0, at),
        };
        let id = self.draft_invoice(ctx, &sub, draft);
        if !self.hold_for_grace(&id, at) {
            let payment = self.charge_invoice(ctx, &id, Attempt::First);
            self.settle_subscription(ctx, &id, payment);
        }
    }
}
