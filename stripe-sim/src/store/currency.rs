//! Currencies: prices with `currency_options` (one price, an amount per
//! currency), the currency a subscription bills in, and Stripe's rule that a
//! customer has one currency: once it has a live subscription (or a balance) in
//! one currency, anything in another is refused with Stripe's message. A customer
//! whose subscriptions have all ended may start again in another currency.

use serde_json::{json, Map, Value};

use super::Store;
use crate::config::CurrencyOptionSeed;
use crate::error::ApiError;
use crate::form::Params;

fn option(unit_amount: i64) -> Value {
    json!({
        "custom_unit_amount": null,
        "tax_behavior": "unspecified",
        "tiers": null,
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount.to_string()
    })
}

fn valid_currency(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase())
}

/// `currency_options[cur][unit_amount]` of a price create, with the price's own
/// currency included as Stripe shows it; `None` when not sent.
pub(crate) fn parse_currency_options(
    p: Params<'_>,
    currency: &str,
    unit_amount: i64,
) -> Result<Option<Value>, ApiError> {
    let Some(Value::Object(given)) = p.get("currency_options") else {
        return Ok(None);
    };
    let mut out = Map::new();
    out.insert(currency.to_string(), option(unit_amount));
    for key in given.keys() {
        let cur = key.to_ascii_lowercase();
        let param = format!("currency_options[{key}][unit_amount]");
        if !valid_currency(&cur) {
            return Err(ApiError::invalid(
                format!("currency_options[{key}]"),
                format!("Invalid currency: {key}"),
            ));
        }
        let amount = p
            .child("currency_options")
            .child(key)
            .int("unit_amount")?
            .ok_or_else(|| ApiError::missing_param(&param))?;
        if amount < 0 {
            return Err(ApiError::invalid(
                param,
                "This value must be greater than or equal to 0.",
            ));
        }
        out.insert(cur, option(amount));
    }
    Ok(Some(Value::Object(out)))
}

/// Whether `price` can be billed in `currency`.
pub(crate) fn price_supports(price: &Value, currency: &str) -> bool {
    price["currency"] == currency || price["currency_options"][currency]["unit_amount"].is_i64()
}

/// `price` as billed in `currency`: its `currency`, `unit_amount` and
/// `unit_amount_decimal` taken from `currency_options` when it is not its own.
pub(crate) fn price_in(price: &Value, currency: &str) -> Value {
    let mut p = price.clone();
    if price["currency"] != currency {
        if let Some(amount) = price["currency_options"][currency]["unit_amount"].as_i64() {
            p["currency"] = json!(currency);
            p["unit_amount"] = json!(amount);
            p["unit_amount_decimal"] = json!(amount.to_string());
        }
    }
    p
}

/// Stripe's refusal of a second currency on one customer.
pub(crate) fn combine_currencies_error(param: &str, current: &str) -> ApiError {
    ApiError::invalid(
        param,
        format!(
            "You cannot combine currencies on a single customer. This customer has an active \
             subscription, subscription schedule, discount, quote, or invoice item with currency {current}."
        ),
    )
}

impl Store {
    /// Adds currency options to seeded prices (start-up and reset).
    pub(crate) fn seed_currency_options(&mut self, seeds: &[CurrencyOptionSeed]) {
        for seed in seeds {
            if let Some(price) = self.prices.get_mut(&seed.price) {
                if !price["currency_options"].is_object() {
                    let own = price["currency"].as_str().unwrap_or("usd").to_string();
                    let amount = price["unit_amount"].as_i64().unwrap_or(0);
                    price["currency_options"] = json!({ own: option(amount) });
                }
                price["currency_options"][&seed.currency] = option(seed.unit_amount);
            }
        }
    }

    /// The price of a subscription item as billed in the subscription's currency.
    pub(crate) fn billed_price(&self, sub_id: &str, price: &Value) -> Value {
        match self
            .subscriptions
            .get(sub_id)
            .and_then(|s| s["currency"].as_str())
        {
            Some(currency) => price_in(price, currency),
            None => price.clone(),
        }
    }

    /// Refuses `currency` for `customer` while it has live business in another.
    pub(crate) fn check_customer_currency(
        &self,
        customer: &str,
        currency: &str,
        param: &str,
    ) -> Result<(), ApiError> {
        let Some(cust) = self.customers.get(customer) else {
            return Ok(());
        };
        let Some(current) = cust["currency"].as_str() else {
            return Ok(());
        };
        if current == currency {
            return Ok(());
        }
        let live_subscription = self.subscriptions.iter_newest().any(|e| {
            e.obj["customer"] == customer
                && !matches!(
                    e.obj["status"].as_str(),
                    Some("canceled" | "incomplete_expired")
                )
        });
        if live_subscription || cust["balance"].as_i64().unwrap_or(0) != 0 {
            return Err(combine_currencies_error(param, current));
        }
        Ok(())
    }

    /// Records the customer's currency (its first subscription's, or a new one
    /// after everything in the old one ended).
    pub(crate) fn set_customer_currency(&mut self, customer: &str, currency: &str) {
        if let Some(c) = self.customers.get_mut(customer) {
            c["currency"] = json!(currency);
        }
    }

    /// The currency billing `items` for `customer` uses: `requested`, else the
    /// customer's own when every price supports it, else the first price's.
    /// Every price must support it.
    pub(crate) fn billing_currency(
        &self,
        items: &[(String, u64)],
        requested: Option<&str>,
        customer: Option<&str>,
        param_of: impl Fn(usize) -> String,
    ) -> Result<Option<String>, ApiError> {
        let prices: Vec<&Value> = items
            .iter()
            .filter_map(|(id, _)| self.prices.get(id))
            .collect();
        let Some(first) = prices.first() else {
            return Ok(requested.map(str::to_string));
        };
        let customer_currency = customer
            .and_then(|c| self.customers.get(c))
            .and_then(|c| c["currency"].as_str());
        let currency = match (requested, customer_currency) {
            (Some(r), _) => r.to_ascii_lowercase(),
            (None, Some(c)) if prices.iter().all(|p| price_supports(p, c)) => c.to_string(),
            _ => first["currency"].as_str().unwrap_or("usd").to_string(),
        };
        for (i, price) in prices.iter().enumerate() {
            if !price_supports(price, &currency) {
                return Err(ApiError::invalid(
                    param_of(i),
                    format!(
                        "The price `{}` has no amount in `{currency}`: add it to the price's currency_options.",
                        price["id"].as_str().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(Some(currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_in_other_currencies() {
        let price = json!({"id": "price_x", "currency": "usd", "unit_amount": 2900,
            "unit_amount_decimal": "2900", "currency_options": {"eur": {"unit_amount": 2700}}});
        assert!(price_supports(&price, "usd") && price_supports(&price, "eur"));
        assert!(!price_supports(&price, "gbp"));
        let eur = price_in(&price, "eur");
        assert_eq!(
            (eur["currency"].as_str(), eur["unit_amount"].as_i64()),
            (Some("eur"), Some(2700))
        );
        assert_eq!(price_in(&price, "usd")["unit_amount"], 2900);
    }

    #[test]
    fn parses_options() {
        let v = json!({"currency_options": {"EUR": {"unit_amount": "2700"}}});
        let o = parse_currency_options(Params(&v), "usd", 2900)
            .unwrap()
            .unwrap();
        assert_eq!(o["usd"]["unit_amount"], 2900);
        assert_eq!(o["eur"]["unit_amount"], 2700);
        let v = json!({"currency_options": {"eur": {}}});
        assert!(parse_currency_options(Params(&v), "usd", 2900).is_err());
    }
}
