//! Billing portal sessions: a URL on the simulator where a customer "manages" billing.

use serde_json::Value;

use super::{Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;
use crate::{ids, objects};

/// The portal configuration every session refers to (Stripe's default one).
pub(crate) const DEFAULT_PORTAL_CONFIGURATION: &str = "bpc_sim_default";

impl Store {
    pub fn create_portal_session(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let customer = p.required_str("customer")?;
        if self.customers.get(&customer).is_none() {
            return Err(ApiError::no_such_param("customer", &customer, "customer"));
        }
        let configuration = p
            .str("configuration")?
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| DEFAULT_PORTAL_CONFIGURATION.to_string());
        let id = ids::new_id("bps_", 24);
        let url = format!("{}/billing_portal/{id}", ctx.base_url);
        let obj = objects::portal_session(
            &id,
            ctx.now,
            &customer,
            p.nullable_str("return_url")?.flatten(),
            &configuration,
            url,
        );
        self.portal_sessions.insert(id, obj.clone(), ctx.now_ms);
        Ok(obj)
    }

    pub fn retrieve_portal_session(&self, id: &str) -> Option<&Value> {
        self.portal_sessions.get(id)
    }
}
