//! Customers: create, retrieve, update (metadata merges), delete, list, search.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::tax::{parse_address, parse_tax_exempt};
use super::{created_filter, paginate, paginate_entries, search, Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;
use crate::{ids, objects};

const SCALAR_FIELDS: [&str; 4] = ["email", "name", "description", "phone"];

impl Store {
    pub fn create_customer(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let mut fields = objects::CustomerFields {
            email: None,
            name: None,
            description: None,
            phone: None,
            metadata: p.metadata("metadata")?.to_value(),
        };
        for key in SCALAR_FIELDS {
            let v = p.nullable_str(key)?.flatten();
            match key {
                "email" => fields.email = v,
                "name" => fields.name = v,
                "description" => fields.description = v,
                _ => fields.phone = v,
            }
        }
        if let Some(email) = &fields.email {
            validate_email(email)?;
        }
        let address = parse_address(p, "address")?;
        let tax_exempt = parse_tax_exempt(p)?;
        let id = ids::new_id("cus_", 14);
        let prefix = ids::new_id("", 8).to_ascii_uppercase();
        let mut obj = objects::customer(&id, ctx.now, fields, &prefix);
        if let Some(a) = address {
            obj["address"] = a;
        }
        if let Some(t) = tax_exempt {
            obj["tax_exempt"] = Value::String(t);
        }
        self.emit(ctx, "customer.created", &obj, None);
        if let Some(email) = obj["email"].as_str() {
            self.customers_by_email
                .entry(email.to_string())
                .or_default()
                .push(id.clone());
        }
        self.customers
            .insert(id, obj.clone(), ctx.now_ms + ctx.search_lag_ms);
        Ok(obj)
    }

    /// A live customer, or the `{deleted: true}` stub Stripe returns for deleted ones.
    pub fn retrieve_customer(&self, id: &str) -> Result<Cow<'_, Value>, ApiError> {
        if let Some(c) = self.customers.get(id) {
            return Ok(Cow::Borrowed(c));
        }
        if self.deleted_customers.contains(id) {
            return Ok(Cow::Owned(objects::deleted(id, "customer")));
        }
        Err(ApiError::no_such("customer", id))
    }

    pub fn update_customer(
        &mut self,
        ctx: &Ctx,
        id: &str,
        p: Params<'_>,
    ) -> Result<Value, ApiError> {
        let metadata = p.metadata("metadata")?;
        let mut changes: Vec<(&str, Value)> = Vec::new();
        for key in SCALAR_FIELDS {
            if let Some(v) = p.nullable_str(key)? {
                if key == "email" {
                    if let Some(e) = &v {
                        validate_email(e)?;
                    }
                }
                changes.push((key, v.map(Value::String).unwrap_or(Value::Null)));
            }
        }
        if let Some(a) = parse_address(p, "address")? {
            changes.push(("address", a));
        }
        if let Some(t) = parse_tax_exempt(p)? {
            changes.push(("tax_exempt", Value::String(t)));
        }
        let cust = self
            .customers
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("customer", id))?;
        let mut previous = Map::new();
        for (key, v) in changes {
            if cust[key] != v {
                previous.insert(key.to_string(), std::mem::replace(&mut cust[key], v));
            }
        }
        let old_meta = cust["metadata"].clone();
        metadata.apply(&mut cust["metadata"]);
        if cust["metadata"] != old_meta {
            previous.insert("metadata".into(), old_meta);
        }
        let obj = cust.clone();
        if let Some(old) = previous.get("email") {
            self.unindex_email(old.as_str(), id);
            if let Some(new) = obj["email"].as_str() {
                self.customers_by_email
                    .entry(new.to_string())
                    .or_default()
                    .push(id.to_string());
            }
        }
        if !previous.is_empty() {
            self.emit(ctx, "customer.updated", &obj, Some(Value::Object(previous)));
        }
        Ok(obj)
    }

    /// Deletes a customer; like Stripe, its subscriptions are canceled immediately.
    pub fn delete_customer(&mut self, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
        let obj = self
            .customers
            .remove(id)
            .ok_or_else(|| ApiError::no_such("customer", id))?;
        self.unindex_email(obj["email"].as_str(), id);
        let subs: Vec<String> = self
            .subscriptions
            .iter_newest()
            .filter(|e| e.obj["customer"] == id && e.obj["status"] != "canceled")
            .filter_map(|e| e.obj["id"].as_str().map(str::to_string))
            .collect();
        for sub in subs {
            let _ = self.cancel_subscription(ctx, &sub, "cancellation_requested");
        }
        self.deleted_customers.insert(id.to_string());
        self.emit(ctx, "customer.deleted", &obj, None);
        Ok(objects::deleted(id, "customer"))
    }

    fn unindex_email(&mut self, email: Option<&str>, id: &str) {
        if let Some(email) = email {
            if let Some(ids) = self.customers_by_email.get_mut(email) {
                ids.retain(|x| x != id);
                if ids.is_empty() {
                    self.customers_by_email.remove(email);
                }
            }
        }
    }

    /// Newest first; `email` goes through the index, `created[gt|gte]` stops the scan early.
    pub fn list_customers(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let created = created_filter(p)?;
        match p.str("email")? {
            Some(email) => {
                let ids = self
                    .customers_by_email
                    .get(&email)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let entries = ids.iter().rev().filter_map(|id| self.customers.entry(id));
                paginate_entries(
                    &self.customers,
                    entries,
                    p,
                    "/v1/customers",
                    "customer",
                    created,
                )
            }
            None => paginate(&self.customers, p, "/v1/customers", "customer", created),
        }
    }

    pub fn search_customers(&self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        search::run(
            &self.customers,
            ctx,
            p,
            "/v1/customers/search",
            &["email", "name", "phone", "description"],
        )
    }
}

fn validate_email(email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 512
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && !d.is_empty() && !email.contains(char::is_whitespace)
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError {
            code: Some("email_invalid"),
            ..ApiError::invalid("email", format!("Invalid email address: {email}"))
        })
    }
}
