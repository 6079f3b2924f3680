//! The Upgrade button (Checkout) and the billing portal.

use super::{Actor, Billing, BillingError, CustomerHints};
use crate::domain::{PlanCode, RedirectUrl, TenantId};
use crate::stripe::{CheckoutParams, CheckoutSession};

#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// A paid plan (Checkout for `free` is refused at the edge).
    pub plan: PlanCode,
    /// Seats for a per-seat plan (validated against its limit); default 1.
    pub quantity: Option<u64>,
    /// None: `billing.default_*_url`, which the route checked is configured.
    pub success_url: Option<RedirectUrl>,
    pub cancel_url: Option<RedirectUrl>,
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
        if state.is_paying() {
            return Err(BillingError::AlreadySubscribed);
        }
        let Some(plan) = self.catalog().get(request.plan.as_str()) else {
            return Err(BillingError::NoSubscription);
        };
        let Some(price_id) = plan.price_id.clone() else {
            return Err(BillingError::NoSubscription);
        };
        let customer = self
            .ensure_customer(tenant, &CustomerHints::default(), actor)
            .await?;
        let billing = &self.settings.billing;
        let params = CheckoutParams {
            tenant_id: tenant.to_string(),
            customer_id: customer.customer_id,
            plan: request.plan.to_string(),
            price_id,
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
                Err(failure.into())
            }
        }
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
