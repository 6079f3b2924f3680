//! `POST …/billing/sync` and `tenant-billing sync`: a Checkout whose webhooks
//! never arrive is repaired from Stripe's own state; `sync --all` keeps to
//! its rate, and running it again changes nothing.

use std::time::{Duration, Instant};

use serde_json::Value;
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::child::{command, run_ok};
use crate::helpers::{assert_problem, spawn_app, Backend};

async fn a_checkout_whose_webhooks_never_arrive_is_repaired_by_sync(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sim.set_webhook_url(None);
    app.subscribe("acme", "pro", None).await;
    assert_eq!(app.billing_state("acme").await["plan"], "free");

    let state = app.sync("acme").await;
    assert_eq!(state["plan"], "pro", "{state}");
    assert_eq!(state["subscription_status"], "active");
    assert!(state["current_period_end"].is_string());
    assert_eq!(app.billing_state("acme").await, state);
    assert_eq!(app.read("acme", "entitlements").await["reason"], "paying");
    assert!(app.ledger().is_empty(), "no webhook was delivered");
    let syncs = |app: &crate::helpers::TestApp| {
        app.audit("acme")
            .iter()
            .filter(|a| *a == "subscription.sync:ok")
            .count()
    };
    assert_eq!(syncs(&app), 1);

    // Safe to repeat: nothing changes, nothing more is audited.
    assert_eq!(app.sync("acme").await, state);
    assert_eq!(syncs(&app), 1);
}

async fn sync_of_a_tenant_without_a_customer_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let state = app.sync("acme").await;
    assert_eq!(state["plan"], "free");
    assert_eq!(state["stripe_customer_id"], Value::Null);
    assert!(
        app.sim.stats().requests.values().all(|n| *n == 0),
        "no customer, nothing to read"
    );
}

async fn only_an_admin_may_sync(backend: Backend) {
    let app = spawn_app(backend).await;
    let member = app.token("acme", Role::Member);
    assert_problem(app.post("acme", "sync", &member, None).await, 403).await;
}

/// Acceptance: N tenants whose Checkout webhooks were lost, repaired by one
/// `sync --all` that makes no more than `--rate` requests per second.
async fn sync_all_repairs_every_tenant_and_keeps_to_its_rate(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sim.set_webhook_url(None);
    let tenants: Vec<String> = (0..12).map(|i| format!("lost-{i:02}")).collect();
    for tenant in &tenants {
        app.subscribe(tenant, "pro", None).await;
    }
    let before = app.stripe_requests_total();

    let rate = 10.0;
    let started = Instant::now();
    let out = run_ok(command(
        &app.database.url,
        &app.sim,
        &["sync", "--all", "--rate", "10"],
        &[],
    ));
    let elapsed = started.elapsed();
    let made = app.stripe_requests_total() - before;
    eprintln!("[{backend:?}] sync --all: {made} Stripe requests in {elapsed:?}; {out}");
    assert!(out.contains("repaired 12, unchanged 0"), "{out}");
    for tenant in &tenants {
        assert_eq!(app.billing_state(tenant).await["plan"], "pro", "{tenant}");
    }
    // One customer read and one subscription list per tenant.
    assert_eq!(made, 24);
    let floor = Duration::from_secs_f64((made - 1) as f64 / rate);
    assert!(elapsed >= floor, "faster than --rate allows: {elapsed:?}");
    assert!(
        elapsed <= floor * 2 + Duration::from_secs(5),
        "far slower than the rate: {elapsed:?}"
    );

    let out = run_ok(command(
        &app.database.url,
        &app.sim,
        &["sync", "--all", "--rate", "100"],
        &[],
    ));
    assert!(out.contains("repaired 0, unchanged 12"), "{out}");
}

async fn sync_one_tenant_from_the_command_line(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sim.set_webhook_url(None);
    app.subscribe("acme", "pro", None).await;
    let out = run_ok(command(
        &app.database.url,
        &app.sim,
        &["sync", "--tenant", "acme"],
        &[],
    ));
    assert!(out.contains("acme: plan pro, status active"), "{out}");
    assert_eq!(app.billing_state("acme").await["plan"], "pro");
}

/// `sync --all` streams its tenants in keyset pages by sync age: never-synced
/// first, then least recently synced, so a run killed and started again
/// begins with the tenants the first one did not reach; a tenant synced
/// during the run (by it, or by anyone) leaves the walk without being seen twice.
async fn sync_all_walks_the_least_recently_synced_first_in_pages(backend: Backend) {
    use tenant_billing::db::tenants::{self, Selection, WalkKey};
    let app = spawn_app(backend).await;
    for tenant in ["t-a", "t-b", "t-c", "t-d", "t-e"] {
        app.subscribe(tenant, "pro", None).await;
    }
    let at = |hour: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap()
    };
    let before = at(12);
    let mut conn = app.db();
    let key = |id: &str| tenant_billing::domain::TenantId::parse(id).unwrap();
    tenants::mark_synced(&mut conn, &key("t-b"), at(10)).unwrap();
    tenants::mark_synced(&mut conn, &key("t-c"), at(9)).unwrap();
    tenants::mark_synced(&mut conn, &key("t-e"), at(13)).unwrap();
    let selection = Selection::SyncDue { before };
    assert_eq!(tenants::count(&mut conn, selection).unwrap(), 3 + 1);

    let mut walked = Vec::new();
    let mut after: Option<WalkKey> = None;
    loop {
        let page = tenants::page(&mut conn, selection, after.as_ref(), 2).unwrap();
        let Some(last) = page.last().cloned() else {
            break;
        };
        walked.extend(page.iter().map(|k| k.tenant_id.clone()));
        if walked.len() == 2 {
            // The run syncs what it has read: those rows leave the selection.
            for id in &walked {
                tenants::mark_synced(&mut conn, &key(id), at(14)).unwrap();
            }
        }
        after = Some(last);
    }
    assert_eq!(walked, ["t-a", "t-d", "t-c", "t-b"]);
}

backend_tests!(
    sync_all_walks_the_least_recently_synced_first_in_pages,
    a_checkout_whose_webhooks_never_arrive_is_repaired_by_sync,
    sync_of_a_tenant_without_a_customer_changes_nothing,
    only_an_admin_may_sync,
    sync_all_repairs_every_tenant_and_keeps_to_its_rate,
    sync_one_tenant_from_the_command_line,
);
