//! `token`: a development JWT signed with the configured secret.

use std::process::ExitCode;

use std::net::ToSocketAddrs;

use super::settings_page_link;
use crate::auth::{MintRequest, TokenIssuer};
use crate::cli::TokenArgs;
use crate::domain::TenantId;
use crate::settings::{local_origins, Settings};

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
    if !args.link {
        println!("{token}");
        return ExitCode::SUCCESS;
    }
    // The page on the configured listen address, as `serve` would bind it.
    let bound = settings
        .server
        .bind_addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next());
    match bound {
        Some(bound) if bound.port() != 0 => {
            println!("{}", settings_page_link(&local_origins(bound)[0], &token));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("tenant-billing: --link needs BIND_ADDR to name a host and a fixed port, e.g. 127.0.0.1:8080");
            ExitCode::from(2)
        }
    }
}
