use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::JwtVerifier;
use crate::billing::Billing;
use crate::shutdown::Drain;

/// `GET /healthz`'s answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`'s answer: what is ready, or what is not.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `unavailable`, or `draining` (stopping after SIGTERM).
    pub status: &'static str,
    /// `ok` or `unreachable`, when the database was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// Why tokens cannot be checked yet, when that is the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<&'static str>,
}

/// Liveness: the process answers. Never touches the database.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers a query now and, with a JWKS, its keys
/// were fetched. A load balancer stops routing to an instance that says 503
/// and resumes when it is ready again. A draining instance (SIGTERM) says
/// 503 at once, whatever the database says.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready: the database is unreachable the identity provider's keys were never fetched, or the instance is draining", body = Readiness),
    ))]
pub async fn readyz(
    billing: web::Data<Billing>,
    verifier: web::Data<JwtVerifier>,
    drain: Option<web::Data<Drain>>,
) -> HttpResponse {
    if drain.is_some_and(|d| d.is_draining()) {
        return HttpResponse::ServiceUnavailable().json(Readiness {
            status: "draining",
            database: None,
            auth: None,
        });
    }
    if !verifier.ready() {
        return HttpResponse::ServiceUnavailable().json(Readiness {
            status: "unavailable",
            database: None,
            auth: Some("no signing keys yet"),
        });
    }
    match billing.ping_database().await {
        Ok(()) => HttpResponse::Ok().json(Readiness {
            status: "ready",
            database: Some("ok"),
            auth: None,
        }),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(Readiness {
                status: "unavailable",
                database: Some("unreachable"),
                auth: None,
            })
        }
    }
}
