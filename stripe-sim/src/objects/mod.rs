//! JSON shapes of Stripe objects in the API version async-stripe 1.0.0-rc.10 pins
//! (`2026-09-30.endive`). Every field async-stripe requires is present and typed as it
//! expects (it fails on any missing required field); optional fields Stripe always
//! returns are included as `null` so other SDKs see the familiar shape.

use serde_json::{json, Map, Value};

mod billing;
mod meters;
mod tax;

pub(crate) use billing::*;
pub(crate) use meters::*;
pub(crate) use tax::*;

/// The API version every event carries.
pub const API_VERSION: &str = "2026-09-30.endive";

/// Fields of a new customer, already validated.
pub(crate) struct CustomerFields {
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub phone: Option<String>,
    pub metadata: Value,
}

pub(crate) fn customer(id: &str, created: i64, f: CustomerFields, invoice_prefix: &str) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "business_name": null,
        "created": created,
        "currency": null,
        "customer_account": null,
        "default_source": null,
        "delinquent": false,
        "description": f.description,
        "discount": null,
        "email": f.email,
        "individual_name": null,
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null
        },
        "livemode": false,
        "metadata": f.metadata,
        "name": f.name,
        "next_invoice_sequence": 1,
        "phone": f.phone,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    })
}

/// What Stripe answers for a deleted object (`DELETE`, and later retrieves).
pub(crate) fn deleted(id: &str, object: &str) -> Value {
    json!({ "id": id, "object": object, "deleted": true })
}

pub(crate) fn product(id: &str, name: &str, created: i64, metadata: Value) -> Value {
    json!({
        "id": id,
        "object": "product",
        "active": true,
        "created": created,
        "default_price": null,
        "description": null,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": created,
        "url": null
    })
}

/// Fields of a new price, already validated. `interval` is `None` for one-time prices.
pub(crate) struct PriceFields {
    pub product: String,
    pub unit_amount: i64,
    pub currency: String,
    pub interval: Option<(String, u64)>,
    pub metadata: Value,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
    pub active: bool,
}

pub(crate) fn price(id: &str, created: i64, f: PriceFields) -> Value {
    let recurring = f.interval.as_ref().map(|(interval, count)| {
        json!({
            "interval": interval,
            "interval_count": count,
            "meter": null,
            "trial_period_days": null,
            "usage_type": "licensed"
        })
    });
    json!({
        "id": id,
        "object": "price",
        "active": f.active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": f.currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": f.lookup_key,
        "metadata": f.metadata,
        "nickname": f.nickname,
        "product": f.product,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": if f.interval.is_some() { "recurring" } else { "one_time" },
        "unit_amount": f.unit_amount,
        "unit_amount_decimal": f.unit_amount.to_string()
    })
}

/// The legacy `plan` Stripe still embeds in subscription items, derived from a price.
pub(crate) fn plan_from_price(price: &Value) -> Value {
    let recurring = &price["recurring"];
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval").cloned().unwrap_or(json!("month")),
        "interval_count": recurring.get("interval_count").cloned().unwrap_or(json!(1)),
        "livemode": false,
        "metadata": price["metadata"],
        "meter": recurring.get("meter").cloned().unwrap_or(Value::Null),
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers": price.get("tiers").cloned().unwrap_or(Value::Null),
        "tiers_mode": price["tiers_mode"],
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": recurring.get("usage_type").cloned().unwrap_or(json!("licensed"))
    })
}

/// A subscription item; in current API versions the billing period lives here.
pub(crate) fn subscription_item(
    id: &str,
    subscription: &str,
    price: &Value,
    quantity: u64,
    created: i64,
    period: (i64, i64),
) -> Value {
    json!({
        "id": id,
        "object": "subscription_item",
        "billing_thresholds": null,
        "created": created,
        "current_period_end": period.1,
        "current_period_start": period.0,
        "discounts": [],
        "metadata": {},
        "plan": plan_from_price(price),
        "price": price,
        // A metered item has no quantity: its usage comes from the meter.
        "quantity": if is_metered(price) { Value::Null } else { json!(quantity) },
        "subscription": subscription,
        "tax_rates": []
    })
}

