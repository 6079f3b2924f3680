//! A draft invoice's discounts, taxes and totals. Every subscription invoice
//! passes here once, when it is drafted:
//!
//! 1. the customer's address, tax ids and exemption are copied onto it, and the
//!    seller's country (`account_country`);
//! 2. each live discount of the subscription takes its share off the
//!    discountable lines (in order, each on what the previous ones left); a
//!    `once` discount is used up by the first invoice it reduces;
//! 3. with automatic tax on, each line is taxed on its amount after discounts at
//!    the customer's rate (see `tax`); a customer who can no longer be located
//!    gets no tax and `automatic_tax.disabled_reason =
//!    finalization_requires_location_inputs`;
//! 4. `total_excluding_tax = subtotal − discounts`, `total = total_excluding_tax +
//!    tax`, `amount_due = max(total, 0)` (finalization then applies the balance).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::coupons::discount_amounts;
use super::{Ctx, Store};
use crate::{geo, objects};

impl Store {
    /// Applies discounts and automatic tax to the draft `inv` of `sub`.
    pub(crate) fn adjust_invoice(&mut self, ctx: &Ctx, inv: &mut Value, sub: &Value) {
        let customer = inv["customer"].as_str().unwrap_or_default().to_string();
        let currency = inv["currency"].as_str().unwrap_or("usd").to_string();
        if let Some(c) = self.customers.get(&customer) {
            inv["customer_address"] = c["address"].clone();
            inv["customer_tax_exempt"] = c["tax_exempt"].clone();
        }
        inv["customer_tax_ids"] = json!(self.customer_tax_ids(&customer));
        inv["account_country"] = json!(self.tax.seller_country);

        let lines = inv["lines"]["data"].as_array().cloned().unwrap_or_default();
        let amounts: Vec<i64> = lines
            .iter()
            .map(|l| l["amount"].as_i64().unwrap_or(0))
            .collect();
        let mut open: Vec<i64> = lines
            .iter()
            .zip(&amounts)
            .map(|(l, a)| if l["discountable"] == true { *a } else { 0 })
            .collect();

        // Discounts, in the subscription's order.
        let mut per_line: Vec<Vec<(String, i64)>> = vec![Vec::new(); lines.len()];
        let mut used_once = Vec::new();
        for (id, coupon) in self.live_discounts(sub, ctx.now) {
            let off = discount_amounts(&coupon, &currency, &open);
            if off.iter().sum::<i64>() > 0 && coupon["duration"] == "once" {
                used_once.push(id.clone());
            }
            for (i, amount) in off.into_iter().enumerate() {
                open[i] -= amount;
                per_line[i].push((id.clone(), amount));
            }
        }

        // Tax.
        let automatic = sub["automatic_tax"]["enabled"] == true;
        let decision = if automatic {
            self.tax_decision(&customer)
        } else {
            None
        };
        let rate = decision.as_ref().map(|d| self.tax_rate_for(ctx, d));

        let mut discount_totals: BTreeMap<String, i64> = BTreeMap::new();
        let mut discount_order: Vec<String> = Vec::new();
        let (mut discount_sum, mut tax_sum, mut taxable_sum) = (0i64, 0i64, 0i64);
        let data = inv["lines"]["data"].as_array_mut().expect("lines");
        for (i, line) in data.iter_mut().enumerate() {
            let mut line_discount = 0;
            let mut amounts_json = Vec::new();
            let mut ids = Vec::new();
            for (id, amount) in &per_line[i] {
                if *amount == 0 {
                    continue;
                }
                line_discount += amount;
                amounts_json.push(json!({ "amount": amount, "discount": id }));
                ids.push(json!(id));
                if !discount_order.contains(id) {
                    discount_order.push(id.clone());
                }
                *discount_totals.entry(id.clone()).or_default() += amount;
            }
            line["discount_amounts"] = json!(amounts_json);
            line["discounts"] = json!(ids);
            discount_sum += line_discount;
            if let (Some(d), Some(rate)) = (&decision, &rate) {
                let taxable = amounts[i] - line_discount;
                let tax = geo::apply_rate(taxable, d.basis_points);
                tax_sum += tax;
                taxable_sum += taxable;
                line["taxes"] = json!([objects::invoice_tax(tax, rate, d.reason, taxable)]);
            }
        }

        inv["discounts"] = json!(discount_order);
        inv["total_discount_amounts"] = json!(discount_order
            .iter()
            .map(|id| json!({ "amount": discount_totals[id], "discount": id }))
            .collect::<Vec<_>>());
        if automatic {
            match (&decision, &rate) {
                (Some(d), Some(rate)) => {
                    inv["automatic_tax"] = objects::invoice_automatic_tax(true, Some("complete"));
                    inv["total_taxes"] =
                        json!([objects::invoice_tax(tax_sum, rate, d.reason, taxable_sum)]);
                }
                _ => {
                    inv["automatic_tax"] =
                        objects::invoice_automatic_tax(false, Some("requires_location_inputs"));
                }
            }
        }
        let subtotal: i64 = amounts.iter().sum();
        let excluding_tax = subtotal - discount_sum;
        let total = excluding_tax + tax_sum;
        inv["subtotal"] = json!(subtotal);
        inv["subtotal_excluding_tax"] = json!(subtotal);
        inv["total_excluding_tax"] = json!(excluding_tax);
        inv["total"] = json!(total);
        inv["amount_due"] = json!(total.max(0));
        inv["amount_remaining"] = json!(total.max(0));

        if !used_once.is_empty() {
            if let Some(s) = sub["id"]
                .as_str()
                .and_then(|id| self.subscriptions.get_mut(id))
            {
                if let Some(list) = s["discounts"].as_array_mut() {
                    list.retain(|d| !used_once.iter().any(|u| d == u.as_str()));
                }
            }
            for id in &used_once {
                if let Some(d) = self.promos.discounts.get_mut(id) {
                    d["end"] = json!(ctx.now);
                }
            }
        }
    }
}
