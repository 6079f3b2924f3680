//! What a subscription is billed with besides its items: its currency (a price's
//! own or one of its `currency_options`), automatic tax and discounts. Parsed and
//! checked before the subscription exists, applied right after it is inserted and
//! before its first invoice, so that invoice is already in the right currency,
//! taxed and discounted.

use serde_json::{json, Value};

use super::coupons::DiscountSpec;
use super::tax::location_invalid;
use super::{Ctx, Store};
use crate::error::ApiError;
use crate::form::Params;

/// Currency, automatic tax and discounts of a subscription about to be created.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SubBilling {
    pub currency: Option<String>,
    pub automatic_tax: bool,
    pub discounts: Vec<DiscountSpec>,
}

/// A subscription's `automatic_tax` hash.
fn automatic_tax(enabled: bool) -> Value {
    json!({
        "disabled_reason": null,
        "enabled": enabled,
        "liability": if enabled { json!({ "account": null, "type": "self" }) } else { Value::Null }
    })
}

impl Store {
    /// `currency`, `automatic_tax[enabled]` and `discounts[i]` of
    /// `POST /v1/subscriptions`, checked for `customer` and `items`.
    pub(crate) fn parse_sub_billing(
        &self,
        p: Params<'_>,
        customer: &str,
        items: &[(String, u64)],
    ) -> Result<SubBilling, ApiError> {
        let requested = p.str("currency")?;
        let currency = self.billing_currency(items, requested.as_deref(), Some(customer), |i| {
            format!("items[{i}][price]")
        })?;
        if let Some(c) = &currency {
            self.check_customer_currency(customer, c, "currency")?;
        }
        let automatic_tax = p.child("automatic_tax").bool("enabled")?.unwrap_or(false);
        if automatic_tax && self.customer_tax_country(customer).is_none() {
            return Err(location_invalid());
        }
        let discounts = self.parse_discounts(p, Some(customer))?;
        Ok(SubBilling {
            currency,
            automatic_tax,
            discounts,
        })
    }

    /// Sets a new subscription's currency, automatic tax and discounts (redeeming
    /// them) and records the customer's currency. Returns the subscription.
    pub(crate) fn apply_sub_billing(
        &mut self,
        ctx: &Ctx,
        sub_id: &str,
        billing: &SubBilling,
    ) -> Value {
        let customer = self.subscriptions.get(sub_id).expect("inserted")["customer"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let discounts =
            self.redeem_discounts(ctx, &billing.discounts, &customer, Some(sub_id), None);
        let sub = self.subscriptions.get_mut(sub_id).expect("inserted");
        if let Some(c) = &billing.currency {
            sub["currency"] = json!(c);
        }
        sub["automatic_tax"] = automatic_tax(billing.automatic_tax);
        if !discounts.is_empty() {
            sub["discounts"] = json!(discounts);
        }
        let currency = sub["currency"].as_str().unwrap_or("usd").to_string();
        let snapshot = sub.clone();
        self.set_customer_currency(&customer, &currency);
        snapshot
    }

    /// `automatic_tax[enabled]` of a subscription update, checked (turning it on
    /// needs a usable customer location).
    pub(crate) fn parse_automatic_tax_update(
        &self,
        id: &str,
        p: Params<'_>,
    ) -> Result<Option<bool>, ApiError> {
        let Some(on) = p.child("automatic_tax").bool("enabled")? else {
            return Ok(None);
        };
        let sub = self.retrieve_subscription(id)?;
        if on
            && self
                .customer_tax_country(sub["customer"].as_str().unwrap_or_default())
                .is_none()
        {
            return Err(location_invalid());
        }
        Ok(Some(on))
    }

    /// Applies a checked `automatic_tax[enabled]` before the rest of the update,
    /// so an invoice the update bills at once is taxed accordingly.
    pub(crate) fn set_automatic_tax(&mut self, id: &str, on: Option<bool>) {
        if let (Some(on), Some(sub)) = (on, self.subscriptions.get_mut(id)) {
            sub["automatic_tax"] = automatic_tax(on);
        }
    }
}
