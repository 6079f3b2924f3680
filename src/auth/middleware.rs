//! Gatekeepers: verify the bearer token once per request, before any handler
//! runs. The tenant scope also refuses a token for another tenant; `/v1/me`
//! (which names no tenant) takes any valid token.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use tracing_actix_web::RootSpan;

use super::{Identity, JwtVerifier, TokenError};
use crate::error::{ApiError, Unauthenticated};

/// Whose tenant a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// `/v1/tenants/{tenant_id}/…`: the token's tenant must be the path's.
    PathTenant,
    /// Routes that name no tenant: the token's own tenant is the one served.
    TokenTenant,
}

/// `from_fn` middleware for `/v1/tenants/{tenant_id}`: 401 without a valid token,
/// 403 when the token's tenant is not the one in the path. Refusals are
/// answered here as responses, not returned as errors, so that the outer
/// middleware still adds `x-request-id` to them.
pub async fn require_tenant_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    admit(req, next, Scope::PathTenant).await
}

/// `from_fn` middleware for routes that name no tenant (`/v1/me`): 401 without
/// a valid token; the token's own tenant is the one the handler sees.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    admit(req, next, Scope::TokenTenant).await
}

/// Checks the token for `scope`, stores the identity for the extractors and
/// calls the handler, or answers the refusal here.
async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    scope: Scope,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match verify(&req, scope).await {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(refusal) => Ok(req.error_response(refusal).map_into_right_body()),
    }
}

/// The identity the request's bearer token proves, checked against the path's
/// tenant for `Scope::PathTenant`; the request's log span learns the tenant
/// and user.
async fn verify(req: &ServiceRequest, scope: Scope) -> Result<Identity, ApiError> {
    let verifier = req
        .app_data::<web::Data<JwtVerifier>>()
        .ok_or_else(|| ApiError::internal("JwtVerifier is not registered"))?;
    let token = bearer_token(req).map_err(unauthorized)?;
    let identity = verifier.verify(token).await.map_err(unauthorized)?;
    if scope == Scope::PathTenant {
        let path_tenant = req.match_info().get("tenant_id").unwrap_or_default();
        if path_tenant != identity.tenant_id.as_str() {
            tracing::info!(token_tenant = %identity.tenant_id, "token is for another tenant");
            return Err(ApiError::Forbidden(
                "the token is not valid for this tenant",
            ));
        }
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
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // Another scheme (Basic, …) carries no bearer token: RFC 6750 answers
    // that like no token at all, without an error code.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Missing);
    }
    if token.trim().is_empty() {
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
    ApiError::Unauthorized(match error {
        TokenError::Missing => Unauthenticated::Missing,
        TokenError::Expired => Unauthenticated::Expired,
        _ => Unauthenticated::Invalid,
    })
}
