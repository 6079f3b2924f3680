//! Per-tenant request budgets (README, Rate limits), enforced per instance with GCRA
//! (the `governor` crate): a tenant may burst up to its per-minute figure,
//! then gets one more request every 60/N seconds. Keyed by the tenant of
//! the *verified token*, so it runs after the token middleware.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Identity;
use crate::domain::TenantId;
use crate::error::ApiError;
use crate::settings::RateLimitSettings;

/// The two budgets of one instance; a `None` budget is unlimited.
pub struct TenantLimits {
    writes: Option<DefaultKeyedRateLimiter<TenantId>>,
    reads: Option<DefaultKeyedRateLimiter<TenantId>>,
    clock: DefaultClock,
    started: Instant,
    /// Seconds after `started` before which no sweep runs.
    next_sweep: AtomicU64,
}

/// Above this many remembered tenants, forget those whose budget is full
/// again (they would be allowed their whole burst anyway) ...
const SWEEP_ABOVE: usize = 10_000;
/// ... at most this often, since a sweep walks every entry.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl TenantLimits {
    pub fn new(settings: &RateLimitSettings) -> TenantLimits {
        let limiter = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
        };
        TenantLimits {
            writes: limiter(settings.tenant_writes_per_minute),
            reads: limiter(settings.tenant_reads_per_minute),
            clock: DefaultClock::default(),
            started: Instant::now(),
            next_sweep: AtomicU64::new(0),
        }
    }

    /// Bounds memory by the tenants active within a minute or so.
    fn sweep(&self, limiter: &DefaultKeyedRateLimiter<TenantId>) {
        if limiter.len() <= SWEEP_ABOVE {
            return;
        }
        let now = self.started.elapsed().as_secs();
        let due = self.next_sweep.load(Ordering::Relaxed);
        let next = now + SWEEP_EVERY.as_secs();
        if now >= due
            && self
                .next_sweep
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// `Err` with the whole seconds to wait when `tenant` is over `budget`.
    pub fn check(&self, tenant: &TenantId, budget: Budget) -> Result<(), ApiError> {
        let limiter = match budget {
            Budget::Reads => &self.reads,
            Budget::Writes => &self.writes,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        self.sweep(limiter);
        limiter.check_key(tenant).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            // Round up: a client retrying at Retry-After must be allowed.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::RateLimited {
                retry_after_seconds: seconds.max(1),
            }
        })
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
}

impl Budget {
    /// The budget of `method` on `path` (a tenant-scoped path).
    pub fn of(method: &Method, path: &str) -> Budget {
        let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        // /v1/tenants/{tenant_id}/usage…
        let metering = path.split('/').nth(4) == Some("usage");
        if read || metering {
            Budget::Reads
        } else {
            Budget::Writes
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
    let verdict = match (
        req.app_data::<web::Data<TenantLimits>>(),
        req.extensions().get::<Identity>(),
    ) {
        (Some(limits), Some(identity)) => {
            limits.check(&identity.tenant_id, Budget::of(req.method(), req.path()))
        }
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(refusal) => {
            tracing::info!("tenant over its rate limit");
            Ok(req.error_response(refusal).map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(writes: u32, reads: u32) -> TenantLimits {
        TenantLimits::new(&RateLimitSettings {
            tenant_writes_per_minute: writes,
            tenant_reads_per_minute: reads,
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
    fn metering_draws_on_the_reads_budget() {
        let path = "/v1/tenants/acme/usage";
        assert_eq!(Budget::of(&Method::POST, path), Budget::Reads);
        assert_eq!(
            Budget::of(&Method::POST, "/v1/tenants/acme/usage/batch"),
            Budget::Reads
        );
        assert_eq!(
            Budget::of(&Method::POST, "/v1/tenants/acme/billing/checkout"),
            Budget::Writes
        );
        assert_eq!(
            Budget::of(&Method::GET, "/v1/tenants/acme/billing"),
            Budget::Reads
        );
    }
}
