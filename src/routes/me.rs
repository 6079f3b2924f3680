//! `GET /v1/me`: who the token says the caller is. The settings page learns its
//! tenant and role here instead of decoding the token, whose claim names are
//! configuration (`auth.tenant_claim`).

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::HttpResponse;
use serde_json::json;

use crate::auth::Caller;

pub async fn get_me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(json!({
            "tenant_id": caller.0.tenant_id.as_str(),
            "user_id": caller.0.user_id,
            "role": caller.0.role.as_str(),
            "email": caller.0.email.as_ref().map(|email| email.as_str()),
        }))
}
