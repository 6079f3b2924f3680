/// Why a Stripe intent failed, after retries.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// No answer within the budget: Stripe may or may not have acted.
    #[error("stripe did not answer in time")]
    Timeout,
    /// Transient failures (5xx, 429, 409, network) until the budget ran out.
    #[error("stripe is unavailable: {0}")]
    Unavailable(String),
    /// Stripe refused the request; retrying will not help.
    #[error("stripe rejected the request (status {status}, code {code:?}, param {param:?})")]
    Rejected {
        status: u16,
        code: Option<String>,
        param: Option<String>,
    },
    /// The idempotency key was used before with other parameters.
    #[error("stripe idempotency key was reused with other parameters")]
    IdempotencyMismatch,
    /// A response we could not understand, or a client misconfiguration.
    #[error("unexpected stripe response: {0}")]
    Protocol(String),
}

impl StripeFailure {
    /// The outcome is unknown: the request may have been applied.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            StripeFailure::Timeout | StripeFailure::Unavailable(_) | StripeFailure::Protocol(_)
        )
    }
}
