//! Thin HTTP handlers: extract, parse into domain types, call billing, map to JSON.
//!
//! Every route is registered through one table (`public_routes` and
//! `tenant_routes`): `configure` hands the table to actix, `registered`
//! lists it, and the OpenAPI tests hold `docs/openapi.json` to that list, so
//! a route cannot be added without appearing in the API contract.

pub mod billing;
pub mod errors;
mod extract;
pub mod health;
pub mod me;
pub mod metrics;
pub mod openapi;
pub mod plans;
pub mod problems;
pub mod seats;
pub mod settings_page;
mod state;
pub mod subscription;
pub mod usage;
mod validation;
pub mod webhook;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{web, FromRequest, Handler, Responder};

use crate::auth::{require_tenant_token, require_token};
use crate::rate_limit::limit_tenant;

/// The prefix of every tenant route; its `{tenant_id}` must be the token's.
pub const TENANT_SCOPE: &str = "/v1/tenants/{tenant_id}";

/// Where the route table goes: actix, or a list.
pub trait RouteSink {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;
}

/// Routes outside the tenant scope (no token, or their own authentication).
fn public_routes(r: &mut impl RouteSink) {
    r.add(Method::GET, "/healthz", health::healthz);
    r.add(Method::GET, "/readyz", health::readyz);
    r.add(Method::GET, "/metrics", metrics::scrape);
    r.add(Method::GET, "/openapi.json", openapi::spec);
    r.add(Method::GET, "/docs", openapi::docs_root);
    r.add(Method::GET, "/docs/{file:.*}", openapi::docs_file);
    r.add(Method::POST, "/v1/stripe/webhook", webhook::receive);
    r.add(Method::GET, "/settings/billing", settings_page::page);
    r.add(Method::GET, "/settings/assets/{name}", settings_page::asset);
}

/// Routes that name no tenant but need a valid token (any tenant's).
fn token_routes(r: &mut impl RouteSink) {
    r.add(Method::GET, "/v1/me", me::get_me);
}

/// Routes under `TENANT_SCOPE`, relative to it: reachable only with a
/// verified token for that tenant, within the tenant's rate limits.
fn tenant_routes(r: &mut impl RouteSink) {
    r.add(Method::GET, "/billing", billing::get_billing);
    r.add(Method::POST, "/billing/customer", billing::ensure_customer);
    r.add(Method::PUT, "/billing/profile", billing::put_profile);
    r.add(Method::POST, "/billing/checkout", billing::post_checkout);
    r.add(Method::POST, "/billing/portal", billing::post_portal);
    r.add(Method::GET, "/billing/plans", plans::get_plans);
    r.add(
        Method::GET,
        "/billing/entitlements",
        plans::get_entitlements,
    );
    r.add(
        Method::POST,
        "/billing/subscription/change",
        subscription::post_change,
    );
    r.add(
        Method::POST,
        "/billing/subscription/cancel",
        subscription::post_cancel,
    );
    r.add(
        Method::POST,
        "/billing/subscription/resume",
        subscription::post_resume,
    );
    r.add(Method::POST, "/billing/sync", subscription::post_sync);
    r.add(Method::PUT, "/billing/seats", seats::put_seats);
    r.add(Method::GET, "/billing/invoices", seats::get_invoices);
    r.add(Method::POST, "/usage", usage::post_usage);
    r.add(Method::POST, "/usage/batch", usage::post_usage_batch);
    r.add(Method::POST, "/usage/check", usage::post_usage_check);
    r.add(Method::GET, "/usage", usage::get_usage);
}

struct Actix<'a>(&'a mut web::ServiceConfig);

/// Registers each route as its own resource behind the token check.
struct ActixWithToken<'a>(&'a mut web::ServiceConfig);

impl RouteSink for ActixWithToken<'_> {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.0.service(
            web::resource(path)
                .wrap(from_fn(require_token))
                .route(web::method(method).to(handler)),
        );
    }
}

impl RouteSink for Actix<'_> {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.0.route(path, web::method(method).to(handler));
    }
}

/// Registers every route. The tenant scope is wrapped by the token middleware,
/// so no tenant route is reachable without a verified token for that tenant.
pub fn configure(cfg: &mut web::ServiceConfig) {
    public_routes(&mut Actix(cfg));
    token_routes(&mut ActixWithToken(cfg));
    cfg.service(
        web::scope(TENANT_SCOPE)
            // The last wrap runs first: the token, then the tenant's budget.
            .wrap(from_fn(limit_tenant))
            .wrap(from_fn(require_tenant_token))
            .configure(|cfg| tenant_routes(&mut Actix(cfg))),
    );
}

#[derive(Default)]
struct Listing {
    prefix: &'static str,
    routes: Vec<(Method, String)>,
}

impl RouteSink for Listing {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, _handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push((method, format!("{}{path}", self.prefix)));
    }
}

/// Every `(method, path template)` that `configure` registers, as actix
/// spells them (`/docs/{file:.*}`).
pub fn registered() -> Vec<(Method, String)> {
    let mut listing = Listing::default();
    public_routes(&mut listing);
    token_routes(&mut listing);
    listing.prefix = TENANT_SCOPE;
    tenant_routes(&mut listing);
    listing.routes
}
