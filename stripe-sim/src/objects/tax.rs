//! Tax and discount objects in the `2026-09-30.endive` shape: customer tax ids,
//! the tax rates automatic tax applies, the tax entries on invoices and their
//! lines, coupons, promotion codes (`promotion.coupon`, the current shape) and
//! discounts (`source.coupon`).

use serde_json::{json, Value};

/// A customer's tax id. `status` is the verification status (`pending`,
/// `verified`, `unverified`, `unavailable`).
pub(crate) fn tax_id(
    id: &str,
    created: i64,
    customer: &str,
    kind: &str,
    value: &str,
    country: Option<&str>,
    status: &str,
) -> Value {
    json!({
        "id": id,
        "object": "tax_id",
        "country": country,
        "created": created,
        "customer": customer,
        "customer_account": null,
        "livemode": false,
        "owner": {
            "account": null,
            "application": null,
            "customer": customer,
            "customer_account": null,
            "type": "customer"
        },
        "type": kind,
        "value": value,
        "verification": { "status": status, "verified_address": null, "verified_name": null }
    })
}

/// A tax rate as automatic tax creates them (inactive: not for manual use).
pub(crate) fn tax_rate(
    id: &str,
    created: i64,
    country: &str,
    percentage: f64,
    display_name: &str,
    description: &str,
) -> Value {
    let tax_type = match display_name {
        "VAT" => "vat",
        "GST" => "gst",
        _ => "sales_tax",
    };
    json!({
        "id": id,
        "object": "tax_rate",
        "active": false,
        "country": country,
        "created": created,
        "description": description,
        "display_name": display_name,
        "effective_percentage": percentage,
        "flat_amount": null,
        "inclusive": false,
        "jurisdiction": country,
        "jurisdiction_level": "country",
        "livemode": false,
        "metadata": {},
        "percentage": percentage,
        "rate_type": "percentage",
        "state": null,
        "tax_type": tax_type
    })
}

/// One tax on an invoice or a line (`taxes[]`, `total_taxes[]`): exclusive, with
/// the rate and Stripe's `taxability_reason` (`standard_rated`, `reverse_charge`,
/// `not_collecting`, `customer_exempt`).
pub(crate) fn invoice_tax(amount: i64, rate: &str, reason: &str, taxable_amount: i64) -> Value {
    json!({
        "amount": amount,
        "tax_behavior": "exclusive",
        "tax_rate_details": { "tax_rate": rate },
        "taxability_reason": reason,
        "taxable_amount": taxable_amount,
        "type": "tax_rate_details"
    })
}

/// The `automatic_tax` hash of an invoice.
pub(crate) fn invoice_automatic_tax(enabled: bool, status: Option<&str>) -> Value {
    json!({
        "disabled_reason": if !enabled && status.is_some() { json!("finalization_requires_location_inputs") } else { Value::Null },
        "enabled": enabled,
        "liability": if enabled { json!({ "account": null, "type": "self" }) } else { Value::Null },
        "provider": if enabled { json!("stripe") } else { Value::Null },
        "status": status
    })
}

/// Fields of a new coupon, already validated.
pub(crate) struct CouponFields {
    pub name: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<(i64, String)>,
    pub duration: String,
    pub duration_in_months: Option<i64>,
    pub max_redemptions: Option<i64>,
    pub redeem_by: Option<i64>,
    pub metadata: Value,
}

pub(crate) fn coupon(id: &str, created: i64, f: CouponFields) -> Value {
    json!({
        "id": id,
        "object": "coupon",
        "amount_off": f.amount_off.as_ref().map(|a| a.0),
        "applies_to": null,
        "created": created,
        "currency": f.amount_off.as_ref().map(|a| a.1.clone()),
        "duration": f.duration,
        "duration_in_months": f.duration_in_months,
        "livemode": false,
        "max_redemptions": f.max_redemptions,
        "metadata": f.metadata,
        "name": f.name,
        "percent_off": f.percent_off,
        "redeem_by": f.redeem_by,
        "times_redeemed": 0,
        "valid": true
    })
}

/// Fields of a new promotion code, already validated.
pub(crate) struct PromotionCodeFields {
    pub code: String,
    pub coupon: String,
    pub customer: Option<String>,
    pub expires_at: Option<i64>,
    pub max_redemptions: Option<i64>,
    pub first_time_transaction: bool,
    pub active: bool,
    pub metadata: Value,
}

pub(crate) fn promotion_code(id: &str, created: i64, f: PromotionCodeFields) -> Value {
    json!({
        "id": id,
        "object": "promotion_code",
        "active": f.active,
        "code": f.code,
        "created": created,
        "customer": f.customer,
        "customer_account": null,
        "expires_at": f.expires_at,
        "livemode": false,
        "max_redemptions": f.max_redemptions,
        "metadata": f.metadata,
        "promotion": { "coupon": f.coupon, "type": "coupon" },
        "restrictions": {
            "first_time_transaction": f.first_time_transaction,
            "minimum_amount": null,
            "minimum_amount_currency": null
        },
        "times_redeemed": 0
    })
}

/// A discount: a coupon (maybe through a promotion code) applied to a
/// subscription or a checkout session. `end` is set for a `repeating` coupon.
pub(crate) struct DiscountFields<'a> {
    pub coupon: &'a str,
    pub promotion_code: Option<&'a str>,
    pub customer: Option<&'a str>,
    pub subscription: Option<&'a str>,
    pub checkout_session: Option<&'a str>,
    pub end: Option<i64>,
}

pub(crate) fn discount(id: &str, start: i64, f: DiscountFields<'_>) -> Value {
    json!({
        "id": id,
        "object": "discount",
        "checkout_session": f.checkout_session,
        "customer": f.customer,
        "customer_account": null,
        "end": f.end,
        "invoice": null,
        "invoice_item": null,
        "promotion_code": f.promotion_code,
        "source": { "coupon": f.coupon, "type": "coupon" },
        "start": start,
        "subscription": f.subscription,
        "subscription_item": null
    })
}

/// An address hash with every field present (`null` when not given).
pub(crate) fn address(
    line1: Option<&str>,
    line2: Option<&str>,
    city: Option<&str>,
    postal_code: Option<&str>,
    state: Option<&str>,
    country: Option<&str>,
) -> Value {
    json!({
        "city": city,
        "country": country,
        "line1": line1,
        "line2": line2,
        "postal_code": postal_code,
        "state": state
    })
}
