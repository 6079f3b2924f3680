//! `reconcile`: compares every Stripe customer's `metadata.tenant_id` with
//! `tenant_config` and reports what disagrees. Stripe is read through the
//! list API (complete and consistent), never search (which lags).
//!
//! - duplicate: several customers carry one tenant; all but the linked one
//!   (or, for an unlinked tenant, all but the oldest) are duplicates;
//! - orphan: the tenant named by the metadata has no row, or its row is linked
//!   to a customer that does not carry the tenant;
//! - unlinked: a tenant row without a customer while a customer carries it;
//! - missing: a row linked to a customer Stripe does not list (deleted).
//!
//! `--fix` links the unlinked (through `record_customer`, which writes only if
//! the tenant is still unlinked) and flags duplicates with the metadata
//! `tb_duplicate_of=<linked id>`; it never deletes. A second run finds the
//! flags already set and the links made, and changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;

use super::{Billing, BillingError};
use crate::db::tenants::{self, RecordOutcome};
use crate::db::{self, audit};
use crate::domain::TenantId;
use crate::stripe::StripeCustomer;

/// The metadata key that flags a duplicate customer with the one to keep.
pub const DUPLICATE_OF: &str = "tb_duplicate_of";

/// One disagreement between Stripe and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `customer` carries `tenant`, which keeps (or will keep) `keep`.
    Duplicate {
        tenant: String,
        customer: String,
        keep: String,
        /// Already flagged `tb_duplicate_of=keep`.
        marked: bool,
    },
    /// `customer` carries `tenant` but the database does not point back at it.
    Orphan {
        tenant: String,
        customer: String,
        reason: String,
    },
    /// `tenant` has no customer linked, but `customer` carries it.
    Unlinked { tenant: String, customer: String },
    /// `tenant` is linked to `customer`, which Stripe does not list.
    Missing { tenant: String, customer: String },
}

impl Finding {
    /// The kind, as printed in the table.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Duplicate { .. } => "duplicate",
            Finding::Orphan { .. } => "orphan",
            Finding::Unlinked { .. } => "unlinked",
            Finding::Missing { .. } => "missing",
        }
    }
}

/// What `reconcile` found.
#[derive(Debug, Clone, Default)]
pub struct ReconcileReport {
    pub findings: Vec<Finding>,
    pub customers_scanned: usize,
    pub tenants_scanned: usize,
}

impl ReconcileReport {
    /// How many findings of `kind` (`duplicate`, `orphan`, `unlinked`, `missing`).
    pub fn count(&self, kind: &str) -> usize {
        self.findings.iter().filter(|f| f.kind() == kind).count()
    }
}

/// What `--fix` changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixSummary {
    pub linked: usize,
    pub marked: usize,
}

impl Billing {
    /// Reads every customer and every tenant row and classifies disagreements.
    pub async fn reconcile(&self) -> Result<ReconcileReport, BillingError> {
        let customers = self.stripe.list_customers(None).await?;
        let rows = db::interact(&self.pool, |conn| Ok(tenants::list_all(conn, false)?)).await?;
        Ok(classify(
            &customers,
            rows.into_iter()
                .map(|r| (r.tenant_id, r.stripe_customer_id))
                .collect(),
        ))
    }

    /// Links the unlinked and flags unflagged duplicates; never deletes.
    pub async fn apply_fixes(&self, report: &ReconcileReport) -> Result<FixSummary, BillingError> {
        let mut summary = FixSummary::default();
        for finding in &report.findings {
            match finding {
                Finding::Unlinked { tenant, customer } => {
                    let linked = self.link_found_customer(tenant, customer).await?;
                    summary.linked += usize::from(linked);
                }
                Finding::Duplicate {
                    customer,
                    keep,
                    marked: false,
                    ..
                } => {
                    let key = ["reconcile-duplicate", customer.as_str(), keep.as_str()];
                    self.stripe
                        .set_customer_metadata(customer, DUPLICATE_OF, keep, &key)
                        .await?;
                    summary.marked += 1;
                }
                _ => {}
            }
        }
        Ok(summary)
    }

    async fn link_found_customer(
        &self,
        tenant: &str,
        customer: &str,
    ) -> Result<bool, BillingError> {
        let Ok(tenant) = TenantId::parse(tenant) else {
            return Ok(false);
        };
        let customer_id = customer.to_owned();
        let key = tenant.clone();
        let outcome = self
            .interact_writing(&tenant, move |conn| {
                Ok(tenants::record_customer(
                    conn,
                    &key,
                    &customer_id,
                    Utc::now().naive_utc(),
                    |conn, outcome| {
                        if *outcome != RecordOutcome::Recorded {
                            return Ok(());
                        }
                        audit::append(
                            conn,
                            &audit::AuditEntry {
                                tenant: &key,
                                actor: "reconcile",
                                request_id: None,
                                action: "customer.linked",
                                outcome: "ok",
                                detail: Some(
                                    serde_json::json!({ "stripe_customer_id": customer_id })
                                        .to_string(),
                                ),
                            },
                        )
                    },
                )?)
            })
            .await?;
        Ok(outcome == RecordOutcome::Recorded)
    }
}

