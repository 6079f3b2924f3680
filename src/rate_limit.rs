//! Per-tenant request budgets (README, Rate limits), enforced per instance
//! with GCRA: a tenant may burst up to its per-minute figure, then gets one
//! more request every 60/N seconds. Keyed by the tenant of the *verified
//! token*, so it runs after the token middleware.
//!
//! Only authorized requests count: a request is charged before its handler
//! runs (so a refusal costs nothing downstream) and refunded when the
//! handler refuses it for its role (403), so a member's refused writes
//! never spend the admins' budget.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};

use crate::auth::Identity;
use crate::domain::TenantId;
use crate::error::ApiError;
use crate::settings::RateLimitSettings;

/// The budgets of one instance; a `None` budget is unlimited.
pub struct TenantLimits {
    writes: Option<Gcra>,
    reads: Option<Gcra>,
    stripe_reads: Option<Gcra>,
}

impl TenantLimits {
    pub fn new(settings: &RateLimitSettings) -> TenantLimits {
        TenantLimits {
            writes: Gcra::per_minute(settings.tenant_writes_per_minute),
            reads: Gcra::per_minute(settings.tenant_reads_per_minute),
            stripe_reads: Gcra::per_minute(settings.tenant_stripe_reads_per_minute),
        }
    }

    fn limiter(&self, budget: Budget) -> Option<&Gcra> {
        match budget {
            Budget::Reads => self.reads.as_ref(),
            Budget::Writes => self.writes.as_ref(),
            Budget::StripeReads => self.stripe_reads.as_ref(),
        }
    }

    /// Spends one request of `budget`; `Err` with the whole seconds to wait
    /// when `tenant` is over it.
    pub fn check(&self, tenant: &TenantId, budget: Budget) -> Result<(), ApiError> {
        let Some(limiter) = self.limiter(budget) else {
            return Ok(());
        };
        limiter.take(tenant).map_err(|wait| {
            // Round up: a client retrying at Retry-After must be allowed.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::RateLimited {
                retry_after_seconds: seconds.max(1),
            }
        })
    }

    /// Gives back a request spent by `check` (its handler refused it).
    pub fn refund(&self, tenant: &TenantId, budget: Budget) {
        if let Some(limiter) = self.limiter(budget) {
            limiter.give_back(tenant);
        }
    }
}

/// Which of a tenant's budgets a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Reads, and usage metering (database writes a host may make on every
    /// one of its own requests, costing Stripe nothing).
    Reads,
    /// Writes that cost Stripe requests.
    Writes,
    /// Reads that cost a Stripe request (`GET …/billing/invoices`), besides
    /// `Reads`: Stripe's budget is shared by every tenant.
    StripeReads,
}

impl Budget {
    /// The budgets `method` on `path` (a tenant-scoped path) draws on.
    pub fn of(method: &Method, path: &str) -> &'static [Budget] {
        let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        // /v1/tenants/{tenant_id}/usage…, /v1/tenants/{tenant_id}/billing/invoices
        let mut segments = path.split('/').skip(4);
        let (resource, sub) = (segments.next(), segments.next());
        if read && resource == Some("billing") && sub == Some("invoices") {
            &[Budget::Reads, Budget::StripeReads]
        } else if read || resource == Some("usage") {
            &[Budget::Reads]
        } else {
            &[Budget::Writes]
        }
    }
}

/// `from_fn` middleware for the tenant scope, inside the token middleware
/// (which has put the verified `Identity` in the request). Refusals are
/// answered as responses so the outer middleware adds `x-request-id`.
pub async fn limit_tenant(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let charged = match (
        req.app_data::<web::Data<TenantLimits>>().cloned(),
        req.extensions()
            .get::<Identity>()
            .map(|i| i.tenant_id.clone()),
    ) {
        (Some(limits), Some(tenant)) => Some((limits, tenant)),
        _ => None,
    };
    let Some((limits, tenant)) = charged else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let budgets = Budget::of(req.method(), req.path());
    for (i, budget) in budgets.iter().enumerate() {
        if let Err(refusal) = limits.check(&tenant, *budget) {
            for spent in &budgets[..i] {
                limits.refund(&tenant, *spent);
            }
            tracing::info!("tenant over its rate limit");
            return Ok(req.error_response(refusal).map_into_right_body());
        }
    }
    let response = next.call(req).await;
    // Refused for its role (a member on an admin route): not an authorized
    // request, so it does not count against the tenant.
    let refused = match &response {
        Ok(response) => response.status() == StatusCode::FORBIDDEN,
        Err(error) => error.as_response_error().status_code() == StatusCode::FORBIDDEN,
    };
    if refused {
        for budget in budgets {
            limits.refund(&tenant, *budget);
        }
    }
    Ok(response?.map_into_left_body())
}

