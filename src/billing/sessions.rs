//! The Upgrade button (Checkout) and the billing portal.

use super::{Actor, Billing, BillingError, BillingState, CustomerHints};
use crate::domain::{Currency, PlanCode, RedirectUrl, TenantId};
use crate::stripe::{CheckoutParams, CheckoutSession, StripeFailure};

#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// A paid plan (Checkout for `free` is refused at the edge).
    pub plan: PlanCode,
    /// Seats for a per-seat plan (validated against its limit); default 1.
    pub quantity: Option<u64>,
    /// None: `billing.default_*_url`, which the route checked is configured.
    pub success_url: Option<RedirectUrl>,
    pub cancel_url: Option<RedirectUrl>,
    /// The currency to pay in; refused (409) when the tenant's is fixed to
    /// another. None: the fixed one, else the country's, else the plan's.
    pub currency: Option<Currency>,
    /// A promotion code as the customer types it (`SPRING20`).
    pub promotion_code: Option<String>,
}

impl Billing {
    /// Opens a Stripe Checkout for `plan`. A first click costs two Stripe
    /// requests (customer, session), later clicks one.
    pub async fn start_checkout(
        &self,
        tenant: &TenantId,
        request: &CheckoutRequest,
        actor: &Actor<'_>,
    ) -> Result<CheckoutSession, BillingError> {
        // Not the display cache: another instance may have applied the
        // webhook that made this tenant pay a moment ago.
        // The same read tells whether the tenant ever had a trial.
        let state = self.fresh_state(tenant).await?;
        // Everything decided from the request and the stored state comes
        // first: a refusal here has made no Stripe request.
        let currency = fixed_currency(&state, request.currency.as_ref())?;
        self.check_tax_location(&state)?;
        if state.is_paying() {
            return Err(BillingError::AlreadySubscribed);
        }
        let Some(plan) = self.catalog().get(request.plan.as_str()) else {
            return Err(BillingError::NoSubscription);
        };
        let currency = currency.or_else(|| self.tenant_currency(&state, plan));
        let requested = request.currency.is_some();
        let choice = match &currency {
            Some(c) => self
                .price_in(plan, c)
                .ok_or_else(|| BillingError::NotSoldInCurrency {
                    currency: c.clone(),
                    requested,
                })?,
            None => return Err(BillingError::NoSubscription),
        };
        let promotion_code = match &request.promotion_code {
            Some(code) => Some(self.redeemable_promotion_code(code).await?),
            None => None,
        };
        let customer = self
            .ensure_customer(tenant, &CustomerHints::default(), actor)
            .await?;
        let billing = &self.settings.billing;
        let params = CheckoutParams {
            tenant_id: tenant.to_string(),
            customer_id: customer.customer_id,
            plan: request.plan.to_string(),
            price_id: choice.price_id,
            currency: Some(choice.currency),
            automatic_tax: billing.tax.automatic,
            allow_promotion_codes: billing.allow_promotion_codes,
            promotion_code,
            quantity: request.quantity.filter(|_| plan.per_seat).unwrap_or(1),
            metered_prices: plan.metered_price_ids(),
            // One trial per tenant, ever: remembered even after it ended.
            trial_days: (plan.trial_days > 0 && !state.trial_used).then_some(plan.trial_days),
            success_url: request
                .success_url
                .as_ref()
                .map(|u| u.to_string())
                .or_else(|| billing.default_success_url.clone())
                .unwrap_or_default(),
            cancel_url: request
                .cancel_url
                .as_ref()
                .map(|u| u.to_string())
                .or_else(|| billing.default_cancel_url.clone())
                .unwrap_or_default(),
        };
        let intent = uuid::Uuid::new_v4().simple().to_string();
        let key = ["checkout", tenant.as_str(), intent.as_str()];
        match self.stripe.create_checkout_session(&params, &key).await {
            Ok(session) => {
                let detail = serde_json::json!({
                    "checkout_session_id": session.id,
                    "plan": params.plan,
                    "quantity": params.quantity,
                    "trial_days": params.trial_days,
                });
                self.audit(
                    tenant,
                    actor,
                    "checkout.create",
                    "ok",
                    Some(detail.to_string()),
                )
                .await;
                Ok(session)
            }
            Err(failure) => {
                self.audit(
                    tenant,
                    actor,
                    "checkout.create",
                    "failed",
                    Some(failure.to_string()),
                )
                .await;
                Err(match failure {
                    // Stripe knows a currency we have not seen yet (a
                    // subscription whose webhook is still on its way).
                    StripeFailure::CurrencyConflict {
                        current: Some(fixed),
                    } => BillingError::CurrencyFixed {
                        fixed,
                        asked: params.currency.clone().unwrap_or_default(),
                    },
                    other => other.into(),
                })
            }
        }
    }

    /// With automatic tax on, the tenant's billing address must locate it
    /// (a country; a ZIP or postal code in the US and Canada): else Stripe
    /// would refuse with `customer_tax_location_invalid`.
    pub(super) fn check_tax_location(&self, state: &BillingState) -> Result<(), BillingError> {
        if !self.settings.billing.tax.automatic {
            return Ok(());
        }
        state
            .billing_address
            .tax_location()
            .map(|_| ())
            .map_err(|p| BillingError::AddressIncomplete {
                field: p.field,
                message: p.message,
            })
    }

    /// The promotion code's id, if Stripe has one with this code that can be
    /// redeemed now.
    async fn redeemable_promotion_code(&self, code: &str) -> Result<String, BillingError> {
        let found = self
            .stripe
            .find_promotion_code(code)
            .await?
            .ok_or(BillingError::UnknownPromotionCode)?;
        if !found.redeemable(chrono::Utc::now().timestamp()) {
            return Err(BillingError::PromotionCodeExpired);
        }
        Ok(found.id)
    }

    /// A Stripe billing portal session; returns its URL.
    pub async fn open_portal(
        &self,
        tenant: &TenantId,
        return_url: Option<&RedirectUrl>,
        actor: &Actor<'_>,
    ) -> Result<String, BillingError> {
        let customer = self
            .ensure_customer(tenant, &CustomerHints::default(), actor)
            .await?;
        let return_url = return_url
            .map(|u| u.to_string())
            .or_else(|| self.settings.billing.default_return_url.clone())
            .unwrap_or_default();
        let intent = uuid::Uuid::new_v4().simple().to_string();
        let key = ["portal", tenant.as_str(), intent.as_str()];
        match self
            .stripe
            .create_portal_session(&customer.customer_id, &return_url, &key)
            .await
        {
            Ok(url) => {
                self.audit(tenant, actor, "portal.create", "ok", None).await;
                Ok(url)
            }
            Err(failure) => {
                self.audit(
                    tenant,
                    actor,
                    "portal.create",
                    "failed",
                    Some(failure.to_string()),
                )
                .await;
                Err(failure.into())
            }
        }
    }
}

/// The currency asked for, checked against the tenant's fixed one: `Ok(None)`
/// when neither says.
pub(super) fn fixed_currency(
    state: &BillingState,
    asked: Option<&Currency>,
) -> Result<Option<String>, BillingError> {
    match (&state.currency, asked) {
        (Some(fixed), Some(asked)) if fixed != asked.as_str() => Err(BillingError::CurrencyFixed {
            fixed: fixed.clone(),
            asked: asked.to_string(),
        }),
        (Some(fixed), _) => Ok(Some(fixed.clone())),
        (None, asked) => Ok(asked.map(|c| c.to_string())),
    }
}
