//! Stripe's webhook deliveries: the signature checked against every
//! configured secret (rotation), and the event reduced to what the service
//! acts on, so that async-stripe's event types stay in this module.

use secrecy::{ExposeSecret, SecretString};
use stripe_webhook::{EventObject, Webhook, WebhookError};

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

/// A verified event: who Stripe says it is, and what it tells the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    /// Stripe's event type (`customer.subscription.updated`), as sent.
    pub kind: String,
    /// When Stripe created the event, in Unix seconds.
    pub created: i64,
    pub news: EventNews,
}

/// What an event says, as far as the service acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventNews {
    /// An event the service records but does not act on.
    Ignored,
    /// The customer was deleted at Stripe.
    CustomerDeleted { customer_id: String },
    /// A subscription changed: re-read it (the payload may be late).
    Subscription(SubscriptionNews),
}

/// Which subscription to re-read, its customer (to find the owning tenant)
/// and the tenants the event names (cross-checked, never trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionNews {
    pub subscription_id: String,
    pub customer_id: Option<String>,
    pub claimed: Vec<String>,
    /// An audit note the event is worth on its own (a trial ending soon).
    pub notice: Option<&'static str>,
}

/// Checks `signature` over the raw `payload` with each secret in turn and
/// parses the event; `now` (Unix seconds) is injectable so tests can check
/// the 300 s tolerance.
pub fn verify_event(
    payload: &str,
    signature: Option<&str>,
    secrets: &[SecretString],
    now: i64,
) -> Result<WebhookEvent, WebhookRejection> {
    let signature = signature.ok_or(WebhookRejection::MissingSignature)?;
    let mut rejection = WebhookRejection::BadSignature;
    for secret in secrets {
        match Webhook::construct_event_with_timestamp(
            payload,
            signature,
            secret.expose_secret(),
            now,
        ) {
            Ok(event) => {
                return Ok(WebhookEvent {
                    id: event.id.to_string(),
                    kind: event.type_.as_str().to_owned(),
                    created: event.created,
                    news: subscription_news(event.data.object).unwrap_or(EventNews::Ignored),
                })
            }
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

/// `None`: an event we record but do not act on.
fn subscription_news(object: EventObject) -> Option<EventNews> {
    let news = |subscription_id: String, customer_id: Option<String>| SubscriptionNews {
        subscription_id,
        customer_id,
        claimed: Vec::new(),
        notice: None,
    };
    Some(EventNews::Subscription(match object {
        EventObject::CheckoutSessionCompleted(session) => {
            let subscription = session.subscription?;
            let claimed = [
                session.client_reference_id,
                session.metadata.and_then(|m| m.get("tenant_id").cloned()),
            ];
            SubscriptionNews {
                claimed: claimed.into_iter().flatten().collect(),
                ..news(
                    subscription.id().to_string(),
                    session.customer.map(|c| c.id().to_string()),
                )
            }
        }
        EventObject::CustomerSubscriptionTrialWillEnd(subscription) => SubscriptionNews {
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
        EventObject::CustomerDeleted(customer) => {
            return Some(EventNews::CustomerDeleted {
                customer_id: customer.id.to_string(),
            })
        }
        _ => return None,
    }))
}
