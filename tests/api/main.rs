//! One test binary for all API tests: the PostgreSQL cluster is started once
//! per run and shared, and the crate is linked once.

mod helpers;
mod pg;

mod auth;
mod backfill;
mod binary;
mod browser;
mod cancel_resume;
mod child;
mod customer;
mod dev_server;
mod dunning;
mod entitlements;
mod health;
mod invoices;
mod jobs;
mod jwks;
mod jwks_server;
mod lifecycle_walk;
mod me;
mod metrics;
mod openapi;
mod plan_change;
mod plans;
mod profile;
mod rate_limit;
mod readiness;
mod reconcile;
mod retention;
mod schema_split;
mod seats;
mod settings_page;
mod settings_page_browser;
mod shutdown;
mod state_cache;
mod sync;
mod trials;
mod usage;
mod usage_billing;
mod usage_billing_proof;
mod webhooks;
mod workers;
