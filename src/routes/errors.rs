//! Turns actix's extractor errors into problem+json answers.

use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::{HttpRequest, HttpResponse};

use crate::error::{ApiError, FieldError};

/// A query string that does not fit the route's parameters: 400 problem+json
/// (actix would answer plain text).
pub fn query_error(
    _error: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest("the query string is not well-formed".into()).into()
}

/// Malformed JSON or a wrong content type is 400, an oversized body 413, and a
/// well-formed body of the wrong shape 422 naming the field (never the value).
pub fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge
        }
        JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge,
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("the body must be JSON (Content-Type: application/json)".into())
        }
        JsonPayloadError::Deserialize(inner) if inner.is_data() => {
            ApiError::Validation(vec![shape_error(&inner.to_string())])
        }
        _ => ApiError::BadRequest("the body is not well-formed JSON".into()),
    };
    api_error.into()
}

/// A raw body over the limit (the webhook route).
pub fn payload_error(error: actix_web::error::PayloadError) -> actix_web::Error {
    match error {
        PayloadError::Overflow => ApiError::PayloadTooLarge.into(),
        _ => ApiError::BadRequest("the body could not be read".into()).into(),
    }
}

/// serde's data errors quote offending values; keep only the field name.
pub(crate) fn shape_error(message: &str) -> FieldError {
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"))
        .unwrap_or("body");
    let text = if message.starts_with("missing field") {
        "is required"
    } else if message.starts_with("unknown field") {
        "is not an accepted field"
    } else {
        "has the wrong type or format"
    };
    FieldError::new(field, text)
}

/// Unknown routes answer 404 problem+json rather than an empty body.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}
