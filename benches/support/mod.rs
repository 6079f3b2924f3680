//! What every bench's service shares: a test environment on loopback
//! against the simulator with quiet logs, built and run in the bench's own
//! runtime. A bench adds its own settings to `service_vars`.

use std::collections::HashMap;

use stripe_sim::SimHandle;
use tenant_billing::settings::Settings;
use tenant_billing::startup::{Application, BuildOptions};

/// The service's environment for `database_url`, not yet pointed at a
/// simulator (`point_at`): some benches seed the simulator from settings.
pub fn service_vars(database_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("APP_ENV".into(), "test".into()),
        // Outside development the compiled-in secret is refused.
        (
            "JWT_SECRET".into(),
            "tenant-billing-bench-secret-0123456789abcdef".into(),
        ),
        ("DATABASE_URL".into(), database_url.into()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("STRIPE_SECRET_KEY".into(), "sk_test_bench".into()),
        ("APP__TELEMETRY__LEVEL".into(), "error".into()),
    ])
}

/// Points `vars` at `sim` (its API and webhook secret).
pub fn point_at(vars: &mut HashMap<String, String>, sim: &SimHandle) {
    vars.insert("STRIPE_API_BASE".into(), sim.base_url());
    vars.insert("STRIPE_WEBHOOK_SECRET".into(), sim.webhook_secret());
}

/// `service_vars` pointed at `sim`, with `extra` on top.
pub fn settings(database_url: &str, sim: &SimHandle, extra: &[(&str, &str)]) -> Settings {
    let mut vars = service_vars(database_url);
    point_at(&mut vars, sim);
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_from(&vars, None).expect("bench settings")
}

/// Builds the service (migrating) and runs it in this runtime: its base URL
/// and the handle that stops it.
pub async fn serve(settings: Settings) -> (String, actix_web::dev::ServerHandle) {
    let app = Application::build(settings, BuildOptions { migrate: true })
        .await
        .expect("build the service");
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    (base, handle)
}
