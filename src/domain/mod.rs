//! Validated value types. Constructing one proves the value is well-formed, so
//! code below the HTTP layer never re-checks. No I/O here.

mod email;
mod plan;
mod redirect;
mod role;
mod subscription;
mod tenant_id;

pub use email::Email;
pub use plan::PlanCode;
pub use redirect::RedirectUrl;
pub use role::Role;
pub use subscription::is_paying;
pub use tenant_id::TenantId;
