//! The API contract: an OpenAPI 3.1 document generated from the handlers'
//! `#[utoipa::path]` annotations and the types they answer with, served at
//! `/openapi.json`, with Swagger UI at `/docs` (its assets are compiled into
//! the binary: `utoipa-swagger-ui`'s `vendored` feature; no CDN, works offline).
//!
//! Adding a route: annotate its handler with `#[utoipa::path]` (the full
//! path, `params(TenantPath)` under the tenant scope, its success answers,
//! and the shared problem sets of `problems.rs`), list the handler in `ApiDoc`'s
//! `paths(...)`, derive `ToSchema` on its body and answer types, then
//! regenerate the snapshot: `just openapi`. `tests/api/openapi.rs` fails
//! until the route table, the document and `docs/openapi.json` agree.

use std::sync::{Arc, LazyLock};

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenant-billing",
        description = "Multi-tenant Stripe billing: exactly one Stripe customer per tenant. \
            Errors are RFC 9457 problem+json. Tenant routes need a bearer JWT whose tenant is the one in the path."
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::metrics::scrape,
        spec,
        docs_root,
        docs_file,
        super::webhook::receive,
        super::me::get_me,
        super::settings_page::page,
        super::settings_page::asset,
        super::billing::get_billing,
        super::billing::ensure_customer,
        super::billing::put_profile,
        super::billing::post_checkout,
        super::billing::post_portal,
        super::plans::get_plans,
        super::plans::get_entitlements,
        super::subscription::post_change,
        super::subscription::post_cancel,
        super::subscription::post_resume,
        super::subscription::post_sync,
        super::seats::put_seats,
        super::seats::get_invoices,
        super::usage::post_usage,
        super::usage::post_usage_batch,
        super::usage::post_usage_check,
        super::usage::get_usage,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "billing", description = "A tenant's billing: state, plans, entitlements, profile, customer, Checkout, portal, subscription changes, sync"),
        (name = "usage", description = "Metered usage: record events exactly once against the plan's limits, check, read each meter"),
        (name = "stripe", description = "Stripe's webhook deliveries"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "settings page", description = "The billing settings page a tenant admin uses (HTML)"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` (JWT) security scheme the tenant routes name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as served and as committed in `docs/openapi.json`.
pub fn spec_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        + "\n"
}

static SPEC: LazyLock<String> = LazyLock::new(spec_json);

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(SPEC.as_str())
}

/// The API reference (Swagger UI); redirects to `/docs/`.
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 308, description = "To `/docs/`", headers(("Location" = String)))))]
pub async fn docs_root() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

static SWAGGER_CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
    LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::new(["/openapi.json"])));

/// Swagger UI's page and assets, from the binary.
#[utoipa::path(get, path = "/docs/{file}", tag = "operations",
    params(("file" = String, Path, description = "An asset path; empty for the page")),
    responses(
        (status = 200, description = "The page or one of its assets", content(
            (String = "text/html"), (String = "text/javascript"), (String = "text/css"), (Vec<u8> = "image/png")
        )),
        (status = 404, description = "No such asset", content_type = "application/problem+json", body = Problem),
    ))]
pub async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match utoipa_swagger_ui::serve(&file, SWAGGER_CONFIG.clone()) {
        Ok(Some(asset)) => Ok(HttpResponse::Ok()
            .content_type(asset.content_type)
            .body(asset.bytes.into_owned())),
        Ok(None) => Err(ApiError::NotFound),
        Err(error) => Err(ApiError::internal(error.to_string())),
    }
}
