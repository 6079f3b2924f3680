//! The real binary as a child process: a service to SIGKILL, and operator
//! commands (`backfill-customers`, `reconcile`, `jobs …`) to run and time.
//! Also direct seeding of tenants and jobs for the outbox tests.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use stripe_sim::SimHandle;
use tenant_billing::db::jobs::{self, JobKind};
use tenant_billing::db::DbConnection;
use tenant_billing::domain::{Role, TenantId};

use crate::helpers::{binary, test_settings};

/// `tenant-billing ARGS` configured like a test instance: test layer, the
/// given database, the simulator as Stripe, plus `extra` variables.
pub fn command(
    database_url: &str,
    sim: &SimHandle,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .env("APP_ENV", "test")
        .env("JWT_SECRET", crate::helpers::TEST_JWT_SECRET)
        .env("DATABASE_URL", database_url)
        .env("STRIPE_SECRET_KEY", "sk_test_child")
        .env("STRIPE_API_BASE", sim.base_url())
        .env("STRIPE_WEBHOOK_SECRET", sim.webhook_secret())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (key, value) in extra {
        command.env(key, value);
    }
    command
}

/// Runs a command to completion; panics with its output if it fails.
pub fn run_ok(mut command: Command) -> String {
    let output: Output = command.output().expect("run tenant-billing");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A `serve` child; SIGKILLed when dropped.
pub struct ChildService {
    process: std::process::Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl ChildService {
    /// Starts `serve` on a free port and waits until it answers `/healthz`.
    pub async fn start(
        database_url: &str,
        sim: &SimHandle,
        extra: &[(&str, &str)],
    ) -> ChildService {
        let port = crate::pg::free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut all = vec![("BIND_ADDR", bind.as_str())];
        all.extend_from_slice(extra);
        // TB_CHILD_LOGS=1 shows the child's log when debugging a test.
        let stderr = if std::env::var_os("TB_CHILD_LOGS").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let process = command(database_url, sim, &["serve"], &all)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn the service");
        let service = ChildService {
            process,
            base: format!("http://127.0.0.1:{port}"),
            // A fresh connection per request: no keep-alive race with the
            // server closing an idle connection as a request goes out.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while service
            .client
            .get(format!("{}/healthz", service.base))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the child service did not start");
            actix_web::rt::time::sleep(Duration::from_millis(30)).await;
        }
        service
    }

    /// SIGTERM, then waits up to `limit` for the process to exit; its status.
    pub async fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal_term();
        self.wait_exit(limit).await
    }

    /// Sends SIGTERM (what a deploy or `kubectl delete pod` sends).
    pub fn signal_term(&self) {
        let pid = self.process.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
    }

    /// Waits up to `limit` for the process to exit; its status.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.try_wait().expect("wait for the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not exit within {limit:?}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown code runs, in-flight work is cut anywhere.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for ChildService {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An admin token for `tenant`, signed with the test secret.
pub fn admin_token(tenant: &str) -> String {
    let settings = test_settings("sqlite://unused.db", &[]);
    tenant_billing::auth::TokenIssuer::from_settings(&settings.auth).mint(
        &tenant_billing::auth::MintRequest {
            tenant,
            role: Role::Admin,
            sub: "user-1",
            email: Some("owner@example.com"),
            ttl_seconds: 600,
        },
    )
}

/// Inserts tenant rows (no customer) named `{prefix}{i:04}`; with `job`, each
/// also gets an `ensure_customer` job in the same transaction, like a signup.
pub fn seed_tenants(conn: &mut DbConnection, prefix: &str, count: usize, job: bool) -> Vec<String> {
    let now = chrono::Utc::now().naive_utc();
    (0..count)
        .map(|i| {
            let name = format!("{prefix}{i:04}");
            let tenant = TenantId::parse(&name).unwrap();
            tenant_billing::db::tenants::upsert_profile(
                conn,
                &tenant,
                &format!("billing@{name}.test"),
                None,
                None,
                now,
                |conn, _, _| {
                    if job {
                        jobs::enqueue(conn, JobKind::EnsureCustomer, &tenant, now, now)?;
                    }
                    Ok(())
                },
            )
            .unwrap();
            name
        })
        .collect()
}

/// Every job, newest first.
pub fn all_jobs(conn: &mut DbConnection) -> Vec<jobs::JobRecord> {
    jobs::list(conn, None, 100_000).unwrap()
}

/// Polls `condition` every 50 ms until it holds; false at the deadline.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Tenant → linked customer for every row.
pub fn links(conn: &mut DbConnection) -> Vec<(String, Option<String>)> {
    tenant_billing::db::tenants::list_all(conn, false)
        .unwrap()
        .into_iter()
        .map(|r| (r.tenant_id, r.stripe_customer_id))
        .collect()
}

/// The tenant's open customer-creation claim, read directly.
pub fn customer_claim(
    conn: &mut DbConnection,
    tenant: &str,
) -> Option<tenant_billing::db::leases::Lease> {
    let tenant = TenantId::parse(tenant).unwrap();
    tenant_billing::db::leases::customer_claim(conn, &tenant).unwrap()
}
