//! `[rate_limit]`: per-tenant request budgets of one instance.

use serde::Deserialize;

/// Each POST/PUT costs Stripe requests (Stripe allows 100/s per account), so
/// one tenant must not be able to spend the whole budget. Limits are per
/// tenant *and instance*: N instances allow N times the figure.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// POST/PUT/PATCH/DELETE per tenant per minute (a burst of this many is
    /// allowed, then one more every 60/N s); 0 = unlimited.
    pub tenant_writes_per_minute: u32,
    /// GET/HEAD per tenant per minute; 0 = unlimited (the default: a host
    /// app may gate every one of its own requests on entitlements).
    pub tenant_reads_per_minute: u32,
    /// Reads that cost a Stripe request (`GET …/billing/invoices`, cached
    /// briefly) per tenant per minute, besides the reads budget: Stripe's
    /// budget is shared by every tenant, so one looping tenant must not
    /// spend it; 0 = unlimited.
    pub tenant_stripe_reads_per_minute: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            tenant_writes_per_minute: 60,
            tenant_reads_per_minute: 0,
            tenant_stripe_reads_per_minute: 30,
        }
    }
}
