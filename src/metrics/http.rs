//! The HTTP families, recorded once per request by an app-level middleware.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;

use super::{HttpMethod, Metrics, UNMATCHED_ROUTE};

/// `from_fn` middleware: counts and times every request under its route
/// template (`/v1/tenants/{tenant_id}/billing`), never the raw path, so no
/// tenant id reaches a label. Registered only when `metrics.enabled`.
pub async fn record_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = HttpMethod::from(req.method());
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let (route, status) = match &result {
            Ok(response) => (
                response.request().match_pattern(),
                response.status().as_u16(),
            ),
            Err(error) => (None, error.as_response_error().status_code().as_u16()),
        };
        metrics.observe_http(
            method,
            route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned()),
            status,
            started.elapsed().as_secs_f64(),
        );
    }
    result
}

impl From<&Method> for HttpMethod {
    fn from(method: &Method) -> Self {
        match *method {
            Method::GET => HttpMethod::GET,
            Method::POST => HttpMethod::POST,
            Method::PUT => HttpMethod::PUT,
            Method::PATCH => HttpMethod::PATCH,
            Method::DELETE => HttpMethod::DELETE,
            Method::HEAD => HttpMethod::HEAD,
            Method::OPTIONS => HttpMethod::OPTIONS,
            _ => HttpMethod::OTHER,
        }
    }
}
