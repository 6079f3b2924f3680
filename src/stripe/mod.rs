//! The only module that imports async-stripe. It owns retries and idempotency:
//! callers state an intent with a stable key, and get back plain values or a
//! `StripeFailure` that says whether the outcome is unknown (timeout) or known.
//! Stripe's wire errors that mean something to the caller (an unknown id)
//! are mapped here, and webhook signatures are verified here.

mod budget;
mod customers;
mod error;
mod invoices;
mod meters;
mod pacer;
mod prices;
mod promotions;
mod retry;
mod schedules;
mod sessions;
mod subscriptions;
mod tax_ids;
mod webhooks;

pub use budget::{Budget, Priority, Refusal, SlotSource, SourceFuture};
pub use customers::{CustomerParams, StripeCustomer};
pub use error::StripeFailure;
pub use meters::{MeterEvent, MeterEventOutcome, StripeMeter};
pub use pacer::Pacer;
pub use prices::StripePrice;
pub use promotions::StripePromotionCode;
pub use retry::RetryPolicy;
pub use schedules::{PhaseSpec, SchedulePhase, StripeSchedule};
pub use sessions::{CheckoutParams, CheckoutSession};
pub use subscriptions::{
    ItemChange, MeteredChange, Proration, StripeSubscription, SubscriptionUpdate,
};
pub use tax_ids::StripeTaxId;
pub use webhooks::{verify_event, EventNews, SubscriptionNews, WebhookEvent, WebhookRejection};

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::settings::StripeSettings;

/// A configured Stripe client plus our retry policy.
#[derive(Clone)]
pub struct StripeGateway {
    client: stripe::Client,
    policy: RetryPolicy,
}

impl StripeGateway {
    /// `api_base` is Stripe's or the simulator's base URL.
    pub fn new(
        secret_key: &SecretString,
        api_base: &str,
        settings: &StripeSettings,
    ) -> Result<StripeGateway, StripeFailure> {
        // async-stripe appends paths to the base; a base with a path must end in '/'.
        let has_path = api_base
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('/'));
        let base = if has_path && !api_base.ends_with('/') {
            format!("{api_base}/")
        } else {
            api_base.to_owned()
        };
        let client = stripe::ClientBuilder::new(secret_key.expose_secret())
            .url(base)
            .build()
            .map_err(|e| {
                StripeFailure::Protocol(format!("invalid Stripe client configuration: {e}"))
            })?;
        Ok(StripeGateway {
            client,
            policy: RetryPolicy {
                max_attempts: settings.max_attempts.max(1),
                attempt_timeout: Duration::from_millis(settings.request_timeout_ms),
                base_delay: Duration::from_millis(settings.retry_base_delay_ms),
                max_delay: Duration::from_millis(settings.retry_max_delay_ms),
                pacer: None,
                budget: None,
                metrics: None,
            },
        })
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// This gateway with every request (retries included) paced by `pacer`:
    /// bulk commands share one pacer across their concurrent tasks.
    /// This gateway with every attempt counted and timed in `metrics`.
    pub fn with_metrics(
        mut self,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> StripeGateway {
        self.policy.metrics = Some(metrics);
        self
    }

    pub fn with_pacer(mut self, pacer: std::sync::Arc<Pacer>) -> StripeGateway {
        self.policy.pacer = Some(pacer);
        self
    }

    /// This gateway with every attempt taking a slot of `budget`, the Stripe
    /// request budget shared by every process on the database.
    pub fn with_budget(mut self, budget: std::sync::Arc<Budget>) -> StripeGateway {
        self.policy.budget = Some(budget);
        self
    }

    /// The shared budget, if this gateway keeps one.
    pub fn budget(&self) -> Option<&std::sync::Arc<Budget>> {
        self.policy.budget.as_ref()
    }
}

impl StripeGateway {
    /// Sends one Stripe write under a single idempotency key, retried by the
    /// policy: every attempt of the intent replays instead of repeating it.
    pub(crate) async fn send_idempotent<R>(
        &self,
        operation: &'static str,
        request: &R,
        key_parts: &[&str],
    ) -> Result<R::Output, StripeFailure>
    where
        R: stripe::StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        let key = idempotency_key(key_parts)?;
        self.policy
            .run(operation, || {
                request
                    .customize()
                    .request_strategy(stripe::RequestStrategy::Idempotent(key.clone()))
                    .send(&self.client)
            })
            .await
    }
}

/// Builds an idempotency key (Stripe allows up to 255 characters).
pub(crate) fn idempotency_key(parts: &[&str]) -> Result<stripe::IdempotencyKey, StripeFailure> {
    let key = format!("tenant-billing:{}", parts.join(":"));
    stripe::IdempotencyKey::new(&key)
        .map_err(|e| StripeFailure::Protocol(format!("invalid idempotency key: {e}")))
}
