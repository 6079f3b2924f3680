//! `GET /metrics`: the Prometheus scrape endpoint (README, Metrics).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;

use crate::billing::Billing;
use crate::error::ApiError;
use crate::metrics;

/// 404 when `metrics.enabled` is false; 401 without the configured bearer
/// token. The gauges read at scrape time (jobs by state, pool usage) are
/// refreshed first; a database that does not answer leaves `jobs` as last seen.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "`metrics.bearer_token` is set and was not sent", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 404, description = "`metrics.enabled` is false", content_type = "application/problem+json", body = crate::error::Problem),
    ))]
pub async fn scrape(
    req: HttpRequest,
    billing: web::Data<Billing>,
) -> Result<HttpResponse, ApiError> {
    let settings = &billing.settings().metrics;
    if !settings.enabled {
        return Err(ApiError::NotFound);
    }
    if let Some(expected) = &settings.bearer_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), expected.expose_secret().as_bytes()) {
            return Err(ApiError::Unauthorized(
                "the metrics bearer token is required",
            ));
        }
    }
    let text = billing.scrape_metrics().await;
    Ok(HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(text))
}

/// Compares without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
