//! Our own retry loop: async-stripe's `Idempotent` strategy sends exactly once,
//! so retries that keep the same key have to live here.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::budget::{Budget, Priority, Refusal};
use super::{Pacer, StripeFailure};
use crate::metrics::{Metrics, StripeOutcome};

/// A bounded budget: at most `max_attempts`, each cut off after
/// `attempt_timeout`, with full-jitter exponential backoff in between.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub attempt_timeout: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Bulk commands pace every attempt through this (and slow it on 429).
    pub pacer: Option<Arc<Pacer>>,
    /// The Stripe budget shared by every process on the database: each
    /// attempt takes a send slot first, at the task's `Priority`.
    pub budget: Option<Arc<Budget>>,
    /// Where each attempt is counted and timed (`stripe_requests_total`,
    /// `stripe_request_duration_seconds`): per attempt, not per intent, so
    /// retries and Stripe's own latency show; the intent's total time is in
    /// the HTTP histogram of the route that made it.
    pub metrics: Option<Arc<Metrics>>,
}

impl RetryPolicy {
    /// The longest one intent can take, retries included (lease sizing uses it).
    pub fn worst_case(&self) -> Duration {
        let waits: Duration = (0..self.max_attempts.saturating_sub(1))
            .map(|n| self.backoff_cap(n))
            .sum();
        self.attempt_timeout * self.max_attempts + waits
    }

    fn backoff_cap(&self, attempt: u32) -> Duration {
        let exponential = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        exponential.min(self.max_delay)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt).as_millis() as u64;
        // Full jitter: spreads the retries of many instances apart.
        Duration::from_millis(rand::thread_rng().gen_range(cap / 2..=cap.max(1)))
    }

    /// Runs `attempt` until it succeeds, fails for good, or the budget is spent.
    pub async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, StripeFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, stripe::StripeError>>,
    {
        let mut last = StripeFailure::Timeout;
        for n in 0..self.max_attempts {
            if n > 0 {
                tokio::time::sleep(self.backoff(n - 1)).await;
            }
            self.take_slot().await?;
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.attempt_timeout, attempt()).await;
            if let Some(metrics) = &self.metrics {
                metrics.observe_stripe(
                    operation,
                    attempt_outcome(&outcome),
                    started.elapsed().as_secs_f64(),
                );
            }
            let failure = match outcome {
                Ok(Ok(value)) => {
                    if let Some(pacer) = &self.pacer {
                        pacer.succeeded();
                    }
                    return Ok(value);
                }
                Ok(Err(error)) => {
                    if let stripe::StripeError::Stripe(_, 429) = &error {
                        self.throttled().await;
                    }
                    classify(error)
                }
                Err(_elapsed) => Retry(StripeFailure::Timeout),
            };
            match failure {
                Retry(failure) => {
                    tracing::warn!(operation, attempt = n + 1, error = %failure, "stripe attempt failed; will retry");
                    last = failure;
                }
                Stop(failure) => {
                    tracing::warn!(operation, attempt = n + 1, error = %failure, "stripe request failed");
                    return Err(failure);
                }
            }
        }
        tracing::warn!(operation, attempts = self.max_attempts, error = %last, "stripe retry budget spent");
        Err(last)
    }
}

