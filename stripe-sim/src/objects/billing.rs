//! Billing objects: invoices, their line items and subscription schedules, in the
//! `2026-09-30.endive` shape (the subscription link of an invoice lives under
//! `parent.subscription_details`; billing periods live on subscription items).

use serde_json::{json, Value};

/// What an invoice line is for; drives its description and proration flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// A whole period of a subscription item.
    Period,
    /// The free period of a trial (amount 0).
    Trial,
    /// Credit for the unused rest of a period on the old price or quantity.
    Unused,
    /// Charge for the rest of a period on the new price or quantity.
    Remaining,
    /// Usage of a metered price over a past period (its quantity read from the meter).
    Metered,
}

/// One invoice line, before it is attached to an invoice.
pub(crate) struct LineSpec<'a> {
    pub kind: LineKind,
    pub price: &'a Value,
    pub product_name: &'a str,
    pub quantity: u64,
    pub amount: i64,
    pub period: (i64, i64),
    pub subscription: &'a str,
    pub subscription_item: &'a str,
    /// Prorations are invoice items (`ii_…`) in Stripe; whole periods are not.
    pub invoice_item: Option<String>,
    /// The moment a proration is computed at (shown in its description).
    pub at: i64,
}

fn day(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%-d %b %Y").to_string())
        .unwrap_or_default()
}

/// `$29.00` style amount for descriptions.
pub(crate) fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    let symbol = match currency {
        "usd" => "$".to_string(),
        "eur" => "€".to_string(),
        "gbp" => "£".to_string(),
        other => format!("{} ", other.to_uppercase()),
    };
    format!("{sign}{symbol}{}.{:02}", a / 100, a % 100)
}

fn describe(spec: &LineSpec<'_>) -> String {
    let qty = spec.quantity;
    let name = spec.product_name;
    match spec.kind {
        LineKind::Period => {
            let currency = spec.price["currency"].as_str().unwrap_or("usd");
            let unit = spec.price["unit_amount"].as_i64().unwrap_or(0);
            let interval = spec.price["recurring"]["interval"]
                .as_str()
                .unwrap_or("month");
            format!("{qty} × {name} (at {} / {interval})", money(unit, currency))
        }
        LineKind::Trial => format!("Trial period for {name}"),
        LineKind::Unused => format!("Unused time on {qty} × {name} after {}", day(spec.at)),
        LineKind::Remaining => {
            format!("Remaining time on {qty} × {name} after {}", day(spec.at))
        }
        LineKind::Metered => match spec.price["unit_amount"].as_i64() {
            Some(unit) => {
                let currency = spec.price["currency"].as_str().unwrap_or("usd");
                format!(
                    "{qty} × {name} (usage at {} per unit)",
                    money(unit, currency)
                )
            }
            None => format!("{qty} × {name} (usage, tiered)"),
        },
    }
}

/// An invoice line item; `invoice` is null until the line is put on an invoice.
pub(crate) fn invoice_line(id: &str, invoice: Option<&str>, spec: &LineSpec<'_>) -> Value {
    let proration = matches!(spec.kind, LineKind::Unused | LineKind::Remaining);
    json!({
        "id": id,
        "object": "line_item",
        "amount": spec.amount,
        "currency": spec.price["currency"],
        "description": describe(spec),
        "discount_amounts": [],
        "discountable": !proration,
        "discounts": [],
        "invoice": invoice,
        "livemode": false,
        "metadata": {},
        "parent": {
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": spec.invoice_item,
                "proration": proration,
                "proration_details": { "credited_items": null },
                "subscription": spec.subscription,
                "subscription_item": spec.subscription_item
            },
            "type": "subscription_item_details"
        },
        "period": { "end": spec.period.1, "start": spec.period.0 },
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": { "price": spec.price["id"], "product": spec.price["product"] },
            "type": "price_details",
            "unit_amount_decimal": spec.price["unit_amount_decimal"]
        },
        "quantity": spec.quantity,
        "subscription": spec.subscription,
        "subtotal": spec.amount,
        "taxes": []
    })
}

pub(crate) struct InvoiceFields<'a> {
    pub customer: &'a Value,
    pub subscription: &'a Value,
    pub currency: String,
    pub lines: Vec<Value>,
    /// Stripe's "invoice items period": the previous period for a renewal, the
    /// creation time twice for the first invoice. Lines carry the service period.
    pub period: (i64, i64),
    pub billing_reason: &'a str,
}

