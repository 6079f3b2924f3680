//! `GET /settings/billing` and `/settings/assets/…` (README, Walk-through): the page a tenant
//! admin uses, its script and styles embedded in the binary. The page calls the
//! JSON API with the token it finds in its URL fragment; nothing it loads comes
//! from another origin, which the Content-Security-Policy enforces.

use std::sync::LazyLock;

use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};

use crate::billing::Billing;
use crate::error::ApiError;

const PAGE: &str = include_str!("../../assets/settings/billing.html");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "billing.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/settings/billing.js"),
    },
    Asset {
        name: "billing.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../assets/settings/billing.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../assets/settings/icon.svg"),
    },
];

/// Scripts, styles, images, fetches and forms from this origin only; no
/// inline script or style, no plugins, never framed, no `<base>` rewriting.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A digest of every asset: the page names its assets with `?v=VERSION`, so a
/// browser may keep them for a year and a new binary's page still loads its own.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across builds and Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ASSETS.iter().flat_map(|asset| asset.body.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
});

static PAGE_HTML: LazyLock<String> = LazyLock::new(|| PAGE.replace("{{version}}", &VERSION));

/// The headers every answer of the page carries: no MIME sniffing, and no
/// Referer, so no URL of this page ever reaches another site.
fn secured(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    response
}

fn enabled(billing: &Billing) -> Result<(), ApiError> {
    if billing.settings().billing.settings_page {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /settings/billing`: revalidated on every load (it is small), so a new
/// binary's page shows at once.
#[utoipa::path(get, path = "/settings/billing", tag = "settings page",
    responses(
        (status = 200, description = "The billing settings page (its token comes in the URL fragment)", content_type = "text/html", body = String),
        (status = 404, description = "`billing.settings_page` is off", content_type = "application/problem+json", body = crate::error::Problem),
    ))]
pub async fn page(billing: web::Data<Billing>) -> Result<HttpResponse, ApiError> {
    enabled(&billing)?;
    Ok(secured(HttpResponse::Ok())
        .content_type(ContentType::html())
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .body(PAGE_HTML.as_str()))
}

/// `GET /settings/assets/{name}`: immutable for a year when asked for by this
/// binary's version, else revalidated by ETag.
#[utoipa::path(get, path = "/settings/assets/{name}", tag = "settings page",
    params(("name" = String, Path, description = "billing.js, billing.css or icon.svg")),
    responses(
        (status = 200, description = "The asset", content(
            (String = "text/javascript; charset=utf-8"), (String = "text/css; charset=utf-8"), (String = "image/svg+xml")
        )),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
        (status = 404, description = "No such asset, or the page is off", content_type = "application/problem+json", body = crate::error::Problem),
    ))]
pub async fn asset(
    billing: web::Data<Billing>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    enabled(&billing)?;
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name.as_str())
        .ok_or(ApiError::NotFound)?;
    let versioned = web::Query::<VersionQuery>::from_query(req.query_string())
        .is_ok_and(|query| query.v.as_deref() == Some(VERSION.as_str()));
    let cache = if versioned {
        CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(31_536_000),
            CacheDirective::Extension("immutable".into(), None),
        ])
    } else {
        CacheControl(vec![CacheDirective::NoCache])
    };
    let etag = format!("\"{}\"", VERSION.as_str());
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = secured(if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    });
    response
        .insert_header(cache)
        .insert_header((header::ETAG, etag));
    Ok(if unchanged {
        response.finish()
    } else {
        response
            .insert_header((header::CONTENT_TYPE, asset.content_type))
            .body(asset.body)
    })
}

#[derive(serde::Deserialize)]
struct VersionQuery {
    v: Option<String>,
}