/// No slot in the shared budget: nothing was sent.
fn over_budget(refusal: Refusal) -> StripeFailure {
    match refusal {
        Refusal::Saturated { retry_after } => {
            tracing::warn!(
                retry_after_ms = retry_after.as_millis() as u64,
                "stripe request budget exhausted: refusing instead of queueing longer"
            );
            StripeFailure::OverBudget { retry_after }
        }
        Refusal::Unavailable(error) => {
            tracing::warn!(error = %error, "cannot book the shared stripe budget; not calling stripe");
            StripeFailure::OverBudget {
                retry_after: Duration::from_secs(1),
            }
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry (the caller decides what a failure means, as
    /// the usage forwarder does): paced and budgeted at the task's priority,
    /// timed out after `attempt_timeout`, counted like every attempt. `Err`
    /// when the budget refused a slot: nothing was sent.
    pub(super) async fn once<T, Fut>(
        &self,
        operation: &'static str,
        attempt: Fut,
    ) -> Result<Result<T, stripe::StripeError>, StripeFailure>
    where
        Fut: Future<Output = Result<T, stripe::StripeError>>,
    {
        self.take_slot().await?;
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.attempt_timeout, attempt).await;
        if let Some(metrics) = &self.metrics {
            metrics.observe_stripe(
                operation,
                attempt_outcome(&outcome),
                started.elapsed().as_secs_f64(),
            );
        }
        if let Ok(Err(stripe::StripeError::Stripe(_, 429))) = &outcome {
            self.throttled().await;
        }
        Ok(outcome.unwrap_or(Err(stripe::StripeError::Timeout)))
    }

    /// Waits for the pacer and a slot of the shared budget, at the task's
    /// priority, before an attempt.
    async fn take_slot(&self) -> Result<(), StripeFailure> {
        if let Some(pacer) = &self.pacer {
            pacer.acquire().await;
        }
        if let Some(budget) = &self.budget {
            let (priority, waiting) = (Priority::current(), Instant::now());
            budget.acquire(priority).await.map_err(over_budget)?;
            if let Some(metrics) = &self.metrics {
                metrics.budget_wait(priority.as_str(), waiting.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    /// Stripe answered 429: every pacer and the shared budget slow down.
    async fn throttled(&self) {
        if let Some(pacer) = &self.pacer {
            pacer.throttled();
        }
        if let Some(budget) = &self.budget {
            budget.throttled().await;
        }
    }
}

/// How one attempt ended, for the `outcome` label.
fn attempt_outcome<T, E>(outcome: &Result<Result<T, stripe::StripeError>, E>) -> StripeOutcome {
    match outcome {
        Ok(Ok(_)) => StripeOutcome::Ok,
        Ok(Err(stripe::StripeError::Stripe(_, 429))) => StripeOutcome::RateLimited,
        Ok(Err(stripe::StripeError::Stripe(_, status))) if *status >= 500 => {
            StripeOutcome::ServerError
        }
        Ok(Err(stripe::StripeError::Stripe(..))) => StripeOutcome::ClientError,
        Ok(Err(stripe::StripeError::Timeout)) | Err(_) => StripeOutcome::Timeout,
        Ok(Err(stripe::StripeError::ClientError(_))) => StripeOutcome::NetworkError,
        Ok(Err(stripe::StripeError::JSONDeserialize(_))) => StripeOutcome::InvalidResponse,
        Ok(Err(stripe::StripeError::ConfigError(_))) => StripeOutcome::ClientError,
    }
}

enum Verdict {
    Retry(StripeFailure),
    Stop(StripeFailure),
}
use Verdict::{Retry, Stop};

/// Stripe's documented transient statuses are retried; async-stripe does not
/// expose response headers, so `Stripe-Should-Retry` is honoured only through
/// the status it accompanies (409/429/5xx).
fn classify(error: stripe::StripeError) -> Verdict {
    match error {
        stripe::StripeError::Stripe(api_error, status) => {
            let is_idempotency = matches!(api_error.type_, stripe::ApiErrorsType::IdempotencyError);
            match status {
                409 | 424 | 429 | 500..=599 => {
                    Retry(StripeFailure::Unavailable(format!("status {status}")))
                }
                400 if is_idempotency => Stop(StripeFailure::IdempotencyMismatch),
                // Stripe's one-currency-per-customer refusal has no code: its
                // message names the customer's currency.
                400 if api_error
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("You cannot combine currencies")) =>
                {
                    let current = api_error
                        .message
                        .as_deref()
                        .and_then(|m| m.trim_end_matches('.').rsplit(' ').next())
                        .filter(|c| c.len() == 3)
                        .map(str::to_ascii_lowercase);
                    Stop(StripeFailure::CurrencyConflict { current })
                }
                _ => Stop(StripeFailure::Rejected {
                    status,
                    code: api_error.code.map(|c| c.as_str().to_owned()),
                    param: api_error.param.clone(),
                }),
            }
        }
        stripe::StripeError::Timeout => Retry(StripeFailure::Timeout),
        stripe::StripeError::ClientError(message) => Retry(StripeFailure::Unavailable(message)),
        stripe::StripeError::JSONDeserialize(message) => Stop(StripeFailure::Protocol(message)),
        stripe::StripeError::ConfigError(message) => Stop(StripeFailure::Protocol(message)),
    }
}
