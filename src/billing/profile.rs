//! The billing profile (email, name): stored locally first, then pushed to the
//! Stripe customer when there is one. A Stripe failure never loses the change.

use chrono::Utc;
use serde::Serialize;

use super::{Actor, Billing, BillingError, BillingState, CustomerHints};
use crate::db::{self, audit, tenants};
use crate::domain::{Email, TenantId};
use crate::stripe::CustomerParams;

#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    pub email: Email,
    pub name: Option<String>,
}

/// Where the profile stands relative to Stripe after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSync {
    /// The Stripe customer now matches.
    Synced,
    /// Stripe failed; the change is stored and will be pushed later.
    Pending,
    /// No customer yet; one is being provisioned in the background.
    Provisioning,
    /// No customer and none requested (`create_customer_on_signup = false`).
    NotLinked,
}

impl Billing {
    pub async fn update_profile(
        &self,
        tenant: &TenantId,
        update: &ProfileUpdate,
        actor: &Actor<'_>,
    ) -> Result<(BillingState, ProfileSync), BillingError> {
        let (row, created) = {
            let tenant = tenant.clone();
            let email = update.email.to_string();
            let name = update.name.clone();
            let actor_id = actor.user_id.to_owned();
            let request_id = actor.request_id.map(str::to_owned);
            db::interact(&self.pool, move |conn| {
                let now = Utc::now().naive_utc();
                Ok(tenants::upsert_profile(
                    conn,
                    &tenant,
                    &email,
                    name.as_deref(),
                    now,
                    |conn, _, created| {
                        audit::append(
                            conn,
                            &audit::AuditEntry {
                                tenant: &tenant,
                                actor: &actor_id,
                                request_id: request_id.as_deref(),
                                action: if created {
                                    "profile.create"
                                } else {
                                    "profile.update"
                                },
                                outcome: "ok",
                                detail: None,
                            },
                        )
                    },
                )?)
            })
            .await?
        };

        let sync = match &row.stripe_customer_id {
            Some(customer_id) => {
                self.push_profile(tenant, customer_id, update, actor)
                    .await?
            }
            None if created && self.settings.billing.create_customer_on_signup => {
                self.provision_in_background(tenant);
                ProfileSync::Provisioning
            }
            None => ProfileSync::NotLinked,
        };
        let state = self.state(tenant).await?;
        Ok((state, sync))
    }

    /// Pushes the profile to Stripe; on failure marks it pending (and says so).
    async fn push_profile(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        update: &ProfileUpdate,
        actor: &Actor<'_>,
    ) -> Result<ProfileSync, BillingError> {
        let params = CustomerParams {
            tenant_id: tenant.to_string(),
            email: Some(update.email.to_string()),
            name: update.name.clone(),
        };
        let intent = uuid::Uuid::new_v4().simple().to_string();
        let key = ["profile", tenant.as_str(), intent.as_str()];
        let pushed = self
            .stripe
            .update_customer(customer_id, &params, &key)
            .await;
        let pending = pushed.is_err();
        let key = tenant.clone();
        db::interact(&self.pool, move |conn| {
            Ok(tenants::set_profile_sync_pending(conn, &key, pending)?)
        })
        .await?;
        match pushed {
            Ok(_) => {
                self.audit(tenant, actor, "profile.sync", "ok", None).await;
                Ok(ProfileSync::Synced)
            }
            Err(failure) => {
                self.audit(
                    tenant,
                    actor,
                    "profile.sync",
                    "pending",
                    Some(failure.to_string()),
                )
                .await;
                Ok(ProfileSync::Pending)
            }
        }
    }

    /// Creates the new tenant's customer without making the caller wait.
    fn provision_in_background(&self, tenant: &TenantId) {
        let billing = self.clone();
        let tenant = tenant.clone();
        actix_web::rt::spawn(async move {
            if let Err(error) = billing
                .ensure_customer(&tenant, &CustomerHints::default(), &Actor::SYSTEM)
                .await
            {
                tracing::warn!(tenant_id = %tenant, error = %error, "background customer provisioning failed; the next billing action retries it");
            }
        });
    }
}
