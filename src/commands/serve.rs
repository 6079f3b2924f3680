//! `serve`: the HTTP API until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use super::runtime_failure;
use crate::cli::ServeArgs;
use crate::settings::{Settings, DEVELOPMENT_JWT_SECRET};
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
    let app = match Application::build(settings, options).await {
        Ok(app) => app,
        Err(error) => return runtime_failure(error),
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => runtime_failure(error),
    }
}
