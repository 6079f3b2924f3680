//! Extractors that let a write handler say what it needs and nothing more:
//! the acting admin (for billing's audit log) and an optional JSON body that
//! is refused exactly like a JSON one.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;
use tracing_actix_web::RequestId;

use super::errors::shape_error;
use crate::auth::AdminCtx;
use crate::billing;
use crate::domain::TenantId;
use crate::error::ApiError;

/// The admin who makes a write: the verified admin of the tenant in the
/// path (403 for a member) and the request's id, which billing's audit log
/// records next to the user.
pub struct Actor {
    admin: AdminCtx,
    request_id: String,
}

impl Actor {
    /// The tenant the write is for: the path's, which the token proved.
    pub fn tenant(&self) -> &TenantId {
        &self.admin.tenant_id
    }

    /// Who acts, as billing audits it (and the last fallback for a
    /// customer's email).
    pub fn audit(&self) -> billing::Actor<'_> {
        billing::Actor {
            user_id: &self.admin.user_id,
            request_id: Some(&self.request_id),
            email: self.admin.email.as_ref(),
        }
    }
}

impl FromRequest for Actor {
    type Error = actix_web::Error;
    type Future = Ready<Result<Actor, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let admin = AdminCtx::from_request(req, payload).into_inner();
        let request_id = RequestId::from_request(req, payload).into_inner();
        ready(match (admin, request_id) {
            (Ok(admin), Ok(request_id)) => Ok(Actor {
                admin,
                request_id: request_id.to_string(),
            }),
            (Err(refusal), _) => Err(refusal.into()),
            (_, Err(missing)) => Err(missing.into()),
        })
    }
}

/// A body that may be left out: empty (or only whitespace) is
/// `T::default()`; anything else must be JSON of `T`'s shape and is refused
/// as the JSON extractor refuses it (400 for a wrong content type or bad
/// syntax, 422 naming the field). The size limit is the app's
/// `PayloadConfig`, as for any raw body.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let body = body.await?;
            Ok(OptionalJson(optional_json(&req, &body)?))
        })
    }
}

fn optional_json<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(req, bytes)
}

/// A JSON body of up to `LIMIT` bytes, for a route whose bodies may exceed
/// the service-wide limit (a usage batch): 413 past it, otherwise refused
/// exactly as the JSON extractor refuses a body.
pub struct JsonUpTo<T, const LIMIT: usize>(pub T);

impl<T: DeserializeOwned + 'static, const LIMIT: usize> FromRequest for JsonUpTo<T, LIMIT> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Payload::from_request(req, payload).into_inner();
        let req = req.clone();
        Box::pin(async move {
            let bytes = match body?.to_bytes_limited(LIMIT).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => {
                    return Err(ApiError::BadRequest("the body could not be read".into()).into())
                }
                Err(_) => return Err(ApiError::PayloadTooLarge.into()),
            };
            Ok(JsonUpTo(json_body(&req, &bytes)?))
        })
    }
}

/// A JSON body read as bytes, with the JSON extractor's rules: content type
/// and syntax are 400, a wrong shape 422 naming the field.
fn json_body<T: DeserializeOwned>(req: &HttpRequest, bytes: &[u8]) -> Result<T, ApiError> {
    if req.content_type() != "application/json" {
        return Err(ApiError::BadRequest(
            "the body must be JSON (Content-Type: application/json)".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        if error.is_data() {
            ApiError::Validation(vec![shape_error(&error.to_string())])
        } else {
            ApiError::BadRequest("the body is not well-formed JSON".into())
        }
    })
}
