//! Checkout's tax, currency and discount parameters, and what the buyer enters on
//! the hosted page (or `POST /_sim/checkout/{id}/complete` sends for them).
//!
//! At creation: `currency`, `automatic_tax[enabled]`, `tax_id_collection[enabled]`,
//! `billing_address_collection`, `customer_update[address|name|shipping]`,
//! `allow_promotion_codes` and `discounts[i][coupon|promotion_code]` are checked
//! as Stripe does: automatic tax for an existing customer without a usable
//! address needs `customer_update[address]=auto` (else
//! `customer_tax_location_invalid`), tax id collection for an existing customer
//! needs `customer_update[name]=auto`, a currency other than the customer's is
//! refused while it has a live subscription, `allow_promotion_codes` and
//! `discounts` exclude each other. The session's amounts include the discount and,
//! when the customer can be located, the tax.
//!
//! At completion the buyer's `address`, `name`, `tax_id {type, value}` and
//! `promotion_code` (the code) are checked, then saved on the customer (address
//! and name only with `customer_update[…]=auto` or for a customer Checkout
//! creates), and the subscription gets the session's currency, automatic tax
//! and discounts.

use serde_json::{json, Value};

use super::coupons::{discount_amounts, DiscountSpec};
use super::currency::price_in;
use super::sub_billing::SubBilling;
use super::tax::{location_invalid_checkout, parse_address, tax_location};
use super::{Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;
use crate::{geo, objects, tax_id_format};

/// A session's billing options, kept for its completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SessionBilling {
    pub currency: Option<String>,
    pub automatic_tax: bool,
    pub tax_id_collection: bool,
    pub address_required: bool,
    pub update_address: bool,
    pub update_name: bool,
    pub allow_promotion_codes: bool,
    pub discounts: Vec<DiscountSpec>,
}

/// What completing a session will do, checked in full beforehand.
#[derive(Debug, Clone, Default)]
pub(crate) struct Completion {
    /// An address to save on the customer.
    address: Option<Value>,
    name: Option<String>,
    /// `(type, value)` of a tax id to add to the customer.
    tax_id: Option<(String, String)>,
    pub sub: SubBilling,
}

fn auto_or_never(p: Params<'_>, key: &str) -> Result<bool, ApiError> {
    match p.str(key)?.as_deref() {
        None | Some("never") => Ok(false),
        Some("auto") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            format!("customer_update[{key}]"),
            format!("Invalid customer_update[{key}]: must be one of auto or never (got {other})"),
        )),
    }
}

