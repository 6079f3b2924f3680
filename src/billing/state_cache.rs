//! A short-lived, per-instance cache of the answers to `GET …/billing`.
//!
//! Why: settings pages poll the tenant's plan, and on the read path a database
//! round trip plus the two thread handoffs that keep diesel off the async
//! workers cost several times the framework itself. The state is already a
//! cache of Stripe's truth that webhooks update seconds late, so serving it up
//! to `ttl` old on *other* instances changes nothing a client can rely on
//! (they poll after Checkout anyway). On *this* instance every write to a
//! tenant's row drops its entry, so a client sees its own changes at once.
//!
//! On PostgreSQL other instances' writes show within milliseconds too: a
//! trigger notifies every change and `db::listen` drops the tenant's entry
//! (and everything after a reconnect); the TTL stays as the backstop, and is
//! the only bound on SQLite.
//!
//! Only display reads use it. Decisions (Checkout's double-billing guard,
//! customer creation) read the database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::BillingState;
use crate::domain::TenantId;

pub struct StateCache {
    /// `None` when the cache is switched off (a TTL of zero).
    entries: Option<moka::sync::Cache<TenantId, Arc<BillingState>>>,
    /// Bumped by every invalidation; a fill that saw it move may have read
    /// the row before the write it raced with, and is not kept.
    epoch: AtomicU64,
}

/// Taken before reading the row that will fill the cache.
#[derive(Debug, Clone, Copy)]
pub struct FillTicket(u64);

impl StateCache {
    pub fn new(ttl: Duration, capacity: u64) -> StateCache {
        let entries = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        });
        StateCache {
            entries,
            epoch: AtomicU64::new(0),
        }
    }

    pub fn get(&self, tenant: &TenantId) -> Option<Arc<BillingState>> {
        self.entries.as_ref()?.get(tenant)
    }

    /// Call before reading the row, then hand the ticket to `fill`.
    pub fn ticket(&self) -> FillTicket {
        FillTicket(self.epoch.load(Ordering::SeqCst))
    }

    /// Keeps `state` unless a write was invalidated since `ticket` was taken.
    ///
    /// The check runs after the insert: either it sees the writer's bump and
    /// removes the entry itself, or the bump (and so the writer's own removal)
    /// comes after the insert. Either way no pre-write read survives.
    pub fn fill(&self, ticket: FillTicket, tenant: &TenantId, state: Arc<BillingState>) {
        let Some(entries) = &self.entries else {
            return;
        };
        if self.epoch.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        entries.insert(tenant.clone(), state);
        if self.epoch.load(Ordering::SeqCst) != ticket.0 {
            entries.invalidate(tenant);
        }
    }

    /// Forgets every entry: changes may have been missed (the notification
    /// listener reconnected).
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    /// Call after a write to `tenant`'s row has committed (or failed).
    pub fn invalidate(&self, tenant: &TenantId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries.invalidate(tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn state(id: &str, plan: &str) -> Arc<BillingState> {
        let mut state = BillingState::free(&tenant(id));
        state.plan = plan.into();
        Arc::new(state)
    }

    fn cache() -> StateCache {
        StateCache::new(Duration::from_secs(60), 100)
    }

    #[test]
    fn a_fill_is_served_until_the_tenant_is_invalidated() {
        let cache = cache();
        let acme = tenant("acme");
        cache.fill(cache.ticket(), &acme, state("acme", "free"));
        assert_eq!(cache.get(&acme).unwrap().plan, "free");
        cache.invalidate(&acme);
        assert!(cache.get(&acme).is_none());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = cache();
        let acme = tenant("acme");
        // The reader takes its ticket and reads the old row; a writer commits
        // and invalidates before the reader fills.
        let ticket = cache.ticket();
        cache.invalidate(&acme);
        cache.fill(ticket, &acme, state("acme", "free"));
        assert!(cache.get(&acme).is_none());
        // The next reader starts after the write and may fill.
        cache.fill(cache.ticket(), &acme, state("acme", "pro"));
        assert_eq!(cache.get(&acme).unwrap().plan, "pro");
    }

    #[test]
    fn clear_forgets_every_tenant_and_in_flight_fills() {
        let cache = cache();
        let (acme, globex) = (tenant("acme"), tenant("globex"));
        cache.fill(cache.ticket(), &acme, state("acme", "free"));
        let ticket = cache.ticket();
        cache.clear();
        cache.fill(ticket, &globex, state("globex", "free"));
        assert!(cache.get(&acme).is_none());
        assert!(cache.get(&globex).is_none());
    }

    #[test]
    fn a_zero_ttl_switches_the_cache_off() {
        let cache = StateCache::new(Duration::ZERO, 100);
        let acme = tenant("acme");
        cache.fill(cache.ticket(), &acme, state("acme", "free"));
        assert!(cache.get(&acme).is_none());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = StateCache::new(Duration::from_millis(1), 100);
        let acme = tenant("acme");
        cache.fill(cache.ticket(), &acme, state("acme", "free"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while cache.get(&acme).is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the entry outlived its TTL"
            );
            std::thread::yield_now();
        }
    }
}
