//! Invoice pages as Stripe listed them, per tenant, for a short time
//! (`billing.invoice_cache_ttl_ms`). `GET …/billing/invoices` costs a Stripe
//! request; a page reloaded, or a tenant looping on it, must not spend the
//! Stripe budget every tenant shares. A tenant's pages are dropped when a
//! webhook tells of its invoices or its subscription changes (here, and on
//! PostgreSQL on every instance through `db::listen`); the TTL bounds the
//! rest. Misses of one tenant are filled one at a time, so a burst of reads
//! costs one Stripe request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::{InvoicePage, TenantId};

/// One page: `limit` invoices after `starting_after`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PageKey {
    pub limit: u8,
    pub starting_after: Option<String>,
}

/// The pages of one tenant; they expire together.
#[derive(Default)]
pub(super) struct TenantPages {
    pages: Mutex<HashMap<PageKey, InvoicePage>>,
    /// Held while this instance reads the tenant's invoices from Stripe.
    pub filling: tokio::sync::Mutex<()>,
}

impl TenantPages {
    pub fn get(&self, key: &PageKey) -> Option<InvoicePage> {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}

pub(super) struct InvoiceCache {
    /// `None` when the cache is off (a TTL of zero).
    entries: Option<moka::sync::Cache<TenantId, Arc<TenantPages>>>,
    /// Bumped by every invalidation: a fill that saw it move may have read
    /// Stripe before the change it raced with, and is not kept.
    epoch: AtomicU64,
}

impl InvoiceCache {
    pub fn new(ttl: Duration) -> InvoiceCache {
        InvoiceCache {
            entries: (!ttl.is_zero()).then(|| {
                moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(ttl)
                    .build()
            }),
            epoch: AtomicU64::new(0),
        }
    }

    /// The tenant's pages (created empty), or `None` with the cache off.
    pub fn pages(&self, tenant: &TenantId) -> Option<Arc<TenantPages>> {
        Some(
            self.entries
                .as_ref()?
                .get_with(tenant.clone(), Arc::default),
        )
    }

    /// Taken before reading Stripe; hand it to `fill`.
    pub fn ticket(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Keeps `page` unless the tenant's pages were dropped since `ticket`.
    pub fn fill(&self, ticket: u64, pages: &TenantPages, key: PageKey, page: InvoicePage) {
        let mut stored = pages.pages.lock().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::SeqCst) == ticket {
            stored.insert(key, page);
        }
    }

    pub fn invalidate(&self, tenant: &TenantId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries.invalidate(tenant);
        }
    }

    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }
}
