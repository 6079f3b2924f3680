//! Stripe webhooks: verified, deduplicated and order-proof.
//!
//! Webhooks arrive late, twice and out of order. So: the signature is checked
//! against every configured secret (rotation; `stripe::verify_event`); the
//! subscription is re-read from Stripe rather than trusted from the payload;
//! the event's ledger row and its effect commit together; and state only
//! moves forward in Stripe's time (the tenant's watermark). The tenant is
//! always the one that owns the customer in `tenant_config`; ids named in
//! metadata are cross-checked, never trusted.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Billing, BillingError};
use crate::db::events::{self, Effect, EventOutcome, LedgerEvent};
use crate::db::{self, subscriptions};
use crate::domain::TenantId;
use crate::metrics::WebhookOutcome;
use crate::stripe::{self, EventNews, SubscriptionNews, WebhookEvent, WebhookRejection};

/// Why a verified delivery could not be processed now (500: Stripe retries).
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    #[error(transparent)]
    Rejected(#[from] WebhookRejection),
    #[error("processing failed")]
    Processing(#[source] BillingError),
}

impl Billing {
    /// Handles one delivery; `now` is injectable so tests can check tolerance.
    pub async fn handle_webhook(
        &self,
        payload: &str,
        signature: Option<&str>,
        now: i64,
    ) -> Result<EventOutcome, WebhookFailure> {
        let secrets = &self.settings.stripe.webhook_secrets;
        let event = match stripe::verify_event(payload, signature, secrets, now) {
            Ok(event) => event,
            Err(rejection) => {
                // The payload's claimed type is not trusted as a label.
                self.metrics.webhook("unverified", WebhookOutcome::Rejected);
                return Err(rejection.into());
            }
        };
        let event_type = event.kind.clone();
        let result = self.process_event(event, payload).await;
        let outcome = match &result {
            Ok(EventOutcome::Applied) => WebhookOutcome::Applied,
            Ok(EventOutcome::Duplicate) => WebhookOutcome::Duplicate,
            Ok(EventOutcome::Stale | EventOutcome::Unmatched | EventOutcome::Ignored) => {
                WebhookOutcome::Ignored
            }
            Ok(EventOutcome::Rejected) => WebhookOutcome::Rejected,
            Err(_) => WebhookOutcome::Failed,
        };
        self.metrics.webhook(&event_type, outcome);
        result
    }

    /// Records and applies a verified event.
    async fn process_event(
        &self,
        event: WebhookEvent,
        payload: &str,
    ) -> Result<EventOutcome, WebhookFailure> {
        let event_id = event.id;
        let event_type = event.kind;
        let created = timestamp(event.created).unwrap_or_else(|| Utc::now().naive_utc());
        let ledger_id = event_id.clone();
        let handled = db::interact(&self.pool, move |conn| {
            Ok(events::already_handled(conn, &ledger_id)?)
        })
        .await
        .map_err(|e| WebhookFailure::Processing(e.into()))?;
        if handled {
            tracing::info!(event_id, event_type, "duplicate webhook delivery");
            return Ok(EventOutcome::Duplicate);
        }

        let effect = match self.effect_of(event.news).await {
            Ok(effect) => effect,
            Err(error) => {
                let message = error.to_string();
                let payload = payload.to_owned();
                let (id, kind) = (event_id.clone(), event_type.clone());
                let recorded = db::interact(&self.pool, move |conn| {
                    let ledger = LedgerEvent {
                        event_id: &id,
                        event_type: &kind,
                        created,
                        payload: &payload,
                    };
                    Ok(events::record_failure(
                        conn,
                        &ledger,
                        &message,
                        Utc::now().naive_utc(),
                    )?)
                })
                .await;
                if let Err(db_error) = recorded {
                    tracing::error!(error = %db_error, event_id, "could not record a failed event");
                }
                tracing::warn!(event_id, event_type, error = %error, "webhook processing failed; Stripe will redeliver");
                return Err(WebhookFailure::Processing(error));
            }
        };

        let payload = payload.to_owned();
        let (id, kind) = (event_id.clone(), event_type.clone());
        let cache = self.state_cache.clone();
        let (outcome, tenant) = db::interact(&self.pool, move |conn| {
            let ledger = LedgerEvent {
                event_id: &id,
                event_type: &kind,
                created,
                payload: &payload,
            };
            let (outcome, tenant) =
                events::record_and_apply(conn, &ledger, &effect, Utc::now().naive_utc())?;
            // Only a resolved tenant's row can have been written.
            if let Some(owner) = tenant.as_deref().and_then(|t| TenantId::parse(t).ok()) {
                cache.invalidate(&owner);
            }
            Ok((outcome, tenant))
        })
        .await
        .map_err(|e| WebhookFailure::Processing(e.into()))?;
        match outcome {
            EventOutcome::Unmatched => {
                tracing::warn!(
                    event_id,
                    event_type,
                    "webhook for a customer no tenant owns; recorded, not applied"
                )
            }
            EventOutcome::Rejected => {
                tracing::warn!(event_id, event_type, tenant_id = ?tenant, "webhook names a tenant that does not own the customer; not applied")
            }
            _ => {
                tracing::info!(event_id, event_type, tenant_id = ?tenant, outcome = ?outcome, "webhook processed")
            }
        }
        Ok(outcome)
    }

    /// What the event asks of our state, read from Stripe where it matters.
    async fn effect_of(&self, news: EventNews) -> Result<Effect, BillingError> {
        let SubscriptionNews {
            subscription_id,
            customer_id,
            mut claimed,
            notice,
        } = match news {
            EventNews::Subscription(news) => news,
            EventNews::CustomerDeleted { customer_id } => {
                return Ok(Effect::CustomerDeleted { customer_id })
            }
            EventNews::Ignored => return Ok(Effect::Ignore),
        };
        // The ticket is drawn before reading Stripe, so a slower handler of
        // an older read can never overwrite what a newer read stored.
        let ticket = match customer_id {
            Some(customer) => {
                db::interact(&self.pool, move |conn| {
                    Ok(subscriptions::draw_ticket_for_customer(conn, &customer)?)
                })
                .await?
            }
            None => None,
        };
        let subscription = self.stripe.retrieve_subscription(&subscription_id).await?;
        claimed.extend(subscription.metadata.get("tenant_id").cloned());
        let state = self.snapshot_with_schedule(subscription).await?;
        Ok(Effect::Subscription {
            state: Box::new(state),
            claimed_tenants: claimed,
            ticket,
            notice,
        })
    }
}

fn timestamp(seconds: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(seconds, 0).map(|t| t.naive_utc())
}
