use std::collections::HashMap;

use stripe_core::customer::{
    CreateCustomer, ListCustomer, OptionalFieldsCustomerAddress, RetrieveCustomer,
    RetrieveCustomerReturned, UpdateCustomer,
};

use super::{StripeFailure, StripeGateway};
use crate::domain::BillingAddress;

/// What we set on a customer. Metadata always carries `tenant_id`.
#[derive(Debug, Clone, Default)]
pub struct CustomerParams {
    pub tenant_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `None` leaves Stripe's address alone; an empty one clears it.
    pub address: Option<BillingAddress>,
}

/// Every part sent, empty ones as `""`: Stripe replaces the whole address.
fn address_fields(address: &BillingAddress) -> OptionalFieldsCustomerAddress {
    let part = |v: &Option<String>| Some(v.clone().unwrap_or_default());
    let mut fields = OptionalFieldsCustomerAddress::new();
    fields.line1 = part(&address.line1);
    fields.line2 = part(&address.line2);
    fields.city = part(&address.city);
    fields.postal_code = part(&address.postal_code);
    fields.state = part(&address.state);
    fields.country = Some(
        address
            .country
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
    );
    fields
}

/// The part of a Stripe customer the service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeCustomer {
    pub id: String,
    pub email: Option<String>,
    pub tenant_id: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
}

impl From<stripe_core::Customer> for StripeCustomer {
    fn from(customer: stripe_core::Customer) -> Self {
        let metadata = customer.metadata.unwrap_or_default();
        StripeCustomer {
            id: customer.id.to_string(),
            email: customer.email,
            tenant_id: metadata.get("tenant_id").cloned(),
            metadata,
            created: customer.created,
        }
    }
}

impl StripeGateway {
    /// Creates a customer under `key`; a retry with the same key replays the
    /// first creation instead of making a second customer.
    pub async fn create_customer(
        &self,
        params: &CustomerParams,
        key_parts: &[&str],
    ) -> Result<StripeCustomer, StripeFailure> {
        let mut request = CreateCustomer::new().metadata(HashMap::from([(
            "tenant_id".to_owned(),
            params.tenant_id.clone(),
        )]));
        if let Some(email) = &params.email {
            request = request.email(email.clone());
        }
        if let Some(name) = &params.name {
            request = request.name(name.clone());
        }
        if let Some(address) = params.address.as_ref().filter(|a| !a.is_empty()) {
            request = request.address(address_fields(address));
        }
        self.send_idempotent("create_customer", &request, key_parts)
            .await
            .map(StripeCustomer::from)
    }

    /// Sets email and name on an existing customer (idempotent by nature).
    pub async fn update_customer(
        &self,
        customer_id: &str,
        params: &CustomerParams,
        key_parts: &[&str],
    ) -> Result<StripeCustomer, StripeFailure> {
        let mut request = UpdateCustomer::new(customer_id);
        if let Some(email) = &params.email {
            request = request.email(email.clone());
        }
        if let Some(name) = &params.name {
            request = request.name(name.clone());
        }
        if let Some(address) = &params.address {
            request = request.address(address_fields(address));
        }
        self.send_idempotent("update_customer", &request, key_parts)
            .await
            .map(StripeCustomer::from)
    }

    /// The customer, or `None` when it was deleted (or never existed).
    pub async fn retrieve_customer(
        &self,
        customer_id: &str,
    ) -> Result<Option<StripeCustomer>, StripeFailure> {
        let request = RetrieveCustomer::new(customer_id);
        match self
            .policy
            .run("retrieve_customer", || request.send(&self.client))
            .await
        {
            Ok(RetrieveCustomerReturned::Customer(customer)) => Ok(Some(customer.into())),
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => Ok(None),
            Err(StripeFailure::Rejected { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Customers created at or after `since` (unix seconds) whose
    /// `metadata.tenant_id` is `tenant_id`, oldest first. Uses the list API,
    /// which is strongly consistent, never search (which lags).
    pub async fn find_customers_for_tenant(
        &self,
        tenant_id: &str,
        since: i64,
    ) -> Result<Vec<StripeCustomer>, StripeFailure> {
        let mut found = self.list_customers(Some(since)).await?;
        found.retain(|c| c.tenant_id.as_deref() == Some(tenant_id));
        Ok(found)
    }

    /// Every customer (created at or after `since`, when given), oldest first,
    /// paging through the list API 100 at a time. `reconcile` needs the whole
    /// account; search is never used because it lags behind writes.
    pub async fn list_customers(
        &self,
        since: Option<i64>,
    ) -> Result<Vec<StripeCustomer>, StripeFailure> {
        let mut found = Vec::new();
        let mut starting_after: Option<String> = None;
        loop {
            let mut request = ListCustomer::new().limit(100);
            if let Some(since) = since {
                request = request.created(stripe_types::RangeQueryTs::gte(since));
            }
            if let Some(cursor) = &starting_after {
                request = request.starting_after(cursor.clone());
            }
            let page = self
                .policy
                .run("list_customers", || request.send(&self.client))
                .await?;
            starting_after = page.data.last().map(|c| c.id.to_string());
            found.extend(page.data.into_iter().map(StripeCustomer::from));
            if !page.has_more || starting_after.is_none() {
                break;
            }
        }
        found.sort_by_key(|c| (c.created, c.id.clone()));
        Ok(found)
    }

    /// Sets one metadata key on a customer (others are kept: Stripe merges).
    /// `reconcile --fix` flags duplicates this way instead of deleting them.
    pub async fn set_customer_metadata(
        &self,
        customer_id: &str,
        key: &str,
        value: &str,
        key_parts: &[&str],
    ) -> Result<StripeCustomer, StripeFailure> {
        let request = UpdateCustomer::new(customer_id)
            .metadata(HashMap::from([(key.to_owned(), value.to_owned())]));
        self.send_idempotent("update_customer_metadata", &request, key_parts)
            .await
            .map(StripeCustomer::from)
    }
}
