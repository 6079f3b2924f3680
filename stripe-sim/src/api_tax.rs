//! The `/v1` endpoints of tax and discounts: customer tax ids (nested and
//! top-level), automatic tax rates, coupons, promotion codes. Called by `api`
//! under the store lock; `None` for an endpoint that is not one of these.

use serde_json::Value;

use crate::error::ApiError;
use crate::form::Params;
use crate::routes::{split_customer_tax_id, Endpoint};
use crate::store::{Ctx, Store};

pub(crate) fn handle(
    s: &mut Store,
    ep: Endpoint,
    id: &str,
    p: Params<'_>,
    ctx: &Ctx,
) -> Option<Result<Value, ApiError>> {
    use Endpoint::*;
    if matches!(
        ep,
        CouponCreate
            | CouponList
            | CouponRetrieve
            | PromotionCodeCreate
            | PromotionCodeList
            | PromotionCodeRetrieve
            | PromotionCodeUpdate
    ) {
        // Expiry (`redeem_by`, `expires_at`) shows the moment it passes.
        s.promos.refresh(ctx.now);
    }
    let out = match ep {
        CustomerTaxIdCreate => s.create_tax_id(ctx, Some(id), p),
        CustomerTaxIdList => s.list_tax_ids(Some(id), p),
        CustomerTaxIdRetrieve => {
            let (customer, tax_id) = split_customer_tax_id(id);
            s.retrieve_tax_id(Some(customer), tax_id).cloned()
        }
        CustomerTaxIdDelete => {
            let (customer, tax_id) = split_customer_tax_id(id);
            s.delete_tax_id(ctx, Some(customer), tax_id)
        }
        TaxIdCreate => s.create_tax_id(ctx, None, p),
        TaxIdList => s.list_tax_ids(None, p),
        TaxIdRetrieve => s.retrieve_tax_id(None, id).cloned(),
        TaxIdDelete => s.delete_tax_id(ctx, None, id),
        TaxRateList => s.list_tax_rates(p),
        TaxRateRetrieve => s.retrieve_tax_rate(id).cloned(),
        CouponCreate => s.create_coupon(ctx, p),
        CouponList => s.list_coupons(p),
        CouponRetrieve => s.retrieve_coupon(id).cloned(),
        CouponUpdate => s.update_coupon(ctx, id, p),
        CouponDelete => s.delete_coupon(ctx, id),
        PromotionCodeCreate => s.create_promotion_code(ctx, p),
        PromotionCodeList => s.list_promotion_codes(p),
        PromotionCodeRetrieve => s.retrieve_promotion_code(id).cloned(),
        PromotionCodeUpdate => s.update_promotion_code(ctx, id, p),
        _ => return None,
    };
    Some(out)
}
