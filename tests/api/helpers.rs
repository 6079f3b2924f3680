//! `spawn_app`: the real service on port 0 with a fresh database, plus typed
//! request helpers. Every API test runs once per backend (see `backend_tests!`).

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use actix_web::dev::ServerHandle;
use stripe_sim::{SimConfig, SimHandle};
use tempfile::TempDir;
use tenant_billing::auth::{MintRequest, TokenIssuer};
use tenant_billing::domain::Role;
use tenant_billing::settings::Settings;
use tenant_billing::startup::{Application, BuildOptions};

use crate::pg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod sqlite { … }` and `mod postgres { … }`, each with one
/// `#[actix_web::test]` per listed `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A database for one test; a SQLite file lives as long as this value.
pub struct TestDatabase {
    pub url: String,
    pub _dir: Option<TempDir>,
}

impl TestDatabase {
    /// A fresh database with every migration applied.
    pub fn migrated(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let db = TestDatabase::empty(backend);
                let mut conn = tenant_billing::db::DbConnection::Sqlite(
                    diesel::Connection::establish(db.sqlite_path().to_str().unwrap()).unwrap(),
                );
                tenant_billing::db::migrations::run_pending(&mut conn).unwrap();
                db
            }
            Backend::Postgres => TestDatabase {
                url: pg::server().migrated_database(),
                _dir: None,
            },
        }
    }

    /// A fresh database with no tables.
    pub fn empty(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}/test.db", dir.path().display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => TestDatabase {
                url: pg::server().empty_database(),
                _dir: None,
            },
        }
    }

    /// Another handle on the same database (a second instance); owns nothing.
    pub fn shared(&self) -> TestDatabase {
        TestDatabase {
            url: self.url.clone(),
            _dir: None,
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        PathBuf::from(self.url.trim_start_matches("sqlite://"))
    }
}

/// The HS256 secret test instances verify with. Outside `development` the
/// compiled-in development secret is refused, so the tests bring their own.
pub const TEST_JWT_SECRET: &str = "tenant-billing-tests-secret-0123456789abcdef";

/// Settings for a test app: the `test` layer plus these overrides.
pub fn test_settings(database_url: &str, overrides: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("APP_ENV".into(), "test".into()),
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        ("DATABASE_URL".into(), database_url.into()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("APP__SERVER__WORKERS".into(), "2".into()),
        ("APP__DATABASE__CONNECTION_TIMEOUT_MS".into(), "1000".into()),
    ]);
    for (key, value) in overrides {
        vars.insert((*key).into(), (*value).into());
    }
    Settings::load_from(&vars, None).expect("test settings are valid")
}

/// A running service. It runs on its own thread and runtime, like a separate
/// instance would, and is stopped (releasing its database connections) on drop.
pub struct TestApp {
    pub address: String,
    /// The Stripe this instance talks to: a simulator owned by the test, so it
    /// outlives instances and several instances can share it.
    pub sim: SimHandle,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub database: TestDatabase,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the service on a fresh, migrated database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(TestDatabase::migrated(backend), &[]).await
}

/// A fresh simulator seeded with the configured plans' prices.
pub fn start_sim() -> SimHandle {
    SimHandle::start(sim_config()).expect("start stripe-sim")
}

/// The simulator configuration `start_sim` uses: the shipped plans' prices
/// seeded, quick webhook retries.
pub fn sim_config() -> SimConfig {
    let settings = test_settings("sqlite://unused.db", &[]);
    let (prices, price_currency_options) =
        tenant_billing::startup::simulator_prices(&settings.catalog);
    SimConfig {
        prices,
        price_currency_options,
        webhook_retry_base_ms: 20,
        ..SimConfig::default()
    }
}

