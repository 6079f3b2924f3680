//! Coupons, promotion codes and the discounts they become on a subscription.
//!
//! A coupon is `percent_off` or `amount_off` + `currency`, for `once`,
//! `repeating` (`duration_in_months`) or `forever`; it stops being `valid` after
//! `redeem_by` or `max_redemptions`. A promotion code names a coupon
//! (`promotion[coupon]`, or the legacy `coupon`) under a customer-facing `code`
//! (unique among active codes, matched without regard to case); it is `active`
//! until switched off, past `expires_at`, used `max_redemptions` times, or its
//! coupon is no longer valid. Redeeming one (Checkout, `discounts[i]` on a new
//! subscription) creates a discount (`di_…`) on the subscription, which
//! discounts the discountable (non-proration) lines of its invoices: a `once`
//! coupon the first invoice with something to discount, `repeating` until its
//! `end`, `forever` always.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::periods::add_interval;
use super::{created_filter, paginate, Ctx, Store, Table};
use crate::error::ApiError;
use crate::form::{MetadataUpdate, Params};
use crate::{ids, objects};

/// Coupons, promotion codes, discounts.
#[derive(Debug, Default)]
pub(crate) struct PromoState {
    pub coupons: Table,
    pub promotion_codes: Table,
    pub discounts: Table,
    /// Deleted coupons, kept for the discounts made from them.
    pub coupon_copies: HashMap<String, Value>,
}

/// A discount asked for (`discounts[i]`), checked and not yet redeemed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DiscountSpec {
    pub coupon: String,
    pub promotion_code: Option<String>,
}

impl PromoState {
    /// Marks coupons past `redeem_by` invalid and promotion codes past
    /// `expires_at` (or whose coupon is invalid) inactive.
    pub(crate) fn refresh(&mut self, now: i64) {
        let mut invalid = Vec::new();
        for e in self.coupons.iter_newest() {
            if e.obj["valid"] == true && e.obj["redeem_by"].as_i64().is_some_and(|t| t <= now) {
                invalid.push(e.obj["id"].as_str().unwrap_or_default().to_string());
            }
        }
        for id in &invalid {
            if let Some(c) = self.coupons.get_mut(id) {
                c["valid"] = json!(false);
            }
        }
        let mut inactive = Vec::new();
        for e in self.promotion_codes.iter_newest() {
            let p = &e.obj;
            if p["active"] != true {
                continue;
            }
            let expired = p["expires_at"].as_i64().is_some_and(|t| t <= now);
            let coupon_ok = p["promotion"]["coupon"]
                .as_str()
                .and_then(|c| self.coupons.get(c))
                .is_some_and(|c| c["valid"] == true);
            if expired || !coupon_ok {
                inactive.push(p["id"].as_str().unwrap_or_default().to_string());
            }
        }
        for id in inactive {
            if let Some(p) = self.promotion_codes.get_mut(&id) {
                p["active"] = json!(false);
            }
        }
    }
}

/// `percent_off` as basis points (20.0 → 2000).
fn percent_bp(coupon: &Value) -> Option<i64> {
    coupon["percent_off"]
        .as_f64()
        .map(|p| (p * 100.0).round() as i64)
}

/// What `coupon` takes off `amounts` (the discountable line amounts, in
/// `currency`), per line: a percentage per positive line, rounded half away from
/// zero; a fixed amount spread over the positive lines in proportion, capped at
/// their sum.
pub(crate) fn discount_amounts(coupon: &Value, currency: &str, amounts: &[i64]) -> Vec<i64> {
    if let Some(bp) = percent_bp(coupon) {
        return amounts
            .iter()
            .map(|a| {
                if *a > 0 {
                    crate::geo::apply_rate(*a, bp)
                } else {
                    0
                }
            })
            .collect();
    }
    let off = match (coupon["amount_off"].as_i64(), coupon["currency"].as_str()) {
        (Some(a), Some(c)) if c == currency => a,
        _ => coupon["currency_options"][currency]["amount_off"]
            .as_i64()
            .unwrap_or(0),
    };
    let positive: i64 = amounts.iter().filter(|a| **a > 0).sum();
    let total = off.min(positive);
    if total <= 0 {
        return vec![0; amounts.len()];
    }
    let mut out: Vec<i64> = amounts
        .iter()
        .map(|a| if *a > 0 { total * a / positive } else { 0 })
        .collect();
    // The cents lost to integer division go to the first positive lines.
    let mut left = total - out.iter().sum::<i64>();
    for (o, a) in out.iter_mut().zip(amounts) {
        if left == 0 {
            break;
        }
        if *a > 0 && *o < *a {
            *o += 1;
            left -= 1;
        }
    }
    out
}

