//! Customer tax ids: create (format-checked), retrieve, list, delete, under
//! `/v1/customers/{id}/tax_ids` and the top-level `/v1/tax_ids` (owner = customer).
//!
//! Verification: `eu_vat`, `gb_vat` and `au_abn` start `pending` and settle
//! [`VERIFICATION_DELAY_S`] seconds of simulator time later (the clock, or
//! `POST /_sim/tax_ids/{id}/verification` at once): `unverified` when the number
//! contains `111111111` (the magic test number), else `verified`; each change
//! sends `customer.tax_id.updated`. Other types are `unavailable`.

use serde_json::{json, Value};

use super::{Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;
use crate::{ids, objects, tax_id_format};

/// How long a verification stays `pending`.
pub const VERIFICATION_DELAY_S: i64 = 5;

/// The value that verifies as `unverified`.
const UNVERIFIED_MAGIC: &str = "111111111";

fn invalid_value(kind: &str) -> ApiError {
    ApiError {
        code: Some("tax_id_invalid"),
        ..ApiError::invalid("value", format!("Invalid value for {kind}."))
    }
}

impl Store {
    /// `POST /v1/customers/{id}/tax_ids` (`customer` set) or `POST /v1/tax_ids`
    /// (`owner[type]=customer`, `owner[customer]`).
    pub fn create_tax_id(
        &mut self,
        ctx: &Ctx,
        customer: Option<&str>,
        p: Params<'_>,
    ) -> Result<Value, ApiError> {
        let customer = match customer {
            Some(c) => c.to_string(),
            None => {
                let owner = p.child("owner");
                match owner.str("type")?.as_deref() {
                    Some("customer") => owner
                        .str("customer")?
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| ApiError::missing_param("owner[customer]"))?,
                    _ => {
                        return Err(ApiError::invalid(
                            "owner[type]",
                            "stripe-sim simulates customer tax ids only: pass owner[type]=customer and owner[customer].",
                        ))
                    }
                }
            }
        };
        if self.customers.get(&customer).is_none() {
            return Err(ApiError::no_such("customer", &customer));
        }
        let kind = p.required_str("type")?;
        if !tax_id_format::TYPES.contains(&kind.as_str()) {
            return Err(ApiError::invalid(
                "type",
                format!(
                    "Invalid type: must be one of {}",
                    tax_id_format::TYPES.join(", ")
                ),
            ));
        }
        let value = p.required_str("value")?;
        let country = tax_id_format::check(&kind, &value).map_err(|()| invalid_value(&kind))?;
        let verified = tax_id_format::VERIFIED_TYPES.contains(&kind.as_str());
        let id = ids::new_id("txi_", 24);
        let obj = objects::tax_id(
            &id,
            ctx.now,
            &customer,
            &kind,
            value.trim(),
            country.as_deref(),
            if verified { "pending" } else { "unavailable" },
        );
        if verified {
            self.tax
                .verifications
                .push((ctx.now + VERIFICATION_DELAY_S, id.clone()));
        }
        self.tax.tax_ids.insert(id, obj.clone(), ctx.now_ms);
        self.emit(ctx, "customer.tax_id.created", &obj, None);
        Ok(obj)
    }

    /// A tax id by id; with `customer`, only one of that customer's.
    pub fn retrieve_tax_id(&self, customer: Option<&str>, id: &str) -> Result<&Value, ApiError> {
        self.tax
            .tax_ids
            .get(id)
            .filter(|t| customer.is_none_or(|c| t["customer"] == c))
            .ok_or_else(|| ApiError::no_such("tax_id", id))
    }

    /// Newest first; `customer` (path) or `owner[customer]` (top level) filters.
    pub fn list_tax_ids(&self, customer: Option<&str>, p: Params<'_>) -> Result<Value, ApiError> {
        let (customer, url) = match customer {
            Some(c) => {
                if self.customers.get(c).is_none() {
                    return Err(ApiError::no_such("customer", c));
                }
                (Some(c.to_string()), format!("/v1/customers/{c}/tax_ids"))
            }
            None => (p.child("owner").str("customer")?, "/v1/tax_ids".to_string()),
        };
        super::paginate(&self.tax.tax_ids, p, &url, "tax_id", |t| {
            customer
                .as_ref()
                .is_none_or(|c| t["customer"] == c.as_str())
        })
    }

    pub fn delete_tax_id(
        &mut self,
        ctx: &Ctx,
        customer: Option<&str>,
        id: &str,
    ) -> Result<Value, ApiError> {
        self.retrieve_tax_id(customer, id)?;
        let obj = self.tax.tax_ids.remove(id).expect("checked");
        self.tax.verifications.retain(|(_, t)| t != id);
        self.emit(ctx, "customer.tax_id.deleted", &obj, None);
        Ok(objects::deleted(id, "tax_id"))
    }

    /// Settles every verification due by `until` (called by the clock).
    pub(crate) fn settle_tax_ids(&mut self, base: &Ctx, until: i64) {
        if self.tax.verifications.iter().all(|(at, _)| *at > until) {
            return;
        }
        let mut due: Vec<(i64, String)> = Vec::new();
        self.tax.verifications.retain(|(at, id)| {
            if *at <= until {
                due.push((*at, id.clone()));
                false
            } else {
                true
            }
        });
        due.sort();
        for (at, id) in due {
            let ctx = Ctx {
                now: at,
                now_ms: at * 1000,
                request_id: None,
                idempotency_key: None,
                ..base.clone()
            };
            let magic = self
                .tax
                .tax_ids
                .get(&id)
                .and_then(|t| t["value"].as_str())
                .is_some_and(|v| v.contains(UNVERIFIED_MAGIC));
            let status = if magic { "unverified" } else { "verified" };
            let _ = self.set_tax_id_verification(&ctx, &id, status);
        }
    }

    /// `POST /_sim/tax_ids/{id}/verification {"status"}`: settles (or resets) a
    /// verification now; sends `customer.tax_id.updated` when it changes.
    pub fn set_tax_id_verification(
        &mut self,
        ctx: &Ctx,
        id: &str,
        status: &str,
    ) -> Result<Value, ApiError> {
        if !matches!(
            status,
            "pending" | "verified" | "unverified" | "unavailable"
        ) {
            return Err(ApiError::invalid(
                "status",
                "status must be one of pending, verified, unverified, unavailable",
            ));
        }
        let tax_id = self
            .tax
            .tax_ids
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("tax_id", id))?;
        let before = tax_id["verification"].clone();
        if before["status"] == status {
            return Ok(tax_id.clone());
        }
        tax_id["verification"]["status"] = json!(status);
        if status == "verified" {
            tax_id["verification"]["verified_name"] = self
                .customers
                .get(tax_id["customer"].as_str().unwrap_or_default())
                .map(|c| c["name"].clone())
                .unwrap_or(Value::Null);
        }
        let obj = tax_id.clone();
        self.tax.verifications.retain(|(_, t)| t != id);
        if status == "pending" {
            self.tax
                .verifications
                .push((ctx.now + VERIFICATION_DELAY_S, id.to_string()));
        }
        self.emit(
            ctx,
            "customer.tax_id.updated",
            &obj,
            Some(json!({ "verification": before })),
        );
        Ok(obj)
    }

    /// `(type, value)` of a customer's tax ids, oldest first (invoice snapshots).
    pub(crate) fn customer_tax_ids(&self, customer: &str) -> Vec<Value> {
        let mut v: Vec<Value> = self
            .tax
            .tax_ids
            .iter_newest()
            .filter(|e| e.obj["customer"] == customer)
            .map(|e| json!({ "type": e.obj["type"], "value": e.obj["value"] }))
            .collect();
        v.reverse();
        v
    }
}
