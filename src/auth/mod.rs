//! Authentication and tenant scoping. A request's token is verified once, by the
//! middleware on the tenant scope; handlers receive a `TenantCtx` or `AdminCtx`
//! and so cannot be written without naming the tenant they act for. `/v1/me`
//! alone takes any valid token (`require_token`, `Caller`).

mod claims;
mod extract;
mod jwks;
mod middleware;
mod verifier;

pub use claims::{ClaimRules, Identity};
pub use extract::{AdminCtx, Caller, TenantCtx, UsageCtx};
pub use middleware::{require_tenant_token, require_token};
pub use verifier::{JwtVerifier, MintRequest, TokenError, TokenIssuer};
