//! Stripe webhooks: verified, deduplicated and order-proof.
//!
//! Webhooks arrive late, twice and out of order. So: the signature is checked
//! against every configured secret (rotation); the subscription is re-read
//! from Stripe rather than trusted from the payload; the event's ledger row
//! and its effect commit together; and state only moves forward in Stripe's
//! time (the tenant's watermark). The tenant is always the one that owns the
//! customer in `tenant_config`; ids named in metadata are cross-checked,
//! never trusted.

use chrono::{DateTime, NaiveDateTime, Utc};
use secrecy::ExposeSecret;
use stripe_webhook::{Event, EventObject, Webhook, WebhookError};

use super::{Billing, BillingError};
use crate::db::events::{self, Effect, EventOutcome, LedgerEvent};
use crate::db::{self, subscriptions};
use crate::domain::TenantId;
use crate::metrics::WebhookOutcome;

/// Why a delivery was refused (400): nothing is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("missing Stripe-Signature header")]
    MissingSignature,
    #[error("malformed Stripe-Signature header")]
    MalformedSignature,
    #[error("signature does not match any configured secret")]
    BadSignature,
    #[error("signature timestamp is outside the 300 s tolerance")]
    Stale,
    #[error("the payload is not a Stripe event")]
    Unparseable,
}

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
        let event = match self.verify(payload, signature, now) {
            Ok(event) => event,
            Err(rejection) => {
                // The payload's claimed type is not trusted as a label.
                self.metrics.webhook("unverified", WebhookOutcome::Rejected);
                return Err(rejection.into());
            }
        };
        let event_type = event.type_.as_str().to_owned();
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
        event: Event,
        payload: &str,
    ) -> Result<EventOutcome, WebhookFailure> {
        let event_id = event.id.to_string();
        let event_type = event.type_.as_str().to_owned();
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

        let effect = match self.effect_of(event).await {
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

    fn verify(
        &self,
        payload: &str,
        signature: Option<&str>,
        now: i64,
    ) -> Result<Event, WebhookRejection> {
        let signature = signature.ok_or(WebhookRejection::MissingSignature)?;
        let mut rejection = WebhookRejection::BadSignature;
        for secret in &self.settings.stripe.webhook_secrets {
            match Webhook::construct_event_with_timestamp(
                payload,
                signature,
                secret.expose_secret(),
                now,
            ) {
                Ok(event) => return Ok(event),
                // The signature matched this secret but something else is wrong:
                // that is the answer, whatever the other secrets say.
                Err(WebhookError::BadTimestamp(_)) => return Err(WebhookRejection::Stale),
                Err(WebhookError::BadParse(_)) => return Err(WebhookRejection::Unparseable),
                Err(WebhookError::BadHeader(_)) => rejection = WebhookRejection::MalformedSignature,
                Err(WebhookError::BadSignature | WebhookError::BadKey) => {}
            }
        }
        Err(rejection)
    }

    /// What the event asks of our state, read from Stripe where it matters.
    async fn effect_of(&self, event: Event) -> Result<Effect, BillingError> {
        let Some(news) = subscription_news(event.data.object) else {
            return Ok(Effect::Ignore);
        };
        let News {
            subscription_id,
            customer_id,
            mut claimed,
            notice,
        } = match news {
            Ok(news) => news,
            Err(deleted_customer) => {
                return Ok(Effect::CustomerDeleted {
                    customer_id: deleted_customer,
                })
            }
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

/// What an event says about a subscription: which one to re-read, its
/// customer (to draw the owner's ticket) and the tenants it names.
struct News {
    subscription_id: String,
    customer_id: Option<String>,
    claimed: Vec<String>,
    notice: Option<&'static str>,
}

/// `None`: an event we record but do not act on; `Err`: a deleted customer.
fn subscription_news(object: EventObject) -> Option<Result<News, String>> {
    let news = |subscription_id: String, customer_id: Option<String>| News {
        subscription_id,
        customer_id,
        claimed: Vec::new(),
        notice: None,
    };
    Some(Ok(match object {
        EventObject::CheckoutSessionCompleted(session) => {
            let subscription = session.subscription?;
            let claimed = [
                session.client_reference_id,
                session.metadata.and_then(|m| m.get("tenant_id").cloned()),
            ];
            News {
                claimed: claimed.into_iter().flatten().collect(),
                ..news(
                    subscription.id().to_string(),
                    session.customer.map(|c| c.id().to_string()),
                )
            }
        }
        EventObject::CustomerSubscriptionTrialWillEnd(subscription) => News {
            notice: Some("subscription.trial_will_end"),
            ..news(
                subscription.id.to_string(),
                Some(subscription.customer.id().to_string()),
            )
        },
        EventObject::CustomerSubscriptionCreated(subscription)
        | EventObject::CustomerSubscriptionUpdated(subscription)
        | EventObject::CustomerSubscriptionDeleted(subscription)
        | EventObject::CustomerSubscriptionPaused(subscription)
        | EventObject::CustomerSubscriptionResumed(subscription)
        | EventObject::CustomerSubscriptionPendingUpdateApplied(subscription)
        | EventObject::CustomerSubscriptionPendingUpdateExpired(subscription) => news(
            subscription.id.to_string(),
            Some(subscription.customer.id().to_string()),
        ),
        EventObject::InvoicePaid(invoice) | EventObject::InvoicePaymentFailed(invoice) => {
            let invoice = *invoice;
            let from_parent = invoice
                .parent
                .and_then(|p| p.subscription_details)
                .map(|d| d.subscription.id().to_string());
            let subscription = invoice
                .subscription
                .map(|s| s.id().to_string())
                .or(from_parent)?;
            news(subscription, invoice.customer.map(|c| c.id().to_string()))
        }
        EventObject::SubscriptionScheduleAborted(schedule)
        | EventObject::SubscriptionScheduleCanceled(schedule)
        | EventObject::SubscriptionScheduleCompleted(schedule)
        | EventObject::SubscriptionScheduleCreated(schedule)
        | EventObject::SubscriptionScheduleExpiring(schedule)
        | EventObject::SubscriptionScheduleReleased(schedule)
        | EventObject::SubscriptionScheduleUpdated(schedule) => {
            let schedule = *schedule;
            let subscription = schedule
                .subscription
                .map(|s| s.id().to_string())
                .or(schedule.released_subscription)?;
            news(subscription, Some(schedule.customer.id().to_string()))
        }
        EventObject::CustomerDeleted(customer) => return Some(Err(customer.id.to_string())),
        _ => return None,
    }))
}

fn timestamp(seconds: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(seconds, 0).map(|t| t.naive_utc())
}