/// A draft invoice for a subscription. Finalization (number, balance, hosted URLs)
/// and payment change it in place (see `store::invoices`).
pub(crate) fn draft_invoice(id: &str, created: i64, f: InvoiceFields<'_>) -> Value {
    let total: i64 = f.lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    let line_count = f.lines.len();
    let sub_id = f.subscription["id"].clone();
    json!({
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "stripe-sim",
        "account_tax_ids": null,
        "amount_due": total.max(0),
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": total.max(0),
        "amount_shipping": 0,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": true,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
        "automatically_finalizes_at": null,
        "billing_reason": f.billing_reason,
        "collection_method": "charge_automatically",
        "confirmation_secret": null,
        "created": created,
        "currency": f.currency,
        "custom_fields": null,
        "customer": f.customer["id"],
        "customer_account": null,
        "customer_address": null,
        "customer_email": f.customer["email"],
        "customer_name": f.customer["name"],
        "customer_phone": null,
        "customer_shipping": null,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": null,
        "effective_at": null,
        "ending_balance": null,
        "footer": null,
        "from_invoice": null,
        "hosted_invoice_url": null,
        "invoice_pdf": null,
        "issuer": { "type": "self" },
        "last_finalization_error": null,
        "latest_revision": null,
        "lines": {
            "object": "list",
            "data": f.lines,
            "has_more": false,
            "total_count": line_count,
            "url": format!("/v1/invoices/{id}/lines")
        },
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": null,
        "on_behalf_of": null,
        "parent": {
            "quote_details": null,
            "subscription_details": {
                "metadata": f.subscription["metadata"],
                "subscription": sub_id,
                "subscription_proration_date": null
            },
            "type": "subscription_details"
        },
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "period_end": f.period.1,
        "period_start": f.period.0,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "rendering": null,
        "shipping_cost": null,
        "shipping_details": null,
        "starting_balance": 0,
        "statement_descriptor": null,
        "status": "draft",
        "status_details": null,
        "status_transitions": {
            "finalized_at": null,
            "marked_uncollectible_at": null,
            "paid_at": null,
            "voided_at": null
        },
        "subscription": sub_id,
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": null,
        "threshold_reason": null,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": null
    })
}

/// One configuration item of a schedule phase (price and plan are ids, as Stripe
/// returns them unexpanded).
pub(crate) fn phase_item(price: &str, quantity: u64) -> Value {
    json!({
        "billing_thresholds": null,
        "discounts": [],
        "metadata": {},
        "plan": price,
        "price": price,
        "quantity": quantity,
        "tax_rates": []
    })
}

pub(crate) struct PhaseFields {
    pub start: i64,
    pub end: i64,
    /// `(price id, quantity)`.
    pub items: Vec<(String, u64)>,
    pub currency: String,
    pub proration_behavior: String,
    pub trial_end: Option<i64>,
    pub metadata: Value,
}

pub(crate) fn schedule_phase(f: PhaseFields) -> Value {
    let items: Vec<Value> = f.items.iter().map(|(p, q)| phase_item(p, *q)).collect();
    json!({
        "add_invoice_items": [],
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": null,
        "billing_thresholds": null,
        "collection_method": null,
        "currency": f.currency,
        "default_payment_method": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "end_date": f.end,
        "invoice_settings": null,
        "items": items,
        "metadata": f.metadata,
        "on_behalf_of": null,
        "proration_behavior": f.proration_behavior,
        "start_date": f.start,
        "transfer_data": null,
        "trial_end": f.trial_end
    })
}

pub(crate) struct ScheduleFields<'a> {
    pub customer: &'a str,
    pub subscription: &'a str,
    pub phases: Vec<Value>,
    pub metadata: Value,
}

/// A schedule managing an existing subscription (`from_subscription`): active, with
/// `end_behavior` `release` until updated.
pub(crate) fn subscription_schedule(id: &str, created: i64, f: ScheduleFields<'_>) -> Value {
    json!({
        "id": id,
        "object": "subscription_schedule",
        "application": null,
        "billing_mode": { "flexible": { "proration_discounts": "included" }, "type": "flexible", "updated_at": created },
        "canceled_at": null,
        "completed_at": null,
        "created": created,
        "current_phase": null,
        "customer": f.customer,
        "customer_account": null,
        "default_settings": {
            "application_fee_percent": null,
            "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": null,
            "collection_method": "charge_automatically",
            "default_payment_method": null,
            "description": null,
            "invoice_settings": {
                "account_tax_ids": null,
                "custom_fields": null,
                "days_until_due": null,
                "description": null,
                "footer": null,
                "issuer": { "type": "self" }
            },
            "on_behalf_of": null,
            "transfer_data": null
        },
        "end_behavior": "release",
        "livemode": false,
        "metadata": f.metadata,
        "phases": f.phases,
        "released_at": null,
        "released_subscription": null,
        "status": "active",
        "subscription": f.subscription,
        "test_clock": null
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_descriptions() {
        assert_eq!(money(2900, "usd"), "$29.00");
        assert_eq!(money(-1450, "usd"), "-$14.50");
        let price = json!({"id": "price_x", "currency": "usd", "unit_amount": 1200,
            "unit_amount_decimal": "1200", "product": "prod_x", "recurring": {"interval": "month"}});
        let spec = LineSpec {
            kind: LineKind::Unused,
            price: &price,
            product_name: "Team",
            quantity: 3,
            amount: -1800,
            period: (1_767_225_600, 1_769_904_000),
            subscription: "sub_1",
            subscription_item: "si_1",
            invoice_item: Some("ii_1".into()),
            at: 1_768_435_200,
        };
        let line = invoice_line("il_1", None, &spec);
        assert_eq!(
            line["description"],
            "Unused time on 3 × Team after 15 Jan 2026"
        );
        assert_eq!(
            line["parent"]["subscription_item_details"]["proration"],
            true
        );
        let whole = LineSpec {
            kind: LineKind::Period,
            ..spec
        };
        assert_eq!(
            invoice_line("il_2", Some("in_1"), &whole)["description"],
            "3 × Team (at $12.00 / month)"
        );
    }
}
