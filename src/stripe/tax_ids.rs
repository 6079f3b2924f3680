//! The customer's tax ids: kept at Stripe only (no local copy: an admin
//! reads them rarely, and Stripe owns their verification status).

use stripe_billing::tax_id::{
    CreateCustomerTaxId, CreateCustomerTaxIdType, DeleteCustomerTaxId, ListCustomerTaxId,
};

use super::{StripeFailure, StripeGateway};
use crate::domain::TaxIdNumber;

/// A customer's tax id as Stripe has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeTaxId {
    pub id: String,
    /// Stripe's type (`eu_vat`, …).
    pub kind: String,
    pub value: String,
    pub country: Option<String>,
    /// `pending`, `verified`, `unverified` or `unavailable`.
    pub verification: String,
}

impl From<stripe_billing::TaxId> for StripeTaxId {
    fn from(tax_id: stripe_billing::TaxId) -> Self {
        StripeTaxId {
            id: tax_id.id.to_string(),
            kind: tax_id.type_.as_str().to_owned(),
            value: tax_id.value,
            country: tax_id.country,
            verification: tax_id
                .verification
                .map(|v| v.status.as_str().to_owned())
                .unwrap_or_else(|| "unavailable".into()),
        }
    }
}

impl StripeGateway {
    /// The customer's tax ids, oldest first.
    pub async fn list_tax_ids(&self, customer_id: &str) -> Result<Vec<StripeTaxId>, StripeFailure> {
        let request = ListCustomerTaxId::new(customer_id).limit(100);
        let page = self
            .policy
            .run("list_tax_ids", || request.send(&self.client))
            .await?;
        let mut ids: Vec<StripeTaxId> = page.data.into_iter().map(StripeTaxId::from).collect();
        ids.reverse();
        Ok(ids)
    }

    /// Adds a tax id to the customer. A well-formed number Stripe still
    /// refuses is `Rejected` with code `tax_id_invalid`.
    pub async fn create_tax_id(
        &self,
        customer_id: &str,
        number: &TaxIdNumber,
        key_parts: &[&str],
    ) -> Result<StripeTaxId, StripeFailure> {
        let kind: CreateCustomerTaxIdType = number
            .kind
            .as_str()
            .parse()
            .unwrap_or_else(|never| match never {});
        let request = CreateCustomerTaxId::new(customer_id, kind, number.value.clone());
        self.send_idempotent("create_tax_id", &request, key_parts)
            .await
            .map(StripeTaxId::from)
    }

    /// Deletes one of the customer's tax ids; `false` when Stripe knows no
    /// such id on this customer.
    pub async fn delete_tax_id(
        &self,
        customer_id: &str,
        tax_id: &str,
    ) -> Result<bool, StripeFailure> {
        let request = DeleteCustomerTaxId::new(customer_id, tax_id);
        match self
            .policy
            .run("delete_tax_id", || request.send(&self.client))
            .await
        {
            Ok(_) => Ok(true),
            Err(StripeFailure::Rejected { status: 404, .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
