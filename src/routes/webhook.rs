//! `POST /v1/stripe/webhook`: authenticated by Stripe's signature, not a JWT.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::billing::{Billing, WebhookFailure};
use crate::error::ApiError;

/// Reads the raw body (the signature covers its exact bytes), verifies and
/// processes it. 400 when the delivery is not genuine or not an event; 500
/// when processing failed, so Stripe redelivers it.
pub async fn receive(
    req: HttpRequest,
    billing: web::Data<Billing>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let payload = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the payload is not UTF-8".into()))?;
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    match billing.handle_webhook(payload, signature, now).await {
        Ok(_) => Ok(HttpResponse::Ok().json(json!({ "received": true }))),
        Err(WebhookFailure::Rejected(rejection)) => {
            tracing::warn!(reason = %rejection, "webhook refused");
            Err(ApiError::BadRequest(rejection.to_string()))
        }
        Err(WebhookFailure::Processing(error)) => Err(ApiError::internal(error)),
    }
}
