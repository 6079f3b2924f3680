//! `POST /v1/stripe/webhook`: authenticated by Stripe's signature, not a JWT.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::BytesUpTo;
use crate::billing::{Billing, WebhookFailure};
use crate::error::ApiError;

/// The webhook's own body limit. Stripe's events can be far larger than the
/// 64 KiB the API takes (an invoice with many lines, a customer with much
/// metadata), and one refused would be refused again on every redelivery.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// `POST /v1/stripe/webhook`'s answer.
#[derive(Serialize, ToSchema)]
pub struct Received {
    pub received: bool,
}

/// Reads the raw body (the signature covers its exact bytes), verifies and
/// processes it. 400 when the delivery is not genuine or not an event; 500
/// when processing failed, so Stripe redelivers it.
#[utoipa::path(post, path = "/v1/stripe/webhook", tag = "stripe",
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature over the raw body: `t=…,v1=…`")),
    request_body(content = Object, content_type = "application/json", description = "A Stripe event, exactly as Stripe sent it"),
    responses(
        (status = 200, description = "Verified and processed (or a duplicate)", body = Received),
        (status = 400, description = "Missing, bad or stale signature, or not an event; nothing stored", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 413, description = "The body exceeds 1 MiB", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 500, description = "Processing failed; the event is kept and Stripe redelivers it", content_type = "application/problem+json", body = crate::error::Problem),
    ))]
pub async fn receive(
    req: HttpRequest,
    billing: web::Data<Billing>,
    BytesUpTo(body): BytesUpTo<MAX_WEBHOOK_BODY>,
) -> Result<HttpResponse, ApiError> {
    let payload = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the payload is not UTF-8".into()))?;
    let signature = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    match billing.handle_webhook(payload, signature, now).await {
        Ok(_) => Ok(HttpResponse::Ok().json(Received { received: true })),
        Err(WebhookFailure::Rejected(rejection)) => {
            tracing::warn!(reason = %rejection, "webhook refused");
            Err(ApiError::BadRequest(rejection.to_string()))
        }
        Err(WebhookFailure::Processing(error)) => Err(ApiError::internal(error)),
    }
}
