//! Thin HTTP handlers: extract, parse into domain types, call billing, map to JSON.

pub mod billing;
pub mod errors;
pub mod health;
pub mod me;
pub mod plans;
pub mod settings_page;
pub mod subscription;
mod validation;
pub mod webhook;

use actix_web::middleware::from_fn;
use actix_web::web;

use crate::auth::{require_tenant_token, require_token};

/// Registers every route. The tenant scope is wrapped by the token middleware,
/// so no tenant route is reachable without a verified token for that tenant.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/v1/stripe/webhook", web::post().to(webhook::receive))
        .route("/settings/billing", web::get().to(settings_page::page))
        .route(
            "/settings/assets/{name}",
            web::get().to(settings_page::asset),
        )
        .service(
            web::resource("/v1/me")
                .wrap(from_fn(require_token))
                .route(web::get().to(me::get_me)),
        )
        .service(
            web::scope("/v1/tenants/{tenant_id}")
                .wrap(from_fn(require_tenant_token))
                .route("/billing", web::get().to(billing::get_billing))
                .route(
                    "/billing/customer",
                    web::post().to(billing::ensure_customer),
                )
                .route("/billing/profile", web::put().to(billing::put_profile))
                .route("/billing/checkout", web::post().to(billing::post_checkout))
                .route("/billing/portal", web::post().to(billing::post_portal))
                .route("/billing/plans", web::get().to(plans::get_plans))
                .route(
                    "/billing/entitlements",
                    web::get().to(plans::get_entitlements),
                )
                .route(
                    "/billing/subscription/change",
                    web::post().to(subscription::post_change),
                )
                .route(
                    "/billing/subscription/cancel",
                    web::post().to(subscription::post_cancel),
                )
                .route(
                    "/billing/subscription/resume",
                    web::post().to(subscription::post_resume),
                )
                .route("/billing/sync", web::post().to(subscription::post_sync)),
        );
}
