//! The tenant's tax ids (VAT numbers and the like): kept at Stripe on the
//! tenant's customer, where Checkout and invoices read them, and never
//! copied here. Stripe also owns their verification status.

use super::{Actor, Billing, BillingError, CustomerHints};
use crate::domain::{TaxIdNumber, TenantId};
use crate::stripe::{StripeFailure, StripeTaxId};

impl Billing {
    /// The tenant's tax ids as Stripe has them, oldest first; none (and no
    /// Stripe request) for a tenant without a customer.
    pub async fn tax_ids(&self, tenant: &TenantId) -> Result<Vec<StripeTaxId>, BillingError> {
        let Some(customer) = self
            .read_row(tenant)
            .await?
            .and_then(|r| r.stripe_customer_id)
        else {
            return Ok(Vec::new());
        };
        Ok(self.stripe.list_tax_ids(&customer).await?)
    }

    /// Adds a tax id to the tenant's customer (creating the customer first if
    /// needed). The same number twice is one tax id: `(id, false)` for the
    /// one already there.
    pub async fn add_tax_id(
        &self,
        tenant: &TenantId,
        number: &TaxIdNumber,
        actor: &Actor<'_>,
    ) -> Result<(StripeTaxId, bool), BillingError> {
        let customer = self
            .ensure_customer(tenant, &CustomerHints::default(), actor)
            .await?
            .customer_id;
        let existing = self.stripe.list_tax_ids(&customer).await?;
        if let Some(found) = existing
            .into_iter()
            .find(|t| t.kind == number.kind.as_str() && t.value == number.value)
        {
            return Ok((found, false));
        }
        let key = [
            "tax-id",
            tenant.as_str(),
            customer.as_str(),
            number.kind.as_str(),
            number.value.as_str(),
        ];
        match self.stripe.create_tax_id(&customer, number, &key).await {
            Ok(created) => {
                let detail = serde_json::json!({"tax_id": created.id, "type": created.kind});
                self.audit(
                    tenant,
                    actor,
                    "tax_id.create",
                    "ok",
                    Some(detail.to_string()),
                )
                .await;
                Ok((created, true))
            }
            Err(StripeFailure::Rejected {
                code: Some(code), ..
            }) if code == "tax_id_invalid" => Err(BillingError::TaxIdRefused),
            Err(other) => Err(other.into()),
        }
    }

    /// Removes one of the tenant's tax ids; `TaxIdNotFound` when its
    /// customer has no such id (or the tenant no customer).
    pub async fn remove_tax_id(
        &self,
        tenant: &TenantId,
        tax_id: &str,
        actor: &Actor<'_>,
    ) -> Result<(), BillingError> {
        let Some(customer) = self
            .read_row(tenant)
            .await?
            .and_then(|r| r.stripe_customer_id)
        else {
            return Err(BillingError::TaxIdNotFound);
        };
        if !self.stripe.delete_tax_id(&customer, tax_id).await? {
            return Err(BillingError::TaxIdNotFound);
        }
        let detail = serde_json::json!({"tax_id": tax_id});
        self.audit(
            tenant,
            actor,
            "tax_id.delete",
            "ok",
            Some(detail.to_string()),
        )
        .await;
        Ok(())
    }
}
