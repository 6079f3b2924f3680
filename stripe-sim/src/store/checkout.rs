//! Checkout sessions: create, retrieve, list, expire, and completion (the "payment"
//! a customer makes on the hosted page or the control plane triggers).

use serde_json::{json, Value};

use super::checkout_billing::SessionBilling;
use super::invoices::Attempt;
use super::subscriptions::NewSubscription;
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
    /// `subscription_data[trial_period_days]`: the subscription starts `trialing`.
    pub trial_period_days: Option<i64>,
    /// Currency, automatic tax, tax id and address collection, discounts.
    pub billing: SessionBilling,
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
            let metered = objects::is_metered(price);
            self.no_metered_quantity(&price_id, item, &format!("line_items[{i}]"))?;
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
            // Usage is billed in arrears: nothing is due today for a metered price.
            if !metered {
                amount += price["unit_amount"].as_i64().unwrap_or(0) * qty;
            }
            items.push((price_id, qty as u64));
        }
        if items.is_empty() && mode != "setup" {
            return Err(ApiError::missing_param("line_items"));
        }
        let sub_data = p.child("subscription_data");
        let trial_period_days = sub_data.int("trial_period_days")?;
        if let Some(days) = trial_period_days {
            if mode != "subscription" {
                return Err(ApiError::invalid(
                    "subscription_data[trial_period_days]",
                    "subscription_data can only be used in subscription mode.",
                ));
            }
            if !(1..=730).contains(&days) {
                return Err(ApiError::invalid(
                    "subscription_data[trial_period_days]",
                    "trial_period_days must be between 1 and 730.",
                ));
            }
            // Nothing is due today during a trial.
            amount = 0;
        }
        let billing = self.parse_session_billing(p, customer.as_deref(), &items)?;
        let id = ids::new_id("cs_test_", 58);
        let mut obj = objects::checkout_session(
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
            trial_period_days,
            billing,
        };
        self.price_session(
            &mut obj,
            &extra.billing,
            &extra.items,
            trial_period_days.is_none(),
        );
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

    /// Pays an open session. In subscription mode this creates the subscription
    /// (`trialing` with `subscription_data[trial_period_days]`) and its first invoice
    /// (paid; $0 for a trial) and returns the subscription; other modes return the
    /// session. Sends `checkout.session.completed`, `customer.subscription.created`,
    /// `invoice.created`, `invoice.finalized`, `invoice.paid`,
    /// `invoice.payment_succeeded` in that order (after `customer.created` for a new
    /// customer). A customer whose card declines cannot pay anything due today: 402
    /// `card_declined`, the session stays open.
    /// `details` is what the buyer entered on the page (`address`, `name`,
    /// `tax_id`, `promotion_code`; see `checkout_billing`).
    pub fn complete_session_with(
        &mut self,
        ctx: &Ctx,
        id: &str,
        details: Params<'_>,
    ) -> Result<Value, ApiError> {
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
        let completion = self.plan_completion(
            &extra.billing,
            session["customer"]
                .as_str()
                .filter(|c| self.customers.get(c).is_some()),
            details,
        )?;
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
        if session["amount_total"].as_i64().unwrap_or(0) > 0 && self.card_declines(&customer_id) {
            return Err(ApiError::card_declined());
        }
        self.apply_completion(ctx, &customer_id, &completion);
        let customer = self.customers.get(&customer_id).expect("exists").clone();
        let created = if session["mode"] == "subscription" {
            let sub_id = ids::new_id("sub_", 24);
            let invoice_id = ids::object_id("in_");
            self.insert_subscription(
                ctx,
                NewSubscription {
                    id: &sub_id,
                    customer: &customer_id,
                    items: &extra.items,
                    metadata: extra.subscription_metadata.clone(),
                    description: extra.subscription_description.clone(),
                    trial_end: extra.trial_period_days.map(|d| ctx.now + d * 86_400),
                    invoice_id: &invoice_id,
                },
            )?;
            let sub = self.apply_sub_billing(ctx, &sub_id, &completion.sub);
            Some((sub, invoice_id))
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
        if let Some((sub, invoice_id)) = &created {
            s["subscription"] = sub["id"].clone();
            s["invoice"] = json!(invoice_id);
        }
        self.finish_session_billing(
            id,
            &customer_id,
            &extra.billing,
            &completion,
            &extra.items,
            extra.trial_period_days.is_none(),
        );
        let session = self.sessions.get(id).expect("exists").clone();
        self.emit(ctx, "checkout.session.completed", &session, None);
        match created {
            Some((sub, invoice_id)) => {
                let sub_id = sub["id"].as_str().unwrap_or_default().to_string();
                self.emit(ctx, "customer.subscription.created", &sub, None);
                self.bill_first_invoice(ctx, &sub_id, invoice_id, Attempt::First);
                Ok(self.subscriptions.get(&sub_id).expect("exists").clone())
            }
            None => Ok(session),
        }
    }
}
