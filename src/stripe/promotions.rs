//! Promotion codes: the code a tenant types is looked up before a Checkout
//! is opened with it, so an unknown or expired one is refused with a 422
//! instead of reaching Checkout.

use stripe_product::promotion_code::ListPromotionCode;

use super::{StripeFailure, StripeGateway};

/// A promotion code as the service checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePromotionCode {
    pub id: String,
    pub code: String,
    /// Stripe's switch (off once expired, used up or switched off).
    pub active: bool,
    pub expires_at: Option<i64>,
    /// `max_redemptions` reached.
    pub exhausted: bool,
    /// The coupon it applies is still valid.
    pub coupon_valid: bool,
}

impl StripePromotionCode {
    /// Whether a customer may redeem it at `now` (unix seconds).
    pub fn redeemable(&self, now: i64) -> bool {
        self.active
            && !self.exhausted
            && self.coupon_valid
            && self.expires_at.is_none_or(|at| at > now)
    }
}

impl StripeGateway {
    /// The promotion code with this customer-facing `code`: an active one if
    /// there is one, else the newest (so an expired code can be told apart
    /// from an unknown one). `None` when Stripe knows no such code.
    pub async fn find_promotion_code(
        &self,
        code: &str,
    ) -> Result<Option<StripePromotionCode>, StripeFailure> {
        let request = ListPromotionCode::new()
            .code(code.to_owned())
            .limit(10)
            .expand(vec!["data.promotion.coupon".to_owned()]);
        let page = self
            .policy
            .run("list_promotion_codes", || request.send(&self.client))
            .await?;
        let codes: Vec<StripePromotionCode> = page
            .data
            .into_iter()
            .map(|p| {
                let coupon_valid = match p.promotion.coupon.as_ref().and_then(|c| c.as_object()) {
                    Some(coupon) => coupon.valid,
                    None => true,
                };
                StripePromotionCode {
                    id: p.id.to_string(),
                    code: p.code,
                    active: p.active,
                    expires_at: p.expires_at,
                    exhausted: p.max_redemptions.is_some_and(|m| p.times_redeemed >= m),
                    coupon_valid,
                }
            })
            .collect();
        Ok(codes.iter().find(|c| c.active).or(codes.first()).cloned())
    }
}
