//! Command-line interface (SPEC §1). No subcommand means `serve`.

use clap::{Args, Parser, Subcommand};

use crate::domain::Role;

#[derive(Debug, Parser)]
#[command(
    name = "tenant-billing",
    version,
    about = "Multi-tenant billing: exactly one Stripe customer per tenant"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (applies pending migrations first).
    Serve(ServeArgs),
    /// Apply pending migrations to DATABASE_URL and exit.
    Migrate,
    /// Print an HS256 JWT signed with the configured secret (development and tests).
    Token(TokenArgs),
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Do not apply pending migrations before serving.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant the token is scoped to.
    #[arg(long)]
    pub tenant: String,
    #[arg(long, value_enum, default_value_t = Role::Member)]
    pub role: Role,
    /// The user id (`sub` claim).
    #[arg(long, default_value = "dev-user")]
    pub sub: String,
    #[arg(long)]
    pub email: Option<String>,
    /// Lifetime in seconds (default: auth.default_token_ttl_seconds).
    #[arg(long)]
    pub ttl: Option<u64>,
}