/// The classification itself, without I/O: `customers` oldest first, `rows`
/// as tenant → linked customer.
pub fn classify(
    customers: &[StripeCustomer],
    rows: HashMap<String, Option<String>>,
) -> ReconcileReport {
    let mut by_tenant: BTreeMap<&str, Vec<&StripeCustomer>> = BTreeMap::new();
    for customer in customers {
        if let Some(tenant) = customer.tenant_id.as_deref() {
            by_tenant.entry(tenant).or_default().push(customer);
        }
    }
    let duplicate = |tenant: &str, c: &StripeCustomer, keep: &str| Finding::Duplicate {
        tenant: tenant.to_owned(),
        customer: c.id.clone(),
        keep: keep.to_owned(),
        marked: c.metadata.get(DUPLICATE_OF).map(String::as_str) == Some(keep),
    };
    let mut findings = Vec::new();
    for (tenant, group) in &by_tenant {
        match rows.get(*tenant) {
            None => findings.extend(group.iter().map(|c| Finding::Orphan {
                tenant: (*tenant).to_owned(),
                customer: c.id.clone(),
                reason: "no tenant row".into(),
            })),
            Some(Some(linked)) => {
                let carries_linked = group.iter().any(|c| &c.id == linked);
                for c in group.iter().filter(|c| &c.id != linked) {
                    findings.push(if carries_linked {
                        duplicate(tenant, c, linked)
                    } else {
                        Finding::Orphan {
                            tenant: (*tenant).to_owned(),
                            customer: c.id.clone(),
                            reason: format!("tenant is linked to {linked}"),
                        }
                    });
                }
            }
            Some(None) => {
                let keep = &group[0].id;
                findings.push(Finding::Unlinked {
                    tenant: (*tenant).to_owned(),
                    customer: keep.clone(),
                });
                findings.extend(group[1..].iter().map(|c| duplicate(tenant, c, keep)));
            }
        }
    }
    let listed: HashSet<&str> = customers.iter().map(|c| c.id.as_str()).collect();
    let mut missing: Vec<Finding> = rows
        .iter()
        .filter_map(|(tenant, linked)| {
            let linked = linked.as_deref()?;
            (!listed.contains(linked)).then(|| Finding::Missing {
                tenant: tenant.clone(),
                customer: linked.to_owned(),
            })
        })
        .collect();
    missing.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    findings.extend(missing);
    ReconcileReport {
        findings,
        customers_scanned: customers.len(),
        tenants_scanned: rows.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, tenant: Option<&str>, extra: &[(&str, &str)]) -> StripeCustomer {
        let mut metadata: HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(t) = tenant {
            metadata.insert("tenant_id".into(), t.into());
        }
        StripeCustomer {
            id: id.into(),
            email: None,
            tenant_id: tenant.map(str::to_owned),
            metadata,
            created: 0,
        }
    }

    #[test]
    fn every_kind_is_found_and_a_marked_duplicate_is_known() {
        let customers = vec![
            customer("cus_a", Some("a"), &[]),
            customer("cus_a2", Some("a"), &[(DUPLICATE_OF, "cus_a")]),
            customer("cus_b", Some("b"), &[]),
            customer("cus_ghost", Some("ghost"), &[]),
            customer("cus_d", Some("d"), &[]),
            customer("cus_untagged", None, &[]),
        ];
        let rows = HashMap::from([
            ("a".to_owned(), Some("cus_a".to_owned())),
            ("b".to_owned(), None),
            ("d".to_owned(), Some("cus_other".to_owned())),
        ]);
        let report = classify(&customers, rows);
        assert!(report.findings.contains(&Finding::Duplicate {
            tenant: "a".into(),
            customer: "cus_a2".into(),
            keep: "cus_a".into(),
            marked: true,
        }));
        assert!(report.findings.contains(&Finding::Unlinked {
            tenant: "b".into(),
            customer: "cus_b".into(),
        }));
        assert_eq!(report.count("orphan"), 2); // ghost (no row), d (linked elsewhere)
        assert!(report.findings.contains(&Finding::Missing {
            tenant: "d".into(),
            customer: "cus_other".into(),
        }));
        assert_eq!(report.findings.len(), 5);
    }
}
