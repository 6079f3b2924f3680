//! The one error type the HTTP layer answers with, rendered as RFC 9457
//! `application/problem+json`. Internal causes are logged with their source chain
//! and never shown to the client; validation errors name fields, never values.
//! The lower layers' errors (`DbError`, `StripeFailure`, `BillingError`)
//! become answers here, so nothing below the edge names an HTTP status.

use std::fmt::Write as _;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::billing::BillingError;
use crate::db::DbError;
use crate::stripe::StripeFailure;

/// One invalid field of a request body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The figures of a refused usage event, answered as problem members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitReached {
    pub meter: String,
    pub limit: i64,
    pub used: i64,
    pub remaining: i64,
    /// When the period ends and the total starts again from 0.
    pub period_end: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A usage event would take its meter past the plan's blocking limit.
    #[error("usage limit reached")]
    LimitReached(LimitReached),
    /// The tenant spent its request budget; retry after this many seconds.
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    /// Stripe answered with an error or could not be reached.
    #[error("stripe request failed")]
    StripeFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stripe did not answer within the retry budget.
    #[error("stripe request timed out")]
    StripeTimeout(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The identity provider's keys were never fetched: tokens cannot be
    /// checked yet (503, since the token may well be valid).
    #[error("token keys unavailable")]
    AuthUnavailable,
    #[error("database unavailable")]
    DatabaseUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The instance is stopping and cut the request off at its shutdown
    /// deadline: answered rather than reset, so the client retries elsewhere.
    #[error("shutting down")]
    ShuttingDown,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(error.into())
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => ("forbidden", "Forbidden"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::PayloadTooLarge => ("payload-too-large", "Payload too large"),
            ApiError::Validation(_) => ("validation-failed", "Validation failed"),
            ApiError::LimitReached(_) => ("limit-reached", "Usage limit reached"),
            ApiError::RateLimited { .. } => ("rate-limited", "Too many requests"),
            ApiError::StripeFailed(_) => ("stripe-unavailable", "Payment provider error"),
            ApiError::StripeTimeout(_) => ("stripe-timeout", "Payment provider timeout"),
            ApiError::DatabaseUnavailable(_) => ("database-unavailable", "Service unavailable"),
            ApiError::ShuttingDown => ("shutting-down", "Service restarting"),
            ApiError::AuthUnavailable => ("auth-unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::BadRequest(detail) | ApiError::Conflict(detail) => detail.clone(),
            ApiError::Unauthorized(detail) | ApiError::Forbidden(detail) => (*detail).to_owned(),
            ApiError::NotFound => "no such resource".into(),
            ApiError::PayloadTooLarge => "the request body exceeds the size limit".into(),
            ApiError::Validation(_) => "one or more fields are invalid".into(),
            ApiError::LimitReached(limit) => format!(
                "this event would take {} past the plan's limit of {} for this period; \
                 nothing was recorded. Upgrade the plan, or wait for the period to end",
                limit.meter, limit.limit
            ),
            ApiError::RateLimited {
                retry_after_seconds,
            } => format!(
                "this tenant sent too many requests of this kind; retry in {retry_after_seconds} s"
            ),
            ApiError::StripeFailed(_) => {
                "the payment provider failed; nothing was changed, try again".into()
            }
            ApiError::StripeTimeout(_) => {
                "the payment provider did not answer in time; try again".into()
            }
            ApiError::DatabaseUnavailable(_) => {
                "the database is unavailable; try again shortly".into()
            }
            ApiError::ShuttingDown => {
                "this instance is restarting and stopped the request; retrying it is safe".into()
            }
            ApiError::AuthUnavailable => {
                "the identity provider's signing keys are not available yet; try again shortly"
                    .into()
            }
            ApiError::Internal(_) => "an unexpected error occurred".into(),
        }
    }
}

/// One invalid field is a 422 that names it.
impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Validation(vec![error])
    }
}

/// RFC 9457 problem details: the body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A relative URI naming the kind of problem (`/problems/validation-failed`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// A sentence for a person; never echoes submitted values.
    pub detail: String,
    /// For validation failures: which fields, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For `limit-reached`: the meter refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    /// For `limit-reached`: the plan's limit for the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// For `limit-reached`: the period's total so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    /// For `limit-reached`: what is left of the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    /// For `limit-reached`: when the period ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_end: Option<chrono::DateTime<chrono::Utc>>,
}

/// The source chain, for the log only.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::LimitReached(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::StripeFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::StripeTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::DatabaseUnavailable(_)
            | ApiError::ShuttingDown
            | ApiError::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if matches!(self, ApiError::ShuttingDown) {
            tracing::warn!("request cut off by the shutdown deadline");
        } else if status.is_server_error() {
            tracing::error!(error = %chain(self), status = status.as_u16(), "request failed");
        }
        let (slug, title) = self.slug_and_title();
        let errors = match self {
            ApiError::Validation(errors) => Some(errors.clone()),
            _ => None,
        };
        let limit = match self {
            ApiError::LimitReached(limit) => Some(limit),
            _ => None,
        };
        let problem = Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            errors,
            meter: limit.map(|l| l.meter.clone()),
            limit: limit.map(|l| l.limit),
            used: limit.map(|l| l.used),
            remaining: limit.map(|l| l.remaining),
            period_end: limit.map(|l| l.period_end),
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tenant-billing\""),
            ));
        }
        match self {
            ApiError::RateLimited {
                retry_after_seconds,
            } => {
                response.insert_header((header::RETRY_AFTER, *retry_after_seconds));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        response.json(problem)
    }
}

// How the layers' errors answer. These conversions live here, at the edge,
// so that the service and the gateways never name an HTTP status and a
// handler's `?` still turns any of them into its problem+json answer.

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(e) => ApiError::DatabaseUnavailable(Box::new(e)),
            DbError::ConnectionLost(e) => ApiError::DatabaseUnavailable(Box::new(e)),
            DbError::Saturated => ApiError::DatabaseUnavailable(Box::new(DbError::Saturated)),
            other => ApiError::internal(other),
        }
    }
}

impl From<StripeFailure> for ApiError {
    fn from(failure: StripeFailure) -> Self {
        match failure {
            StripeFailure::Timeout => ApiError::StripeTimeout(Box::new(failure)),
            other => ApiError::StripeFailed(Box::new(other)),
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Database(e) => e.into(),
            BillingError::Stripe(e) => e.into(),
            BillingError::CreationInProgress => ApiError::StripeTimeout(Box::new(error)),
            BillingError::AlreadySubscribed => ApiError::Conflict(
                "the tenant already has an active paid subscription; change its plan instead"
                    .into(),
            ),
            BillingError::NoSubscription => {
                ApiError::Conflict("the tenant has no subscription; start one with Checkout".into())
            }
            BillingError::SubscriptionEnded => ApiError::Conflict(
                "the subscription has ended; start a new one with Checkout".into(),
            ),
            BillingError::WriteInProgress => ApiError::Conflict(
                "another change to this subscription is in progress; try again".into(),
            ),
            BillingError::NotPerSeat => ApiError::Conflict(
                "the current plan is not billed per seat; change to a per-seat plan first".into(),
            ),
            BillingError::UnknownInvoice => ApiError::invalid_field(
                "starting_after",
                "names no invoice of this tenant; use an id from a previous page",
            ),
            BillingError::TooManySeats { max } => ApiError::invalid_field(
                "quantity",
                format!("must be a whole number from 1 to {max}"),
            ),
        }
    }
}
