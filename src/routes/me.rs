//! `GET /v1/me`: who the token says the caller is. The settings page learns its
//! tenant and role here instead of decoding the token, whose claim names are
//! configuration (`auth.tenant_claim`).

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;

/// The verified token's identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeAnswer {
    pub tenant_id: String,
    pub user_id: String,
    /// `admin` or `member` (`auth.admin_roles` name the admin values).
    #[schema(pattern = "^(admin|member)$")]
    pub role: String,
    pub email: Option<String>,
}

/// Any valid token, whatever its tenant.
#[utoipa::path(get, path = "/v1/me", tag = "billing",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who the token says the caller is", body = MeAnswer),
        (status = 401, description = "Missing, malformed, expired or badly signed token", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 503, description = "The identity provider's keys are not available yet", content_type = "application/problem+json", body = crate::error::Problem),
    ))]
pub async fn get_me(caller: Caller) -> HttpResponse {
    let identity = caller.0;
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(MeAnswer {
            tenant_id: identity.tenant_id.to_string(),
            role: identity.role.as_str().to_owned(),
            email: identity.email.map(|email| email.as_str().to_owned()),
            user_id: identity.user_id,
        })
}
