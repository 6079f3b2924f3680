use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::JwtVerifier;
use crate::billing::Billing;
use crate::db;

/// Liveness: the process answers. Never touches the database.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers a query now and, with a JWKS, its keys
/// were fetched. A load balancer stops routing to an instance that says 503
/// and resumes when it is ready again.
pub async fn readyz(billing: web::Data<Billing>, verifier: web::Data<JwtVerifier>) -> HttpResponse {
    if !verifier.ready() {
        return HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "auth": "no signing keys yet" }));
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
