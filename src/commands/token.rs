//! `token`: a development JWT signed with the configured secret.

use std::process::ExitCode;

use crate::auth::{MintRequest, TokenIssuer};
use crate::cli::TokenArgs;
use crate::domain::TenantId;
use crate::settings::Settings;

pub(super) fn token(args: TokenArgs, settings: Settings) -> ExitCode {
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