impl Store {
    /// Checks the billing parameters of `POST /v1/checkout/sessions`.
    pub(crate) fn parse_session_billing(
        &self,
        p: Params<'_>,
        customer: Option<&str>,
        items: &[(String, u64)],
    ) -> Result<SessionBilling, ApiError> {
        let requested = p.str("currency")?.filter(|c| !c.is_empty());
        let currency = self.billing_currency(items, requested.as_deref(), customer, |i| {
            format!("line_items[{i}][price]")
        })?;
        if let (Some(c), Some(cur)) = (customer, &currency) {
            self.check_customer_currency(c, cur, "currency")?;
        }
        let update = p.child("customer_update");
        if p.get("customer_update").is_some() && customer.is_none() {
            return Err(ApiError::invalid(
                "customer_update",
                "customer_update can only be used with customer.",
            ));
        }
        let update_address =
            auto_or_never(update, "address")? || auto_or_never(update, "shipping")?;
        let update_name = auto_or_never(update, "name")?;
        let address_required = match p.str("billing_address_collection")?.as_deref() {
            None | Some("auto") => false,
            Some("required") => true,
            Some(other) => {
                return Err(ApiError::invalid(
                    "billing_address_collection",
                    format!("Invalid billing_address_collection: must be one of auto or required (got {other})"),
                ))
            }
        };
        let tid = p.child("tax_id_collection");
        let tax_id_collection = tid.bool("enabled")?.unwrap_or(false);
        if let Some(r) = tid.str("required")? {
            if !matches!(r.as_str(), "if_supported" | "never") {
                return Err(ApiError::invalid(
                    "tax_id_collection[required]",
                    "Invalid tax_id_collection[required]: must be one of if_supported or never",
                ));
            }
        }
        if tax_id_collection && customer.is_some() && !update_name {
            return Err(ApiError::invalid(
                "tax_id_collection[enabled]",
                "Tax ID collection requires updating business name on the customer. To enable \
                 tax ID collection for an existing customer, please set `customer_update[name]` \
                 to `auto`.",
            ));
        }
        let automatic_tax = p.child("automatic_tax").bool("enabled")?.unwrap_or(false);
        if automatic_tax {
            if let Some(c) = customer {
                if self.customer_tax_country(c).is_none() && !update_address {
                    return Err(location_invalid_checkout());
                }
            }
        }
        let allow_promotion_codes = p.bool("allow_promotion_codes")?.unwrap_or(false);
        let discounts = self.parse_discounts(p, customer)?;
        if allow_promotion_codes && !discounts.is_empty() {
            return Err(ApiError::invalid(
                "discounts",
                "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            ));
        }
        Ok(SessionBilling {
            currency,
            automatic_tax,
            tax_id_collection,
            address_required,
            update_address,
            update_name,
            allow_promotion_codes,
            discounts,
        })
    }

    /// The line amounts of `items` in `currency`.
    fn session_line_amounts(&self, items: &[(String, u64)], currency: &str) -> Vec<i64> {
        items
            .iter()
            .map(|(id, qty)| {
                self.prices
                    .get(id)
                    // Usage is billed in arrears: nothing is due today for a
                    // metered price.
                    .filter(|p| !objects::is_metered(p))
                    .map(|p| price_in(p, currency)["unit_amount"].as_i64().unwrap_or(0))
                    .unwrap_or(0)
                    * *qty as i64
            })
            .collect()
    }

    /// Sets the session's currency, amounts (discount and, when the customer's
    /// location is known, tax) and billing fields. `due_today` is false during a
    /// trial (nothing is charged).
    pub(crate) fn price_session(
        &mut self,
        session: &mut Value,
        billing: &SessionBilling,
        items: &[(String, u64)],
        due_today: bool,
    ) {
        let currency = billing
            .currency
            .clone()
            .or_else(|| session["currency"].as_str().map(str::to_string))
            .unwrap_or_else(|| "usd".into());
        let amounts = if due_today {
            self.session_line_amounts(items, &currency)
        } else {
            vec![0; items.len()]
        };
        let mut open = amounts.clone();
        let mut discount = 0;
        let mut applied = Vec::new();
        for spec in &billing.discounts {
            if let Some(coupon) = self.promos.coupons.get(&spec.coupon) {
                let off = discount_amounts(coupon, &currency, &open);
                for (o, a) in open.iter_mut().zip(&off) {
                    *o -= a;
                }
                discount += off.iter().sum::<i64>();
            }
            applied.push(json!({ "coupon": spec.coupon, "promotion_code": spec.promotion_code }));
        }
        let customer = session["customer"].as_str().map(str::to_string);
        let decision = if billing.automatic_tax {
            customer.as_deref().and_then(|c| self.tax_decision(c))
        } else {
            None
        };
        let tax: i64 = decision
            .as_ref()
            .map(|d| {
                open.iter()
                    .map(|a| geo::apply_rate(*a, d.basis_points))
                    .sum()
            })
            .unwrap_or(0);
        let subtotal: i64 = amounts.iter().sum();
        session["currency"] = json!(currency);
        session["amount_subtotal"] = json!(subtotal);
        session["amount_total"] = json!(subtotal - discount + tax);
        session["total_details"] =
            json!({ "amount_discount": discount, "amount_shipping": 0, "amount_tax": tax });
        session["discounts"] = json!(applied);
        session["allow_promotion_codes"] = if billing.allow_promotion_codes {
            json!(true)
        } else {
            Value::Null
        };
        session["billing_address_collection"] = json!(if billing.address_required {
            "required"
        } else {
            "auto"
        });
        session["tax_id_collection"] = if billing.tax_id_collection {
            json!({ "enabled": true, "required": "never" })
        } else {
            Value::Null
        };
        session["automatic_tax"] = if billing.automatic_tax {
            json!({
                "enabled": true,
                "liability": { "account": null, "type": "self" },
                "provider": "stripe",
                "status": if decision.is_some() { "complete" } else { "requires_location_inputs" }
            })
        } else {
            json!({ "enabled": false, "liability": null, "provider": null, "status": null })
        };
    }

    /// Checks what the buyer entered (`details`) against the session; nothing
    /// changes yet. `customer` is the session's existing customer, if any.
    pub(crate) fn plan_completion(
        &self,
        billing: &SessionBilling,
        customer: Option<&str>,
        details: Params<'_>,
    ) -> Result<Completion, ApiError> {
        let address = parse_address(details, "address")?.filter(|a| !a.is_null());
        let saved = customer
            .and_then(|c| self.customers.get(c))
            .map(|c| c["address"].clone());
        let may_save = customer.is_none() || billing.update_address;
        let effective = match (&address, &saved) {
            (Some(a), _) if may_save => Some(a.clone()),
            (_, Some(s)) if !s.is_null() => Some(s.clone()),
            (Some(a), _) => Some(a.clone()),
            _ => None,
        };
        if billing.automatic_tax && effective.as_ref().and_then(tax_location).is_none() {
            return Err(ApiError::invalid(
                "customer_details[address]",
                "A billing address with a known country (and a postal code in the US and Canada) is needed to calculate tax.",
            ));
        }
        if billing.address_required && effective.is_none() {
            return Err(ApiError::invalid(
                "customer_details[address]",
                "A billing address is required.",
            ));
        }
        let name = details.str("name")?.filter(|n| !n.trim().is_empty());
        let tax_id = match details.get("tax_id") {
            Some(_) if !billing.tax_id_collection => {
                return Err(ApiError::invalid(
                    "tax_id",
                    "This session does not collect tax ids (tax_id_collection[enabled]).",
                ))
            }
            Some(_) => {
                let t = details.child("tax_id");
                let kind = t.required_str("type")?;
                let value = t.required_str("value")?;
                if !tax_id_format::TYPES.contains(&kind.as_str())
                    || tax_id_format::check(&kind, &value).is_err()
                {
                    return Err(ApiError {
                        code: Some("tax_id_invalid"),
                        ..ApiError::invalid("tax_id[value]", format!("Invalid value for {kind}."))
                    });
                }
                Some((kind, value.trim().to_string()))
            }
            None => None,
        };
        let mut discounts = Vec::new();
        for (i, spec) in billing.discounts.iter().enumerate() {
            match &spec.promotion_code {
                Some(pc) => {
                    discounts.push(self.check_promotion_code(
                        pc,
                        customer,
                        &format!("discounts[{i}][promotion_code]"),
                    )?);
                }
                None => {
                    self.check_coupon(&spec.coupon, &format!("discounts[{i}][coupon]"))?;
                    discounts.push(spec.clone());
                }
            }
        }
        if let Some(code) = details.str("promotion_code")?.filter(|c| !c.is_empty()) {
            if !billing.allow_promotion_codes {
                return Err(ApiError::invalid(
                    "promotion_code",
                    "This session does not accept promotion codes (allow_promotion_codes).",
                ));
            }
            let id = self.promotion_code_by_code(&code).ok_or_else(|| {
                ApiError::invalid(
                    "promotion_code",
                    format!("`{code}` is not a valid promotion code."),
                )
            })?;
            discounts.push(self.check_promotion_code(&id, customer, "promotion_code")?);
        }
        if let (Some(c), Some(cur)) = (customer, &billing.currency) {
            self.check_customer_currency(c, cur, "currency")?;
        }
        Ok(Completion {
            address: if may_save { address } else { None },
            name: if customer.is_none() || billing.update_name {
                name
            } else {
                None
            },
            tax_id,
            sub: SubBilling {
                currency: billing.currency.clone(),
                automatic_tax: billing.automatic_tax,
                discounts,
            },
        })
    }

    /// Saves the buyer's address, name and tax id on the customer.
    pub(crate) fn apply_completion(&mut self, ctx: &Ctx, customer: &str, c: &Completion) {
        if c.address.is_some() || c.name.is_some() {
            let mut params = json!({});
            if let Some(a) = &c.address {
                params["address"] = a
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect::<serde_json::Map<_, _>>()
                    })
                    .map(Value::Object)
                    .unwrap_or(Value::Null);
            }
            if let Some(n) = &c.name {
                params["name"] = json!(n);
            }
            let _ = self.update_customer(ctx, customer, Params(&params));
        }
        if let Some((kind, value)) = &c.tax_id {
            let exists = self.tax.tax_ids.iter_newest().any(|e| {
                e.obj["customer"] == customer
                    && e.obj["type"] == kind.as_str()
                    && e.obj["value"] == value.as_str()
            });
            if !exists {
                let params = json!({ "type": kind, "value": value });
                let _ = self.create_tax_id(ctx, Some(customer), Params(&params));
            }
        }
    }

    /// The completed session's customer details and final amounts.
    pub(crate) fn finish_session_billing(
        &mut self,
        id: &str,
        customer: &str,
        billing: &SessionBilling,
        completion: &Completion,
        items: &[(String, u64)],
        due_today: bool,
    ) {
        let Some(mut session) = self.sessions.get(id).cloned() else {
            return;
        };
        let billing = SessionBilling {
            discounts: completion.sub.discounts.clone(),
            ..billing.clone()
        };
        self.price_session(&mut session, &billing, items, due_today);
        if let Some(c) = self.customers.get(customer) {
            session["customer_details"]["address"] = c["address"].clone();
            session["customer_details"]["name"] = c["name"].clone();
            session["customer_details"]["tax_exempt"] = c["tax_exempt"].clone();
        }
        session["customer_details"]["tax_ids"] = json!(completion
            .tax_id
            .iter()
            .map(|(k, v)| json!({ "type": k, "value": v }))
            .collect::<Vec<_>>());
        if let Some(s) = self.sessions.get_mut(id) {
            *s = session;
        }
    }
}
