//! `serve`: the HTTP API until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use super::{runtime_failure, settings_page_link};
use crate::auth::{MintRequest, TokenIssuer};
use crate::cli::ServeArgs;
use crate::domain::Role;
use crate::settings::{AppEnv, Settings, DEVELOPMENT_JWT_SECRET};
use crate::startup::{Application, BuildOptions};

pub(super) async fn serve(args: ServeArgs, settings: Settings) -> ExitCode {
    if secrecy::ExposeSecret::expose_secret(&settings.auth.jwt_secret) == DEVELOPMENT_JWT_SECRET {
        tracing::warn!(
            "JWT_SECRET is not set: using the development secret (refused in production)"
        );
    }
    let options = BuildOptions {
        migrate: !args.no_migrate,
    };
    let link_issuer = development_link_issuer(&settings);
    let app = match Application::build(settings, options).await {
        Ok(app) => app,
        Err(error) => return runtime_failure(error),
    };
    if let Some((issuer, ttl_seconds)) = link_issuer {
        let token = issuer.mint(&MintRequest {
            tenant: "acme",
            role: Role::Admin,
            sub: "dev-admin",
            email: Some("owner@acme.test"),
            ttl_seconds,
        });
        let link = settings_page_link(app.origin(), &token);
        tracing::info!("billing settings page for tenant acme (admin): {link}");
    }
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => runtime_failure(error),
    }
}

/// In development, the issuer for the ready link `serve` logs, so that a
/// newcomer's `cargo run` ends in a page they can click through; `None` where
/// a minted HS256 token would not be accepted or the page is off.
fn development_link_issuer(settings: &Settings) -> Option<(TokenIssuer, u64)> {
    let accepts_hs256 = settings.auth.algorithms.iter().any(|a| a == "HS256");
    (settings.app_env == AppEnv::Development && settings.billing.settings_page && accepts_hs256)
        .then(|| {
            (
                TokenIssuer::from_settings(&settings.auth),
                settings.auth.default_token_ttl_seconds,
            )
        })
}