impl Store {
    pub fn create_coupon(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let id = match p.str("id")? {
            Some(id) if !id.is_empty() => {
                if self.promos.coupons.get(&id).is_some() {
                    return Err(ApiError {
                        code: Some("resource_already_exists"),
                        ..ApiError::invalid("id", "Coupon already exists.")
                    });
                }
                id
            }
            _ => ids::new_id("", 8),
        };
        let percent_off = match p.get("percent_off") {
            None => None,
            Some(v) => {
                let pct = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| ApiError::invalid("percent_off", "Invalid decimal"))?;
                if !(pct > 0.0 && pct <= 100.0) {
                    return Err(ApiError::invalid(
                        "percent_off",
                        "percent_off must be greater than 0 and at most 100.",
                    ));
                }
                Some(pct)
            }
        };
        let amount_off = match p.int("amount_off")? {
            None => None,
            Some(a) if a < 1 => {
                return Err(ApiError::invalid(
                    "amount_off",
                    "amount_off must be at least 1.",
                ))
            }
            Some(a) => {
                let currency = p
                    .str("currency")?
                    .filter(|c| c.len() == 3)
                    .ok_or_else(|| ApiError::missing_param("currency"))?;
                Some((a, currency.to_ascii_lowercase()))
            }
        };
        if percent_off.is_some() == amount_off.is_some() {
            return Err(ApiError::invalid(
                "percent_off",
                "You must pass exactly one of percent_off or amount_off.",
            ));
        }
        let duration = p.str("duration")?.unwrap_or_else(|| "once".into());
        let months = p.int("duration_in_months")?;
        match (duration.as_str(), months) {
            ("repeating", Some(m)) if m >= 1 => {}
            ("repeating", _) => return Err(ApiError::missing_param("duration_in_months")),
            ("once" | "forever", None) => {}
            ("once" | "forever", Some(_)) => {
                return Err(ApiError::invalid(
                    "duration_in_months",
                    "duration_in_months can only be used with duration=repeating.",
                ))
            }
            _ => {
                return Err(ApiError::invalid(
                    "duration",
                    "Invalid duration: must be one of forever, once, or repeating",
                ))
            }
        }
        let max_redemptions = p.int("max_redemptions")?;
        if max_redemptions.is_some_and(|m| m < 1) {
            return Err(ApiError::invalid(
                "max_redemptions",
                "max_redemptions must be at least 1.",
            ));
        }
        let redeem_by = p.int("redeem_by")?;
        if redeem_by.is_some_and(|t| t <= ctx.now) {
            return Err(ApiError::invalid(
                "redeem_by",
                "redeem_by must be in the future.",
            ));
        }
        let obj = objects::coupon(
            &id,
            ctx.now,
            objects::CouponFields {
                name: p.nullable_str("name")?.flatten(),
                percent_off,
                amount_off,
                duration,
                duration_in_months: months,
                max_redemptions,
                redeem_by,
                metadata: p.metadata("metadata")?.to_value(),
            },
        );
        self.promos.coupons.insert(id, obj.clone(), ctx.now_ms);
        self.emit(ctx, "coupon.created", &obj, None);
        Ok(obj)
    }

    pub fn retrieve_coupon(&self, id: &str) -> Result<&Value, ApiError> {
        self.promos
            .coupons
            .get(id)
            .ok_or_else(|| ApiError::no_such("coupon", id))
    }

    pub fn list_coupons(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let created = created_filter(p)?;
        paginate(&self.promos.coupons, p, "/v1/coupons", "coupon", created)
    }

    /// `name` and `metadata` only, as Stripe allows.
    pub fn update_coupon(&mut self, ctx: &Ctx, id: &str, p: Params<'_>) -> Result<Value, ApiError> {
        let metadata = p.metadata("metadata")?;
        let name = p.nullable_str("name")?;
        let c = self
            .promos
            .coupons
            .get_mut(id)
            .ok_or_else(|| ApiError::no_such("coupon", id))?;
        if metadata != MetadataUpdate::None {
            metadata.apply(&mut c["metadata"]);
        }
        if let Some(n) = name {
            c["name"] = n.map(Value::String).unwrap_or(Value::Null);
        }
        let obj = c.clone();
        self.emit(ctx, "coupon.updated", &obj, None);
        Ok(obj)
    }

    /// Deleting a coupon keeps the discounts already made from it.
    pub fn delete_coupon(&mut self, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
        let obj = self
            .promos
            .coupons
            .remove(id)
            .ok_or_else(|| ApiError::no_such("coupon", id))?;
        self.promos
            .coupon_copies
            .insert(id.to_string(), obj.clone());
        self.emit(ctx, "coupon.deleted", &obj, None);
        Ok(objects::deleted(id, "coupon"))
    }

    pub fn create_promotion_code(&mut self, ctx: &Ctx, p: Params<'_>) -> Result<Value, ApiError> {
        let promotion = p.child("promotion");
        let coupon = match (promotion.str("coupon")?, p.str("coupon")?) {
            (Some(c), _) | (None, Some(c)) if !c.is_empty() => c,
            _ => return Err(ApiError::missing_param("promotion[coupon]")),
        };
        if let Some(kind) = promotion.str("type")? {
            if kind != "coupon" {
                return Err(ApiError::invalid(
                    "promotion[type]",
                    "Invalid promotion[type]: must be coupon",
                ));
            }
        }
        let valid = self
            .promos
            .coupons
            .get(&coupon)
            .ok_or_else(|| ApiError::no_such_param("coupon", &coupon, "promotion[coupon]"))?
            ["valid"]
            == true;
        if !valid {
            return Err(ApiError::invalid(
                "promotion[coupon]",
                format!("Coupon `{coupon}` is no longer valid."),
            ));
        }
        let code = match p.str("code")? {
            Some(c) if !c.is_empty() => {
                if c.len() > 500
                    || !c
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch))
                {
                    return Err(ApiError::invalid(
                        "code",
                        "Invalid code: use letters, digits, - and _ only.",
                    ));
                }
                c
            }
            _ => ids::new_id("", 8).to_ascii_uppercase(),
        };
        let active = p.bool("active")?.unwrap_or(true);
        let taken = self.promos.promotion_codes.iter_newest().any(|e| {
            e.obj["active"] == true
                && e.obj["code"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(&code))
        });
        if active && taken {
            return Err(ApiError::invalid(
                "code",
                format!("An active promotion code with the code `{code}` already exists."),
            ));
        }
        let customer = p.str("customer")?.filter(|c| !c.is_empty());
        if let Some(c) = &customer {
            if self.customers.get(c).is_none() {
                return Err(ApiError::no_such_param("customer", c, "customer"));
            }
        }
        let expires_at = p.int("expires_at")?;
        if expires_at.is_some_and(|t| t <= ctx.now) {
            return Err(ApiError::invalid(
                "expires_at",
                "expires_at must be in the future.",
            ));
        }
        let max_redemptions = p.int("max_redemptions")?;
        if max_redemptions.is_some_and(|m| m < 1) {
            return Err(ApiError::invalid(
                "max_redemptions",
                "max_redemptions must be at least 1.",
            ));
        }
        let id = ids::new_id("promo_", 24);
        let obj = objects::promotion_code(
            &id,
            ctx.now,
            objects::PromotionCodeFields {
                code,
                coupon,
                customer,
                expires_at,
                max_redemptions,
                first_time_transaction: p
                    .child("restrictions")
                    .bool("first_time_transaction")?
                    .unwrap_or(false),
                active,
                metadata: p.metadata("metadata")?.to_value(),
            },
        );
        self.promos
            .promotion_codes
            .insert(id, obj.clone(), ctx.now_ms);
        self.emit(ctx, "promotion_code.created", &obj, None);
        Ok(obj)
    }

    pub fn retrieve_promotion_code(&self, id: &str) -> Result<&Value, ApiError> {
        self.promos
            .promotion_codes
            .get(id)
            .ok_or_else(|| ApiError::no_such("promotion_code", id))
    }

    /// Filters: `code` (any case), `active`, `coupon`, `customer`, `created`.
    pub fn list_promotion_codes(&self, p: Params<'_>) -> Result<Value, ApiError> {
        let code = p.str("code")?;
        let active = p.bool("active")?;
        let coupon = p.str("coupon")?;
        let customer = p.str("customer")?;
        let created = created_filter(p)?;
        paginate(
            &self.promos.promotion_codes,
            p,
            "/v1/promotion_codes",
            "promotion_code",
            |o| {
                code.as_ref().is_none_or(|c| {
                    o["code"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(c))
                }) && active.is_none_or(|a| o["active"] == a)
                    && coupon
                        .as_ref()
                        .is_none_or(|c| o["promotion"]["coupon"] == c.as_str())
                    && customer
                        .as_ref()
                        .is_none_or(|c| o["customer"] == c.as_str())
                    && created(o)
            },
        )
    }

    /// `active` and `metadata`; an expired code or one of an invalid coupon
    /// cannot be switched back on.
    pub fn update_promotion_code(
        &mut self,
        ctx: &Ctx,
        id: &str,
        p: Params<'_>,
    ) -> Result<Value, ApiError> {
        let metadata = p.metadata("metadata")?;
        let active = p.bool("active")?;
        let promo = self.retrieve_promotion_code(id)?;
        if active == Some(true) && promo["active"] == false {
            let expired = promo["expires_at"].as_i64().is_some_and(|t| t <= ctx.now);
            let coupon_ok = promo["promotion"]["coupon"]
                .as_str()
                .and_then(|c| self.promos.coupons.get(c))
                .is_some_and(|c| c["valid"] == true);
            if expired || !coupon_ok {
                return Err(ApiError::invalid(
                    "active",
                    "This promotion code has expired or its coupon is no longer valid, so it cannot be reactivated.",
                ));
            }
        }
        let promo = self.promos.promotion_codes.get_mut(id).expect("checked");
        if let Some(a) = active {
            promo["active"] = json!(a);
        }
        if metadata != MetadataUpdate::None {
            metadata.apply(&mut promo["metadata"]);
        }
        let obj = promo.clone();
        self.emit(ctx, "promotion_code.updated", &obj, None);
        Ok(obj)
    }

    /// `discounts[i][coupon|promotion_code]` of a request, checked for `customer`
    /// (not redeemed yet). One entry names exactly one of the two.
    pub(crate) fn parse_discounts(
        &self,
        p: Params<'_>,
        customer: Option<&str>,
    ) -> Result<Vec<DiscountSpec>, ApiError> {
        let mut out = Vec::new();
        for (i, d) in p.array("discounts")?.into_iter().enumerate() {
            let coupon = d.str("coupon")?.filter(|s| !s.is_empty());
            let promo = d.str("promotion_code")?.filter(|s| !s.is_empty());
            let spec = match (coupon, promo) {
                (Some(c), None) => {
                    self.check_coupon(&c, &format!("discounts[{i}][coupon]"))?;
                    DiscountSpec {
                        coupon: c,
                        promotion_code: None,
                    }
                }
                (None, Some(pc)) => self.check_promotion_code(
                    &pc,
                    customer,
                    &format!("discounts[{i}][promotion_code]"),
                )?,
                _ => {
                    return Err(ApiError::invalid(
                        format!("discounts[{i}]"),
                        "You may only specify one of these parameters: coupon, promotion_code.",
                    ))
                }
            };
            out.push(spec);
        }
        Ok(out)
    }

    pub(crate) fn check_coupon(&self, id: &str, param: &str) -> Result<(), ApiError> {
        let c = self
            .promos
            .coupons
            .get(id)
            .ok_or_else(|| ApiError::no_such_param("coupon", id, param))?;
        let exhausted = c["max_redemptions"]
            .as_i64()
            .is_some_and(|m| c["times_redeemed"].as_i64().unwrap_or(0) >= m);
        if c["valid"] != true || exhausted {
            return Err(ApiError {
                code: Some("coupon_expired"),
                ..ApiError::invalid(param, format!("Coupon `{id}` is no longer valid."))
            });
        }
        Ok(())
    }

    /// A promotion code (by id) `customer` may redeem now.
    pub(crate) fn check_promotion_code(
        &self,
        id: &str,
        customer: Option<&str>,
        param: &str,
    ) -> Result<DiscountSpec, ApiError> {
        let pc = self
            .promos
            .promotion_codes
            .get(id)
            .ok_or_else(|| ApiError::no_such_param("promotion_code", id, param))?;
        let code = pc["code"].as_str().unwrap_or_default();
        let exhausted = pc["max_redemptions"]
            .as_i64()
            .is_some_and(|m| pc["times_redeemed"].as_i64().unwrap_or(0) >= m);
        if pc["active"] != true || exhausted {
            return Err(ApiError::invalid(
                param,
                format!("The promotion code `{code}` is inactive or has expired."),
            ));
        }
        if let Some(only) = pc["customer"].as_str() {
            if customer != Some(only) {
                return Err(ApiError::invalid(
                    param,
                    format!("The promotion code `{code}` cannot be redeemed by this customer."),
                ));
            }
        }
        if pc["restrictions"]["first_time_transaction"] == true {
            let paid_before = customer.is_some_and(|c| {
                self.invoices.iter_newest().any(|e| {
                    e.obj["customer"] == c && e.obj["amount_paid"].as_i64().unwrap_or(0) > 0
                })
            });
            if paid_before {
                return Err(ApiError::invalid(
                    param,
                    format!("The promotion code `{code}` is for first-time customers only."),
                ));
            }
        }
        let coupon = pc["promotion"]["coupon"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.check_coupon(&coupon, param)?;
        Ok(DiscountSpec {
            coupon,
            promotion_code: Some(id.to_string()),
        })
    }

    /// The active promotion code with this customer-facing `code`, if any.
    pub(crate) fn promotion_code_by_code(&self, code: &str) -> Option<String> {
        self.promos
            .promotion_codes
            .iter_newest()
            .find(|e| {
                e.obj["active"] == true
                    && e.obj["code"]
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case(code))
            })
            .and_then(|e| e.obj["id"].as_str().map(str::to_string))
    }

    /// Redeems checked discounts: a `di_…` object each, counted on the coupon and
    /// the promotion code. Returns the discount ids.
    pub(crate) fn redeem_discounts(
        &mut self,
        ctx: &Ctx,
        specs: &[DiscountSpec],
        customer: &str,
        subscription: Option<&str>,
        checkout_session: Option<&str>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for spec in specs {
            let Some(coupon) = self.promos.coupons.get_mut(&spec.coupon) else {
                continue;
            };
            let redeemed = coupon["times_redeemed"].as_i64().unwrap_or(0) + 1;
            coupon["times_redeemed"] = json!(redeemed);
            if coupon["max_redemptions"]
                .as_i64()
                .is_some_and(|m| redeemed >= m)
            {
                coupon["valid"] = json!(false);
            }
            let end = match (
                coupon["duration"].as_str(),
                coupon["duration_in_months"].as_u64(),
            ) {
                (Some("repeating"), Some(m)) => Some(add_interval(ctx.now, "month", m)),
                _ => None,
            };
            if let Some(pc) = spec
                .promotion_code
                .as_ref()
                .and_then(|id| self.promos.promotion_codes.get_mut(id))
            {
                let n = pc["times_redeemed"].as_i64().unwrap_or(0) + 1;
                pc["times_redeemed"] = json!(n);
                if pc["max_redemptions"].as_i64().is_some_and(|m| n >= m) {
                    pc["active"] = json!(false);
                }
            }
            let id = ids::object_id("di_");
            let discount = objects::discount(
                &id,
                ctx.now,
                objects::DiscountFields {
                    coupon: &spec.coupon,
                    promotion_code: spec.promotion_code.as_deref(),
                    customer: Some(customer),
                    subscription,
                    checkout_session,
                    end,
                },
            );
            self.promos
                .discounts
                .insert(id.clone(), discount, ctx.now_ms);
            out.push(id);
        }
        self.promos.refresh(ctx.now);
        out
    }

    /// The discounts of `sub` that still apply at `now`, with their coupons.
    pub(crate) fn live_discounts(&self, sub: &Value, now: i64) -> Vec<(String, Value)> {
        sub["discounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str())
            .filter_map(|id| {
                let d = self.promos.discounts.get(id)?;
                if d["end"].as_i64().is_some_and(|end| end <= now) {
                    return None;
                }
                // A deleted coupon keeps discounting: Stripe keeps a copy on the discount.
                let coupon = d["source"]["coupon"].as_str()?;
                let c = self
                    .promos
                    .coupons
                    .get(coupon)
                    .cloned()
                    .or_else(|| self.promos.coupon_copies.get(coupon).cloned())?;
                Some((id.to_string(), c))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_amount_discounts() {
        let pct = json!({"percent_off": 20.0});
        assert_eq!(discount_amounts(&pct, "usd", &[2900, -500]), vec![580, 0]);
        let pct = json!({"percent_off": 12.5});
        assert_eq!(discount_amounts(&pct, "usd", &[1]), vec![0]);
        assert_eq!(discount_amounts(&pct, "usd", &[4]), vec![1]); // 0.5 → 1
        let fixed = json!({"amount_off": 1000, "currency": "usd"});
        assert_eq!(discount_amounts(&fixed, "usd", &[2900]), vec![1000]);
        assert_eq!(
            discount_amounts(&fixed, "usd", &[300, 400]),
            vec![300, 400],
            "capped"
        );
        assert_eq!(
            discount_amounts(&fixed, "usd", &[1000, 2000]),
            vec![334, 666]
        );
        assert_eq!(
            discount_amounts(&fixed, "eur", &[2900]),
            vec![0],
            "other currency"
        );
    }
}
