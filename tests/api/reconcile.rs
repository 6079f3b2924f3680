//! `reconcile`: planted duplicates, orphans and unlinked customers are found;
//! `--fix` links and flags (never deletes), and a second `--fix` changes nothing.

use serde_json::json;
use tenant_billing::domain::Role;

use crate::backend_tests;
use crate::child::{command, links, run_ok, seed_tenants};
use crate::helpers::{spawn_app_with, Backend, TestDatabase};

/// The table row for `customer`, if printed.
fn row_for<'a>(out: &'a str, customer: &str) -> Option<&'a str> {
    out.lines().find(|line| line.contains(customer))
}

async fn reconcile_finds_planted_problems_and_fix_is_idempotent(backend: Backend) {
    let app = spawn_app_with(
        TestDatabase::migrated(backend),
        &[("APP__JOBS__ENABLED", "false")],
    )
    .await;
    // A healthy tenant, linked through the service.
    let token = app.token("healthy", Role::Admin);
    assert_eq!(
        app.post("healthy", "customer", &token, None).await.status(),
        201
    );
    // "dup": linked, plus a second customer carrying it (a duplicate).
    let token = app.token("dup", Role::Admin);
    assert_eq!(
        app.post("dup", "customer", &token, None).await.status(),
        201
    );
    let linked_dup = app.row("dup").unwrap().stripe_customer_id.unwrap();
    let extra = app
        .sim
        .create_customer_direct(json!({"email": "x@dup.test", "metadata": {"tenant_id": "dup"}}));
    let extra = extra["id"].as_str().unwrap().to_owned();
    // "lost": a row without a customer while one carries it (unlinked).
    let mut db = app.db();
    seed_tenants(&mut db, "lost", 1, false); // tenant "lost0000"
    let unlinked = app
        .sim
        .create_customer_direct(json!({"metadata": {"tenant_id": "lost0000"}}));
    let unlinked = unlinked["id"].as_str().unwrap().to_owned();
    // "ghost": a customer naming a tenant with no row (an orphan).
    let orphan = app
        .sim
        .create_customer_direct(json!({"metadata": {"tenant_id": "ghost"}}));
    let orphan = orphan["id"].as_str().unwrap().to_owned();
    // A customer that is not ours at all is ignored.
    app.sim
        .create_customer_direct(json!({"email": "someone@else.test"}));

    let out = run_ok(command(&app.database.url, &app.sim, &["reconcile"], &[]));
    eprintln!("{out}");
    assert!(
        row_for(&out, &extra)
            .is_some_and(|l| l.starts_with("duplicate") && l.contains(&linked_dup)),
        "{out}"
    );
    assert!(
        row_for(&out, &unlinked)
            .is_some_and(|l| l.starts_with("unlinked") && l.contains("lost0000")),
        "{out}"
    );
    assert!(
        row_for(&out, &orphan).is_some_and(|l| l.starts_with("orphan") && l.contains("ghost")),
        "{out}"
    );
    assert!(
        out.contains("duplicates 1, orphans 1, unlinked 1, missing 0"),
        "{out}"
    );
    assert_eq!(
        app.row("lost0000").unwrap().stripe_customer_id,
        None,
        "a report changed the database"
    );

    let out = run_ok(command(
        &app.database.url,
        &app.sim,
        &["reconcile", "--fix"],
        &[],
    ));
    assert!(
        out.contains("fixed: linked 1, marked 1 duplicates"),
        "{out}"
    );
    assert_eq!(
        app.row("lost0000").unwrap().stripe_customer_id.as_deref(),
        Some(unlinked.as_str())
    );
    let flagged = app.sim.object(&extra).unwrap();
    assert_eq!(flagged["metadata"]["tb_duplicate_of"], linked_dup.as_str());
    assert_eq!(
        flagged["metadata"]["tenant_id"], "dup",
        "other metadata kept"
    );
    assert_eq!(app.sim.customers().len(), 6, "nothing deleted");

    let updates_before = app
        .sim
        .stats()
        .requests
        .get("POST /v1/customers/{id}")
        .copied();
    let links_before = links(&mut db);
    let audit_before = app.audit("lost0000");
    let out = run_ok(command(
        &app.database.url,
        &app.sim,
        &["reconcile", "--fix"],
        &[],
    ));
    assert!(
        out.contains("fixed: linked 0, marked 0 duplicates"),
        "{out}"
    );
    assert!(
        row_for(&out, &extra).is_some_and(|l| l.contains("(flagged)")),
        "{out}"
    );
    assert_eq!(
        app.sim
            .stats()
            .requests
            .get("POST /v1/customers/{id}")
            .copied(),
        updates_before
    );
    assert_eq!(links(&mut db), links_before);
    assert_eq!(app.audit("lost0000"), audit_before);
    assert_eq!(app.sim.customers().len(), 6);
}

backend_tests!(reconcile_finds_planted_problems_and_fix_is_idempotent);
