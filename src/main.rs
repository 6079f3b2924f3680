use std::process::ExitCode;

use clap::Parser;
use tenant_billing::cli::Cli;
use tenant_billing::commands;
use tenant_billing::settings::Settings;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("tenant-billing: {error}");
            return ExitCode::from(2);
        }
    };
    tenant_billing::telemetry::init(&settings.telemetry);
    commands::dispatch(cli.command, settings).await
}