/// `sim_config` plus the metered prices (and their meters) the settings with
/// `overrides` configure, as the in-process simulator would seed them.
pub fn sim_config_with(overrides: &[(&str, &str)]) -> SimConfig {
    let settings = test_settings("sqlite://unused.db", overrides);
    SimConfig {
        metered_prices: tenant_billing::startup::metered_price_seeds(&settings),
        invoice_grace_seconds: settings.usage.stripe_grace_seconds,
        ..sim_config()
    }
}

/// Starts the service on `database` with extra setting overrides and its own simulator.
pub async fn spawn_app_with(database: TestDatabase, overrides: &[(&str, &str)]) -> TestApp {
    spawn_instance(database, start_sim(), overrides).await
}

/// Starts one service instance on `database` talking to `sim`: call it twice
/// with the same database URL and simulator for two instances.
pub async fn spawn_instance(
    database: TestDatabase,
    sim: SimHandle,
    overrides: &[(&str, &str)],
) -> TestApp {
    let base = sim.base_url();
    let secret = sim.webhook_secret();
    let mut all: Vec<(&str, &str)> = vec![
        ("STRIPE_SECRET_KEY", "sk_test_tenant_billing_tests"),
        ("STRIPE_API_BASE", &base),
        ("STRIPE_WEBHOOK_SECRET", &secret),
    ];
    all.extend_from_slice(overrides);
    let settings = test_settings(&database.url, &all);
    // Logs (warn and above by default; RUST_LOG overrides) help when a test fails.
    tenant_billing::telemetry::init(&settings.telemetry);
    let (sender, receiver) = std::sync::mpsc::channel();
    let build_settings = settings.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(build_settings, BuildOptions { migrate: true })
                .await
                .expect("the application builds");
            sender.send((app.port(), app.handle())).unwrap();
            app.run_until_stopped().await.expect("the server runs");
        })
    });
    let (port, handle) = receiver.recv().expect("the application started");
    sim.set_webhook_url(Some(format!("http://127.0.0.1:{port}/v1/stripe/webhook")));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        settings,
        database,
        sim,
        handle,
        thread: Some(thread),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // The server lives on another runtime; stop it from a plain thread.
        let stopper = std::thread::spawn(move || futures_executor_stop(handle));
        let _ = stopper.join();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn futures_executor_stop(handle: ServerHandle) {
    actix_web::rt::System::new().block_on(handle.stop(false));
}

impl TestApp {
    /// A direct connection to this app's database, for assertions on stored state.
    pub fn db(&self) -> tenant_billing::db::DbConnection {
        tenant_billing::db::establish(&self.database.url, 5000)
            .expect("connect to the test database")
    }

