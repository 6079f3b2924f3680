//! Validated value types and pure rules. Constructing one proves the value is
//! well-formed, so code below the HTTP layer never re-checks. No I/O here.

mod email;
mod entitlements;
pub mod forwarding;
mod invoice;
mod plan;
mod redirect;
mod role;
mod subscription;
mod tenant_id;
mod usage;

pub use email::Email;
pub use entitlements::{access, Access, AccessReason};
pub use invoice::{Invoice, InvoicePage};
pub use plan::{
    CatalogError, Plan, PlanCatalog, PlanChange, PlanCode, PlanPrice, UnknownPlan, FREE,
};
pub use redirect::RedirectUrl;
pub use role::Role;
pub use subscription::is_paying;
pub use tenant_id::TenantId;
pub use usage::{
    check_timestamp, Aggregation, Allowance, InvalidUsageKey, Meter, Overage, TimestampError,
    UsageKey, UsagePeriod, MAX_QUANTITY,
};
