//! Builds the running service from settings: pool, migrations, routes, listener.
//! Tests use the same path with port 0 and read the real port back.

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing_actix_web::{RequestId, TracingLogger};

use crate::auth::JwtVerifier;
use crate::billing::Billing;
use crate::db::{self, DbPool};
use crate::routes;
use crate::settings::Settings;
use crate::telemetry::TenantRootSpan;

/// Whether `build` applies pending migrations (`serve --no-migrate` skips them).
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    pub migrate: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { migrate: true }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    pool: DbPool,
}

impl Application {
    pub async fn build(settings: Settings, options: BuildOptions) -> anyhow::Result<Application> {
        let pool = db::build_pool(&settings.database);
        if options.migrate {
            let applied = apply_migrations(&pool).await?;
            for version in &applied {
                tracing::info!(version, "applied migration");
            }
        }
        let verifier = JwtVerifier::from_settings(&settings.auth).map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(&settings.server.bind_addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.bind_addr))?;
        let port = listener.local_addr()?.port();
        let billing = web::Data::new(Billing::new(pool.clone()));
        let verifier = web::Data::new(verifier);
        let max_body = settings.server.max_body_bytes;

        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::<TenantRootSpan>::new())
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_body)
                        .error_handler(routes::errors::json_error),
                )
                .app_data(web::PayloadConfig::new(max_body))
                .app_data(billing.clone())
                .app_data(verifier.clone())
                .configure(routes::configure)
                .default_service(web::to(routes::errors::not_found))
        })
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.disable_signals().run();
        tracing::info!(
            address = %settings.server.bind_addr,
            port,
            database = db::Backend::from_url(secrecy::ExposeSecret::expose_secret(&settings.database.url))
                .map(|b| b.name())
                .unwrap_or("unknown"),
            "serving"
        );
        Ok(Application { port, server, pool })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// A handle to stop the server gracefully (tests, signal handling).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped by `handle().stop(..)` or Ctrl-C / SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = self.server;
        tokio::select! {
            result = server => result,
            _ = shutdown_signal() => {
                tracing::info!("shutting down");
                handle.stop(true).await;
                Ok(())
            }
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Applies pending migrations off the async workers; returns the versions applied.
pub async fn apply_migrations(pool: &DbPool) -> anyhow::Result<Vec<String>> {
    let pool = pool.clone();
    web::block(move || -> anyhow::Result<Vec<String>> {
        let mut conn = pool
            .get()
            .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
        db::migrations::run_pending(&mut conn).map_err(|e| anyhow::anyhow!("migration failed: {e}"))
    })
    .await
    .map_err(|_| anyhow::anyhow!("migration task aborted"))?
}

/// Returns the request id (the same one in the logs) as `x-request-id`.
async fn echo_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req.extensions().get::<RequestId>().copied();
    let mut response = next.call(req).await?;
    if let Some(id) = request_id {
        if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-request-id"), value);
        }
    }
    Ok(response)
}
