//! Validated value types and pure rules. Constructing one proves the value is
//! well-formed, so code below the HTTP layer never re-checks. No I/O here.

/// `as_str` and `Display` for a validated string newtype (`struct X(String)`):
/// the value was checked when it was made, so reading it back is all there is.
macro_rules! validated_text {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

mod address;
mod email;
mod entitlements;
pub mod forwarding;
mod invoice;
mod plan;
mod redirect;
mod role;
mod slots;
mod subscription;
mod tax_id;
mod tenant_id;
mod text;
mod usage;

pub use address::{
    AddressInput, AddressProblem, BillingAddress, Country, Currency, InvalidCurrency,
    UnknownCountry, ADDRESS_LIMITS,
};
pub use email::Email;
pub use entitlements::{access, Access, AccessReason};
pub use invoice::{Invoice, InvoicePage};
pub use plan::{
    CatalogError, Plan, PlanCatalog, PlanChange, PlanCode, PlanPrice, UnknownPlan, FREE,
};
pub use redirect::RedirectUrl;
pub use role::Role;
pub use slots::{Booking, SlotAsk, SlotClock};
pub use subscription::is_paying;
pub use tax_id::{InvalidTaxIdNumber, TaxIdKind, TaxIdNumber, UnsupportedTaxIdKind, TAX_ID_KINDS};
pub use tenant_id::TenantId;
pub use text::{has_control_character, json_may_hold_control_character, CONTROL_CHARACTER};
pub use usage::{
    check_timestamp, Aggregation, Allowance, InvalidUsageKey, Meter, Overage, TimestampError,
    UsageKey, UsagePeriod, MAX_QUANTITY,
};