/// A keyed GCRA limiter that can give a request back.
struct Gcra {
    /// Time between two requests at the sustained rate.
    emission: Duration,
    /// How far ahead of now a tenant's theoretical arrival time may run
    /// (the burst): `emission × (N − 1)`.
    tolerance: Duration,
    started: Instant,
    shards: Vec<Mutex<HashMap<TenantId, Duration>>>,
    hasher: RandomState,
    /// Seconds after `started` before which no sweep runs.
    next_sweep: AtomicU64,
}

const SHARDS: usize = 16;
/// Above this many remembered tenants in a shard, forget those whose
/// budget is full again (they would be allowed their whole burst anyway) ...
const SWEEP_ABOVE: usize = 1_000;
/// ... at most this often, since a sweep walks the shard.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Gcra {
    fn per_minute(n: u32) -> Option<Gcra> {
        (n > 0).then(|| {
            let emission = Duration::from_secs(60) / n;
            Gcra {
                emission,
                tolerance: emission * (n - 1),
                started: Instant::now(),
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                hasher: RandomState::new(),
                next_sweep: AtomicU64::new(0),
            }
        })
    }

    fn shard(&self, tenant: &TenantId) -> std::sync::MutexGuard<'_, HashMap<TenantId, Duration>> {
        let index = (self.hasher.hash_one(tenant) as usize) % SHARDS;
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spends one request, or says how long until one is allowed.
    fn take(&self, tenant: &TenantId) -> Result<(), Duration> {
        let now = self.started.elapsed();
        let mut shard = self.shard(tenant);
        let tat = shard.get(tenant).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        shard.insert(tenant.clone(), tat + self.emission);
        if shard.len() > SWEEP_ABOVE {
            self.sweep(&mut shard, now);
        }
        Ok(())
    }

    fn give_back(&self, tenant: &TenantId) {
        let mut shard = self.shard(tenant);
        if let Some(tat) = shard.get_mut(tenant) {
            *tat = tat.saturating_sub(self.emission);
        }
    }

    fn sweep(&self, shard: &mut HashMap<TenantId, Duration>, now: Duration) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now.as_secs() < due {
            return;
        }
        self.next_sweep
            .store(now.as_secs() + SWEEP_EVERY.as_secs(), Ordering::Relaxed);
        shard.retain(|_, tat| *tat > now);
        shard.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(writes: u32, reads: u32) -> TenantLimits {
        TenantLimits::new(&RateLimitSettings {
            tenant_writes_per_minute: writes,
            tenant_reads_per_minute: reads,
            tenant_stripe_reads_per_minute: 0,
        })
    }

    #[test]
    fn a_burst_of_the_figure_then_a_refusal_with_the_wait() {
        let limits = limits(3, 0);
        let acme = TenantId::parse("acme").unwrap();
        for _ in 0..3 {
            limits.check(&acme, Budget::Writes).unwrap();
        }
        match limits.check(&acme, Budget::Writes) {
            Err(ApiError::RateLimited {
                retry_after_seconds,
            }) => assert!((1..=20).contains(&retry_after_seconds)),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Reads are off by default, and another tenant has its own budget.
        limits.check(&acme, Budget::Reads).unwrap();
        limits
            .check(&TenantId::parse("globex").unwrap(), Budget::Writes)
            .unwrap();
    }

    #[test]
    fn a_refund_gives_the_request_back() {
        let limits = limits(2, 0);
        let acme = TenantId::parse("acme").unwrap();
        for _ in 0..100 {
            limits.check(&acme, Budget::Writes).unwrap();
            limits.refund(&acme, Budget::Writes);
        }
        limits.check(&acme, Budget::Writes).unwrap();
        limits.check(&acme, Budget::Writes).unwrap();
        assert!(limits.check(&acme, Budget::Writes).is_err());
    }

    #[test]
    fn metering_draws_on_the_reads_budget_and_invoices_on_stripe_reads() {
        let path = "/v1/tenants/acme/usage";
        assert_eq!(Budget::of(&Method::POST, path), [Budget::Reads]);
        assert_eq!(
            Budget::of(&Method::POST, "/v1/tenants/acme/usage/batch"),
            [Budget::Reads]
        );
        assert_eq!(
            Budget::of(&Method::POST, "/v1/tenants/acme/billing/checkout"),
            [Budget::Writes]
        );
        assert_eq!(
            Budget::of(&Method::GET, "/v1/tenants/acme/billing"),
            [Budget::Reads]
        );
        assert_eq!(
            Budget::of(&Method::GET, "/v1/tenants/acme/billing/invoices"),
            [Budget::Reads, Budget::StripeReads]
        );
    }
}