pub(crate) struct SubscriptionFields {
    pub customer: String,
    pub items: Vec<Value>,
    pub currency: String,
    pub metadata: Value,
    pub status: String,
    pub latest_invoice: Option<String>,
    pub description: Option<String>,
    /// `(trial_start, trial_end)` for a subscription that starts with a trial.
    pub trial: Option<(i64, i64)>,
    pub billing_cycle_anchor: i64,
}

pub(crate) fn subscription(id: &str, created: i64, f: SubscriptionFields) -> Value {
    let count = f.items.len();
    json!({
        "id": id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": f.billing_cycle_anchor,
        "billing_cycle_anchor_config": null,
        "billing_mode": { "flexible": { "proration_discounts": "included" }, "type": "flexible", "updated_at": created },
        "billing_schedules": [],
        "billing_thresholds": null,
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically",
        "created": created,
        "currency": f.currency,
        "customer": f.customer,
        "customer_account": null,
        "days_until_due": null,
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": f.description,
        "discounts": [],
        "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": {
            "object": "list",
            "data": f.items,
            "has_more": false,
            "total_count": count,
            "url": format!("/v1/subscription_items?subscription={id}")
        },
        "latest_invoice": f.latest_invoice,
        "livemode": false,
        "metadata": f.metadata,
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": {
            "payment_method_options": null,
            "payment_method_types": null,
            "save_default_payment_method": "off"
        },
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": created,
        "status": f.status,
        "test_clock": null,
        "transfer_data": null,
        "trial_end": f.trial.map(|t| t.1),
        "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
        "trial_start": f.trial.map(|t| t.0)
    })
}

pub(crate) struct SessionFields {
    pub mode: String,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub client_reference_id: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub metadata: Value,
    pub currency: Option<String>,
    pub amount: i64,
    pub url: String,
    pub expires_at: i64,
}

pub(crate) fn checkout_session(id: &str, created: i64, f: SessionFields) -> Value {
    json!({
        "id": id,
        "object": "checkout.session",
        "adaptive_pricing": null,
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": f.amount,
        "amount_total": f.amount,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": f.cancel_url,
        "client_reference_id": f.client_reference_id,
        "client_secret": null,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": created,
        "currency": f.currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": f.customer,
        "customer_account": null,
        "customer_creation": if f.customer.is_some() { Value::Null } else { json!("always") },
        "customer_details": null,
        "customer_email": f.customer_email,
        "discounts": [],
        "expires_at": f.expires_at,
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": null,
        "metadata": f.metadata,
        "mode": f.mode,
        "origin_context": null,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": null,
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": f.success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted",
        "url": f.url,
        "wallet_options": null
    })
}

pub(crate) fn portal_session(
    id: &str,
    created: i64,
    customer: &str,
    return_url: Option<String>,
    configuration: &str,
    url: String,
) -> Value {
    json!({
        "id": id,
        "object": "billing_portal.session",
        "configuration": configuration,
        "created": created,
        "customer": customer,
        "customer_account": null,
        "flow": null,
        "livemode": false,
        "locale": null,
        "on_behalf_of": null,
        "return_url": return_url,
        "url": url
    })
}

/// An event wrapping a snapshot of the object it is about.
pub(crate) fn event(
    id: &str,
    created: i64,
    kind: &str,
    object: Value,
    previous_attributes: Option<Value>,
    pending_webhooks: i64,
    request: (Option<String>, Option<String>),
) -> Value {
    let mut data = Map::new();
    data.insert("object".into(), object);
    if let Some(prev) = previous_attributes {
        data.insert("previous_attributes".into(), prev);
    }
    json!({
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": false,
        "pending_webhooks": pending_webhooks,
        "request": { "id": request.0, "idempotency_key": request.1 },
        "type": kind
    })
}

/// A page of a cursor-paginated list.
pub(crate) fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

/// A page of search results; `next_page` feeds the next request's `page`.
pub(crate) fn search_result(
    url: &str,
    data: Vec<Value>,
    has_more: bool,
    next_page: Option<String>,
) -> Value {
    json!({
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": next_page,
        "url": url
    })
}
