//! Billing Meters: finding a meter by its event name (startup check), sending
//! one meter event, and reading what a meter holds for a customer over a
//! window (`reconcile --usage`).

use std::collections::HashMap;

use stripe_billing::billing_meter::ListBillingMeter;
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
use stripe_billing::BillingMeterStatus;

use stripe::StripeRequest;

use super::{idempotency_key, StripeFailure, StripeGateway};

/// A Stripe meter as the forwarder needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeMeter {
    pub id: String,
    pub event_name: String,
    /// `sum`, `count` or `last`: batches need `sum`.
    pub formula: String,
    /// The payload keys naming the customer and carrying the value.
    pub customer_key: String,
    pub value_key: String,
}

/// One meter event to send: a batch of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterEvent<'a> {
    pub meter: &'a StripeMeter,
    pub customer_id: &'a str,
    pub value: i64,
    /// Stripe counts an identifier once (for at least 24 hours).
    pub identifier: &'a str,
    /// Unix seconds: decides the billing period the value lands in.
    pub timestamp: i64,
}

/// What Stripe did with a meter event.
#[derive(Debug)]
pub enum MeterEventOutcome {
    /// Counted now.
    Accepted,
    /// Stripe already counted this identifier (an earlier attempt whose
    /// answer was lost): counted once, nothing more to do.
    AlreadyCounted,
    /// 429: another call for this customer and meter is running, or the
    /// account's rate: try again later, slower.
    RateLimited,
    /// The timestamp is outside Stripe's window (35 days back, 5 minutes
    /// ahead): this usage can no longer be billed.
    OutsideWindow(String),
    /// Refused for a reason retrying cannot fix (no such meter or customer).
    Rejected(String),
    /// No answer, or a transient error: it may or may not have been counted;
    /// send the same identifier again.
    Unknown(StripeFailure),
}

/// Stripe's answer to a repeated identifier (400, `Stripe-Should-Retry: false`).
const ALREADY_EXISTS: &str = "An event already exists with identifier";

impl StripeGateway {
    /// The active meter whose `event_name` is `event_name`, if Stripe has one.
    pub async fn find_meter(&self, event_name: &str) -> Result<Option<StripeMeter>, StripeFailure> {
        let mut starting_after: Option<String> = None;
        loop {
            let mut request = ListBillingMeter::new()
                .status(BillingMeterStatus::Active)
                .limit(100);
            if let Some(cursor) = &starting_after {
                request = request.starting_after(cursor.clone());
            }
            let page = self
                .policy
                .run("list_billing_meters", || request.send(&self.client))
                .await?;
            if let Some(meter) = page.data.iter().find(|m| m.event_name == event_name) {
                return Ok(Some(StripeMeter {
                    id: meter.id.to_string(),
                    event_name: meter.event_name.clone(),
                    formula: meter.default_aggregation.formula.as_str().to_owned(),
                    customer_key: meter.customer_mapping.event_payload_key.clone(),
                    value_key: meter.value_settings.event_payload_key.clone(),
                }));
            }
            starting_after = page.data.last().map(|m| m.id.to_string());
            if !page.has_more || starting_after.is_none() {
                return Ok(None);
            }
        }
    }

    /// Sends one meter event, once (no retry here: the caller persisted it
    /// and will send the same identifier again). It also carries an
    /// idempotency key named after the identifier, so a retry of an attempt
    /// whose answer was lost is answered like the first.
    pub async fn send_meter_event(&self, event: &MeterEvent<'_>) -> MeterEventOutcome {
        let payload = HashMap::from([
            (
                event.meter.customer_key.clone(),
                event.customer_id.to_owned(),
            ),
            (event.meter.value_key.clone(), event.value.to_string()),
        ]);
        let request = CreateBillingMeterEvent::new(event.meter.event_name.clone(), payload)
            .identifier(event.identifier)
            .timestamp(event.timestamp);
        let key = match idempotency_key(&["meter_event", event.identifier]) {
            Ok(key) => key,
            Err(failure) => return MeterEventOutcome::Rejected(failure.to_string()),
        };
        let sent = match self
            .policy
            .once(
                "create_meter_event",
                request
                    .customize()
                    .request_strategy(stripe::RequestStrategy::Idempotent(key))
                    .send(&self.client),
            )
            .await
        {
            Ok(sent) => sent,
            // The shared budget had no slot: nothing was sent; slow down.
            Err(_) => return MeterEventOutcome::RateLimited,
        };
        match sent {
            Ok(_) => MeterEventOutcome::Accepted,
            Err(stripe::StripeError::Stripe(error, status)) => {
                let message = error.message.clone().unwrap_or_default();
                match status {
                    400 if message.starts_with(ALREADY_EXISTS) => MeterEventOutcome::AlreadyCounted,
                    400 if error.param.as_deref() == Some("timestamp") => {
                        MeterEventOutcome::OutsideWindow(message)
                    }
                    429 => MeterEventOutcome::RateLimited,
                    409 | 424 | 500..=599 => MeterEventOutcome::Unknown(
                        StripeFailure::Unavailable(format!("status {status}")),
                    ),
                    _ => MeterEventOutcome::Rejected(format!(
                        "status {status}, param {:?}: {message}",
                        error.param
                    )),
                }
            }
            Err(stripe::StripeError::Timeout) => MeterEventOutcome::Unknown(StripeFailure::Timeout),
            Err(stripe::StripeError::ClientError(message)) => {
                MeterEventOutcome::Unknown(StripeFailure::Unavailable(message))
            }
            Err(other) => MeterEventOutcome::Unknown(StripeFailure::Protocol(other.to_string())),
        }
    }

    /// What `meter` holds for `customer` over `[start, end)` (unix seconds,
    /// whole minutes): Stripe's event summary.
    pub async fn meter_usage(
        &self,
        meter_id: &str,
        customer_id: &str,
        start: i64,
        end: i64,
    ) -> Result<f64, StripeFailure> {
        let request = ListIdBillingMeterEventSummary::new(meter_id, customer_id, end, start);
        let page = self
            .policy
            .run("list_meter_event_summaries", || request.send(&self.client))
            .await?;
        Ok(page.data.iter().map(|s| s.aggregated_value).sum())
    }
}
