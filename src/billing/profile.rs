//! The billing profile (email, name): stored locally first, then pushed to the
//! Stripe customer when there is one. A Stripe failure never loses the change.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use chrono::Utc;

use super::{Actor, Billing, BillingError, BillingState};
use crate::db::jobs::{self, JobKind};
use crate::db::{audit, tenants};
use crate::domain::{Email, TenantId};
use crate::stripe::CustomerParams;

#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    pub email: Email,
    pub name: Option<String>,
}

/// Where the profile stands relative to Stripe after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSync {
    /// The Stripe customer now matches.
    Synced,
    /// Stripe failed; the change is stored and a queued job pushes it later.
    Pending,
    /// No customer yet; a queued job is provisioning one.
    Provisioning,
    /// No customer and none requested (`create_customer_on_signup = false`).
    NotLinked,
}

impl Billing {
    /// Stores the profile and, in the same transaction, queues the Stripe work
    /// it implies (the outbox): a new tenant's customer (`ensure_customer`
    /// job), or a linked customer's profile push (`sync_profile` job, the
    /// safety net for the inline push below). Stripe is never called while the
    /// transaction is open, and a new tenant's signup never calls Stripe at all.
    pub async fn update_profile(
        &self,
        tenant: &TenantId,
        update: &ProfileUpdate,
        actor: &Actor<'_>,
    ) -> Result<(BillingState, ProfileSync), BillingError> {
        let provision = self.settings.billing.create_customer_on_signup;
        // The inline push may take the whole retry budget; the queued push is
        // only for when this process dies before finishing it.
        let inline_budget = self.stripe.policy().worst_case() + Duration::from_secs(5);
        let (row, sync, queued) = {
            let written = tenant;
            let tenant = tenant.clone();
            let email = update.email.to_string();
            let name = update.name.clone();
            let actor_id = actor.user_id.to_owned();
            let request_id = actor.request_id.map(str::to_owned);
            self.interact_writing(written, move |conn| {
                let now = Utc::now().naive_utc();
                let mut sync = ProfileSync::NotLinked;
                let mut queued = None;
                let (row, _) = tenants::upsert_profile(
                    conn,
                    &tenant,
                    &email,
                    name.as_deref(),
                    now,
                    |conn, row, created| {
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
                        )?;
                        if row.stripe_customer_id.is_some() {
                            tenants::set_profile_sync_pending(conn, &tenant, true)?;
                            let run_after =
                                now + chrono::Duration::from_std(inline_budget).unwrap_or_default();
                            let how =
                                jobs::enqueue(conn, JobKind::SyncProfile, &tenant, now, run_after)?;
                            queued = Some((JobKind::SyncProfile, how));
                            sync = ProfileSync::Synced;
                        } else if created && provision {
                            let how =
                                jobs::enqueue(conn, JobKind::EnsureCustomer, &tenant, now, now)?;
                            queued = Some((JobKind::EnsureCustomer, how));
                            sync = ProfileSync::Provisioning;
                        } else if jobs::is_active(conn, JobKind::EnsureCustomer, &tenant)? {
                            // The queued creation may read the old profile: have
                            // the job push the latest once the customer exists.
                            tenants::set_profile_sync_pending(conn, &tenant, true)?;
                            sync = ProfileSync::Provisioning;
                        }
                        Ok(())
                    },
                )?;
                Ok((row, sync, queued))
            })
            .await?
        };
        if let Some((kind, how)) = queued {
            if kind == JobKind::EnsureCustomer {
                self.job_enqueued(kind, tenant, how);
            } else {
                // Counted, but no wake-up: the inline push comes first.
                self.job_enqueued_quietly(kind, tenant, how);
            }
        }
        let sync = match sync {
            ProfileSync::Synced => self.push_stored_profile(tenant, actor).await?,
            other => other,
        };
        Ok((self.displayed(row), sync))
    }

    /// Pushes the stored profile to the tenant's Stripe customer if it is
    /// marked pending. The idempotency key names the profile version, so
    /// concurrent pushes of one version (inline and a worker) replay each
    /// other; the flag is cleared only if the profile did not change meanwhile
    /// (otherwise the latest is pushed again, a few times, then `Pending`).
    /// A Stripe failure answers `Pending`: the queued job retries it.
    pub(crate) async fn push_stored_profile(
        &self,
        tenant: &TenantId,
        actor: &Actor<'_>,
    ) -> Result<ProfileSync, BillingError> {
        for _ in 0..3 {
            let Some(row) = self.read_row(tenant).await? else {
                return Ok(ProfileSync::NotLinked);
            };
            let Some(customer_id) = row.stripe_customer_id.clone() else {
                return Ok(ProfileSync::NotLinked);
            };
            if !row.profile_sync_pending {
                return Ok(ProfileSync::Synced);
            }
            let params = CustomerParams {
                tenant_id: tenant.to_string(),
                email: row.billing_email.clone(),
                name: row.billing_name.clone(),
            };
            let version = row.updated_at;
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (&params.email, &params.name).hash(&mut hasher);
            let intent = format!(
                "{}-{:x}",
                version.and_utc().timestamp_micros(),
                hasher.finish()
            );
            let key = ["profile", tenant.as_str(), intent.as_str()];
            if let Err(failure) = self
                .stripe
                .update_customer(&customer_id, &params, &key)
                .await
            {
                self.audit(
                    tenant,
                    actor,
                    "profile.sync",
                    "pending",
                    Some(failure.to_string()),
                )
                .await;
                return Ok(ProfileSync::Pending);
            }
            let key = tenant.clone();
            let cleared = self
                .interact_writing(tenant, move |conn| {
                    Ok(tenants::clear_profile_sync_pending(conn, &key, version)?)
                })
                .await?;
            if cleared {
                self.audit(tenant, actor, "profile.sync", "ok", None).await;
                return Ok(ProfileSync::Synced);
            }
        }
        Ok(ProfileSync::Pending)
    }
}
