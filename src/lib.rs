//! tenant-billing: a multi-tenant billing backend that maps every tenant to
//! exactly one Stripe customer. See `docs/ARCHITECTURE.md` for the layers.

pub mod auth;
pub mod billing;
pub mod cli;
pub mod commands;
pub mod db;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod stripe;
pub mod telemetry;
