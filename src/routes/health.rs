use std::future::Future;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
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

/// How long one database check answers `/readyz`. Load balancers and
/// orchestrators probe every instance every few seconds, several of them at
/// once; without this each probe was a pooled query.
pub const READINESS_TTL: Duration = Duration::from_secs(1);

/// The last database check and when it ran. Callers that find it stale
/// while another is checking wait for that check (one query, not one per
/// probe); a failure is remembered as long as a success.
#[derive(Default)]
pub struct ReadinessProbe {
    last: Mutex<Option<(Instant, bool)>>,
}

impl ReadinessProbe {
    /// Whether the database answered within the last `READINESS_TTL`,
    /// running `check` when that is not known.
    pub async fn database_ok<F, Fut>(&self, check: F) -> bool
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = bool>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last {
            if at.elapsed() < READINESS_TTL {
                return ok;
            }
        }
        let ok = check().await;
        *last = Some((Instant::now(), ok));
        ok
    }
}

/// Liveness: the process answers. Never touches the database.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answered a query within the last second and,
/// with a JWKS, its keys were fetched. A load balancer stops routing to an instance that says 503
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
    probe: web::Data<ReadinessProbe>,
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
    let ping = || async {
        billing
            .ping_database()
            .await
            .inspect_err(|error| tracing::warn!(error = %error, "readiness check failed"))
            .is_ok()
    };
    if probe.database_ok(ping).await {
        HttpResponse::Ok().json(Readiness {
            status: "ready",
            database: Some("ok"),
            auth: None,
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Readiness {
            status: "unavailable",
            database: Some("unreachable"),
            auth: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn probes_within_a_second_share_one_check() {
        let probe = ReadinessProbe::default();
        let checks = AtomicUsize::new(0);
        let check = || async {
            checks.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            true
        };
        let answers =
            futures_util::future::join_all((0..20).map(|_| probe.database_ok(check))).await;
        assert!(answers.into_iter().all(|ok| ok));
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(900)).await;
        assert!(probe.database_ok(check).await);
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        tokio::time::advance(READINESS_TTL).await;
        assert!(probe.database_ok(check).await);
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_remembered_as_briefly_as_a_success() {
        let probe = ReadinessProbe::default();
        assert!(!probe.database_ok(|| async { false }).await);
        assert!(!probe.database_ok(|| async { true }).await);
        tokio::time::advance(READINESS_TTL).await;
        assert!(probe.database_ok(|| async { true }).await);
    }
}
