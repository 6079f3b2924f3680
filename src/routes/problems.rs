//! The parts of the API contract that many routes name in their
//! `#[utoipa::path]`: the tenant path parameter and the problem sets. They
//! live apart from the handlers and from `openapi.rs` (which lists every
//! handler), so that no route file imports another.

use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses};

use crate::error::Problem;

/// `{tenant_id}` of every tenant route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant; must be the verified token's.
    #[param(
        pattern = r"^[A-Za-z0-9_-]{1,64}$",
        min_length = 1,
        max_length = 64,
        example = "acme"
    )]
    pub tenant_id: String,
}

/// What any tenant route may answer besides its success: the token's and
/// the tenant's checks, the rate limit, an unavailable database or identity
/// provider.
#[derive(IntoResponses)]
#[allow(dead_code)] // Describes answers; `ApiError` produces them.
pub enum TenantProblems {
    /// Missing, malformed, expired or badly signed token (`WWW-Authenticate: Bearer`).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// A valid token for another tenant, or a member on an admin route.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The tenant's rate limit is spent; retry after `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))]
    RateLimited(Problem),
    /// The database, or the identity provider's keys, are unavailable.
    #[response(status = 503, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(Problem),
}

/// What a route with a JSON body may answer about the body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyProblems {
    /// Malformed JSON or a content type other than `application/json`.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The body exceeds 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// A field is missing, unknown or invalid (`errors` names it, never its value).
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// What a route that calls Stripe may answer when Stripe fails.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum StripeProblems {
    /// Stripe refused or failed; nothing was changed.
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
    /// Stripe did not answer within the retry budget.
    #[response(status = 504, content_type = "application/problem+json")]
    Timeout(Problem),
}
