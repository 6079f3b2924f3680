//! Subcommand implementations. Each returns the process exit status of SPEC §1:
//! 0 success, 1 runtime failure, 2 usage or configuration error.

use std::process::ExitCode;

use crate::auth::{MintRequest, TokenIssuer};
use crate::cli::{Command, ServeArgs, TokenArgs};
use crate::db;
use crate::domain::TenantId;
use crate::settings::{Settings, DEVELOPMENT_JWT_SECRET};
use crate::startup::{self, Application, BuildOptions};

pub async fn dispatch(command: Option<Command>, settings: Settings) -> ExitCode {
    match command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args, settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Token(args) => token(args, settings),
    }
}

fn runtime_failure(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("tenant-billing: {error}");
    ExitCode::from(1)
}

async fn serve(args: ServeArgs, settings: Settings) -> ExitCode {
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

async fn migrate(settings: Settings) -> ExitCode {
    let pool = db::build_pool(&settings.database);
    match startup::apply_migrations(&pool).await {
        Ok(applied) if applied.is_empty() => {
            println!("no pending migrations");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            for version in applied {
                println!("applied {version}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => runtime_failure(format!(
            "{error}; check DATABASE_URL and that the database is running"
        )),
    }
}

fn token(args: TokenArgs, settings: Settings) -> ExitCode {
    if TenantId::parse(&args.tenant).is_err() {
        eprintln!("tenant-billing: --tenant must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'");
        return ExitCode::from(2);
    }
    let issuer = TokenIssuer::from_settings(&settings.auth);
    let token = issuer.mint(&MintRequest {
        tenant: &args.tenant,
        role: args.role,
        sub: &args.sub,
        email: args.email.as_deref(),
        ttl_seconds: args.ttl.unwrap_or(settings.auth.default_token_ttl_seconds),
    });
    println!("{token}");
    ExitCode::SUCCESS
}
