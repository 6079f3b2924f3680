//! Typed access to the verified identity. A handler that takes `TenantCtx`
//! cannot run outside the authenticated scope, and one that takes `AdminCtx`
//! cannot run for a member.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};

use super::Identity;
use crate::domain::Role;
use crate::error::ApiError;

/// Any authenticated user of the tenant in the path.
#[derive(Debug, Clone)]
pub struct TenantCtx(pub Identity);

/// An authenticated admin of the tenant in the path.
#[derive(Debug, Clone)]
pub struct AdminCtx(pub Identity);

/// A caller of the tenant in the path that may record its usage (a role in
/// `auth.usage_roles`: the host application's backend, an admin).
#[derive(Debug, Clone)]
pub struct UsageCtx(pub Identity);

impl std::ops::Deref for UsageCtx {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

impl FromRequest for UsageCtx {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identity(req).and_then(|identity| {
            if identity.may_record_usage {
                Ok(UsageCtx(identity))
            } else {
                Err(ApiError::Forbidden(
                    "recording usage requires a role listed in auth.usage_roles",
                ))
            }
        }))
    }
}

/// Any caller with a valid token, for routes that name no tenant (`/v1/me`,
/// behind `require_token`): the tenant is the token's own.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl std::ops::Deref for TenantCtx {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

impl std::ops::Deref for AdminCtx {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

fn identity(req: &HttpRequest) -> Result<Identity, ApiError> {
    req.extensions()
        .get::<Identity>()
        .cloned()
        .ok_or(ApiError::Unauthorized("a valid bearer token is required"))
}

impl FromRequest for TenantCtx {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identity(req).map(TenantCtx))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identity(req).map(Caller))
    }
}

impl FromRequest for AdminCtx {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identity(req).and_then(|identity| match identity.role {
            Role::Admin => Ok(AdminCtx(identity)),
            Role::Member | Role::Service => {
                Err(ApiError::Forbidden("this action requires the admin role"))
            }
        }))
    }
}