    /// A valid HS256 token for `tenant` with `role`.
    pub fn token(&self, tenant: &str, role: Role) -> String {
        TokenIssuer::from_settings(&self.settings.auth).mint(&MintRequest {
            tenant,
            role,
            sub: "user-1",
            email: Some("owner@example.com"),
            ttl_seconds: 600,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// POSTs JSON to a tenant billing route, e.g. `post("acme", "checkout", …)`.
    pub async fn post(
        &self,
        tenant: &str,
        route: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(&format!("/v1/tenants/{tenant}/billing/{route}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn put_profile(
        &self,
        tenant: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/v1/tenants/{tenant}/billing/profile")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// The tenant's stored row, read directly from the database.
    pub fn row(&self, tenant: &str) -> Option<tenant_billing::db::tenants::TenantRecord> {
        let tenant = tenant_billing::domain::TenantId::parse(tenant).unwrap();
        tenant_billing::db::tenants::find(&mut self.db(), &tenant).unwrap()
    }

    /// The tenant's open customer-creation claim, read directly from the database.
    pub fn customer_claim(&self, tenant: &str) -> Option<tenant_billing::db::leases::Lease> {
        let tenant = tenant_billing::domain::TenantId::parse(tenant).unwrap();
        tenant_billing::db::leases::customer_claim(&mut self.db(), &tenant).unwrap()
    }

    /// The webhook ledger as `(event type, status)`, oldest first.
    pub fn ledger(&self) -> Vec<tenant_billing::db::events::LedgerRow> {
        tenant_billing::db::events::list(&mut self.db()).unwrap()
    }

    /// The tenant's audit entries as `action:outcome`, oldest first.
    pub fn audit(&self, tenant: &str) -> Vec<String> {
        let tenant = tenant_billing::domain::TenantId::parse(tenant).unwrap();
        tenant_billing::db::audit::for_tenant(&mut self.db(), &tenant)
            .unwrap()
            .into_iter()
            .map(|e| format!("{}:{}", e.action, e.outcome))
            .collect()
    }

    pub async fn get_billing(&self, tenant: &str, token: &str) -> reqwest::Response {
        self.get(&format!("/v1/tenants/{tenant}/billing"), Some(token))
            .await
    }

    /// The tenant's billing state as a member reads it.
    pub async fn billing_state(&self, tenant: &str) -> serde_json::Value {
        let token = self.token(tenant, Role::Member);
        let response = self.get_billing(tenant, &token).await;
        assert_eq!(response.status(), 200, "GET billing for {tenant}");
        response.json().await.unwrap()
    }

    /// Clicks Upgrade to Pro and pays at the simulator; returns the
    /// subscription id. Webhooks follow asynchronously (`await_webhooks`).
    pub async fn upgrade_and_pay(&self, tenant: &str) -> String {
        let token = self.token(tenant, Role::Admin);
        let response = self
            .post(
                tenant,
                "checkout",
                &token,
                Some(serde_json::json!({"plan": "pro"})),
            )
            .await;
        assert_eq!(response.status(), 201);
        let session: serde_json::Value = response.json().await.unwrap();
        let subscription = self
            .sim
            .complete_checkout(session["checkout_session_id"].as_str().unwrap())
            .unwrap();
        subscription["id"].as_str().unwrap().to_owned()
    }

    /// Opens a Checkout for `plan` (with `quantity` seats if given) as an
    /// admin; returns the answer.
    pub async fn checkout(
        &self,
        tenant: &str,
        plan: &str,
        quantity: Option<u64>,
    ) -> reqwest::Response {
        let token = self.token(tenant, Role::Admin);
        let mut body = serde_json::json!({ "plan": plan });
        if let Some(quantity) = quantity {
            body["quantity"] = quantity.into();
        }
        self.post(tenant, "checkout", &token, Some(body)).await
    }

    /// Checkout for `plan` paid at the simulator; returns the subscription.
    /// Webhooks follow asynchronously (`await_webhooks`), if delivered.
    pub async fn subscribe(&self, tenant: &str, plan: &str, quantity: Option<u64>) -> Value {
        let response = self.checkout(tenant, plan, quantity).await;
        assert_eq!(response.status(), 201, "checkout for {plan}");
        let session: Value = response.json().await.unwrap();
        self.sim
            .complete_checkout(session["checkout_session_id"].as_str().unwrap())
            .unwrap()
    }

    /// `subscribe`, then waits for its webhooks and checks the service shows
    /// `plan`; returns the subscription.
    pub async fn subscribed(&self, tenant: &str, plan: &str, quantity: Option<u64>) -> Value {
        let subscription = self.subscribe(tenant, plan, quantity).await;
        self.await_webhooks().await;
        assert_eq!(self.billing_state(tenant).await["plan"], plan);
        subscription
    }

    /// Every request the simulator has answered so far, whatever the endpoint.
    pub fn stripe_requests_total(&self) -> u64 {
        self.sim.stats().requests.values().sum()
    }

    /// `POST …/billing/subscription/{action}` as an admin (`change` takes
    /// `body`, `cancel` and `resume` none).
    pub async fn subscription(
        &self,
        tenant: &str,
        action: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let token = self.token(tenant, Role::Admin);
        self.post(tenant, &format!("subscription/{action}"), &token, body)
            .await
    }

    /// Changes the plan and expects 200; returns the billing state answered.
    pub async fn change_plan(&self, tenant: &str, plan: &str) -> Value {
        let response = self
            .subscription(tenant, "change", Some(serde_json::json!({ "plan": plan })))
            .await;
        assert_eq!(response.status(), 200, "change to {plan}");
        response.json().await.unwrap()
    }

    /// `POST …/billing/sync` as an admin; expects 200 and returns the state.
    pub async fn sync(&self, tenant: &str) -> Value {
        let token = self.token(tenant, Role::Admin);
        let response = self.post(tenant, "sync", &token, None).await;
        assert_eq!(response.status(), 200, "sync {tenant}");
        response.json().await.unwrap()
    }

    /// `GET …/billing/{resource}` as a member; expects 200.
    pub async fn read(&self, tenant: &str, resource: &str) -> Value {
        let token = self.token(tenant, Role::Member);
        let response = self
            .get(
                &format!("/v1/tenants/{tenant}/billing/{resource}"),
                Some(&token),
            )
            .await;
        assert_eq!(response.status(), 200, "GET {resource}");
        response.json().await.unwrap()
    }

    /// The tenant's audit entries as stored, oldest first.
    pub fn audit_records(&self, tenant: &str) -> Vec<tenant_billing::db::audit::AuditRecord> {
        let tenant = tenant_billing::domain::TenantId::parse(tenant).unwrap();
        tenant_billing::db::audit::for_tenant(&mut self.db(), &tenant).unwrap()
    }

    /// How many times the simulator served `key` (`"POST /v1/subscriptions/{id}"`).
    pub fn stripe_requests(&self, key: &str) -> u64 {
        self.sim.stats().requests.get(key).copied().unwrap_or(0)
    }

    /// A form POST straight to the simulator's API (what a Stripe dashboard
    /// user or another integration would do); returns the object.
    pub async fn stripe_post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.sim.base_url()))
            .bearer_auth("sk_test_dashboard")
            .form(form)
            .send()
            .await
            .expect("request sent");
        assert!(response.status().is_success(), "POST {path}");
        response.json().await.unwrap()
    }

    /// The customer's invoices with Stripe's `billing_reason` (e.g.
    /// `subscription_update` for a prorated plan change), newest first.
    pub fn invoices_for(&self, customer: &str, reason: &str) -> Vec<Value> {
        self.sim
            .invoices(customer)
            .into_iter()
            .filter(|invoice| invoice["billing_reason"] == reason)
            .collect()
    }

    /// Every simulator event so far, oldest first.
    pub fn events_oldest_first(&self) -> Vec<Value> {
        let mut events = self.sim.events();
        events.reverse();
        events
    }

    /// Delivers `payload` to the webhook endpoint, signed now as Stripe would.
    pub async fn deliver_event(&self, payload: &str) -> reqwest::Response {
        let signature = stripe_sim::signature_header(
            &self.sim.webhook_secret(),
            chrono::Utc::now().timestamp(),
            payload,
        );
        self.client
            .post(self.url("/v1/stripe/webhook"))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(payload.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    /// Waits until the simulator has delivered every webhook it owes.
    pub async fn await_webhooks(&self) {
        assert!(
            self.sim
                .wait_webhooks_idle(std::time::Duration::from_secs(10))
                .await,
            "webhooks were not all delivered"
        );
    }
}

/// The row for plan `id` in a `GET …/billing/plans` answer.
pub fn plan_row<'a>(plans: &'a Value, id: &str) -> &'a Value {
    plans["plans"]
        .as_array()
        .expect("a plans list")
        .iter()
        .find(|plan| plan["id"] == id)
        .unwrap_or_else(|| panic!("no plan {id} in {plans}"))
}

/// Asserts a problem+json answer with `status` and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    // The id an operator greps the logs for, on every error answer.
    assert!(
        response.headers().contains_key("x-request-id"),
        "a {status} answer without x-request-id"
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

/// The path of the built `tenant-billing` binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tenant-billing")
}
