//! Products and prices: the catalogue checkout sessions and subscriptions refer to.

use serde_json::Value;

use super::{created_filter, paginate, Ctx, Store};
use crate::config::PriceSeed;
use crate::error::ApiError;
use crate::form::{MetadataUpdate, Params};
use crate::{ids, objects};

const INTERVALS: [&str; 4] = ["day", "week", "month", "year"];

impl Store {
    /// A configured price and its product, present from the start (no events).
    pub fn seed_price(&mut self, seed: &PriceSeed, now: i64) {
        let product_id = format!("prod_{}", seed.id.trim_start_matches("price_"));
        if self.products.get(&product_id).is_none() {
            let product = objects::product(&product_id, &seed.id, now, super::empty_object());
            self.products.insert(product_id.clone(), product, i64::MIN);
        }
        let interval = (seed.interval != "one_time").then(|| (seed.interval.clone(), 1));
        let price = objects::price(
            &seed.id,
            now,
            objects::PriceFields {
                product: product_id,
                unit_amount: seed.unit_amount,
                currency: seed.currency.clone(),
                interval,
                metadata: super::empty_object(),
                nickname: None,
                lookup_key: None,
                active: true,
            },
        );
        self.prices.remove(&seed.id);
        self.prices.insert(seed.id.clone(), price, i64::MIN);
    }

    pub fn create_product(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let name = p.required_str("name")?;
        let id = match p.str("id")? {
            Some(id) if !id.is_empty() => {
                if self.products.get(&id).is_some() {
                    return Err(ApiError {
                        code: Some("resource_already_exists"),
                        ..ApiError::invalid("id", format!("Product already exists: '{id}'"))
                    });
                }
                id
            }
            _ => ids::new_id("prod_", 14),
        };
        let mut obj = objects::product(&id, &name, ctx.now, p.metadata("metadata")?.to_value());
        if let Some(d) = p.nullable_str("description")? {
            obj["description"] = d.map(Value::String).unwrap_or(Value::Null);
        }
        self.emit(ctx, "product.created", &obj, None);
        self.products
            .insert(id, obj.clone(), ctx.now_ms + ctx.search_lag_ms);
        Ok(obj)
    }

    pub fn retrieve_product(&self, id: &str) -> Result<&Value, ApiError> {
        self.products
            .get(id)
            .ok_or_else(|| ApiError::no_such("product", id))
    }

    pub fn list_products(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let active = p.bool("active")?;
        let created = created_filter(p)?;
        paginate(&self.products, p, "/v1/products", "product", |o| {
            active.is_none_or(|a| o["active"] == a) && created(o)
        })
    }

