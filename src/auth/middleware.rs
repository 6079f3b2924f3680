//! The tenant scope's gatekeeper: verifies the bearer token once per request and
//! refuses a token for another tenant before any handler runs.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing_actix_web::RootSpan;

use super::{Identity, JwtVerifier, TokenError};
use crate::error::ApiError;

/// `from_fn` middleware for `/v1/tenants/{tenant_id}`: 401 without a valid token,
/// 403 when the token's tenant is not the one in the path. Refusals are
/// answered here as responses, not returned as errors, so that the outer
/// middleware still adds `x-request-id` to them.
pub async fn require_tenant_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match verify(&req).await {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(refusal) => Ok(req.error_response(refusal).map_into_right_body()),
    }
}

/// The request's identity, if its token is valid for the tenant in the path.
async fn verify(req: &ServiceRequest) -> Result<Identity, ApiError> {
    let verifier = req
        .app_data::<web::Data<JwtVerifier>>()
        .ok_or_else(|| ApiError::internal("JwtVerifier is not registered"))?;
    let token = bearer_token(req).map_err(unauthorized)?;
    let identity = verifier.verify(token).await.map_err(unauthorized)?;
    let path_tenant = req.match_info().get("tenant_id").unwrap_or_default();
    if path_tenant != identity.tenant_id.as_str() {
        tracing::info!(token_tenant = %identity.tenant_id, "token is for another tenant");
        return Err(ApiError::Forbidden(
            "the token is not valid for this tenant",
        ));
    }
    if let Some(span) = req.extensions().get::<RootSpan>() {
        span.record("tenant_id", identity.tenant_id.as_str());
        span.record("user_id", identity.user_id.as_str());
    }
    Ok(identity)
}

fn bearer_token(req: &ServiceRequest) -> Result<&str, TokenError> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or(TokenError::Missing)?
        .to_str()
        .map_err(|_| TokenError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(token.trim())
}

fn unauthorized(error: TokenError) -> ApiError {
    if error == TokenError::KeysUnavailable {
        tracing::warn!(reason = %error, "token not checked");
        return ApiError::AuthUnavailable;
    }
    tracing::info!(reason = %error, "token refused");
    ApiError::Unauthorized("a valid bearer token is required")
}
