//! Checkout sessions: create, retrieve, list, expire, and completion (the "payment"
//! a customer makes on the hosted page or the control plane triggers).

use serde_json::{json, Value};

use super::{created_filter, paginate, Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;
use crate::{ids, objects};

/// Sessions stay open this long, like Stripe's default.
const SESSION_TTL_S: i64 = 24 * 3600;

/// What a session remembers but does not show in its JSON.
#[derive(Debug, Clone)]
pub(crate) struct SessionExtra {
    /// `(price id, quantity)` per line item.
    pub items: Vec<(String, u64)>,
    /// `subscription_data[metadata]`, copied onto the subscription on completion.
    pub subscription_metadata: Value,
    pub subscription_description: Option<String>,
}

impl Store {
    pub fn create_session(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let mode = p.required_str("mode")?;
        if !matches!(mode.as_str(), "payment" | "subscription" | "setup") {
            return Err(ApiError::invalid("mode", format!("Invalid mode: {mode}")));
        }
        let customer = match p.str("customer")? {
            Some(c) if !c.is_empty() => {
                if self.customers.get(&c).is_none() {
                    return Err(ApiError::no_such_param("customer", &c, "customer"));
                }
                Some(c)
            }
            _ => None,
        };
        let customer_email = p.nullable_str("customer_email")?.flatten();
        if customer.is_some() && customer_email.is_some() {
            return Err(ApiError::invalid(
                "customer_email",
                "You may only specify one of these parameters: customer, customer_email.",
            ));
        }
        let mut items = Vec::new();
        let mut amount = 0i64;
        let mut currency: Option<String> = None;
        for (i, item) in p.array("line_items")?.into_iter().enumerate() {
            let price_param = format!("line_items[{i}][price]");
            let price_id = item
                .str("price")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApiError::missing_param(&price_param))?;
            let price = self
                .prices
                .get(&price_id)
                .ok_or_else(|| ApiError::no_such_param("price", &price_id, &price_param))?;
            if price["active"] == false {
                return Err(ApiError::invalid(
                    &price_param,
                    format!("The price `{price_id}` is not active."),
                ));
            }
            if mode == "subscription" && price["type"] != "recurring" {
                return Err(ApiError::invalid(
                    &price_param,
                    format!("The price `{price_id}` is a one-time price; subscription mode needs a recurring price."),
                ));
            }
            let qty = item.int("quantity")?.unwrap_or(1);
            if qty < 1 {
                return Err(ApiError::invalid(
                    format!("line_items[{i}][quantity]"),
                    "Quantity must be at least 1.",
                ));
            }
            let price_currency = price["currency"].as_str().unwrap_or("usd").to_string();
            if currency.as_ref().is_some_and(|c| *c != price_currency) {
                return Err(ApiError::invalid(
                    &price_param,
                    "All prices must have the same currency.",
                ));
            }
            currency = Some(price_currency);
            amount += price["unit_amount"].as_i64().unwrap_or(0) * qty;
            items.push((price_id, qty as u64));
        }
        if items.is_empty() && mode != "setup" {
            return Err(ApiError::missing_param("line_items"));
        }
        let sub_data = p.child("subscription_data");
        let id = ids::new_id("cs_test_", 58);
        let obj = objects::checkout_session(
            &id,
            ctx.now,
            objects::SessionFields {
                mode,
                customer,
                customer_email,
                client_reference_id: p.nullable_str("client_reference_id")?.flatten(),
                success_url: p.nullable_str("success_url")?.flatten(),
                cancel_url: p.nullable_str("cancel_url")?.flatten(),
                metadata: p.metadata("metadata")?.to_value(),
                currency,
                amount,
                url: format!("{}/checkout/{id}", ctx.base_url),
                expires_at: p.int("expires_at")?.unwrap_or(ctx.now + SESSION_TTL_S),
            },
        );
        let extra = SessionExtra {
            items,
            subscription_metadata: sub_data.metadata("metadata")?.to_value(),
            subscription_description: sub_data.nullable_str("description")?.flatten(),
        };
        self.session_extra.insert(id.clone(), extra);
        self.sessions
            .insert(id, obj.clone(), ctx.now_ms + ctx.search_lag_ms);
        Ok(obj)
    }

    /// Retrieves a session, expiring it first if its `expires_at` has passed.
    pub fn retrieve_session(&mut self, ctx: &Ctx, id: &str) -> Result<&Value, ApiError> {
        self.lazy_expire(ctx, id)?;
        Ok(self.sessions.get(id).expect("checked by lazy_expire"))
    }

    fn lazy_expire(&mut self, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
        let s = self
            .sessions
            .get(id)
            .ok_or_else(|| ApiError::no_such("checkout.session", id))?;
        if s["status"] == "open" && s["expires_at"].as_i64().is_some_and(|e| e <= ctx.now) {
            self.mark_expired(ctx, id);
        }
        Ok(())
    }

    fn mark_expired(&mut self, ctx: &Ctx, id: &str) {
        if let Some(s) = self.sessions.get_mut(id) {
            s["status"] = json!("expired");
            s["url"] = Value::Null;
            let snapshot = s.clone();
            self.emit(ctx, "checkout.session.expired", &snapshot, None);
        }
    }

    pub fn expire_session(&mut self, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
        self.lazy_expire(ctx, id)?;
        let s = self.sessions.get(id).expect("checked");
        if s["status"] != "open" {
            return Err(ApiError::invalid(
                "session",
                format!(
                    "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                    s["status"].as_str().unwrap_or("")
                ),
            ));
        }
        self.mark_expired(ctx, id);
        Ok(self.sessions.get(id).expect("exists").clone())
    }

    pub fn list_sessions(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let customer = p.str("customer")?;
        let subscription = p.str("subscription")?;
        let status = p.str("status")?;
        let created = created_filter(p)?;
        paginate(
            &self.sessions,
            p,
            "/v1/checkout/sessions",
            "checkout.session",
            |s| {
                customer
                    .as_ref()
                    .is_none_or(|c| s["customer"] == c.as_str())
                    && subscription
                        .as_ref()
                        .is_none_or(|c| s["subscription"] == c.as_str())
                    && status.as_ref().is_none_or(|c| s["status"] == c.as_str())
                    && created(s)
            },
        )
    }

    /// Pays an open session. In subscription mode this creates the subscription and
    /// its first (paid) invoice and returns the subscription; other modes return the
    /// session. Sends `checkout.session.completed`, `customer.subscription.created`,
    /// `invoice.paid` in that order (plus `customer.created` for a new customer).
    pub fn complete_session(&mut self, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
        self.lazy_expire(ctx, id)?;
        let session = self.sessions.get(id).expect("checked").clone();
        if session["status"] != "open" {
            return Err(ApiError::invalid(
                "session",
                format!(
                    "Checkout Session {id} cannot be completed: its status is \"{}\".",
                    session["status"].as_str().unwrap_or("")
                ),
            ));
        }
        let extra = self
            .session_extra
            .get(id)
            .cloned()
            .expect("extra stored with session");
        let customer_id = match session["customer"].as_str() {
            Some(c) if self.customers.get(c).is_some() => c.to_string(),
            Some(c) => {
                return Err(ApiError::invalid(
                    "customer",
                    format!("Customer {c} was deleted."),
                ))
            }
            None => {
                let params = json!({ "email": session["customer_email"] });
                self.create_customer(ctx, Params(&params))?["id"]
                    .as_str()
                    .expect("id")
                    .to_string()
            }
        };
        let customer = self.customers.get(&customer_id).expect("exists").clone();
        let created = if session["mode"] == "subscription" {
            let (sub, invoice) = self.create_subscription_record(
                ctx,
                &customer_id,
                &extra.items,
                extra.subscription_metadata.clone(),
                extra.subscription_description.clone(),
            )?;
            Some((sub, invoice))
        } else {
            None
        };
        let s = self.sessions.get_mut(id).expect("exists");
        s["status"] = json!("complete");
        s["payment_status"] = json!(if s["mode"] == "setup" {
            "no_payment_required"
        } else {
            "paid"
        });
        s["customer"] = json!(customer_id);
        s["url"] = Value::Null;
        s["customer_details"] = json!({
            "address": null,
            "business_name": null,
            "email": customer["email"],
            "individual_name": null,
            "name": customer["name"],
            "phone": null,
            "tax_exempt": "none",
            "tax_ids": []
        });
        if let Some((sub, invoice)) = &created {
            s["subscription"] = sub["id"].clone();
            s["invoice"] = invoice["id"].clone();
        }
        let session = s.clone();
        self.emit(ctx, "checkout.session.completed", &session, None);
        match created {
            Some((sub, invoice)) => {
                self.emit(ctx, "customer.subscription.created", &sub, None);
                self.emit(ctx, "invoice.paid", &invoice, None);
                Ok(sub)
            }
            None => Ok(session),
        }
    }
}
