//! The built binary as an operator meets it: defaults on a fresh machine,
//! `migrate`, the `token` command and configuration errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serial_test::file_serial;

use crate::backend_tests;
use crate::helpers::{binary, Backend, TestDatabase};

/// A `tenant-billing` command with an empty environment (but PATH), as on a
/// machine where nothing was configured.
pub(crate) fn bare_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(binary());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir)
        .stdin(Stdio::null());
    command
}

pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `url` until it answers 200 or the deadline passes.
pub(crate) async fn await_ok(url: &str, limit: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url).send().await {
            if response.status() == 200 {
                return true;
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[actix_web::test]
#[file_serial(port_8080)]
async fn cargo_run_on_a_fresh_machine_serves_on_the_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let child = bare_command(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut child = KillOnDrop(child);
    let ready = await_ok("http://127.0.0.1:8080/healthz", Duration::from_secs(30)).await;
    if !ready {
        let _ = child.0.kill();
        let mut log = String::new();
        if let Some(stderr) = child.0.stderr.take() {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.push_str(&line);
                log.push('\n');
            }
        }
        panic!("the binary did not answer /healthz on 127.0.0.1:8080:\n{log}");
    }
    assert!(
        dir.path().join("data/tenant-billing.db").is_file(),
        "data/tenant-billing.db was not created"
    );
    assert!(await_ok("http://127.0.0.1:8080/readyz", Duration::from_secs(5)).await);
}

async fn migrate_twice_applies_nothing_the_second_time(backend: Backend) {
    let database = TestDatabase::empty(backend);
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        bare_command(dir.path())
            .env("DATABASE_URL", &database.url)
            .arg("migrate")
            .output()
            .expect("run migrate")
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first_out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first_out.contains("applied "),
        "first run printed: {first_out}"
    );
    let second = run();
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "no pending migrations"
    );
}

backend_tests!(migrate_twice_applies_nothing_the_second_time);

#[test]
fn production_with_the_development_secret_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = bare_command(dir.path())
        .env("APP_ENV", "production")
        .env("STRIPE_SECRET_KEY", "sk_live_not_a_real_key_1234567890")
        .env("STRIPE_WEBHOOK_SECRET", "whsec_not_a_real_secret")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains("JWT_SECRET"), "stderr: {stderr}");
    assert!(
        !stderr.contains("sk_live_not_a_real_key"),
        "a secret leaked: {stderr}"
    );
}

#[test]
fn production_without_a_stripe_key_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = bare_command(dir.path())
        .env("APP_ENV", "production")
        .env(
            "JWT_SECRET",
            "a-production-grade-secret-of-enough-length-0123",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("STRIPE_SECRET_KEY"), "stderr: {stderr}");
    assert!(
        !stderr.contains("a-production-grade-secret"),
        "a secret leaked: {stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = bare_command(dir.path()).arg("frobnicate").output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let bad_tenant = bare_command(dir.path())
        .args(["token", "--tenant", "not valid!"])
        .output()
        .unwrap();
    assert_eq!(bad_tenant.status.code(), Some(2));
}

#[test]
fn the_token_command_mints_a_token_the_service_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let output = bare_command(dir.path())
        .args([
            "token", "--tenant", "acme", "--role", "admin", "--ttl", "60",
        ])
        .env("JWT_SECRET", crate::helpers::TEST_JWT_SECRET)
        .output()
        .unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap();
    let settings = crate::helpers::test_settings("sqlite://unused.db", &[]);
    let verifier = tenant_billing::auth::JwtVerifier::from_settings(&settings.auth).unwrap();
    let identity = actix_web::rt::System::new()
        .block_on(verifier.verify(token.trim()))
        .expect("the minted token verifies");
    assert_eq!(identity.tenant_id.as_str(), "acme");
    assert_eq!(identity.role, tenant_billing::domain::Role::Admin);
}

/// A log that is not read at a terminal (a file, a pipe to a supervisor)
/// carries no colour codes; JSON logs stay one object per line.
#[test]
fn logs_off_a_terminal_carry_no_colour_codes() {
    let server = crate::dev_server::DevServer::start(&[]);
    let log = server.log();
    assert!(log.contains("serving"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in: {log:?}");
    drop(server);

    let server = crate::dev_server::DevServer::start(&[("APP__TELEMETRY__FORMAT", "json")]);
    let log = server.log();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line:?}"));
        assert!(entry["level"].is_string(), "{line}");
    }
    assert!(!log.contains('\u{1b}'), "colour codes in: {log:?}");
}
