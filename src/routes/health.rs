use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::billing::Billing;
use crate::db;
use crate::shutdown::Drain;

/// Liveness: the process answers. Never touches the database.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers a query now. A load balancer stops routing
/// to an instance that says 503 and resumes when the database is back.
/// A draining instance (SIGTERM) says 503 at once, whatever the database says.
pub async fn readyz(billing: web::Data<Billing>, drain: Option<web::Data<Drain>>) -> HttpResponse {
    if drain.is_some_and(|d| d.is_draining()) {
        return HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "draining", "database": "not checked" }));
    }
    match db::interact(billing.pool(), db::ping).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "database": "unreachable" }))
        }
    }
}