    pub fn create_price(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let currency = p.required_str("currency")?.to_ascii_lowercase();
        if currency.len() != 3 {
            return Err(ApiError::invalid(
                "currency",
                format!("Invalid currency: {currency}"),
            ));
        }
        let tiered = super::meters::tiers_param(p)?;
        let unit_amount = match (p.int("unit_amount")?, &tiered) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "unit_amount",
                    "unit_amount cannot be set when billing_scheme is tiered.",
                ))
            }
            (None, Some(_)) => 0,
            (Some(amount), None) => amount,
            (None, None) => return Err(ApiError::missing_param("unit_amount")),
        };
        if unit_amount < 0 {
            return Err(ApiError::invalid(
                "unit_amount",
                "This value must be greater than or equal to 0.",
            ));
        }
        let recurring = p.child("recurring");
        let interval = match recurring.str("interval")? {
            None => None,
            Some(i) if INTERVALS.contains(&i.as_str()) => {
                let count = recurring.int("interval_count")?.unwrap_or(1);
                if count < 1 {
                    return Err(ApiError::invalid("recurring[interval_count]", "Invalid interval_count"));
                }
                Some((i, count as u64))
            }
            Some(i) => {
                return Err(ApiError::invalid(
                    "recurring[interval]",
                    format!("Invalid recurring[interval]: must be one of day, week, month, or year (got {i})"),
                ))
            }
        };
        let currency_options = super::currency::parse_currency_options(p, &currency, unit_amount)?;
        let meter = self.metered_param(recurring, interval.is_some())?;
        let product = match (p.str("product")?, p.get("product_data")) {
            (Some(id), _) if !id.is_empty() => {
                if self.products.get(&id).is_none() {
                    return Err(ApiError::no_such_param("product", &id, "product"));
                }
                id
            }
            (_, Some(_)) => {
                let data = p.child("product_data");
                let name = data
                    .str("name")?
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| ApiError::missing_param("product_data[name]"))?;
                let id = ids::new_id("prod_", 14);
                let prod =
                    objects::product(&id, &name, ctx.now, data.metadata("metadata")?.to_value());
                self.emit(ctx, "product.created", &prod, None);
                self.products
                    .insert(id.clone(), prod, ctx.now_ms + ctx.search_lag_ms);
                id
            }
            _ => return Err(ApiError::missing_param("product")),
        };
        let id = ids::new_id("price_", 24);
        let mut obj = objects::price(
            &id,
            ctx.now,
            objects::PriceFields {
                product,
                unit_amount,
                currency,
                interval,
                metadata: p.metadata("metadata")?.to_value(),
                nickname: p.nullable_str("nickname")?.flatten(),
                lookup_key: p.nullable_str("lookup_key")?.flatten(),
                active: p.bool("active")?.unwrap_or(true),
            },
        );
        if let Some(options) = currency_options {
            obj["currency_options"] = options;
        }
        match (meter, tiered) {
            (Some(meter), tiers) => {
                objects::set_metered(&mut obj, &meter);
                if let Some((mode, tiers)) = tiers {
                    objects::set_tiers(&mut obj, &mode, &tiers);
                }
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    "billing_scheme",
                    "stripe-sim simulates tiered prices for metered usage only.",
                ))
            }
            (None, None) => {}
        }
        self.emit(ctx, "price.created", &obj, None);
        self.prices
            .insert(id, obj.clone(), ctx.now_ms + ctx.search_lag_ms);
        Ok(obj)
    }

    /// `recurring[usage_type]` and `recurring[meter]`: the meter of a metered price
    /// (required, as Stripe requires for metered prices since usage records went).
    fn metered_param(
        &self,
        recurring: Params<'_>,
        is_recurring: bool,
    ) -> Result<Option<String>, ApiError> {
        if recurring.get("aggregate_usage").is_some() {
            return Err(ApiError::invalid(
                "recurring[aggregate_usage]",
                "aggregate_usage belongs to legacy usage records; metered prices aggregate through their meter.",
            ));
        }
        let usage_type = recurring.str("usage_type")?;
        let meter = recurring.str("meter")?.filter(|m| !m.is_empty());
        match (usage_type.as_deref(), meter) {
            (None | Some("licensed"), None) => Ok(None),
            (Some("metered"), Some(m)) if is_recurring => {
                if self.meters.get(&m).is_none() {
                    return Err(ApiError::no_such_param("billing.meter", &m, "recurring[meter]"));
                }
                Ok(Some(m))
            }
            (Some("metered"), None) => Err(ApiError::missing_param("recurring[meter]")),
            (None | Some("licensed"), Some(_)) => Err(ApiError::invalid(
                "recurring[meter]",
                "recurring[meter] can only be set when recurring[usage_type] is metered.",
            )),
            (Some(other), _) if other != "metered" => Err(ApiError::invalid(
                "recurring[usage_type]",
                format!("Invalid recurring[usage_type]: must be one of licensed or metered (got {other})."),
            )),
            _ => Err(ApiError::missing_param("recurring[interval]")),
        }
    }

    pub fn retrieve_price(&self, id: &str) -> Result<&Value, ApiError> {
        self.prices
            .get(id)
            .ok_or_else(|| ApiError::no_such("price", id))
    }

    pub fn update_price(&mut self, ctx: &Ctx, id: &str, p: Params<'_>) -> Result<Value, ApiError> {
        let metadata = p.metadata("metadata")?;
        let active = p.bool("active")?;
        let nickname = p.nullable_str("nickname")?;
        let lookup_key = p.nullable_str("lookup_key")?;
        let price = self
            .prices
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("price", id))?;
        if metadata != MetadataUpdate::None {
            metadata.apply(&mut price["metadata"]);
        }
        if let Some(a) = active {
            price["active"] = Value::Bool(a);
        }
        if let Some(n) = nickname {
            price["nickname"] = n.map(Value::String).unwrap_or(Value::Null);
        }
        if let Some(k) = lookup_key {
            price["lookup_key"] = k.map(Value::String).unwrap_or(Value::Null);
        }
        let obj = price.clone();
        self.emit(ctx, "price.updated", &obj, None);
        Ok(obj)
    }

    pub fn list_prices(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let active = p.bool("active")?;
        let product = p.str("product")?;
        let kind = p.str("type")?;
        let currency = p.str("currency")?;
        let lookup_keys: Vec<String> = p
            .array("lookup_keys")?
            .iter()
            .filter_map(|v| v.0.as_str().map(str::to_string))
            .collect();
        let created = created_filter(p)?;
        paginate(&self.prices, p, "/v1/prices", "price", |o| {
            active.is_none_or(|a| o["active"] == a)
                && product.as_ref().is_none_or(|x| o["product"] == x.as_str())
                && kind.as_ref().is_none_or(|x| o["type"] == x.as_str())
                && currency
                    .as_ref()
                    .is_none_or(|x| o["currency"] == x.as_str())
                && (lookup_keys.is_empty()
                    || o["lookup_key"]
                        .as_str()
                        .is_some_and(|k| lookup_keys.iter().any(|l| l == k)))
                && created(o)
        })
    }
}
